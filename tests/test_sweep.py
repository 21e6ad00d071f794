"""faceunlearn sweep: the run-folder contract, resuming, the Original once per seed, and one real tiny sweep."""

import json
import pickle
import shutil
from pathlib import Path

import pytest

from faceunlearn.audit import AUDIT_JSON, AUDIT_VERSION, RELEARN_LRS, RELEARN_STEPS
from faceunlearn.experiments import audit_waves, launch, layout, sweep
from faceunlearn.experiments.report import collect

REPO = Path(__file__).resolve().parents[1]
DISP, GA = str(REPO / "configs/demo_disp.yaml"), str(REPO / "configs/demo_ga.yaml")
FINETUNE = str(REPO / "configs/demo_finetune.yaml")


class FakeRunner:
    """Stands in for sweep.run_one: records each run, writes a file into its folder, returns metrics."""

    def __init__(self, fail_on=None):
        self.calls = []
        self.fail_on = fail_on

    def __call__(self, spec):
        self.calls.append(spec)
        assert spec.run_dir.is_dir() and not any(spec.run_dir.iterdir())  # a fresh, empty folder
        (spec.run_dir / "events.out.tfevents.fake").write_text("x")
        if self.fail_on == spec.name:
            raise RuntimeError("killed")
        method = "Original" if spec.kind == "original" else Path(spec.config).stem
        value = 0.1 * spec.seed + (0.5 if spec.kind == "original" else 0.2)
        return sweep.RunResult(method, {"forget/mAP": value, "forget/CS": value / 2, "retain/num_queries_without_relevant": 0.0},
                               {"global_step": 3})


@pytest.fixture
def fake(monkeypatch, tmp_path, start_weights_override):
    """Configs that need no checkpoint (init_weights = an existing dummy file), and a fake runner."""
    runner = FakeRunner()
    monkeypatch.setattr(sweep, "run_one", runner)
    return runner, start_weights_override, tmp_path / "out"


def _arg(spec, name):
    return _arg_of(spec.args, name)


def _arg_of(args, name):
    return args[len(args) - 1 - args[::-1].index(name) + 1]  # the last occurrence wins


def test_layout_args_and_done_files(fake, capsys):
    runner, override, out = fake
    specs = sweep.sweep([DISP, GA], [0, 1], str(out), overrides=override)
    names = [spec.name for spec in runner.calls]
    # the Originals first: every method run of a seed takes its step-0 numbers from that seed's Original
    assert names == ["original/seed0", "original/seed1", "demo_disp/seed0", "demo_ga/seed0", "demo_disp/seed1", "demo_ga/seed1"]
    assert sorted(spec.name for spec in specs) == sorted(names)
    for spec in runner.calls:
        if spec.kind == "method":
            assert _arg(spec, "--evaluation.start_results") == str(out / "original" / f"seed{spec.seed}" / sweep.START_RESULTS)
    # the Original is evaluated once per seed; each seed its own --data.seed / --seed_everything
    originals = [spec for spec in runner.calls if spec.kind == "original"]
    assert [_arg(spec, "--data.seed") for spec in originals] == ["0", "1"]
    for spec in runner.calls:
        assert _arg(spec, "--data.seed") == _arg(spec, "--seed_everything") == str(spec.seed)
        assert _arg(spec, "--trainer.logger.init_args.save_dir") == str(spec.run_dir)
        assert _arg(spec, "--trainer.logger.init_args.name") == _arg(spec, "--trainer.logger.init_args.version") == ""
        assert _arg(spec, "--checkpoint.dirpath") == str(spec.run_dir / "checkpoints")
        assert "--trainer.num_sanity_val_steps" not in spec.args  # method runs evaluate step 0: curves and t-SNE start there
        assert _arg(spec, "--model.init_args.init_weights") == override[1]
    for spec in specs:
        done = json.loads((spec.run_dir / "done.json").read_text())
        assert {"config", "method", "seed", "scenario", "seconds", "finished_at"} <= set(done)
        assert done["seed"] == spec.seed and done["scenario"] == "synthetic"
        assert done["method"] == ("Original" if spec.kind == "original" else Path(spec.config).stem)
        header, *lines = (spec.run_dir / "results.csv").read_text().splitlines()
        assert header == "method,seed,benchmark,metric,value" and len(lines) == 3  # every metric, not only table ones
    printed = capsys.readouterr().out
    assert "run 1/6 done" in printed and "5 left" in printed and "ETA" in printed and "elapsed" in printed
    assert "run 6/6 done" in printed and "0 left" in printed


