"""Losses equal SPEC §3 formulas, written out term by term, on random tensors."""

import math

import pytest
import torch
import torch.nn.functional as F

from faceunlearn.losses import cosface_loss, dispersion_loss, hard_dispersion_loss


def reference_dispersion(embeddings, labels, margin, hard):
    """Eq. 5 / Eq. 6 as nested Python loops over anchors and positives."""
    z = [e / e.norm() for e in embeddings.double()]
    per_anchor = []
    for i in range(len(z)):
        positives = [p for p in range(len(z)) if p != i and labels[p] == labels[i]]
        if not positives:
            continue
        sims = [float(z[i] @ z[p]) for p in positives]
        if hard:
            per_anchor.append(max(max(sims) - margin, 0.0))
        else:
            per_anchor.append(sum(max(s - margin, 0.0) for s in sims) / len(positives))
    return sum(per_anchor) / len(per_anchor) if per_anchor else 0.0


@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("margin", [0.0, 0.2, -0.3])
@pytest.mark.parametrize("seed", range(4))
def test_dispersion_matches_formula(hard, margin, seed):
    generator = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(24, 16, generator=generator) * 3 + 0.5  # unnormalised, correlated
    labels = torch.randint(0, 7, (24,), generator=generator)
    labels[0] = 99  # an anchor without positives: must not count in |A|
    loss = (hard_dispersion_loss if hard else dispersion_loss)(embeddings, labels, margin)
    assert loss.item() == pytest.approx(reference_dispersion(embeddings, labels, margin, hard), abs=1e-5)


@pytest.mark.parametrize("loss_fn", [dispersion_loss, hard_dispersion_loss])
def test_no_positive_in_batch_gives_zero_loss_and_zero_gradient(loss_fn):
    embeddings = torch.randn(8, 16, requires_grad=True)
    loss = loss_fn(embeddings, torch.arange(8))
    loss.backward()
    assert loss.item() == 0.0 and not math.isnan(loss.item())
    assert torch.equal(embeddings.grad, torch.zeros_like(embeddings))


def test_hard_dispersion_is_at_least_dispersion_and_gradient_pushes_positives_apart():
    embeddings = torch.randn(32, 8, requires_grad=True)
    labels = torch.arange(8).repeat_interleave(4)
    assert hard_dispersion_loss(embeddings, labels) >= dispersion_loss(embeddings, labels) - 1e-6
    loss = dispersion_loss(embeddings, labels)
    loss.backward()
    with torch.no_grad():
        stepped = embeddings - 0.5 * embeddings.grad
    assert dispersion_loss(stepped, labels) < loss


def test_margin_floor_stops_dispersion():
    """Positives already below m_d get no gradient (the max makes m_d a floor)."""
    base = F.normalize(torch.randn(2, 4), dim=1)
    embeddings = torch.stack([base[0], -base[0]]).requires_grad_(True)  # cosine −1
    loss = dispersion_loss(embeddings, torch.tensor([3, 3]), margin=0.0)
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(embeddings.grad, torch.zeros_like(embeddings))


@pytest.mark.parametrize("seed", range(3))
def test_cosface_matches_formula(seed):
    generator = torch.Generator().manual_seed(seed)
    cosine = torch.rand(6, 10, generator=generator) * 2 - 1
    labels = torch.randint(0, 10, (6,), generator=generator)
    s, m = 64.0, 0.4
    expected = 0.0
    for i in range(6):
        logits = [s * (cosine[i, j].item() - (m if j == labels[i] else 0.0)) for j in range(10)]
        top = max(logits)
        expected += -(logits[labels[i]] - top - math.log(sum(math.exp(l - top) for l in logits)))
    assert cosface_loss(cosine, labels, s, m).item() == pytest.approx(expected / 6, rel=1e-5)
