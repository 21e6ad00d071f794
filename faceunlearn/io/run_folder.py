"""The files a fit leaves in its run folder (``trainer.log_dir``) beside TensorBoard's events.

- ``history.csv``: every evaluation of the fit, tidy (``step,benchmark,metric,value``);
- ``embeddings/step<N>.pt``: embedding snapshots, ``{subset: {"embeddings", "labels", "image_ids"}}``
  (tensors only, so ``torch.load(..., weights_only=True)`` reads them);
- ``figures/``: PNGs written by ``faceunlearn.figures``.

Written by the ``RunFiles`` callback, read by ``faceunlearn.figures``. Plain files and
no Lightning here, so the figures need nothing but this module.
"""
from __future__ import annotations

import csv
import re
from pathlib import Path

import torch

from faceunlearn.io.atomic import write_csv_atomic

HISTORY = "history.csv"
HISTORY_COLUMNS = ("step", "benchmark", "metric", "value")
EMBEDDINGS = "embeddings"
FIGURES = "figures"
SNAPSHOT_NAME = re.compile(r"step(\d+)\.pt")


def history_rows(step: int, metrics: dict[str, float]) -> list[dict]:
    """``{"forget/mAP": v}`` at ``step`` → tidy rows ``{step, benchmark, metric, value}``."""
    rows = []
    for key, value in metrics.items():
        benchmark, _, metric = key.partition("/")
        rows.append({"step": int(step), "benchmark": benchmark, "metric": metric, "value": float(value)})
    return rows


def read_history(path: str | Path) -> list[dict]:
    """The rows of a ``history.csv`` (step as int, value as float); [] if there is none."""
    path = Path(path)
    if path.is_dir():
        path = path / HISTORY
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        rows = [{**row, "step": int(row["step"]), "value": float(row["value"])} for row in csv.DictReader(handle)]
    # A resumed fit appends (the file is never rewritten): an evaluation it repeats supersedes the
    # earlier row of the same step, benchmark and metric (a crash after evaluating, before the checkpoint).
    latest = {(row["step"], row["benchmark"], row["metric"]): row for row in rows}
    return sorted(latest.values(), key=lambda row: row["step"]) if len(latest) != len(rows) else rows


def append_history(path: str | Path, step: int, metrics: dict[str, float]) -> None:
    """Add one evaluation to ``history.csv`` (the header is written when the file is new or empty)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.is_file() or path.stat().st_size == 0
    with path.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=HISTORY_COLUMNS)
        if new:
            writer.writeheader()
        writer.writerows(history_rows(step, metrics))


def trim_history(path: str | Path, last_step: int | None) -> None:
    """Start a fit's history: drop every row after ``last_step`` (a resumed fit re-evaluates
    those), or the whole file when ``last_step`` is None (a fresh fit)."""
    path = Path(path)
    if not path.is_file():
        return
    if last_step is None:
        path.unlink()
        return
    rows = read_history(path)
    kept = [row for row in rows if row["step"] <= last_step]
    if len(kept) != len(rows):
        write_csv_atomic(path, kept, HISTORY_COLUMNS)


def snapshot_path(run_dir: str | Path, step: int) -> Path:
    return Path(run_dir) / EMBEDDINGS / f"step{int(step)}.pt"


def list_snapshots(run_dir: str | Path) -> dict[int, Path]:
    """``{step: path}`` of the run's embedding snapshots, by step."""
    folder = Path(run_dir) / EMBEDDINGS
    found = {}
    if folder.is_dir():
        for path in folder.iterdir():
            match = SNAPSHOT_NAME.fullmatch(path.name)
            if match and path.is_file():
                found[int(match.group(1))] = path
    return dict(sorted(found.items()))


def save_snapshot(path: str | Path, snapshot: dict[str, dict[str, torch.Tensor]]) -> None:
    """Write atomically (a reader never sees half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save(snapshot, partial)
    partial.replace(path)


def load_snapshot(path: str | Path) -> dict[str, dict[str, torch.Tensor]]:
    return torch.load(path, map_location="cpu", weights_only=True)


def is_run_dir(path: str | Path) -> bool:
    """A run folder: it holds a history, embedding snapshots or TensorBoard event files."""
    path = Path(path)
    return path.is_dir() and (
        (path / HISTORY).is_file() or bool(list_snapshots(path)) or any(path.glob("events.out.tfevents.*"))
    )


def find_run_dirs(root: str | Path) -> list[Path]:
    """``root`` itself if it is a run folder, else every run folder below it (sorted)."""
    root = Path(root)
    if is_run_dir(root):
        return [root]
    candidates = {path.parent for pattern in (HISTORY, "events.out.tfevents.*", f"{EMBEDDINGS}/step*.pt") for path in root.rglob(pattern)}
    candidates = {path.parent if path.name == EMBEDDINGS else path for path in candidates}
    return sorted(path for path in candidates if FIGURES not in path.relative_to(root).parts and is_run_dir(path))
