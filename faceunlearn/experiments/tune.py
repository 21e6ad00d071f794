"""``faceunlearn tune``: choose a method's settings with Optuna on validation forget sets only.

    faceunlearn tune --config configs/sface_glint_disp.yaml --seeds 100 101 102 --trials 12 \\
        --param model.init_args.lr=loguniform:1e-5:1e-2 --param data.batches_per_epoch=int:25:100 \\
        --retention celebrities orl --out lightning_logs/tune_disp --storage sqlite:///lightning_logs/tune_disp/study.db

* **Validation only.** ``--seeds`` are validation forget sets: the reported seeds 0, 1, 2 are refused.
  Each trial fits the config with the trial's values on every validation seed (the sweep's run
  machinery: ``OUT/trial_<n>/<config stem>/seed<K>/``, resumable); the Original is evaluated once
  per seed (``OUT/originals/``) and shared by every trial and process.
* **Several objectives, declared before the runs** (Optuna multi-objective: ``directions``, constraints by
  ``trial.set_constraint``, ``study.best_trials``). ``--objectives`` names what the study optimises (``OBJECTIVES``:
  forget mAP / R@1, their distance to chance, validation retention mAP and TAR@FAR=1e-3, forget mAP after the
  strongest relearning attack); ``--constraint NAME<=VALUE`` / ``NAME>=VALUE`` bounds any of them (``VALUE``
  absolute, ``0.5x`` = 0.5 × the Original's, ``-0.01d`` = the Original's − 0.01); ``--pick NAME`` is the pick
  rule: among the feasible trials on the Pareto front, the best by NAME (no feasible trial: the front trial
  with the least total violation, said so). Defaults (the earlier single score's rule): objectives
  ``forget_mAP retention_mAP``, constraint ``forget_mAP<=0.5x`` (``--forget-ratio``), pick ``retention_mAP``.
* **Search space**: ``--param KEY=SPEC`` with ``KEY`` a LightningCLI argument (``model.init_args.lr``)
  and ``SPEC`` one of ``loguniform:LOW:HIGH``, ``uniform:LOW:HIGH``, ``int:LOW:HIGH``,
  ``choice:A,B,...`` (values parsed as YAML; ``choice:[]|[a, b]`` separates choices that hold commas,
  e.g. the trainable layers ``model.init_args.freeze``).
* **Many processes or machines** share one study through Optuna's RDB storage (``--storage``,
  e.g. ``sqlite:///…/study.db`` on a shared disk, or a PostgreSQL URL): start the same command in
  each; Optuna hands out the trials (``load_if_exists``). The sampler is Optuna's TPE, seeded
  (``--sampler-seed``), or with ``--sampler grid`` its grid over every combination of ``choice``
  params (each tried once, also across processes: a point another trial runs is not repeated; ``--trials``
  beyond the grid's size stop when it is done).
* **Outputs**, written atomically after every trial: ``OUT/trials.csv`` (every finished trial: its
  values, every measure and objective per seed and mean, ``feasible``, ``pareto``, ``chosen``),
  ``OUT/best.yaml``: the config with the picked trial's values written in, its header naming the study,
  the seeds, the objectives, constraints and pick rule and every value tried; ``OUT/pareto.png`` (Optuna's
  ``plot_pareto_front``, 2 or 3 objectives); ``OUT/study.json``: the config, method, seeds, retention
  benchmarks, objectives, constraints, the chosen trial and the Original's validation scores (``faceunlearn
  report --tune`` draws the trade-off curves from these files). ``--trials 0`` rewrites them from the storage
  without running a trial.
"""

from __future__ import annotations

import csv
import functools
import io
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import yaml
from filelock import FileLock

from faceunlearn.experiments import layout
from faceunlearn.experiments.sweep import execute, method_configs, plan_runs
from faceunlearn.experiments.objectives import (  # noqa: F401 (re-exported: tune's public names)
    DEFAULT_OBJECTIVES,
    OBJECTIVES,
    Constraint,
    Declared,
    mean_measures,
    measures,
    parse_constraint,
    pick,
)

