"""SalUn weight saliency: global top-γ masks of |Σ ∇ L_forget|, and masked-out weights that never move."""

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn

from faceunlearn.data.dataset import model_input
from faceunlearn.data import FaceDataModule
from faceunlearn.methods import Dispersion
from faceunlearn.methods.saliency import (
    cfga_loss,
    make_saliency_loss,
    pack_mask,
    saliency_masks,
    saliency_scores,
    unpack_mask,
)
from faceunlearn.models import CosFaceHead


def _datamodule(root, steps=3, **kwargs):
    return FaceDataModule(
        root=str(root), num_forget_identities=4, batch_size=8, images_per_identity=4,
        batches_per_epoch=steps, eval_retain_identities=3, **kwargs,
    )


class TinyNet(nn.Module):
    """A linear encoder with BatchNorm and a CosFace head; the last layer is frozen."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.Linear(5, 4))
        self.head = CosFaceHead(4, 3, scale=8.0, margin=0.2)
        self.body[2].bias.requires_grad_(False)

    def forward(self, x):
        return self.body(x)


def _tiny_batches(generator, count=3, size=5):
    return [{"image": torch.randn(size, 6, generator=generator), "label": torch.randint(0, 3, (size,), generator=generator)}
            for _ in range(count)]


def _brute_force_top(flat_scores, k):
    """Indices of the k largest scores, ties to the lower index (a Python sort)."""
    order = sorted(range(len(flat_scores)), key=lambda i: (-flat_scores[i], i))
    return set(order[:k])


def test_scores_are_abs_of_summed_gradient_and_leave_no_trace():
    generator = torch.Generator().manual_seed(0)
    net, batches = TinyNet(), _tiny_batches(generator)
    net.train()
    net.body[1].eval()
    modes = [m.training for m in net.modules()]
    stats = net.body[1].running_mean.clone()
    scores = saliency_scores(net, batches, cfga_loss)

    assert set(scores) == {"body.0.weight", "body.0.bias", "body.1.weight", "body.1.bias", "body.2.weight", "head.weight"}
    assert all(p.grad is None for p in net.parameters())
    assert [m.training for m in net.modules()] == modes
    assert torch.equal(net.body[1].running_mean, stats)

    # Brute force: per-batch gradients in eval mode, summed, then |·| (not Σ|·|).
    net.eval()
    params = dict(net.named_parameters())
    total = {name: torch.zeros_like(params[name]) for name in scores}
    for batch in batches:
        net.zero_grad()
        (-net.head(net(batch["image"]), batch["label"])).backward()
        for name in total:
            total[name] += params[name].grad
    for name in scores:
        torch.testing.assert_close(scores[name], total[name].abs(), rtol=1e-5, atol=1e-7)
    some = "body.0.weight"
    assert not torch.allclose(scores[some], sum(
        torch.autograd.grad(cfga_loss(net, b), params[some])[0].abs() for b in batches))  # it is |Σ|, not Σ|·|


@pytest.mark.parametrize("fraction", [0.5, 0.1, 0.37, 0.999, 1.0])
def test_masks_keep_exactly_round_gamma_n_ranked_globally(fraction):
    generator = torch.Generator().manual_seed(1)
    scores = saliency_scores(TinyNet(), _tiny_batches(generator), cfga_loss)
    masks = saliency_masks(scores, fraction)
    flat_scores = torch.cat([s.reshape(-1) for s in scores.values()]).tolist()
    flat_mask = torch.cat([m.reshape(-1) for m in masks.values()])
    k = round(fraction * len(flat_scores))
    assert all(masks[name].shape == scores[name].shape and masks[name].dtype == torch.bool for name in scores)
    assert int(flat_mask.sum()) == k
    assert set(torch.nonzero(flat_mask).flatten().tolist()) == _brute_force_top(flat_scores, k)


def test_ties_at_the_threshold_go_to_the_first_elements():
    scores = {"a": torch.tensor([1.0, 1.0, 1.0]), "b": torch.tensor([[0.0, 1.0], [2.0, 1.0], [1.0, 0.0]])}
    masks = saliency_masks(scores, 0.6)  # k = round(5.4) = 5: the 2.0, then the first four of the six 1.0s
    assert masks["a"].tolist() == [True, True, True]
    assert masks["b"].tolist() == [[False, True], [True, False], [False, False]]
    assert int(saliency_masks(scores, 0.5)["b"].sum()) == 1  # k = round(4.5) = 4 (half to even)
    flat = [1.0, 1.0, 1.0, 0.0, 1.0, 2.0, 1.0]
    for fraction in (0.2, 0.4, 0.6, 0.8):
        keep = torch.cat([m.reshape(-1) for m in saliency_masks({"x": torch.tensor(flat)}, fraction).values()])
        assert set(torch.nonzero(keep).flatten().tolist()) == _brute_force_top(flat, round(fraction * len(flat)))


def test_mask_packing_round_trip():
    mask = torch.rand(3, 7, 5, generator=torch.Generator().manual_seed(2)) > 0.5
    bits = pack_mask(mask)
    assert bits.dtype == torch.uint8 and bits.numel() == (mask.numel() + 7) // 8
    assert torch.equal(unpack_mask(bits, mask.shape), mask)


@pytest.mark.parametrize("loss", ["cfga", "embnorm", "lipschitz"])
def test_each_saliency_loss_gives_finite_nonzero_scores(random_packed, loss):
    torch.manual_seed(0)
    model = Dispersion(num_classes=20, backbone="iresnet_tiny", freeze=["backbone.layer1"])
    datamodule = _datamodule(random_packed.root, eval_batch_size=12)
    datamodule.setup()
    batches = [model_input(batch) for batch in datamodule.eval_dataloader(["forget_train"])]
    assert len(batches) == 2
    scores = saliency_scores(model, batches, make_saliency_loss(loss, noise_std=0.1, noise_draws=2))
    assert not any(name.startswith("backbone.layer1.") for name in scores)  # frozen: not ranked
    assert all(torch.isfinite(s).all() for s in scores.values())
    assert sum(float(s.sum()) for s in scores.values()) > 0
    assert float(scores["backbone.conv1.weight"].sum()) > 0
    assert all(p.grad is None for p in model.parameters())
    if loss == "lipschitz":  # seeded noise: deterministic
        again = saliency_scores(model, batches, make_saliency_loss(loss, noise_std=0.1, noise_draws=2))
        assert all(torch.equal(scores[name], again[name]) for name in scores)


@pytest.mark.parametrize("fraction", [0.0, -0.5, 1.01, 2])
def test_invalid_fraction_is_rejected(fraction):
    with pytest.raises(ValueError, match=r"saliency_fraction must be in \(0, 1\]"):
        Dispersion(num_classes=20, backbone="iresnet_tiny", saliency_fraction=fraction)
    with pytest.raises(ValueError, match=r"saliency fraction γ must be in \(0, 1\]"):
        saliency_masks({"a": torch.ones(4)}, fraction)


def test_invalid_saliency_loss_is_rejected():
    with pytest.raises(ValueError, match="unknown saliency_loss 'ga'"):
        Dispersion(num_classes=20, backbone="iresnet_tiny", saliency_fraction=0.5, saliency_loss="ga")


# -- training with a mask ---------------------------------------------------------------------------
def _fit(trainer, model, datamodule, **kwargs):
    model.training_images = datamodule  # what the CLI links from data
    trainer.fit(model, datamodule, **kwargs)


def _trainer(max_epochs, **kwargs):
    return L.Trainer(
        max_epochs=max_epochs, logger=False, num_sanity_val_steps=0, limit_val_batches=0,
        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", **kwargs,
    )




def _model(**kwargs):
    torch.manual_seed(0)
    return Dispersion(
        num_classes=20, backbone="iresnet_tiny", optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=5e-4,
        saliency_fraction=0.5, **kwargs,
    )


def _assert_only_masked_in_moved(model, before):
    after = dict(model.named_parameters())
    masks = model.saliency_masks
    assert set(masks) == set(before)
    for name, mask in masks.items():
        assert torch.equal(after[name][~mask], before[name][~mask]), f"{name}: a masked-out element moved"
    # Every backbone tensor (the Dispersion loss does not reach the head) moved where it may.
    changed = {name: after[name] != before[name] for name in masks}
    for name, mask in masks.items():
        if name.startswith("backbone.") and mask.any():
            assert changed[name][mask].any(), f"{name}: no masked-in element moved"
    moved = sum(int(changed[n][m].sum()) for n, m in masks.items() if n.startswith("backbone."))
    allowed = sum(int(m.sum()) for n, m in masks.items() if n.startswith("backbone."))
    assert moved > 0.9 * allowed


@pytest.mark.parametrize("loss", ["cfga", "embnorm"])
def test_masked_out_weights_do_not_move_under_momentum_and_weight_decay(random_packed, loss):
    model = _model(saliency_loss=loss)
    before = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
    frozen = {name: p.detach().clone() for name, p in model.named_parameters() if not p.requires_grad}
    _fit(_trainer(1, enable_checkpointing=False), model, _datamodule(random_packed.root))

    masks = model.saliency_masks
    total = sum(m.numel() for m in masks.values())
    kept = sum(int(m.sum()) for m in masks.values())
    assert total == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert kept == round(0.5 * total) and model.saliency_kept_fraction == kept / total
    # The masks are elementwise: most weights sit in tensors that are partly in, partly out.
    mixed = sum(m.numel() for m in masks.values() if 0 < m.float().mean() < 1)
    assert mixed > 0.8 * total
    _assert_only_masked_in_moved(model, before)
    assert all(torch.equal(value, model.get_parameter(name)) for name, value in frozen.items())


def test_masks_survive_a_resume(random_packed, tmp_path):
    model = _model()
    before = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
    checkpoints = ModelCheckpoint(dirpath=tmp_path / "first", save_last=True)
    _fit(_trainer(1, callbacks=[checkpoints]), model, _datamodule(random_packed.root))
    masks = {name: mask.clone() for name, mask in model.saliency_masks.items()}

    resumed = _model()
    resumed.compute_saliency_masks = None  # must not be recomputed: they come from the checkpoint
    trainer = _trainer(2, callbacks=[ModelCheckpoint(dirpath=tmp_path / "resumed", save_last=True)])
    _fit(trainer, resumed, _datamodule(random_packed.root), ckpt_path=str(tmp_path / "first" / "last.ckpt"))
    assert trainer.global_step == 6
    assert resumed.saliency_masks.keys() == masks.keys()
    assert all(torch.equal(resumed.saliency_masks[name], masks[name]) for name in masks)
    _assert_only_masked_in_moved(resumed, before)


def test_no_fraction_means_no_mask(random_packed):
    model = Dispersion(num_classes=20, backbone="iresnet_tiny")
    _fit(_trainer(1, enable_checkpointing=False), model, _datamodule(random_packed.root, steps=1))
    assert model.saliency_masks is None
