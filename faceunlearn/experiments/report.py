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

from faceunlearn.atomic import write_csv_atomic, write_text_atomic
from faceunlearn.experiments import layout
from faceunlearn.experiments.tables import CHANCE, RETRAIN, TABLE_1, TABLES, Column, Table, method_sort_key
from faceunlearn.reporting import CHANCE_PREFIX

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
AUDIT_COLUMNS = (
    ("forget", "mAP", "forget mAP"), ("forget", "R@1", "forget R@1"),
    ("verify_forget", "TAR@FAR=0.001", "forget TAR@FAR=1e-3"),
    ("membership", "AUC_forget_train_vs_unseen", "MIA AUC"), ("membership_identity", "flagged@5%", "MIA people flagged@5%"),
    ("membership_identity", "flagged_low@5%", "MIA people flagged low@5%"),
    ("stale_gallery", "mAP", "stale-gallery mAP"), ("relearn_100", "mAP", "relearn-100 mAP (strongest lr)"),
    ("relearn_retain_100", "mAP", "retain-only relearn-100 mAP"),
    ("heldout_pooled", "mAP", "held-out pooled mAP"), ("verify_retain", "TAR@FAR=0.001", "held-out TAR@FAR=1e-3"),
    ("verify_retain", "TAR@FAR=0.0001", "held-out TAR@FAR=1e-4"), ("stale_gallery_retain", "mAP", "retain vs old gallery mAP"),
)


def audit_file_rows(runs: list[Run], name: str):
    """``(model label, seed, row)`` of every run's ``audit/<name>``, by seed: each run's own method's rows, and the
    Original and Retrain rows of the first audit of each seed (every audit of a seed has them)."""
    from faceunlearn.experiments.layout import AUDIT, read_results

    label_of = {id(run): row.label for row in rows_of(runs) for run in row.runs}  # "Dispersion (demo_disp)" when needed
    first_audit: dict[tuple[str, int], Path] = {}
    for run in sorted(runs, key=lambda run: (run.seed, str(run.path))):
        path = run.path / AUDIT / name
        if not path.is_file() or id(run) not in label_of:
            continue
        for row in read_results(path):
            if row["method"] in ("Original", RETRAIN):
                if first_audit.setdefault((row["method"], run.seed), path) == path:
                    yield row["method"], run.seed, row
            elif row["method"] == run.method:
                yield label_of[id(run)], run.seed, row


def audit_rows(runs: list[Run]) -> dict[str, dict[tuple[str, str], list[float]]]:
    """method → (test, metric) → one value per forget set, from the runs' ``audit/audit.csv``."""
    values: dict[str, dict[tuple[str, str], dict[int, float]]] = {}
    for method, seed, row in audit_file_rows(runs, "audit.csv"):
        values.setdefault(method, {}).setdefault((row["benchmark"], row["metric"]), {}).setdefault(seed, row["value"])
    return {method: {key: list(by_seed.values()) for key, by_seed in metrics.items()} for method, metrics in values.items()}


def audit_table(runs: list[Run]) -> str:
    values = audit_rows(runs)
    if not values:
        return ""
    lines = ["| model | " + " | ".join(title for _, _, title in AUDIT_COLUMNS) + " |", "|---|" + "---:|" * len(AUDIT_COLUMNS)]
    for method in _audit_models(values):
        seeds = max(len(by_seed) for by_seed in values[method].values())
        cells = [_audit_text(_finite_cell(values[method].get((test, metric), [])), seeds) for test, metric, _ in AUDIT_COLUMNS]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return ("### Audit (faceunlearn audit)\n\nIn %, mean ± std over forget sets; every model faces the same attacker, "
            "which never reads a model's CosFace head. Truly forgetting is being close to Retrain (or, without one, the "
            "D_r-only control) in every column, not reaching 0. MIA AUC: the membership attack's AUC (D_f^train vs "
            "never-seen people, embedding features, populations matched in images per person; far below 50 tells as "
            "much as far above); people flagged@5% (low@5%): forgotten people scoring above 95 % (below 5 %) of "
            "never-seen people (chance 5 % each). Recovery attacks: a gallery the "
            "Original embedded (stale gallery), 100 fine-tuning steps on 2 photos per forgotten person (relearn-100) "
            "or on retain people only (retain-only), the strongest of the lr grid each. Retention that can fail: "
            "every held-out person of every source pooled (mAP, TAR at FAR 1e-3 and 1e-4), and retain queries "
            "against the Original's gallery (a deployment that does not re-embed).\n\n" + "\n".join(lines))


def _audit_models(values: dict) -> list[str]:
    return sorted(values, key=lambda label: (method_sort_key(label.split(" (")[0]), label))


def _finite_cell(values: list[float]) -> Cell:
    """The finite values: a test without data (e.g. no genuine pairs) writes NaN."""
    return Cell([value for value in values if value == value])


def _audit_text(cell: Cell, seeds: int) -> str:
    """mean ± std in % (no ± with one value), with "(n=k)" when only k of the model's ``seeds`` forget sets have one."""
    return format_cell(cell, "audit", seeds, with_std=cell.std is not None)


