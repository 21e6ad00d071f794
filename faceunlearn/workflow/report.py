"""``<out>/report.md`` and ``<out>/model_card.md`` of ``faceunlearn unlearn``: counts, never names.

One page: what was forgotten (how many people and photos), retrieval and verification of the forgotten people
before and after, with chance levels; the attacks of the fair audit (the same attacker against both models);
retention of everyone else (kept and held-out people); the time of every step; what stays on disk.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from faceunlearn.io.atomic import write_text_atomic
from faceunlearn.io.tidy import read_results

#: (section, label, source, benchmark, metric): source "audit" (audit.csv) or "run" (the run's results.csv)
ROWS = [
    ("Forgotten people", "retrieval mAP", "run", "forget", "mAP"),
    ("Forgotten people", "retrieval R@1 (nearest photo is the same person)", "run", "forget", "R@1"),
    ("Forgotten people", "verification TAR @ FAR 1e-3", "audit", "verify_forget", "TAR@FAR=0.001"),
    ("Forgotten people", "1:N identification rank-1", "audit", "identify_forget", "rank1"),
    ("Attacks on the forgotten", "relearning, 100 steps, strongest lr: mAP", "audit", "relearn_100", "mAP"),
    ("Attacks on the forgotten", "relearning on kept people only, 100 steps: mAP", "audit", "relearn_retain_100", "mAP"),
    ("Attacks on the forgotten", "old gallery (not re-enrolled): mAP", "audit", "stale_gallery", "mAP"),
    ("Attacks on the forgotten", "weight midpoint to the original: mAP", "audit", "basin", "midpoint_forget_mAP"),
    ("Attacks on the forgotten", "linear probe: mAP", "audit", "probe", "mAP"),
    ("Attacks on the forgotten", "membership inference AUC (50 = chance)", "audit", "membership", "AUC_forget_train_vs_unseen"),
    ("Everyone else", "kept people: retrieval mAP", "run", "kept", "mAP"),
    ("Everyone else", "held-out people: retrieval mAP", "run", "heldout", "mAP"),
    ("Everyone else", "held-out people: verification TAR @ FAR 1e-3", "audit", "verify_retain", "TAR@FAR=0.001"),
    ("Everyone else", "held-out people: verification TAR @ FAR 1e-4", "audit", "verify_retain", "TAR@FAR=0.0001"),
    ("Everyone else", "held-out people against the old gallery: mAP", "audit", "stale_gallery_heldout", "mAP"),
]


def _values(path: Path) -> dict[tuple[str, str, str], float]:
    return {(row["method"], row["benchmark"], row["metric"]): float(row["value"]) for row in read_results(path)} if path.is_file() else {}


def collect(original_dir: Path, run_dir: Path, audited: bool) -> tuple[dict[str, dict[str, float]], str]:
    """``{label: {"before": v, "after": v, "chance": v?}}`` and the method's name."""
    before, after = _values(original_dir / "results.csv"), _values(run_dir / "results.csv")
    method = next((key[0] for key in after), "after")
    audit = _values(run_dir / "audit/audit.csv") if audited else {}
    metrics = {}
    for _, label, source, benchmark, metric in ROWS:
        if source == "run":
            pair = (before.get(("Original", benchmark, metric)), after.get((method, benchmark, metric)))
        else:
            pair = (audit.get(("Original", benchmark, metric)), audit.get((method, benchmark, metric)))
        if pair[0] is None and pair[1] is None:
            continue
        entry = {"before": pair[0], "after": pair[1]}
        chance = after.get((method, benchmark, f"chance_{metric}"))
        if chance is not None:
            entry["chance"] = chance
        if benchmark.startswith("relearn"):
            entry["lr_after"] = audit.get((method, benchmark, "lr"))
        metrics[label] = entry
    return metrics, method


