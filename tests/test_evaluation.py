"""The evaluation callback: benchmarks as configuration, validate's CSV, and exact DDP results."""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from faceunlearn.callbacks import RetrievalEvaluation, RunFiles
from faceunlearn.cli import cli_main
from faceunlearn.metrics.benchmarks import Benchmark, parse_benchmarks
from conftest import write_random_packed

REPO = Path(__file__).resolve().parents[1]


def test_benchmark_config_is_checked():
    parsed = parse_benchmarks({"forget": {"queries": "forget_test", "gallery": ["forget"], "distractors": "distractors"}})
    assert parsed["forget"] == Benchmark("forget", ("forget_test",), ("forget",), ("distractors",), ())
    assert parsed["forget"].subsets == {"forget_test", "forget", "distractors"}
    bad = [
        ({"queries": "a"}, "queries \\+ gallery"),
        ({"gallery": ["a"]}, "queries \\+ gallery"),
        ({"clusters": "a", "distractors": ["d"]}, "distractors extend a gallery"),
        ({"queries": "a", "gallery": "b", "galery": "c"}, "unknown keys \\['galery'\\]"),
    ]
    for spec, message in bad:
        with pytest.raises(ValueError, match=message):
            parse_benchmarks({"x": spec})
    with pytest.raises(ValueError, match="must not contain '/'"):
        parse_benchmarks({"a/b": {"clusters": "forget"}})


def test_validate_prints_and_writes_tidy_csv(tmp_path, random_packed, caplog):
    csv_path = tmp_path / "out" / "metrics.csv"
    cli = cli_main([
        "validate", "--config", str(REPO / "configs/demo_disp.yaml"),
        "--model.init_args.init_weights", "null",
        "--data.root", str(random_packed.root), "--data.synthetic", "null",
        "--data.num_forget_identities", "8", "--data.batch_size", "16", "--data.eval_retain_identities", "4",
        "--trainer.enable_progress_bar", "false", "--trainer.logger", "false",
        "--trainer.default_root_dir", str(tmp_path),  # where LightningCLI saves config.yaml
        "--evaluation.benchmarks",
        '{forget: {queries: forget_test, gallery: [forget], distractors: [distractors], clusters: forget}}',
        "--evaluation.results_csv", str(csv_path),
    ])
    evaluation = RetrievalEvaluation.of(cli.trainer)
    (_, metrics), = evaluation.history
    # only the subsets the benchmark and the config's snapshots read are embedded
    assert cli.datamodule.hparams.eval_subsets == ["distractors", "forget", "forget_test", "retain_eval"]  # linked from evaluation
    # two callbacks, one job each: the run files subscribe to the evaluation they were linked to
    run_files, = (callback for callback in cli.trainer.callbacks if isinstance(callback, RunFiles))
    assert evaluation.subscribers == [run_files.record] and run_files.snapshots == ["forget", "retain_eval"]
    with csv_path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["method", "seed", "benchmark", "metric", "value"]
    assert {(row["method"], row["seed"]) for row in rows} == {("Dispersion", "0")}
    assert {row["benchmark"] for row in rows} == {"forget", "forget_extended"}
    assert {f"{row['benchmark']}/{row['metric']}": float(row["value"]) for row in rows} == metrics
    assert metrics["forget_extended/mAP"] <= metrics["forget/mAP"]  # distractors can only push relevant items down
    assert "forget_extended: mAP=" in caplog.text and f"wrote {csv_path}" in caplog.text


def test_two_process_ddp_gives_the_single_process_numbers(tmp_path):
    """179 evaluation images over 2 ranks: DistributedSampler repeats one, the callback drops it (exact);
    each rank indexes its own block of rows and the ranked lists are merged over the ranks (faiss)."""
    root = write_random_packed(tmp_path / "packed", holdout=5).root
    results = {}
    for processes in (1, 2):
        out = tmp_path / f"out{processes}"
        out.mkdir()
        # Loopback only: CI machines may have no routable interface or a hostname that resolves nowhere.
        env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "GLOO_SOCKET_IFNAME": "lo"}
        run = subprocess.run([sys.executable, str(REPO / "tests/scripts/ddp_validate.py"), str(root), str(out), str(processes)],
                             cwd=tmp_path, timeout=300, capture_output=True, text=True, env=env)
        if run.returncode != 0:
            stderr = "\n".join(line for line in run.stderr.splitlines() if not line.startswith("frame #"))
            pytest.fail(f"{processes}-process validate exited with {run.returncode}:\n{stderr[-6000:]}")
        results[processes] = {engine: [json.loads(path.read_text()) for path in sorted(out.glob(f"{engine}_rank*.json"))]
                              for engine in ("exact", "faiss")}
    for engine, mAP in (("exact", "mAP"), ("faiss", "mAP@400")):
        (single,), (rank0, rank1) = results[1][engine], results[2][engine]
        assert rank0 == rank1 == single  # every rank logs exactly the single-process values
        assert {f"forget/{mAP}", f"forget_extended/{mAP}", "retain/R@1", "retain_extended/R@10", "forget/acc_mean"} <= set(single)
    exact, faiss = results[2]["exact"][0], results[2]["faiss"][0]
    assert faiss["forget_extended/mAP@400"] == pytest.approx(exact["forget_extended/mAP"], abs=1e-6)  # k covers the gallery
    assert "forget/acc" not in single  # an untrained head: no head accuracy is ever logged from it