def audit_detail_table(runs: list[Run]) -> str:
    """Every (test, metric) of the audits as a row, every audited model as a column: mean ± std over forget sets."""
    values = audit_rows(runs)
    if not values:
        return ""
    models = _audit_models(values)
    seeds = {model: max(len(by_seed) for by_seed in values[model].values()) for model in models}
    keys = list(dict.fromkeys(key for model in models for key in values[model]))
    lines = ["| test | metric | " + " | ".join(models) + " |", "|---|---|" + "---:|" * len(models)]
    for test, metric in keys:
        if metric == "lr":  # the strongest attacker's lr: the value of each forget set, not a mean
            cells = [", ".join(f"{lr:g}" for lr in values[model].get((test, metric), [])) or "—" for model in models]
        else:
            cells = [_audit_text(_finite_cell(values[model].get((test, metric), [])), seeds[model]) for model in models]
        lines.append(f"| {test} | {metric} | " + " | ".join(cells) + " |")
    return ("#### Every test, every model\n\nIn % (AUC × 100), mean ± std over forget sets; `lr`: the strongest relearning "
            "attacker's lr on each forget set.\n\n" + "\n".join(lines))


def audit_csv_rows(runs: list[Run]) -> list[dict]:
    """The audits, tidy: one row per model, test and metric (``table`` "audit"), mean and std over forget sets."""
    values = audit_rows(runs)
    rows = []
    for model in _audit_models(values):
        for (test, metric), numbers in values[model].items():
            cell = _finite_cell(numbers)
            rows.append({"method": model, "table": "audit", "benchmark": test, "metric": metric,
                         "mean": "" if cell.mean is None else repr(cell.mean), "std": "" if cell.std is None else repr(cell.std),
                         "n": cell.n, "scenario": ""})
    return rows


#: the averaged ROC figure of the audits
AUDIT_ROC_PNG = "audit_roc.png"


def audit_roc_curves(runs: list[Run]) -> dict[str, dict[str, list[tuple[np.ndarray, np.ndarray]]]]:
    """model label → verification test → one (FARs, TARs) curve per forget set, from the runs' ``audit/roc.csv``."""
    from faceunlearn.audit import ROC_CSV

    points: dict[tuple[str, str, int], dict[float, float]] = {}
    for model, seed, row in audit_file_rows(runs, ROC_CSV):
        points.setdefault((model, row["benchmark"], seed), {})[float(row["metric"].partition("=")[2])] = float(row["value"])
    curves: dict[str, dict[str, list]] = {}
    for (model, test, _), curve in sorted(points.items(), key=lambda item: item[0][2]):
        fars = np.array(sorted(curve))
        curves.setdefault(model, {}).setdefault(test, []).append((fars, np.array([curve[far] for far in fars])))
    return curves


def mean_roc(curves: list[tuple[np.ndarray, np.ndarray]], num_points: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """The mean TAR over forget sets on a common log-FAR grid (each curve interpolated in log FAR), from
    the largest of the curves' smallest FARs to the smallest of their largest."""
    low = max(float(fars[0]) for fars, _ in curves)
    high = min(float(fars[-1]) for fars, _ in curves)
    grid = np.logspace(np.log10(low), np.log10(high), num_points) if high > low else np.array([low])
    return grid, np.mean([np.interp(np.log10(grid), np.log10(fars), tars) for fars, tars in curves], axis=0)


def audit_roc_section(runs: list[Run], out: Path) -> str:
    """The verification ROC curves of every audited model, mean over forget sets, as ``audit_roc.png``."""
    curves = audit_roc_curves(runs)
    if not curves:
        return ""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from faceunlearn.figures.png import save_png
    except ImportError as error:
        return f"(no ROC figure: {error})"
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for axis, test in zip(axes, ("verify_forget", "verify_retain")):
        for model in sorted(curves, key=lambda label: (method_sort_key(label.split(" (")[0]), label)):
            if test in curves[model]:
                fars, tars = mean_roc(curves[model][test])
                axis.plot(fars, tars, label=f"{model} (n={len(curves[model][test])})",
                          linestyle="--" if model in ("Original", RETRAIN) else "-")
        axis.set_xscale("log")
        axis.set_xlabel("FAR (held-out impostor pairs)")
        axis.set_title({"verify_forget": "forget identities", "verify_retain": "held-out identities"}[test])
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("TAR (mean over forget sets)")
    axes[1].legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    save_png(figure, out / AUDIT_ROC_PNG)
    plt.close(figure)
    return (f"![verification ROC]({AUDIT_ROC_PNG})\n\nVerification ROC of every audited model, TAR averaged over its forget "
            "sets (n) on a common log-FAR grid; thresholds from held-out impostor pairs. Close to Retrain's dashed curve "
            "on the left is forgetting; on the right, close to the Original's is retention.")


# ---------------------------------------------------------------------------------- writing
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