def collect_audit(path: Path, name: str) -> dict[str, dict[str, float]]:
    """The report's numbers from one ``audit.csv`` alone (``faceunlearn audit --before --after``): retrieval of the
    held-out people is the pooled benchmark there; the kept people's per-source table is the run's, so absent."""
    audit = _values(path)
    metrics = {}
    for _, label, _, benchmark, metric in ROWS:
        benchmark = "heldout_pooled" if benchmark == "heldout" else benchmark
        pair = (audit.get(("Original", benchmark, metric)), audit.get((name, benchmark, metric)))
        if pair == (None, None):
            continue
        metrics[label] = {"before": pair[0], "after": pair[1]}
        if (name, benchmark, f"chance_{metric}") in audit:
            metrics[label]["chance"] = audit[name, benchmark, f"chance_{metric}"]
        if benchmark.startswith("relearn"):
            metrics[label]["lr_after"] = audit.get((name, benchmark, "lr"))
    return metrics


def _cell(value) -> str:
    return "—" if value is None or value != value else f"{100 * value:.1f}"


def write_report(out: Path, done: dict, original_dir: Path, run_dir: Path, audited: bool, seconds: dict[str, float],
                 keep_resumable: bool) -> dict[str, dict[str, float]]:
    """Write ``report.md``, ``model_card.md`` and ``roc.png`` into ``out``; returns the table's numbers."""
    metrics, method = collect(original_dir, run_dir, audited)
    detect, export = done["detect"], done["export"]
    lines = ["# faceunlearn unlearn: report", "",
             f"**Forgotten:** {len(detect['forget_ids'])} people ({detect['forget_faces']} photos with a face). "
             f"**Kept:** {done['check']['people'] - len(detect['forget_ids'])} people ({detect['kept_faces']} photos), "
             f"trained on as people to keep. **Held out:** {done['check']['heldout']} people ({detect['heldout_faces']} "
             f"photos), never trained on. Photos without a usable face, left out: {detect['skipped']}.", "",
             "All values in %. *Before*: the model you gave; *after*: `model.onnx`. Forgotten people are forgotten when "
             "their rows sit near chance, and stay near it under the attacks; everyone else should not move.", ""]
    lines += table(metrics)
    if not audited:
        lines += ["", "The audit was skipped (`--no-audit`): no attack was run; do not call these people forgotten on "
                      "retrieval numbers alone."]
    if (run_dir / "audit/roc.png").is_file():
        shutil.copyfile(run_dir / "audit/roc.png", out / "roc.png")
        lines += ["", "![verification ROC, before and after](roc.png)"]
    if done["disjoint"].get("highest_cosine") is not None:
        lines += ["", f"Disjointness: the highest cosine between a forgotten and a held-out person's mean embedding was "
                      f"{done['disjoint']['highest_cosine']:.2f} (threshold {done['disjoint']['threshold']})."]
    lines += ["", "## Time", "", "| step | seconds |", "|---|---:|"]
    lines += [f"| {step} | {value:.0f} |" for step, value in seconds.items() if step != "report"]
    lines += ["", f"Exported: `model.onnx`, {export['megabytes']:.1f} MB; onnxruntime against PyTorch on test inputs: "
                  f"min cosine {export['min_cosine']:.6f}.", "", "## What stays on disk", "", *stays_on_disk(keep_resumable)]
    write_text_atomic(out / "report.md", "\n".join(lines) + "\n")
    write_text_atomic(out / "model_card.md", model_card(metrics, method, detect, done, audited))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    return metrics


def table(metrics: dict[str, dict[str, float]]) -> list[str]:
    """The before / after / chance table, by section, in ``ROWS`` order."""
    lines, section = ["| | before | after | chance |", "|---|---:|---:|---:|"], None
    for name, label, *_ in ROWS:
        if label not in metrics:
            continue
        if name != section:
            lines.append(f"| **{name}** | | | |")
            section = name
        entry = metrics[label]
        lr = f" (lr {entry['lr_after']:g})" if entry.get("lr_after") else ""
        lines.append(f"| {label} | {_cell(entry['before'])} | {_cell(entry['after'])}{lr} | {_cell(entry.get('chance'))} |")
    return lines