#: the forget sets reported in the results tables; never tuned on
REPORTED_SEEDS = (0, 1, 2)
DISTRIBUTIONS = ("loguniform", "uniform", "int", "choice")
#: the study's description beside trials.csv: config, method, seeds, retention benchmarks, the Original's scores
STUDY = "study.json"


@dataclass(frozen=True)
class Param:
    key: str  # LightningCLI argument without the leading dashes, e.g. model.init_args.lr
    kind: str
    low: float | None = None
    high: float | None = None
    choices: tuple = ()

    def suggest(self, trial):
        if self.kind == "loguniform":
            return trial.suggest_float(self.key, self.low, self.high, log=True)
        if self.kind == "uniform":
            return trial.suggest_float(self.key, self.low, self.high)
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high))
        return trial.suggest_categorical(self.key, list(self.choices))


def _number_or(value):
    """``1e-3`` is a string to YAML 1.1 (no dot); a choice of it means the number."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    return value


def parse_param(text: str) -> Param:
    """``KEY=loguniform:LOW:HIGH`` | ``KEY=uniform:LOW:HIGH`` | ``KEY=int:LOW:HIGH`` | ``KEY=choice:A,B``."""
    key, separator, spec = text.partition("=")
    kind, _, rest = spec.partition(":")
    key = key.strip().lstrip("-")
    if not separator or not key or kind not in DISTRIBUTIONS or not rest:
        raise ValueError(f"--param {text!r}: expected KEY=SPEC with SPEC one of loguniform:LOW:HIGH, uniform:LOW:HIGH, "
                         f"int:LOW:HIGH, choice:A,B,...")
    if kind == "choice":
        # "|" separates choices that hold commas (YAML lists such as freeze: [a, b]); Optuna keeps
        # those as their text, parsed back by ``config_value``
        texts = rest.split("|") if "|" in rest else rest.split(",")
        values = [_number_or(yaml.safe_load(value)) for value in texts]
        return Param(key, kind, choices=tuple(value if value is None or isinstance(value, (bool, int, float, str)) else text.strip()
                                              for value, text in zip(values, texts)))
    try:
        low, high = (float(value) for value in rest.split(":"))
    except ValueError:
        raise ValueError(f"--param {text!r}: {kind} needs LOW:HIGH numbers") from None
    if not low < high or (kind == "loguniform" and low <= 0):
        raise ValueError(f"--param {text!r}: need 0 < LOW < HIGH for loguniform, LOW < HIGH otherwise")
    return Param(key, kind, low, high)


def make_sampler(kind: str, params: list[Param], seed: int = 0):
    """Optuna's seeded TPE (``tpe``), or its grid over every combination of ``choice`` params (``grid``)."""
    import optuna

    if kind == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if kind == "grid":
        bad = [p.key for p in params if p.kind != "choice"]
        if bad:
            raise SystemExit(f"--sampler grid needs choice: params only; {', '.join(bad)} are not")
        return optuna.samplers.GridSampler({p.key: list(p.choices) for p in params}, seed=seed)
    raise SystemExit(f"unknown sampler {kind!r}; choose tpe or grid")


def config_value(value):
    """A trial's value as the config holds it: the text of a list/dict choice parsed back to YAML."""
    if isinstance(value, str) and value.lstrip().startswith(("[", "{")):
        return yaml.safe_load(value)
    return value


def run_metrics(run_dir: Path) -> dict[tuple[str, str], float]:
    return {(row["benchmark"], row["metric"]): float(row["value"]) for row in layout.read_results(run_dir / layout.RESULTS)}


def evaluate_originals(config: str, seeds: list[int], out: Path, overrides: list[str]) -> dict[int, tuple[str, Path]]:
    """The Original's validate run per seed in ``OUT/originals`` (once for all trials and processes)."""
    infos = method_configs([config], overrides, None)
    specs = [spec for spec in plan_runs(infos, seeds, out / "originals", overrides) if spec.kind == "original"]
    while True:
        if all(layout.is_finished(spec.run_dir) for spec in specs):
            break
        try:
            with layout.SweepLock(out / "originals"):
                execute(specs)
            break
        except SystemExit as error:  # another process of this study is evaluating them: wait for it
            if "another sweep" not in str(error):
                raise
            time.sleep(10)
    return {spec.seed: (spec.name, spec.run_dir) for spec in specs}


