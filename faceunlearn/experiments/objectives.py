"""What a ``faceunlearn tune`` study optimises: its measures and directions, constraints, and the pick rule.

Declared before any trial runs (``Declared``, written into the study's outputs); the study itself is Optuna's
multi-objective study (``faceunlearn.experiments.tune``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


#: what a trial can be judged by, and which way is better (values are fractions, as the results files hold them)
OBJECTIVES = {
    "forget_mAP": "minimize",  # validation forget mAP
    "forget_R@1": "minimize",
    "forget_mAP_gap": "minimize",  # |forget mAP − chance|: at chance, not below it (anti-retrieval names a person as surely)
    "forget_R@1_gap": "minimize",
    "retention_mAP": "maximize",  # mean mAP over the --retention benchmarks
    "retention_TAR": "maximize",  # mean TAR@FAR=1e-3 over the --retention benchmarks that have pairs
    "relearn_mAP": "minimize",  # forget mAP after the strongest relearning attack (audit.RELEARN_LRS, 100 steps)
    # the forget benchmark with D_f^train's photos as queries (``forget_seen``, validation protocols): set beside
    # forget_R@1 it shows whether forgetting reaches photos the loss never saw
    "forget_seen_mAP": "minimize",
    "forget_seen_R@1": "minimize",
}
DEFAULT_OBJECTIVES = ("forget_mAP", "retention_mAP")
TAR_METRIC = "TAR@FAR=0.001"


@dataclass(frozen=True)
class Constraint:
    """``name <= bound`` or ``name >= bound``; ``relative``: ``x`` (bound × the Original's), ``d`` (the Original's + bound)."""

    name: str
    op: str
    value: float
    relative: str = ""

    def bound(self, original: dict[str, float]) -> float:
        if not self.relative:
            return self.value
        if self.name not in original:
            raise SystemExit(f"--constraint {self}: the Original has no {self.name} to be relative to; give an absolute bound")
        return self.value * original[self.name] if self.relative == "x" else original[self.name] + self.value

    def violation(self, value: float, original: dict[str, float]) -> float:
        """How far ``value`` breaks the constraint (≤ 0: kept), in the measure's units."""
        bound = self.bound(original)
        return value - bound if self.op == "<=" else bound - value

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.value:g}{self.relative}"


def parse_constraint(text: str) -> Constraint:
    """``NAME<=VALUE`` or ``NAME>=VALUE``, VALUE a number, optionally followed by ``x`` or ``d`` (module doc)."""
    for op in ("<=", ">="):
        if op in text:
            name, _, value = (part.strip() for part in text.partition(op))
            break
    else:
        raise ValueError(f"--constraint {text!r}: write NAME<=VALUE or NAME>=VALUE")
    if name not in OBJECTIVES:
        raise ValueError(f"--constraint {text!r}: unknown measure {name!r}; choose from {', '.join(OBJECTIVES)}")
    relative = value[-1] if value[-1:] in ("x", "d") else ""
    try:
        number = float(value[:-1] if relative else value)
    except ValueError:
        raise ValueError(f"--constraint {text!r}: {value!r} is not a number (optionally followed by x or d)") from None
    return Constraint(name, op, number, relative)


def measures(metrics: dict[tuple[str, str], float], retention: list[str], where: Path) -> dict[str, float]:
    """Every measure of ``OBJECTIVES`` one run's results give (``relearn_mAP`` needs an attack: not here)."""
    missing = [name for name in ["forget", *retention] if (name, "mAP") not in metrics]
    if missing:
        raise SystemExit(f"{where}: no mAP for benchmark(s) {', '.join(missing)} (its benchmarks: "
                         f"{', '.join(sorted({b for b, _ in metrics}))}); check --retention")
    values = {"forget_mAP": metrics["forget", "mAP"],
              "retention_mAP": sum(metrics[name, "mAP"] for name in retention) / len(retention)}
    if ("forget", "R@1") in metrics:
        values["forget_R@1"] = metrics["forget", "R@1"]
    for measure in ("mAP", "R@1"):
        if ("forget", measure) in metrics and ("forget", f"chance_{measure}") in metrics:
            values[f"forget_{measure}_gap"] = abs(metrics["forget", measure] - metrics["forget", f"chance_{measure}"])
    for measure in ("mAP", "R@1"):
        if ("forget_seen", measure) in metrics:
            values[f"forget_seen_{measure}"] = metrics["forget_seen", measure]
    tars = [metrics[name, TAR_METRIC] for name in retention if (name, TAR_METRIC) in metrics]
    if tars:
        values["retention_TAR"] = sum(tars) / len(tars)
    return values


def mean_measures(per_seed: list[dict[str, float]]) -> dict[str, float]:
    """The mean over seeds of every measure all seeds have."""
    common = set.intersection(*(set(values) for values in per_seed)) if per_seed else set()
    return {name: sum(values[name] for values in per_seed) / len(per_seed) for name in OBJECTIVES if name in common}


def pick(study, constraints: list[Constraint], original: dict[str, float], rule: str):
    """The declared pick rule: among the feasible Pareto-front trials (Optuna's ``study.best_trials``, which keeps
    only trials whose ``set_constraint`` values are all ≤ 0), the best by ``rule`` (ties: the earlier trial); with no
    feasible trial, the trial with the least total violation. Returns ``(trial, front trial numbers, note)``."""
    import optuna

    trials = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not trials:
        return None, set(), ""
    sign = 1.0 if OBJECTIVES[rule] == "minimize" else -1.0
    front = study.best_trials
    if front:
        return min(front, key=lambda t: (sign * t.user_attrs[rule], t.number)), {t.number for t in front}, ""

    def violation(trial):
        return sum(max(0.0, c.violation(trial.user_attrs[c.name], original)) for c in constraints)

    chosen = min(trials, key=lambda t: (violation(t), sign * t.user_attrs[rule], t.number))
    return chosen, set(), "no trial met every constraint: the trial with the least total violation"


@dataclass
class Declared:
    """What a study optimises and how it picks, declared before its runs (written into every output)."""

    objectives: list[str]
    constraints: list[Constraint]
    rule: str
    retention: list[str]
    original: dict[str, float]  # the Original's mean validation measures

    @property
    def directions(self) -> list[str]:
        return [OBJECTIVES[name] for name in self.objectives]

    def describe(self) -> str:
        return (f"objectives {', '.join(f'{name} ({OBJECTIVES[name][:3]})' for name in self.objectives)}; constraints "
                f"{', '.join(map(str, self.constraints)) or 'none'}; pick: the best {self.rule} among the feasible Pareto-front trials")
