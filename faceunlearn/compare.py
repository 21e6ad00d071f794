"""``faceunlearn compare``: the Original model and every unlearning method on one forget set.

Each method is one LightningCLI config (``configs/demo_*.yaml`` by default), run from the same
Original checkpoint on the same seeded forget set. The result is the paper's Tables 1 and 2 —
forget/retain mAP and R@1, forget/retain CS and centroid accuracy — printed, and written as tidy
CSV (``method,seed,benchmark,metric,value``) and markdown.
"""

from __future__ import annotations

import argparse
import shlex
import time
from pathlib import Path

from faceunlearn.callbacks import RetrievalEvaluation
from faceunlearn.cli import cli_main
from faceunlearn.reporting import markdown_table, tidy_rows, write_csv

DEFAULT_CONFIGS = [f"configs/demo_{name}.yaml" for name in ("disp", "harddisp", "rl", "ga", "bs", "lu", "cu")]
#: (benchmark, metric) columns of the paper's Table 1 (retrieval) and Table 2 (CS, centroid accuracy)
TABLE_1 = [("forget", "mAP"), ("forget", "R@1"), ("retain", "mAP"), ("retain", "R@1")]
TABLE_2 = [("forget", "CS"), ("retain", "CS"), ("forget", "acc"), ("retain", "acc")]


def ensure_original(finetune_config: str, overrides: list[str]) -> Path:
    """The Original model's last.ckpt, trained with ``finetune_config`` if it does not exist yet."""
    finetune = cli_main(["--config", finetune_config, *overrides], run=False)
    checkpoint = Path(finetune.trainer.checkpoint_callback.dirpath) / "last.ckpt"
    if not checkpoint.is_file():
        finetune.trainer.fit(finetune.model, finetune.datamodule)
    return checkpoint


def run_method(config: str, original: Path, overrides: list[str]):
    """Unlearn with one config; returns (method name, seed, metrics before, metrics after, seconds)."""
    start = time.perf_counter()
    run = cli_main(["--config", config, "--model.init_args.init_weights", str(original), *overrides], run=False)
    run.trainer.fit(run.model, run.datamodule)
    history = RetrievalEvaluation.of(run.trainer).history
    return type(run.model).__name__, run.datamodule.hparams.seed, history[0][1], history[-1][1], time.perf_counter() - start


def paper_tables(rows: list[dict]) -> str:
    """Table 1 and Table 2 of the paper, from tidy rows."""
    def table(columns):
        keep = {(benchmark, metric) for benchmark, metric in columns}
        selected = [row for row in rows if (row["benchmark"], row["metric"]) in keep]
        order = {column: index for index, column in enumerate(columns)}
        return markdown_table(sorted(selected, key=lambda row: order[(row["benchmark"], row["metric"])]))

    return ("Table 1: retrieval (mAP, R@1 in %)\n\n" + table(TABLE_1)
            + "\n\nTable 2: cluster compactness (CS) and centroid accuracy (acc, %)\n\n" + table(TABLE_2))


def run_compare(configs: list[str], finetune_config: str, out_dir: str, overrides: list[str], finetune_overrides: list[str]) -> list[dict]:
    for config in [finetune_config, *configs]:
        if not Path(config).is_file():
            raise SystemExit(f"config {config!r} not found (run from the repository root)")
    original = ensure_original(finetune_config, finetune_overrides)
    rows, seconds = [], {}
    for index, config in enumerate(configs):
        method, seed, before, after, elapsed = run_method(config, original, overrides)
        if index == 0:
            rows += tidy_rows("Original", seed, before)
        rows += tidy_rows(method, seed, after)
        seconds[method] = elapsed
    rows = [row for row in rows if row["benchmark"] in ("forget", "retain")]
    out = Path(out_dir)
    write_csv(rows, out / "results.csv")
    tables = paper_tables(rows)
    (out / "results.md").write_text(tables + "\n")
    print("\n" + tables)
    print("\nTime per method (unlearning + evaluations):")
    for method, elapsed in seconds.items():
        print(f"  {method:<24s} {elapsed:7.1f} s")
    print(f"\nWrote {out / 'results.csv'} and {out / 'results.md'}")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="faceunlearn compare", description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS, help="one unlearning config per method")
    parser.add_argument("--finetune-config", default="configs/demo_finetune.yaml", help="trains the Original model if its checkpoint is missing")
    parser.add_argument("--out", default="lightning_logs/compare", help="folder for results.csv and results.md")
    parser.add_argument("--override", default="", help='LightningCLI arguments for every unlearning run, one quoted string, e.g. "--trainer.max_epochs 2"')
    parser.add_argument("--finetune-override", default="", help="LightningCLI arguments for the Original model's run")
    args = parser.parse_args(argv)
    run_compare(args.configs, args.finetune_config, args.out, shlex.split(args.override), shlex.split(args.finetune_override))