@functools.lru_cache(maxsize=32)
def _method_of(config: str) -> str:
    from faceunlearn.cli import parse_config

    return str(parse_config(config).config.model.class_path).rsplit(".", 1)[-1]


@functools.lru_cache(maxsize=32)
def _composed_document(config: str, overrides: tuple[str, ...]) -> dict:
    """The config as the CLI composes it with ``overrides`` (a trial's values), every group inlined."""
    from faceunlearn.cli import parse_config

    picked = parse_config(config, list(overrides))
    document = yaml.safe_load(picked.parser.dump(picked.config, skip_none=False, skip_check=True))
    document.pop("config", None)
    return document


def write_outputs(study, config: str, params: list[Param], seeds: list[int], out: Path, storage: str | None,
                  declared: Declared) -> None:
    """``trials.csv``, ``best.yaml``, ``pareto.png`` and ``study.json`` (module doc), atomically."""
    import optuna

    method = _method_of(config)
    trials = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    chosen, front, note = pick(study, declared.constraints, declared.original, declared.rule)
    layout.write_json_atomic(out / STUDY, {
        "study": study.study_name, "storage": storage, "config": str(config),
        "method": method,
        "seeds": list(seeds), "retention": list(declared.retention), "params": [p.key for p in params],
        "objectives": declared.objectives, "directions": declared.directions,
        "constraints": [str(c) for c in declared.constraints], "pick": declared.rule,
        "chosen_trial": None if chosen is None else chosen.number, "pareto_trials": sorted(front), "note": note,
        "original": declared.original,
        "original_forget_mAP": declared.original.get("forget_mAP"),
        "original_retention_mAP": declared.original.get("retention_mAP"),
    })
    if not trials:
        return
    names = [name for name in OBJECTIVES if any(name in t.user_attrs for t in trials)]
    columns = ["trial", *[p.key for p in params], *names, "feasible", "pareto", "chosen",
               *[f"{name}_seed{seed}" for seed in seeds for name in names]]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    rows = {}
    for trial in trials:
        feasible = all(c.violation(trial.user_attrs[c.name], declared.original) <= 0 for c in declared.constraints)
        rows[trial.number] = {"trial": trial.number, **trial.params, **trial.user_attrs, "feasible": int(feasible),
                              "pareto": int(trial.number in front), "chosen": int(trial is chosen or trial.number == chosen.number)}
        writer.writerow(rows[trial.number])
    layout.write_text_atomic(out / "trials.csv", text.getvalue())
    if len(declared.objectives) >= 2:
        try:
            from faceunlearn.figures.pareto import Point, pareto_figure
            from faceunlearn.figures.png import save_png

            points = [Point(f"{t.number}", t.user_attrs, bool(rows[t.number]["feasible"]), t.number in front,
                            chosen is not None and t.number == chosen.number) for t in trials]
            lines = {c.name: c.bound(declared.original) for c in declared.constraints}
            save_png(pareto_figure(points, declared.objectives, declared.directions, original=declared.original, lines=lines),
                     out / "pareto.png")
        except ImportError as error:  # matplotlib missing: the table stands without the figure
            print(f"[tune] no Pareto figure: {error}")

    # the config as the CLI composes it with the picked values (the trial runs' own overrides), every group
    # inlined: best.yaml lives elsewhere, so relative paths would break
    document = _composed_document(config, tuple(item for key, value in chosen.params.items() for item in (f"--{key}", str(value))))
    tried = "; ".join(f"{p.key}: " + ", ".join(f"{t.params[p.key]:.3g}" if isinstance(t.params[p.key], float) else str(t.params[p.key])
                                             for t in trials) for p in params)
    scores = ", ".join(f"{name} {chosen.user_attrs[name]:.4f}" for name in names)
    header = (f"# {Path(config).name} with the values `faceunlearn tune` chose (study {study.study_name!r}"
              f"{', storage ' + storage if storage else ''}):\n"
              f"#   picked trial {chosen.number} of {len(trials)}: " + ", ".join(f"{k} = {v}" for k, v in chosen.params.items()) + "\n"
              f"#   validation forget sets {' '.join(map(str, seeds))} only; {declared.describe()}\n"
              f"#   {note + '; ' if note else ''}the picked trial's validation measures: {scores}\n"
              f"#   values tried: {tried}\n"
              f"#   every other value: as in {config}. Trial table: {out / 'trials.csv'}\n")
    layout.write_text_atomic(out / "best.yaml", header + yaml.safe_dump(document, sort_keys=False))


