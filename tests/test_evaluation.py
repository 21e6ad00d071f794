"""The evaluation callback: benchmarks as configuration and validate's CSV (DDP results: tests/test_ddp.py)."""
import csv
from pathlib import Path

import pytest

from faceunlearn.callbacks import RetrievalEvaluation, RunFiles
from faceunlearn.cli import cli_main
from faceunlearn.metrics.benchmarks import Benchmark, parse_benchmarks

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


def test_with_the_logger_off_results_go_to_the_checkpoint_folder_never_the_working_directory(tmp_path, random_packed, monkeypatch):
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    cli_main([
        "validate", "--config", str(REPO / "configs/demo_disp.yaml"),
        "--model.init_args.init_weights", "null",
        "--data.root", str(random_packed.root), "--data.synthetic", "null",
        "--data.num_forget_identities", "8", "--data.batch_size", "16", "--data.eval_retain_identities", "4",
        "--trainer.enable_progress_bar", "false", "--trainer.logger", "false", "--run_files.snapshots", "[]",
        "--evaluation.benchmarks", "{forget: {queries: forget_test, gallery: [forget]}}",
        "--checkpoint.dirpath", str(tmp_path / "ckpt"),
    ])
    assert (tmp_path / "ckpt" / "retrieval_metrics.csv").is_file()
    assert not (tmp_path / "cwd" / "retrieval_metrics.csv").exists()
