"""Losses equal SPEC §3 formulas, written out term by term, on random tensors."""

import math

import numpy as np

import pytest
import torch
import torch.nn.functional as F

from faceunlearn.losses import cosface_loss, dispersion_loss, hard_dispersion_loss, old_gallery_loss, rank_confusion_loss


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


def _cos(a, b):
    return float(torch.dot(a, b) / (a.norm() * b.norm()))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("with_others", [False, True])
@pytest.mark.parametrize("margin", [0.0, 0.2])
def test_rank_confusion_matches_formula(seed, with_others, margin):
    g = torch.Generator().manual_seed(seed)
    z, labels = torch.randn(12, 6, generator=g), torch.randint(0, 4, (12,), generator=g)
    others = torch.randn(5, 6, generator=g) if with_others else None
    terms = []
    for i in range(12):
        positives = [_cos(z[i], z[j]) for j in range(12) if j != i and labels[j] == labels[i]]
        negatives = [_cos(z[i], z[j]) for j in range(12) if labels[j] != labels[i]]
        negatives += [_cos(z[i], o) for o in others] if with_others else []
        if positives and negatives:
            terms.append(max(max(positives) - max(negatives) + margin, 0.0))
    assert float(rank_confusion_loss(z, labels, others, margin)) == pytest.approx(np.mean(terms), abs=1e-6)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("with_others", [False, True])
@pytest.mark.parametrize("margin", [0.0, 0.2])
def test_old_gallery_separation_matches_formula(seed, with_others, margin):
    g = torch.Generator().manual_seed(seed)
    z, start = torch.randn(10, 6, generator=g), torch.randn(10, 6, generator=g)
    labels = torch.randint(0, 3, (10,), generator=g)
    others = torch.randn(4, 6, generator=g) if with_others else None
    terms = []
    for i in range(10):
        negatives = [_cos(z[i], start[j]) for j in range(10) if labels[j] != labels[i]]
        negatives += [_cos(z[i], o) for o in others] if with_others else []
        positives = [_cos(z[i], start[j]) for j in range(10) if j != i and labels[j] == labels[i]]
        if positives and negatives:
            terms.append(np.mean([max(p - max(negatives) + margin, 0.0) for p in positives]))
    assert float(old_gallery_loss(z, start, labels, others, margin)) == pytest.approx(np.mean(terms), abs=1e-6)


def test_the_forgetting_terms_stop_at_a_tie_and_never_push_the_old_gallery():
    # rank 1 already at chance (the hardest positive ties the hardest negative): nothing left to push
    z = torch.eye(3, requires_grad=True)  # each of person 0's photos as close to the other as to person 1's
    assert float(rank_confusion_loss(z, torch.tensor([0, 0, 1]))) == 0.0
    # the old gallery gets no gradient (f_0 is frozen) and a single identity has nothing to compare with
    start = torch.randn(3, 3, requires_grad=True)
    old_gallery_loss(z, start, torch.tensor([0, 0, 1])).backward()
    assert start.grad is None
    alone = rank_confusion_loss(z, torch.tensor([0, 0, 0]))
    assert float(alone) == 0.0 and alone.requires_grad
    # a step of gradient descent lowers a positive rank gap
    g = torch.Generator().manual_seed(0)
    z = torch.randn(8, 4, generator=g)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    z[1::2] = z[::2] + 0.05 * torch.randn(4, 4, generator=g)  # each photo's twin is its nearest neighbour
    z.requires_grad_(True)
    before = rank_confusion_loss(z, labels)
    before.backward()
    assert float(before) > 0.1 and float(rank_confusion_loss(z.detach() - 0.5 * z.grad, labels)) < float(before)