def test_finished_runs_are_skipped_and_crashed_ones_moved_aside(fake, capsys):
    runner, override, out = fake
    sweep.sweep([DISP], [0, 1], str(out), overrides=override)
    finished = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    # a killed run: folder without done.json
    crashed = out / "demo_disp/seed1"
    (crashed / "done.json").unlink()
    (crashed / "partial.txt").write_text("half")
    runner.calls.clear()
    capsys.readouterr()
    sweep.sweep([DISP], [0, 1], str(out), overrides=override)
    assert [spec.name for spec in runner.calls] == ["demo_disp/seed1"]  # only the unfinished run is redone
    printed = capsys.readouterr().out
    assert "skip original/seed0" in printed and "3 finished, 1 to run" in printed and "run 1/1 done" in printed
    aside = list(out.glob("demo_disp/seed1.crashed-*"))
    assert len(aside) == 1 and (aside[0] / "partial.txt").read_text() == "half"  # kept, not deleted
    assert (crashed / "done.json").is_file() and not (crashed / "partial.txt").exists()  # redone from scratch
    for path, content in finished.items():  # nothing finished was overwritten
        if crashed not in path.parents:
            assert path.read_bytes() == content
    # the report reads only finished runs, not the crashed copy
    assert sorted((run.method, run.seed) for run in collect(out)) == [
        ("Original", 0), ("Original", 1), ("demo_disp", 0), ("demo_disp", 1)]


def test_a_failing_run_leaves_no_done_json_and_stops(fake):
    runner, override, out = fake
    runner.fail_on = "demo_disp/seed0"
    with pytest.raises(RuntimeError, match="killed"):
        sweep.sweep([DISP, GA], [0], str(out), overrides=override)
    assert layout.is_finished(out / "original/seed0") and not layout.is_finished(out / "demo_disp/seed0")
    assert not (out / layout.LOCK).exists()  # the lock is released
    runner.fail_on = None
    runner.calls.clear()
    sweep.sweep([DISP, GA], [0], str(out), overrides=override)
    assert [spec.name for spec in runner.calls] == ["demo_disp/seed0", "demo_ga/seed0"]
    assert len(list(out.glob("demo_disp/seed0.crashed-*"))) == 1


def test_changed_settings_keep_a_finished_method_run_and_redo_the_original(fake, capsys, tmp_path):
    runner, override, out = fake
    config = tmp_path / "configs" / "demo_disp.yaml"
    config.parent.mkdir()
    shutil.copytree(REPO / "configs" / "protocols", config.parent / "protocols")  # its protocol and group files
    config.write_text(Path(DISP).read_text())
    sweep.sweep([str(config)], [0], str(out), overrides=override)
    config.write_text(Path(DISP).read_text() + "\n# changed\n")
    runner.calls.clear()
    capsys.readouterr()
    sweep.sweep([str(config)], [0], str(out), overrides=override)
    # the method run is kept (with a warning); so is the Original: only an evaluation, and it evaluates alike
    assert runner.calls == []
    printed = capsys.readouterr().out
    assert "skip demo_disp/seed0: finished — warning: it was made with a different config file content" in printed
    assert "skip original/seed0: finished\n" in printed
    # another config of the scenario (the Original was made with demo_disp's) that evaluates alike: kept too
    sweep.sweep([GA], [0], str(out), overrides=override)
    assert [spec.name for spec in runner.calls] == ["demo_ga/seed0"]
    # an evaluation that changed (here the held-out benchmark's draw): the Original, which method runs read, is redone
    config.write_text(Path(DISP).read_text() + "\ndata.evaluation_seed: 5\n")
    runner.calls.clear()
    capsys.readouterr()
    sweep.sweep([str(config)], [0], str(out), overrides=override)
    assert [spec.name for spec in runner.calls] == ["original/seed0"]
    printed = capsys.readouterr().out
    assert "original/seed0: made with a different evaluation settings; evaluated again" in printed
    assert "original/seed0: made with other settings, moved aside to" in printed
    assert len(list(out.glob("original/seed0.superseded-*"))) == 1  # the old one kept aside, not overwritten
    assert not list(out.glob("original/seed0.crashed-*"))  # finished, not crashed: named for why it moved
    from faceunlearn.experiments.layout import finished_runs
    assert not any("superseded" in str(path) for path in finished_runs(out))  # no report reads it
    # the protocol it includes, and the group files that protocol names, are part of its content too
    data_file = config.parent / "protocols" / "demo_data.yaml"
    before = sweep.config_sha256(config)
    data_file.write_text(data_file.read_text() + "batches_per_epoch: 7\n")
    assert sweep.config_sha256(config) != before


