"""``faceunlearn sweep``: every method config × forget-set seed, from one Original model, resumable.

    faceunlearn sweep --configs configs/demo_*.yaml --seeds 0 1 2 \\
        --finetune-config configs/demo_finetune.yaml --out lightning_logs/sweep

* **Forget sets.** Seed K runs with ``--data.seed K`` (which draws forget set K, its train/test
  halves and the distractor sample) and ``--seed_everything K``.
* **The Original model.** With ``--finetune-config``, the Original is that config's
  ``last.ckpt`` (its ``checkpoint.dirpath``), trained first if missing (or resumed if a killed run
  left it unfinished), and every method run of the same scenario (``data.dataset``; unset:
  "synthetic") starts from it (``--model.init_args.init_weights``). Without it
  (``--finetune-config none``, the default), and for configs of other scenarios (e.g.
  ``disp_vggface2.yaml``, which starts from the Glint360K backbone), the configs' own
  ``model.init_args.init_weights`` must name an existing file, the same for every config of a
  scenario. Configs of the class ``FineTune`` (e.g. ``demo_finetune.yaml`` in
  ``configs/demo_*.yaml``) train an Original rather than unlearn: they are left out of the method runs.
* **Step 0 once per seed.** The Original is evaluated once per seed and scenario, with the data and
  evaluation settings of the scenario's first method config (a ``validate`` run, folder
  ``original/seed<K>``, or ``original_<scenario>/seed<K>`` outside the main protocol): the tables'
  Original row. The Originals (and Retrains) run first; a method run whose data, benchmarks and
  forward settings are the Original's (``same_start_evaluation``) then takes its step-0 numbers from
  the Original's ``retrieval_metrics.csv`` (``--evaluation.start_results``): at step 0 it embeds only
  what its forget benchmarks (and embedding snapshots) read, checks those numbers against the
  Original's, and copies the rest, so its curves and snapshots still start at the Original without
  embedding the retention benchmarks and distractors again. Its last evaluation is its result.
* **Resumable.** A run whose folder holds ``done.json`` is skipped (with a warning if it was made
  with other settings: the config file's content, the overrides or the start weights). A folder
  without ``done.json`` (a killed or crashed run) is moved aside to ``<run>.crashed-<timestamp>``
  and the run is redone from scratch; an Original whose evaluation settings changed goes to
  ``<run>.superseded-<timestamp>``. Nothing finished is ever overwritten. The folder layout is in
  ``faceunlearn.experiments.layout``.

``--override`` applies to every method run and to the Original's evaluations (e.g. a data path);
the sweep's own arguments (seed, start weights, output folders) come after it and win.

* **Retrain** (``--retrain``, needs ``--finetune-config``): per seed and scenario, a ``retrain/seed<K>``
  run trains the finetune config's recipe without forget set K (``faceunlearn.methods.Retrain``, its
  checkpoints in the run folder), with the Original's own ``seed_everything`` (the config's, as
  ``faceunlearn retrain`` does: the same initialisation and randomness, only D_f left out; forget set K
  is drawn by ``--data.seed K``), and then evaluates it like the Original, with the first method
  config's benchmarks; its ``done.json`` keeps the training time (``train_seconds``). ``report``
  shows it as the Retrain row and every method's gap to it.
* **Audit** (``--audit``): after the runs, ``faceunlearn audit`` of every finished method run
  (``<run>/audit/``: verification, identification, membership inference, recovery attacks, against
  the Original and, with ``--retrain``, the same seed's Retrain); ``report`` adds the audit table.
  A resumed sweep keeps the audits already written only if they used its relearning attacker (lr grid,
  steps, audit version): otherwise it stops before auditing, so that one table never mixes two attackers. The audits
  go through the runs' launcher (``--jobs`` processes, or the submitit array) in two waves: the first
  audit of each forget set (it audits the Original and Retrain), then the others, which copy those rows.
"""

from __future__ import annotations

import gc
import time
import warnings
from pathlib import Path

from faceunlearn.experiments import layout
from faceunlearn.io.tidy import tidy_rows, write_csv

