"""The benchmarks as a ``torchmetrics.Metric``: embeddings accumulate per process, torchmetrics syncs them.

``BenchmarkMetrics`` keeps three concatenated states (embeddings, labels, image ids). Under
``torch.distributed`` torchmetrics' own state sync (``dist_reduce_fx="cat"``, ranks of unequal
length allowed) gathers every rank's rows at ``compute``; rows that a DistributedSampler's padding
repeats are dropped by image id. The compute itself is the pure functions of
``faceunlearn.metrics.benchmarks`` (retrieval mAP/R@k base + extended, cluster compactness,
centroid accuracies), so one process and N processes give the same numbers.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from faceunlearn.metrics.benchmarks import Benchmark, EmbeddingTable, evaluate_benchmarks


def drop_duplicate_ids(image_ids: torch.Tensor, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Keep the first row of every image id (DistributedSampler repeats images to even out ranks)."""
    order = torch.argsort(image_ids, stable=True)
    sorted_ids = image_ids[order]
    first = torch.ones_like(sorted_ids, dtype=torch.bool)
    first[1:] = sorted_ids[1:] != sorted_ids[:-1]
    keep = order[first].sort().values
    return (image_ids[keep], *(tensor[keep] for tensor in tensors))


class BenchmarkMetrics(Metric):
    """Every metric of ``benchmarks`` (``{name: Benchmark}``) over the embeddings seen since ``reset``.

    ``update(embeddings, labels, image_ids)`` adds a batch; ``compute()`` returns
    ``{"<benchmark>/<metric>": float}``. Before computing, set ``subsets`` (subset name → image ids,
    ``FaceDataModule.subsets``) and, for the head accuracy, ``head_weight`` (CosFace class weights, or
    None). ``table`` holds the last computed ``EmbeddingTable`` (for embedding snapshots).
    """

    full_state_update = False
    is_differentiable = False

    def __init__(self, benchmarks: Mapping[str, Benchmark], ks: Sequence[int] = (1, 5, 10), **kwargs):
        super().__init__(**kwargs)
        self.benchmarks = dict(benchmarks)
        self.ks = tuple(ks)
        self.subsets: Mapping[str, np.ndarray] | None = None
        self.head_weight: torch.Tensor | None = None
        self.table: EmbeddingTable | None = None
        #: the retrieval engine (None: the exact one; ``StreamingGalleries.retrieval`` for FAISS)
        self.retrieval = None
        self.add_state("embeddings", default=[], dist_reduce_fx="cat")
        self.add_state("labels", default=[], dist_reduce_fx="cat")
        self.add_state("image_ids", default=[], dist_reduce_fx="cat")

    def update(self, embeddings: torch.Tensor, labels: torch.Tensor, image_ids: torch.Tensor) -> None:
        self.embeddings.append(embeddings.detach())
        self.labels.append(labels.detach().long())
        self.image_ids.append(image_ids.detach().long())

    def compute(self) -> dict[str, float]:
        if self.subsets is None:
            raise RuntimeError("BenchmarkMetrics.subsets must be set (subset name -> image ids) before compute()")
        if isinstance(self.embeddings, list) and not self.embeddings:  # (after a sync the states are tensors)
            return {}
        embeddings, labels, image_ids = (dim_zero_cat(state) for state in (self.embeddings, self.labels, self.image_ids))
        image_ids, embeddings, labels = drop_duplicate_ids(image_ids, embeddings, labels)
        self.table = EmbeddingTable(embeddings, labels, image_ids, self.subsets)
        return evaluate_benchmarks(self.benchmarks, self.table, self.head_weight, self.ks, self.retrieval)
