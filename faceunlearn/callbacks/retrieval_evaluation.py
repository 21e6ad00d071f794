"""Callback: retrieval evaluation of every configured benchmark, logged to TensorBoard.

It only wires ``faceunlearn.metrics`` into Lightning: ``BenchmarkMetrics`` (a torchmetrics
``Metric`` whose compute is the pure functions) collects the embeddings that ``validation_step``
returns; torchmetrics syncs them across DDP ranks (the images a DistributedSampler repeats are
dropped by image id), and every rank logs rank 0's numbers. ``faceunlearn validate|test`` also prints
them and writes them as tidy CSV. What a fit keeps on disk (history, snapshots, t-SNE) is the
``RunFiles`` callback's job: it subscribes to the results (``subscribe``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_info

from faceunlearn.metrics.benchmarks import EXTENDED_SUFFIX, Benchmark, EmbeddingTable, evaluate_benchmarks, parse_benchmarks
from faceunlearn.metrics.streaming import FaissOptions, StreamingGalleries
from faceunlearn.metrics.synced import BenchmarkMetrics
from faceunlearn.io.tidy import RESULTS_CSV, tidy_rows, write_csv
from faceunlearn.schedule import FINAL, INTERMEDIATE, START, evaluation_phase

#: how far a recomputed start metric may differ from ``start_results`` (fractions; other batch sizes or threads
#: or BLAS rounds embeddings differently, a different start model differs by far more)
START_RESULTS_TOLERANCE = 2e-3

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
    width = max(map(len, lines), default=0)
    return "\n".join(f"{benchmark:>{width}s}: " + "  ".join(parts) for benchmark, parts in lines.items())


class RetrievalEvaluation(L.Callback):
    """Evaluate benchmarks at the end of every validation, and at step 0 before training.

    ``benchmarks`` maps a name to subsets of the DataModule (``FaceDataModule.subsets``); the
    format, the base/extended variants and every metric are described in
    ``faceunlearn.metrics.benchmarks``::

        forget: {queries: forget_test, gallery: [forget], distractors: [distractors], clusters: forget}

    Metrics are logged as ``<benchmark>/<metric>`` (fractions), computed by ``BenchmarkMetrics``
    (a ``torchmetrics.Metric``: torchmetrics syncs the embeddings of every DDP rank). The step-0
    evaluation is an explicit run of the validation loop when training starts (``evaluate_now``),
    independent of ``num_sanity_val_steps`` (a sanity check is never taken as an evaluation), and is
    skipped when a fit resumes from a checkpoint. ``history`` keeps ``(global_step, metrics)`` of
    every evaluation. At set-up the CLI tells the DataModule which subsets to embed (``subsets_for`` →
    ``data.eval_subsets``). During ``fit``, every subscriber (``subscribe``; the ``RunFiles``
    callback) gets each evaluation's metrics and its synced embedding table.

    Args:
        benchmarks: name → subsets (default: the demo's ``forget`` and ``retain``).
        ks: the k of R@k.
        results_csv: where ``validate``/``test`` write the tidy CSV (``method,seed,benchmark,metric,value``);
            default ``<log_dir>/retrieval_metrics.csv`` of the run (with the logger off: the checkpoint folder,
            else ``lightning_logs/``; never the working directory).
        evaluate_at_start: evaluate the start model at step 0 when a fit starts (not when it resumes).
        intermediate_benchmarks: the benchmarks of the evaluations between the start and the end of a
            fit (default: those named ``forget*``); the start and the final evaluations compute all.
            Every benchmark's name gives today's behaviour of evaluating everything every time.
        intermediate_distractors: intermediate evaluations also compute the extended (distractor)
            variants of their benchmarks; off by default, as distractors are most of an evaluation's images.
        start_results: the start model's metrics, already computed (tidy CSV ``method,seed,benchmark,
            metric,value``; the sweep passes its Original's ``retrieval_metrics.csv`` for the same forget
            set): the step-0 evaluation then embeds only what the intermediate benchmarks read, checks
            those numbers against the file (a different start model, data or benchmark is an error) and
            takes every other number from it.
        engine: ``exact`` (default, the reference: full-ranking mAP and R@k) or ``faiss``: galleries and
            distractor pools are streamed into FAISS indexes batch by batch while they are embedded and never
            held as one tensor; retrieval is answered from a top-k search as ``R@j`` and the truncated
            ``mAP@k`` (``faceunlearn.metrics.streaming``; an IVF index's numbers end in ``_ivf``). The run's
            saved config and every printed evaluation say which engine computed the numbers.
        faiss: the FAISS engine's index (``FaissOptions``: kind flat|ivf, k, nlist, nprobe, device ...).
    """

    def __init__(
        self,
        benchmarks: dict[str, dict] | None = None,
        ks: list[int] | None = None,
        results_csv: str | None = None,
        evaluate_at_start: bool = True,
        intermediate_benchmarks: list[str] | None = None,
        intermediate_distractors: bool = False,
        start_results: str | None = None,
        engine: Literal["exact", "faiss"] = "exact",
        faiss: FaissOptions | None = None,
    ):
        super().__init__()
        if engine not in ("exact", "faiss"):
            raise ValueError(f"evaluation.engine must be 'exact' or 'faiss', got {engine!r}")
        if faiss is not None and engine != "faiss":
            raise ValueError("evaluation.faiss is set but evaluation.engine is 'exact': set engine: faiss to use it")
        self.engine = engine
        self.faiss = (faiss or FaissOptions()) if engine == "faiss" else None
        #: the FAISS indexes of the evaluation under way (engine faiss)
        self.streaming: StreamingGalleries | None = None
        self.benchmarks = parse_benchmarks(benchmarks or DEFAULT_BENCHMARKS)
        #: the benchmarks each phase of a fit computes (faceunlearn.schedule); validate/test: FINAL, all
        self.phase_benchmarks = phase_benchmarks(self.benchmarks, intermediate_benchmarks, intermediate_distractors, start_results)
        self.start_results = start_results
        map_metric = "mAP" if self.faiss is None else f"mAP@{self.faiss.k}{self.faiss.suffix}"
        self._start_metrics = read_start_results(start_results, self.benchmarks, map_metric) if start_results else None
        self.ks = tuple(ks or (1, 5, 10))
        if min(self.ks) < 1:
            raise ValueError(f"evaluation.ks must be positive integers, got {list(self.ks)}")
        self.results_csv = results_csv
        self.history: list[tuple[int, dict[str, float]]] = []
        self.seconds = 0.0
        self._started = 0.0
        self.evaluate_at_start = evaluate_at_start
        #: the embeddings of the evaluation under way, synced over processes by torchmetrics
        self.metric = BenchmarkMetrics(self.benchmarks, self.ks)
        #: called after each fit evaluation as ``fn(trainer, metrics, table)`` on every rank
        self.subscribers: list[Callable] = []

    def subscribe(self, subscriber: Callable) -> None:
        """Have ``subscriber(trainer, metrics, table)`` called after every evaluation of a fit, on every
        rank: the metrics (identical on all ranks) and the synced ``EmbeddingTable`` they came from."""
        self.subscribers.append(subscriber)

    @property
    def benchmark_subsets(self) -> list[str]:
        """Every DataModule subset some benchmark reads."""
        return sorted(set().union(*(benchmark.subsets for benchmark in self.benchmarks.values())))

    @staticmethod
    def phase_subsets_for(benchmarks: dict[str, dict] | None, intermediate_benchmarks: list[str] | None,
                          intermediate_distractors: bool, start_results: str | None, snapshots: list[str] | None,
                          snapshot_every_evaluation: bool) -> dict[str, list[str]]:
        """The subsets the start and intermediate evaluations of a fit embed (``data.phase_subsets``,
        linked by the CLI): their benchmarks' and, at the start (and at every evaluation when asked), the
        run files' snapshots."""
        parsed = parse_benchmarks(benchmarks or DEFAULT_BENCHMARKS)
        phases = phase_benchmarks(parsed, intermediate_benchmarks, intermediate_distractors, start_results)
        snapshots = set(snapshots or ())

        def subsets(phase, with_snapshots):
            return sorted(set().union(*(b.subsets for b in phases[phase].values())) | (snapshots if with_snapshots else set()))

        return {START: subsets(START, True), INTERMEDIATE: subsets(INTERMEDIATE, snapshot_every_evaluation)}

    @staticmethod
    def subsets_for(benchmarks: dict[str, dict] | None, snapshots: list[str] | None) -> list[str]:
        """The DataModule subsets a fit embeds: the benchmarks' and the run files' snapshots (the CLI
        links this to ``data.eval_subsets``, so the DataModule embeds nothing else)."""
        parsed = parse_benchmarks(benchmarks or DEFAULT_BENCHMARKS)
        return sorted(set().union(*(benchmark.subsets for benchmark in parsed.values())) | set(snapshots or ()))

    # -- the step-0 evaluation -----------------------------------------------------------------------
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.evaluate_at_start and trainer.global_step == 0 and trainer.ckpt_path is None:
            evaluate_now(trainer)  # the start model, at step 0; a resumed fit has evaluated it already

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning validates only every check_val_every_n_epoch epochs; the last epoch of a fit always is,
        # so a run has final numbers (every benchmark) whatever max_epochs is
        last = trainer.max_epochs not in (None, -1) and trainer.current_epoch == trainer.max_epochs - 1
        if last and trainer.check_val_every_n_epoch not in (None, 1):
            trainer.check_val_every_n_epoch = 1

    # -- collection ----------------------------------------------------------------------------
    def _reset(self, trainer, pl_module) -> None:
        self.metric.reset()
        self.metric.to(pl_module.device)
        self.streaming = None
        if self.faiss is not None and not trainer.sanity_checking:
            benchmarks = self.phase_benchmarks[evaluation_phase(trainer)]
            self.streaming = StreamingGalleries(benchmarks, trainer.datamodule.subsets, self.faiss)
        self._started = time.perf_counter()

    on_validation_epoch_start = on_test_epoch_start = _reset

    def _collect(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if trainer.sanity_checking:  # Lightning's sanity check is never an evaluation (see on_train_start)
            return
        embeddings, labels, image_ids = outputs["embeddings"], batch["label"], batch["image_id"]
        if self.streaming is not None:  # galleries go into their indexes; the table keeps only what else reads
            self.streaming.add(embeddings, labels, image_ids)
            keep = self.streaming.keep(image_ids)
            embeddings, labels, image_ids = embeddings[keep], labels[keep], image_ids[keep]
        self.metric.update(embeddings, labels, image_ids)

    on_validation_batch_end = on_test_batch_end = _collect

    # -- evaluation ----------------------------------------------------------------------------
    def compute(self, embeddings, labels, image_ids, subsets, head_weight=None) -> dict[str, float]:
        """All configured metrics from one embedding table (rows addressed by image id)."""
        return evaluate_benchmarks(self.benchmarks, EmbeddingTable(embeddings, labels, image_ids, subsets), head_weight, self.ks)

    def _evaluate(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        fitting = trainer.state.fn == "fit"
        phase = evaluation_phase(trainer)
        self.metric.benchmarks = self.phase_benchmarks[phase]
        # never an accuracy from a random head: start weights without one get it imprinted first
        head = getattr(pl_module, "head", None) if getattr(pl_module, "head_ready", True) else None
        self.metric.head_weight = head.weight.detach() if head is not None else None
        self.metric.subsets = trainer.datamodule.subsets
        self.metric.retrieval = self.streaming.retrieval if self.streaming is not None else None
        metrics = self.metric.compute()  # torchmetrics gathers every rank's rows first
        table, self.metric.table = self.metric.table, None
        self.metric.reset()
        self.streaming = self.metric.retrieval = None  # the indexes go with the evaluation
        if trainer.world_size > 1:
            metrics = trainer.strategy.broadcast(metrics, src=0)  # bit-identical on every rank, whatever each computed
        if not metrics:
            return
        if phase == START and self._start_metrics is not None:
            metrics = merge_start_results(self._start_metrics, metrics, self.start_results)
        self.seconds += time.perf_counter() - self._started  # embedding + metrics
        self.history.append((trainer.global_step, metrics))
        # Loggers get every evaluation at the number of optimiser steps taken so far (0 = the start model).
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=trainer.global_step)
        if fitting:
            for subscriber in self.subscribers:
                subscriber(trainer, metrics, table)
        del table
        # Already identical on every rank: a max-reduction keeps them bit-exact (a mean could round)
        # and tells Lightning the epoch-level values are synchronised.
        pl_module.log_dict(metrics, logger=False, sync_dist=trainer.world_size > 1, reduce_fx="max")
        if trainer.state.fn in ("validate", "test"):
            rank_zero_info(f"retrieval engine: {self.faiss.describe() if self.faiss else 'exact (full ranking)'}")
            rank_zero_info(format_metrics(metrics))
            # trainer.log_dir is a collective under DDP: every rank asks, rank 0 writes
            path = Path(self.results_csv or run_folder(trainer) / RESULTS_CSV)
            if trainer.is_global_zero:
                seed = getattr(trainer.datamodule, "hparams", {}).get("seed", "")
                write_csv(tidy_rows(type(pl_module).__name__, seed, metrics, table_metrics=None), path)
                rank_zero_info(f"wrote {path}")

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            self.metric.reset()
            return
        self._evaluate(trainer, pl_module)

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._evaluate(trainer, pl_module)

    @classmethod
    def of(cls, trainer: L.Trainer) -> "RetrievalEvaluation":
        """The trainer's evaluation callback (e.g. to read ``history`` after a run)."""
        return next(callback for callback in trainer.callbacks if isinstance(callback, cls))


def phase_benchmarks(benchmarks: dict[str, Benchmark], intermediate: list[str] | None, distractors: bool,
                     start_results: str | None) -> dict[str, dict[str, Benchmark]]:
    """phase → the benchmarks it computes (``RetrievalEvaluation``'s ``intermediate_*`` arguments)."""
    names = [name for name in benchmarks if name.startswith("forget")] if intermediate is None else list(intermediate)
    unknown = [name for name in names if name not in benchmarks]
    if unknown:
        raise ValueError(f"evaluation.intermediate_benchmarks: unknown benchmark(s) {unknown}; configured: {', '.join(benchmarks)}")
    chosen = {name: benchmarks[name] if distractors else dataclasses.replace(benchmarks[name], distractors=())
              for name in names}
    return {START: chosen if start_results else dict(benchmarks), INTERMEDIATE: chosen, FINAL: dict(benchmarks)}


def read_start_results(path: str, benchmarks: dict[str, Benchmark], map_metric: str = "mAP") -> dict[str, float]:
    """``{benchmark/metric: value}`` from a tidy CSV of one model's metrics, holding every benchmark (and, for
    each retrieval benchmark, ``map_metric``: the engine's mAP, so exact and FAISS numbers never mix)."""
    import csv

    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"evaluation.start_results {path!r} does not exist")
    with file.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"benchmark", "metric", "value"} <= set(rows[0]):
        raise ValueError(f"evaluation.start_results {path!r} is not a tidy metrics CSV (benchmark,metric,value columns)")
    if len({(row.get("method"), row.get("seed")) for row in rows}) > 1:
        raise ValueError(f"evaluation.start_results {path!r} holds several runs; give the start model's own file")
    metrics = {f"{row['benchmark']}/{row['metric']}": float(row["value"]) for row in rows}
    expected = {name + suffix for name, benchmark in benchmarks.items()
                for suffix in ("", *((EXTENDED_SUFFIX,) if benchmark.distractors else ()))}
    missing = sorted(expected - {key.partition("/")[0] for key in metrics})
    if missing:
        raise ValueError(f"evaluation.start_results {path!r} has no numbers for benchmark(s) {missing}: "
                         "it was computed with other benchmarks")
    other_engine = sorted(name for name, benchmark in benchmarks.items() if benchmark.queries and f"{name}/{map_metric}" not in metrics)
    if other_engine:
        raise ValueError(f"evaluation.start_results {path!r} has no {map_metric} for {other_engine}: "
                         "it was computed with another retrieval engine (evaluation.engine / evaluation.faiss)")
    return metrics


