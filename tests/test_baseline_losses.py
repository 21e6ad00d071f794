"""Baseline unlearning losses (SPEC §3: Eq. 7–9, Lipschitz, Contrastive) equal their formulas."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from faceunlearn.losses import (
    boundary_shrink_loss,
    contrastive_unlearning_loss,
    cosface_loss,
    fgsm_images,
    gaussian_noise,
    gradient_ascent_loss,
    lipschitz_loss,
    nearest_boundary_labels,
    random_labels,
)


def reference_cosface(cosine, labels, s=64.0, m=0.4):
    """CosFace CE written out per sample with numpy (float64)."""
    cosine = cosine.detach().double().numpy()
    total = 0.0
    for i, y in enumerate(labels.tolist()):
        logits = s * cosine[i].copy()
        logits[y] -= s * m
        top = logits.max()
        total += -(logits[y] - top - math.log(np.exp(logits - top).sum()))
    return total / len(labels)


# --- Random Labeling (Eq. 7) ---------------------------------------------------------------


def test_random_labels_uniform_over_all_classes_including_true_label():
    num_classes, num_samples = 7, 70_000
    generator = torch.Generator().manual_seed(0)
    labels = random_labels(num_samples, num_classes, generator=generator)
    assert labels.dtype == torch.long and labels.shape == (num_samples,)
    assert labels.min() >= 0 and labels.max() < num_classes
    counts = torch.bincount(labels, minlength=num_classes).double() / num_samples
    assert torch.allclose(counts, torch.full((num_classes,), 1 / num_classes, dtype=torch.double), atol=0.01)
    true_labels = torch.randint(0, num_classes, (num_samples,), generator=torch.Generator().manual_seed(1))
    hit_rate = (labels == true_labels).double().mean().item()  # true label not excluded: ≈ 1/C, not 0
    assert hit_rate == pytest.approx(1 / num_classes, abs=0.01)


def test_random_labels_deterministic_for_seeded_generator():
    first = random_labels(50, 11, generator=torch.Generator().manual_seed(42))
    second = random_labels(50, 11, generator=torch.Generator().manual_seed(42))
    other = random_labels(50, 11, generator=torch.Generator().manual_seed(43))
    assert torch.equal(first, second) and not torch.equal(first, other)
    assert random_labels(5, 3, device="cpu").device.type == "cpu"


def test_random_labeling_loss_is_cosface_on_random_labels():
    generator = torch.Generator().manual_seed(3)
    cosine = torch.rand(9, 6, generator=generator) * 2 - 1
    labels = random_labels(9, 6, generator=generator)
    assert cosface_loss(cosine, labels).item() == pytest.approx(reference_cosface(cosine, labels), rel=1e-5)


# --- Gradient Ascent (Eq. 8) ---------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_gradient_ascent_is_negative_cosface(seed):
    generator = torch.Generator().manual_seed(seed)
    cosine = (torch.rand(8, 12, generator=generator) * 2 - 1).requires_grad_(True)
    labels = torch.randint(0, 12, (8,), generator=generator)
    loss = gradient_ascent_loss(cosine, labels, scale=30.0, margin=0.2)
    assert loss.item() == pytest.approx(-reference_cosface(cosine, labels, 30.0, 0.2), rel=1e-5)
    (grad_ga,) = torch.autograd.grad(loss, cosine)
    (grad_cos,) = torch.autograd.grad(cosface_loss(cosine, labels, 30.0, 0.2), cosine)
    assert torch.allclose(grad_ga, -grad_cos)


# --- Boundary Shrink (Eq. 9) ---------------------------------------------------------------


def test_fgsm_step_is_two_epsilon_in_normalised_space_with_clipping_and_sign():
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(4, 3, 8, 8, generator=generator) * 2 - 1
    images[0, 0, 0, :4] = torch.tensor([1.0, -1.0, 0.95, -0.95])  # near the edges: will clip
    gradient = torch.randn(4, 3, 8, 8, generator=generator)
    gradient[0, 0, 0, :4] = torch.tensor([1.0, -1.0, 2.0, -3.0])
    gradient[1] = 0.0  # zero-gradient pixels must not move
    epsilon = 0.1
    images_in = images.clone().requires_grad_(True)
    adversarial = fgsm_images(images_in, gradient, epsilon)
    assert not adversarial.requires_grad
    x, g, a = images.numpy(), gradient.numpy(), adversarial.numpy()
    for index in np.ndindex(x.shape):
        sign = np.sign(g[index])
        expected = min(max(x[index] + 2 * epsilon * sign, -1.0), 1.0)
        assert a[index] == pytest.approx(expected, abs=1e-6)
        unclipped = -1.0 < x[index] + 2 * epsilon * sign < 1.0
        if sign != 0 and unclipped:
            assert abs(a[index] - x[index]) == pytest.approx(2 * epsilon, abs=1e-6)
            assert np.sign(a[index] - x[index]) == sign
    assert torch.equal(adversarial[1], images[1])
    assert adversarial.min() >= -1.0 and adversarial.max() <= 1.0
    assert adversarial[0, 0, 0, :4].tolist() == pytest.approx([1.0, -1.0, 1.0, -1.0])


def test_fgsm_epsilon_scales_with_pixel_range():
    images = torch.full((1, 3, 2, 2), 0.5)
    gradient = torch.ones_like(images)
    assert torch.allclose(fgsm_images(images, gradient, 0.1, pixel_range=(0.0, 1.0)), torch.full_like(images, 0.6))
    assert torch.allclose(fgsm_images(images, -gradient, 0.1, pixel_range=(0.0, 1.0)), torch.full_like(images, 0.4))


def test_nearest_boundary_labels_is_argmax_and_may_keep_true_label():
    generator = torch.Generator().manual_seed(5)
    cosine = torch.rand(10, 7, generator=generator) * 2 - 1
    expected = [max(range(7), key=lambda j: cosine[i, j].item()) for i in range(10)]
    assert nearest_boundary_labels(cosine).tolist() == expected
    assert nearest_boundary_labels(torch.tensor([[0.9, 0.1, 0.0]])).tolist() == [0]  # not forced ≠ y


def test_boundary_shrink_loss_is_cosface_on_neighbour_labels():
    generator = torch.Generator().manual_seed(6)
    cosine_clean = torch.rand(8, 5, generator=generator) * 2 - 1
    cosine_adv = torch.rand(8, 5, generator=generator) * 2 - 1
    neighbour = nearest_boundary_labels(cosine_adv)
    loss = boundary_shrink_loss(cosine_clean, neighbour, scale=64.0, margin=0.4)
    assert loss.item() == pytest.approx(reference_cosface(cosine_clean, neighbour), rel=1e-5)


# --- Lipschitz -----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_lipschitz_matches_loop(seed):
    generator = torch.Generator().manual_seed(seed)
    num_noise, batch, dim = 5, 4, 6
    clean = torch.randn(batch, dim, generator=generator).requires_grad_(True)
    noisy = torch.randn(num_noise, batch, dim, generator=generator)
    norms = torch.rand(num_noise, batch, generator=generator) + 0.5
    loss = lipschitz_loss(clean, noisy, norms)
    expected = 0.0
    for n in range(num_noise):
        for b in range(batch):
            diff = clean[b].detach().double().numpy() - noisy[n, b].double().numpy()
            expected += math.sqrt(float((diff**2).sum())) / norms[n, b].item()
    assert loss.item() == pytest.approx(expected / (num_noise * batch), rel=1e-5)
    loss.backward()
    assert clean.grad is not None and torch.isfinite(clean.grad).all()


def test_lipschitz_takes_no_gradient_through_noisy_pass():
    clean = torch.randn(3, 4, requires_grad=True)
    noisy = torch.randn(2, 3, 4, requires_grad=True)
    lipschitz_loss(clean, noisy, torch.ones(2, 3)).backward()
    assert noisy.grad is None and clean.grad is not None


def test_gaussian_noise_norms_and_seeded_determinism():
    shape = (3, 2, 3, 5, 5)
    noise, norms = gaussian_noise(shape, 0.3, generator=torch.Generator().manual_seed(7))
    again, _ = gaussian_noise(shape, 0.3, generator=torch.Generator().manual_seed(7))
    other, _ = gaussian_noise(shape, 0.3, generator=torch.Generator().manual_seed(8))
    assert noise.shape == shape and norms.shape == (3, 2)
    assert torch.equal(noise, again) and not torch.equal(noise, other)
    array = noise.double().numpy()
    for n in range(3):
        for b in range(2):
            assert norms[n, b].item() == pytest.approx(math.sqrt(float((array[n, b] ** 2).sum())), rel=1e-5)
    big, _ = gaussian_noise((4, 8, 3, 16, 16), 0.3, generator=torch.Generator().manual_seed(9))
    assert big.std().item() == pytest.approx(0.3, rel=0.05) and abs(big.mean().item()) < 0.01


# --- Contrastive Unlearning ----------------------------------------------------------------


def reference_contrastive(forget, labels, retain, temperature):
    """Per-anchor loop: retain = positives, same-identity forget = negatives."""
    z = [v / np.linalg.norm(v) for v in forget.detach().double().numpy()]
    r = [v / np.linalg.norm(v) for v in retain.detach().double().numpy()]
    labels = labels.tolist()
    per_anchor = []
    for i in range(len(z)):
        partners = [p for p in range(len(z)) if p != i and labels[p] == labels[i]]
        if not partners:
            continue
        pulled = sum(math.exp(float(z[i] @ rv) / temperature) for rv in r)
        pushed = sum(math.exp(float(z[i] @ z[p]) / temperature) for p in partners)
        per_anchor.append(-math.log(pulled / (pulled + pushed)))
    return sum(per_anchor) / len(per_anchor)


@pytest.mark.parametrize("temperature", [0.7, 0.1])
@pytest.mark.parametrize("seed", range(3))
def test_contrastive_matches_per_anchor_loop(temperature, seed):
    generator = torch.Generator().manual_seed(seed)
    forget = torch.randn(16, 8, generator=generator) * 2 + 0.3
    labels = torch.randint(0, 4, (16,), generator=generator)
    labels[0] = 99  # no partner: not an anchor
    retain = torch.randn(10, 8, generator=generator) * 3
    loss = contrastive_unlearning_loss(forget, labels, retain, temperature)
    expected = reference_contrastive(forget, labels, retain, temperature)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_contrastive_no_anchor_gives_zero_with_gradient_path():
    forget = torch.randn(6, 8, requires_grad=True)
    retain = torch.randn(4, 8, requires_grad=True)
    loss = contrastive_unlearning_loss(forget, torch.arange(6), retain)
    loss.backward()
    assert loss.item() == 0.0 and not math.isnan(loss.item())
    assert torch.equal(forget.grad, torch.zeros_like(forget))
    assert torch.equal(retain.grad, torch.zeros_like(retain))


def test_contrastive_gradient_descent_pushes_same_identity_apart():
    generator = torch.Generator().manual_seed(11)
    centres = torch.randn(4, 16, generator=generator)
    labels = torch.arange(4).repeat_interleave(4)
    forget = (centres[labels] + 0.3 * torch.randn(16, 16, generator=generator)).requires_grad_(True)
    retain = torch.randn(12, 16, generator=generator)

    def mean_same_identity_cosine(embeddings):
        normalized = F.normalize(embeddings, dim=1)
        similarity = normalized @ normalized.T
        mask = (labels[:, None] == labels[None, :]) & ~torch.eye(16, dtype=torch.bool)
        return similarity[mask].mean().item()

    loss = contrastive_unlearning_loss(forget, labels, retain)
    loss.backward()
    assert torch.isfinite(forget.grad).all()
    with torch.no_grad():
        stepped = forget - 1.0 * forget.grad
    assert contrastive_unlearning_loss(stepped, labels, retain) < loss
    assert mean_same_identity_cosine(stepped) < mean_same_identity_cosine(forget.detach())
