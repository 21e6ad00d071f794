"""A fit's run record: its evaluation history and embedding snapshots (kept by the ``RunFiles`` callback).

Everything here runs on rank 0 with tensors already gathered; the file formats live in
``faceunlearn.io.run_folder``.

Snapshots are kept for the first and the latest evaluation of the fit (step 0 and, once the fit
ends, its final step); ``every_evaluation`` keeps them all. A snapshot file is small (each subset
capped at ``max_per_subset`` images, stored as float16: 1 MB for 1,000 × 512), but TensorBoard's
projector keeps a text copy of every snapshot it shows (~6 MB for 1,000 × 512), which is why not
every evaluation is kept by default.
"""
from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_warn

from faceunlearn.io import run_folder
from faceunlearn.metrics.benchmarks import EmbeddingTable

#: the seed of the identities a capped snapshot keeps (the same rows at every step)
SNAPSHOT_SEED = 0


def snapshot_rows(labels: np.ndarray, cap: int, seed: int = SNAPSHOT_SEED) -> np.ndarray:
    """Rows to keep of a subset with these labels: all if they fit in ``cap``, else whole identities
    drawn in a seeded order while they fit (so t-SNE sees complete clusters); the same rows for
    the same labels, whatever the model."""
    if len(labels) <= cap:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    identities, counts = np.unique(labels, return_counts=True)
    chosen, total = [], 0
    for index in rng.permutation(len(identities)):
        if total + counts[index] <= cap:
            chosen.append(identities[index])
            total += counts[index]
    if not chosen:  # one identity alone has more than cap images
        return np.sort(rng.choice(len(labels), size=cap, replace=False))
    return np.flatnonzero(np.isin(labels, chosen))


def take_snapshot(table: EmbeddingTable, subsets: list[str], cap: int) -> dict[str, dict[str, torch.Tensor]]:
    """``{subset: {"embeddings", "labels", "image_ids"}}`` on the CPU, rows in image-id order."""
    snapshot = {}
    for name in subsets:
        embeddings, labels, image_ids = table.take((name,))
        rows = torch.from_numpy(snapshot_rows(labels.cpu().numpy(), cap))
        embeddings = embeddings.detach().cpu()[rows].float()
        half = embeddings.half()
        snapshot[name] = {
            # float16 halves the files; a model whose embeddings overflow it keeps float32
            "embeddings": half if torch.isfinite(half).all() else embeddings,
            "labels": labels.cpu()[rows].long(),
            "image_ids": image_ids.cpu()[rows].long(),
        }
    return snapshot


def without_identities(snapshot: dict, labels: torch.Tensor) -> dict:
    """The snapshot without the rows of these identities (subsets left empty are dropped)."""
    kept = {}
    for name, data in snapshot.items():
        keep = ~torch.isin(data["labels"], labels.to(data["labels"].device))
        if bool(keep.any()):
            kept[name] = {key: value[keep] for key, value in data.items()}
    return kept


def add_to_projector(experiment, snapshot: dict[str, dict[str, torch.Tensor]], step: int) -> None:
    """Show a snapshot in TensorBoard's embedding projector (one tensor per subset, labels as metadata)."""
    for name, data in snapshot.items():
        # re-adding a step (a resumed fit's first snapshot) only prints "Embedding dir exists"
        with contextlib.redirect_stdout(io.StringIO()):
            experiment.add_embedding(data["embeddings"].float(), metadata=data["labels"].tolist(), tag=name, global_step=step)


def projector_folder(tag: str) -> str:
    """The folder name SummaryWriter.add_embedding gives a tag (it escapes %, / and \\)."""
    return tag.replace("%", "%25").replace("/", "%2f").replace("\\", "%5c")


class RunRecord:
    """``history.csv`` and ``embeddings/step<N>.pt`` of one fit in ``run_dir`` (call on rank 0 only).

    A fresh fit (first evaluation at step 0) starts both afresh; a resumed fit keeps what the
    run wrote up to the checkpoint's step and appends.
    """

    def __init__(self, run_dir: str | Path, snapshots: list[str] | None, max_per_subset: int, every_evaluation: bool = False):
        self.run_dir = Path(run_dir)
        self.snapshots = list(snapshots or [])
        self.max_per_subset = max_per_subset
        self.every_evaluation = every_evaluation
        self.projected: set[int] = set()
        self.started = False

    def start(self, resume_step: int) -> None:
        """Once per fit, before its first record: drop a previous fit's history and snapshots (a fresh
        fit, ``resume_step`` 0), or the snapshots after the checkpoint a resumed fit continues from
        (they will be taken again). A resumed fit's history is appended to, never rewritten; rows it
        evaluates again supersede the old ones when read (``run_folder.read_history``)."""
        if self.started:
            return
        self.started = True
        if resume_step == 0:  # a fresh fit starts a fresh history; a resumed one appends to it
            run_folder.trim_history(self.run_dir / run_folder.HISTORY, None)
        for step in run_folder.list_snapshots(self.run_dir):
            if resume_step == 0 or step > resume_step:
                self._drop(step)

    def _drop(self, step: int) -> None:
        """Delete a snapshot and the projector's copy of it (TensorBoard lists only what this fit adds)."""
        run_folder.snapshot_path(self.run_dir, step).unlink(missing_ok=True)
        folder = self.run_dir / f"{step:05d}"  # SummaryWriter.add_embedding's layout: <step:05>/<tag>/
        for name in self.snapshots:
            shutil.rmtree(folder / projector_folder(name), ignore_errors=True)
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()

    def record(self, step: int, metrics: dict[str, float], snapshot: dict | None, experiment=None) -> None:
        run_folder.append_history(self.run_dir / run_folder.HISTORY, step, metrics)
        if snapshot is None:
            return
        run_folder.save_snapshot(run_folder.snapshot_path(self.run_dir, step), snapshot)
        kept = run_folder.list_snapshots(self.run_dir)
        first = min(kept)
        if not self.every_evaluation:  # keep the first and this (so far the last) snapshot
            for old in kept:
                if old not in (first, step):
                    self._drop(old)
        if experiment is not None and (self.every_evaluation or step == first):
            add_to_projector(experiment, snapshot, step)
            self.projected.add(step)

    def finish(self, experiment=None, figure: bool = True) -> Path | None:
        """At the end of the fit: show the kept snapshots not yet in the projector (the last one;
        after a resume also the first) and, with ``figure``, draw the t-SNE figure of the first and
        the last (``figures/tsne.png``, TensorBoard image ``embeddings/tsne``). Returns the figure's path."""
        kept = run_folder.list_snapshots(self.run_dir)
        if experiment is not None:
            for step, path in kept.items():
                if step not in self.projected:
                    add_to_projector(experiment, run_folder.load_snapshot(path), step)
                    self.projected.add(step)
        if not figure or len(kept) < 2:
            return None
        try:
            from faceunlearn.figures.tsne import log_tsne_figure

            return log_tsne_figure(self.run_dir, experiment)
        except ImportError as error:  # the fit itself succeeded: say what is missing, do not fail it
            rank_zero_warn(f"no t-SNE figure: {error}")
            return None
