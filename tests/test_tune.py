"""``faceunlearn tune``: Optuna over validation forget sets only, the declared objective, shared studies."""

from __future__ import annotations

import csv

import pytest
import yaml

from faceunlearn.experiments import sweep, tune
from faceunlearn.experiments.tune import objective, parse_param

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
            forget, retention = 0.9 - 80 * lr + 0.01 * spec.seed, 0.9 - 20 * lr
        return sweep.RunResult("Dispersion", {"forget/mAP": forget, "retain/mAP": retention}, {"global_step": 3})


@pytest.fixture
def runner(monkeypatch, start_weights_override):
    fake = LrRunner()
    monkeypatch.setattr(sweep, "run_one", fake)
    return fake, start_weights_override


def test_objective_is_the_declared_rule():
    assert objective(0.40, 0.85, 0.9, 0.9) == pytest.approx(2 + 0.85 / 0.9)  # forgets enough: retention decides
    assert objective(0.60, 0.89, 0.9, 0.9) == pytest.approx((1 - 0.6 / 0.9) + 0.89 / 0.9)  # not enough: balance, < 2
    assert objective(0.60, 0.9, 0.9, 0.9) < objective(0.45, 0.01, 0.9, 0.9)
    assert objective(0.60, 0.9, 0.9, 0.9, ratio=0.7) > 2


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


def test_trials_table_best_config_and_a_shared_study(runner, tmp_path):
    fake, override = runner
    out, storage = tmp_path / "tune", f"sqlite:///{tmp_path / 'study.db'}"
    params = [parse_param("model.init_args.lr=loguniform:1e-4:1e-2")]
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
        assert float(row["forget_mAP_seed101"]) == pytest.approx(0.9 - 80 * lr + 1.01)
        forget, retention = float(row["forget_mAP"]), float(row["retention_mAP"])
        assert retention == pytest.approx(0.9 - 20 * lr)
        assert float(row["objective"]) == pytest.approx(objective(forget, retention, 0.9, 0.9))
    best = max(rows, key=lambda row: float(row["objective"]))
    text = (out / "best.yaml").read_text()
    chosen = yaml.safe_load(text)
    assert chosen["model"]["init_args"]["lr"] == pytest.approx(float(best["model.init_args.lr"]))
    assert "validation forget sets 100 101 only" in text and "values tried: model.init_args.lr:" in text
    assert f"study 'tune_demo_disp', storage {storage}" in text
    import json

    study = json.loads((out / "study.json").read_text())
    assert study["method"] == "Dispersion" and study["retention"] == ["retain"] and study["seeds"] == [100, 101]
    assert study["original_forget_mAP"] == pytest.approx(0.9) and study["original_retention_mAP"] == pytest.approx(0.9)
    (out / "trials.csv").unlink()
    calls = len(fake.calls)
    tune.tune(CONFIG, params, [100, 101], 0, str(out), ["retain"], overrides=override, storage=storage)  # rewrite only
    assert len(fake.calls) == calls and len(list(csv.DictReader((out / "trials.csv").open()))) == 5


def test_best_config_inlines_file_valued_groups(tmp_path):
    """configs/sface_glint_disp.yaml names its data and evaluation groups by file: best.yaml must stand alone."""
    from faceunlearn.cli import cli_main

    out = tmp_path / "tune"
    study = type("Study", (), {})()  # write_outputs only reads trials, best_trial and study_name
    import optuna

    trial = optuna.trial.create_trial(params={"model.init_args.lr": 3e-4}, value=2.5,
                                      distributions={"model.init_args.lr": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)},
                                      user_attrs={"forget_mAP": 0.4, "retention_mAP": 0.8})
    study.trials, study.best_trial, study.study_name = [trial], trial, "s"
    tune.write_outputs(study, "configs/sface_glint_disp.yaml", [parse_param("model.init_args.lr=loguniform:1e-4:1e-2")], [100], out, None)
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