def write_pair_report(out: Path, metrics: dict, facts: dict, seconds: dict[str, float], before: str, after: str) -> dict:
    """``report.md`` of ``faceunlearn audit --before --after``: the same page as ``unlearn``'s, without its run."""
    lines = ["# faceunlearn audit: report", "", f"*Before*: `{before}`; *after*: `{after}`.", "",
             f"**Forgotten:** {facts['forget']} people ({facts['forget_faces']} photos with a face). **Kept:** "
             f"{facts['kept']} people ({facts['kept_faces']} photos). **Held out:** {facts['heldout']} people "
             f"({facts['heldout_faces']} photos). Photos without a usable face, left out: {facts['skipped']}.", "",
             "All values in %. The same attacker against both models (faceunlearn.audit); every test in audit.md.", "",
             *table(metrics), "", "![verification ROC, before and after](roc.png)", "", "## Time", "",
             "| step | seconds |", "|---|---:|", *[f"| {step} | {value:.0f} |" for step, value in seconds.items()], ""]
    write_text_atomic(out / "report.md", "\n".join(lines))
    return metrics


def stays_on_disk(keep_resumable: bool) -> list[str]:
    return [
        "* `model.onnx`, `report.md`, `model_card.md`, `roc.png`, `metrics.json`: counts and numbers, no names, no faces.",
        "* `work/steps.json`: the request — the model's path, the photo folders' paths and the names you asked to forget "
        "as salted SHA-256 hashes (so that a rerun knows it is the same request; whoever holds a name and this file can "
        "test it, nobody can read it). Delete it once you are done.",
        "* `work/runs/`: evaluation tables and the audit (numbers only), configs and checkpoints that name the forgotten "
        "people by pack id only. " + ("The checkpoints are resumable: they still hold the forgotten people's CosFace head "
                                      "rows (`faceunlearn purge --checkpoints work/runs` removes them)." if keep_resumable
                                      else "Their forgotten people's CosFace head rows are zeroed and optimiser state dropped."),
        "* `work/packs/holdout-*`: aligned crops of the held-out people (cached for the next request). The people folder's "
        "crops were removed.",
        "* Your photo folders are never changed.",
    ]


def model_card(metrics: dict, method: str, detect: dict, done: dict, audited: bool) -> str:
    def pair(label):
        entry = metrics.get(label)
        return "—" if entry is None else f"{_cell(entry['before'])} → {_cell(entry['after'])}"

    return "\n".join([
        "# Model card: unlearned face recognizer", "",
        "* **Model**: `model.onnx`, the given recognizer after unlearning; same input name, shape and pixel convention.",
        f"* **Change**: {len(detect['forget_ids'])} people removed on request with faceunlearn ({method}, the recipe "
        "selected on validation: `configs/own_disp.yaml`), 100 steps.",
        "* **Intended use**: the same pipeline as the original model. Re-enrol (re-embed) every gallery with this model: "
        "an old gallery embedded by the original model is an attack on the forgotten people (see the report).",
        f"* **Forgotten people, retrieval mAP**: {pair('retrieval mAP')} %; R@1 {pair('retrieval R@1 (nearest photo is the same person)')} %.",
        f"* **Everyone else**: held-out mAP {pair('held-out people: retrieval mAP')} %, TAR @ FAR 1e-3 "
        f"{pair('held-out people: verification TAR @ FAR 1e-3')} %.",
        "* **Audit**: " + ("the fair audit of faceunlearn (relearning, old gallery, weight midpoint, membership inference; the "
                           "same attacker for both models): report.md." if audited else "not run."),
        "* **Limits**: measured on the photos given, which are few; a person may still be found in other photos or by a "
        "stronger attacker. Numbers near chance are the goal, not zero.", ""])
