"""Trade-off curves: forget mAP against retention mAP, per method, with the Pareto front.

Two sets of points, never mixed:

* **validation**: every finished trial of a ``faceunlearn tune`` study (``OUT/trials.csv`` and
  ``OUT/study.json``): mean over the study's validation forget sets of forget mAP and of the mean
  retention mAP over its validation retention benchmarks, with the Original's validation point;
* **test**: every (method, config) row of a sweep (``faceunlearn report``'s rows): mean over its
  forget sets of forget mAP and of the mean mAP over the retention benchmarks of Table 1 the runs have.

A point is on the **Pareto front** of its set when no other point has forget mAP ≤ and retention
mAP ≥ its own with one of them strictly better (lower forget, higher retention). The front table
is the analogue of the paper's Appendix Table 5 (its λ sweep): every front trial with its values.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: the study description ``faceunlearn tune`` writes beside trials.csv
STUDY = "study.json"
PNG = "tradeoff.png"


def pareto_front(forget, retention) -> np.ndarray:
    """Boolean mask of the non-dominated points (minimise ``forget``, maximise ``retention``).

    Point i is dominated when some j has ``forget[j] ≤ forget[i]`` and ``retention[j] ≥ retention[i]``
    with at least one strict; equal points are both on the front.
    """
    forget, retention = np.asarray(forget, dtype=float), np.asarray(retention, dtype=float)
    if forget.shape != retention.shape or forget.ndim != 1:
        raise ValueError(f"forget and retention must be 1-d and of one length, got {forget.shape} and {retention.shape}")
    no_worse = (forget[None, :] <= forget[:, None]) & (retention[None, :] >= retention[:, None])  # [i, j]: j vs i
    better = (forget[None, :] < forget[:, None]) | (retention[None, :] > retention[:, None])
    return ~(no_worse & better).any(axis=1)


@dataclass
class Point:
    label: str
    forget: float  # mAP, fraction
    retention: float
    values: dict = field(default_factory=dict)  # the trial's settings (validation) or the row's seeds (test)


@dataclass
class Study:
    """One ``faceunlearn tune`` study: its trials as validation points and the Original's."""

    name: str
    method: str
    folder: Path
    params: list[str]
    retention: list[str]
    seeds: list[int]
    original: Point | None
    trials: list[Point]
    chosen: str | None  # label of the best trial (the objective's choice)


def read_study(folder: str | Path) -> Study:
    folder = Path(folder)
    study_path, trials_path = folder / STUDY, folder / "trials.csv"
    for path in (study_path, trials_path):
        if not path.is_file():
            raise SystemExit(f"report --tune: {path} not found; is {folder} a `faceunlearn tune --out` folder? "
                             f"(`faceunlearn tune ... --trials 0` rewrites its files from the study's storage)")
    study = json.loads(study_path.read_text())
    with trials_path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    trials = [Point(f"trial {row['trial']}", float(row["forget_mAP"]), float(row["retention_mAP"]),
                    {key: row[key] for key in study["params"]}) for row in rows]
    chosen = None if study.get("chosen_trial") is None else f"trial {study['chosen_trial']}"  # the study's declared pick rule
    original = None
    if study.get("original_forget_mAP") is not None:
        original = Point("Original", float(study["original_forget_mAP"]), float(study["original_retention_mAP"]))
    return Study(study["study"], study["method"] or "?", folder, list(study["params"]), list(study["retention"]),
                 list(study["seeds"]), original, trials, chosen)


def sweep_points(rows, retention_benchmarks: list[str]) -> list[Point]:
    """One point per report row (``faceunlearn.experiments.report.Row``) with forget and retention mAP."""
    points = []
    for row in rows:
        forget, kept = [], []
        for run in row.runs:
            present = [name for name in retention_benchmarks if (name, "mAP") in run.metrics]
            if ("forget", "mAP") not in run.metrics or not present:
                continue
            forget.append(run.metrics["forget", "mAP"])
            kept.append(float(np.mean([run.metrics[name, "mAP"] for name in present])))
        if forget:
            points.append(Point(row.label, float(np.mean(forget)), float(np.mean(kept)), {"seeds": row.seeds}))
    return points


