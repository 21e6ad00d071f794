"""Callback: retrieval evaluation of every configured benchmark, logged to TensorBoard.

It only wires the pure metric functions of ``faceunlearn.metrics`` into Lightning: it collects the
embeddings that ``validation_step`` returns, then computes each benchmark once per validation.
"""

from __future__ import annotations

import time

import lightning as L
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_info

from faceunlearn.metrics import centroid_accuracy, cluster_compactness, head_accuracy, retrieval_metrics

#: The demo's benchmarks (SPEC §5 "forget, base" and the CFP-FP analogue on held-out identities).
DEFAULT_BENCHMARKS = {
    "forget": {"queries": "forget_test", "gallery": ["forget"], "clusters": "forget"},
    "retain": {"queries": "holdout_profile", "gallery": ["holdout_frontal"], "clusters": "retain_eval"},
}


def format_metrics(metrics: dict[str, float]) -> str:
    """One line per benchmark: mAP, R@k and accuracies in %, CS as a cosine, counts as integers."""
    lines: dict[str, list[str]] = {}
    for key, value in metrics.items():
        benchmark, _, metric = key.partition("/")
        if metric.startswith("num_"):
            text = f"{metric}={int(value)}"
        elif metric == "CS":
            text = f"CS={value:.3f}"
        else:
            text = f"{metric}={100 * value:.2f}"
        lines.setdefault(benchmark, []).append(text)
    return "\n".join(f"{benchmark:>12s}: " + "  ".join(parts) for benchmark, parts in lines.items())


class RetrievalEvaluation(L.Callback):
    """Evaluate benchmarks at the end of every validation, and at step 0 before training.

    A benchmark is named subsets of the DataModule (``FaceDataModule.subsets``)::

        forget: {queries: forget_test, gallery: [forget], clusters: forget}

    - ``queries`` / ``gallery``: retrieval mAP and R@k (own image excluded by image id);
    - ``clusters``: Cluster Compactness ``CS`` and centroid accuracies on that subset. ``acc`` is the
      paper's centroid accuracy, with the CosFace head's class weights as centroids (argmax over all
      classes); ``acc_mean`` uses leave-one-out normalised-mean embedding centroids instead.

    Metrics are logged as ``<benchmark>/<metric>`` (fractions). The step-0 evaluation runs as
    Lightning's sanity check over the full validation set (``num_sanity_val_steps: -1``) and is
    logged at step 0. ``history`` keeps ``(global_step, metrics)`` of every evaluation.
    """

    def __init__(self, benchmarks: dict[str, dict] | None = None, ks: list[int] | None = None):
        super().__init__()
        self.benchmarks = benchmarks or DEFAULT_BENCHMARKS
        for name, spec in self.benchmarks.items():
            unknown = set(spec) - {"queries", "gallery", "clusters"}
            if unknown or not ({"queries", "gallery"} <= set(spec) or "clusters" in spec):
                raise ValueError(
                    f"benchmark {name!r} must give queries + gallery and/or clusters (subset names); got keys {sorted(spec)}"
                )
        self.ks = tuple(ks or (1, 5, 10))
        self.history: list[tuple[int, dict[str, float]]] = []
        self.seconds = 0.0
        self._started = 0.0
        self._chunks: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    # -- collection ----------------------------------------------------------------------------
    def _reset(self, *args) -> None:
        self._chunks = []
        self._started = time.perf_counter()

    on_validation_epoch_start = on_test_epoch_start = _reset

    def _collect(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._chunks.append((outputs["embeddings"].detach().float().cpu(), batch["label"].cpu(), batch["image_id"].cpu()))

    on_validation_batch_end = on_test_batch_end = _collect

    # -- evaluation ----------------------------------------------------------------------------
    def compute(self, embeddings, labels, image_ids, subsets: dict[str, np.ndarray], head_weight) -> dict[str, float]:
        """All configured metrics from one embedding table (rows addressed by image id)."""
        order = torch.argsort(image_ids)
        sorted_ids = image_ids[order]

        def take(names):
            names = [names] if isinstance(names, str) else list(names)
            missing = [n for n in names if n not in subsets]
            if missing:
                raise KeyError(f"benchmark subset(s) {missing} unknown; the DataModule provides {', '.join(subsets)}")
            wanted = torch.from_numpy(np.unique(np.concatenate([subsets[n] for n in names])))
            rows = order[torch.searchsorted(sorted_ids, wanted).clamp_max(len(sorted_ids) - 1)]
            if not torch.equal(image_ids[rows], wanted):
                raise RuntimeError(f"subset(s) {names} were not all embedded in this evaluation")
            return embeddings[rows], labels[rows], image_ids[rows]

        metrics: dict[str, float] = {}
        for name, spec in self.benchmarks.items():
            if "queries" in spec:
                query, query_labels, query_ids = take(spec["queries"])
                gallery, gallery_labels, gallery_ids = take(spec["gallery"])
                result = retrieval_metrics(query, query_labels, gallery, gallery_labels, query_ids, gallery_ids, ks=self.ks)
                metrics.update({f"{name}/{key}": float(value) for key, value in result.items()})
            if "clusters" in spec:
                cluster, cluster_labels, _ = take(spec["clusters"])
                metrics[f"{name}/CS"] = cluster_compactness(cluster, cluster_labels)
                metrics[f"{name}/acc_mean"] = centroid_accuracy(cluster, cluster_labels)
                if head_weight is not None and int(cluster_labels.max()) < head_weight.shape[0]:
                    metrics[f"{name}/acc"] = head_accuracy(cluster, cluster_labels, head_weight)
        return metrics

    def _evaluate(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._chunks:
            return
        embeddings, labels, image_ids = (torch.cat(parts) for parts in zip(*self._chunks))
        self._chunks = []
        head = getattr(pl_module, "head", None)
        head_weight = head.weight.detach().float().cpu() if head is not None else None
        metrics = self.compute(embeddings, labels, image_ids, trainer.datamodule.subsets, head_weight)
        self.seconds += time.perf_counter() - self._started  # embedding + metrics
        self.history.append((trainer.global_step, metrics))
        # Loggers get every evaluation at the number of optimiser steps taken so far (0 = the start
        # model; Lightning would discard self.log() in the sanity check and log others at step-1).
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=trainer.global_step)
        if not trainer.sanity_checking:
            pl_module.log_dict(metrics, logger=False)  # for checkpoint monitors and the progress bar
        if trainer.state.fn in ("validate", "test"):
            rank_zero_info(format_metrics(metrics))

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking and (trainer.num_sanity_val_steps != float("inf") or trainer.global_step > 0):
            self._chunks = []  # a partial sanity pass, or a resumed run's repeat of an evaluated step
            return
        self._evaluate(trainer, pl_module)

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._evaluate(trainer, pl_module)

    @classmethod
    def of(cls, trainer: L.Trainer) -> "RetrievalEvaluation":
        """The trainer's evaluation callback (e.g. to read ``history`` after a run)."""
        return next(callback for callback in trainer.callbacks if isinstance(callback, cls))
