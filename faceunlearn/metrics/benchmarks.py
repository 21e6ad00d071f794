"""Benchmarks as configuration: named subsets in, every metric of every benchmark out.

A benchmark names DataModule subsets (SPEC §5)::

    forget: {queries: forget_test, gallery: [forget], distractors: [distractors], clusters: forget}

- ``queries`` + ``gallery``: retrieval mAP and R@k, logged as ``forget/mAP`` ... (the *base* variant);
- ``distractors`` (optional): the *extended* variant, gallery ∪ distractors, logged as
  ``forget_extended/mAP`` ...; both variants come from one pass over the gallery;
- beside each retrieval variant its chance level, the exact mAP and R@k a random ranking of that
  composition gets in expectation (``forget/chance_mAP``, ``forget/chance_R@1`` ...; ``chance.py``);
- ``clusters``: Cluster Compactness ``CS`` and centroid accuracies of that subset — ``acc`` with the
  CosFace head's class weights as centroids (the paper's centroid accuracy), ``acc_mean`` with
  leave-one-out normalised-mean centroids;
- ``pairs``: 1:1 verification over every pair of those subsets' images (genuine: same identity,
  impostor: not), logged as ``<benchmark>/TAR@FAR=0.001`` and ``…=0.0001`` (``VERIFICATION_FARS``) — the
  retention measure that can fail where retrieval mAP sits at its ceiling.

A *pooled* held-out benchmark names every source's held-out subsets at once, e.g. (real faces)::

    heldout_pooled: {queries: [holdout_query, "orl:holdout_query"], gallery: [holdout_gallery, "orl:holdout_gallery"],
                     pairs: [holdout, "orl:holdout"]}

Every subset is looked up once per evaluation in one embedding table (rows addressed by image
id), so a distractor pool is embedded once and shared by every benchmark that uses it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from faceunlearn.io.tidy import CHANCE_PREFIX

from .centroids import centroid_accuracy, head_accuracy
from .chance import chance_retrieval
from .compactness import cluster_compactness
from .retrieval import retrieval_metrics, retrieval_metrics_extended
from .verification import pair_scores, tar_at_far

EXTENDED_SUFFIX = "_extended"
#: the FARs of a benchmark's ``pairs`` verification
VERIFICATION_FARS = (1e-3, 1e-4)


def _names(value) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value or ())


@dataclass(frozen=True)
class Benchmark:
    """One benchmark's subset names (see the module docstring)."""

    name: str
    queries: tuple[str, ...] = ()
    gallery: tuple[str, ...] = ()
    distractors: tuple[str, ...] = ()
    clusters: tuple[str, ...] = ()
    pairs: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, name: str, spec: dict) -> "Benchmark":
        allowed = {"queries", "gallery", "distractors", "clusters", "pairs"}
        if "/" in name:
            raise ValueError(f"benchmark name {name!r} must not contain '/' (metrics are logged as <benchmark>/<metric>)")
        if not isinstance(spec, dict) or set(spec) - allowed:
            raise ValueError(f"benchmark {name!r}: unknown keys {sorted(set(spec) - allowed)}; allowed: {sorted(allowed)}")
        benchmark = cls(name, *(_names(spec.get(key)) for key in ("queries", "gallery", "distractors", "clusters", "pairs")))
        if bool(benchmark.queries) != bool(benchmark.gallery) or not (benchmark.queries or benchmark.clusters or benchmark.pairs):
            raise ValueError(f"benchmark {name!r} must give queries + gallery, clusters and/or pairs (subset names); got keys {sorted(spec)}")
        if benchmark.distractors and not benchmark.queries:
            raise ValueError(f"benchmark {name!r}: distractors extend a gallery, so queries + gallery are needed too")
        return benchmark

    @property
    def subsets(self) -> set[str]:
        return {*self.queries, *self.gallery, *self.distractors, *self.clusters, *self.pairs}


def parse_benchmarks(config: dict[str, dict]) -> dict[str, Benchmark]:
    return {name: Benchmark.from_config(name, spec) for name, spec in config.items()}


