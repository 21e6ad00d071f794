"""Exact retrieval metrics at gallery scale: full-ranking mAP and CMC R@k by chunked rank counting.

How it is computed (never a Q×G matrix, never a sorted gallery row)
-------------------------------------------------------------------
For a query with relevant set ``R`` (gallery items of its identity, its own image removed), average
precision needs only two counts per relevant item ``r``:

    n_rel(r) = |{p ∈ R : s_p ≥ s_r}|      n_all(r) = |{g ∈ gallery : s_g ≥ s_r}|
    AP = 1/|R| · Σ_{r∈R} n_rel(r) / n_all(r)          (precision at r's rank, averaged over R)

and CMC R@k is a hit iff the best relevant item's rank ``min_r n_all(r)`` is ≤ k. Queries are
processed in chunks of ``c`` (chosen from a memory budget): one GEMM gives the chunk's c × G
float32 cosines, the relevant items' scores are gathered from that same matrix (so thresholds and
counts agree bit for bit) and sorted, and every score is bucketed among them with
``torch.searchsorted``; a per-row histogram with a suffix sum yields ``n_all`` for every relevant
item. Scores below a query's lowest relevant score cannot change any rank, so when they are the
large majority (a good model) only the rest are bucketed. Cost: the GEMM plus one pass over its
output; memory: one chunk. A distractor set is counted the same way and its counts are added, so
the base benchmark and its distractor-extended variant come out of one pass over the gallery.

Tie rules. AP: an item whose score equals a relevant item's score counts as ranked *before* it (the
``≥`` above) — the pessimistic rule, which is exactly what ``sklearn.metrics.average_precision_score``
does (it treats tied scores as one threshold); mAP therefore equals sklearn's per-query AP averaged,
ties included. R@k: the best relevant item's rank is ``1 + |{g irrelevant : s_g ≥ s_best}|`` —
pessimistic against *other* people (a tie with another person counts against the query), never
against the query's own person: two exact duplicate photos of the query's person at the top score
are a hit at rank 1, not a miss at rank 2 (the face packs hold such duplicates).

Which path computes what: mAP and R@k come from this counting pass (mAP needs the rank of *every*
relevant item, which a top-k search cannot give short of k = G; R@k then costs nothing more and
follows the same tie rule). FAISS (``neighbours.py``) computes top-k neighbour lists and a
search-based R@k (``cmc_recall``) for when only R@k is wanted; tests check the two R@k paths agree.

Inputs of any float dtype (float16/bfloat16 included) are upcast to float32 and L2-normalised, on
the query tensor's device (CPU or CUDA) unless ``device`` is given.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from .checks import check_ks, unit_rows, vector

#: bytes held per score entry in a chunk: float32 score, int32 bucket, bool mask (+ slack for the sparse path)
_BYTES_PER_ENTRY = 4 + 4 + 1 + 7


def default_memory_budget(device: torch.device) -> int:
    """Working memory for one query chunk: 512 MiB on CPU, a quarter of free memory (≤ 4 GiB) on CUDA."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(min(4 << 30, free // 4))
    return 512 << 20


@dataclass
class _Labelled:
    """Embeddings (unit rows), integer labels and optional image ids of one side of a benchmark."""

    embeddings: torch.Tensor
    labels: torch.Tensor
    ids: torch.Tensor | None


def _prepare(embeddings, labels, ids, name, device) -> _Labelled:
    x = unit_rows(embeddings, name, device)
    y = vector(labels, x.shape[0], f"{name}_labels", name, x.device)
    if y.is_floating_point() or y.is_complex():
        raise ValueError(f"{name}_labels must be integer identity labels, got {y.dtype}")
    i = None if ids is None else vector(ids, x.shape[0], f"{name}_ids", name, x.device).long()
    return _Labelled(x, y.long(), i)


def _count_at_or_above(thresholds: torch.Tensor, scores: torch.Tensor, out: torch.Tensor) -> None:
    """``out[i, j] += |{n : scores[i, n] ≥ thresholds[i, j]}|`` for ascending threshold rows.

    Thresholds may be padded with +inf (never reached by a finite score).
    """
    rows, num_thresholds = thresholds.shape
    bins = num_thresholds + 1
    reaching = scores >= thresholds[:, :1]  # only these can be ≥ some threshold
    num_reaching = int(torch.count_nonzero(reaching))
    if num_reaching == 0:
        return
    if num_reaching * num_thresholds <= scores.numel():
        # sparse (most scores below every threshold, as for a good model): bucket only the reaching
        # scores; the per-entry threshold rows then take no more memory than the scores themselves
        row, col = reaching.nonzero(as_tuple=True)
        bucket = torch.searchsorted(thresholds[row], scores[row, col][:, None], right=True).squeeze(1)
        histogram = torch.bincount(row * bins + bucket, minlength=rows * bins).view(rows, bins)
    else:
        # dense: bucket = number of thresholds ≤ score, for every score; one bincount over
        # row-offset buckets (int32: rows × bins is far below 2³¹) makes the per-row histograms
        bucket = torch.searchsorted(thresholds, scores, right=True, out_int32=True)
        bucket += (torch.arange(rows, dtype=torch.int32, device=scores.device) * bins)[:, None]
        histogram = torch.bincount(bucket.view(-1), minlength=rows * bins).view(rows, bins)
    # count ≥ threshold j  =  Σ_{b > j} histogram[b]
    out += histogram.flip(1).cumsum(1).flip(1)[:, 1:]


