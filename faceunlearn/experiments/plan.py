"""What a sweep runs: each method config described (``describe_config``), every run of configs × forget-set seeds
planned as a ``RunSpec`` (the Originals' step-0 evaluations, Retrains, method runs), with the LightningCLI arguments
and the settings a finished run is checked against. ``faceunlearn.experiments.sweep`` executes them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from faceunlearn.experiments import layout
from faceunlearn.io.tidy import RESULTS_CSV

#: the class path a FineTune config's model becomes for Retrain (``faceunlearn retrain``, ``sweep --retrain``)
RETRAIN_CLASS = "faceunlearn.methods.Retrain"
SCENARIO_UNSET = "synthetic"
#: LightningCLI warns when given args while sys.argv also has some: the sweep's own command line, expected here
ARGS_WARNING = "LightningCLI's args parameter is intended"
NONE_WORDS = ("", "none", "null")
#: overrides that change what a run shows, never what it computes: a run made without them is not redone
DISPLAY_OVERRIDES = ("--trainer.enable_progress_bar", "--trainer.enable_model_summary")


def outcome_overrides(overrides: list[str]) -> list[str]:
    """``overrides`` without ``DISPLAY_OVERRIDES`` (and their values): what a run's settings record and compare."""
    kept, skip = [], False
    for word in overrides:
        name = word.split("=", 1)[0]
        if skip:
            skip = False
        elif name in DISPLAY_OVERRIDES:
            skip = "=" not in word
        else:
            kept.append(word)
    return kept


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
    from faceunlearn.cli import parse_config

    cli = parse_config(config, overrides)
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
    from faceunlearn.io.paths import file_sha256 as sha256

    return sha256(path)


def config_sha256(path: str | os.PathLike) -> str | None:
    """SHA-256 of a config and of every file it composes (its protocol include, group files), in order.

    A protocol file shared by several configs is part of what a run was made with: editing it must
    show as a changed config, as editing the config itself does.
    """
    import hashlib

    from faceunlearn.cli import ConfigError, composed_files

    path = Path(path)
    if not path.is_file():
        return None
    digest = hashlib.sha256(path.read_bytes())
    try:
        files = [other for other in composed_files(str(path.resolve()), path.stat().st_mtime_ns) if other.resolve() != path.resolve()]
    except ConfigError:  # a config the parser refuses: its own bytes still identify it
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
    from faceunlearn.cli import same_start_evaluation, start_evaluation_sha256

    originals = originals or {}
    original_runs = out if original_runs is None else Path(original_runs)
    by_scenario: dict[str, list[ConfigInfo]] = {}
    for info in configs:
        by_scenario.setdefault(info.scenario, []).append(info)
    start_weights = {scenario: originals.get(scenario) or own_original(scenario, infos) for scenario, infos in by_scenario.items()}
    weights_sha = {w: file_sha256(_expanded(w)) for w in set(start_weights.values())}

    def settings(config: str, weights: str | None) -> dict:
        # start_evaluation_sha256: an Original made with another config of its scenario that evaluates alike is kept
        return {"config": config, "config_sha256": config_sha256(config), "overrides": outcome_overrides(overrides),
                "init_weights": weights, "init_weights_sha256": weights_sha.get(weights),
                "start_evaluation_sha256": start_evaluation_sha256(config)}

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