#: an RDB storage's trial heartbeat (seconds between beats, seconds of silence after which the trial's process is
#: taken as killed): the next process to start a trial marks it failed and runs its values again, once
HEARTBEAT = (60, 600)


def open_study(out_dir: Path, study_name: str, storage: str | None, directions: list[str], sampler=None):
    """The study, made or loaded. Processes started together would race creating one RDB storage's tables (sqlite:
    ``UNIQUE constraint failed: alembic_version``), so they take turns on ``OUT/.study.lock``. An RDB storage beats
    (``HEARTBEAT``) so that a trial whose process was killed is retried (Optuna's ``RetryHeartbeatStaleTrialCallback``): a grid
    sampler counts a failed trial's point as visited and would never run it again."""
    import optuna

    with FileLock(str(Path(out_dir) / ".study.lock")):  # an RDBStorage creates its tables when made
        if storage is not None:
            interval, grace = HEARTBEAT
            with warnings.catch_warnings():  # the heartbeat is "experimental" in Optuna 5; it is what the retry needs
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = optuna.storages.RDBStorage(
                    storage, heartbeat_interval=interval, grace_period=grace,
                    heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1))
        return optuna.create_study(study_name=study_name, storage=storage, directions=directions, sampler=sampler,
                                   load_if_exists=True)


def grid_point_taken(trial) -> bool:
    """Whether another trial of the study has finished or is running with this trial's values."""
    import optuna

    taken = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.RUNNING)
    return any(other.number != trial.number and other.params == trial.params
               for other in trial.study.get_trials(deepcopy=False, states=taken))


