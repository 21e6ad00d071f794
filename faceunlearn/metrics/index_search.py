"""Retrieval against galleries past memory: a FAISS index, filled in chunks, answers R@k and mAP@k.

The exact engine (``retrieval.py``) ranks every gallery item and stays the reference and the
default. For deployment-scale galleries (10⁷–10⁸ faces) ``GalleryIndex`` keeps the gallery only
inside a FAISS index — ``flat`` (exact inner products) or ``ivf`` (IVF-Flat, approximate, ``nprobe``
lists searched), on the GPU(s) when FAISS has GPU support (``shard`` splits it over all visible
GPUs) — and is added to chunk by chunk (``add``), so the gallery never sits in memory as one tensor.
Only its labels and image ids (8 bytes each) are kept beside it.

``truncated_retrieval`` then reports, from a top-``k`` search (own image excluded by image id):

* ``R@j`` for j ≤ k: CMC recall under the exact engine's tie rule (``first_relevant_ranks``: a tie with
  another person counts against the query, one with its own person's duplicates never does);
* ``mAP@k``: the truncated mean average precision,
  AP@k(q) = (1/n_q) · Σ_{i ≤ k} P@i · rel_i, with n_q the number of q's relevant gallery items —
  relevant items ranked below k add nothing, so mAP@k ≤ mAP, equal when all of them are in the top k.
  Named ``mAP@k`` so it is never mistaken for the exact full-ranking mAP.
"""
from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
import torch

from .checks import check_ks, unit_rows, vector


def _faiss():
    try:
        import faiss
    except ImportError as error:  # a clear one-line message instead of a traceback deep in FAISS
        raise ImportError("the FAISS engine needs faiss: pip install 'faceunlearn[models]' (faiss-cpu) or faiss-gpu") from error
    return faiss


class GalleryIndex:
    """A gallery held in a FAISS inner-product index, with its labels and image ids beside it.

    Args:
        dim: embedding dimension.
        kind: ``flat`` (exact) or ``ivf`` (IVF-Flat with ``nlist`` lists; trained on the first chunk added,
            which must hold at least ``nlist`` rows; FAISS warns below 39 per list).
        nprobe: lists an ``ivf`` search visits (recall against speed).
        device: ``cpu``, ``gpu`` or ``auto`` (GPU when FAISS has GPU support and a GPU is visible).
        shard: on several GPUs, split the gallery over all of them (else each holds a replica).
    """

    def __init__(self, dim: int, kind: Literal["flat", "ivf"] = "flat", nlist: int = 1024, nprobe: int = 16,
                 device: Literal["cpu", "gpu", "auto"] = "auto", shard: bool = True):
        faiss = _faiss()
        if kind not in ("flat", "ivf"):
            raise ValueError(f"index kind must be 'flat' or 'ivf', got {kind!r}")
        self.dim, self.kind, self.nlist, self.nprobe = dim, kind, nlist, nprobe
        gpus = faiss.get_num_gpus() if hasattr(faiss, "StandardGpuResources") else 0
        if device == "gpu" and gpus == 0:
            raise RuntimeError("GalleryIndex(device='gpu'): this FAISS build sees no GPU (install faiss-gpu, or use device='cpu')")
        self.on_gpu = device != "cpu" and gpus > 0
        if kind == "flat":
            index = faiss.IndexFlatIP(dim)
        else:
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        if self.on_gpu:
            options = faiss.GpuMultipleClonerOptions()
            options.shard = shard
            index = faiss.index_cpu_to_all_gpus(index, co=options)
        self.index = index
        self._labels: list[np.ndarray] = []
        self._ids: list[np.ndarray] = []

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @property
    def is_trained(self) -> bool:
        """Whether the index can take rows (a flat index always; an ``ivf`` one once its lists are trained)."""
        return bool(self.index.is_trained)

    def train(self, sample: torch.Tensor) -> None:
        """Train an ``ivf`` index's lists on ``sample`` (rows drawn across the whole gallery: training on the
        first chunk alone fits the lists to whatever that chunk holds, and recall suffers)."""
        rows = unit_rows(sample, "sample", torch.device("cpu")).contiguous().numpy()
        if len(rows) < self.nlist:
            raise ValueError(f"an ivf index with nlist={self.nlist} needs at least {self.nlist} training rows, got {len(rows)}")
        self.index.train(rows)

    def add(self, embeddings: torch.Tensor, labels: torch.Tensor, image_ids: torch.Tensor) -> None:
        """Add one chunk of gallery rows (normalised here); an untrained ``ivf`` index trains on this first
        chunk (better: ``train`` on a sample of the whole gallery first)."""
        rows = unit_rows(embeddings, "gallery", torch.device("cpu")).contiguous().numpy()
        if rows.shape[1] != self.dim:
            raise ValueError(f"embedding dim mismatch: index has d={self.dim}, chunk has d={rows.shape[1]}")
        labels = vector(labels, len(rows), "labels", "gallery", torch.device("cpu")).long().numpy()
        image_ids = vector(image_ids, len(rows), "image_ids", "gallery", torch.device("cpu")).long().numpy()
        if not self.is_trained:
            if len(rows) < self.nlist:
                raise ValueError(f"an ivf index with nlist={self.nlist} trains on its first chunk, which has only {len(rows)} rows")
            self.index.train(rows)
        self.index.add(rows)
        self._labels.append(labels)
        self._ids.append(image_ids)

    @property
    def labels(self) -> np.ndarray:
        self._labels = [np.concatenate(self._labels)] if len(self._labels) > 1 else self._labels
        return self._labels[0] if self._labels else np.zeros(0, dtype=np.int64)

    @property
    def image_ids(self) -> np.ndarray:
        self._ids = [np.concatenate(self._ids)] if len(self._ids) > 1 else self._ids
        return self._ids[0] if self._ids else np.zeros(0, dtype=np.int64)

    def search(self, query: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores [Q, k], positions [Q, k]) of the top ``k`` (position −1 where fewer exist)."""
        rows = unit_rows(query, "query", torch.device("cpu")).contiguous().numpy()
        if hasattr(self.index, "nprobe"):
            self.index.nprobe = self.nprobe
        elif self.kind == "ivf":  # a GPU clone: set nprobe through the parameter space
            _faiss().GpuParameterSpace().set_index_parameter(self.index, "nprobe", self.nprobe)
        return self.index.search(rows, k)


def merge_ranked(scores: Sequence[np.ndarray], labels: Sequence[np.ndarray], image_ids: Sequence[np.ndarray],
                 k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The top ``k`` of several ranked lists of the same queries (index shards, or a gallery and its
    distractors): each ``[Q, k_i]``, empty slots marked by image id −1; highest score first, empty slots last."""
    scores, labels, image_ids = (np.concatenate(part, axis=1) for part in (scores, labels, image_ids))
    order = np.argsort(-np.where(image_ids >= 0, scores, -np.inf), axis=1, kind="stable")[:, :k]
    return tuple(np.take_along_axis(part, order, 1) for part in (scores, labels, image_ids))


