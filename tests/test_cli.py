"""The CLI: configs parse, runs write logs and checkpoints, and resuming replays the same run."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from faceunlearn.callbacks import RetrievalEvaluation
from faceunlearn.callbacks.retrieval_evaluation import START_RESULTS_TOLERANCE
from faceunlearn.cli import cli_main

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))
REAL_DATA_CONFIGS = [config for config in CONFIGS if not config.name.startswith("demo_")]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.name)
def test_print_config(config, tmp_path, monkeypatch, capsys):
    """--print_config needs no dataset, no checkpoint and no FACEUNLEARN_* variables."""
    monkeypatch.chdir(tmp_path)
    for variable in ("FACEUNLEARN_DATA", "FACEUNLEARN_WEIGHTS"):
        monkeypatch.delenv(variable, raising=False)
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["fit", "--config", str(config), "--print_config"])
    assert exit_info.value.code in (0, None)
    printed = capsys.readouterr().out
    assert "class_path: faceunlearn.methods." in printed and "benchmarks:" in printed


def _leaves(node, prefix="") -> dict:
    """Nested mappings as {"a.b.c": leaf}."""
    if not isinstance(node, dict) or not node:
        return {prefix: node}
    return {key: leaf for name, child in node.items() for key, leaf in _leaves(child, f"{prefix}{name}.").items()} \
        if prefix or node else {}


def _printed(capsys, *configs) -> str:
    with pytest.raises(SystemExit):
        cli_main(["fit", *[word for config in configs for word in ("--config", str(config))], "--print_config"])
    return capsys.readouterr().out


def test_protocol_and_method_files_compose(tmp_path, monkeypatch, capsys):
    """A method config includes its protocol file (trainer + data + evaluation); the protocol also
    composes on the command line; no section is repeated across configs."""
    monkeypatch.chdir(tmp_path)
    for protocol, method in (("celeba", "disp_celeba"), ("demo", "demo_disp"), ("sface_glint", "sface_glint_disp")):
        one_file = _printed(capsys, REPO / f"configs/{method}.yaml")
        two_files = _printed(capsys, REPO / f"configs/protocols/{protocol}.yaml", REPO / f"configs/{method}.yaml")
        assert one_file == two_files and f"name: {method}\n" in one_file
    assert "max_distractors: 75000" in one_file or "max_distractors: 75000" in _printed(capsys, REPO / "configs/disp_celeba.yaml")
    including = [config for config in CONFIGS if "\nconfig: protocols/" in config.read_text()]
    assert len(including) == 7 + 8 + 10  # the CelebA, demo and real-faces unlearning configs (the D_r-only control and the first selection too)
    sections = [(key, yaml.safe_dump(value)) for config in CONFIGS
                for key, value in (yaml.safe_load(config.read_text()) or {}).items() if isinstance(value, dict)]  # a file name (data: protocols/x.yaml) is how sections are shared
    repeated = {section for section in sections if sections.count(section) > 1}
    assert not repeated, f"sections repeated across configs: {sorted(repeated)}"


def test_tools_read_configs_through_the_clis_parser_and_list_their_files(tmp_path, capsys):
    """check-disjoint, the sweep's digest and tune's best.yaml read a config with the CLI's own parser (no composer
    of their own): the same values as --print_config, and the files it was composed from."""
    from faceunlearn.cli import ConfigError, config_files, parse_config, plain

    config = REPO / "configs/sface_glint_disp.yaml"
    parsed = parse_config(config).config
    printed = yaml.safe_load(_printed(capsys, config))
    data = plain(parsed.data)  # (+ the subsets the CLI links from the benchmarks, which --print_config leaves out)
    assert {key: data[key] for key in printed["data"]} == printed["data"]
    assert plain(parsed.evaluation)["benchmarks"] == printed["evaluation"]["benchmarks"]
    assert [path.relative_to(REPO).as_posix() for path in config_files(parsed)] == [
        "configs/protocols/sface_glint.yaml", "configs/sface_glint_disp.yaml", "configs/protocols/sface_glint_trainer.yaml",
        "configs/methods/sface_disp_selected.yaml", "configs/protocols/sface_glint_data.yaml", "configs/protocols/sface_glint_evaluation.yaml"]
    # a dotted key overrides one key of the included section; the rest of that section stays the protocol's
    (tmp_path / "protocol.yaml").write_text("trainer: {max_epochs: 4, devices: 1}\n")
    (tmp_path / "method.yaml").write_text("config: protocol.yaml\ntrainer.max_epochs: 2\n")
    trainer = parse_config(tmp_path / "method.yaml", before=["--model", "faceunlearn.methods.Dispersion"]).config.trainer
    assert (trainer.max_epochs, trainer.devices) == (2, 1)
    with pytest.raises(ConfigError, match="does not exist"):
        parse_config(tmp_path / "missing.yaml")


def test_real_data_configs_say_what_is_missing(tmp_path, monkeypatch, capsys):
    """No datasets yet: the error names the variable, then the `faceunlearn prepare` command to run."""
    from faceunlearn.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FACEUNLEARN_DATA", raising=False)
    with pytest.raises(SystemExit, match=r"FACEUNLEARN_DATA .*not set.*--data.root PATH"):
        main(["fit", "--config", str(REPO / "configs/disp_celeba.yaml")])
    monkeypatch.setenv("FACEUNLEARN_DATA", str(tmp_path / "data"))
    with pytest.raises(SystemExit, match=r"faceunlearn prepare celeba --root RAW --out .*data/celeba`\.$"):
        main(["fit", "--config", str(REPO / "configs/disp_celeba.yaml")])
    (tmp_path / "data/celeba").mkdir(parents=True)
    (tmp_path / "data/celeba/meta.json").write_text('{"num_classes": 5}')
    with pytest.raises(SystemExit, match=r"faceunlearn prepare cfp --root RAW --out .*data/cfp"):
        main(["fit", "--config", str(REPO / "configs/disp_celeba.yaml")])
    for name in ("cfp", "ijbb", "vggface2"):
        (tmp_path / "data" / name).mkdir()
        (tmp_path / "data" / name / "meta.json").write_text("{}")
    with pytest.raises(SystemExit, match=r"weights file 'checkpoints/finetune_celeba/last.ckpt' does not exist"):
        main(["fit", "--config", str(REPO / "configs/disp_celeba.yaml")])


@pytest.mark.slow
def test_lightning_console_script_runs_our_cli_without_faiss_insightface_or_onnxruntime():
    import os

    script = Path(sys.executable).parent / "lightning"
    # -X importtime lists every module the command imported (on stderr): fit must start without the heavy extras
    result = subprocess.run([str(script), "fit", "--help"], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"})
    assert result.returncode == 0 and "--evaluation.benchmarks" in result.stdout
    imported = {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert "faceunlearn" in imported and "lightning" in imported  # the listing works
    assert not imported & {"faiss", "insightface", "onnxruntime", "onnx2torch", "optuna"}


def _fit(tmp_path, random_packed, name, epochs, ckpt_path=None, extra=(), command="fit"):
    args = [
        command, "--config", str(REPO / "configs/demo_disp.yaml"),
        "--model.init_args.init_weights", "null",
        "--data.root", str(random_packed.root), "--data.synthetic", "null",
        "--data.num_forget_identities", "8", "--data.batch_size", "16", "--data.batches_per_epoch", "3",
        "--data.eval_retain_identities", "4",
        "--trainer.max_epochs", str(epochs), "--trainer.enable_progress_bar", "false",
        "--trainer.check_val_every_n_epoch", "1",  # every epoch (the shipped demo config evaluates at its end only)
        "--trainer.logger.init_args.save_dir", str(tmp_path / "logs"),
        "--trainer.logger.init_args.name", name,
        "--checkpoint.dirpath", str(tmp_path / "ckpt" / name),
    ]
    if ckpt_path:
        args += ["--ckpt_path", str(ckpt_path)]
    return cli_main([*args, *extra])


@pytest.mark.slow  # runs in make test-all (CI); left out of make test, which stays under 3 min
def test_intermediate_evaluations_compute_the_forget_benchmarks_only_with_the_same_numbers(tmp_path, random_packed):
    """Step 0 and the end evaluate everything; in between only the forget benchmarks' base variants,
    each number equal to the one a run evaluating everything every epoch gets. The lean run validates
    every 2nd of 3 epochs: Lightning alone would skip the end, which is the final evaluation."""
    lean = _fit(tmp_path, random_packed, "lean", epochs=3, extra=["--trainer.check_val_every_n_epoch", "2"])
    lean = RetrievalEvaluation.of(lean.trainer).history
    everything = ["--evaluation.intermediate_benchmarks", "[forget, retain]", "--evaluation.intermediate_distractors", "true"]
    full = RetrievalEvaluation.of(_fit(tmp_path, random_packed, "full", epochs=3, extra=everything).trainer).history
    assert [step for step, _ in lean] == [0, 6, 9] and [step for step, _ in full] == [0, 3, 6, 9]
    assert lean[0][1] == full[0][1] and lean[-1][1] == full[-1][1]
    assert "retain/mAP" in lean[-1][1] and "forget_extended/mAP" in lean[-1][1]
    (_, lean_metrics), full_metrics = lean[1], full[2][1]
    assert {key.partition("/")[0] for key in lean_metrics} == {"forget"}
    # the same images, embedded in other batches: equal up to float rounding (another CPU may block differently)
    assert lean_metrics == pytest.approx({key: full_metrics[key] for key in lean_metrics}, abs=1e-4)
    assert "retain/mAP" in full_metrics and "forget_extended/mAP" in full_metrics


def test_start_results_replace_the_step0_evaluation_and_must_match_the_start_model(tmp_path, random_packed):
    import csv

    original = tmp_path / "original.csv"
    _fit(tmp_path, random_packed, "original", epochs=1, command="validate", extra=["--evaluation.results_csv", str(original)])
    with original.open() as handle:
        rows = list(csv.DictReader(handle))
    expected = {f"{row['benchmark']}/{row['metric']}": float(row["value"]) for row in rows}
    fit = _fit(tmp_path, random_packed, "shared", epochs=1, extra=["--evaluation.start_results", str(original)])
    start = RetrievalEvaluation.of(fit.trainer).history[0][1]
    assert start.keys() == expected.keys() and "retain/mAP" in start
    assert all(start[key] == value for key, value in expected.items() if not key.startswith("forget/"))  # copied
    assert start == pytest.approx(expected, abs=START_RESULTS_TOLERANCE)  # the forget benchmark recomputed, checked
    for row in rows:
        row["value"] = float(row["value"]) + (0.2 if row["benchmark"] == "forget" and row["metric"] == "mAP" else 0)
    wrong = tmp_path / "wrong.csv"
    with wrong.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(ValueError, match="not this run's start model: forget/mAP"):
        _fit(tmp_path, random_packed, "wrong", epochs=1, extra=["--evaluation.start_results", str(wrong)])


@pytest.mark.slow  # runs in make test-all (CI); left out of make test, which stays under 3 min
def test_fit_writes_outputs_and_resume_is_exact(tmp_path, random_packed):
    straight = _fit(tmp_path, random_packed, "straight", epochs=2)
    assert (tmp_path / "ckpt/straight/last.ckpt").is_file()
    assert list((tmp_path / "logs/straight/version_0").glob("events.out.tfevents.*"))
    history = RetrievalEvaluation.of(straight.trainer).history
    assert [step for step, _ in history] == [0, 3, 6]  # step 0 (start model), then every epoch
    assert {"forget/mAP", "forget/R@1", "forget/CS", "forget/acc_mean", "retain/mAP", "retain/CS"} <= set(history[0][1])
    # from scratch the step-0 head is random: no head accuracy until the head has trained
    assert "forget/acc" not in history[0][1] and "forget/acc" in history[1][1]

    _fit(tmp_path, random_packed, "interrupted", epochs=1)
    resumed = _fit(tmp_path, random_packed, "interrupted", epochs=2, ckpt_path=tmp_path / "ckpt/interrupted/last.ckpt")
    assert resumed.trainer.global_step == 6
    for (key, a), b in zip(straight.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), key


def test_checkpoints_record_the_forget_set_and_a_resume_with_another_is_refused(tmp_path, random_packed):
    from faceunlearn.models.weights import CheckpointMismatchError

    fit = _fit(tmp_path, random_packed, "forget", epochs=1)
    checkpoint = torch.load(tmp_path / "ckpt/forget/last.ckpt", weights_only=True)
    recorded = checkpoint["FaceDataModule"]["forget_identities"]
    assert recorded == sorted(int(i) for i in fit.datamodule.forget_identity_ids) and len(recorded) == 8
    with pytest.raises(CheckpointMismatchError, match=r"trained to forget identities \[.*\], but this run's data \(data.seed 1"):
        _fit(tmp_path, random_packed, "forget", epochs=2, ckpt_path=tmp_path / "ckpt/forget/last.ckpt",
             extra=["--data.seed", "1"])


def test_help_lists_every_command_and_predict_is_refused(capsys):
    from faceunlearn.cli import COMMANDS, TRAINER_COMMANDS, main

    main(["--help"])
    text = capsys.readouterr().out
    for word in [*COMMANDS, *TRAINER_COMMANDS]:
        assert f"\n  {word} " in text, word
    assert "predict" not in text
    import importlib.util

    for word, (module, _) in COMMANDS.items():  # each names a module with a main(argv), found without importing it
        spec = importlib.util.find_spec(module)
        assert spec is not None and "def main(" in Path(spec.origin).read_text(), word
    with pytest.raises(SystemExit):
        main(["predict", "--config", str(Path(__file__).resolve().parents[1] / "configs/demo_disp.yaml")])
    assert "invalid choice: 'predict'" in capsys.readouterr().err


def test_the_commands_live_together_in_faceunlearn_commands_and_import_light():
    import pkgutil

    import faceunlearn.commands
    from faceunlearn.cli import COMMANDS

    modules = sorted(f"faceunlearn.commands.{info.name}" for info in pkgutil.iter_modules(faceunlearn.commands.__path__))
    assert sorted(module for module, _ in COMMANDS.values()) == modules  # one module per command, nothing else there
    heavy = ("torch", "lightning", "onnx", "onnxruntime", "cv2", "insightface", "optuna", "matplotlib", "faiss")
    code = (f"import importlib, sys; [importlib.import_module(m) for m in {modules!r}]; "
            f"print(sorted(m for m in {heavy!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"  # heavy libraries load only when a command's main() runs


def test_checkpointing_can_be_switched_off(tmp_path, random_packed):
    from lightning.pytorch.callbacks import ModelCheckpoint

    def trainer(*extra):
        return cli_main(["--config", str(REPO / "configs/demo_disp.yaml"), "--model.init_args.init_weights", "null",
                         "--data.root", str(random_packed.root), "--data.synthetic", "null",
                         "--trainer.logger.init_args.save_dir", str(tmp_path / "logs"), *extra], run=False).trainer

    assert any(isinstance(callback, ModelCheckpoint) for callback in trainer().callbacks)
    off = trainer("--trainer.enable_checkpointing", "false")
    assert not any(isinstance(callback, ModelCheckpoint) for callback in off.callbacks)


def test_the_own_model_path_runs_the_real_faces_recipe():
    """`faceunlearn unlearn` (configs/own_disp.yaml) runs what configs/sface_glint_disp.yaml was selected as: the same
    method file and the same gradient clipping (a trainer setting, so written in both configs: they must not drift)."""
    from faceunlearn.cli import parse_config, plain

    own, real = (parse_config(REPO / f"configs/{name}.yaml").config for name in ("own_disp", "sface_glint_disp"))
    assert plain(own.model) == plain(real.model)
    assert own.trainer.gradient_clip_val == real.trainer.gradient_clip_val == 5.0
