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


def test_shrink_and_perturb_is_its_formula_seeded_and_leaves_frozen_tensors():
    from faceunlearn.methods.shrink_perturb import shrink_and_perturb

    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 2))
    net[2].weight.requires_grad_(False)
    before = {name: tensor.clone() for name, tensor in net.state_dict().items()}
    shrink_and_perturb(net, shrink=0.8, noise=0.1, seed=3)
    generator = torch.Generator().manual_seed(3)
    for name, parameter in sorted(net.named_parameters()):
        if not parameter.requires_grad:
            assert torch.equal(parameter, before[name])
            continue
        draw = torch.randn(parameter.shape, generator=generator)
        want = 0.8 * before[name] + 0.1 * before[name].square().mean().sqrt() * draw
        assert torch.allclose(parameter, want, atol=1e-6), name
    assert torch.equal(net[1].running_mean, before["1.running_mean"])  # buffers are not parameters
    again = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3), torch.nn.Linear(3, 2))
    again.load_state_dict(before)
    again[2].weight.requires_grad_(False)
    shrink_and_perturb(again, shrink=0.8, noise=0.1, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), again.state_dict().values()))
    with pytest.raises(ValueError, match="shrink must be in"):
        shrink_and_perturb(net, shrink=0.0)
