"""End to end on synthetic faces: CosFace learns identities, then Dispersion makes the forget set unretrievable."""

from pathlib import Path

import pytest
import torch

from faceunlearn.data.dataset import model_input
from faceunlearn.callbacks import RetrievalEvaluation
from faceunlearn.cli import cli_main
from faceunlearn.methods import (BoundaryShrink, ContrastiveUnlearning, GradientAscent, HardDispersion, LipschitzUnlearning,
                                 RandomLabeling)

REPO = Path(__file__).resolve().parents[1]


def _run(config, root, out_dir, *extra):
    cli = cli_main([
        "fit", "--config", str(REPO / "configs" / config),
        "--data.root", str(root), "--data.synthetic", "null", "--data.eval_retain_identities", "12",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
        "--trainer.logger.init_args.save_dir", str(out_dir / "logs"),
        "--checkpoint.dirpath", str(out_dir / "checkpoints"),
        # the full-resolution tiny network, not the demo's 56-pixel one: these margins were observed on it
        "--model.init_args.backbone", "iresnet_tiny", *extra,
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
    # the untrained step 0 and the end are what the tests compare (the shipped config skips step 0)
    history = _run("demo_finetune.yaml", synthetic_root, out_dir, "--trainer.max_epochs", "5",
                   "--trainer.check_val_every_n_epoch", "5", "--evaluation.evaluate_at_start", "true")
    return out_dir / "checkpoints/last.ckpt", history


def test_cosface_training_learns_identities(original):
    _, history = original
    # Observed on a 2-core AMD EPYC (OMP_NUM_THREADS=1 / 2), untrained -> 5 epochs (8 until the suite
    # outgrew its budget): forget mAP 0.374 -> 0.816 / 0.815 (+0.44), retain mAP 0.575 -> 0.798 (+0.22).
    # The bounds sit at about half the observed gains; a model that learns nothing gains ~0.
    assert history[-1][1]["forget/mAP"] > history[0][1]["forget/mAP"] + 0.2
    assert history[-1][1]["retain/mAP"] > history[0][1]["retain/mAP"] + 0.1  # open set: unseen identities too


@pytest.mark.slow  # runs in make test-all (CI); left out of make test, which stays under 3 min
def test_dispersion_unlearns_the_forget_set(synthetic_root, original, tmp_path):
    # Hard Dispersion (Eq. 6) ran this 60-step test too (forget mAP kept 0.53 / 0.52, retain 0.95 /
    # 0.87) until the suite outgrew its 3-minute budget; its step is now tested below, like the baselines'.
    checkpoint, original_history = original
    history = _run(
        "demo_disp.yaml", synthetic_root, tmp_path, "--model.init_args.init_weights", str(checkpoint),
        "--data.batches_per_epoch", "20", "--trainer.max_epochs", "2", "--run_files.snapshots", "[]",
        "--trainer.check_val_every_n_epoch", "2",  # step 0 and the end are what it compares
    )
    before, after = history[0][1], history[-1][1]
    # Step 0 = the Original: the same weights. Only the evaluation batches differ (this run also embeds
    # the distractors, so the last batch is larger); on some CPUs/kernels a batch of another shape
    # rounds differently (here a batch of 1 vs 168 moves embeddings by 1.5e-5), which can swap a
    # near-tie in the ranking: ~1e-5 of mAP each, so not an exact comparison. The CS (a mean
    # cosine) moves by float rounding only. Any other start model is off by far more: the Original's
    # epoch-7 checkpoint (of the former 8-epoch Original) scored forget mAP 0.8933 vs 0.8951 (0.8932 vs
    # 0.8941 at 2 threads) and CS
    # 0.4837 vs 0.4796. (Here, at 1 and 2 threads, both are bit-identical.)
    assert before["forget/mAP"] == pytest.approx(original_history[-1][1]["forget/mAP"], abs=5e-4)
    assert before["forget/CS"] == pytest.approx(original_history[-1][1]["forget/CS"], abs=1e-4)
    # Observed on a 2-core AMD EPYC, OMP_NUM_THREADS=1 / 2, 40 steps of the shipped (selected) configs
    # (60 steps and an 8-epoch Original until the suite outgrew its budget: forget kept 0.48, CS drop 0.35):
    # layers 2-4 trained, lambda 0.1, distill 3, view dispersion.
    # The retain benchmark is coarse (a few held-out identities' profile queries) and moved by 0.04
    # between thread counts, so the bounds are relative and leave wide margins.
    forget_kept = after["forget/mAP"] / before["forget/mAP"]  # observed 0.59 / 0.60
    retain_kept = after["retain/mAP"] / before["retain/mAP"]  # observed 1.02 / 1.02
    # forgetting happens: doing nothing keeps 1.0; the bound leaves >= 0.15 of ratio on every observed value
    assert forget_kept < 0.75
    assert after["forget/CS"] < before["forget/CS"] - 0.15  # observed 0.52 -> 0.22 (drop 0.31)
    # retention does not collapse: the paper's recipe on this model keeps ~0.2 of retain mAP (76.9 -> 15.7)
    assert retain_kept > 0.7
    # and it is targeted: the forget set loses relatively at least twice what the held-out identities
    # lose (observed: retain mAP did not fall); a method that degrades every identity alike
    # (the paper's recipe: forget keeps 0.20, retain 0.20) fails here
    assert 1 - forget_kept > 2 * (1 - retain_kept)


# ---------------------------------------------------------------- baselines: one step moves the intended way
# Each step descends (GA: ascends) the very objective it is measured on, with no randomness left, so
# the sign holds to first order. Observed changes (OMP_NUM_THREADS=1 / 2) are far above float noise
# (~1e-6): GA forget CosFace 6.48 -> 22.5 / 6.38 -> 22.0, RL 66.6 -> 41.1 / 66.6 -> 39.6,
# BS 50.1 -> 31.1 / 50.1 -> 31.8, LU 0.9793 -> 0.9785 / 0.9774 -> 0.9765 (-8.6e-4),
# CU 0.18241 -> 0.18003 / 0.18240 -> 0.18009 (-2.3e-3).
@pytest.fixture(scope="module")
def batches(synthetic_root):
    from faceunlearn.data import FaceDataModule

    data = FaceDataModule(str(synthetic_root), num_forget_identities=10, batch_size=32, images_per_identity=4)
    data.setup("fit")
    return {name: model_input(next(iter(data.stream(name)))) for name in ("forget", "retain")}  # as on the device


def _method(cls, checkpoint, **kwargs):
    model = cls(num_classes=32, backbone="iresnet_tiny", init_weights=str(checkpoint), lr=0.01, **kwargs)
    model.train()  # applies the BatchNorm policy (fixed statistics)
    return model


def _step(model, batch, lr=0.01):
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr)
    optimizer.zero_grad()
    torch.stack(list(model.loss_terms(batch).values())).sum().backward()
    optimizer.step()


def _forget_cosface(model, batch):
    with torch.no_grad():
        return float(model.cosface(batch["forget"]))


def test_gradient_ascent_step_raises_forget_cosface(original, batches):
    model = _method(GradientAscent, original[0])
    before = _forget_cosface(model, batches)
    _step(model, batches, lr=0.001)
    assert _forget_cosface(model, batches) > before


def test_random_labeling_step_moves_toward_the_random_labels(original, batches):
    model = _method(RandomLabeling, original[0], label_seed=3)
    with torch.no_grad():
        before = float(model.loss_terms(batches)["random_label"])  # same global step -> same labels
    _step(model, batches)
    with torch.no_grad():
        assert float(model.loss_terms(batches)["random_label"]) < before


def test_boundary_shrink_flips_most_labels_and_trains_toward_them(original, batches):
    model = _method(BoundaryShrink, original[0], epsilon=0.1)
    images, labels = batches["forget"]["image"], batches["forget"]["label"]
    with torch.no_grad():
        # clean: mostly right (observed 30/32 = 0.9375 at 1 and 2 threads; "> 0.9" failed on 2 more
        # misclassified images, so >= 25 of 32 must be right; chance is 1/32)
        assert float((model.head.cosine(model(images)).argmax(1) == labels).float().mean()) > 0.75
    changed = []
    model.log = lambda name, value, **kwargs: changed.append(float(value))  # captures train/label_changed
    with torch.no_grad():
        before = float(model.loss_terms(batches)["boundary_shrink"])
    assert changed[0] > 0.5  # after one FGSM step most nearest-boundary labels differ from the identity (observed 1.0)
    _step(model, batches, lr=0.001)
    with torch.no_grad():
        assert float(model.loss_terms(batches)["boundary_shrink"]) < before  # same attack: the copy is frozen


def test_lipschitz_step_lowers_the_ratio_to_the_noisy_targets(original, batches):
    """The noisy passes carry no gradient (official LU), so a step shrinks ‖f(x) − f_old(x+δ)‖/‖δ‖:
    the distance to the noisy embeddings of the model that made the step. The true ratio, re-measured
    with the *new* model's noisy passes on held-out noise, is not guaranteed to fall: on this 32-class
    model it rose 0.982 → 1.043 over 20 steps at lr 0.01; on the demo's Original it fell 0.725 → 0.691
    over 7 steps (and steadily at lr 1e-3). docs/methods.md reports this."""
    from faceunlearn.losses import gaussian_noise, lipschitz_loss

    model = _method(LipschitzUnlearning, original[0], noise_draws=3, noise_std=0.1)
    images = batches["forget"]["image"]
    noise, norms = gaussian_noise((3, *images.shape), 0.1, torch.Generator().manual_seed(0))
    with torch.no_grad():
        noisy_before = model((images[None] + noise).flatten(0, 1)).view(3, images.shape[0], -1)
        before = float(lipschitz_loss(model(images), noisy_before, norms))
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.001)
    lipschitz_loss(model(images), noisy_before, norms).backward()
    optimizer.step()
    with torch.no_grad():
        assert float(lipschitz_loss(model(images), noisy_before, norms)) < before


