"""Lightning DDP on 2 CPU processes (gloo) against 1: the evaluation's numbers, and fit's batches, SalUn masks,
metrics and resume. tests/scripts/ddp.py runs both once per process count."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import write_random_packed

REPO = Path(__file__).resolve().parents[1]
# several interpreters: the slow tier (`make test-all`)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ddp_outputs(tmp_path_factory):
    """Output folders of tests/scripts/ddp.py on 1 and on 2 processes, same data."""
    tmp_path = tmp_path_factory.mktemp("ddp")
    root = write_random_packed(tmp_path / "packed", holdout=5).root
    outputs = {}
    for processes in (1, 2):
        out = outputs[processes] = tmp_path / f"out{processes}"
        out.mkdir()
        # Loopback only: CI machines may have no routable interface or a hostname that resolves nowhere.
        env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "GLOO_SOCKET_IFNAME": "lo"}
        run = subprocess.run([sys.executable, str(REPO / "tests/scripts/ddp.py"), str(root), str(out), str(processes)],
                             cwd=out, timeout=300, capture_output=True, text=True, env=env)
        if run.returncode != 0:
            stderr = "\n".join(line for line in run.stderr.splitlines() if not line.startswith("frame #"))
            pytest.fail(f"{processes}-process DDP script exited with {run.returncode}:\n{stderr[-6000:]}")
    return outputs


def _ranks(out, pattern):
    return [json.loads(path.read_text()) for path in sorted(out.glob(pattern))]


def test_two_process_ddp_gives_the_single_process_numbers(ddp_outputs):
    """179 evaluation images over 2 ranks: DistributedSampler repeats one, the callback drops it (exact);
    each rank indexes its own block of rows and the ranked lists are merged over the ranks (faiss)."""
    results = {processes: {engine: _ranks(out, f"{engine}_rank*.json") for engine in ("exact", "faiss")}
               for processes, out in ddp_outputs.items()}
    for engine, mAP in (("exact", "mAP"), ("faiss", "mAP@400")):
        (single,), (rank0, rank1) = results[1][engine], results[2][engine]
        assert rank0 == rank1 == single  # every rank logs exactly the single-process values
        assert {f"forget/{mAP}", f"forget_extended/{mAP}", "retain/R@1", "retain_extended/R@10", "forget/acc_mean"} <= set(single)
    exact, faiss = results[2]["exact"][0], results[2]["faiss"][0]
    assert faiss["forget_extended/mAP@400"] == pytest.approx(exact["forget_extended/mAP"], abs=1e-6)  # k covers the gallery
    assert "forget/acc" not in single  # an untrained head: no head accuracy is ever logged from it


def test_two_process_fit_matches_one_seeded_stream_and_resumes_exactly(ddp_outputs):
    (single,), (rank0, rank1) = _ranks(ddp_outputs[1], "rank*.json"), _ranks(ddp_outputs[2], "rank*.json")
    for name in ("dispersion", "boundary_shrink", "salun_dispersion", "dispersion_resumed"):
        one, first, second = single[name], rank0[name], rank1[name]
        # one seeded stream: rank r trains on global batches r, r + 2, ... (global batch = 2 × per-rank batch)
        assert first["batches"] == one["batches"][0::2] and second["batches"] == one["batches"][1::2]
        assert not set(map(tuple, first["batches"])) & set(map(tuple, second["batches"]))
        assert len(first["batches"]) == len(one["batches"]) // 2
        assert first["weights"] == second["weights"]  # DDP keeps the replicas identical
        assert first["history"] == second["history"]  # every rank logs the same evaluations
        assert [step for step, _ in first["history"]] == ([4] if name == "dispersion_resumed" else [0, 2, 4])
    assert rank0["salun_dispersion"]["masks"] == rank1["salun_dispersion"]["masks"] == single["salun_dispersion"]["masks"]
    assert rank0["salun_dispersion"]["kept_fraction"] == 0.5
    # a DDP run resumed from its epoch-0 checkpoint ends bit for bit where the uninterrupted one did
    assert rank0["dispersion_resumed"]["weights"] == rank0["dispersion"]["weights"]
    assert rank0["dispersion_resumed"]["history"][-1] == rank0["dispersion"]["history"][-1]
    # the start model's evaluation does not depend on the number of processes
    assert rank0["dispersion"]["history"][0] == single["dispersion"]["history"][0]
