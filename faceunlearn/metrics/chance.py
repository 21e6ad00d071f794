"""What a random ranking scores: the exact expected mAP and R@k of a benchmark's own composition.

A benchmark whose gallery holds few identities is easy by chance (the paper's "forget, base"
gallery holds only the forget identities: with 10 of them a random ranking already scores ≈ 10 %
mAP), so every retrieval number is reported beside its chance level.

For a query whose ranking has ``N`` items (gallery + distractors, its own image removed), ``R`` of
them relevant, and a uniformly random order (every set of ``R`` relevant positions equally likely):

    E[AP]  = 1/N · ( H_N + (R − 1)/(N − 1) · (N − H_N) )      (H_N the N-th harmonic number; 1 if N = 1)
    E[R@k] = 1 − C(N − R, k) / C(N, k)

(from E[AP] = 1/R Σ_n P(item n relevant) · E[precision@n | item n relevant], with
P = R/N and E[precision@n | ·] = (1 + (R − 1)(n − 1)/(N − 1))/n). The chance mAP and R@k are
the means over queries with ``R ≥ 1``, as the metrics themselves. Counting is per label
(``torch.unique``), never a query × gallery matrix.
"""
from __future__ import annotations

from typing import Sequence

import torch

from .checks import check_ks

_EULER_GAMMA = 0.5772156649015329


def _harmonic(n: torch.Tensor) -> torch.Tensor:
    """H_n = ψ(n + 1) + γ, in float64."""
    return torch.special.digamma(n + 1.0) + _EULER_GAMMA


def expected_average_precision(num_relevant: torch.Tensor, num_items: torch.Tensor) -> torch.Tensor:
    """E[AP] of a random ranking of ``num_items`` items of which ``num_relevant`` are relevant (R ≥ 1)."""
    r, n = num_relevant.double(), num_items.double()
    h = _harmonic(n)
    spread = torch.where(n > 1, (r - 1) / (n - 1).clamp_min(1) * (n - h), torch.zeros_like(n))
    return (h + spread) / n


def expected_recall_at_k(num_relevant: torch.Tensor, num_items: torch.Tensor, k: int) -> torch.Tensor:
    """E[R@k] = 1 − C(N − R, k)/C(N, k) = 1 − Π_{i<k} (N − R − i)/(N − i) (1 when fewer than k items are irrelevant)."""
    r, n = num_relevant.double(), num_items.double()
    all_miss = torch.ones_like(n)
    for i in range(k):  # k factors for every query at once
        factor = torch.where(n - i > 0, (n - r - i) / (n - i).clamp_min(1), torch.zeros_like(n))
        all_miss = all_miss * factor.clamp_min(0)
    return 1 - all_miss


def _relevant_counts(query_labels, gallery_labels, query_ids, gallery_ids) -> tuple[torch.Tensor, torch.Tensor]:
    """Per query: relevant gallery items (own image removed) and whether its own image is in the gallery."""
    values, counts = torch.unique(gallery_labels, return_counts=True)
    position = torch.searchsorted(values, query_labels).clamp_max(max(len(values) - 1, 0))
    present = values[position] == query_labels if len(values) else torch.zeros_like(query_labels, dtype=torch.bool)
    relevant = torch.where(present, counts[position] if len(values) else torch.zeros_like(query_labels), 0)
    own = torch.zeros_like(query_labels, dtype=torch.bool)
    if query_ids is not None and gallery_ids is not None and len(gallery_ids):
        ids = torch.sort(gallery_ids).values
        at = torch.searchsorted(ids, query_ids).clamp_max(len(ids) - 1)
        own = ids[at] == query_ids
    return relevant - own.long(), own


@torch.no_grad()
def chance_retrieval(
    query_labels: torch.Tensor,
    gallery_labels: torch.Tensor,
    query_ids: torch.Tensor | None = None,
    gallery_ids: torch.Tensor | None = None,
    ks: Sequence[int] = (1,),
    num_distractors: int = 0,
) -> dict[str, float]:
    """``{"mAP", "R@k"...}`` a uniformly random ranking gets in expectation on this composition
    (``retrieval_metrics``'s rules: own image removed when ids are given, distractors never relevant,
    queries without a relevant item left out; nan if none has one)."""
    ks = check_ks(ks)
    query_labels, gallery_labels = query_labels.reshape(-1).long().cpu(), gallery_labels.reshape(-1).long().cpu()
    query_ids = None if query_ids is None else query_ids.reshape(-1).long().cpu()
    gallery_ids = None if gallery_ids is None else gallery_ids.reshape(-1).long().cpu()
    relevant, own = _relevant_counts(query_labels, gallery_labels, query_ids, gallery_ids)
    return chance_from_counts(relevant, len(gallery_labels) + int(num_distractors) - own.long(), ks)


def chance_from_counts(num_relevant: torch.Tensor, num_items: torch.Tensor, ks: Sequence[int] = (1,),
                       with_map: bool = True) -> dict[str, float]:
    """``chance_retrieval`` from per-query counts: relevant items and items ranked (own image removed) —
    what an engine that never holds the gallery as one tensor (``faceunlearn.metrics.streaming``) knows."""
    ks = check_ks(ks)
    relevant, items = torch.as_tensor(num_relevant).long(), torch.as_tensor(num_items).long()
    evaluated = relevant > 0
    if not bool(evaluated.any()):
        return {**({"mAP": float("nan")} if with_map else {}), **{f"R@{k}": float("nan") for k in ks}}
    relevant, items = relevant[evaluated], items[evaluated]
    out = {"mAP": float(expected_average_precision(relevant, items).mean())} if with_map else {}
    for k in ks:
        out[f"R@{k}"] = float(expected_recall_at_k(relevant, items, k).mean())
    return out
