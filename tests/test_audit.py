"""faceunlearn audit on a tiny run: every test for every model, tidy CSV, and numbers that agree with
the evaluation engine (a model audited twice under two names gives the same numbers)."""

import csv
import json
from pathlib import Path

import pytest

from faceunlearn.audit import AUDIT_JSON, AuditInputError, audit, check_checkpoint, reference_results
from faceunlearn.callbacks import RetrievalEvaluation
from faceunlearn.cli import cli_main

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # runs in make test-all (CI); left out of make test, which stays under 3 min
def test_audit_of_a_tiny_run(tmp_path, random_packed, capsys):
    data = ["--model.init_args.init_weights", "null", "--data.root", str(random_packed.root), "--data.synthetic", "null",
            "--data.num_forget_identities", "6", "--data.batch_size", "12", "--data.images_per_identity", "2",
            "--data.eval_retain_identities", "6", "--trainer.enable_progress_bar", "false",
            "--trainer.logger", "false", "--trainer.default_root_dir", str(tmp_path),  # where LightningCLI saves config.yaml
            "--run_files.snapshots", "[]"]
    fit = cli_main(["fit", "--config", str(REPO / "configs/demo_disp.yaml"), *data, "--data.batches_per_epoch", "2",
                    "--trainer.max_epochs", "1", "--checkpoint.dirpath", str(tmp_path / "ckpt")])
    ckpt = tmp_path / "ckpt/last.ckpt"
    final = RetrievalEvaluation.of(fit.trainer).history[-1][1]
    # "Retrain" here: the same backbone under another CosFace head (random rows). No test may read the head, so
    # every number — relearning and membership included — must be the method's
    import torch

    other_head = tmp_path / "other_head.ckpt"
    checkpoint = torch.load(ckpt, map_location="cpu", weights_only=True)
    head = checkpoint["state_dict"]["head.weight"]
    checkpoint["state_dict"]["head.weight"] = torch.randn(head.shape, generator=torch.Generator().manual_seed(5))
    torch.save(checkpoint, other_head)
    rows = audit(str(REPO / "configs/demo_disp.yaml"), str(ckpt), tmp_path / "audit", retrain=str(other_head),
                 overrides=data, relearn_steps=(1,), relearn_lrs=(1e-4, 1e-2))
    # progress, per model: the tests without training, then each of the 2 attacks x 2 lrs
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("[audit] Retrain: ")]
    assert len(said) == 5 and "relearn_retain at lr 0.01 done (4/4 attacks)" in said[-1]
    with (tmp_path / "audit/audit.csv").open() as handle:
        written = list(csv.DictReader(handle))
    assert len(written) == len(rows) and list(written[0]) == ["method", "seed", "benchmark", "metric", "value"]
    value = {(row["method"], row["benchmark"], row["metric"]): row["value"] for row in rows}
    assert {row["method"] for row in rows} == {"Original", "Dispersion", "Retrain"}
    tests = {row["benchmark"] for row in rows}
    assert tests == {"forget", "verify_forget", "verify_retain", "heldout_pooled", "heldout_pooled_extended", "identify_forget",
                     "identify_retain", "membership", "membership_identity", "probe", "stale_gallery", "stale_gallery_retain",
                     "stale_gallery_heldout", "relearn_1", "relearn_retain_1",
                     "relearn@lr=0.0001", "relearn@lr=0.01", "relearn_retain@lr=0.0001", "relearn_retain@lr=0.01", "basin"}
    # the audit's retrieval is the evaluation's
    assert value["Dispersion", "forget", "mAP"] == pytest.approx(final["forget/mAP"], abs=1e-12)
    assert value["Dispersion", "forget", "chance_mAP"] == pytest.approx(final["forget/chance_mAP"], abs=1e-12)
    # the same backbone under another head: the same numbers, every test (seeded probe, membership and relearning)
    for (model, test, metric), number in value.items():
        if model == "Retrain":
            assert number == pytest.approx(value["Dispersion", test, metric], abs=1e-9, nan_ok=True), (test, metric)
    # the strongest relearning attack per step count is the grid's best, with its lr
    for attack in ("relearn", "relearn_retain"):
        for steps in (1,):
            grid = {lr: value["Dispersion", f"{attack}@lr={lr:g}", f"mAP@{steps}"] for lr in (1e-4, 1e-2)}
            best = max(grid, key=grid.get)
            assert value["Dispersion", f"{attack}_{steps}", "lr"] == best
            assert value["Dispersion", f"{attack}_{steps}", "mAP"] == grid[best]
    # relearning moved the network: at lr 1e-2 one step changes forget retrieval
    assert value["Dispersion", "relearn@lr=0.01", "mAP@1"] != pytest.approx(value["Dispersion", "forget", "mAP"], abs=1e-6)
    # the attack alone (tune's relearn_mAP objective) is the audit's
    from faceunlearn.audit import strongest_relearning

    alone = strongest_relearning(str(REPO / "configs/demo_disp.yaml"), str(ckpt), data, steps=1, lrs=(1e-4, 1e-2))
    assert alone == pytest.approx({key: value["Dispersion", "relearn_1", key] for key in ("mAP", "R@1", "lr")}, abs=1e-9)
    # the weight distance to the Original, against the checkpoints' own tensors (the Original: init_weights null, so
    # the seeded initialisation the config builds)
    start = cli_main(["--config", str(REPO / "configs/demo_disp.yaml"), *data], run=False).model.backbone.state_dict()
    trained = {name[len("backbone."):]: tensor for name, tensor in checkpoint["state_dict"].items() if name.startswith("backbone.")}
    floats = [name for name, tensor in start.items() if tensor.is_floating_point()]
    want = (sum(float((trained[n] - start[n]).square().sum()) for n in floats) / sum(float(start[n].square().sum()) for n in floats)) ** 0.5
    assert value["Dispersion", "basin", "weight_distance"] == pytest.approx(want, rel=1e-6) and want > 0
    for key, number in value.items():
        assert number != number or 0.0 <= number <= 1.0 or key[2] in ("lr", "weight_distance"), key
    assert (tmp_path / "audit/audit.md").read_text().startswith("# faceunlearn audit")
    assert (tmp_path / "audit/roc.png").stat().st_size > 1000
    with (tmp_path / "audit/roc.csv").open() as handle:  # the points report averages over forget sets
        roc = list(csv.DictReader(handle))
    assert {row["method"] for row in roc} == {"Original", "Dispersion", "Retrain"}
    assert {row["benchmark"] for row in roc} == {"verify_forget", "verify_retain"} and len(roc) == 3 * 2 * 40

    # a second audit of the same forget set — here a sweep's, in its own process (`faceunlearn sweep --jobs N`:
    # launch.processes runs run_one there) — copies the Original's and Retrain's rows and audits only the method,
    # with the same attacker for every model (the grid in any order): the same rows
    settings = json.loads((tmp_path / "audit/audit.json").read_text())
    assert settings["relearn_lrs"] == [1e-4, 1e-2] and settings["references"] is None and settings["relearn_steps"] == [1]
    from faceunlearn.experiments import launch
    from faceunlearn.experiments.sweep import RunSpec

    job = RunSpec("audit", str(REPO / "configs/demo_disp.yaml"), "demo_disp", 0, "synthetic", tmp_path,
                  ["--config", str(REPO / "configs/demo_disp.yaml"), *data], None,
                  audit={"checkpoint": str(ckpt), "folder": str(tmp_path / "process"), "retrain": str(other_head),
                         "references": str(tmp_path / "audit"), "relearn_lrs": [1e-2, 1e-4], "relearn_steps": [1]})
    [(_, result, _)] = list(launch.processes(1)([job]))
    assert not isinstance(result, BaseException), result
    assert json.loads((tmp_path / "process" / AUDIT_JSON).read_text())["references"] == str(tmp_path / "audit")
    with (tmp_path / "process/audit.csv").open() as handle:
        in_process = list(csv.DictReader(handle))
    assert [(row["method"], row["benchmark"], row["metric"]) for row in in_process] == [
        (row["method"], row["benchmark"], row["metric"]) for row in rows]
    for row, first in zip(in_process, rows):
        assert float(row["value"]) == pytest.approx(first["value"], abs=1e-6, nan_ok=True), row
    with (tmp_path / "process/roc.csv").open() as handle:  # the copied references' ROC points too
        assert len(list(csv.DictReader(handle))) == 3 * 2 * 40
    # another attacker, another Retrain (by content), other start weights or another forget set: nothing is copied
    for key, other in (("relearn_lrs", [1e-2]), ("retrain_sha256", "0" * 64), ("start_weights_sha256", "1" * 64),
                       ("seed", 7), ("forget_identities", [0]), ("audit_version", 1)):
        assert reference_results(tmp_path / "audit", {**settings, key: other}) is None
    assert reference_results(tmp_path / "absent", settings) is None
    # the same Retrain file under another path is the same reference
    assert reference_results(tmp_path / "audit", {**settings, "retrain": "/elsewhere/last.ckpt"}) is not None

    # a checkpoint that is not the config's is refused, naming both
    with pytest.raises(AuditInputError, match=r"unlearned forget identities \[.*\], but .* audits \[.*\]: pass the run's own"):
        audit(str(REPO / "configs/demo_disp.yaml"), str(ckpt), tmp_path / "wrong", overrides=[*data, "--data.seed", "1"])
    assert not (tmp_path / "wrong").exists()
    forget = sorted(int(i) for i in torch.load(ckpt, weights_only=True)["FaceDataModule"]["forget_identities"])
    checkpoint["start_weights"] = {"path": "/models/a.onnx", "sha256": "a" * 64}
    torch.save(checkpoint, other_head)
    with pytest.raises(AuditInputError, match=r"trained from /models/a.onnx \(sha256 aaaaaaaaaaaa\), but c.yaml starts from /models/b.onnx"):
        check_checkpoint(other_head, "the audited", "c.yaml", forget, {"path": "/models/b.onnx", "sha256": "b" * 64})
    check_checkpoint(other_head, "the audited", "c.yaml", forget, {"path": "/models/moved.onnx", "sha256": "a" * 64})


def test_the_commands_attacker_defaults_are_the_librarys():
    from faceunlearn import audit as library
    from faceunlearn.commands import audit as command

    assert command.RELEARN_LRS == library.RELEARN_LRS and command.RELEARN_STEPS == library.RELEARN_STEPS


def test_the_command_names_the_model_as_every_command_does(monkeypatch, tmp_path):
    from faceunlearn import audit as library
    from faceunlearn.commands import audit as command

    seen = []
    monkeypatch.setattr(library, "audit", lambda config, ckpt, out, *rest, **kw: seen.append((config, ckpt, out)) or [])
    for name in ("--model", "--ckpt_path"):  # --model as in export, embed and check-disjoint; --ckpt_path: the old name
        command.main(["--config", "c.yaml", name, str(tmp_path / "run/checkpoints/last.ckpt")])
    assert [ckpt for _, ckpt, _ in seen] == [str(tmp_path / "run/checkpoints/last.ckpt")] * 2
    assert seen[0][2] == str((tmp_path / "run").resolve() / "audit")
