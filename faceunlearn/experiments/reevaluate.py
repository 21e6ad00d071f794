"""``faceunlearn reevaluate OLD_SWEEP --out NEW``: a sweep's finished runs, evaluated again with today's benchmarks.

    faceunlearn reevaluate lightning_logs/sweep_realfaces --out lightning_logs/sweep_realfaces_v2

When a protocol's benchmarks change but training does not (e.g. ``data.validation_fraction`` moves
held-out identities from the reported benchmarks to model selection: no training stream sees them
either way), the runs need not be trained again. Each finished run under OLD_SWEEP (``done.json``)
is evaluated once more (``validate``) with its config as it reads now and the run's own seed and
start weights: a method run from its ``checkpoints/last.ckpt``, the Original as before. Results
go to ``NEW/<stem>/seed<K>/`` in the sweep layout (``faceunlearn report NEW`` reads them); each
``done.json`` keeps the original run's training time and names the run it re-evaluated. OLD_SWEEP
is only read. Resumable like a sweep: finished re-evaluations are skipped.
"""

from __future__ import annotations

import time
from pathlib import Path

from faceunlearn.experiments import layout
from faceunlearn.experiments.sweep import RunResult, RunSpec, config_sha256, execute, run_args, run_one


def plan(old: Path, new: Path, overrides: list[str]) -> list[RunSpec]:
    specs, planned = [], {}
    for run in layout.finished_runs(old):
        done = layout.read_done(run)
        kind = done.get("kind", "method")
        if kind == "reevaluate":
            raise SystemExit(f"{run} is itself a re-evaluation; re-evaluate the sweep it came from ({done.get('reevaluated_from')})")
        checkpoint = run / layout.CHECKPOINTS / "last.ckpt"
        if kind == "method" and not checkpoint.is_file():
            raise SystemExit(f"{run}: finished, but {checkpoint} is missing; it cannot be re-evaluated without training it again")
        seed, config = int(done["seed"]), done["config"]
        if not Path(config).is_file():
            raise SystemExit(f"{run} was made with {config}, which does not exist here (run from the repository root)")
        stem = run.parent.name
        directory = layout.run_dir(new, stem, seed)
        if directory in planned:  # the same run made by several partial sweeps (e.g. each one's Original): once
            print(f"[reevaluate] {run}: {stem}/seed{seed} is already planned from {planned[directory]}; left out")
            continue
        planned[directory] = run
        # the run's own start weights (an ONNX start needs its graph; a method's checkpoint is loaded over it)
        weights = done.get("init_weights")
        spec = RunSpec("original" if kind == "original" else "reevaluate", config, stem, seed, done.get("scenario") or "synthetic",
                       directory, run_args(config, seed, directory, overrides, weights), weights,
                       {"config": config, "config_sha256": config_sha256(config), "overrides": list(overrides),
                        "reevaluated_from": str(run)}, None if kind == "original" else str(checkpoint))
        spec.settings["training_seconds"] = float(done.get("seconds") or 0.0)
        specs.append(spec)
    if not specs:
        raise SystemExit(f"no finished runs (done.json) under {old}")
    return specs


def run_and_keep_training_time(spec: RunSpec) -> RunResult:
    """``run_one``, with done.json's ``seconds`` the training run's (what the report shows) and this evaluation's apart."""
    start = time.perf_counter()
    result = run_one(spec)
    result.info.update(reevaluated_from=spec.settings["reevaluated_from"], evaluation_seconds=round(time.perf_counter() - start, 3),
                       seconds=spec.settings["training_seconds"])  # ``finish`` writes info over its own fields
    return result


def reevaluate(old: str, new: str, overrides: list[str] = ()) -> list[RunSpec]:
    old_dir, new_dir = Path(old), Path(new)
    if not old_dir.is_dir():
        raise SystemExit(f"reevaluate: {old!r} is not a folder")
    if new_dir.resolve() == old_dir.resolve() or old_dir.resolve() in new_dir.resolve().parents:
        raise SystemExit("reevaluate: --out must be outside the sweep it re-evaluates (that sweep is only read)")
    specs = plan(old_dir, new_dir, list(overrides))
    with layout.SweepLock(new_dir):
        execute(specs, runner=run_and_keep_training_time)
    print(f"[reevaluate] {len(specs)} runs of {old} evaluated again into {new}: faceunlearn report {new}")
    return specs