from faceunlearn.experiments.plan import (  # noqa: F401 (the sweep's planning, re-exported)
    ARGS_WARNING,
    NONE_WORDS,
    SCENARIO_UNSET,
    START_RESULTS,
    ConfigInfo,
    RunResult,
    RunSpec,
    _expanded,
    config_sha256,
    describe_config,
    file_sha256,
    method_configs,
    own_original,
    plan_runs,
    retrain_spec,
    run_args,
)


def run_one(spec: RunSpec) -> RunResult:
    """Make one run in this process: ``fit`` a method, or ``validate`` the Original (Retrain: train it
    first), or audit a finished run (kind "audit"). Tests replace this."""
    if spec.kind == "audit":
        from faceunlearn.experiments.audit_waves import audit_one

        return audit_one(spec)
    import torch

    from faceunlearn.callbacks import RetrievalEvaluation
    from faceunlearn.cli import cli_main

    train_seconds, left_out = None, None
    if spec.kind == "retrain":
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=ARGS_WARNING)
            retrain = cli_main(spec.train_args, run=False)
        retrain.trainer.fit(retrain.model, retrain.datamodule)
        train_seconds = time.perf_counter() - start
        left_out = retrain.datamodule.forget_set
        del retrain
        gc.collect()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=ARGS_WARNING)
        cli = cli_main(spec.args, run=False)  # seeds everything with --seed_everything K
    trainer, model, data = cli.trainer, cli.model, cli.datamodule
    if left_out is not None:
        data.setup("validate")
        if not data.forget_set.same_people(left_out):
            raise SystemExit(f"{spec.name}: Retrain left out identities {left_out.state()['forget_identities']} but "
                             f"{spec.config} evaluates forget set {data.forget_set.state()['forget_identities']}: the "
                             "finetune config and the method configs must draw the same forget set "
                             "(data.num_forget_identities / forget_identities)")
    if spec.kind in ("original", "retrain"):
        trainer.validate(model, data)
    elif spec.kind == "reevaluate":
        trainer.validate(model, data, ckpt_path=spec.ckpt_path, weights_only=True)
    else:
        trainer.fit(model, data)
    history = RetrievalEvaluation.of(trainer).history
    if spec.kind == "method" and (not history or history[-1][0] != trainer.global_step):
        trainer.validate(model, data)  # training ended between evaluations: evaluate the final model
        history = RetrievalEvaluation.of(trainer).history
    if not history:
        raise RuntimeError(f"{spec.name}: no evaluation happened (rank 0 got no embeddings?)")
    result = RunResult(
        method={"original": "Original", "retrain": "Retrain"}.get(spec.kind, type(model).__name__),
        metrics=dict(history[-1][1]),
        info={
            "global_step": int(trainer.global_step),
            "evaluations": len(history),
            **(data.forget_set.state() if getattr(data, "forget_set", None) is not None else {"forget_identities": []}),
            **({"train_seconds": round(train_seconds, 3)} if train_seconds is not None else {}),
        },
    )
    del cli, trainer, model, data
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return result


def ensure_original(finetune_config: str, overrides: list[str]) -> Path:
    """The Original model's ``last.ckpt`` (an absolute path, however it was found: the runs record it and a
    resumed sweep compares it): trained with ``finetune_config`` if missing, resumed if unfinished."""
    info = describe_config(finetune_config, overrides)
    checkpoint = (Path(info.checkpoint_dirpath or "checkpoints") / "last.ckpt").resolve()
    resume = None
    if checkpoint.is_file():
        epoch = _checkpoint_epoch(checkpoint)
        if info.max_epochs is None or info.max_epochs < 0 or epoch is None or epoch + 1 >= info.max_epochs:
            print(f"[sweep] Original model: {checkpoint} (from {finetune_config})")
            return checkpoint
        print(f"[sweep] Original model: {checkpoint} stopped after epoch {epoch + 1} of {info.max_epochs}; resuming it")
        resume = checkpoint
    else:
        print(f"[sweep] Original model: training {checkpoint} with {finetune_config}")
    from faceunlearn.cli import cli_main

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=ARGS_WARNING)
        finetune = cli_main(["--config", finetune_config, *overrides], run=False)
    finetune.trainer.fit(finetune.model, finetune.datamodule, ckpt_path=resume, weights_only=True)
    checkpoint = (Path(finetune.trainer.checkpoint_callback.dirpath) / "last.ckpt").resolve()
    print(f"[sweep] Original model trained in {format_seconds(time.perf_counter() - start)}: {checkpoint}")
    del finetune
    gc.collect()
    return checkpoint


