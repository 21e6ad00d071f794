"""End to end on synthetic faces: CosFace learns identities, then Dispersion makes the forget set unretrievable."""

from pathlib import Path

import pytest

from faceunlearn.callbacks import RetrievalEvaluation
from faceunlearn.cli import cli_main

REPO = Path(__file__).resolve().parents[1]


def _run(config, root, out_dir, *extra):
    cli = cli_main([
        "fit", "--config", str(REPO / "configs" / config),
        "--data.root", str(root), "--data.synthetic", "null", "--data.eval_retain_identities", "12",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
        "--trainer.logger.init_args.save_dir", str(out_dir / "logs"),
        "--checkpoint.dirpath", str(out_dir / "checkpoints"), *extra,
    ])
    return RetrievalEvaluation.of(cli.trainer).history


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory):
    from faceunlearn.data.synthetic import build_synthetic_dataset

    root = tmp_path_factory.mktemp("synthetic") / "faces"
    build_synthetic_dataset(
        root, num_train_identities=32, images_per_train_identity=16, num_holdout_identities=12,
        holdout_frontal=4, holdout_profile=2, num_distractor_identities=8, images_per_distractor=2, seed=0,
    )
    return root


@pytest.fixture(scope="module")
def original(synthetic_root, tmp_path_factory):
    """The Original model: CosFace training on the 32 training identities."""
    out_dir = tmp_path_factory.mktemp("original")
    history = _run("demo_finetune.yaml", synthetic_root, out_dir, "--trainer.max_epochs", "8")
    return out_dir / "checkpoints/last.ckpt", history


def test_cosface_training_learns_identities(original):
    _, history = original
    assert history[-1][1]["forget/mAP"] > history[0][1]["forget/mAP"] + 0.2
    assert history[-1][1]["retain/mAP"] > history[0][1]["retain/mAP"] + 0.1  # open set: unseen identities too


@pytest.mark.parametrize("method_config", ["demo_disp.yaml", "demo_harddisp.yaml"])
def test_dispersion_unlearns_the_forget_set(synthetic_root, original, tmp_path, method_config):
    checkpoint, original_history = original
    history = _run(
        method_config, synthetic_root, tmp_path, "--model.init_args.init_weights", str(checkpoint),
        "--data.batches_per_epoch", "30", "--trainer.max_epochs", "2",
    )
    before, after = history[0][1], history[-1][1]
    assert before["forget/mAP"] == pytest.approx(original_history[-1][1]["forget/mAP"], abs=1e-6)  # step 0 = Original
    assert after["forget/mAP"] < 0.6 * before["forget/mAP"]
    assert after["forget/CS"] < before["forget/CS"] - 0.2
    assert after["retain/mAP"] > before["retain/mAP"] - 0.1
