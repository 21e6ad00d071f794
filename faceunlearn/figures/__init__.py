"""Figures of a run folder (``trainer.log_dir``): its curves and the t-SNE before/after unlearning.

``figures_for_run(run_dir)`` writes ``<run_dir>/figures/curves.png`` (``curves``: train loss and
every benchmark's metrics over steps, from ``history.csv`` and the TensorBoard events) and
``<run_dir>/figures/tsne.png`` (``tsne``: the paper's Figure 1, from the first and last
``embeddings/step<N>.pt``). ``faceunlearn figures RUN_DIR...`` (``faceunlearn.commands.figures``) runs it from the shell.
"""
from __future__ import annotations

from pathlib import Path

from faceunlearn.figures.curves import write_curves
from faceunlearn.figures.tsne import write_tsne


def figures_for_run(run_dir, max_identities: int = 10) -> list[Path]:
    """Write the run's figures into ``<run_dir>/figures/``; returns the files written (those the
    run has the data for: curves need a history or a loss, t-SNE two snapshots)."""
    written = [write_curves(run_dir), write_tsne(run_dir, max_identities=max_identities)]
    return [path for path in written if path is not None]


__all__ = ["figures_for_run"]