def test_hard_dispersion_step_lowers_the_hardest_positive_similarity(original, batches):
    """Eq. 6 descends: one step lowers the mean cosine of each forget anchor to its closest
    same-identity embedding (observed 0.5978 -> 0.5945 at 2 threads, a change ~3000x float noise)."""
    from faceunlearn.losses import hard_dispersion_loss

    model = _method(HardDispersion, original[0])
    images, labels = batches["forget"]["image"], batches["forget"]["label"]
    with torch.no_grad():
        before = float(model.loss_terms(batches)["dispersion"])
        assert before == pytest.approx(float(hard_dispersion_loss(model(images), labels, 0.0)), abs=1e-6)
    _step(model, batches, lr=0.001)
    with torch.no_grad():
        assert float(model.loss_terms(batches)["dispersion"]) < before


def test_contrastive_step_lowers_the_contrast(original, batches):
    model = _method(ContrastiveUnlearning, original[0])
    with torch.no_grad():
        before = float(model.loss_terms(batches)["contrastive"])
    _step(model, batches)
    with torch.no_grad():
        assert float(model.loss_terms(batches)["contrastive"]) < before


def test_dispersion_with_the_rank_terms_composes_them_and_one_step_lowers_them(original, batches):
    """rank_confusion and old_gallery are the losses of faceunlearn.losses on the forget batch, the retain
    batch's people as negatives (the old gallery's from the frozen start model), beside Eq. 5 and distillation."""
    from faceunlearn.losses import dispersion_loss, old_gallery_loss, rank_confusion_loss
    from faceunlearn.methods import Dispersion

    model = _method(Dispersion, original[0], rank_confusion=2.0, old_gallery=0.5, retention={"distill": 1.0})
    assert model.train_streams == ("forget", "retain") and model.start_model is not None
    forget, retain = batches["forget"], batches["retain"]
    with torch.no_grad():
        terms = model.loss_terms(batches)
        z, others = model(forget["image"]), model(retain["image"])
        start = model.start_embeddings(forget["image"])
        start_others = model.start_embeddings(retain["image"])
    assert set(terms) == {"dispersion", "rank_confusion", "old_gallery"}
    assert float(terms["dispersion"]) == pytest.approx(float(dispersion_loss(z, forget["label"])), abs=1e-6)
    assert float(terms["rank_confusion"]) == pytest.approx(2.0 * float(rank_confusion_loss(z, forget["label"], others)), abs=1e-6)
    assert float(terms["old_gallery"]) == pytest.approx(0.5 * float(old_gallery_loss(z, start, forget["label"], start_others)), abs=1e-6)
    assert float(terms["rank_confusion"]) > 0 and float(terms["old_gallery"]) > 0  # the Original still ranks them first
    _step(model, batches, lr=0.001)
    with torch.no_grad():
        after = model.loss_terms(batches)
    assert float(after["rank_confusion"]) < float(terms["rank_confusion"])
    assert float(after["old_gallery"]) < float(terms["old_gallery"])
    # rank_margin reaches both terms as their δ
    margined = _method(Dispersion, original[0], rank_confusion=2.0, old_gallery=0.5, rank_margin=0.3, retention={"distill": 1.0})
    with torch.no_grad():
        terms = margined.loss_terms(batches)
        z, others = margined(forget["image"]), margined(retain["image"])
        start = margined.start_embeddings(forget["image"])
        start_others = margined.start_embeddings(retain["image"])
    assert float(terms["rank_confusion"]) == pytest.approx(2.0 * float(rank_confusion_loss(z, forget["label"], others, 0.3)), abs=1e-6)
    assert float(terms["old_gallery"]) == pytest.approx(0.5 * float(old_gallery_loss(z, start, forget["label"], start_others, 0.3)), abs=1e-6)
    with pytest.raises(ValueError, match="rank_margin must be >= 0"):
        Dispersion(num_classes=5, backbone="iresnet_tiny", rank_margin=-0.1)
