"""``faceunlearn report RUN_DIR``: the paper's tables, mean ± std over forget sets, from a sweep's runs.

Reads every finished run under RUN_DIR (``done.json`` + ``results.csv``, see
``faceunlearn.experiments.layout``) and aggregates each method's runs over forget-set seeds:
mean ± sample standard deviation (ddof = 1, the paper's "mean ± std over 3 forget sets"); with one
seed the std is shown as "—". Rows follow the paper's order (Original, RandomLabeling,
GradientAscent, LipschitzUnlearning, ContrastiveUnlearning, BoundaryShrink, Dispersion,
HardDispersion, then other methods by name); two configs of the same method class are told apart
by config name. Tables 1–4 are defined in ``faceunlearn.experiments.tables``; a value a table
expects but a run lacks is shown as "n/a (missing)". mAP, R@k and acc are in %, with 2 decimals;
CS is a cosine, with 3.

Writes ``report.md`` (markdown, also printed), ``report.csv`` (method, table, benchmark, metric,
mean, std, n, scenario; values as fractions like results.csv; empty mean/std when missing) and
``report.tex`` (booktabs tabulars, mean$\\pm$std) into ``--out`` (default RUN_DIR/report), and the
trade-off figure ``tradeoff.png`` (also in TensorBoard under ``tensorboard/``): forget mAP against
retention mAP of the reported runs and, with ``--tune DIR ...``, of every trial of those tuning
studies (validation), each with its Pareto front, and the validation front table
(``faceunlearn.experiments.tradeoff``). With audits (``sweep --audit``) it adds the audit tables (the
headline columns, then every test of every model, mean ± std over forget sets; in report.csv as table
"audit") and ``audit_roc.png``, every audited model's verification ROC averaged over forget sets.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from faceunlearn.io.atomic import write_csv_atomic, write_text_atomic
from faceunlearn.experiments import layout
from faceunlearn.experiments.tables import CHANCE, RETRAIN, TABLE_1, TABLES, Column, Table, method_sort_key
from faceunlearn.io.tidy import CHANCE_PREFIX

MISSING = "n/a (missing)"
#: the retention benchmarks of Table 1 (the trade-off's retention axis: the mean mAP of those a run has)
RETENTION_BENCHMARKS = [column.benchmark for column in TABLE_1.columns if column.group == "retention" and column.metric == "mAP"]
REPORT_CSV_COLUMNS = ("method", "table", "benchmark", "metric", "mean", "std", "n", "scenario")


# ---------------------------------------------------------------------------------- reading
@dataclass
class Run:
    path: Path
    method: str
    seed: int
    scenario: str
    config: str
    seconds: float
    metrics: dict[tuple[str, str], float] = field(default_factory=dict)  # (benchmark, metric) -> value

    @property
    def config_stem(self) -> str:
        return Path(self.config).stem


def read_run(path: str | Path) -> Run:
    path = Path(path)
    done = layout.read_done(path)
    metrics = {(row["benchmark"], row["metric"]): row["value"] for row in layout.read_results(path / layout.RESULTS)}
    return Run(path, done["method"], int(done["seed"]), done.get("scenario") or "synthetic", done.get("config", ""),
               float(done.get("seconds") or 0.0), metrics)


def collect(run_dir: str | Path) -> list[Run]:
    """Every finished run under ``run_dir`` (a run without results.csv is reported on stderr and left out)."""
    runs = []
    for path in layout.finished_runs(run_dir):
        if not (path / layout.RESULTS).is_file():
            print(f"report: {path} has done.json but no {layout.RESULTS}; left out", file=sys.stderr)
            continue
        runs.append(read_run(path))
    return runs


# ---------------------------------------------------------------------------------- aggregation
@dataclass
class Cell:
    values: list[float]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return float(np.mean(self.values)) if self.values else None

    @property
    def std(self) -> float | None:
        """Sample standard deviation (ddof = 1); None with fewer than two values."""
        return float(np.std(self.values, ddof=1)) if self.n >= 2 else None


@dataclass
class Row:
    label: str
    method: str
    scenario: str
    runs: list[Run]

    @property
    def seeds(self) -> list[int]:
        return sorted(run.seed for run in self.runs)

    def cell(self, column: Column) -> Cell:
        return Cell([run.metrics[column.benchmark, column.metric] for run in sorted(self.runs, key=lambda r: r.seed)
                     if (column.benchmark, column.metric) in run.metrics])


def rows_of(runs: list[Run]) -> list[Row]:
    """One row per (scenario, method) — per (scenario, method, config) when a method has several configs."""
    stems: dict[tuple[str, str], set[str]] = {}
    for run in runs:
        stems.setdefault((run.scenario, run.method), set()).add(run.config_stem)
    rows: dict[tuple, Row] = {}
    for run in runs:
        several = len(stems[run.scenario, run.method]) > 1 and run.method != "Original"
        key = (run.scenario, run.method, run.config_stem if several else "")
        label = f"{run.method} ({run.config_stem})" if several else run.method
        row = rows.setdefault(key, Row(label, run.method, run.scenario, []))
        if any(other.seed == run.seed for other in row.runs):
            twin = next(other for other in row.runs if other.seed == run.seed)
            print(f"report: {run.path} repeats {label} seed {run.seed} of {twin.path}; left out", file=sys.stderr)
            continue
        row.runs.append(run)
    return sorted(rows.values(), key=lambda row: (row.scenario, method_sort_key(row.method), row.label))


@dataclass
class TableResult:
    table: Table
    scenario: str | None  # None: no runs for the table
    rows: list[Row]
    columns: list[Column]
    absent: list[Column]  # optional (grouped) columns no run has: not shown, listed in a note


def chance_runs(runs: list[Run]) -> list[Run]:
    """One pseudo-run per Original run: its benchmarks' ``chance_*`` values as the metrics (a chance
    level depends on the benchmark's composition only, which the Original shares with every method)."""
    chance = []
    for run in runs:
        if run.method != "Original":
            continue
        metrics = {(benchmark, metric[len(CHANCE_PREFIX):]): value for (benchmark, metric), value in run.metrics.items()
                   if metric.startswith(CHANCE_PREFIX)}
        if metrics:
            chance.append(Run(run.path, CHANCE, run.seed, run.scenario, run.config, 0.0, metrics))
    return chance


