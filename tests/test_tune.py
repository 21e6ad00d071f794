"""``faceunlearn tune``: Optuna multi-objective over validation forget sets only, declared constraints and pick
rule, shared studies."""

from __future__ import annotations

import csv

import pytest
import yaml

from faceunlearn.experiments import sweep, tune
from faceunlearn.experiments.tune import Constraint, parse_constraint, parse_param

CONFIG = "configs/demo_disp.yaml"


class LrRunner:
    """Stands in for sweep.run_one: forget and retention mAP fall with the run's lr (Original: 0.9 each)."""

    def __init__(self):
        self.calls = []

    def __call__(self, spec):
        self.calls.append(spec)
        if spec.kind == "original":
            forget = retention = 0.9
        else:
            lr = float(spec.args[len(spec.args) - 1 - spec.args[::-1].index("--model.init_args.lr") + 1])
            forget, retention = 0.9 - 120 * lr + 1e-4 * spec.seed, 0.9 - 20 * lr
        return sweep.RunResult("Dispersion", {"forget/mAP": forget, "retain/mAP": retention}, {"global_step": 3})


@pytest.fixture
def runner(monkeypatch, start_weights_override):
    fake = LrRunner()
    monkeypatch.setattr(sweep, "run_one", fake)
    return fake, start_weights_override


def test_constraints_parse_and_measure_violations():
    original = {"forget_mAP": 0.9, "retention_mAP": 0.8}
    assert parse_constraint("forget_mAP<=0.5x") == Constraint("forget_mAP", "<=", 0.5, "x")
    assert parse_constraint(" retention_mAP >= -0.01d") == Constraint("retention_mAP", ">=", -0.01, "d")
    assert parse_constraint("relearn_mAP<=0.5") == Constraint("relearn_mAP", "<=", 0.5, "")
    assert parse_constraint("forget_mAP<=0.5x").violation(0.40, original) == pytest.approx(0.40 - 0.45)  # kept: <= 0
    assert parse_constraint("forget_mAP<=0.5x").violation(0.50, original) == pytest.approx(0.05)
    assert parse_constraint("retention_mAP>=-0.01d").violation(0.78, original) == pytest.approx(0.01)  # 0.79 - 0.78
    assert parse_constraint("relearn_mAP<=0.5").violation(0.2, {}) == pytest.approx(-0.3)
    with pytest.raises(SystemExit, match="the Original has no relearn_mAP"):
        parse_constraint("relearn_mAP<=0.5x").bound(original)
    for bad in ("forget_mAP=0.5", "speed<=1", "forget_mAP<=half"):
        with pytest.raises(ValueError, match="--constraint"):
            parse_constraint(bad)


def test_measures_read_chance_gaps_and_tar():
    metrics = {("forget", "mAP"): 0.30, ("forget", "R@1"): 0.10, ("forget", "chance_mAP"): 0.22, ("forget", "chance_R@1"): 0.195,
               ("a", "mAP"): 0.9, ("b", "mAP"): 0.7, ("a", "TAR@FAR=0.001"): 0.8}
    values = tune.measures(metrics, ["a", "b"], "run")
    assert values == pytest.approx({"forget_mAP": 0.30, "forget_R@1": 0.10, "forget_mAP_gap": 0.08, "forget_R@1_gap": 0.095,
                                    "retention_mAP": 0.8, "retention_TAR": 0.8})  # below chance counts as far as above
    seen = tune.measures({**metrics, ("forget_seen", "mAP"): 0.25, ("forget_seen", "R@1"): 0.45}, ["a", "b"], "run")
    assert seen == pytest.approx({**values, "forget_seen_mAP": 0.25, "forget_seen_R@1": 0.45})  # the photos the loss saw
    with pytest.raises(SystemExit, match="no mAP for benchmark"):
        tune.measures(metrics, ["c"], "run")


