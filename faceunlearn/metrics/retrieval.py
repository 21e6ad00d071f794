"""Retrieval metrics: mean average precision (mAP) and CMC recall R@k.

Everything is cosine similarity on L2-normalised embeddings; queries are processed in
chunks so the full Q x G score matrix is never held in memory.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F


def _unit_rows(x: torch.Tensor, name: str) -> torch.Tensor:
    """Check an [N, d] embedding tensor and return it as float32 with unit-norm rows."""
    if not isinstance(x, torch.Tensor) or x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D tensor [N, d], got shape {tuple(getattr(x, 'shape', ()))}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 rows)")
    x = x.detach().float()
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains non-finite values (nan/inf)")
    return F.normalize(x, dim=1)


def _vector(x: torch.Tensor, n: int, name: str, of: str) -> torch.Tensor:
    """Check a 1-D per-row tensor (labels / ids) of length n."""
    if not isinstance(x, torch.Tensor) or x.ndim != 1:
        raise ValueError(f"{name} must be a 1-D tensor, got shape {tuple(getattr(x, 'shape', ()))}")
    if x.shape[0] != n:
        raise ValueError(f"length mismatch: {name} has {x.shape[0]} entries but {of} has {n} rows")
    return x.detach()


@torch.no_grad()
def retrieval_metrics(
    query: torch.Tensor,
    query_labels: torch.Tensor,
    gallery: torch.Tensor,
    gallery_labels: torch.Tensor,
    query_ids: torch.Tensor | None = None,
    gallery_ids: torch.Tensor | None = None,
    ks: Sequence[int] = (1, 5, 10),
    chunk_size: int = 1024,
) -> dict:
    """mAP and R@k of ranking the whole gallery by cosine similarity, for each query.

    If ``query_ids``/``gallery_ids`` (image ids) are given, gallery items with the query's
    own image id are removed from that query's ranking (a query never matches itself).

    For query q with relevant set R_q (gallery items with the same label, own image excluded):
        AP(q)  = 1/|R_q| * sum_{r in R_q} precision@rank(r),  precision@n = hits in top n / n
        mAP    = mean of AP(q) over queries with |R_q| >= 1   (full ranking, never cut at k)
        R@k    = fraction of those queries with a relevant item in the top k  (CMC)
    Queries with |R_q| = 0 are skipped and counted in ``num_queries_without_relevant``;
    if no query has a relevant item, mAP and R@k are nan.

    Ties: each row is sorted with a *stable* descending sort, so tied items keep gallery
    order (R@k uses the same order). On tie-free data this equals
    ``sklearn.metrics.average_precision_score`` per query; with ties it does not (sklearn
    treats tied scores as one threshold). A later version may switch to sklearn's tie rule.

    Returns {"mAP", "R@k" per k in ks, "num_queries", "num_queries_without_relevant"}.
    """
    q = _unit_rows(query, "query")
    g = _unit_rows(gallery, "gallery").to(q.device)
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"embedding dim mismatch: query has d={q.shape[1]}, gallery has d={g.shape[1]}")
    ql = _vector(query_labels, q.shape[0], "query_labels", "query").to(q.device)
    gl = _vector(gallery_labels, g.shape[0], "gallery_labels", "gallery").to(q.device)
    if (query_ids is None) != (gallery_ids is None):
        raise ValueError("query_ids and gallery_ids must be given together (or both None)")
    if query_ids is not None:
        qi = _vector(query_ids, q.shape[0], "query_ids", "query").to(q.device)
        gi = _vector(gallery_ids, g.shape[0], "gallery_ids", "gallery").to(q.device)
    ks = [int(k) for k in ks]
    if any(k < 1 for k in ks):
        raise ValueError(f"ks must be positive integers, got {ks}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")

    G = g.shape[0]
    ranks = torch.arange(1, G + 1, device=q.device, dtype=torch.float32)
    ap_sum, hits_at = 0.0, {k: 0 for k in ks}
    n_eval = n_empty = 0
    for s in range(0, q.shape[0], chunk_size):
        scores = q[s : s + chunk_size] @ g.T                       # [c, G]
        rel = ql[s : s + chunk_size, None] == gl[None, :]           # [c, G] bool
        if query_ids is not None:
            own = qi[s : s + chunk_size, None] == gi[None, :]
            scores.masked_fill_(own, float("-inf"))                 # own image sorts last...
            rel &= ~own                                             # ...and is never relevant
        n_rel = rel.sum(1)
        keep = n_rel > 0
        n_empty += int((~keep).sum())
        if not keep.any():
            continue
        if not keep.all():
            scores, rel, n_rel = scores[keep], rel[keep], n_rel[keep]
        order = torch.sort(scores, dim=1, descending=True, stable=True).indices
        del scores
        rel_sorted = rel.gather(1, order)
        del order, rel
        cum_hits = rel_sorted.cumsum(1, dtype=torch.int32)
        prec_at_hits = torch.where(rel_sorted, cum_hits / ranks, 0.0)
        ap_sum += float((prec_at_hits.sum(1) / n_rel).sum())
        n_eval += int(keep.sum())
        for k in ks:
            hits_at[k] += int(rel_sorted[:, :k].any(1).sum())

    nan = float("nan")
    out = {"mAP": ap_sum / n_eval if n_eval else nan}
    for k in ks:
        out[f"R@{k}"] = hits_at[k] / n_eval if n_eval else nan
    out["num_queries"] = n_eval
    out["num_queries_without_relevant"] = n_empty
    return out