def build_tables(runs: list[Run], tables: tuple[Table, ...] = TABLES) -> list[TableResult]:
    """Each table, once per scenario it selects that has runs (once with no rows when none has).

    Retrieval tables start with the chance row (from the Original runs' ``chance_*`` metrics); tables
    without a retrieval column leave it out."""
    rows = rows_of([*chance_runs(runs), *runs])
    results = []
    for table in tables:
        scenarios = sorted({row.scenario for row in rows if table.selects(row.scenario)})
        if not scenarios:
            results.append(TableResult(table, None, [], list(table.columns), []))
            continue
        for scenario in scenarios:
            selected = [row for row in rows if row.scenario == scenario]
            selected = [row for row in selected if row.method != CHANCE or any(row.cell(column).n for column in table.columns)]
            # a benchmark is present when some run has one of the table's metrics of it
            present = {c.benchmark for c in table.columns for row in selected for run in row.runs if (c.benchmark, c.metric) in run.metrics}
            groups_present = {column.group for column in table.columns if column.group and column.benchmark in present}
            columns, absent = [], []
            for column in table.columns:
                shown = column.group is None or column.benchmark in present or column.group not in groups_present
                (columns if shown else absent).append(column)
            results.append(TableResult(table, scenario, selected, columns, absent))
    return results


# ---------------------------------------------------------------------------------- formatting
def _scale(metric: str) -> tuple[float, int]:
    return (1.0, 3) if metric == "CS" else (100.0, 2)


def format_cell(cell: Cell, metric: str, rows_seeds: int, with_std: bool = True, latex: bool = False) -> str:
    if cell.n == 0:
        return "n/a" if latex else MISSING
    scale, digits = _scale(metric)
    mean = f"{scale * cell.mean:.{digits}f}"
    std = "—" if cell.std is None else f"{scale * cell.std:.{digits}f}"
    if latex:
        text = mean if cell.std is None else f"{mean}$\\pm${std}"
    else:
        text = f"{mean} ± {std}" if with_std else mean
    if cell.n < rows_seeds:
        text += f" (n={cell.n})"
    return text


def _heading(result: TableResult, several: bool) -> str:
    return result.table.title + (f" — scenario {result.scenario}" if several and result.scenario else "")


def _several(results: list[TableResult]) -> set[str]:
    """Tables shown for more than one scenario (their headings name the scenario)."""
    counts: dict[str, int] = {}
    for result in results:
        counts[result.table.key] = counts.get(result.table.key, 0) + 1
    return {key for key, count in counts.items() if count > 1}


def _notes(result: TableResult, run_dir: str) -> list[str]:
    if result.scenario is None:
        return [f"no runs of {result.table.describe_scenarios()} in {run_dir}"]
    notes = []
    missing = [c.title for c in result.columns if all(row.cell(c).n == 0 for row in result.rows)]
    if missing:
        notes.append("missing in every run: " + ", ".join(missing))
    if result.absent:
        notes.append("not in these runs (other protocols' benchmarks): " + ", ".join(c.title for c in result.absent))
    return notes