def test_param_specs():
    assert parse_param("model.init_args.lr=loguniform:1e-5:1e-2") == tune.Param("model.init_args.lr", "loguniform", 1e-5, 1e-2)
    assert parse_param("--data.batches_per_epoch=int:10:50").key == "data.batches_per_epoch"
    assert parse_param("model.init_args.lr=choice:1e-3,0.01").choices == (1e-3, 0.01)
    # lists are kept as text for Optuna and parsed back when written into the config
    freeze = parse_param("model.init_args.freeze=choice:[]|[backbone.layer1, backbone.layer2]")
    assert freeze.choices == ("[]", "[backbone.layer1, backbone.layer2]")
    assert [tune.config_value(choice) for choice in freeze.choices] == [[], ["backbone.layer1", "backbone.layer2"]]
    assert tune.config_value(0.5) == 0.5 and tune.config_value("sgd") == "sgd"
    for bad in ("model.init_args.lr", "lr=gauss:1:2", "lr=loguniform:0:1", "lr=uniform:2:1", "lr=int:a:b"):
        with pytest.raises(ValueError, match="--param"):
            parse_param(bad)


def test_reported_seeds_are_refused(runner, tmp_path):
    _, override = runner
    with pytest.raises(SystemExit, match=r"\[1\] are reported forget sets"):
        tune.tune(CONFIG, [parse_param("model.init_args.lr=loguniform:1e-4:1e-2")], [1, 100], 1, str(tmp_path / "t"), ["retain"],
                  overrides=override)


def test_trials_table_best_config_and_a_shared_study(runner, tmp_path, capsys):
    fake, override = runner
    out, storage = tmp_path / "tune", f"sqlite:///{tmp_path / 'study.db'}"
    params = [parse_param("model.init_args.lr=loguniform:1e-3:1e-2")]
    tune.tune(CONFIG, params, [100, 101], 3, str(out), ["retain"], overrides=override, storage=storage)
    tune.tune(CONFIG, params, [100, 101], 2, str(out), ["retain"], overrides=override, storage=storage)  # a second process
    originals = [spec for spec in fake.calls if spec.kind == "original"]
    assert sorted(spec.seed for spec in originals) == [100, 101]  # once per seed, shared by both processes
    assert sum(spec.kind == "method" for spec in fake.calls) == 5 * 2
    # every trial's step 0 is the Original evaluated once in OUT/originals (not a folder of the trial's own)
    starts = {spec.seed: spec.args[spec.args.index("--evaluation.start_results") + 1] for spec in fake.calls if spec.kind == "method"}
    assert starts == {spec.seed: str(spec.run_dir / sweep.START_RESULTS) for spec in originals}
    assert all(start.startswith(str(out / "originals")) for start in starts.values())
    rows = list(csv.DictReader((out / "trials.csv").open()))
    assert [int(row["trial"]) for row in rows] == [0, 1, 2, 3, 4]
    for row in rows:
        lr = float(row["model.init_args.lr"])
        assert float(row["forget_mAP_seed101"]) == pytest.approx(0.9 - 120 * lr + 0.0101)
        assert float(row["retention_mAP"]) == pytest.approx(0.9 - 20 * lr)
        assert int(row["feasible"]) == (float(row["forget_mAP"]) <= 0.5 * 0.9)  # the default constraint, forget <= 0.5x
    # the Pareto front (Optuna's best_trials: feasible trials no other feasible trial beats on both objectives)
    feasible = [row for row in rows if int(row["feasible"])]
    assert 0 < len(feasible) < len(rows)  # both kinds, so that the constraint decides something
    for row in rows:
        beaten = any(float(o["forget_mAP"]) <= float(row["forget_mAP"]) and float(o["retention_mAP"]) >= float(row["retention_mAP"])
                     and (float(o["forget_mAP"]), float(o["retention_mAP"])) != (float(row["forget_mAP"]), float(row["retention_mAP"]))
                     for o in feasible)
        assert int(row["pareto"]) == (int(row["feasible"]) and not beaten)
    # the pick rule: the most retention among the feasible front
    [chosen] = [row for row in rows if int(row["chosen"])]
    assert chosen == max((row for row in rows if int(row["pareto"])), key=lambda row: float(row["retention_mAP"]))
    text = (out / "best.yaml").read_text()
    assert yaml.safe_load(text)["model"]["init_args"]["lr"] == pytest.approx(float(chosen["model.init_args.lr"]))
    assert "validation forget sets 100 101 only" in text and "values tried: model.init_args.lr:" in text
    assert "objectives forget_mAP (min), retention_mAP (max); constraints forget_mAP<=0.5x" in text
    assert f"study 'tune_demo_disp', storage {storage}" in text
    assert (out / "pareto.png").stat().st_size > 1000
    import json

    study = json.loads((out / "study.json").read_text())
    assert study["method"] == "Dispersion" and study["retention"] == ["retain"] and study["seeds"] == [100, 101]
    assert study["original_forget_mAP"] == pytest.approx(0.9) and study["original_retention_mAP"] == pytest.approx(0.9)
    assert study["chosen_trial"] == int(chosen["trial"]) and study["objectives"] == ["forget_mAP", "retention_mAP"]
    (out / "trials.csv").unlink()
    calls = len(fake.calls)
    tune.tune(CONFIG, params, [100, 101], 0, str(out), ["retain"], overrides=override, storage=storage)  # rewrite only
    assert len(fake.calls) == calls and len(list(csv.DictReader((out / "trials.csv").open()))) == 5
    assert "still running" not in capsys.readouterr().out
    # a trial another process is still running: the pick is said to be provisional
    import optuna

    optuna.load_study(study_name="tune_demo_disp", storage=storage).ask()
    tune.tune(CONFIG, params, [100, 101], 0, str(out), ["retain"], overrides=override, storage=storage)
    assert "1 trial still running in other processes: the last of them to finish rewrites" in capsys.readouterr().out