def test_display_overrides_do_not_change_a_runs_settings(fake, capsys):
    """A rerun without the progress bar (``faceunlearn unlearn --no-progress``) finds the finished runs."""
    from faceunlearn.experiments.plan import outcome_overrides

    runner, override, out = fake
    sweep.sweep([DISP], [0], str(out), overrides=override)
    runner.calls.clear()
    sweep.sweep([DISP], [0], str(out), overrides=[*override, "--trainer.enable_progress_bar", "false",
                                                  "--trainer.enable_model_summary=false"])
    assert runner.calls == []  # nothing redone
    assert outcome_overrides(["--a", "1", "--trainer.enable_progress_bar", "false", "--b=2"]) == ["--a", "1", "--b=2"]
    assert outcome_overrides(["--data.seed", "3"]) == ["--data.seed", "3"]  # a value that matters stays


def test_finetune_configs_are_left_out_and_the_original_comes_from_the_finetune_config(fake, monkeypatch, tmp_path, capsys):
    runner, override, out = fake
    checkpoint = tmp_path / "ft/last.ckpt"
    monkeypatch.setattr(sweep, "ensure_original", lambda config, overrides: checkpoint)
    sweep.sweep([FINETUNE, DISP], [3], str(out), finetune_config=FINETUNE)
    assert [spec.name for spec in runner.calls] == ["original/seed3", "demo_disp/seed3"]
    assert all(_arg(spec, "--model.init_args.init_weights") == str(checkpoint) for spec in runner.calls)
    assert "not a method run" in capsys.readouterr().out


def test_retrain_runs_once_per_seed_with_the_finetune_recipe_and_the_methods_benchmarks(fake, monkeypatch, tmp_path):
    runner, override, out = fake
    checkpoint = tmp_path / "ft/last.ckpt"
    monkeypatch.setattr(sweep, "ensure_original", lambda config, overrides: checkpoint)
    with pytest.raises(SystemExit, match="--retrain needs --finetune-config"):
        sweep.sweep([DISP], [0], str(out), overrides=override, retrain=True)
    sweep.sweep([DISP], [0, 1], str(out), finetune_config=FINETUNE, finetune_overrides=["--trainer.max_epochs", "1"], retrain=True)
    assert [spec.name for spec in runner.calls] == ["original/seed0", "retrain/seed0", "original/seed1", "retrain/seed1",
                                                    "demo_disp/seed0", "demo_disp/seed1"]
    for spec in (spec for spec in runner.calls if spec.kind == "retrain"):
        train = spec.train_args
        assert train[:2] == ["--config", FINETUNE] and "--trainer.max_epochs" in train  # the Original's recipe ...
        assert _arg_of(train, "--model.class_path") == "faceunlearn.methods.Retrain"  # ... without the forget set
        assert _arg_of(train, "--data.seed") == str(spec.seed) == _arg(spec, "--data.seed")
        # the Original's randomness (the config's seed_everything, as `faceunlearn retrain`), not forget set K's:
        # Retrain K differs from the Original only by D_f
        assert "--seed_everything" not in train and spec.settings["retrain_seed"] == "the Original's"
        assert _arg_of(train, "--checkpoint.dirpath") == str(spec.run_dir / "checkpoints")  # inside its run folder
        assert spec.args[:2] == ["--config", DISP]  # evaluated with the method configs' benchmarks
        assert _arg(spec, "--model.init_args.init_weights") == str(spec.run_dir / "checkpoints/last.ckpt")