def front_table(studies: list[Study]) -> str:
    """Markdown: each study's Pareto-front trials (validation), lowest forget mAP first, the chosen one marked."""
    blocks = []
    for study in studies:
        if not study.trials:
            continue
        front = pareto_front([t.forget for t in study.trials], [t.retention for t in study.trials])
        lines = [f"**{study.method}** (study `{study.name}`, validation forget sets {' '.join(map(str, study.seeds))}, "
                 f"retention: {', '.join(study.retention)}; {int(front.sum())} of {len(study.trials)} trials on the front"
                 + (f"; Original {100 * study.original.forget:.2f} / {100 * study.original.retention:.2f}" if study.original else "") + ")",
                 "",
                 "| trial | " + " | ".join(f"`{_param_title(name)}`" for name in study.params) + " | forget mAP | retention mAP |",
                 "|---|" + "---|" * len(study.params) + "---:|---:|"]
        for trial in sorted((t for t, on in zip(study.trials, front) if on), key=lambda t: t.forget):
            mark = " (chosen)" if trial.label == study.chosen else ""
            lines.append(f"| {trial.label.split()[-1]}{mark} | " + " | ".join(_short(trial.values[name]) for name in study.params)
                         + f" | {100 * trial.forget:.2f} | {100 * trial.retention:.2f} |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _param_title(key: str) -> str:
    """``model.init_args.retention.distill`` → ``retention.distill``; ``data.batches_per_epoch`` → ``batches_per_epoch``."""
    return key.split("init_args.", 1)[1] if "init_args." in key else key.split(".", 1)[-1]


def _short(value: str) -> str:
    try:
        return f"{float(value):.3g}"
    except ValueError:
        return value if len(value) <= 40 else value[:15] + " … " + value[-22:]  # a layer list: its ends say most


def draw(studies: list[Study], tests: list[Point], original_test: Point | None = None):
    """The figure: validation trials per study (left) and the sweep's test points (right), fronts as steps."""
    from matplotlib.figure import Figure

    panels = (["validation"] if studies else []) + (["test"] if tests else [])
    if not panels:
        raise ValueError("nothing to draw: no tune study and no test point")
    figure = Figure(figsize=(5.2 * len(panels), 4.4), layout="constrained")
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    colours = [f"C{index}" for index in range(10)]
    for axis, panel in zip(axes, panels):
        if panel == "validation":
            for index, study in enumerate(studies):
                colour = colours[index % 10]
                _scatter_with_front(axis, study.trials, colour, f"{study.method} ({study.name})")
                if study.original is not None:
                    axis.scatter([100 * study.original.forget], [100 * study.original.retention], marker="*", s=140,
                                 color=colour, edgecolor="black", zorder=4, label=f"Original ({study.name})")
            axis.set_title("validation: tune trials (mean over validation forget sets)", fontsize=9)
        else:
            _scatter_with_front(axis, tests, "C3", "front of the methods", annotate=True)
            if original_test is not None:
                axis.scatter([100 * original_test.forget], [100 * original_test.retention], marker="*", s=140,
                             color="gold", edgecolor="black", zorder=4, label="Original")
            axis.set_title("test: reported forget sets (mean over seeds)", fontsize=9)
        axis.set_xlabel("forget mAP (%) — lower forgets more")
        axis.set_ylabel("retention mAP (%) — higher keeps more")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7, loc="best")
    return figure


def _scatter_with_front(axis, points: list[Point], colour: str, label: str, annotate: bool = False) -> None:
    if not points:
        return
    forget = np.array([100 * p.forget for p in points])
    retention = np.array([100 * p.retention for p in points])
    front = pareto_front(forget, retention)
    axis.scatter(forget[~front], retention[~front], color=colour, alpha=0.35, s=22)
    order = np.argsort(forget[front])
    axis.plot(forget[front][order], retention[front][order], "-o", color=colour, ms=5, drawstyle="steps-post", label=label)
    if annotate:
        for point, x, y in zip(points, forget, retention):
            axis.annotate(point.label, (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")


def write_tradeoff(studies: list[Study], tests: list[Point], original_test: Point | None, out: str | Path) -> Path:
    """``out/tradeoff.png`` and the same figure in TensorBoard (``out/tensorboard``, tag ``tradeoff``)."""
    from torch.utils.tensorboard import SummaryWriter

    from faceunlearn.figures.png import save_png

    out = Path(out)
    figure = draw(studies, tests, original_test)
    path = save_png(figure, out / PNG)
    writer = SummaryWriter(log_dir=str(out / "tensorboard"))
    try:
        writer.add_figure("tradeoff", figure, close=False)
    finally:
        writer.close()
    return path
