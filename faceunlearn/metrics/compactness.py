"""Cluster compactness (paper Eq. 10)."""
from __future__ import annotations

import torch

from .checks import unit_rows, vector


@torch.no_grad()
def cluster_compactness(embeddings: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean intra-identity pairwise cosine similarity, CS(S) (Eq. 10).

        CS(S) = 1/|S| * sum_{c in S} 1/(n_c (n_c - 1)) * sum_{i != j, y_i = y_j = c} z_i^T z_j

    with z the L2-normalised embeddings and S the identities having n_c >= 2 images.
    Computed in closed form per identity: (||sum_i z_i||^2 - sum_i ||z_i||^2) / (n_c (n_c - 1)).
    Returns nan if no identity has >= 2 images.
    """
    z = unit_rows(embeddings, "embeddings")
    y = vector(labels, z.shape[0], "labels", "embeddings").to(z.device)
    _, inv = torch.unique(y, return_inverse=True)
    C = int(inv.max()) + 1
    z64 = z.double()  # sums in float64: the closed form subtracts two ~n_c-sized numbers
    sums = torch.zeros(C, z.shape[1], dtype=torch.float64, device=z.device).index_add_(0, inv, z64)
    sq = torch.zeros(C, dtype=torch.float64, device=z.device).index_add_(0, inv, (z64 * z64).sum(1))
    n = torch.bincount(inv, minlength=C).double()
    valid = n >= 2
    if not valid.any():
        return float("nan")
    n = n[valid]
    cs = ((sums[valid] ** 2).sum(1) - sq[valid]) / (n * (n - 1))
    return float(cs.mean())
