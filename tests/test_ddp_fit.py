"""Lightning DDP fit on 2 CPU processes (gloo): batches, SalUn masks, metrics and resume (issue 12)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import write_random_packed

REPO = Path(__file__).resolve().parents[1]


def _run(root, out, processes):
    out.mkdir()
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "GLOO_SOCKET_IFNAME": "lo"}
    run = subprocess.run([sys.executable, str(REPO / "tests/scripts/ddp_fit.py"), str(root), str(out), str(processes)],
                         cwd=out, timeout=300, capture_output=True, text=True, env=env)
    if run.returncode != 0:
        stderr = "\n".join(line for line in run.stderr.splitlines() if not line.startswith("frame #"))
        pytest.fail(f"{processes}-process fit exited with {run.returncode}:\n{stderr[-6000:]}")
    return [json.loads(path.read_text()) for path in sorted(out.glob("rank*.json"))]


def test_two_process_fit_matches_one_seeded_stream_and_resumes_exactly(tmp_path):
    root = write_random_packed(tmp_path / "packed", holdout=5).root
    (single,), (rank0, rank1) = _run(root, tmp_path / "one", 1), _run(root, tmp_path / "two", 2)
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