def _checkpoint_epoch(path: Path) -> int | None:
    import torch

    try:
        return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True).get("epoch"))
    except Exception:  # not a Lightning checkpoint (e.g. insightface weights): nothing to resume
        return None


# ---------------------------------------------------------------------------------- planning
def format_seconds(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def _differences(stored: dict, current: dict, kind: str = "method") -> list[str]:
    names = {"config_sha256": "config file content", "overrides": "overrides", "init_weights": "start weights path",
             "init_weights_sha256": "start weights content", "config": "config path",
             "start_evaluation_sha256": "evaluation settings"}
    ignored = set()
    if kind == "original" and stored.get("start_evaluation_sha256") is not None:
        # an Original is only an evaluation: made with another config of the scenario that evaluates alike, it stands
        ignored = {"config", "config_sha256"}
    return [names.get(key, key) for key in current if key in stored and key not in ignored and stored.get(key) != current[key]]


def execute(specs: list[RunSpec], runner=None, launcher=None) -> list[RunSpec]:
    """Make every unfinished run of ``specs`` and return all of them.

    ``launcher`` (``faceunlearn.experiments.launch``: each run in its own process, N at once, or a
    submitit job array) runs them; without one, ``runner`` runs them here one after another (default
    ``run_one``, looked up at call time so tests can replace it). Either way a run's folder is new and
    empty when it starts, its ``done.json`` is written only after it succeeded, and the first failure
    stops the sweep: nothing new starts, runs already going end and are kept, the error is raised
    (the failed run's folder is moved aside and redone by the next sweep).
    """
    todo, stale = [], set()
    for spec in specs:
        if layout.is_finished(spec.run_dir):
            stored = layout.read_done(spec.run_dir).get("settings", {})
            changed = _differences(stored, spec.settings, spec.kind)
            if changed and spec.kind == "original":
                # every method run reads the Original's step-0 numbers: one made with other settings (e.g. before
                # the protocol gained a benchmark) would fail them or mislead; it is only an evaluation, redo it
                print(f"[sweep] {spec.name}: made with a different {', '.join(changed)}; evaluated again")
                todo.append(spec)
                stale.add(spec.run_dir)
                continue
            note = f" — warning: it was made with a different {', '.join(changed)}; kept (move the folder away to redo it)" if changed else ""
            print(f"[sweep] skip {spec.name}: finished{note}")
        else:
            todo.append(spec)
    print(f"[sweep] {len(specs)} runs: {len(specs) - len(todo)} finished, {len(todo)} to run")
    for index, spec in enumerate(todo, start=1):
        if spec.run_dir.exists():
            moved = layout.move_aside(spec.run_dir, layout.SUPERSEDED if spec.run_dir in stale else layout.CRASHED)
            why = "made with other settings" if spec.run_dir in stale else "unfinished folder from an earlier sweep"
            print(f"[sweep] {spec.name}: {why}, moved aside to {moved}; redoing the run")
        spec.run_dir.mkdir(parents=True)
    start, durations = time.perf_counter(), []

    def in_this_process(batch):
        for index, spec in enumerate(batch, start=1):
            _announce(index, len(batch), spec)
            run_start = time.perf_counter()
            try:
                outcome = (runner or run_one)(spec)
            except BaseException as error:  # noqa: BLE001 - re-raised below, after the message
                outcome = error
            yield spec, outcome, time.perf_counter() - run_start
            if isinstance(outcome, BaseException):
                return  # here, the first failure stops the sweep

    def waves():
        """The Originals (and Retrains) first, then the method runs, which read their Original's step-0
        numbers (``--evaluation.start_results``); a failure in the first wave starts no method run."""
        for wave in ([spec for spec in todo if spec.kind != "method"], [spec for spec in todo if spec.kind == "method"]):
            if wave and failure is None:
                yield from (launcher or in_this_process)(wave)

    failure, reported = None, set()
    for spec, result, seconds in waves():
        reported.add(spec.name)
        if isinstance(result, BaseException):
            print(f"[sweep] run {spec.name} failed; the next sweep moves its folder aside and redoes it", flush=True)
            failure = failure or result
            continue
        finish(spec, result, seconds)
        durations.append(seconds)
        index = len(durations)
        left = len(todo) - index
        eta = (time.perf_counter() - start) / index * left  # wall clock: right with N runs at once too
        print(f"[sweep] run {index}/{len(todo)} done ({spec.name}, {format_seconds(seconds)}), {left} left, "
              f"elapsed {format_seconds(time.perf_counter() - start)}, ETA {format_seconds(eta)}", flush=True)
    for spec in todo:  # runs a failure kept from starting leave no folder behind
        if spec.name not in reported and spec.run_dir.is_dir() and not any(spec.run_dir.iterdir()):
            spec.run_dir.rmdir()
    if failure is not None:
        raise failure
    return specs


def _announce(index: int, total: int, spec: RunSpec) -> None:
    what = {"original": "evaluating the Original", "retrain": "training Retrain without the forget set, then evaluating it",
            "reevaluate": f"evaluating {spec.ckpt_path} again"}.get(
        spec.kind, f"unlearning with {spec.config}")
    print(f"[sweep] run {index}/{total}: {spec.name} ({what}, forget set {spec.seed})", flush=True)


def finish(spec: RunSpec, result: RunResult, seconds: float) -> None:
    """results.csv, then done.json — both atomic, done.json last."""
    write_csv(tidy_rows(result.method, spec.seed, result.metrics, table_metrics=None),
                                spec.run_dir / layout.RESULTS)
    layout.write_json_atomic(spec.run_dir / layout.DONE, {
        "config": spec.config,
        "method": result.method,
        "seed": spec.seed,
        "scenario": spec.scenario,
        "seconds": round(seconds, 3),
        "finished_at": layout.now_iso(),
        "kind": spec.kind,
        "init_weights": spec.init_weights,
        "settings": spec.settings,
        **result.info,
    })


def sweep(configs: list[str], seeds: list[int], out: str, finetune_config: str | None = None,
          overrides: list[str] = (), finetune_overrides: list[str] = (), launcher=None, retrain: bool = False,
          audit: bool = False, relearn_lrs: list[float] | None = None) -> list[RunSpec]:
    """Plan and make the sweep; returns every run (finished before or now) in order.

    ``launcher``: where the runs execute (``faceunlearn.experiments.launch``; the command passes one
    process per run); None runs them in this process. ``retrain``: a Retrain run per seed (needs
    ``finetune_config``: Retrain is its recipe without the forget set)."""
    overrides, finetune_overrides = list(overrides), list(finetune_overrides)
    if finetune_config is not None and finetune_config.lower() in NONE_WORDS:
        finetune_config = None
    if finetune_config is not None and not Path(finetune_config).is_file():
        raise SystemExit(f"finetune config {finetune_config!r} not found (run from the repository root)")
    if len(set(seeds)) != len(seeds):
        raise SystemExit(f"--seeds has repeats: {seeds}")
    if retrain and not finetune_config:
        raise SystemExit("--retrain needs --finetune-config: Retrain is the Original's recipe without the forget set")
    infos = method_configs(configs, overrides, finetune_config)
    originals = {}
    if finetune_config:
        scenario = describe_config(finetune_config, finetune_overrides).scenario
        if scenario not in {info.scenario for info in infos}:
            raise SystemExit(f"the finetune config {finetune_config} trains on scenario {scenario!r}, but no method config "
                             f"has it (theirs: {', '.join(sorted({info.scenario for info in infos}))})")
    out_dir = Path(out)
    with layout.SweepLock(out_dir):
        if finetune_config:
            originals[scenario] = str(ensure_original(finetune_config, finetune_overrides))
        specs = plan_runs(infos, list(seeds), out_dir, overrides, originals,
                          (finetune_config, finetune_overrides) if retrain else None)
        execute(specs, launcher=launcher)
        if audit:
            from faceunlearn.experiments.audit_waves import audit_runs

            audit_runs(specs, relearn_lrs=relearn_lrs, launcher=launcher)
    print(f"[sweep] all {len(specs)} runs finished in {out_dir}; tables: faceunlearn report {out_dir}")
    return specs
