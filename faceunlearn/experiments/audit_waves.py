"""``faceunlearn sweep --audit``: the audits of a sweep's finished runs, in two waves (see ``audit_specs``).

The first audit of each forget set audits the Original and Retrain; every later one of that forget set copies
their rows (``faceunlearn.audit.reference_results``). Each audit is a ``RunSpec`` of kind ``audit``, so the
sweep's launchers (processes, submitit) run audits as they run runs.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from faceunlearn.experiments import layout
from faceunlearn.experiments.plan import RunResult, RunSpec


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


def _earlier_audit(spec: RunSpec) -> tuple[str, Path] | None:
    """A finished audit of ``spec``'s forget set in a sibling run folder of the same OUT (``OUT/<config>/seedK/audit``)
    whose config evaluates the start model alike: its Original and Retrain rows may be copied (``REUSE_KEYS``, checked
    by the audit itself, decide)."""
    from faceunlearn.audit import AUDIT_JSON
    from faceunlearn.cli import same_start_evaluation

    out, seed_folder = spec.run_dir.parent.parent, spec.run_dir.name
    for folder in sorted(out.glob(f"*/{seed_folder}/{layout.AUDIT}")):
        if folder == spec.run_dir / layout.AUDIT or not (folder / "audit.csv").is_file():
            continue
        try:
            config = json.loads((folder / AUDIT_JSON).read_text()).get("config")
        except (OSError, ValueError):
            continue
        if config and same_start_evaluation(spec.config, config):
            return config, folder
    return None


def audit_specs(specs: list[RunSpec], relearn_lrs: list[float] | None = None) -> list[list[RunSpec]]:
    """The audits still to make, as two waves of audit RunSpecs: first the first audit of each forget set
    (scenario, seed, start weights) that has none yet, which audits the Original and Retrain; then every
    other one, which copies those rows from its forget set's first audit when their step 0 is the same."""
    from faceunlearn.cli import same_start_evaluation

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
        if group not in first:  # the forget set's first audit: an earlier sweep's in this OUT, else this one
            first[group] = _earlier_audit(spec) or (spec.config, folder)
        if first[group][1] == folder:
            wave = 0
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