def test_audit_runs_audits_each_finished_method_run_once_against_its_seeds_retrain(fake, monkeypatch, tmp_path):
    runner, override, out = fake
    monkeypatch.setattr(sweep, "ensure_original", lambda config, overrides: tmp_path / "ft/last.ckpt")
    specs = sweep.sweep([DISP, GA], [0, 1], str(out), finetune_config=FINETUNE, retrain=True)
    calls = []

    def fake_audit(config, ckpt, folder, retrain, overrides, references=None, relearn_lrs="default"):
        calls.append((config, ckpt, retrain, overrides, references))
        assert relearn_lrs == "default"  # the audit's own attacker unless the sweep names one
        if ckpt == "fail":
            raise ValueError("boom")
        folder.mkdir(parents=True)
        (folder / "audit.csv").write_text("method,seed,benchmark,metric,value\n")
        (folder / AUDIT_JSON).write_text(json.dumps({"audit_version": AUDIT_VERSION, "relearn_lrs": sorted(RELEARN_LRS),
                                                     "relearn_steps": list(RELEARN_STEPS)}))
        return []

    written = audit_waves.audit_runs(specs, audit=fake_audit)
    assert [folder.parent.name + "/" + folder.parent.parent.name for folder in written] == [
        "seed0/demo_disp", "seed0/demo_ga", "seed1/demo_disp", "seed1/demo_ga"]  # in the runs' order
    # two waves: the first audit of each forget set audits the Original and Retrain, then the next one of
    # that set copies them from it
    assert [(call[1], call[4]) for call in calls] == [
        (str(written[0].parent / "checkpoints/last.ckpt"), None), (str(written[2].parent / "checkpoints/last.ckpt"), None),
        (str(written[1].parent / "checkpoints/last.ckpt"), str(written[0])),
        (str(written[3].parent / "checkpoints/last.ckpt"), str(written[2]))]
    for config, ckpt, retrain, overrides, _ in calls:
        seed = ckpt.split("/seed")[1][0]
        assert retrain == str(out / f"retrain/seed{seed}/checkpoints/last.ckpt")
        assert ckpt.endswith(f"seed{seed}/checkpoints/last.ckpt") and _arg_of(overrides, "--data.seed") == seed
    assert audit_waves.audit_runs(specs, audit=fake_audit) == []  # audited runs are not audited again
    # a resumed sweep with another attacker stops before auditing anything: one table, one attacker
    with pytest.raises(SystemExit, match=r"demo_disp/seed0 used another relearning attacker \(relearn_lrs \[1e-05, 0.0001, 0.001\], not \[0.01\]\)"):
        audit_waves.audit_runs(specs, audit=fake_audit, relearn_lrs=[1e-2])
    assert audit_waves.audit_runs(specs, audit=fake_audit, relearn_lrs=list(reversed(RELEARN_LRS))) == []
    (written[1] / AUDIT_JSON).unlink()  # an audit from before audit.json: its attacker is unknown
    with pytest.raises(SystemExit, match="demo_ga/seed0 has no readable .*audit.json"):
        audit_waves.audit_runs(specs, audit=fake_audit)
    assert len(calls) == 4


def test_a_later_sweep_of_other_configs_copies_the_references_of_an_earlier_audit_in_its_out(fake, monkeypatch, tmp_path):
    """A sweep of one more config into an OUT whose forget sets are audited already: no Original audited again."""
    runner, override, out = fake
    monkeypatch.setattr(sweep, "ensure_original", lambda config, overrides: tmp_path / "ft/last.ckpt")
    calls = []

    def fake_audit(config, ckpt, folder, retrain, overrides, references=None, relearn_lrs="default"):
        calls.append((Path(ckpt).parent.parent.parent.name, references))
        folder.mkdir(parents=True)
        (folder / "audit.csv").write_text("method,seed,benchmark,metric,value\n")
        (folder / AUDIT_JSON).write_text(json.dumps({"config": config}))
        return []

    audit_waves.audit_runs(sweep.sweep([DISP], [0], str(out), finetune_config=FINETUNE, retrain=True), audit=fake_audit)
    audit_waves.audit_runs(sweep.sweep([GA], [0], str(out), finetune_config=FINETUNE, retrain=True), audit=fake_audit)
    assert calls == [("demo_disp", None), ("demo_ga", str(out / "demo_disp/seed0/audit"))]
    # an earlier audit made under another evaluation is no reference
    (out / "demo_disp/seed0/audit" / AUDIT_JSON).write_text(json.dumps({"config": str(tmp_path / "gone.yaml")}))
    shutil.rmtree(out / "demo_ga/seed0/audit")
    audit_waves.audit_runs(sweep.sweep([GA], [0], str(out), finetune_config=FINETUNE, retrain=True), audit=fake_audit)
    assert calls[-1] == ("demo_ga", None)


def test_audits_go_through_the_launcher_in_two_waves_and_a_failure_stops_them(fake, monkeypatch, tmp_path):
    runner, override, out = fake
    monkeypatch.setattr(sweep, "ensure_original", lambda config, overrides: tmp_path / "ft/last.ckpt")
    specs = sweep.sweep([DISP, GA], [0, 1], str(out), finetune_config=FINETUNE, retrain=True)
    waves, calls = [], []

    def fake_audit(config, ckpt, folder, retrain, overrides, references=None, relearn_lrs="default"):
        calls.append(relearn_lrs)
        if "demo_ga/seed1" in ckpt:
            raise ValueError("boom")
        folder.mkdir(parents=True)
        (folder / "audit.csv").write_text("method,seed,benchmark,metric,value\n")
        return []

    def launcher(jobs):  # as faceunlearn.experiments.launch.processes hands back outcomes, in this process
        waves.append([job.name for job in jobs])
        for job in jobs:
            assert job.kind == "audit" and pickle.loads(pickle.dumps(job)) == job  # what a process or array task gets
            try:
                yield job, audit_waves.audit_one(job, fake_audit), 1.0
            except ValueError as error:
                yield job, error, 1.0

    with pytest.raises(RuntimeError, match=r"the audit of demo_ga/seed1 \(audit\) failed: boom"):
        audit_waves.audit_runs(specs, relearn_lrs=[3e-6, 3e-5, 3e-4], launcher=launcher)
    assert waves == [["demo_disp/seed0 (audit)", "demo_disp/seed1 (audit)"], ["demo_ga/seed0 (audit)", "demo_ga/seed1 (audit)"]]
    assert calls == [(3e-6, 3e-5, 3e-4)] * 4  # the sweep's attacker for every audit
    assert (out / "demo_ga/seed0/audit/audit.csv").is_file() and not (out / "demo_ga/seed1/audit").exists()


def test_missing_original_and_other_sweeps_are_refused(fake, tmp_path):
    runner, override, out = fake
    with pytest.raises(SystemExit, match="--finetune-config"):
        sweep.sweep([DISP], [0], str(out), overrides=["--model.init_args.init_weights", str(tmp_path / "absent.ckpt")])
    (out).mkdir(parents=True, exist_ok=True)
    (out / layout.LOCK).write_text(json.dumps({"pid": 1, "host": "another-host", "since": "now"}))
    with pytest.raises(SystemExit, match="another sweep"):
        sweep.sweep([DISP], [0], str(out), overrides=override)
    assert runner.calls == []


