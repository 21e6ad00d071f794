"""A multi-objective study's trials as 2-D panels (``faceunlearn tune``'s ``pareto.png``): the first objective against
each other one, feasible trials in colour, infeasible ones grey, the Pareto front ringed, the pick starred, the
Original and any reference points (e.g. the shipped recipe on the same validation sets) marked. Readable with a
handful of trials, where a 3-D scatter is not."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Point:
    """One trial or reference: its label and measures (``{name: value}``); ``feasible``/``front``/``chosen`` as the
    study decided (references: all False)."""

    label: str
    values: dict[str, float]
    feasible: bool = False
    front: bool = False
    chosen: bool = False


def pareto_figure(points: list[Point], objectives: list[str], directions: list[str], references: list[Point] = (),
                  original: dict[str, float] | None = None, lines: dict[str, float] | None = None):
    """``len(objectives) − 1`` panels, x = ``objectives[0]``; ``lines``: dotted guide lines (a bound, chance) by measure
    name. Arrows in the axis labels point to the better side (``directions``: ``minimize``/``maximize``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if len(objectives) < 2:
        raise ValueError(f"a Pareto figure needs at least two objectives, got {objectives}")
    better = {name: ("← better" if direction == "minimize" else "better →") for name, direction in zip(objectives, directions)}
    panels = len(objectives) - 1
    figure, axes = plt.subplots(1, panels, figsize=(4.6 * panels, 4.2), squeeze=False)
    x_name = objectives[0]
    for axis, y_name in zip(axes[0], objectives[1:]):
        for point in points:
            x, y = point.values[x_name], point.values[y_name]
            axis.scatter([x], [y], s=70 if point.chosen else 40, marker="*" if point.chosen else "o",
                         color="tab:blue" if point.feasible else "0.6", edgecolors="k" if point.front else "none", zorder=3)
            axis.annotate(point.label, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=7)
        for point in references:
            x, y = point.values[x_name], point.values[y_name]
            axis.scatter([x], [y], marker="D", color="tab:orange", s=36, zorder=3)
            axis.annotate(point.label, (x, y), textcoords="offset points", xytext=(5, -10), fontsize=7, color="tab:orange")
        if original is not None and x_name in original and y_name in original:
            axis.scatter([original[x_name]], [original[y_name]], marker="X", color="k", s=50, zorder=3)
            axis.annotate("Original", (original[x_name], original[y_name]), textcoords="offset points", xytext=(5, 4), fontsize=7)
        for name, value in (lines or {}).items():
            if name == x_name:
                axis.axvline(value, linestyle=":", color="tab:red", linewidth=1)
            if name == y_name:
                axis.axhline(value, linestyle=":", color="tab:red", linewidth=1)
        axis.set_xlabel(f"{x_name} ({better[x_name]})")
        axis.set_ylabel(f"{y_name} ({better[y_name].replace('→', '↑').replace('←', '↓')})")
        axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure
