"""``faceunlearn tune``: choose a method's settings with Optuna on validation forget sets only.

    faceunlearn tune --config configs/sface_glint_disp.yaml --seeds 100 101 102 --trials 12 \\
        --param model.init_args.lr=loguniform:1e-5:1e-2 --param data.batches_per_epoch=int:25:100 \\
        --retention celebrities orl --out lightning_logs/tune_disp --storage sqlite:///lightning_logs/tune_disp/study.db

* **Validation only.** ``--seeds`` are validation forget sets: the reported seeds 0, 1, 2 are refused.
  Each trial fits the config with the trial's values on every validation seed (the sweep's run
  machinery: ``OUT/trial_<n>/<config stem>/seed<K>/``, resumable); the Original is evaluated once
  per seed (``OUT/originals/``) and shared by every trial and process.
* **The declared objective** (``objective``): with ``f`` = mean validation forget mAP, ``r`` = mean
  validation retention mAP over the ``--retention`` benchmarks and ``f₀``, ``r₀`` the Original's, a
  trial that forgets enough (``f ≤ ratio·f₀``, ``--forget-ratio`` default 0.5) scores ``2 + r/r₀``;
  one that does not scores ``(1 − f/f₀) + r/r₀`` (< 2). Maximised: the most retention among
  settings that forget enough, else the best balance.
* **Search space**: ``--param KEY=SPEC`` with ``KEY`` a LightningCLI argument (``model.init_args.lr``)
  and ``SPEC`` one of ``loguniform:LOW:HIGH``, ``uniform:LOW:HIGH``, ``int:LOW:HIGH``,
  ``choice:A,B,...`` (values parsed as YAML; ``choice:[]|[a, b]`` separates choices that hold commas,
  e.g. the trainable layers ``model.init_args.freeze``).
* **Many processes or machines** share one study through Optuna's RDB storage (``--storage``,
  e.g. ``sqlite:///…/study.db`` on a shared disk, or a PostgreSQL URL): start the same command in
  each; Optuna hands out the trials (``load_if_exists``). The sampler is Optuna's TPE, seeded
  (``--sampler-seed``), or with ``--sampler grid`` its grid over every combination of ``choice``
  params (each tried once; ``--trials`` beyond the grid's size stop when it is done).
* **Outputs**, written atomically after every trial: ``OUT/trials.csv`` (every finished trial: its
  values, per-seed forget and retention mAP, objective) and ``OUT/best.yaml``: the config with the
  best trial's values written in, its header naming the study, the seeds and every value tried;
  ``OUT/study.json``: the config, method, seeds, retention benchmarks and the Original's validation
  scores (``faceunlearn report --tune`` draws the trade-off curves from these files). ``--trials 0``
  rewrites them from the storage without running a trial.
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from faceunlearn.experiments import layout
from faceunlearn.experiments.sweep import execute, method_configs, plan_runs
from faceunlearn.configs import read_config

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


def objective(forget: float, retention: float, original_forget: float, original_retention: float, ratio: float = 0.5) -> float:
    """The declared objective (module doc): ``2 + r/r₀`` if ``f ≤ ratio·f₀``, else ``(1 − f/f₀) + r/r₀``."""
    if original_forget <= 0 or original_retention <= 0:
        raise ValueError(f"the Original's forget and retention mAP must be > 0, got {original_forget} and {original_retention}")
    if forget <= ratio * original_forget:
        return 2.0 + retention / original_retention
    return (1.0 - forget / original_forget) + retention / original_retention


def run_metrics(run_dir: Path) -> dict[tuple[str, str], float]:
    return {(row["benchmark"], row["metric"]): float(row["value"]) for row in layout.read_results(run_dir / layout.RESULTS)}


def _scores(metrics: dict, retention: list[str], where: Path) -> tuple[float, float]:
    missing = [name for name in ["forget", *retention] if (name, "mAP") not in metrics]
    if missing:
        raise SystemExit(f"{where}: no mAP for benchmark(s) {', '.join(missing)} (its benchmarks: "
                         f"{', '.join(sorted({b for b, _ in metrics}))}); check --retention")
    return metrics[("forget", "mAP")], sum(metrics[(name, "mAP")] for name in retention) / len(retention)


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


def write_outputs(study, config: str, params: list[Param], seeds: list[int], out: Path, storage: str | None,
                  retention: list[str] = (), originals: tuple[float, float] | None = None, forget_ratio: float = 0.5) -> None:
    """``trials.csv``, ``best.yaml`` and ``study.json`` (module doc), atomically."""
    import optuna

    # includes and file-valued groups inlined: best.yaml lives elsewhere, so relative paths would break
    document = read_config(config).document
    layout.write_json_atomic(out / STUDY, {
        "study": study.study_name, "storage": storage, "config": str(config),
        "method": str(document.get("model", {}).get("class_path", "")).rsplit(".", 1)[-1],
        "seeds": list(seeds), "retention": list(retention), "forget_ratio": forget_ratio,
        "params": [p.key for p in params],
        "original_forget_mAP": None if originals is None else originals[0],
        "original_retention_mAP": None if originals is None else originals[1],
    })

    trials = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not trials:
        return
    columns = ["trial", *[p.key for p in params], "forget_mAP", "retention_mAP", "objective",
               *[f"{name}_seed{seed}" for seed in seeds for name in ("forget_mAP", "retention_mAP")]]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for trial in trials:
        writer.writerow({"trial": trial.number, **trial.params, **trial.user_attrs, "objective": trial.value})
    layout.write_text_atomic(out / "trials.csv", text.getvalue())

    best = study.best_trial
    for key, value in best.params.items():
        node = document
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = config_value(value)
    tried = "; ".join(f"{p.key}: " + ", ".join(f"{t.params[p.key]:.3g}" if isinstance(t.params[p.key], float) else str(t.params[p.key])
                                             for t in trials) for p in params)
    header = (f"# {Path(config).name} with the values `faceunlearn tune` chose (study {study.study_name!r}"
              f"{', storage ' + storage if storage else ''}):\n"
              f"#   best trial {best.number} of {len(trials)}: " + ", ".join(f"{k} = {v}" for k, v in best.params.items()) + "\n"
              f"#   validation forget sets {' '.join(map(str, seeds))} only; objective {best.value:.4f} "
              f"(forget mAP {best.user_attrs['forget_mAP']:.4f}, retention mAP {best.user_attrs['retention_mAP']:.4f})\n"
              f"#   values tried: {tried}\n"
              f"#   every other value: as in {config}. Trial table: {out / 'trials.csv'}\n")
    layout.write_text_atomic(out / "best.yaml", header + yaml.safe_dump(document, sort_keys=False))


def tune(config: str, params: list[Param], seeds: list[int], trials: int, out: str, retention: list[str],
         forget_ratio: float = 0.5, overrides: list[str] = (), storage: str | None = None, study_name: str | None = None,
         sampler_seed: int = 0, sampler: str = "tpe"):
    """Run ``trials`` trials (in this process; other processes may add theirs to the same study)."""
    import optuna

    reported = sorted(set(seeds) & set(REPORTED_SEEDS))
    if reported:
        raise SystemExit(f"--seeds {reported} are reported forget sets (0, 1, 2); tune on validation seeds only, e.g. 100 101 102")
    if not params:
        raise SystemExit("nothing to tune: give at least one --param KEY=SPEC")
    if not retention:
        raise SystemExit("--retention needs the validation retention benchmark(s) of the config, e.g. celebrities orl")
    out_dir, overrides = Path(out), list(overrides)
    originals = {}
    for seed, (name, run_dir) in evaluate_originals(config, seeds, out_dir, overrides).items():
        originals[seed] = _scores(run_metrics(run_dir), retention, run_dir)
    original_forget = sum(f for f, _ in originals.values()) / len(seeds)
    original_retention = sum(r for _, r in originals.values()) / len(seeds)
    print(f"[tune] Original on validation seeds {seeds}: forget mAP {original_forget:.4f}, retention mAP {original_retention:.4f}")

    def run_trial(trial) -> float:
        values = {p.key: p.suggest(trial) for p in params}
        # no embedding snapshots or t-SNE figures: model selection needs the numbers only
        trial_overrides = ["--run_files.snapshots", "[]", *overrides] + [item for key, value in values.items() for item in (f"--{key}", str(value))]
        trial_dir = out_dir / f"trial_{trial.number:03d}"
        infos = method_configs([config], trial_overrides, None)
        specs = [spec for spec in plan_runs(infos, seeds, trial_dir, trial_overrides, original_runs=out_dir / "originals")
                 if spec.kind == "method"]
        with layout.SweepLock(trial_dir):
            execute(specs)
        forget_values, retention_values = [], []
        for spec in specs:
            forget, kept = _scores(run_metrics(spec.run_dir), retention, spec.run_dir)
            trial.set_user_attr(f"forget_mAP_seed{spec.seed}", forget)
            trial.set_user_attr(f"retention_mAP_seed{spec.seed}", kept)
            forget_values.append(forget)
            retention_values.append(kept)
        forget, kept = sum(forget_values) / len(seeds), sum(retention_values) / len(seeds)
        trial.set_user_attr("forget_mAP", forget)
        trial.set_user_attr("retention_mAP", kept)
        value = objective(forget, kept, original_forget, original_retention, forget_ratio)
        print(f"[tune] trial {trial.number}: {values} → forget mAP {forget:.4f}, retention mAP {kept:.4f}, objective {value:.4f}")
        return value

    def after_trial(study, _trial) -> None:
        write_outputs(study, config, params, seeds, out_dir, storage, retention, (original_forget, original_retention), forget_ratio)

    out_dir.mkdir(parents=True, exist_ok=True)
    study = optuna.create_study(
        study_name=study_name or f"tune_{Path(config).stem}", storage=storage, direction="maximize",
        sampler=make_sampler(sampler, params, sampler_seed), load_if_exists=True,
    )
    study.optimize(run_trial, n_trials=trials, callbacks=[after_trial])
    write_outputs(study, config, params, seeds, out_dir, storage, retention, (original_forget, original_retention), forget_ratio)
    if not any(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials):
        print(f"[tune] no finished trial in study {study.study_name!r} yet")
        return study
    best = study.best_trial
    print(f"[tune] best trial {best.number}: {best.params}, objective {best.value:.4f}; wrote {out_dir / 'best.yaml'} and "
          f"{out_dir / 'trials.csv'}")
    return study