def tune(config: str, params: list[Param], seeds: list[int], trials: int, out: str, retention: list[str],
         forget_ratio: float | None = 0.5, overrides: list[str] = (), storage: str | None = None, study_name: str | None = None,
         sampler_seed: int = 0, sampler: str = "tpe", objectives: list[str] = DEFAULT_OBJECTIVES,
         constraints: list[Constraint] = (), rule: str = "retention_mAP", relearn_steps: int = 100):
    """Run ``trials`` trials (in this process; other processes may add theirs to the same study)."""
    import optuna

    reported = sorted(set(seeds) & set(REPORTED_SEEDS))
    if reported:
        raise SystemExit(f"--seeds {reported} are reported forget sets (0, 1, 2); tune on validation seeds only, e.g. 100 101 102")
    if not params:
        raise SystemExit("nothing to tune: give at least one --param KEY=SPEC")
    if not retention:
        raise SystemExit("--retention needs the validation retention benchmark(s) of the config, e.g. celebrities orl")
    unknown = sorted({*objectives, rule} - set(OBJECTIVES))
    if unknown or not objectives:
        raise SystemExit(f"unknown objective(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(OBJECTIVES)}")
    constraints = list(constraints)
    if forget_ratio is not None:
        constraints.append(Constraint("forget_mAP", "<=", forget_ratio, "x"))
    out_dir, overrides = Path(out), list(overrides)
    per_seed = [measures(run_metrics(run_dir), retention, run_dir)
                for _, run_dir in evaluate_originals(config, seeds, out_dir, overrides).values()]
    declared = Declared(list(objectives), constraints, rule, list(retention), mean_measures(per_seed))
    for constraint in constraints:
        constraint.bound(declared.original)  # a relative bound the Original cannot give fails now, not after the runs
    print(f"[tune] Original on validation seeds {seeds}: " + ", ".join(f"{k} {v:.4f}" for k, v in declared.original.items()))
    print(f"[tune] {declared.describe()}")
    wanted = {*objectives, rule, *(c.name for c in constraints)}

    def run_trial(trial) -> list[float]:
        values = {p.key: p.suggest(trial) for p in params}
        if sampler == "grid" and grid_point_taken(trial):
            # Optuna's grid sampler hands a started point out again once every point is taken (processes racing for
            # the last one). A killed holder's point is retried through the heartbeat, so this process stops here.
            print(f"[tune] trial {trial.number}: {values} is run or running in another trial; this process stops")
            trial.study.stop()
            raise optuna.TrialPruned("grid point taken")
        # no embedding snapshots or t-SNE figures: model selection needs the numbers only
        trial_overrides = ["--run_files.snapshots", "[]", *overrides] + [item for key, value in values.items() for item in (f"--{key}", str(value))]
        trial_dir = out_dir / f"trial_{trial.number:03d}"
        infos = method_configs([config], trial_overrides, None)
        specs = [spec for spec in plan_runs(infos, seeds, trial_dir, trial_overrides, original_runs=out_dir / "originals")
                 if spec.kind == "method"]
        with layout.SweepLock(trial_dir):
            execute(specs)
        runs = []
        for spec in specs:
            found = measures(run_metrics(spec.run_dir), retention, spec.run_dir)
            if "relearn_mAP" in wanted:
                from faceunlearn.audit import strongest_relearning
                from faceunlearn.experiments.audit_waves import audit_overrides

                attack = strongest_relearning(config, str(spec.run_dir / layout.CHECKPOINTS / "last.ckpt"),
                                              audit_overrides(spec.args[2:]), relearn_steps)
                found["relearn_mAP"] = attack["mAP"]
            for name, value in found.items():
                trial.set_user_attr(f"{name}_seed{spec.seed}", value)
            runs.append(found)
        mean = mean_measures(runs)
        missing = sorted(wanted - set(mean))
        if missing:
            raise SystemExit(f"trial {trial.number}: the runs give no {', '.join(missing)} (a TAR needs retention "
                             f"benchmarks with pairs; a gap needs the forget benchmark's chance levels)")
        for name, value in mean.items():
            trial.set_user_attr(name, value)
        for index, constraint in enumerate(constraints):
            trial.set_constraint(f"c{index}", constraint.violation(mean[constraint.name], declared.original))
        print(f"[tune] trial {trial.number}: {values} → " + ", ".join(f"{k} {v:.4f}" for k, v in mean.items()))
        return [mean[name] for name in objectives]

    def after_trial(study, _trial) -> None:
        write_outputs(study, config, params, seeds, out_dir, storage, declared)

    out_dir.mkdir(parents=True, exist_ok=True)
    study = open_study(out_dir, study_name or f"tune_{Path(config).stem}", storage, declared.directions,
                       make_sampler(sampler, params, sampler_seed))
    if study.directions != [optuna.study.StudyDirection.MINIMIZE if d == "minimize" else optuna.study.StudyDirection.MAXIMIZE
                            for d in declared.directions]:
        raise SystemExit(f"study {study.study_name!r} in {storage} has other objectives; give another --study-name")
    study.optimize(run_trial, n_trials=trials, callbacks=[after_trial])
    write_outputs(study, config, params, seeds, out_dir, storage, declared)
    chosen, _, note = pick(study, constraints, declared.original, rule)
    if chosen is None:
        print(f"[tune] no finished trial in study {study.study_name!r} yet")
        return study
    running = sum(trial.state == optuna.trial.TrialState.RUNNING for trial in study.trials)
    later = (f" — {running} trial{'s' if running > 1 else ''} still running in other processes: the last of them to "
             f"finish rewrites these files with the final pick") if running else ""
    print(f"[tune] picked trial {chosen.number}: {chosen.params}{' (' + note + ')' if note else ''}; wrote "
          f"{out_dir / 'best.yaml'} and {out_dir / 'trials.csv'}{later}")
    return study
