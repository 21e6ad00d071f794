"""Callback: a fit's run files — ``history.csv``, embedding snapshots, TensorBoard's projector, t-SNE.

It records what the evaluation callback computed: the CLI hands it the ``RetrievalEvaluation``
(``link_arguments("evaluation", "run_files.evaluation", apply_on="instantiate")``) and it subscribes
to each evaluation's result (step, metrics and the synced embedding table). Files are written on
rank 0 into ``trainer.log_dir``; formats in ``faceunlearn.io.run_folder``, the record in
``faceunlearn.callbacks.snapshots``.
"""
from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.utilities import rank_zero_warn

from faceunlearn.callbacks.retrieval_evaluation import RetrievalEvaluation, tensorboard_writer
from faceunlearn.callbacks.snapshots import RunRecord, take_snapshot, without_identities

#: the subsets the demo and real-faces protocols snapshot (D_f and the retain evaluation identities)
DEFAULT_SNAPSHOTS = ("forget", "retain_eval")


def forget_labels(table) -> torch.Tensor:
    """The labels of the ``forget`` subset of an embedding table (empty if it has none)."""
    if "forget" not in table.subsets:
        return torch.zeros(0, dtype=torch.long)
    return torch.unique(table.take(("forget",))[1].cpu())


class RunFiles(L.Callback):
    """Record every evaluation of a fit into its log dir.

    * ``history.csv``: every evaluation as ``step,benchmark,metric,value`` (a resumed fit appends);
    * for the ``snapshots`` subsets, ``embeddings/step<N>.pt`` of the first and the last evaluation
      (step 0 and the final step), also shown in TensorBoard's embedding projector, and at the end of
      the fit a t-SNE figure (before/after × subset, the paper's Figure 1) in ``figures/tsne.png`` and as
      the TensorBoard image ``embeddings/tsne``.

    Args:
        evaluation: the evaluation callback whose results are recorded (linked by the CLI).
        snapshots: DataModule subsets whose embeddings a fit saves (default ``[forget, retain_eval]``);
            ``[]`` saves none. They are embedded during fit's evaluations even if no benchmark reads them
            (the CLI adds them to ``data.eval_subsets``).
        snapshot_max_per_subset: cap on a snapshot subset's images: whole identities in a seeded
            order while they fit (the same images at every step).
        snapshot_every_evaluation: keep a snapshot (and a projector entry) of every evaluation,
            not only the first and the last.
        snapshot_figure: draw the t-SNE figure at the end of the fit (needs scikit-learn).
        keep_forget_embeddings: keep the forget identities' embeddings in the snapshots (and so in the
            projector and the t-SNE). Off by default: a "forget me" request is also a deletion request,
            so the run files hold no D_f embeddings — every snapshot drops the forget identities' rows
            (the ``forget`` subset entirely). On, for research (the paper's Figure 1), with a warning;
            ``faceunlearn purge DIR`` removes them afterwards.
    """

    def __init__(
        self,
        evaluation: RetrievalEvaluation | None = None,
        snapshots: list[str] | None = list(DEFAULT_SNAPSHOTS),
        snapshot_max_per_subset: int = 1000,
        snapshot_every_evaluation: bool = False,
        snapshot_figure: bool = True,
        keep_forget_embeddings: bool = False,
    ):
        super().__init__()
        if snapshot_max_per_subset < 1:
            raise ValueError(f"run_files.snapshot_max_per_subset must be positive, got {snapshot_max_per_subset}")
        self.snapshots = list(dict.fromkeys(snapshots or ()))
        self.snapshot_max_per_subset = snapshot_max_per_subset
        self.snapshot_every_evaluation = snapshot_every_evaluation
        self.snapshot_figure = snapshot_figure
        self.keep_forget_embeddings = keep_forget_embeddings
        self._record: RunRecord | None = None
        self._resume_step = 0
        if evaluation is not None:
            evaluation.subscribe(self.record)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # trainer.log_dir is a collective under DDP: every rank asks, rank 0 writes
        log_dir = trainer.log_dir if trainer.loggers else None
        self._record = None
        if log_dir and trainer.is_global_zero:
            if self.keep_forget_embeddings and self.snapshots:
                rank_zero_warn(f"run_files.keep_forget_embeddings is on: {log_dir} keeps the forget identities' embeddings "
                               "(embeddings/step*.pt, the TensorBoard projector, the t-SNE) — biometric data of people who "
                               "asked to be forgotten; remove them with `faceunlearn purge " + str(log_dir) + "`")
            self._record = RunRecord(log_dir, self.snapshots, self.snapshot_max_per_subset, self.snapshot_every_evaluation)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._resume_step = trainer.global_step  # the checkpoint's step when resuming (restored by now)

    def record(self, trainer: L.Trainer, metrics: dict[str, float], table) -> None:
        """One evaluation of a fit (called by the evaluation callback on every rank, table synced)."""
        if self._record is None:
            return
        self._record.start(self._resume_step if trainer.ckpt_path is not None else 0)
        snapshot = None
        # an intermediate evaluation embeds the snapshot subsets only when every evaluation keeps a snapshot
        subsets = [name for name in self.snapshots if table.holds(name)]
        if subsets:
            snapshot = take_snapshot(table, subsets, self.snapshot_max_per_subset)
            if not self.keep_forget_embeddings:
                snapshot = without_identities(snapshot, forget_labels(table)) or None
        self._record.record(trainer.global_step, metrics, snapshot, tensorboard_writer(trainer))

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._record is not None:
            self._record.start(self._resume_step if trainer.ckpt_path is not None else 0)  # a fit without evaluations
            self._record.finish(tensorboard_writer(trainer), figure=self.snapshot_figure)
