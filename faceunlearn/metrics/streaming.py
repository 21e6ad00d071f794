"""The FAISS evaluation engine: galleries and distractor pools streamed into indexes as they are embedded.

``RetrievalEvaluation(engine="faiss")`` hands every embedded batch to ``StreamingGalleries.add``: rows
of a benchmark's gallery or distractor subsets go into that subset group's ``GalleryIndex`` (flat or
IVF, GPU when FAISS has one) batch by batch, and rows that nothing else reads (queries, clusters, the
``forget`` subset and snapshot-only subsets are still kept) never enter the embedding table — so a
10⁷–10⁸-face gallery never sits in memory as one tensor, only its index and 16 bytes a row of labels
and ids. At compute, ``retrieval`` answers a benchmark from a top-k search:

* base variant: the gallery index's top ``k`` (own image removed by id);
* extended variant: the gallery's and the distractor pool's lists merged (distractors never relevant);
* metrics: ``R@j`` and the truncated ``mAP@k`` (``index_search``; an IVF index's numbers carry the
  suffix ``_ivf``, approximate), ``num_queries``, and the chance ``R@j`` of the composition (the
  chance of the full mAP does not apply to mAP@k and is not reported).

Under ``torch.distributed`` each process indexes the rows it embedded (a shard), searches it for all
queries, and the per-process lists are gathered and merged; relevant counts are summed over processes.
Each image must be embedded by one process (the CLI's ``use_distributed_sampler: false``): a gallery
whose rows add up to more than its subset holds is an error, not a silent double count.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Mapping, Sequence

import numpy as np
import torch

from faceunlearn.io.tidy import CHANCE_PREFIX

from .benchmarks import EXTENDED_SUFFIX, Benchmark, EmbeddingTable
from .chance import chance_from_counts
from .checks import check_ks
from .index_search import (GalleryIndex, close_open_ties, first_relevant_ranks, merge_ranked, ranked_hits, relevant_counts,
                           summarise_truncated, truncated_scores)

#: a distractor's label in a merged list: never equal to a query's
_NEVER_RELEVANT = np.iinfo(np.int64).min


@dataclass
class FaissOptions:
    """How the FAISS engine indexes galleries (``evaluation.faiss``).

    Args:
        kind: ``flat`` (exact inner products: R@j equal to the exact engine's, exact ties included) or ``ivf`` (IVF-Flat, approximate: check it against ``flat`` on your data first).
        k: the depth of the search: R@j for j ≤ k and mAP@k (relevant items below rank k add nothing).
        nlist, nprobe: an ``ivf`` index's lists and the lists a search visits.
        train_rows: rows an ``ivf`` index collects before it trains its lists and takes rows (default 39·nlist,
            FAISS's minimum for well-trained lists; fewer in the whole gallery: it trains on what there is).
        device: ``cpu``, ``gpu`` or ``auto`` (the GPUs when FAISS has GPU support).
        shard: on several GPUs, split each index over them (else each holds a replica).
        search_chunk: queries per search call.
    """

    kind: Literal["flat", "ivf"] = "flat"
    k: int = 100
    nlist: int = 1024
    nprobe: int = 16
    train_rows: int | None = None
    device: Literal["cpu", "gpu", "auto"] = "auto"
    shard: bool = True
    search_chunk: int = 8192

    def __post_init__(self):
        if self.kind not in ("flat", "ivf"):
            raise ValueError(f"evaluation.faiss.kind must be 'flat' or 'ivf', got {self.kind!r}")
        if self.k < 1 or self.nlist < 1 or self.nprobe < 1 or self.search_chunk < 1:
            raise ValueError(f"evaluation.faiss: k, nlist, nprobe and search_chunk must be positive, got {self}")

    @property
    def suffix(self) -> str:
        """Appended to every retrieval metric name: approximate numbers never pass for exact ones."""
        return "" if self.kind == "flat" else "_ivf"

    def describe(self) -> str:
        where = {"cpu": "CPU", "gpu": "GPU", "auto": "GPU if FAISS has one, else CPU"}[self.device]
        kind = "flat (exact top-k)" if self.kind == "flat" else f"IVF-Flat nlist {self.nlist}, nprobe {self.nprobe} (approximate)"
        return f"FAISS {kind}, k={self.k}, {where}"


class _Group:
    """One gallery or distractor pool (a tuple of subset names): its index, filled batch by batch."""

    def __init__(self, names: tuple[str, ...], ids: np.ndarray, options: FaissOptions):
        self.names, self.ids, self.options = names, ids, options
        self.index: GalleryIndex | None = None
        self._pending: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self._pending_rows = 0
        self._device_ids: torch.Tensor | None = None

    def rows_of(self, image_ids: torch.Tensor) -> torch.Tensor:
        if self._device_ids is None or self._device_ids.device != image_ids.device:
            self._device_ids = torch.from_numpy(self.ids).to(image_ids.device)
        return torch.isin(image_ids, self._device_ids)

    def add(self, embeddings: torch.Tensor, labels: torch.Tensor, image_ids: torch.Tensor) -> None:
        options = self.options
        if self.index is None:
            self.index = GalleryIndex(embeddings.shape[1], options.kind, options.nlist, options.nprobe, options.device, options.shard)
        if self.index.is_trained:
            self.index.add(embeddings, labels, image_ids)
            return
        # an ivf index trains on the first train_rows rows, then takes them and every later batch
        self._pending.append((embeddings.detach().float().cpu(), labels.cpu(), image_ids.cpu()))
        self._pending_rows += len(embeddings)
        if self._pending_rows >= (options.train_rows or 39 * options.nlist):
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        embeddings, labels, image_ids = (torch.cat(part) for part in zip(*self._pending))
        self._pending, self._pending_rows = [], 0
        if len(embeddings) < self.options.nlist:
            raise ValueError(f"evaluation.faiss: gallery {list(self.names)} has {len(embeddings)} rows on this process, "
                             f"fewer than an ivf index's nlist={self.options.nlist}; use a smaller nlist or kind: flat")
        self.index.train(embeddings)
        self.index.add(embeddings, labels, image_ids)

    def __len__(self) -> int:
        return 0 if self.index is None else len(self.index) + self._pending_rows

    def search(self, query: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """This process's top ``k`` per query: (scores, labels, image ids), padded with id −1 to width ``k``."""
        scores = np.full((len(query), k), -np.inf, np.float32)
        labels, ids = np.zeros((len(query), k), np.int64), np.full((len(query), k), -1, np.int64)
        if self.index is not None and len(self.index):
            found_scores, positions = self.index.search(query, min(k, len(self.index)))
            width = positions.shape[1]
            present = positions >= 0
            at = positions.clip(min=0)
            scores[:, :width] = np.where(present, found_scores, -np.inf)
            labels[:, :width] = self.index.labels[at]
            ids[:, :width] = np.where(present, self.index.image_ids[at], -1)
        return scores, labels, ids


def _distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_world_size() > 1


def _sum_over_processes(values: np.ndarray, device: torch.device) -> np.ndarray:
    if not _distributed():
        return values
    tensor = torch.from_numpy(np.ascontiguousarray(values)).to(device)
    torch.distributed.all_reduce(tensor)
    return tensor.cpu().numpy()


def _gather_lists(parts: tuple[np.ndarray, ...], device: torch.device) -> list[tuple[np.ndarray, ...]]:
    """Every process's (scores, labels, ids) lists of the same queries (one process: its own)."""
    if not _distributed():
        return [parts]
    world = torch.distributed.get_world_size()
    gathered = []
    for part in parts:
        tensor = torch.from_numpy(np.ascontiguousarray(part)).to(device)
        buckets = [torch.empty_like(tensor) for _ in range(world)]
        torch.distributed.all_gather(buckets, tensor)
        gathered.append([bucket.cpu().numpy() for bucket in buckets])
    return list(zip(*gathered))


class StreamingGalleries:
    """The galleries and distractor pools of ``benchmarks``, indexed while an evaluation embeds them.

    ``keep(image_ids)`` says which rows the embedding table must still hold; ``add`` streams a batch
    into the indexes; ``retrieval`` is the engine ``evaluate_benchmarks`` calls (module docstring).
    """

    def __init__(self, benchmarks: Mapping[str, Benchmark], subsets: Mapping[str, np.ndarray], options: FaissOptions):
        self.options = options
        self.subsets = subsets
        retrieval = [benchmark for benchmark in benchmarks.values() if benchmark.queries]
        missing = sorted({name for b in retrieval for name in (*b.gallery, *b.distractors)} - set(subsets))
        if missing:
            raise KeyError(f"benchmark subset(s) {missing} unknown; the DataModule provides {', '.join(subsets)}")
        self.groups: dict[tuple[str, ...], _Group] = {}
        for benchmark in retrieval:
            for names in (benchmark.gallery, benchmark.distractors):
                if names and names not in self.groups:
                    self.groups[names] = _Group(names, self._ids(names), options)
        # rows only a gallery or distractor pool reads stay out of the table; ``forget`` stays in (its
        # labels tell the run files whose embeddings to leave out of snapshots)
        table_names = {name for b in benchmarks.values() for name in (*b.queries, *b.clusters, *b.pairs)} | ({"forget"} & set(subsets))
        streamed = {name for names in self.groups for name in names} - table_names
        self._streamed_only = np.setdiff1d(self._ids(tuple(streamed)), self._ids(tuple(table_names & set(subsets))))
        self._streamed_device: torch.Tensor | None = None

    def _ids(self, names: tuple[str, ...]) -> np.ndarray:
        parts = [np.asarray(self.subsets[name], dtype=np.int64) for name in names]
        return np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)

    def keep(self, image_ids: torch.Tensor) -> torch.Tensor:
        """Rows of this batch the embedding table still needs (everything but gallery/distractor-only rows)."""
        if self._streamed_device is None or self._streamed_device.device != image_ids.device:
            self._streamed_device = torch.from_numpy(self._streamed_only).to(image_ids.device)
        return ~torch.isin(image_ids, self._streamed_device)

    def add(self, embeddings: torch.Tensor, labels: torch.Tensor, image_ids: torch.Tensor) -> None:
        """Stream one embedded batch into every index whose subsets hold some of its rows."""
        for group in self.groups.values():
            rows = group.rows_of(image_ids)
            if bool(rows.any()):  # one host sync per batch and index: evaluation only, never a training step
                group.add(embeddings[rows], labels[rows], image_ids[rows])

    def _checked(self, names: tuple[str, ...], device: torch.device) -> _Group:
        group = self.groups[names]
        group.flush()
        total = int(_sum_over_processes(np.array([len(group)], np.int64), device)[0])
        if total != len(group.ids):
            why = ("some images were embedded by two processes: keep trainer.use_distributed_sampler false"
                   if total > len(group.ids) else "they were not all embedded in this evaluation")
            raise RuntimeError(f"FAISS engine: subset(s) {list(names)} hold {len(group.ids)} images but the index holds {total}: {why}")
        return group

    def _lists(self, group: _Group, query: torch.Tensor, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return merge_ranked(*zip(*_gather_lists(group.search(query, width), query.device)), k=width)

    @torch.no_grad()
    def retrieval(self, benchmark: Benchmark, table: EmbeddingTable, ks: Sequence[int]) -> dict[str, float]:
        """``R@j`` and ``mAP@k`` (+ suffix), counts and chance ``R@j`` of the base and extended variants."""
        ks, k, suffix = check_ks(ks), self.options.k, self.options.suffix
        if max(ks) > k:
            raise ValueError(f"evaluation.faiss.k={k} is too shallow for R@{max(ks)}: give k ≥ {max(ks)}")
        query, query_labels, query_ids = table.take(benchmark.queries)
        device = query.device
        gallery = self._checked(benchmark.gallery, device)
        distractors = self._checked(benchmark.distractors, device) if benchmark.distractors else None
        labels_np, ids_np = query_labels.long().cpu().numpy(), query_ids.long().cpu().numpy()
        local = relevant_counts(labels_np, gallery.index.labels if gallery.index is not None else np.zeros(0, np.int64))
        own = np.isin(ids_np, gallery.ids)  # the query's own image is in the gallery: not a relevant item
        relevant = _sum_over_processes(local, device) - own
        width = k + 1  # one more than k: the own image may take a slot
        variants = {"": [], EXTENDED_SUFFIX: []} if distractors is not None else {"": []}
        sizes = {"": len(gallery.ids), EXTENDED_SUFFIX: len(gallery.ids) + (len(distractors.ids) if distractors else 0)}

        def ranked(rows: np.ndarray, depth: int) -> dict[str, tuple[np.ndarray, ...]]:
            """Every variant's (hit, scores, valid) lists of the query rows, ``depth`` deep."""
            rows_query = query[torch.from_numpy(rows).to(device)]
            base = self._lists(gallery, rows_query, depth)
            lists = {"": base}
            if distractors is not None:
                scores, _, ids = self._lists(distractors, rows_query, depth)
                never = np.full_like(ids, _NEVER_RELEVANT)
                lists[EXTENDED_SUFFIX] = merge_ranked((base[0], scores), (base[1], never), (base[2], ids), depth)
            return {variant: ranked_hits(labels, ids, labels_np[rows], ids_np[rows], depth, scores)
                    for variant, (scores, labels, ids) in lists.items()}

        chunk = self.options.search_chunk
        for start in range(0, len(query), chunk):
            rows = np.arange(start, min(start + chunk, len(query)))
            for variant, (hit, scores, valid) in ranked(rows, width).items():
                rank, open_tie = first_relevant_ranks(hit, scores, valid)

                def deeper(again, depth, rows=rows, variant=variant):  # every process flags the same rows
                    return first_relevant_ranks(*ranked(rows[again], depth)[variant])

                rank = close_open_ties(rank, open_tie, deeper, width, sizes[variant])
                variants[variant].append(truncated_scores(hit[:, :k], relevant[rows], rank))
        metrics = {}
        for variant, parts in variants.items():
            first, ap = (np.concatenate(part) for part in zip(*parts))
            name = benchmark.name + variant
            metrics.update({f"{name}/{key}": value for key, value in summarise_truncated(first, ap, relevant, k, ks, suffix).items()})
            items = len(gallery.ids) - own + (len(distractors.ids) if variant else 0)
            chance = chance_from_counts(torch.from_numpy(relevant), torch.from_numpy(items), ks, with_map=False)
            metrics.update({f"{name}/{CHANCE_PREFIX}{key}": value for key, value in chance.items()})
        return metrics
