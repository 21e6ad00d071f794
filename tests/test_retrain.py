"""faceunlearn retrain: the Original's recipe with the Retrain class, never over the Original's checkpoints;
the retrain stream holds no image of a forget identity."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from faceunlearn.commands.retrain import retrain_args
from faceunlearn.data import FaceDataModule

REPO = Path(__file__).resolve().parents[1]
FINETUNE = str(REPO / "configs/demo_finetune.yaml")
SHIPPED_EPOCHS = yaml.safe_load(Path(FINETUNE).read_text())["trainer"]["max_epochs"]  # the Original's recipe


def test_retrain_arguments():
    args = retrain_args(["--config", FINETUNE, "--data.seed", "3"])
    assert args[0] == "fit" and args[args.index("--model.class_path") + 1] == "faceunlearn.methods.Retrain"
    assert args[args.index("--checkpoint.dirpath") + 1] == str(Path("checkpoints/retrain/demo_finetune/seed3"))
    mine = retrain_args(["--config", FINETUNE, "--checkpoint.dirpath", "elsewhere"])
    assert mine.count("--checkpoint.dirpath") == 1  # the user's choice is kept
    with pytest.raises(SystemExit, match="--config"):
        retrain_args(["--data.seed", "3"])


@pytest.mark.slow
def test_retrain_command_config():
    out = subprocess.run([sys.executable, "-m", "faceunlearn.cli", "retrain", "--config", FINETUNE, "--data.seed", "2",
                          "--print_config"], capture_output=True, text=True, cwd=REPO, check=True).stdout
    config = yaml.safe_load(out)
    assert config["model"]["class_path"] == "faceunlearn.methods.Retrain"
    assert config["model"]["init_args"]["optimizer"] == "adamw" and config["trainer"]["max_epochs"] == SHIPPED_EPOCHS  # the recipe
    assert config["checkpoint"]["dirpath"] == "checkpoints/retrain/demo_finetune/seed2" and config["data"]["seed"] == 2


def test_the_retrain_stream_has_no_forget_image(random_packed):
    data = FaceDataModule(root=str(random_packed.root), num_forget_identities=5, seed=1, train_batch_size=8, batch_size=12,
                          eval_retain_identities=4)
    data.setup("fit")
    labels = np.concatenate([batch["label"].numpy() for batch in data.stream("retrain")])
    assert not np.isin(labels, data.forget_identity_ids).any()
    assert len(data.rows["retain"]) == len(data.rows["train"]) - len(data.rows["forget"])
    assert len(labels) == len(data.rows["retain"]) // 8 * 8  # full batches, as the Original's train stream
    assert set(labels.tolist()) == set(np.setdiff1d(np.arange(20), data.forget_identity_ids).tolist())
