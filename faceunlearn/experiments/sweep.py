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
  and the run is redone from scratch. Nothing finished is ever overwritten. The folder layout is in
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

import dataclasses
import gc
import json
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from faceunlearn.configs import same_start_evaluation
from faceunlearn.experiments import layout
from faceunlearn.reporting import RESULTS_CSV, tidy_rows, write_csv

SCENARIO_UNSET = "synthetic"
#: LightningCLI warns when given args while sys.argv also has some: the sweep's own command line, expected here
ARGS_WARNING = "LightningCLI's args parameter is intended"
NONE_WORDS = ("", "none", "null")


# ---------------------------------------------------------------------------------- configs
@dataclass(frozen=True)
class ConfigInfo:
    """What the sweep needs to know of a config (parsed with its overrides, nothing instantiated)."""

    path: str
    stem: str
    method: str  # model class name
    scenario: str
    init_weights: str | None
    seed: int
    checkpoint_dirpath: str | None
    max_epochs: int | None


def describe_config(config: str, overrides: list[str] = ()) -> ConfigInfo:
    """Parse ``config`` + ``overrides`` with the LightningCLI parser, without building anything."""
    from faceunlearn.cli import TRAINER_DEFAULTS, FaceUnlearnCLI
    from faceunlearn.data import FaceDataModule
    from faceunlearn.methods import FaceModule

    class ParseOnly(FaceUnlearnCLI):
        def _set_seed(self) -> None:
            pass

        def instantiate_classes(self) -> None:
            pass

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=ARGS_WARNING)
        cli = ParseOnly(FaceModule, FaceDataModule, subclass_mode_model=True, trainer_defaults=TRAINER_DEFAULTS,
                        args=["--config", config, *overrides], run=False)
    parsed = cli.config
    model_args = parsed.model.get("init_args") or {}
    return ConfigInfo(
        path=config,
        stem=Path(config).stem,
        method=str(parsed.model.class_path).rsplit(".", 1)[-1],
        scenario=parsed.data.dataset or SCENARIO_UNSET,
        init_weights=model_args.get("init_weights"),
        seed=int(parsed.data.seed),
        checkpoint_dirpath=parsed.checkpoint.dirpath,
        max_epochs=parsed.trainer.max_epochs,
    )


def file_sha256(path: str | os.PathLike | None) -> str | None:
    """The file's SHA-256, or None for no path or a missing file."""
    if not path or not Path(path).is_file():
        return None
    from faceunlearn.paths import file_sha256 as sha256

    return sha256(path)


def config_sha256(path: str | os.PathLike) -> str | None:
    """SHA-256 of a config and of every file it composes (its protocol include, group files), in order.

    A protocol file shared by several configs is part of what a run was made with: editing it must
    show as a changed config, as editing the config itself does.
    """
    import hashlib

    from faceunlearn.configs import ConfigFileError, read_config

    path = Path(path)
    if not path.is_file():
        return None
    digest = hashlib.sha256(path.read_bytes())
    try:
        files = read_config(path).files[1:]
    except ConfigFileError:  # a broken include or group file: the config's own bytes still identify it
        files = []
    for other in files:
        digest.update(f"\n{os.path.relpath(other, path.parent)}\n".encode())
        digest.update(other.read_bytes())
    return digest.hexdigest()


# ---------------------------------------------------------------------------------- runs
@dataclass
class RunSpec:
    """One run of the sweep: a method run (``fit``), the Original's evaluation or a re-evaluation (``validate``)."""

    kind: str  # "method" | "original" | "retrain" | "reevaluate" | "audit"
    config: str
    stem: str
    seed: int
    scenario: str
    run_dir: Path
    args: list[str]  # LightningCLI arguments (no subcommand)
    init_weights: str | None
    settings: dict = field(default_factory=dict)
    #: kind "reevaluate": the finished run's checkpoint, evaluated (``validate``) with the current benchmarks
    ckpt_path: str | None = None
    #: kind "retrain": the ``fit`` arguments that train the Retrain model (``args`` then evaluate it)
    train_args: list[str] | None = None
    #: kind "audit": ``faceunlearn audit`` of the finished method run (``checkpoint``, ``folder``, ``retrain``,
    #: ``references``, ``relearn_lrs``; ``args`` are the run's own), through the same launchers as the runs
    audit: dict | None = None

    @property
    def name(self) -> str:
        return f"{self.stem}/seed{self.seed}" + (" (audit)" if self.kind == "audit" else "")