def test_best_config_inlines_file_valued_groups(tmp_path):
    """configs/sface_glint_disp.yaml names its data and evaluation groups by file: best.yaml must stand alone."""
    from faceunlearn.cli import cli_main

    out = tmp_path / "tune"
    import optuna

    study = optuna.create_study(study_name="s", directions=["minimize", "maximize"])
    study.add_trial(optuna.trial.create_trial(
        params={"model.init_args.lr": 3e-4}, values=[0.4, 0.8], user_attrs={"forget_mAP": 0.4, "retention_mAP": 0.8},
        distributions={"model.init_args.lr": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)}))
    declared = tune.Declared(["forget_mAP", "retention_mAP"], [], "retention_mAP", ["celebrities"], {"forget_mAP": 0.9, "retention_mAP": 0.9})
    tune.write_outputs(study, "configs/sface_glint_disp.yaml", [parse_param("model.init_args.lr=loguniform:1e-4:1e-2")], [100], out,
                       None, declared)
    chosen = yaml.safe_load((out / "best.yaml").read_text())
    assert chosen["data"]["holdout_identities"] == 12 and "celebrities" in chosen["evaluation"]["benchmarks"]
    assert chosen["model"]["init_args"]["lr"] == 3e-4
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["fit", "--config", str(out / "best.yaml"), "--print_config"])
    assert exit_info.value.code in (0, None)


def test_grid_sampler_tries_each_choice_once(runner, tmp_path):
    fake, override = runner
    params = [parse_param("model.init_args.lr=choice:0.001,0.01")]
    tune.tune(CONFIG, params, [100], 5, str(tmp_path / "grid"), ["retain"], overrides=override, sampler="grid")
    rows = list(csv.DictReader((tmp_path / "grid" / "trials.csv").open()))
    assert sorted(float(row["model.init_args.lr"]) for row in rows) == [0.001, 0.01]
    with pytest.raises(SystemExit, match="choice: params only"):
        tune.tune(CONFIG, [parse_param("model.init_args.lr=loguniform:1e-4:1e-2")], [100], 1, str(tmp_path / "g2"), ["retain"],
                  overrides=override, sampler="grid")


def test_a_killed_trials_grid_point_is_run_again_by_the_next_process(runner, tmp_path, monkeypatch):
    """A process killed mid-trial leaves its trial RUNNING; Optuna's grid sampler would count it as visited once failed
    and never run its point again. The heartbeat marks it failed and the retry callback runs its values once more."""
    import time

    import optuna

    fake, override = runner
    monkeypatch.setattr(tune, "HEARTBEAT", (1, 2))
    params = [parse_param("model.init_args.lr=choice:0.001,0.003,0.01")]
    out, storage = tmp_path / "grid", f"sqlite:///{tmp_path / 'study.db'}"
    out.mkdir()
    study = tune.open_study(out, "killed", storage, ["minimize", "maximize"], tune.make_sampler("grid", params))
    killed = study.ask()  # what a process does before it dies: the grid gives the trial its point, the trial beats once
    lr = killed.suggest_categorical("model.init_args.lr", [0.001, 0.003, 0.01])
    study._storage.record_heartbeat(killed._trial_id)
    time.sleep(3)  # past the grace period: the beat stopped
    tune.tune(CONFIG, params, [100], 3, str(out), ["retain"], overrides=override, storage=storage, study_name="killed",
              sampler="grid")
    trials = optuna.load_study(study_name="killed", storage=storage).trials
    assert trials[0].state == optuna.trial.TrialState.FAIL
    done = sorted(t.params["model.init_args.lr"] for t in trials if t.state == optuna.trial.TrialState.COMPLETE)
    assert done == [0.001, 0.003, 0.01]  # every point once, the killed one's included
    assert sum(float(spec.args[spec.args.index("--model.init_args.lr") + 1]) == lr for spec in fake.calls if spec.kind == "method") == 1