def merge_start_results(start: dict[str, float], computed: dict[str, float], path: str) -> dict[str, float]:
    """The start file's metrics with this run's recomputed ones, after checking they agree."""
    differing = {key: (start[key], value) for key, value in computed.items()
                 if key in start and abs(start[key] - value) > START_RESULTS_TOLERANCE}
    if differing:
        key, (theirs, ours) = next(iter(differing.items()))
        raise ValueError(f"evaluation.start_results {path!r} is not this run's start model: {key} is {theirs:.6f} there "
                         f"but {ours:.6f} here ({len(differing)} metric(s) differ); other start weights, data or benchmarks")
    return {**start, **computed}


def evaluate_now(trainer: L.Trainer) -> None:
    """Run the fit's validation loop once, now (at fit start: the step-0 evaluation of the start model).

    Mirrors what Lightning does for its sanity check (``Trainer._run_sanity_check``), but as a real
    evaluation: every callback sees the usual validation hooks; the loop's progress counters are reset
    afterwards so the checkpointed loop state is that of a fit that has not validated yet.
    """
    from lightning.pytorch.loops.utilities import _reset_progress

    loop = trainer.fit_loop.epoch_loop.val_loop
    stage = trainer.state.stage
    trainer.validating = True
    trainer._logger_connector.reset_results()
    loop.run()
    trainer._logger_connector.reset_results()
    _reset_progress(loop)
    trainer.state.stage = stage


def tensorboard_writer(trainer: L.Trainer):
    """The SummaryWriter of the trainer's first TensorBoardLogger, or None."""
    from lightning.pytorch.loggers import TensorBoardLogger

    logger = next((logger for logger in trainer.loggers if isinstance(logger, TensorBoardLogger)), None)
    return logger.experiment if logger is not None else None


def run_folder(trainer: L.Trainer) -> Path:
    """Where a run's files go: the logger's folder; with the logger off, the checkpoint folder (else
    ``lightning_logs``) — never the working directory, where ``trainer.log_dir`` falls back to."""
    if trainer.loggers:
        return Path(trainer.log_dir)
    checkpoint = trainer.checkpoint_callback
    return Path(checkpoint.dirpath) if checkpoint is not None and checkpoint.dirpath else Path("lightning_logs")
