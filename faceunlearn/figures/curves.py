"""A run's curves: train loss and every benchmark's metrics over optimiser steps.

The metrics come from the run's ``history.csv`` (one point per evaluation, step 0 = the start
model), the loss from its TensorBoard event files (scalar ``train/loss``). One panel per metric,
one line per benchmark; a benchmark's ``_extended`` variant (gallery + distractors) is dashed in
the base benchmark's colour.
"""
from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from faceunlearn.io import run_folder
from faceunlearn.figures.png import save_png
from faceunlearn.metrics.benchmarks import EXTENDED_SUFFIX

#: the panels beside the loss, in order; every metric is a fraction shown in %, except CS
METRICS = ("mAP", "R@1", "CS", "acc", "acc_mean")
LOSS_TAG = "train/loss"
FILENAME = "curves.png"


def read_scalar(run_dir, tag: str = LOSS_TAG) -> tuple[list[int], list[float]]:
    """Steps and values of one scalar in the run folder's event files ([] and [] if absent)."""
    run_dir = Path(run_dir)
    if not any(run_dir.glob("events.out.tfevents.*")):
        return [], []
    from tensorboard.backend.event_processing import event_accumulator

    accumulator = event_accumulator.EventAccumulator(
        str(run_dir), size_guidance={event_accumulator.SCALARS: 0, event_accumulator.IMAGES: 1, event_accumulator.TENSORS: 1}
    )
    accumulator.Reload()
    if tag not in accumulator.Tags().get("scalars", []):
        return [], []
    by_step = {event.step: event.value for event in accumulator.Scalars(tag)}  # a resumed run repeats none but keep the last
    steps = sorted(by_step)
    return steps, [by_step[step] for step in steps]


def curves_figure(history: list[dict], loss: tuple[list[int], list[float]] = ([], []), title: str | None = None) -> Figure:
    """Loss + ``METRICS`` panels from history rows (``run_folder.read_history``) and (steps, values) of the loss."""
    figure = Figure(figsize=(12, 6.5), dpi=100, layout="constrained")
    axes = figure.subplots(2, 3).ravel()
    if title:
        figure.suptitle(title, fontsize=10)
    steps, values = loss
    axes[0].set_title(LOSS_TAG, fontsize=10)
    if steps:
        axes[0].plot(steps, values, color="black", linewidth=1)
    else:
        axes[0].text(0.5, 0.5, "no train/loss", ha="center", va="center", transform=axes[0].transAxes, color="grey")
    bases = sorted({row["benchmark"].removesuffix(EXTENDED_SUFFIX) for row in history})
    colour = {name: f"C{index % 10}" for index, name in enumerate(bases)}
    for axis, metric in zip(axes[1:], METRICS):
        scale = 1.0 if metric == "CS" else 100.0
        axis.set_title(metric if metric == "CS" else f"{metric} (%)", fontsize=10)
        series: dict[str, dict[int, float]] = {}
        for row in history:
            if row["metric"] == metric:
                series.setdefault(row["benchmark"], {})[row["step"]] = row["value"] * scale
        for benchmark, points in sorted(series.items()):
            base = benchmark.removesuffix(EXTENDED_SUFFIX)
            extended = benchmark != base
            xs = sorted(points)
            axis.plot(xs, [points[x] for x in xs], color=colour[base], linestyle="--" if extended else "-",
                      marker="o", markersize=3, linewidth=1.2, label=benchmark)
        if series:
            axis.legend(fontsize=7)
        else:
            axis.text(0.5, 0.5, f"no {metric}", ha="center", va="center", transform=axis.transAxes, color="grey")
    for axis in axes:
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_xlabel("step", fontsize=8)
        axis.tick_params(labelsize=8)
        axis.grid(alpha=0.3)
    return figure


def write_curves(run_dir, out=None) -> Path | None:
    """``<run_dir>/figures/curves.png`` (or ``out``); None if the run has neither history nor loss."""
    run_dir = Path(run_dir)
    history, loss = run_folder.read_history(run_dir), read_scalar(run_dir)
    if not history and not loss[0]:
        return None
    return save_png(curves_figure(history, loss, title=str(run_dir)), out or run_dir / run_folder.FIGURES / FILENAME)
