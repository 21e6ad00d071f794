"""The report's audit section: the audit summary and detail tables over forget sets, their tidy CSV, and the
verification ROC curves averaged over forget sets (``faceunlearn report`` on a sweep with ``--audit``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from faceunlearn.experiments.report import Cell, Run, format_cell, rows_of
from faceunlearn.experiments.tables import RETRAIN, method_sort_key


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
        from faceunlearn.figures.png import save_png
        from faceunlearn.figures.roc import roc_figure
    except ImportError as error:
        return f"(no ROC figure: {error})"
    order = sorted(curves, key=lambda label: (method_sort_key(label.split(" (")[0]), label))
    means = {f"{model} (n={max(len(c) for c in curves[model].values())})": {test: mean_roc(c) for test, c in curves[model].items()}
             for model in order}
    dashed = [label for label in means if label.split(" (")[0] in ("Original", RETRAIN)]
    try:
        figure = roc_figure(means, ylabel="TAR (mean over forget sets)", dashed=dashed, size=(11, 4.2))
    except ImportError as error:
        return f"(no ROC figure: {error})"
    save_png(figure, out / AUDIT_ROC_PNG)
    return (f"![verification ROC]({AUDIT_ROC_PNG})\n\nVerification ROC of every audited model, TAR averaged over its forget "
            "sets (n) on a common log-FAR grid; thresholds from held-out impostor pairs. Close to Retrain's dashed curve "
            "on the left is forgetting; on the right, close to the Original's is retention.")


# ---------------------------------------------------------------------------------- writing
