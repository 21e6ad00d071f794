"""Cluster compactness and centroid accuracies against brute-force numpy references (retrieval: test_retrieval.py)."""
import math

import numpy as np
import pytest
import torch

import faceunlearn.metrics.centroids as centroids_mod
from faceunlearn.metrics import centroid_accuracy, cluster_compactness, head_accuracy


def _unit(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# ---------------------------------------------------------------- compactness
def _compactness_ref(z, y):
    z, y = _unit(z), np.asarray(y)
    per_id = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        if len(idx) < 2:
            continue
        sims = [z[i] @ z[j] for i in idx for j in idx if i != j]
        per_id.append(np.mean(sims))
    return float(np.mean(per_id)) if per_id else math.nan


@pytest.mark.parametrize("seed", range(3))
def test_compactness_matches_pairwise(seed):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(80, 12, generator=g) + 0.7  # shared offset -> positive similarities
    y = torch.randint(0, 15, (80,), generator=g)
    assert cluster_compactness(z, y) == pytest.approx(_compactness_ref(z.numpy(), y.numpy()), abs=1e-6)


def test_compactness_identical_singletons_and_nan():
    z = torch.randn(1, 8).repeat(6, 1) * torch.arange(1, 7).float()[:, None]  # same direction, different norms
    assert cluster_compactness(z, torch.tensor([0, 0, 0, 1, 1, 1])) == pytest.approx(1.0, abs=1e-6)
    # singletons are ignored: adding identities with one (random) image changes nothing
    y = torch.tensor([0, 0, 0, 1, 1, 1, 2, 3])
    assert cluster_compactness(torch.cat([z, torch.randn(2, 8)]), y) == pytest.approx(1.0, abs=1e-6)
    # two antipodal images -> -1
    assert cluster_compactness(torch.tensor([[1.0, 0.0], [-2.0, 0.0]]), torch.tensor([4, 4])) == pytest.approx(-1.0)
    assert math.isnan(cluster_compactness(torch.randn(3, 4), torch.tensor([0, 1, 2])))
    half = cluster_compactness(z.half(), torch.tensor([0, 0, 0, 1, 1, 1]))
    assert half == pytest.approx(1.0, abs=1e-3)


def test_compactness_errors():
    with pytest.raises(ValueError, match="length mismatch: labels"):
        cluster_compactness(torch.randn(4, 3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="embeddings is empty"):
        cluster_compactness(torch.randn(0, 3), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="non-finite"):
        cluster_compactness(torch.tensor([[float("nan"), 1.0]]), torch.zeros(1, dtype=torch.long))


# ---------------------------------------------------------------- centroids
def _centroid_ref(z, y):
    z, y = _unit(z), np.asarray(y)
    classes = np.unique(y)
    sums = np.stack([z[y == c].sum(0) for c in classes])
    correct = total = 0
    for i in range(len(z)):
        ci = int(np.searchsorted(classes, y[i]))
        if (y == y[i]).sum() < 2:
            continue
        cents = sums.copy()
        cents[ci] -= z[i]
        cents /= np.maximum(np.linalg.norm(cents, axis=1, keepdims=True), 1e-12)
        correct += int(np.argmax(cents @ z[i]) == ci)
        total += 1
    return correct / total if total else math.nan


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("chunk", [3, 4096])
def test_centroid_accuracy_matches_reference(seed, chunk, monkeypatch):
    monkeypatch.setattr(centroids_mod, "_CHUNK", chunk)
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(10, 16, generator=g)
    y = torch.randint(0, 10, (70,), generator=g)
    z = means[y] + 1.5 * torch.randn(70, 16, generator=g)
    acc = centroid_accuracy(z, y + 100)  # arbitrary (non-contiguous) label values
    assert acc == pytest.approx(_centroid_ref(z.numpy(), y.numpy()))
    assert 0.0 < acc < 1.0


def test_centroid_accuracy_hand_made():
    # class 0 around +x, class 1 around +y, class 2 a single image (skipped, but its centroid competes)
    z = torch.tensor([[1.0, 0.1], [1.0, -0.1], [0.1, 1.0], [-0.1, 1.0], [0.2, 1.0], [1.0, 1.0]])
    y = torch.tensor([0, 0, 1, 1, 1, 2])
    # sample 0's own leave-one-out centroid is [1,-0.1]/|.| (cos ~0.98) but class 2's [1,1] gives cos ~0.77
    assert centroid_accuracy(z, y) == 1.0
    # a class-0 sample lying near the class-2 direction is misclassified; all else stays right
    z2 = torch.cat([z, torch.tensor([[1.0, 0.95]])])
    y2 = torch.cat([y, torch.tensor([0])])
    assert centroid_accuracy(z2, y2) == pytest.approx(5 / 6)
    # leave-one-out matters: with the sample inside its own centroid sample 0 would be right (0.707 > 0.6)
    z3 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    assert centroid_accuracy(z3, torch.tensor([0, 0, 1])) == 0.0
    assert math.isnan(centroid_accuracy(torch.randn(3, 4), torch.tensor([0, 1, 2])))


def _head_ref(z, y, w):
    return float(np.mean(np.argmax(_unit(z) @ _unit(w).T, axis=1) == np.asarray(y)))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("chunk", [5, 4096])
def test_head_accuracy_matches_reference(seed, chunk, monkeypatch):
    monkeypatch.setattr(centroids_mod, "_CHUNK", chunk)
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(20, 16, generator=g) * (torch.rand(20, 1, generator=g) * 5 + 0.1)  # unnormalised rows
    y = torch.randint(0, 20, (60,), generator=g)
    z = w[y] / w[y].norm(dim=1, keepdim=True) + 0.3 * torch.randn(60, 16, generator=g)
    acc = head_accuracy(z, y, w)
    assert acc == pytest.approx(_head_ref(z.numpy(), y.numpy(), w.numpy()))
    assert head_accuracy(z.bfloat16(), y, w.bfloat16()) == pytest.approx(acc, abs=0.05)


def test_head_accuracy_hand_made_and_errors():
    w = torch.tensor([[1.0, 0.0], [0.0, 3.0], [-1.0, 0.0]])
    z = torch.tensor([[2.0, 0.1], [0.1, 0.5], [-1.0, 0.2], [1.0, 1.0]])
    # preds: 0, 1, 2, tie between 0 and 1 -> first index 0
    assert head_accuracy(z, torch.tensor([0, 1, 2, 0]), w) == 1.0
    assert head_accuracy(z, torch.tensor([0, 1, 2, 1]), w) == 0.75
    with pytest.raises(ValueError, match=r"labels must be class indices in \[0, 3\)"):
        head_accuracy(z, torch.tensor([0, 1, 3, 0]), w)
    with pytest.raises(ValueError, match="embedding dim mismatch"):
        head_accuracy(z, torch.tensor([0, 1, 2, 0]), torch.randn(3, 5))
    with pytest.raises(ValueError, match="length mismatch: labels"):
        head_accuracy(z, torch.tensor([0, 1]), w)
    with pytest.raises(ValueError, match="length mismatch: labels"):
        centroid_accuracy(z, torch.tensor([0, 1]))