def _own_image_columns(query: _Labelled, gallery: _Labelled):
    """Per query, the gallery column holding its own image (-1 if none); None when ids are absent/disjoint."""
    if query.ids is None or gallery.ids is None:
        return None
    order = torch.argsort(gallery.ids)
    sorted_ids = gallery.ids[order]
    if sorted_ids.numel() > 1 and bool((sorted_ids[1:] == sorted_ids[:-1]).any()):
        duplicated = sorted_ids[1:][sorted_ids[1:] == sorted_ids[:-1]][:5].tolist()
        raise ValueError(f"gallery_ids must be unique (an image listed twice would be ranked twice); repeated: {duplicated}")
    position = torch.searchsorted(sorted_ids, query.ids).clamp_max(len(sorted_ids) - 1)
    found = sorted_ids[position] == query.ids
    if not bool(found.any()):
        return None
    return torch.where(found, order[position], torch.full_like(position, -1))


def _ap_and_best_rank(count, relevant_at_or_above, at_or_above):
    """AP and best relevant rank per row from the counts at each sorted relevant score (first ``count`` valid)."""
    valid = torch.arange(at_or_above.shape[1], device=count.device) < count[:, None]
    ranks = torch.where(valid, at_or_above, 1)
    precision = torch.where(valid, relevant_at_or_above.double() / ranks, 0.0)
    has_relevant = count > 0
    ap = torch.where(has_relevant, precision.sum(1) / count.clamp_min(1), float("nan"))
    # the best relevant item's rank: 1 + the *irrelevant* items scoring at least as high (the highest relevant
    # score sorts last); relevant items tied with it (a person's duplicate photos) never count against the query
    last = (count - 1).clamp_min(0)[:, None]
    best = 1 + ranks.gather(1, last).squeeze(1) - relevant_at_or_above.gather(1, last).squeeze(1)
    return ap, torch.where(has_relevant, best, 0)


