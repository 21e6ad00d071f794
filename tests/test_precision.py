"""Mixed precision, compiled backbones and device-side noise (issue 14 pt 2), on the CPU.

bf16 autocast exists on CPUs too, so the code paths a GPU run takes are exercised here: the
backbone may run in bfloat16, but embeddings, the CosFace head and every loss stay float32.
"""

import lightning as L
import pytest
import torch

from faceunlearn import losses
from faceunlearn.data import FaceDataModule
from faceunlearn.methods import Dispersion, LipschitzUnlearning
from faceunlearn.models import CosFaceHead

BF16 = dict(device_type="cpu", dtype=torch.bfloat16)


def _embeddings(seed, rows=12, dim=16):
    generator = torch.Generator().manual_seed(seed)
    # near-duplicate embeddings: their cosines sit near 1, where bf16 rounds to steps of ~0.004
    base = torch.randn(3, dim, generator=generator).repeat_interleave(rows // 3, 0)
    return base + 0.01 * torch.randn(rows, dim, generator=generator)


def test_autocast_would_round_a_plain_product():
    """The premise of the float32 losses: inside autocast a float32 matmul comes out bf16."""
    z = _embeddings(0)
    with torch.autocast(**BF16):
        assert (z @ z.T).dtype == torch.bfloat16


LOSS_CALLS = {  # name: (loss, its arguments built from float32 embeddings z and labels y)
    "dispersion": lambda z, y: (losses.dispersion_loss, (z, y, 0.1)),
    "hard_dispersion": lambda z, y: (losses.hard_dispersion_loss, (z, y)),
    "view_dispersion": lambda z, y: (losses.view_dispersion_loss, (z, z.flip(0))),
    "distill": lambda z, y: (losses.embedding_distillation_loss, (z, z.roll(1, 0))),
    "relational": lambda z, y: (losses.relational_distillation_loss, (z, z.roll(1, 0))),
    "cosface": lambda z, y: (losses.cosface_loss, (torch.tanh(z[:, :4]), y)),
    "gradient_ascent": lambda z, y: (losses.gradient_ascent_loss, (torch.tanh(z[:, :4]), y)),
    "boundary_shrink": lambda z, y: (losses.boundary_shrink_loss, (torch.tanh(z[:, :4]), y)),
    "contrastive": lambda z, y: (losses.contrastive_unlearning_loss, (z[:6], y[:6], z[6:])),
    "lipschitz": lambda z, y: (losses.lipschitz_loss, (z[:4], z[4:12].view(2, 4, -1), z[4:12, :2].norm(dim=1).view(2, 4))),
}


def _bf16(value):
    return value.bfloat16() if isinstance(value, torch.Tensor) and value.is_floating_point() else value


@pytest.mark.parametrize("name", sorted(LOSS_CALLS))
def test_losses_run_in_float32_under_autocast(name):
    loss, arguments = LOSS_CALLS[name](_embeddings(1), torch.arange(12) // 4)
    reference = loss(*arguments)
    rounded = [_bf16(value) for value in arguments]
    with torch.autocast(**BF16):
        mixed = loss(*arguments)
        from_bf16 = loss(*rounded)  # a bf16 backbone output is upcast, not computed on in bf16
    assert mixed.dtype == torch.float32 and from_bf16.dtype == torch.float32
    assert torch.allclose(mixed, reference, rtol=1e-6, atol=1e-6)
    upcast = [value.float() if isinstance(value, torch.Tensor) and value.is_floating_point() else value for value in rounded]
    assert torch.allclose(from_bf16, loss(*upcast), rtol=1e-6, atol=1e-6)


def test_head_cosines_are_float32_under_autocast():
    head = CosFaceHead(16, 5)
    z = _embeddings(3)
    with torch.autocast(**BF16):
        cosine = head.cosine(z)
    assert cosine.dtype == torch.float32
    assert torch.allclose(cosine, head.cosine(z), atol=1e-6)


def test_embeddings_are_float32_under_autocast():
    model = Dispersion(num_classes=5, backbone="iresnet_tiny", embedding_size=32).eval()
    images = torch.rand(4, 3, 112, 112) * 2 - 1
    with torch.no_grad(), torch.autocast(**BF16):
        assert model.backbone(images).dtype == torch.bfloat16  # the backbone itself runs in bf16 ...
        embeddings = model(images)
    assert embeddings.dtype == torch.float32  # ... its embeddings leave as float32
    with torch.no_grad():
        full = model(images)
    # bf16 convolutions: the directions agree closely, not exactly
    assert torch.nn.functional.cosine_similarity(embeddings, full).min() > 0.98


def test_compiled_backbone_keeps_parameters_and_outputs():
    torch.manual_seed(0)
    plain = Dispersion(num_classes=5, backbone="iresnet_tiny", embedding_size=32).eval()
    torch.manual_seed(0)
    compiled = Dispersion(num_classes=5, backbone="iresnet_tiny", embedding_size=32, compile={"backend": "eager"}).eval()
    assert compiled.compiled_backbone is not None and plain.compiled_backbone is None
    assert list(compiled.state_dict()) == list(plain.state_dict())  # no "_orig_mod." keys
    images = torch.rand(3, 3, 112, 112) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(compiled(images), plain(images), atol=1e-5)
    # the compiled forward trains the very same parameters
    compiled(images).sum().backward()
    assert compiled.backbone.conv1.weight.grad is not None


def _fit(model, root, precision, steps=3):
    datamodule = FaceDataModule(root=str(root), num_forget_identities=4, batch_size=8, images_per_identity=4,
                                batches_per_epoch=steps, eval_retain_identities=3)
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, num_sanity_val_steps=0,
                        limit_val_batches=0, enable_progress_bar=False, enable_model_summary=False,
                        precision=precision, deterministic=True)
    model.training_images = datamodule
    trainer.fit(model, datamodule)
    return trainer


def test_bf16_mixed_fit_trains_close_to_float32(random_packed):
    """A few Dispersion steps under bf16-mixed move the weights as float32 does, to bf16's precision."""
    runs = {}
    for precision in ("32-true", "bf16-mixed"):
        torch.manual_seed(0)
        model = Dispersion(num_classes=20, backbone="iresnet_tiny", embedding_size=32, lr=0.05, channels_last=True)
        start = model.backbone.fc.weight.detach().clone()
        trainer = _fit(model, random_packed.root, precision)
        assert torch.isfinite(trainer.callback_metrics["train/loss"])
        assert model.backbone.fc.weight.dtype == torch.float32  # master weights stay float32
        runs[precision] = model.backbone.fc.weight.detach() - start
    update, mixed = runs["32-true"], runs["bf16-mixed"]
    assert update.abs().max() > 0
    # same direction of travel; a wrong cast (e.g. a loss in bf16) would not keep this close
    assert torch.nn.functional.cosine_similarity(update.flatten(), mixed.flatten(), dim=0) > 0.9


def test_lipschitz_noise_is_drawn_on_the_device_per_step(random_packed, monkeypatch):
    """The noise comes from a generator on the images' device, seeded by (noise_seed, step)."""
    drawn = []
    real = losses.gaussian_noise

    def spy(shape, sigma, generator=None, device=None):
        drawn.append((generator.device, torch.device(device), generator.initial_seed()))
        return real(shape, sigma, generator, device)

    monkeypatch.setattr("faceunlearn.methods.lipschitz.gaussian_noise", spy)
    model = LipschitzUnlearning(num_classes=20, backbone="iresnet_tiny", embedding_size=32, noise_draws=2, noise_seed=3)
    _fit(model, random_packed.root, "32-true", steps=2)
    assert [seed for _, _, seed in drawn] == [3 * 1_000_003, 3 * 1_000_003 + 1]
    assert all(generator_device == device == torch.device("cpu") for generator_device, device, _ in drawn)