class EmbeddingTable:
    """Embeddings, labels and image ids of one evaluation; subsets are fetched by name, once each."""

    def __init__(self, embeddings: torch.Tensor, labels: torch.Tensor, image_ids: torch.Tensor, subsets: dict[str, np.ndarray]):
        self.embeddings, self.labels, self.image_ids = embeddings, labels, image_ids
        self.order = torch.argsort(image_ids)
        self.sorted_ids = image_ids[self.order]
        self.subsets = subsets
        self._cache: dict[tuple[str, ...], tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def holds(self, name: str) -> bool:
        """Whether every image of subset ``name`` was embedded in this evaluation."""
        if name not in self.subsets:
            return False
        wanted = torch.from_numpy(np.asarray(self.subsets[name])).to(self.image_ids)
        found = torch.searchsorted(self.sorted_ids, wanted).clamp_max(max(len(self.sorted_ids) - 1, 0))
        return len(self.sorted_ids) > 0 and bool(torch.equal(self.sorted_ids[found], wanted))

    def take(self, names: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if names not in self._cache:
            missing = [name for name in names if name not in self.subsets]
            if missing:
                raise KeyError(f"benchmark subset(s) {missing} unknown; the DataModule provides {', '.join(self.subsets)}")
            wanted = torch.from_numpy(np.unique(np.concatenate([self.subsets[name] for name in names]))).to(self.image_ids)
            rows = self.order[torch.searchsorted(self.sorted_ids, wanted).clamp_max(len(self.sorted_ids) - 1)]
            if not torch.equal(self.image_ids[rows], wanted):
                raise RuntimeError(f"subset(s) {list(names)} were not all embedded in this evaluation")
            self._cache[names] = (self.embeddings[rows], self.labels[rows], self.image_ids[rows])
        return self._cache[names]


#: a retrieval engine: (benchmark, table, ks) → ``{"<benchmark>[_extended]/<metric>": value}``
RetrievalEngine = Callable[[Benchmark, EmbeddingTable, Sequence[int]], dict]


@torch.no_grad()
def exact_retrieval(benchmark: Benchmark, table: EmbeddingTable, ks: Sequence[int]) -> dict[str, float]:
    """The exact engine (the reference and the default): full-ranking mAP and R@k of the base and the
    extended variant, each beside its chance level."""
    name, metrics = benchmark.name, {}
    query, query_labels, query_ids = table.take(benchmark.queries)
    gallery, gallery_labels, gallery_ids = table.take(benchmark.gallery)
    extended = None
    if benchmark.distractors:
        distractors, _, _ = table.take(benchmark.distractors)
        base, extended = retrieval_metrics_extended(
            query, query_labels, gallery, gallery_labels, distractors, query_ids, gallery_ids, ks=ks)
    else:
        base = retrieval_metrics(query, query_labels, gallery, gallery_labels, query_ids, gallery_ids, ks=ks)
    metrics.update({f"{name}/{key}": value for key, value in base.items()})
    # what a random ranking of this very composition scores (exact expectation), beside every number
    chance = chance_retrieval(query_labels, gallery_labels, query_ids, gallery_ids, ks=ks)
    metrics.update({f"{name}/{CHANCE_PREFIX}{key}": value for key, value in chance.items()})
    if extended is not None:
        metrics.update({f"{name}{EXTENDED_SUFFIX}/{key}": value for key, value in extended.items()})
        chance = chance_retrieval(query_labels, gallery_labels, query_ids, gallery_ids, ks=ks,
                                  num_distractors=len(distractors))
        metrics.update({f"{name}{EXTENDED_SUFFIX}/{CHANCE_PREFIX}{key}": value for key, value in chance.items()})
    return metrics


@torch.no_grad()
def evaluate_benchmarks(
    benchmarks: dict[str, Benchmark],
    table: EmbeddingTable,
    head_weight: torch.Tensor | None = None,
    ks: Sequence[int] = (1, 5, 10),
    retrieval: RetrievalEngine | None = None,
) -> dict[str, float]:
    """Every metric of every benchmark, as ``{"<benchmark>/<metric>": value}`` (fractions, counts).

    ``retrieval`` computes the retrieval numbers (default ``exact_retrieval``; the FAISS engine of
    ``faceunlearn.metrics.streaming`` searches indexes filled while the images were embedded)."""
    metrics: dict[str, float] = {}
    for name, benchmark in benchmarks.items():
        if benchmark.queries:
            metrics.update((retrieval or exact_retrieval)(benchmark, table, ks))
        if benchmark.clusters:
            embeddings, labels, _ = table.take(benchmark.clusters)
            metrics[f"{name}/CS"] = cluster_compactness(embeddings, labels)
            metrics[f"{name}/acc_mean"] = centroid_accuracy(embeddings, labels)
            if head_weight is not None and int(labels.max()) < head_weight.shape[0]:
                metrics[f"{name}/acc"] = head_accuracy(embeddings, labels, head_weight)
        if benchmark.pairs:
            embeddings, labels, _ = table.take(benchmark.pairs)
            genuine, impostor = pair_scores(embeddings, labels)
            for far, tar in tar_at_far(genuine, impostor, VERIFICATION_FARS).items():
                metrics[f"{name}/TAR@FAR={far:g}"] = tar
    return metrics
