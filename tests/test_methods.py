"""The base module's contracts: frozen BatchNorm statistics, frozen parameters, non-finite losses."""

import lightning as L
import pytest
import torch

from faceunlearn.data import FaceDataModule
from faceunlearn.methods import Dispersion, HardDispersion


def _fit(model, root, steps=2):
    datamodule = FaceDataModule(
        root=str(root), num_forget_identities=4, batch_size=8, images_per_identity=4,
        batches_per_epoch=steps, eval_retain_identities=3,
    )
    trainer = L.Trainer(
        max_epochs=1, logger=False, enable_checkpointing=False, num_sanity_val_steps=0, limit_val_batches=0,
        enable_progress_bar=False, enable_model_summary=False,
    )
    model.training_images = datamodule  # what the CLI links from data
    trainer.fit(model, datamodule)


def _snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("freeze_bn_stats", [True, False])
def test_batchnorm_statistics_policy(random_packed, freeze_bn_stats):
    model = Dispersion(num_classes=20, backbone="iresnet_tiny", freeze_bn_stats=freeze_bn_stats)
    before = _snapshot(model)
    _fit(model, random_packed.root)
    after = model.state_dict()
    assert not torch.equal(before["backbone.layer1.0.conv1.weight"], after["backbone.layer1.0.conv1.weight"])
    stats_kept = torch.equal(before["backbone.bn1.running_mean"], after["backbone.bn1.running_mean"])
    assert stats_kept == freeze_bn_stats


def test_frozen_parameters_do_not_move(random_packed):
    model = HardDispersion(num_classes=20, backbone="iresnet_tiny", freeze=["head", "backbone.layer1"], weight_decay=0.1)
    before = _snapshot(model)
    _fit(model, random_packed.root)
    after = model.state_dict()
    assert torch.equal(before["head.weight"], after["head.weight"])
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("backbone.layer1."))
    assert not torch.equal(before["backbone.layer2.0.conv1.weight"], after["backbone.layer2.0.conv1.weight"])


def test_non_finite_loss_stops_with_the_terms(random_packed):
    class Exploding(Dispersion):
        def loss_terms(self, batch):
            return {"dispersion": super().loss_terms(batch)["dispersion"] * float("nan")}

    with pytest.raises(FloatingPointError, match=r"non-finite loss at step 0 \(dispersion=nan\)"):
        _fit(Exploding(num_classes=20, backbone="iresnet_tiny"), random_packed.root)
