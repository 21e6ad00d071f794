"""Top-k cosine neighbours with FAISS: neighbour lists for reports, and search-based CMC R@k.

torch tensors go straight to FAISS (``faiss.contrib.torch_utils``): CPU tensors use the exact
brute-force ``faiss.knn`` (BLAS inner products + heap), CUDA tensors use ``faiss.knn_gpu`` when the
installed FAISS has GPU support (the ``gpu`` extra), and fall back to the CPU path otherwise.
The exact full-ranking mAP is not computed here: it needs every relevant item's rank, which
``retrieval.py`` counts without a top-k search (see its docstring for which path computes what).
"""
from __future__ import annotations

from typing import Sequence

import faiss
import faiss.contrib.torch_utils  # noqa: F401  (lets faiss.knn / knn_gpu take torch tensors)
import torch

from .checks import check_ks, unit_rows, vector

_QUERY_CHUNK = 16384  # bounds FAISS's Q×k result buffers and the own-image bookkeeping


def _faiss_gpu_available() -> bool:
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


_gpu_resources = None


def _knn(query: torch.Tensor, gallery: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact inner-product top-k of unit rows (float32, contiguous), on the tensors' device."""
    global _gpu_resources
    if query.is_cuda and _faiss_gpu_available():
        if _gpu_resources is None:
            _gpu_resources = faiss.StandardGpuResources()
        return faiss.knn_gpu(_gpu_resources, query, gallery, k, metric=faiss.METRIC_INNER_PRODUCT)
    scores, indices = faiss.knn(query.cpu(), gallery.cpu(), k, metric=faiss.METRIC_INNER_PRODUCT)
    return scores.to(query.device), indices.to(query.device)


@torch.no_grad()
def nearest_neighbours(
    query: torch.Tensor,
    gallery: torch.Tensor,
    k: int,
    query_ids: torch.Tensor | None = None,
    gallery_ids: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` most cosine-similar gallery items of every query, best first.

    Returns ``(scores [Q, k] float32, indices [Q, k] int64)``; with image ids, a query's own image
    is skipped (gallery ids must then be unique). If the gallery has fewer than ``k`` eligible
    items the tail is padded with score -inf and index -1. Ties are ordered as FAISS returns them.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if (query_ids is None) != (gallery_ids is None):
        raise ValueError("query_ids and gallery_ids must be given together (or both None)")
    q = unit_rows(query, "query").contiguous()
    g = unit_rows(gallery, "gallery", q.device).contiguous()
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"embedding dim mismatch: query has d={q.shape[1]}, gallery has d={g.shape[1]}")
    exclude_own = query_ids is not None
    if exclude_own:
        qi = vector(query_ids, q.shape[0], "query_ids", "query", q.device).long()
        gi = vector(gallery_ids, g.shape[0], "gallery_ids", "gallery", q.device).long()
        if torch.unique(gi).numel() != gi.numel():
            raise ValueError("gallery_ids must be unique")
    search_k = min(k + int(exclude_own), g.shape[0])  # one spare slot for the own image
    all_scores, all_indices = [], []
    for start in range(0, q.shape[0], _QUERY_CHUNK):
        scores, indices = _knn(q[start : start + _QUERY_CHUNK], g, search_k)
        indices = indices.long()
        if exclude_own:
            own = gi[indices.clamp_min(0)] == qi[start : start + _QUERY_CHUNK, None]
            # stable sort moves the own image to the end of the row, keeping everything else in order
            keep_order = torch.sort(own.to(torch.int8), dim=1, stable=True).indices
            scores = scores.gather(1, keep_order).masked_fill_(own.gather(1, keep_order), float("-inf"))
            indices = indices.gather(1, keep_order).masked_fill_(own.gather(1, keep_order), -1)
        pad = k - scores.shape[1] if scores.shape[1] < k else 0
        scores, indices = scores[:, :k], indices[:, :k]
        if pad:
            scores = torch.nn.functional.pad(scores, (0, pad), value=float("-inf"))
            indices = torch.nn.functional.pad(indices, (0, pad), value=-1)
        all_scores.append(scores)
        all_indices.append(indices)
    return torch.cat(all_scores), torch.cat(all_indices)


@torch.no_grad()
def cmc_recall(
    query: torch.Tensor,
    query_labels: torch.Tensor,
    gallery: torch.Tensor,
    gallery_labels: torch.Tensor,
    query_ids: torch.Tensor | None = None,
    gallery_ids: torch.Tensor | None = None,
    ks: Sequence[int] = (1, 5, 10),
) -> dict:
    """CMC R@k from a FAISS top-max(k) search (own image excluded by id), over queries with a relevant item.

    Equals ``retrieval_metrics``'s R@k, exact ties included: the best relevant item's rank is 1 + the
    irrelevant items scoring at least as high, whatever order FAISS returned tied items in (a list that
    ends inside such a tie is searched again, deeper). Use it when only R@k is wanted: it skips the rank
    counting.
    """
    import numpy as np

    from .index_search import close_open_ties, first_relevant_ranks

    ks = check_ks(ks)
    scores, indices = nearest_neighbours(query, gallery, max(ks), query_ids, gallery_ids)
    device = indices.device
    ql = vector(query_labels, indices.shape[0], "query_labels", "query", device).long()
    gl = vector(gallery_labels, gallery.shape[0], "gallery_labels", "gallery", device).long()

    def ranks(rows: torch.Tensor, found_scores: torch.Tensor, found: torch.Tensor):
        valid = found >= 0
        hit = valid & (gl[found.clamp_min(0)] == ql[rows, None])
        return first_relevant_ranks(hit.cpu().numpy(), found_scores.cpu().numpy(), valid.cpu().numpy())

    def deeper(again: np.ndarray, width: int):
        rows = torch.from_numpy(again).to(device)
        return ranks(rows, *nearest_neighbours(query[rows.to(query.device)], gallery, width,
                                               None if query_ids is None else query_ids[rows.to(query_ids.device)],
                                               gallery_ids))

    rank, open_tie = ranks(torch.arange(len(ql), device=device), scores, indices)
    best_rank = torch.from_numpy(close_open_ties(rank, open_tie, deeper, max(ks), gallery.shape[0])).to(device)
    # a query with a relevant item: its label occurs in the gallery on some image other than its own
    label_values, counts = torch.unique(gl, return_counts=True)
    position = torch.searchsorted(label_values, ql).clamp_max(label_values.numel() - 1)
    available = torch.where(label_values[position] == ql, counts[position], 0)
    if query_ids is not None:
        gi_sorted, order = torch.sort(vector(gallery_ids, gl.shape[0], "gallery_ids", "gallery", device).long())
        qi = vector(query_ids, ql.shape[0], "query_ids", "query", device).long()
        at = torch.searchsorted(gi_sorted, qi).clamp_max(gi_sorted.numel() - 1)
        own_in_gallery = gi_sorted[at] == qi
        available = available - (own_in_gallery & (gl[order[at]] == ql)).long()
    evaluated = available > 0
    out = {}
    num_evaluated = int(evaluated.sum())
    for k in ks:
        hit = (best_rank > 0) & (best_rank <= k) & evaluated
        out[f"R@{k}"] = int(hit.sum()) / num_evaluated if num_evaluated else float("nan")
    out["num_queries"] = num_evaluated
    out["num_queries_without_relevant"] = int((~evaluated).sum())
    return out