def ranked_hits(labels: np.ndarray, image_ids: np.ndarray, query_labels: np.ndarray, query_ids: np.ndarray | None,
                k: int, scores: np.ndarray | None = None):
    """``hit [Q, k]``: whether the i-th item of each query's ranked list is relevant, after removing the
    query's own image (by image id) and empty slots (id −1) — the rest keep their order. With ``scores``:
    ``(hit, scores, valid)``, the scores and the non-empty slots of the same compacted lists."""
    valid = image_ids >= 0
    if query_ids is not None:
        valid &= image_ids != query_ids[:, None]
    keep = np.argsort(~valid, axis=1, kind="stable")[:, :k]
    valid, labels = np.take_along_axis(valid, keep, 1), np.take_along_axis(labels, keep, 1)
    hit = valid & (labels == query_labels[:, None])
    if scores is None:
        return hit
    return hit, np.where(valid, np.take_along_axis(scores, keep, 1), -np.inf), valid


def first_relevant_ranks(hit: np.ndarray, scores: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per query, from its ranked list (best first): the best relevant item's rank under the exact engine's
    tie rule, ``1 + |{listed irrelevant items scoring ≥ it}|`` (0 if no relevant item is listed) — a tie
    with another person counts against the query, a tie with its own person's duplicates never does,
    whatever order the search returned tied items in — and whether that rank is *open*: the list ends
    inside the tie at that score, so unlisted items might tie with it too (unless the list holds the whole
    gallery, search deeper)."""
    listed = hit.any(1)
    best = np.take_along_axis(scores, hit.argmax(1)[:, None], 1)[:, 0]
    ahead = valid & ~hit & (scores >= best[:, None])
    rank = np.where(listed, 1 + ahead.sum(1), 0)
    lowest = np.where(valid, scores, np.inf).min(1)
    return rank, listed & (lowest >= best)


def close_open_ties(rank: np.ndarray, open_tie: np.ndarray, deeper, width: int, total: int) -> np.ndarray:
    """Ranks of queries whose list ended inside a tie, searched again twice as deep until their tie closes
    (or the whole gallery is listed). ``deeper(rows, width)`` → ``(rank, open_tie)`` of those query rows."""
    rank, open_tie = rank.copy(), open_tie.copy()
    while open_tie.any() and width < total:
        width = min(2 * width, total)
        rows = np.flatnonzero(open_tie)
        rank[rows], open_tie[rows] = deeper(rows, width)
    return rank


def truncated_scores(hit: np.ndarray, num_relevant: np.ndarray, first: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per query: the rank of the first relevant item (k + 1 if none in the top k) and
    AP@k = (1/n_q) · Σ_{i ≤ k} P@i · rel_i (``num_relevant`` = n_q). ``first``: that rank under the tie
    rule (``first_relevant_ranks``, 0 = none listed); default: the first hit's position in the list."""
    k = hit.shape[1]
    if first is None:
        first = np.where(hit.any(1), hit.argmax(1) + 1, k + 1)
    else:
        first = np.where(first > 0, first, k + 1)
    precision_at = np.cumsum(hit, axis=1) / np.arange(1, k + 1)
    ap = (precision_at * hit).sum(1) / np.maximum(num_relevant, 1)
    return first, ap


def summarise_truncated(first_hit: np.ndarray, ap: np.ndarray, num_relevant: np.ndarray, k: int, ks: Sequence[int],
                        suffix: str = "") -> dict[str, float]:
    """``R@j``, ``mAP@k`` (each + ``suffix``), ``num_queries`` and ``num_queries_without_relevant``: means over
    the queries with a relevant item, as the exact engine's ``retrieval_metrics``."""
    counted = num_relevant > 0
    evaluated = int(counted.sum())
    nan = float("nan")
    out = {f"R@{j}{suffix}": float((first_hit[counted] <= j).mean()) if evaluated else nan for j in ks}
    out[f"mAP@{k}{suffix}"] = float(ap[counted].mean()) if evaluated else nan
    out["num_queries"] = evaluated
    out["num_queries_without_relevant"] = int((~counted).sum())
    return out


def relevant_counts(query_labels: np.ndarray, gallery_labels: np.ndarray) -> np.ndarray:
    """Per query: the gallery items with its label (own image not yet removed)."""
    values, counts = np.unique(gallery_labels, return_counts=True)
    if not len(values):
        return np.zeros(len(query_labels), np.int64)
    at = np.searchsorted(values, query_labels).clip(max=len(values) - 1)
    return np.where(values[at] == query_labels, counts[at], 0)


@torch.no_grad()
def truncated_retrieval(query: torch.Tensor, query_labels: torch.Tensor, index: GalleryIndex, k: int = 100,
                        query_ids: torch.Tensor | None = None, ks: Sequence[int] = (1, 5, 10),
                        chunk: int = 8192) -> dict[str, float]:
    """``R@j`` (j in ``ks``, each ≤ k) and ``mAP@k`` (module docstring) of ``query`` against ``index``.

    Queries without a relevant gallery item (other than their own image) are left out, as in the
    exact engine; ``num_queries`` counts the rest, ``num_queries_without_relevant`` the ones left out.
    """
    ks = check_ks(ks)
    if max(ks) > k:
        raise ValueError(f"R@{max(ks)} needs a search of at least k={max(ks)}, got k={k}")
    query_labels = vector(query_labels, query.shape[0], "query_labels", "query", torch.device("cpu")).long().numpy()
    own = None if query_ids is None else vector(query_ids, query.shape[0], "query_ids", "query", torch.device("cpu")).long().numpy()
    gallery_labels, gallery_ids = index.labels, index.image_ids
    relevant = relevant_counts(query_labels, gallery_labels)
    if own is not None:  # the own image in the gallery is not a relevant item for its query
        relevant = relevant - np.isin(own, gallery_ids)
    search_k = min(k + int(own is not None), len(index))

    def ranked(rows_query, rows_labels, rows_own, width):
        scores, positions = index.search(rows_query, width)
        found = positions.clip(min=0)
        ids = np.where(positions >= 0, gallery_ids[found], -1)
        return ranked_hits(gallery_labels[found], ids, rows_labels, rows_own, width, scores)

    first_hits, aps = [], []
    for start in range(0, len(query_labels), chunk):
        rows = slice(start, start + chunk)
        rows_own = None if own is None else own[rows]
        hit, scores, valid = ranked(query[rows], query_labels[rows], rows_own, search_k)
        rank, open_tie = first_relevant_ranks(hit, scores, valid)

        def deeper(again, width, rows=rows, rows_own=rows_own):
            return first_relevant_ranks(*ranked(query[rows][again], query_labels[rows][again],
                                                None if rows_own is None else rows_own[again], width))

        rank = close_open_ties(rank, open_tie, deeper, search_k, len(index))
        first, ap = truncated_scores(hit[:, :k], relevant[rows], rank)
        first_hits.append(first)
        aps.append(ap)
    return summarise_truncated(np.concatenate(first_hits), np.concatenate(aps), relevant, k, ks)