@torch.no_grad()
def _rank_counts(query: _Labelled, gallery: _Labelled, distractors: torch.Tensor | None, chunk_size, memory_budget):
    """Per query: AP and best relevant rank on the gallery, and on gallery ∪ distractors.

    Returns ``(num_relevant, ap, best_rank, ap_extended, best_rank_extended)``; AP is float64 and
    nan (best rank 0) for queries without a relevant item; the extended pair is None without distractors.
    """
    device = query.embeddings.device
    num_queries, num_gallery = query.embeddings.shape[0], gallery.embeddings.shape[0]
    num_distractors = 0 if distractors is None else distractors.shape[0]
    if chunk_size is None:
        budget = memory_budget or default_memory_budget(device)
        chunk_size = max(1, budget // (_BYTES_PER_ENTRY * max(num_gallery, num_distractors)))
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")

    # relevant items of a label = a contiguous run of the label-sorted gallery
    gallery_order = torch.argsort(gallery.labels, stable=True)
    sorted_labels = gallery.labels[gallery_order]
    run_start = torch.searchsorted(sorted_labels, query.labels)
    run_length = torch.searchsorted(sorted_labels, query.labels, right=True) - run_start
    own_column = _own_image_columns(query, gallery)

    num_relevant = torch.zeros(num_queries, dtype=torch.int64, device=device)
    outputs = [torch.full((num_queries,), float("nan"), dtype=torch.float64, device=device),
               torch.zeros(num_queries, dtype=torch.int64, device=device)]
    if distractors is not None:
        outputs += [outputs[0].clone(), outputs[1].clone()]

    for start in range(0, num_queries, chunk_size):
        chunk = slice(start, min(start + chunk_size, num_queries))
        rows = chunk.stop - chunk.start
        width = int(run_length[chunk].max())
        if width == 0:
            continue
        offsets = torch.arange(width, device=device)
        columns = gallery_order[(run_start[chunk, None] + offsets).clamp_max(num_gallery - 1)]
        valid = offsets < run_length[chunk, None]

        scores = query.embeddings[chunk] @ gallery.embeddings.T  # [rows, G]
        if own_column is not None:
            own = own_column[chunk]
            has_own = own >= 0
            scores[torch.nonzero(has_own).squeeze(1), own[has_own]] = float("-inf")  # never ranked
            valid &= columns != own[:, None]  # and never relevant
        relevant_scores = scores.gather(1, columns).masked_fill_(~valid, float("inf"))
        thresholds = relevant_scores.sort(dim=1).values  # ascending, +inf padding last
        count = valid.sum(1)
        # n_rel at sorted position j = |valid| − |{relevant < t_j}|
        relevant_at_or_above = count[:, None] - torch.searchsorted(thresholds, thresholds)
        at_or_above = torch.zeros(rows, width, dtype=torch.int64, device=device)
        _count_at_or_above(thresholds, scores, at_or_above)
        del scores

        num_relevant[chunk] = count
        outputs[0][chunk], outputs[1][chunk] = _ap_and_best_rank(count, relevant_at_or_above, at_or_above)
        if distractors is not None:  # extended: add the distractors that reach each threshold
            extra = query.embeddings[chunk] @ distractors.T
            _count_at_or_above(thresholds, extra, at_or_above)
            del extra
            outputs[2][chunk], outputs[3][chunk] = _ap_and_best_rank(count, relevant_at_or_above, at_or_above)
    return (num_relevant, *outputs) if distractors is not None else (num_relevant, *outputs, None, None)


def _summarise(num_relevant, ap, best_rank, ks) -> dict:
    evaluated = num_relevant > 0
    num_evaluated = int(evaluated.sum())
    nan = float("nan")
    out = {"mAP": float(ap[evaluated].mean()) if num_evaluated else nan}
    for k in ks:
        out[f"R@{k}"] = float((best_rank[evaluated] <= k).double().mean()) if num_evaluated else nan
    out["num_queries"] = num_evaluated
    out["num_queries_without_relevant"] = int((~evaluated).sum())
    return out


def _inputs(query, query_labels, gallery, gallery_labels, query_ids, gallery_ids, distractors, device):
    if (query_ids is None) != (gallery_ids is None):
        raise ValueError("query_ids and gallery_ids must be given together (or both None)")
    device = torch.device(device) if device is not None else query.device
    q = _prepare(query, query_labels, query_ids, "query", device)
    g = _prepare(gallery, gallery_labels, gallery_ids, "gallery", device)
    d = None if distractors is None else unit_rows(distractors, "distractors", device)
    for name, side in (("gallery", g.embeddings), ("distractors", d)):
        if side is not None and side.shape[1] != q.embeddings.shape[1]:
            raise ValueError(f"embedding dim mismatch: query has d={q.embeddings.shape[1]}, {name} has d={side.shape[1]}")
    return q, g, d


@torch.no_grad()
def retrieval_metrics(
    query: torch.Tensor,
    query_labels: torch.Tensor,
    gallery: torch.Tensor,
    gallery_labels: torch.Tensor,
    query_ids: torch.Tensor | None = None,
    gallery_ids: torch.Tensor | None = None,
    ks: Sequence[int] = (1, 5, 10),
    *,
    distractors: torch.Tensor | None = None,
    chunk_size: int | None = None,
    memory_budget: int | None = None,
    device: torch.device | str | None = None,
) -> dict:
    """mAP over the full ranking and CMC R@k of each query against the gallery (SPEC §4).

    For query q with relevant set R_q (gallery items with its label; if ``query_ids`` and
    ``gallery_ids`` are given, the gallery item with the query's own image id is removed from its
    ranking altogether):

        AP(q) = 1/|R_q| Σ_{r∈R_q} precision@rank(r)          (whole gallery ranked, never cut at k)
        mAP   = mean of AP(q) over queries with |R_q| ≥ 1
        R@k   = fraction of those queries with a relevant item in the top k

    Ties with other people count against the query, ties among its own person's items do not (module docstring). ``distractors`` [D, d] are
    extra gallery items that are never relevant. Queries without a relevant item are left out of
    the means and counted in ``num_queries_without_relevant``; if none has one, mAP and R@k are nan.

    ``chunk_size`` (queries per chunk) defaults to what ``memory_budget`` bytes allow.
    Returns ``{"mAP", "R@k" per k, "num_queries", "num_queries_without_relevant"}`` (fractions).
    """
    ks = check_ks(ks)
    q, g, d = _inputs(query, query_labels, gallery, gallery_labels, query_ids, gallery_ids, distractors, device)
    num_relevant, ap, best, ap_extended, best_extended = _rank_counts(q, g, d, chunk_size, memory_budget)
    if d is not None:
        return _summarise(num_relevant, ap_extended, best_extended, ks)
    return _summarise(num_relevant, ap, best, ks)


@torch.no_grad()
def retrieval_metrics_extended(
    query: torch.Tensor,
    query_labels: torch.Tensor,
    gallery: torch.Tensor,
    gallery_labels: torch.Tensor,
    distractors: torch.Tensor,
    query_ids: torch.Tensor | None = None,
    gallery_ids: torch.Tensor | None = None,
    ks: Sequence[int] = (1, 5, 10),
    *,
    chunk_size: int | None = None,
    memory_budget: int | None = None,
    device: torch.device | str | None = None,
) -> tuple[dict, dict]:
    """``(base, extended)``: ``retrieval_metrics`` on the gallery and on gallery ∪ distractors.

    One pass over the gallery serves both (the distractors' counts are added to the gallery's),
    so this costs one gallery pass less than two ``retrieval_metrics`` calls.
    """
    ks = check_ks(ks)
    q, g, d = _inputs(query, query_labels, gallery, gallery_labels, query_ids, gallery_ids, distractors, device)
    num_relevant, ap, best, ap_extended, best_extended = _rank_counts(q, g, d, chunk_size, memory_budget)
    return _summarise(num_relevant, ap, best, ks), _summarise(num_relevant, ap_extended, best_extended, ks)