@dataclass
class RunResult:
    method: str
    metrics: dict[str, float]  # "<benchmark>/<metric>" -> value (fractions), the final evaluation
    info: dict = field(default_factory=dict)  # extra done.json fields


def run_args(config: str, seed: int, run_dir: Path, overrides: list[str], init_weights: str | None) -> list[str]:
    """LightningCLI arguments of one run: config, user overrides, then the sweep's own settings."""
    args = ["--config", config, *overrides, "--seed_everything", str(seed), "--data.seed", str(seed)]
    if init_weights is not None:
        args += ["--model.init_args.init_weights", str(init_weights)]
    return args + [
        "--trainer.logger.init_args.save_dir", str(run_dir),
        "--trainer.logger.init_args.name", "",
        "--trainer.logger.init_args.version", "",
        "--checkpoint.dirpath", str(run_dir / layout.CHECKPOINTS),
    ]


def run_one(spec: RunSpec) -> RunResult:
    """Make one run in this process: ``fit`` a method, or ``validate`` the Original (Retrain: train it
    first), or audit a finished run (kind "audit"). Tests replace this."""
    if spec.kind == "audit":
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
        left_out = sorted(int(i) for i in retrain.datamodule.forget_identity_ids)
        del retrain
        gc.collect()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=ARGS_WARNING)
        cli = cli_main(spec.args, run=False)  # seeds everything with --seed_everything K
    trainer, model, data = cli.trainer, cli.model, cli.datamodule
    if left_out is not None:
        data.setup("validate")
        evaluated = sorted(int(i) for i in data.forget_identity_ids)
        if evaluated != left_out:
            raise SystemExit(f"{spec.name}: Retrain left out identities {left_out} but {spec.config} evaluates forget set "
                             f"{evaluated}: the finetune config and the method configs must draw the same forget set "
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
            "forget_identities": [int(i) for i in getattr(data, "forget_identity_ids", [])],
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
def plan_runs(configs: list[ConfigInfo], seeds: list[int], out: Path, overrides: list[str],
              originals: dict[str, str] | None = None, retrain: tuple[str, list[str]] | None = None,
              original_runs: Path | None = None) -> list[RunSpec]:
    """Seed-major: for each seed, each scenario's Original evaluation (and Retrain run), then every method config.

    ``originals`` maps a scenario to the Original checkpoint its method runs are forced to start
    from (the finetune config's); a scenario not in it starts from its configs' own init_weights.
    ``retrain`` = (finetune config, its overrides): a Retrain run per seed for the scenarios in ``originals``.
    ``original_runs``: the folder whose Original runs the method runs take their step 0 from (default ``out``;
    ``faceunlearn tune`` evaluates the Original once in ``OUT/originals`` for all its trials).
    """
    originals = originals or {}
    original_runs = out if original_runs is None else Path(original_runs)
    by_scenario: dict[str, list[ConfigInfo]] = {}
    for info in configs:
        by_scenario.setdefault(info.scenario, []).append(info)
    start_weights = {scenario: originals.get(scenario) or own_original(scenario, infos) for scenario, infos in by_scenario.items()}
    weights_sha = {w: file_sha256(_expanded(w)) for w in set(start_weights.values())}

    def settings(config: str, weights: str | None) -> dict:
        return {"config": config, "config_sha256": config_sha256(config), "overrides": list(overrides),
                "init_weights": weights, "init_weights_sha256": weights_sha.get(weights)}

    specs = []
    for seed in seeds:
        for scenario, infos in by_scenario.items():
            weights, first = start_weights[scenario], infos[0]
            stem = layout.original_stem(scenario)
            directory = layout.run_dir(out, stem, seed)
            specs.append(RunSpec("original", first.path, stem, seed, scenario, directory,
                                 run_args(first.path, seed, directory, overrides, weights),
                                 weights, settings(first.path, weights)))
            if retrain is not None and scenario in originals:
                specs.append(retrain_spec(retrain, first.path, scenario, seed, out, overrides, settings(first.path, weights)))
        for info in configs:
            weights = start_weights[info.scenario]
            directory = layout.run_dir(out, info.stem, seed)
            forced = originals.get(info.scenario)  # None: the config's own init_weights (= weights, checked)
            args = run_args(info.path, seed, directory, overrides, forced)
            first = by_scenario[info.scenario][0]
            if same_start_evaluation(info.path, first.path):  # its step 0 is the Original's evaluation: reuse it
                original_dir = layout.run_dir(original_runs, layout.original_stem(info.scenario), seed)
                args += ["--evaluation.start_results", str(original_dir / START_RESULTS)]
            specs.append(RunSpec("method", info.path, info.stem, seed, info.scenario, directory, args,
                                 weights, settings(info.path, weights)))
    return specs


#: the Original's metrics file in its run folder (``RetrievalEvaluation``'s ``validate`` CSV)
START_RESULTS = RESULTS_CSV


def retrain_spec(retrain: tuple[str, list[str]], eval_config: str, scenario: str, seed: int, out: Path,
                 overrides: list[str], settings: dict) -> RunSpec:
    """Retrain on forget set ``seed``: fit the finetune recipe with ``Retrain`` into the run folder, then
    evaluate its last.ckpt with ``eval_config`` (the Original's evaluation, other start weights)."""
    from faceunlearn.commands.retrain import RETRAIN_CLASS

    finetune_config, finetune_overrides = retrain
    directory = layout.run_dir(out, layout.retrain_stem(scenario), seed)
    checkpoint = directory / layout.CHECKPOINTS / "last.ckpt"
    train_args = ["--config", finetune_config, *finetune_overrides, "--model.class_path", RETRAIN_CLASS,
                  "--data.seed", str(seed),  # its seed_everything is the Original's (the config's): same initialisation
                  "--trainer.logger.init_args.save_dir", str(directory / "retrain_fit"),
                  "--trainer.logger.init_args.name", "", "--trainer.logger.init_args.version", "",
                  "--checkpoint.dirpath", str(directory / layout.CHECKPOINTS)]
    settings = {**settings, "retrain_config": finetune_config, "retrain_config_sha256": config_sha256(finetune_config),
                "retrain_overrides": list(finetune_overrides), "retrain_seed": "the Original's"}
    return RunSpec("retrain", eval_config, layout.retrain_stem(scenario), seed, scenario, directory,
                   run_args(eval_config, seed, directory, overrides, str(checkpoint)), str(checkpoint), settings,
                   train_args=train_args)


def own_original(scenario: str, infos: list[ConfigInfo]) -> str:
    """The init_weights all of a scenario's configs name: it must be one existing file."""
    named = {info.init_weights for info in infos}
    if len(named) > 1:
        listing = ", ".join(f"{info.path}: {info.init_weights}" for info in infos)
        raise SystemExit(f"configs of scenario {scenario!r} start from different weights ({listing}); "
                         "the Original must be one model: pass --finetune-config or --override "
                         "'--model.init_args.init_weights PATH'")
    weights = infos[0].init_weights
    if not weights:
        raise SystemExit(f"{infos[0].path} sets no model.init_args.init_weights, so there is no Original model "
                         "to unlearn from: pass --finetune-config CONFIG to train one")
    from faceunlearn.models.weights import resolve_weights_path

    try:
        exists = resolve_weights_path(weights).is_file()
    except (ValueError, RuntimeError) as error:  # an unset $VAR, a missing extra for an alias
        raise SystemExit(f"{infos[0].path}: {error}") from None
    if not exists:
        raise SystemExit(f"the Original model {weights!r} (model.init_args.init_weights of {infos[0].path}) does not "
                         "exist: train it first, or pass --finetune-config CONFIG to train it in the sweep")
    return weights


def _expanded(weights: str | None) -> str | None:
    if not weights:
        return None
    from faceunlearn.models.weights import resolve_weights_path

    try:
        return str(resolve_weights_path(weights))
    except (ValueError, RuntimeError):
        return None


def method_configs(configs: list[str], overrides: list[str], finetune_config: str | None) -> list[ConfigInfo]:
    """The configs' descriptions, without the finetune config and FineTune configs; stems must be unique."""
    infos, seen = [], {}
    for config in configs:
        if not Path(config).is_file():
            raise SystemExit(f"config {config!r} not found (run from the repository root)")
        if finetune_config and Path(config).resolve() == Path(finetune_config).resolve():
            print(f"[sweep] {config}: the finetune config (the Original model), not a method run")
            continue
        info = describe_config(config, overrides)
        if info.method == "FineTune":
            print(f"[sweep] {config}: a FineTune config trains an Original model, not an unlearning method; left out "
                  "(pass it as --finetune-config to train the Original with it)")
            continue
        for reserved in (layout.ORIGINAL, layout.RETRAIN):
            if info.stem == reserved or info.stem.startswith(reserved + "_"):
                raise SystemExit(f"{config}: config names {reserved!r} and {reserved + '_*'!r} are reserved for the sweep's own runs")
        if info.stem in seen:
            raise SystemExit(f"{config} and {seen[info.stem]} have the same name {info.stem!r}: run folders are named by config")
        seen[info.stem] = config
        infos.append(info)
    if not infos:
        raise SystemExit("no unlearning config to run")
    return infos


# ---------------------------------------------------------------------------------- running
def format_seconds(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def _differences(stored: dict, current: dict) -> list[str]:
    names = {"config_sha256": "config file content", "overrides": "overrides", "init_weights": "start weights path",
             "init_weights_sha256": "start weights content", "config": "config path"}
    return [names.get(key, key) for key in current if key in stored and stored.get(key) != current[key]]


def execute(specs: list[RunSpec], runner=None, launcher=None) -> list[RunSpec]:
    """Make every unfinished run of ``specs`` and return all of them.

    ``launcher`` (``faceunlearn.experiments.launch``: each run in its own process, N at once, or a
    submitit job array) runs them; without one, ``runner`` runs them here one after another (default
    ``run_one``, looked up at call time so tests can replace it). Either way a run's folder is new and
    empty when it starts, its ``done.json`` is written only after it succeeded, and the first failure
    stops the sweep: nothing new starts, runs already going end and are kept, the error is raised
    (the failed run's folder is moved aside and redone by the next sweep).
    """
    todo = []
    for spec in specs:
        if layout.is_finished(spec.run_dir):
            stored = layout.read_done(spec.run_dir).get("settings", {})
            changed = _differences(stored, spec.settings)
            if changed and spec.kind == "original":
                # every method run reads the Original's step-0 numbers: one made with other settings (e.g. before
                # the protocol gained a benchmark) would fail them or mislead; it is only an evaluation, redo it
                print(f"[sweep] {spec.name}: made with a different {', '.join(changed)}; evaluated again")
                todo.append(spec)
                continue
            note = f" — warning: it was made with a different {', '.join(changed)}; kept (move the folder away to redo it)" if changed else ""
            print(f"[sweep] skip {spec.name}: finished{note}")
        else:
            todo.append(spec)
    print(f"[sweep] {len(specs)} runs: {len(specs) - len(todo)} finished, {len(todo)} to run")
    for index, spec in enumerate(todo, start=1):
        if spec.run_dir.exists():
            moved = layout.move_aside(spec.run_dir)
            print(f"[sweep] {spec.name}: unfinished folder from an earlier sweep moved aside to {moved}; redoing the run")
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


def check_attacker(audited: list[RunSpec], attacker: dict) -> None:
    """Stop (one line) if an audit already written in these runs used another relearning attacker than
    ``attacker`` (its ``audit.json`` settings), or has no ``audit.json`` to tell."""
    from faceunlearn.audit import AUDIT_JSON

    for spec in audited:
        settings_file = spec.run_dir / layout.AUDIT / AUDIT_JSON
        try:
            theirs = json.loads(settings_file.read_text())
        except (OSError, ValueError) as error:
            raise SystemExit(f"the audit of {spec.name} has no readable {settings_file} ({error}), so its relearning "
                             f"attacker is unknown: delete {settings_file.parent} to audit that run again")
        differ = [f"{key} {theirs.get(key)!r}, not {value!r}" for key, value in attacker.items() if theirs.get(key) != value]
        if differ:
            raise SystemExit(f"the audit of {spec.name} used another relearning attacker ({'; '.join(differ)}): "
                             f"pass its settings (--relearn-lrs), or delete the sweep's audit/ folders to audit again")


def audit_one(spec: RunSpec, audit=None) -> RunResult:
    """``faceunlearn audit`` of one finished run, as an audit RunSpec describes it (``audit_specs``)."""
    if audit is None:
        from faceunlearn.audit import audit
    job = spec.audit
    attacker = {} if job["relearn_lrs"] is None else {"relearn_lrs": tuple(job["relearn_lrs"])}
    if job.get("relearn_steps") is not None:  # the audit's RELEARN_STEPS unless given (tests: fewer)
        attacker["relearn_steps"] = tuple(job["relearn_steps"])
    rows = audit(spec.config, job["checkpoint"], Path(job["folder"]), job["retrain"], audit_overrides(spec.args[2:]),
                 references=job["references"], **attacker)
    return RunResult("audit", {}, {"rows": len(rows) if rows is not None else 0})


def audit_overrides(args: list[str]) -> list[str]:
    """A run's arguments as its audit needs them: without ``--evaluation.start_results`` (the run's step-0 numbers,
    which the audit never reads, and which no longer parse once the protocol's benchmarks changed after the run)."""
    kept, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--evaluation.start_results":
            skip = True
        elif not arg.startswith("--evaluation.start_results="):
            kept.append(arg)
    return kept


def audit_specs(specs: list[RunSpec], relearn_lrs: list[float] | None = None) -> list[list[RunSpec]]:
    """The audits still to make, as two waves of audit RunSpecs: first the first audit of each forget set
    (scenario, seed, start weights) that has none yet, which audits the Original and Retrain; then every
    other one, which copies those rows from its forget set's first audit when their step 0 is the same."""
    retrain = {(spec.scenario, spec.seed): spec.run_dir / layout.CHECKPOINTS / "last.ckpt"
               for spec in specs if spec.kind == "retrain" and layout.is_finished(spec.run_dir)}
    first: dict[tuple, tuple[str, Path]] = {}  # (scenario, seed, start weights) → the first audited config, its folder
    todo = []
    for spec in specs:
        folder = spec.run_dir / layout.AUDIT
        if spec.kind != "method" or not layout.is_finished(spec.run_dir):
            continue
        group = (spec.scenario, spec.seed, spec.init_weights)
        if (folder / "audit.csv").is_file():
            first.setdefault(group, (spec.config, folder))
        else:
            todo.append((group, spec, folder))
    waves: list[list[RunSpec]] = [[], []]
    for group, spec, folder in todo:
        wave, references = 1, None
        if group not in first:
            first[group], wave = (spec.config, folder), 0
        elif same_start_evaluation(spec.config, first[group][0]):
            references = str(first[group][1])
        reference = retrain.get((spec.scenario, spec.seed))
        job = {"checkpoint": str(spec.run_dir / layout.CHECKPOINTS / "last.ckpt"), "folder": str(folder),
               "retrain": str(reference) if reference else None, "references": references, "relearn_lrs": relearn_lrs}
        waves[wave].append(dataclasses.replace(spec, kind="audit", audit=job))
    return waves


def audit_runs(specs: list[RunSpec], audit=None, relearn_lrs: list[float] | None = None, launcher=None) -> list[Path]:
    """``faceunlearn audit`` of every finished method run without ``<run>/audit/audit.csv`` (with the
    same seed's Retrain when the sweep has one); returns the audit folders written, in the runs' order.
    The first audit of a forget set audits the Original and Retrain; later ones whose step 0 is the same
    copy them from it. ``launcher`` (``faceunlearn.experiments.launch``, as for the runs): the audits of
    each wave run in parallel there (the first wave, then the rest); None: here, one after another.
    ``relearn_lrs``: the relearning attacker's lr grid (default: the audit's ``RELEARN_LRS``)."""
    from faceunlearn.audit import AUDIT_VERSION, RELEARN_LRS, RELEARN_STEPS

    grid = sorted(float(lr) for lr in (RELEARN_LRS if relearn_lrs is None else relearn_lrs))
    check_attacker([spec for spec in specs if spec.kind == "method" and (spec.run_dir / layout.AUDIT / "audit.csv").is_file()],
                   {"audit_version": AUDIT_VERSION, "relearn_lrs": grid, "relearn_steps": list(RELEARN_STEPS)})
    waves = audit_specs(specs, relearn_lrs)
    written = []
    for wave in waves:
        if not wave:
            continue
        for job in wave:
            against = job.audit["retrain"]
            print(f"[sweep] auditing {job.name}" + (f" against {against}" if against else " (no Retrain run: Original only)"),
                  flush=True)
        outcomes = launcher(wave) if launcher is not None else ((job, _audit_here(job, audit), 0.0) for job in wave)
        failures = []
        for job, outcome, _ in outcomes:
            if isinstance(outcome, BaseException):
                failures.append((job, outcome))
                if launcher is None:
                    break  # here, the first failure stops the audits
            else:
                written.append(Path(job.audit["folder"]))
        if failures:
            job, error = failures[0]
            raise RuntimeError(f"the audit of {job.name} failed: {error}") from error
    order = {spec.run_dir / layout.AUDIT: index for index, spec in enumerate(specs)}
    return sorted(written, key=lambda folder: order.get(folder, len(order)))


def _audit_here(job: RunSpec, audit) -> RunResult | BaseException:
    try:
        return audit_one(job, audit)
    except Exception as error:  # noqa: BLE001 - raised by audit_runs, with the audit's name
        return error


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
            audit_runs(specs, relearn_lrs=relearn_lrs, launcher=launcher)
    print(f"[sweep] all {len(specs)} runs finished in {out_dir}; tables: faceunlearn report {out_dir}")
    return specs
