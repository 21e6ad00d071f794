"""Sweep launchers: each run in its own process (N at once, one GPU or a share of the cores each) and a
submitit job array (its in-process ``debug`` cluster here); the sweep's guarantees hold with both."""

import threading
import time
from pathlib import Path

import pytest

from faceunlearn.experiments import launch, layout, sweep

from test_sweep import DISP, GA, FakeRunner

pytest.importorskip("submitit")


def test_slot_environment_spreads_devices_and_cores(monkeypatch):
    assert [launch.slot_environment(slot, 3, devices=2) for slot in range(3)] == [
        {"CUDA_VISIBLE_DEVICES": "0"}, {"CUDA_VISIBLE_DEVICES": "1"}, {"CUDA_VISIBLE_DEVICES": "0"}]
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert launch.slot_environment(0, 2, devices=0, cores=16) == {"OMP_NUM_THREADS": "8"}
    assert launch.slot_environment(1, 4, devices=0, cores=2) == {"OMP_NUM_THREADS": "1"}
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's choice wins
    assert launch.slot_environment(0, 2, devices=0, cores=16) == {"OMP_NUM_THREADS": "3"}
    with pytest.raises(ValueError, match="--jobs must be >= 1"):
        launch.processes(0)


class FakeProcess:
    """Stands in for run_in_subprocess: records each run's environment and how many run at once."""

    def __init__(self, fail_on=None, seconds=0.2, seconds_of=None):
        self.runner, self.lock = FakeRunner(fail_on), threading.Lock()
        self.seconds, self.seconds_of = seconds, seconds_of or {}
        self.environments, self.running, self.most_at_once = {}, 0, 0

    def __call__(self, spec, environment):
        with self.lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            self.environments[spec.name] = environment
        try:
            time.sleep(self.seconds_of.get(spec.name, self.seconds))
            return self.runner(spec)
        finally:
            with self.lock:
                self.running -= 1


def test_processes_run_n_at_once_with_one_slot_each(monkeypatch, tmp_path, start_weights_override, capsys):
    fake = FakeProcess()
    monkeypatch.setattr(launch, "run_in_subprocess", fake)
    monkeypatch.setattr(launch, "_device_count", lambda: 2)
    out = tmp_path / "out"
    specs = sweep.sweep([DISP, GA], [0, 1], str(out), overrides=start_weights_override, launcher=launch.processes(2))
    assert fake.most_at_once == 2
    assert sorted(fake.environments) == sorted(spec.name for spec in specs)
    assert {env["CUDA_VISIBLE_DEVICES"] for env in fake.environments.values()} == {"0", "1"}
    assert all(layout.is_finished(spec.run_dir) for spec in specs)
    printed = capsys.readouterr().out
    assert "run 6/6 done" in printed and "start demo_ga/seed1 in its own process" in printed
    # a second sweep skips everything; the lock was released
    fake.environments.clear()
    sweep.sweep([DISP, GA], [0, 1], str(out), overrides=start_weights_override, launcher=launch.processes(2))
    assert fake.environments == {} and not (out / layout.LOCK).exists()


def test_processes_stop_starting_runs_after_a_failure(monkeypatch, tmp_path, start_weights_override):
    fake = FakeProcess(fail_on="original/seed0", seconds=0.5, seconds_of={"original/seed0": 0.05})
    monkeypatch.setattr(launch, "run_in_subprocess", fake)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="killed"):
        sweep.sweep([DISP, GA], [0, 1], str(out), overrides=start_weights_override, launcher=launch.processes(2))
    started = set(fake.environments)
    # the Originals run first (the method runs read their step-0 numbers): nothing else started after the failure
    assert started == {"original/seed0", "original/seed1"}
    assert layout.is_finished(out / "original/seed1")  # the run already going was kept
    assert not layout.is_finished(out / "original/seed0") and not (out / layout.LOCK).exists()
    fake.runner.fail_on = None
    fake.environments.clear()
    sweep.sweep([DISP, GA], [0, 1], str(out), overrides=start_weights_override, launcher=launch.processes(2))
    assert sorted(fake.environments) == ["demo_disp/seed0", "demo_disp/seed1", "demo_ga/seed0", "demo_ga/seed1", "original/seed0"]
    assert len(list(out.glob("original/seed0.crashed-*"))) == 1
    assert not list(out.glob("demo_ga/seed0.crashed-*"))  # a run that never started left no folder to move aside