def markdown_tables(results: list[TableResult], run_dir: str, with_std: bool = True) -> str:
    several = _several(results)
    parts = []
    for result in results:
        lines = [f"### {_heading(result, result.table.key in several)}", ""]
        if result.table.note:
            lines += [f"_{result.table.note}_", ""]
        if result.scenario is not None:
            lines.append("| method | seeds | " + " | ".join(c.title for c in result.columns) + " |")
            lines.append("|---|---|" + "---:|" * len(result.columns))
            for row in result.rows:
                cells = [format_cell(row.cell(c), c.metric, len(row.runs), with_std) for c in result.columns]
                lines.append(f"| {row.label} | {' '.join(map(str, row.seeds))} | " + " | ".join(cells) + " |")
            lines.append("")
        lines += [f"{note}." if not note.endswith(".") else note for note in _notes(result, run_dir)]
        parts.append("\n".join(lines).rstrip())
    return "\n\n".join(parts)


_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "#": r"\#", "_": r"\_", "$": r"\$", "{": r"\{",
          "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "—": "---", "–": "--", "→": r"$\to$"}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX.get(char, char) for char in text)


def latex_tables(results: list[TableResult], run_dir: str) -> str:
    several = _several(results)
    parts = ["% faceunlearn report: mean$\\pm$std (sample std, ddof = 1) over forget-set seeds\n"
             "% needs \\usepackage{booktabs}"]
    for result in results:
        heading = _latex_escape(_heading(result, result.table.key in several))
        if result.scenario is None:
            parts.append(f"% {heading}: " + _latex_escape(_notes(result, run_dir)[0]))
            continue
        columns = result.columns
        body = [
            r"\begin{table}[t]", r"\centering", f"\\caption{{{heading}}}",
            r"\begin{tabular}{l" + "r" * len(columns) + "}", r"\toprule",
            "Method & " + " & ".join(_latex_escape(c.title) for c in columns) + r" \\", r"\midrule",
        ]
        for row in result.rows:
            cells = [format_cell(row.cell(c), c.metric, len(row.runs), latex=True) for c in columns]
            body.append(_latex_escape(row.label) + " & " + " & ".join(cells) + r" \\")
        body += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
        parts.append("\n".join(body))
    return "\n\n".join(parts) + "\n"


def csv_rows(results: list[TableResult]) -> list[dict]:
    rows = []
    for result in results:
        for row in result.rows:
            for column in result.columns:
                cell = row.cell(column)
                rows.append({"method": row.label, "table": result.table.key, "benchmark": column.benchmark,
                             "metric": column.metric, "mean": "" if cell.mean is None else repr(cell.mean),
                             "std": "" if cell.std is None else repr(cell.std), "n": cell.n, "scenario": row.scenario})
    return rows


def time_table(runs: list[Run]) -> str:
    rows = rows_of(runs)
    several = len({row.scenario for row in rows}) > 1
    lines = ["| method | runs | mean time per run |", "|---|---:|---:|"]
    for row in rows:
        seconds = sum(run.seconds for run in row.runs) / len(row.runs)
        label = f"{row.label} ({row.scenario})" if several else row.label
        lines.append(f"| {label} | {len(row.runs)} | {seconds:.1f} s |")
    return "\n".join(lines)


#: the metrics "Avg. Gap" averages (all in %, as SalUn's), over every benchmark of the paper's tables
GAP_METRICS = ("mAP", "R@1", "acc")


def gap_rows(runs: list[Run], tables: tuple[Table, ...] = TABLES) -> list[dict]:
    """Per method row: the gap to Retrain on the same forget set, mean |Δ| over the tables' mAP, R@1
    and acc columns both runs have (in points), then mean ± std over the forget sets; and its mean
    run time relative to Retrain's (training + evaluation)."""
    columns = {(column.benchmark, column.metric) for table in tables for column in table.columns if column.metric in GAP_METRICS}
    retrain = {(run.scenario, run.seed): run for run in runs if run.method == RETRAIN}
    out = []
    for row in rows_of(runs):
        if row.method in (RETRAIN, CHANCE):
            continue
        gaps, ratios = [], []
        for run in row.runs:
            reference = retrain.get((run.scenario, run.seed))
            if reference is None:
                continue
            shared = sorted(key for key in columns if key in run.metrics and key in reference.metrics)
            if shared:
                gaps.append(float(np.mean([100 * abs(run.metrics[key] - reference.metrics[key]) for key in shared])))
            if reference.seconds > 0 and row.method != "Original":
                ratios.append(run.seconds / reference.seconds)
        if gaps:
            out.append({"label": row.label, "scenario": row.scenario, "gap": Cell(gaps), "time": Cell(ratios)})
    return out


