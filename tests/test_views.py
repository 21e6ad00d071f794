"""Augmented-view dispersion (issue 11 point 2): seeded albumentations views, the view loss, the method."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch

from faceunlearn.data.dataset import model_input
from faceunlearn.data import FaceDataModule
from faceunlearn.data.views import build_view_pipeline
from faceunlearn.losses import view_dispersion_loss
from faceunlearn.methods import Dispersion, HardDispersion

STRONG = [{"HorizontalFlip": {"p": 0.5}}, {"RandomResizedCrop": {"size": [112, 112], "scale": [0.6, 1.0]}},
          {"ColorJitter": {"brightness": 0.3, "contrast": 0.3, "p": 1.0}}]


def _datamodule(root, transforms=STRONG, seed=0):
    datamodule = FaceDataModule(root=str(root), num_forget_identities=4, batch_size=8, images_per_identity=2,
                                batches_per_epoch=3, eval_retain_identities=3, view_transforms=transforms, seed=seed)
    datamodule.setup()
    return datamodule


def _batches(datamodule):
    return [model_input(batch) for batch in datamodule.stream("forget_views")]  # as on the device


def test_views_differ_and_are_seeded(random_packed):
    first, again = _batches(_datamodule(random_packed.root)), _batches(_datamodule(random_packed.root))
    other_seed = _batches(_datamodule(random_packed.root, seed=1))
    for batch, repeat in zip(first, again):
        assert batch["views"].shape == (8, 2, 3, 112, 112) and batch["views"].dtype == torch.float32
        assert torch.equal(batch["views"], repeat["views"])  # same config + seed → same views
        assert not torch.equal(batch["views"][:, 0], batch["views"][:, 1])  # two different draws per image
        assert batch["views"].min() >= -1 and batch["views"].max() <= 1
    assert not all(torch.equal(a["views"], b["views"]) for a, b in zip(first, other_seed))
    # the same P×K batches as the forget stream (same identities), only unmirrored
    plain = [model_input(batch) for batch in _datamodule(random_packed.root).stream("forget")]
    assert all(torch.equal(a["label"], b["label"]) for a, b in zip(first, plain))


def test_default_pipeline_is_a_horizontal_flip(random_packed):
    batch = _batches(_datamodule(random_packed.root, transforms=None))[0]
    image, views = batch["image"], batch["views"]
    for view in (views[:, 0], views[:, 1]):
        same, flipped = (view == image).flatten(1).all(1), (view == image.flip(-1)).flatten(1).all(1)
        assert (same | flipped).all()


def test_bad_transform_is_one_line():
    with pytest.raises(ValueError, match="'Blurr' is not an albumentations transform"):
        build_view_pipeline([{"Blurr": {}}])
    with pytest.raises(ValueError, match=r"^view transform RandomResizedCrop\(\{'scale': 3\}\)"):
        build_view_pipeline([{"RandomResizedCrop": {"scale": 3}}])


@pytest.mark.parametrize("seed", [0, 1])
def test_view_loss_matches_formula(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(6, 10)), rng.normal(size=(6, 10))
    unit = lambda rows: rows / np.linalg.norm(rows, axis=1, keepdims=True)  # noqa: E731
    for margin in (0.0, 0.2):
        expected = np.mean(np.maximum(np.sum(unit(a) * unit(b), axis=1) - margin, 0.0))
        assert view_dispersion_loss(torch.tensor(a), torch.tensor(b), margin).item() == pytest.approx(expected, abs=1e-6)
    same = torch.tensor(a)
    assert view_dispersion_loss(same, same).item() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("method", [Dispersion, HardDispersion])
def test_view_dispersion_trains_with_retention(random_packed, method):
    L.seed_everything(0)
    model = method(num_classes=20, backbone="iresnet_tiny", lr=0.05, view_dispersion=1.0, retention={"distill": 1.0})
    assert model.train_streams == ("forget_views", "retain")
    datamodule = FaceDataModule(root=str(random_packed.root), num_forget_identities=4, batch_size=8, images_per_identity=2,
                                retain_batch_size=8, batches_per_epoch=3, eval_retain_identities=3, view_transforms=STRONG)
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, num_sanity_val_steps=0, limit_val_batches=0,
                        enable_progress_bar=False, enable_model_summary=False)
    model.training_images = datamodule  # what the CLI links from data
    trainer.fit(model, datamodule)
    assert {"train/dispersion", "train/view_dispersion", "train/distill"} <= set(trainer.callback_metrics)
    assert Dispersion(num_classes=3, backbone="iresnet_tiny").train_streams == ("forget",)  # the paper's method by default