# ---------------------------------------------------------------------------------------- real runs
@pytest.mark.slow
def test_tiny_real_sweep(tmp_path, random_packed, capsys):
    """1 method × 2 forget sets (+ Retrain) on tiny noise data, then a second invocation that skips everything."""
    data = ["--data.root", str(random_packed.root), "--data.synthetic", "null", "--data.eval_retain_identities", "4",
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
    # the finetune recipe draws the methods' forget sets (8 identities) so that Retrain leaves out the same people
    finetune = [*data, "--data.num_forget_identities", "8", "--trainer.max_epochs", "1", "--checkpoint.dirpath", str(tmp_path / "original"),
                "--trainer.logger.init_args.save_dir", str(tmp_path / "logs")]
    method = [*data, "--data.num_forget_identities", "8", "--data.batch_size", "16",
              "--data.batches_per_epoch", "2", "--trainer.max_epochs", "1"]
    out = tmp_path / "sweep"
    specs = sweep.sweep([DISP], [0, 1], str(out), FINETUNE, method, finetune, retrain=True)
    assert [spec.name for spec in specs] == ["original/seed0", "retrain/seed0", "demo_disp/seed0",
                                             "original/seed1", "retrain/seed1", "demo_disp/seed1"]
    done = {spec.name: layout.read_done(spec.run_dir) for spec in specs}
    assert done["demo_disp/seed0"]["method"] == "Dispersion" and done["demo_disp/seed0"]["global_step"] == 2
    forget_sets = [done[f"demo_disp/seed{k}"]["forget_identities"] for k in (0, 1)]
    assert len(forget_sets[0]) == 8 and forget_sets[0] != forget_sets[1]  # each seed its own forget set
    assert done["original/seed0"]["forget_identities"] == forget_sets[0]
    assert done["original/seed0"]["global_step"] == 0 and done["original/seed0"]["evaluations"] == 1
    # Retrain: trained without forget set K in its own folder, then evaluated on forget set K
    for k in (0, 1):
        assert done[f"retrain/seed{k}"]["method"] == "Retrain" and done[f"retrain/seed{k}"]["train_seconds"] > 0
        assert done[f"retrain/seed{k}"]["forget_identities"] == forget_sets[k]
        assert (out / f"retrain/seed{k}/checkpoints/last.ckpt").is_file()
    assert done["demo_disp/seed0"]["evaluations"] == 2  # step 0 (the Original) and the end
    runs = {(run.method, run.seed): run.metrics for run in collect(out)}
    assert runs["Original", 0]["forget", "mAP"] != runs["Original", 1]["forget", "mAP"]
    assert ("retain_extended", "mAP") in runs["Dispersion", 1]  # every metric is kept
    assert runs["Retrain", 0]["forget", "mAP"] != runs["Original", 0]["forget", "mAP"]  # another model, same benchmark
    for spec in specs:
        assert list(spec.run_dir.glob("events.out.tfevents.*")), spec.run_dir  # TensorBoard writes into the run dir
        assert (spec.run_dir / "config.yaml").is_file()
    assert (out / "demo_disp/seed0/checkpoints/last.ckpt").is_file()
    capsys.readouterr()
    sweep.sweep([DISP], [0, 1], str(out), FINETUNE, method, finetune, retrain=True)
    printed = capsys.readouterr().out
    assert "6 finished, 0 to run" in printed and "run 1/" not in printed


def test_an_unfinished_original_is_resumed_and_a_finished_one_reused(tmp_path, monkeypatch):
    import faceunlearn.cli

    checkpoint = tmp_path / "ft/last.ckpt"
    checkpoint.parent.mkdir()
    checkpoint.write_bytes(b"ckpt")
    fits = []

    class Fake:
        def __init__(self, args, run):
            trainer = type("T", (), {"checkpoint_callback": type("C", (), {"dirpath": str(checkpoint.parent)})()})()
            trainer.fit = lambda model, data, ckpt_path=None, weights_only=None: fits.append(ckpt_path) or weights_only
            self.trainer, self.model, self.datamodule = trainer, None, None

    monkeypatch.setattr(faceunlearn.cli, "cli_main", Fake)
    overrides = ["--checkpoint.dirpath", str(checkpoint.parent)]  # demo_finetune.yaml: max_epochs 6
    monkeypatch.setattr(sweep, "_checkpoint_epoch", lambda path: 5)
    assert sweep.ensure_original(FINETUNE, overrides) == checkpoint and fits == []
    monkeypatch.setattr(sweep, "_checkpoint_epoch", lambda path: 2)  # killed after epoch 3 of 6
    assert sweep.ensure_original(FINETUNE, overrides) == checkpoint and fits == [checkpoint]
    checkpoint.unlink()
    sweep.ensure_original(FINETUNE, overrides)
    assert fits == [checkpoint, None]
    # a relative dirpath: the same absolute path whether the Original was found or trained (runs record it)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sweep, "_checkpoint_epoch", lambda path: 5)
    assert sweep.ensure_original(FINETUNE, ["--checkpoint.dirpath", "ft"]) == checkpoint.resolve()
    assert sweep.ensure_original(FINETUNE, ["--checkpoint.dirpath", "ft"]).is_absolute()


def test_compare_is_a_one_seed_sweep_with_tables_1_and_2(fake, monkeypatch, capsys):
    from faceunlearn.commands import compare

    runner, override, out = fake
    checkpoint = out.parent / "ft/last.ckpt"
    monkeypatch.setattr(sweep, "ensure_original", lambda config, overrides: checkpoint)
    compare.main(["--configs", DISP, GA, "--finetune-config", FINETUNE, "--out", str(out), "--override", "--trainer.max_epochs 2"])
    assert [spec.name for spec in runner.calls] == ["original/seed0", "demo_disp/seed0", "demo_ga/seed0"]  # data.seed of demo_disp
    assert all(_arg(spec, "--trainer.max_epochs") == "2" for spec in runner.calls if spec.kind == "method")
    header, *lines = (out / "results.csv").read_text().splitlines()
    assert header == "method,seed,benchmark,metric,value" and len(lines) == 9
    markdown = (out / "results.md").read_text()
    assert "Table 1: base retrieval" in markdown and "Table 2: cluster compactness" in markdown and "Table 3" not in markdown
    assert "| Original | 0 | 50.00 | n/a (missing) |" in markdown and "±" not in markdown
    printed = capsys.readouterr().out
    assert markdown.split("\n", 2)[2].strip() in printed and "Time per run" in printed
    runner.calls.clear()
    compare.main(["--configs", DISP, GA, "--finetune-config", FINETUNE, "--out", str(out), "--override", "--trainer.max_epochs 2", "--seed", "1"])
    assert [spec.name for spec in runner.calls] == ["original/seed1", "demo_disp/seed1", "demo_ga/seed1"]


def test_each_scenario_has_its_own_original(fake, monkeypatch, tmp_path):
    """The finetune config's Original serves its scenario; the VGGFace2 scenario keeps its own start weights."""
    runner, override, out = fake
    backbone = tmp_path / "backbone.pth"
    backbone.write_bytes(b"glint")
    vgg = tmp_path / "disp_vggface2.yaml"
    vgg.write_text((REPO / "configs/disp_vggface2.yaml").read_text().replace(
        "$FACEUNLEARN_WEIGHTS/glint360k_cosface_r50_fp16_0.1/backbone.pth", str(backbone)))
    checkpoint = tmp_path / "ft/last.ckpt"
    monkeypatch.setattr(sweep, "ensure_original", lambda config, overrides: checkpoint)
    specs = sweep.sweep([DISP, str(vgg)], [0], str(out), finetune_config=FINETUNE)
    assert [spec.name for spec in specs] == ["original/seed0", "original_vggface2/seed0", "demo_disp/seed0", "disp_vggface2/seed0"]
    starts = {spec.name: spec.init_weights for spec in specs}
    assert starts == {"original/seed0": str(checkpoint), "demo_disp/seed0": str(checkpoint),
                      "original_vggface2/seed0": str(backbone), "disp_vggface2/seed0": str(backbone)}
    assert "--model.init_args.init_weights" not in specs[3].args  # its config's own weights
    assert layout.read_done(out / "original_vggface2/seed0")["scenario"] == "vggface2"


def test_reevaluate_reads_a_finished_sweep_and_keeps_its_training_times(fake, monkeypatch):
    from faceunlearn.experiments import reevaluate

    runner, override, out = fake
    sweep.sweep([DISP, GA], [0, 1], str(out), overrides=override)
    for spec in runner.calls:
        if spec.kind == "method":  # the fake runner trains nothing: give each run the checkpoint a fit leaves
            (spec.run_dir / layout.CHECKPOINTS).mkdir()
            (spec.run_dir / layout.CHECKPOINTS / "last.ckpt").write_text("weights")
    import shutil

    shutil.copytree(out / "original/seed0", out / "partial_sweep/original/seed0")  # a second sweep's copy of one run
    before = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
    again = FakeRunner()
    monkeypatch.setattr(reevaluate, "run_one", again)
    new = out.parent / "new"
    reevaluate.reevaluate(str(out), str(new), override)
    assert sorted(spec.name for spec in again.calls) == sorted(spec.name for spec in runner.calls)  # the copy: once
    for spec in again.calls:
        old_done = layout.read_done(out / spec.stem / f"seed{spec.seed}")
        done = layout.read_done(spec.run_dir)
        assert done["seconds"] == old_done["seconds"] and "evaluation_seconds" in done
        assert done["reevaluated_from"] == str(out / spec.stem / f"seed{spec.seed}")
        assert _arg(spec, "--data.seed") == str(spec.seed)
        if spec.kind == "reevaluate":
            assert spec.ckpt_path == str(out / spec.stem / f"seed{spec.seed}" / layout.CHECKPOINTS / "last.ckpt")
        else:
            assert spec.kind == "original" and spec.ckpt_path is None
    assert {path: path.read_bytes() for path in out.rglob("*") if path.is_file()} == before  # the old sweep is only read
    assert len(collect(new)) == 6
    with pytest.raises(SystemExit, match="outside the sweep"):
        reevaluate.reevaluate(str(out), str(out / "inside"), override)


def test_an_audit_never_reads_its_runs_step_0_numbers():
    # a run's arguments name the Original's step-0 CSV; once a protocol gains a benchmark after the runs, that CSV
    # no longer parses, and an audit (which never reads it) must not fail on it
    args = ["--data.seed", "0", "--evaluation.start_results", "/o/retrieval_metrics.csv", "--evaluation.start_results=/x.csv",
            "--trainer.max_epochs", "2"]
    assert audit_waves.audit_overrides(args) == ["--data.seed", "0", "--trainer.max_epochs", "2"]