def gap_table(runs: list[Run]) -> str:
    rows = gap_rows(runs)
    if not rows:
        return ""
    lines = ["| method | forget sets | Avg. Gap to Retrain (points) | time / Retrain's |", "|---|---:|---:|---:|"]
    for row in rows:
        gap, time = row["gap"], row["time"]
        spread = f" ± {gap.std:.2f}" if gap.std is not None else ""
        ratio = f"{time.mean:.2f}×" if time.n else "—"
        lines.append(f"| {row['label']} | {gap.n} | {gap.mean:.2f}{spread} | {ratio} |")
    return ("### Gap to Retrain\n\nPer forget set, the mean |method − Retrain| over every mAP, R@1 and acc column of "
            "Tables 1–3 both runs have (in points; SalUn's \"Avg. Gap\"), then mean ± std over forget sets; lower is "
            "closer to the model that never trained on the forget set. Time: a run's wall time (training + "
            "evaluations) over Retrain's.\n\n" + "\n".join(lines))


#: the audit table's columns: (test, metric, title) of ``faceunlearn audit``'s rows
def tradeoff_section(runs: list[Run], studies: list, out: Path) -> str:
    """The trade-off figure (PNG + TensorBoard) and the validation front table (``faceunlearn.experiments.tradeoff``)."""
    from faceunlearn.experiments import tradeoff

    rows = [row for row in rows_of(runs) if TABLE_1.selects(row.scenario)]
    points = tradeoff.sweep_points(rows, RETENTION_BENCHMARKS)
    original = next((point for point in points if point.label == "Original"), None)
    methods = [point for point in points if point.label != "Original"]
    if not studies and not methods:
        return ""
    tradeoff.write_tradeoff(studies, methods, original, out)
    text = [f"### Trade-off: forget mAP against retention mAP\n\n![trade-off]({tradeoff.PNG})\n\n"
            f"Left: every trial of each tuning study, on its validation forget sets and validation retention identities; "
            f"right: the reported runs (mean over their forget sets; retention = mean mAP over "
            f"{', '.join(sorted({name for row in rows for run in row.runs for name in RETENTION_BENCHMARKS if (name, 'mAP') in run.metrics})) or '—'}). "
            f"Lines: the Pareto fronts (lower forget, higher retention). Also in TensorBoard: `tensorboard --logdir {out / 'tensorboard'}`."]
    if methods:
        front = tradeoff.pareto_front([p.forget for p in methods], [p.retention for p in methods])
        text.append("On the test front: " + ", ".join(f"{p.label} ({100 * p.forget:.2f} / {100 * p.retention:.2f})"
                                                     for p, on in sorted(zip(methods, front), key=lambda item: item[0].forget) if on) + ".")
    if studies:
        text.append("#### Validation Pareto fronts (the analogue of the paper's Appendix Table 5)\n\n" + tradeoff.front_table(studies))
    return "\n\n".join(text)


def write_report(runs: list[Run], out: str | Path, run_dir: str, tables: tuple[Table, ...] = TABLES, studies: list = ()) -> str:
    """Write report.md, report.csv and report.tex (and the trade-off figure) into ``out``; returns the markdown."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = build_tables(runs, tables)
    seeds = sorted({run.seed for run in runs})
    from faceunlearn.experiments.audit_tables import audit_csv_rows, audit_detail_table, audit_roc_section, audit_table

    markdown = "\n\n".join([
        f"# faceunlearn report: {run_dir}",
        f"{len(runs)} finished runs, forget-set seeds {' '.join(map(str, seeds)) or '—'}. Each cell is the mean ± "
        "sample std (ddof = 1) over the seeds in the row's `seeds` column (± — with one seed; (n=k): only k seeds "
        "have the value). mAP, R@1 and acc in %, CS as a cosine.",
        markdown_tables(results, run_dir),
        "### Run time\n\n" + time_table(runs) if runs else "",
        gap_table(runs),
        audit_table(runs),
        audit_detail_table(runs),
        audit_roc_section(runs, out),
        tradeoff_section(runs, list(studies), out),
    ]).rstrip() + "\n"
    write_text_atomic(out / "report.md", markdown)
    write_text_atomic(out / "report.tex", latex_tables(results, run_dir))
    gaps = [{"method": row["label"], "table": "gap_to_retrain", "benchmark": "all", "metric": name,
             "mean": "" if cell.mean is None else repr(cell.mean), "std": "" if cell.std is None else repr(cell.std),
             "n": cell.n, "scenario": row["scenario"]}
            for row in gap_rows(runs) for name, cell in (("avg_gap", row["gap"]), ("time_ratio", row["time"])) if cell.n]
    write_csv_atomic(out / "report.csv", csv_rows(results) + gaps + audit_csv_rows(runs), REPORT_CSV_COLUMNS)
    return markdown
