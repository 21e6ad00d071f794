"""faceunlearn audit on a tiny run: every test for every model, tidy CSV, and numbers that agree with
the evaluation engine (a model audited twice under two names gives the same numbers)."""

import csv
import json
from pathlib import Path

import pytest

from faceunlearn.audit import AUDIT_JSON, audit, reference_results
from faceunlearn.callbacks import RetrievalEvaluation
from faceunlearn.cli import cli_main

REPO = Path(__file__).resolve().parents[1]


def test_audit_of_a_tiny_run(tmp_path, random_packed):
    data = ["--model.init_args.init_weights", "null", "--data.root", str(random_packed.root), "--data.synthetic", "null",
            "--data.num_forget_identities", "6", "--data.batch_size", "12", "--data.images_per_identity", "2",
            "--data.eval_retain_identities", "6", "--trainer.enable_progress_bar", "false",
            "--trainer.logger", "false", "--trainer.default_root_dir", str(tmp_path),  # where LightningCLI saves config.yaml
            "--run_files.snapshots", "[]"]
    fit = cli_main(["fit", "--config", str(REPO / "configs/demo_disp.yaml"), *data, "--data.batches_per_epoch", "2",
                    "--trainer.max_epochs", "1", "--checkpoint.dirpath", str(tmp_path / "ckpt")])
    ckpt = tmp_path / "ckpt/last.ckpt"
    final = RetrievalEvaluation.of(fit.trainer).history[-1][1]
    rows = audit(str(REPO / "configs/demo_disp.yaml"), str(ckpt), tmp_path / "audit", retrain=str(ckpt),
                 overrides=data, relearn_steps=(1, 2))
    with (tmp_path / "audit/audit.csv").open() as handle:
        written = list(csv.DictReader(handle))
    assert len(written) == len(rows) and list(written[0]) == ["method", "seed", "benchmark", "metric", "value"]
    value = {(row["method"], row["benchmark"], row["metric"]): row["value"] for row in rows}
    assert {row["method"] for row in rows} == {"Original", "Dispersion", "Retrain"}
    tests = {row["benchmark"] for row in rows}
    assert tests == {"forget", "verify_forget", "verify_retain", "identify_forget", "identify_retain", "membership",
                     "probe", "stale_gallery", "relearn_1", "relearn_2"}
    # the audit's retrieval is the evaluation's
    assert value["Dispersion", "forget", "mAP"] == pytest.approx(final["forget/mAP"], abs=1e-12)
    assert value["Dispersion", "forget", "chance_mAP"] == pytest.approx(final["forget/chance_mAP"], abs=1e-12)
    # the same weights under another name: the same numbers, every test (seeded probe and relearning)
    for (model, test, metric), number in value.items():
        if model == "Retrain":
            assert number == pytest.approx(value["Dispersion", test, metric], abs=1e-9, nan_ok=True), (test, metric)
    # the Original against its own gallery is plain retrieval; the unlearned model against it is not
    assert value["Original", "stale_gallery", "mAP"] == pytest.approx(value["Original", "forget", "mAP"], abs=1e-12)
    for key, number in value.items():
        assert number != number or 0.0 <= number <= 1.0, key
    assert (tmp_path / "audit/audit.md").read_text().startswith("# faceunlearn audit")
    assert (tmp_path / "audit/roc.png").stat().st_size > 1000
    with (tmp_path / "audit/roc.csv").open() as handle:  # the points report averages over forget sets
        roc = list(csv.DictReader(handle))
    assert {row["method"] for row in roc} == {"Original", "Dispersion", "Retrain"}
    assert {row["benchmark"] for row in roc} == {"verify_forget", "verify_retain"} and len(roc) == 3 * 2 * 40

    # a second audit of the same forget set copies the Original's and Retrain's rows and audits only the method,
    # with the same attacker for every model (not the method's own lr)
    settings = json.loads((tmp_path / "audit/audit.json").read_text())
    assert settings["relearn_lr"] == 1e-4 and settings["references"] is None and settings["relearn_steps"] == [1, 2]
    again = audit(str(REPO / "configs/demo_disp.yaml"), str(ckpt), tmp_path / "again", retrain=str(ckpt),
                  overrides=data, relearn_steps=(2, 1), references=tmp_path / "audit")
    assert json.loads((tmp_path / "again" / AUDIT_JSON).read_text())["references"] == str(tmp_path / "audit")
    assert [(row["method"], row["benchmark"], row["metric"]) for row in again] == [
        (row["method"], row["benchmark"], row["metric"]) for row in rows]
    for row, first in zip(again, rows):
        assert row["value"] == pytest.approx(first["value"], abs=1e-9, nan_ok=True), row
    with (tmp_path / "again/roc.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 3 * 2 * 40
    # a sweep's audit in its own process (`faceunlearn sweep --jobs N`: launch.processes runs run_one there): the same rows
    from faceunlearn.experiments import launch
    from faceunlearn.experiments.sweep import RunSpec

    job = RunSpec("audit", str(REPO / "configs/demo_disp.yaml"), "demo_disp", 0, "synthetic", tmp_path,
                  ["--config", str(REPO / "configs/demo_disp.yaml"), *data], None,
                  audit={"checkpoint": str(ckpt), "folder": str(tmp_path / "process"), "retrain": str(ckpt),
                         "references": str(tmp_path / "audit"), "relearn_lr": None, "relearn_steps": [1, 2]})
    [(_, result, _)] = list(launch.processes(1)([job]))
    assert not isinstance(result, BaseException), result
    assert json.loads((tmp_path / "process" / AUDIT_JSON).read_text())["references"] == str(tmp_path / "audit")
    with (tmp_path / "process/audit.csv").open() as handle:
        in_process = list(csv.DictReader(handle))
    assert [(row["method"], row["benchmark"], row["metric"]) for row in in_process] == [
        (row["method"], row["benchmark"], row["metric"]) for row in rows]
    for row, first in zip(in_process, rows):
        assert float(row["value"]) == pytest.approx(first["value"], abs=1e-6, nan_ok=True), row
    # another attacker, another Retrain or another forget set: nothing is copied
    for key, other in (("relearn_lr", 1e-2), ("retrain", None), ("seed", 7)):
        assert reference_results(tmp_path / "audit", {**settings, key: other}) is None
    assert reference_results(tmp_path / "absent", settings) is None