def test_a_grid_point_another_process_is_running_is_not_run_twice(runner, tmp_path):
    """Once every grid point is started, Optuna's grid sampler hands a running one out again (observed: study
    tune_deep_demo ran a point twice); the process that gets it stops instead of repeating it."""
    import optuna

    fake, override = runner
    params = [parse_param("model.init_args.lr=choice:0.001,0.01")]
    out, storage = tmp_path / "grid", f"sqlite:///{tmp_path / 'study.db'}"
    out.mkdir()
    study = tune.open_study(out, "race", storage, ["minimize", "maximize"], tune.make_sampler("grid", params))
    held = study.ask()  # another process holds one point and is alive
    held_lr = held.suggest_categorical("model.init_args.lr", [0.001, 0.01])
    study._storage.record_heartbeat(held._trial_id)
    tune.tune(CONFIG, params, [100], 3, str(out), ["retain"], overrides=override, storage=storage, study_name="race",
              sampler="grid")
    ran = [float(spec.args[spec.args.index("--model.init_args.lr") + 1]) for spec in fake.calls if spec.kind == "method"]
    assert ran == [0.01 if held_lr == 0.001 else 0.001]  # the free point, once; never the held one
    states = {t.number: t.state for t in optuna.load_study(study_name="race", storage=storage).trials}
    assert states[held.number] == optuna.trial.TrialState.RUNNING
    assert sorted(states.values(), key=str).count(optuna.trial.TrialState.PRUNED) == 1


def test_pick_rule_with_and_without_a_feasible_trial():
    import optuna

    lr = {"model.init_args.lr": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)}
    original = {"forget_mAP": 0.9, "retention_mAP": 0.9}
    keep = [parse_constraint("retention_mAP>=-0.05d")]

    def study_of(points):
        study = optuna.create_study(directions=["minimize", "maximize"])
        for number, (forget, kept) in enumerate(points):
            study.add_trial(optuna.trial.create_trial(
                params={"model.init_args.lr": 1e-3 * (number + 1)}, distributions=lr, values=[forget, kept],
                user_attrs={"forget_mAP": forget, "retention_mAP": kept},
                constraints={"c0": keep[0].violation(kept, original)}))
        return study

    # trial 2 forgets most but breaks the retention bound; among the feasible front (0, 1) the rule picks least forget mAP
    chosen, front, note = tune.pick(study_of([(0.5, 0.89), (0.3, 0.86), (0.1, 0.80), (0.6, 0.88)]), keep, original, "forget_mAP")
    assert (chosen.number, front, note) == (1, {0, 1}, "")
    chosen, _, _ = tune.pick(study_of([(0.5, 0.89), (0.3, 0.86), (0.1, 0.80), (0.6, 0.88)]), keep, original, "retention_mAP")
    assert chosen.number == 0
    # nothing feasible: the least total violation, said so
    chosen, front, note = tune.pick(study_of([(0.1, 0.70), (0.2, 0.80), (0.3, 0.75)]), keep, original, "forget_mAP")
    assert (chosen.number, front) == (1, set()) and "no trial met every constraint" in note


def _open_after(barrier, out, storage, results):
    from faceunlearn.experiments.tune import open_study

    barrier.wait()
    try:
        results.put(open_study(out, "race", storage, ["minimize"]).study_name)
    except Exception as error:  # noqa: BLE001 (the race's error is what the test reports)
        results.put(f"{type(error).__name__}: {error}"[:200])


@pytest.mark.slow  # spawned interpreters
def test_processes_started_together_share_one_new_study(tmp_path):
    """Several ``tune`` processes started at once on a new sqlite storage: each gets the study, none fails."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(4), context.Queue()
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    workers = [context.Process(target=_open_after, args=(barrier, tmp_path, storage, results)) for _ in range(4)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join()
    assert outcomes == ["race"] * 4
