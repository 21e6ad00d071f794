"""``faceunlearn compare``: the Original model and every unlearning method on one forget set.

A one-seed ``faceunlearn sweep`` (``faceunlearn.experiments.sweep``) followed by the report's
Tables 1 and 2 (``faceunlearn.experiments.report``): each method is one LightningCLI config
(``configs/demo_*.yaml`` by default), run from the same Original checkpoint on the same seeded
forget set; the Original is evaluated once. The runs go to ``<out>/<config stem>/seed<K>/`` and
are resumable like a sweep's (finished runs are reused; use a new ``--out`` to redo them). The
tables — forget/retain mAP and R@1, forget/retain CS and centroid accuracy — are printed and
written to ``<out>/results.md``; ``<out>/results.csv`` holds every metric of every run, tidy
(``method,seed,benchmark,metric,value``).
"""

from __future__ import annotations

from pathlib import Path

from faceunlearn.io.atomic import write_text_atomic
from faceunlearn.experiments import layout
from faceunlearn.experiments.report import build_tables, markdown_tables, read_run
from faceunlearn.experiments.sweep import describe_config, format_seconds, sweep
from faceunlearn.experiments.tables import TABLE_1, TABLE_2
from faceunlearn.io.tidy import write_csv

DEMO_FINETUNE = "configs/demo_finetune.yaml"
DEFAULT_CONFIGS = [f"configs/demo_{name}.yaml" for name in ("disp", "harddisp", "rl", "ga", "bs", "lu", "cu")]


def run_compare(configs: list[str], finetune_config: str | None, out_dir: str, overrides: list[str],
                finetune_overrides: list[str], seed: int | None = None) -> list[dict]:
    """Sweep ``configs`` over one forget set (default: the first config's ``data.seed``); returns the tidy rows."""
    for config in configs:
        if not Path(config).is_file():
            raise SystemExit(f"config {config!r} not found (run from the repository root)")
    if seed is None:
        seed = describe_config(configs[0], overrides).seed
    specs = sweep(configs, [seed], out_dir, finetune_config, overrides, finetune_overrides)
    runs = [read_run(spec.run_dir) for spec in specs]
    rows = [row for spec in specs for row in layout.read_results(spec.run_dir / layout.RESULTS)]
    out = Path(out_dir)
    write_csv(rows, out / "results.csv")
    tables = markdown_tables(build_tables(runs, (TABLE_1, TABLE_2)), out_dir, with_std=False)
    write_text_atomic(out / "results.md", f"Forget set {seed}.\n\n{tables}\n")
    print(f"\nForget set {seed}.\n\n{tables}")
    print("\nTime per run (Original: its evaluation; a method: unlearning + its evaluations):")
    for run in runs:
        print(f"  {run.method:<24s} {format_seconds(run.seconds):>9s}   {run.path}")
    print(f"\nWrote {out / 'results.csv'} and {out / 'results.md'}; all tables: faceunlearn report {out}")
    return rows