def test_submitit_job_array_runs_every_run_and_keeps_the_others_after_a_failure(monkeypatch, tmp_path, start_weights_override):
    import pdb

    runner = FakeRunner(fail_on="demo_disp/seed0")
    monkeypatch.setattr(sweep, "run_one", runner)  # submitit's debug cluster runs the array tasks in this process
    monkeypatch.setattr(pdb, "post_mortem", lambda *args: None)  # ... and opens pdb on a failed one
    out = tmp_path / "out"
    launcher = launch.submitit_array(tmp_path / "submitit", cluster="debug")
    with pytest.raises(RuntimeError, match="killed"):
        sweep.sweep([DISP, GA], [0], str(out), overrides=start_weights_override, launcher=launcher)
    assert sorted(spec.name for spec in runner.calls) == ["demo_disp/seed0", "demo_ga/seed0", "original/seed0"]
    assert layout.is_finished(out / "demo_ga/seed0") and not layout.is_finished(out / "demo_disp/seed0")
    runner.fail_on, runner.calls[:] = None, []
    sweep.sweep([DISP, GA], [0], str(out), overrides=start_weights_override, launcher=launcher)
    assert [spec.name for spec in runner.calls] == ["demo_disp/seed0"]  # only the failed run is redone
    done = layout.read_done(out / "demo_disp/seed0")
    assert done["seed"] == 0 and done["seconds"] >= 0


def test_the_sweep_command_parses_launchers(monkeypatch, tmp_path):
    from faceunlearn.commands import sweep as command

    seen = {}
    monkeypatch.setattr(sweep, "sweep", lambda *args, launcher=None, retrain=False, audit=False, relearn_lrs=None:
                        seen.update(launcher=launcher, relearn_lrs=relearn_lrs))
    command.main(["--configs", DISP, "--seeds", "0", "--out", str(tmp_path), "--jobs", "3"])
    assert seen.pop("launcher").__qualname__.startswith("processes")
    command.main(["--configs", DISP, "--seeds", "0", "--out", str(tmp_path), "--launcher", "submitit", "--slurm-partition", "gpu"])
    assert seen.pop("launcher").__qualname__.startswith("submitit_array")
    command.main(["--configs", DISP, "--out", str(tmp_path), "--audit", "--relearn-lrs", "1e-4", "1e-3"])
    assert seen.pop("relearn_lrs") == [1e-4, 1e-3]


@pytest.mark.slow
def test_a_real_run_in_its_own_process_returns_its_result_by_file(tmp_path, random_packed):
    """The subprocess path itself (python -m faceunlearn.experiments.launch): the Original's evaluation
    of a tiny random-init model, its RunResult back through the run folder, the hand-over files removed."""
    run_dir = tmp_path / "original/seed0"
    run_dir.mkdir(parents=True)
    args = sweep.run_args(DISP, 0, run_dir, ["--data.root", str(random_packed.root), "--data.synthetic", "null",
                                             "--data.eval_retain_identities", "4", "--data.num_forget_identities", "8",
                                             "--trainer.enable_progress_bar", "false"], "null")
    spec = sweep.RunSpec("original", DISP, "original", 0, "synthetic", run_dir, args, None)
    result = launch.run_in_subprocess(spec, {"OMP_NUM_THREADS": "1"})
    assert result.method == "Original" and result.info["global_step"] == 0 and len(result.info["forget_identities"]) == 8
    assert 0 <= result.metrics["forget/mAP"] <= 1 and "forget/chance_mAP" in result.metrics
    assert not (run_dir / launch.SPEC_FILE).exists() and not (run_dir / launch.RESULT_FILE).exists()
