"""Centroid accuracies: leave-one-out nearest class-mean, and CosFace-head argmax."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .checks import unit_rows, vector

_CHUNK = 4096  # samples per chunk; chunk x C similarities are held at once


@torch.no_grad()
def centroid_accuracy(embeddings: torch.Tensor, labels: torch.Tensor) -> float:
    """Leave-one-out nearest-centroid accuracy.

    With z the L2-normalised embeddings and m_c = normalize(sum_{y_i = c} z_i) the centroid of
    every identity c in the set, sample i is predicted as
        argmax_c cos(z_i, m_c),  with its own class using  m_{y_i}^{-i} = normalize(sum_{y_j = y_i} z_j - z_i).
    Samples whose identity has a single image are skipped (their centroids still compete for
    other samples); returns nan if no sample remains. Ties: first (lowest label) class wins.
    """
    z = unit_rows(embeddings, "embeddings")
    y = vector(labels, z.shape[0], "labels", "embeddings").to(z.device)
    _, inv = torch.unique(y, return_inverse=True)
    C = int(inv.max()) + 1
    sums = torch.zeros(C, z.shape[1], device=z.device).index_add_(0, inv, z)
    n = torch.bincount(inv, minlength=C)
    cent = F.normalize(sums, dim=1)
    idx = torch.nonzero(n[inv] >= 2).squeeze(1)
    if idx.numel() == 0:
        return float("nan")
    correct = 0
    for s in range(0, idx.numel(), _CHUNK):
        i = idx[s : s + _CHUNK]
        zi, ci = z[i], inv[i]
        sims = zi @ cent.T                                             # [c, C]
        own = F.normalize(sums[ci] - zi, dim=1)                        # leave-one-out centroid
        sims.scatter_(1, ci[:, None], (zi * own).sum(1, keepdim=True))
        correct += int((sims.argmax(1) == ci).sum())
    return correct / idx.numel()


@torch.no_grad()
def head_accuracy(
    embeddings: torch.Tensor, labels: torch.Tensor, head_weight: torch.Tensor
) -> float:
    """CosFace-head accuracy (the paper's "centroid accuracy"): the head's rows are the class centroids.

        pred_i = argmax_j cos(z_i, W_j)  over all C rows of head_weight [C, d];   acc = mean_i [pred_i = y_i]

    ``labels`` are class indices into head_weight. Ties: first index wins.
    """
    z = unit_rows(embeddings, "embeddings")
    w = unit_rows(head_weight, "head_weight").to(z.device)
    if w.shape[1] != z.shape[1]:
        raise ValueError(f"embedding dim mismatch: embeddings have d={z.shape[1]}, head_weight has d={w.shape[1]}")
    y = vector(labels, z.shape[0], "labels", "embeddings").to(z.device)
    if y.min() < 0 or y.max() >= w.shape[0]:
        raise ValueError(f"labels must be class indices in [0, {w.shape[0]}), got range [{int(y.min())}, {int(y.max())}]")
    correct = 0
    for s in range(0, z.shape[0], _CHUNK):
        correct += int(((z[s : s + _CHUNK] @ w.T).argmax(1) == y[s : s + _CHUNK]).sum())
    return correct / z.shape[0]
