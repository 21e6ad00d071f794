"""Where a sweep's runs execute: each in its own process, N at once, or as a SLURM job array (submitit).

``execute`` in ``faceunlearn.experiments.sweep`` decides *what* runs (skip finished, redo crashed,
resume interrupted); a launcher only runs ``run_one`` for a list of runs and hands back each
``RunResult`` (or the error) with the seconds the run itself took:

* ``processes(jobs)``: every run in a fresh ``python -m faceunlearn.experiments.launch`` process (no
  state shared between fits: seeds, FAISS resources, CUDA caches), ``jobs`` at once. With CUDA
  devices visible, job slot k gets ``CUDA_VISIBLE_DEVICES`` = device ``k mod n``; on a CPU every
  process gets ``max(1, cores // jobs)`` threads (``OMP_NUM_THREADS``).
* ``submitit_array(folder, **slurm)``: one SLURM array task per run through submitit
  (``submitit.AutoExecutor``; tests use its ``local`` or ``debug`` cluster). submitit pickles
  the RunSpec to its folder and the job calls ``run_one``. Array tasks are independent: a failed one
  does not cancel the others.
"""
from __future__ import annotations

import json
import os
import pickle
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from faceunlearn.io.atomic import write_json_atomic

#: a launcher: runs → yields (run, RunResult or the exception, seconds the run took) as runs end
Launcher = Callable[[list], Iterator[tuple]]

SPEC_FILE = ".run_spec.pkl"
RESULT_FILE = ".run_result.json"


def _device_count() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:  # noqa: BLE001 - no CUDA build
        return 0


def slot_environment(slot: int, jobs: int, devices: int, cores: int | None = None) -> dict[str, str]:
    """Environment of job slot ``slot`` of ``jobs``: its GPU, or its share of the CPU cores."""
    if devices:
        return {"CUDA_VISIBLE_DEVICES": str(slot % devices)}
    cores = cores or os.cpu_count() or 1
    return {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS") or str(max(1, cores // jobs))}


def run_in_subprocess(spec, environment: dict[str, str] | None = None):
    """``run_one(spec)`` in a new interpreter; its output streams to ours, its RunResult comes back by file."""
    from faceunlearn.experiments.sweep import RunResult

    spec_path, result_path = spec.run_dir / SPEC_FILE, spec.run_dir / RESULT_FILE
    spec_path.write_bytes(pickle.dumps(spec))
    env = {**os.environ, **(environment or {})}
    completed = subprocess.run([sys.executable, "-m", "faceunlearn.experiments.launch", str(spec_path)], env=env)
    spec_path.unlink(missing_ok=True)
    if completed.returncode != 0 or not result_path.is_file():
        raise RuntimeError(f"{spec.name}: the run's process exited with {completed.returncode}")
    result = RunResult(**json.loads(result_path.read_text()))
    result_path.unlink()
    return result


def processes(jobs: int = 1) -> Launcher:
    """Each run in its own process, ``jobs`` at once (see the module doc)."""
    if jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {jobs}")

    def launch(specs):
        devices = _device_count()
        slots: queue.Queue[int] = queue.Queue()
        for slot in range(jobs):
            slots.put(slot)

        failed = threading.Event()

        def one(spec):
            if failed.is_set():  # set by the run that failed, in its own thread, before another run can start
                return spec, None, 0.0
            slot = slots.get()
            start, environment = time.perf_counter(), slot_environment(slot, jobs, devices)
            shown = " ".join(f"{key}={value}" for key, value in environment.items())
            print(f"[sweep] start {spec.name} in its own process (slot {slot}, {shown})", flush=True)
            try:
                outcome = run_in_subprocess(spec, environment)
            except Exception as error:  # noqa: BLE001 - reported by execute, per run
                outcome = error
                failed.set()
            finally:
                slots.put(slot)
            return spec, outcome, time.perf_counter() - start

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(one, spec) for spec in specs]
            for future in as_completed(futures):
                if future.cancelled():
                    continue
                spec, outcome, seconds = future.result()
                if outcome is not None:  # None: not started, because an earlier run failed
                    yield spec, outcome, seconds

    return launch


def _run_job(spec):
    """One array task: (RunResult, seconds)."""
    from faceunlearn.experiments import sweep

    start = time.perf_counter()
    result = sweep.run_one(spec)
    return result, time.perf_counter() - start


def submitit_array(folder: str | os.PathLike, cluster: str | None = None, **parameters) -> Launcher:
    """The runs as one submitit job array (SLURM; ``cluster="local"``/``"debug"`` run them here)."""
    try:
        import submitit
    except ImportError as error:
        raise SystemExit("faceunlearn sweep --launcher submitit needs submitit: pip install 'faceunlearn[cluster]'") from error

    def launch(specs):
        executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
        if parameters:
            executor.update_parameters(**parameters)
        jobs = executor.map_array(_run_job, specs)
        if jobs:
            print(f"[sweep] submitted {len(jobs)} runs as job array {jobs[0].job_id.split('_')[0]} (logs in {folder})", flush=True)
        for spec, job in zip(specs, jobs):
            try:
                result, seconds = job.result()
                yield spec, result, seconds
            except Exception as error:  # noqa: BLE001 - reported by execute, per run
                yield spec, error, 0.0

    return launch


def _main(spec_path: str) -> None:
    """The run process: load the RunSpec, run it, write its RunResult beside it."""
    import dataclasses

    from faceunlearn.experiments import sweep

    spec = pickle.loads(Path(spec_path).read_bytes())
    result = sweep.run_one(spec)
    write_json_atomic(spec.run_dir / RESULT_FILE, dataclasses.asdict(result))


if __name__ == "__main__":
    _main(sys.argv[1])
