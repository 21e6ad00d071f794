"""Tidy result tables: one row per (method, seed, benchmark, metric), as CSV and markdown."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from faceunlearn.io.atomic import write_csv_atomic

TIDY_COLUMNS = ("method", "seed", "benchmark", "metric", "value")
#: the paper's table columns: retrieval (Table 1) then compactness and centroid accuracy (Table 2)
TABLE_METRICS = ("mAP", "R@1", "CS", "acc")
#: metric-name prefix of a benchmark's chance level (what a random ranking scores): "forget/chance_mAP"
CHANCE_PREFIX = "chance_"


#: the tidy metrics CSV that ``validate``/``test`` write into a run's log dir (RetrievalEvaluation)
RESULTS_CSV = "retrieval_metrics.csv"


def tidy_rows(method: str, seed: int, metrics: dict[str, float], table_metrics=TABLE_METRICS) -> list[dict]:
    """Rows from callback metrics named ``<benchmark>/<metric>`` (values as fractions).

    ``table_metrics`` keeps only those metrics (default: the paper's table columns); None keeps all.
    """
    rows = []
    for key, value in metrics.items():
        benchmark, _, metric = key.partition("/")
        if table_metrics is None or metric in table_metrics:
            rows.append({"method": method, "seed": seed, "benchmark": benchmark, "metric": metric, "value": float(value)})
    return rows


def write_csv(rows: list[dict], path: str | Path) -> None:
    """Tidy rows as CSV, atomically: ``path`` is either absent, the old file, or complete."""
    write_csv_atomic(path, rows, TIDY_COLUMNS)


def markdown_table(rows: list[dict]) -> str:
    """One line per method; columns ``<benchmark> <metric>``; mAP/R@1/acc in %, CS as a cosine."""
    methods = list(dict.fromkeys(row["method"] for row in rows))
    columns = list(dict.fromkeys((row["benchmark"], row["metric"]) for row in rows))
    value = {(row["method"], row["benchmark"], row["metric"]): row["value"] for row in rows}

    def cell(method, benchmark, metric):
        v = value.get((method, benchmark, metric))
        if v is None:
            return "—"
        return f"{v:.3f}" if metric == "CS" else f"{100 * v:.2f}"

    header = "| method | " + " | ".join(f"{b} {m}" for b, m in columns) + " |"
    rule = "|---|" + "---:|" * len(columns)
    lines = [header, rule] + [
        f"| {method} | " + " | ".join(cell(method, b, m) for b, m in columns) + " |" for method in methods
    ]
    return "\n".join(lines)


def read_results(path: str | os.PathLike) -> list[dict]:
    """Tidy rows of a ``results.csv`` (value as float): what ``write_csv`` wrote."""
    with Path(path).open(newline="") as handle:
        return [{**row, "value": float(row["value"])} for row in csv.DictReader(handle)]
