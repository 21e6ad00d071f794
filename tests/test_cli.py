"""The CLI: configs parse, runs write logs and checkpoints, and resuming replays the same run."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from faceunlearn.callbacks import RetrievalEvaluation
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


def _printed(capsys, *configs) -> str:
    with pytest.raises(SystemExit):
        cli_main(["fit", *[word for config in configs for word in ("--config", str(config))], "--print_config"])
    return capsys.readouterr().out


def test_protocol_and_method_files_compose(tmp_path, monkeypatch, capsys):
    """The CelebA configs share one data and one evaluation file; the protocol file composes with a method file."""
    monkeypatch.chdir(tmp_path)
    one_file = _printed(capsys, REPO / "configs/disp_celeba.yaml")
    two_files = _printed(capsys, REPO / "configs/protocols/celeba.yaml", REPO / "configs/disp_celeba.yaml")
    assert one_file == two_files and "max_distractors: 75000" in one_file
    sections = {config.name: config.read_text() for config in CONFIGS if config.name.endswith("_celeba.yaml")
                and config.name != "finetune_celeba.yaml"}
    assert len(sections) == 7
    assert all("data: protocols/celeba_data.yaml" in text and "evaluation: protocols/celeba_evaluation.yaml" in text
               for text in sections.values())  # no config repeats the protocol's sections


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


def _fit(tmp_path, random_packed, name, epochs, ckpt_path=None):
    args = [
        "fit", "--config", str(REPO / "configs/demo_disp.yaml"),
        "--model.init_args.init_weights", "null",
        "--data.root", str(random_packed.root), "--data.synthetic", "null",
        "--data.num_forget_identities", "8", "--data.batch_size", "16", "--data.batches_per_epoch", "3",
        "--data.eval_retain_identities", "4",
        "--trainer.max_epochs", str(epochs), "--trainer.enable_progress_bar", "false",
        "--trainer.logger.init_args.save_dir", str(tmp_path / "logs"),
        "--trainer.logger.init_args.name", name,
        "--checkpoint.dirpath", str(tmp_path / "ckpt" / name),
    ]
    if ckpt_path:
        args += ["--ckpt_path", str(ckpt_path)]
    return cli_main(args)


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
