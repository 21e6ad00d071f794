"""The run-directory contract shared by ``faceunlearn sweep`` (writer) and ``faceunlearn report`` (reader).

A sweep's output folder ``OUT`` holds one folder per run::

    OUT/
      .sweep.lock                 while a sweep runs in OUT (pid, host); one sweep per OUT at a time
      original/seed<K>/           the Original model evaluated on forget set K (main protocol:
                                  synthetic demo or CelebA)
      original_<scenario>/seed<K>/  another scenario's Original (e.g. original_vggface2: Table 4)
      <config stem>/seed<K>/      one unlearning run: config <config stem>.yaml, forget set K
        config.yaml               the resolved LightningCLI config (written by LightningCLI)
        events.out.tfevents.*     TensorBoard: the TensorBoard logger's log_dir IS the run dir
                                  (save_dir=<run>, name="", version="")
        checkpoints/              ModelCheckpoint (checkpoint.dirpath), incl. last.ckpt
        results.csv               the final evaluation, tidy: method,seed,benchmark,metric,value
                                  (every metric the callback computed, values as fractions)
        done.json                 written LAST, atomically: the run is finished
      <run>.crashed-<timestamp>/  a run found without done.json (killed or crashed), moved aside
      <run>.superseded-<timestamp>/  an Original made with other settings, moved aside when redone
                                  by the next sweep, which then redoes the run from scratch

Other files in a run folder (e.g. ``retrieval_metrics.csv``, ``history.csv``, ``embeddings/`` of
the evaluation callback) are not part of this contract: the report reads only ``done.json`` and
``results.csv``.

``done.json`` holds::

    {"config": "configs/demo_disp.yaml",  # the method config (for an Original: the config whose
                                          #  data and evaluation settings it was evaluated with)
     "method": "Dispersion",              # model class name; "Original" for the Original
     "seed": 0,                           # forget-set seed: --data.seed K and --seed_everything K
     "scenario": "synthetic",             # the config's data.dataset, or "synthetic" when unset
     "seconds": 54.9,                     # wall time of the run (training + evaluations)
     "finished_at": "2025-01-01T12:00:00+00:00",
     "kind": "method" | "original",
     "init_weights": "...",               # the Original checkpoint the run started from
     "settings": {...},                   # what the run was made with; a later sweep warns when
                                          #  its own settings for the run differ
     "global_step": 400, "forget_identities": [...]}

A run folder is *finished* iff it holds ``done.json``; nothing writes into a finished run again.
"""

from __future__ import annotations

import json
import os
import socket
import time
from datetime import datetime, timezone
from pathlib import Path

from faceunlearn.io.atomic import write_json_atomic, write_text_atomic  # noqa: F401 (re-exported)
from faceunlearn.io.tidy import read_results  # noqa: F401 (re-exported: run folders' results.csv)


DONE = "done.json"
RESULTS = "results.csv"
CHECKPOINTS = "checkpoints"
#: ``<run>/audit/``: the run's ``faceunlearn audit`` (``sweep --audit``): audit.csv, audit.md, roc.png
AUDIT = "audit"
LOCK = ".sweep.lock"
ORIGINAL = "original"
CRASHED = ".crashed-"
SUPERSEDED = ".superseded-"
#: the markers of folders moved aside (``move_aside``): never read as finished runs
MOVED_ASIDE = (CRASHED, SUPERSEDED)
#: scenarios whose Original lives in ``original/``; any other scenario's in ``original_<scenario>/``
MAIN_SCENARIOS = ("synthetic", "celeba")


def original_stem(scenario: str) -> str:
    return ORIGINAL if scenario in MAIN_SCENARIOS else f"{ORIGINAL}_{scenario}"


#: the Retrain reference's runs (``sweep --retrain``): ``retrain/seed<K>`` (``retrain_<scenario>`` outside the main protocol)
RETRAIN = "retrain"


def retrain_stem(scenario: str) -> str:
    return RETRAIN if scenario in MAIN_SCENARIOS else f"{RETRAIN}_{scenario}"


def run_dir(out: str | os.PathLike, stem: str, seed: int) -> Path:
    return Path(out) / stem / f"seed{seed}"


def is_finished(path: str | os.PathLike) -> bool:
    return (Path(path) / DONE).is_file()


def read_done(path: str | os.PathLike) -> dict:
    return json.loads((Path(path) / DONE).read_text())


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")




def move_aside(path: str | os.PathLike, marker: str = CRASHED) -> Path:
    """Rename a run folder to ``<run><marker><timestamp>`` (``.crashed-``: unfinished; ``.superseded-``: made with
    other settings), never overwriting anything."""
    path = Path(path)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}{marker}{stamp}")
    suffix = 1
    while target.exists():
        target = path.with_name(f"{path.name}{marker}{stamp}-{suffix}")
        suffix += 1
    path.rename(target)
    return target


def finished_runs(root: str | os.PathLike) -> list[Path]:
    """Every finished run folder under ``root`` (any depth), sorted; folders moved aside are ignored."""
    return sorted(done.parent for done in Path(root).rglob(DONE)
                  if not any(marker in str(done.parent.relative_to(root)) for marker in MOVED_ASIDE))


class SweepLock:
    """``OUT/.sweep.lock``: refuses a second sweep in the same folder while one is alive.

    A sweep moves unfinished run folders aside, which would break a run another sweep is making.
    A lock left by a dead process on this host is taken over.
    """

    def __init__(self, out: str | os.PathLike):
        self.path = Path(out) / LOCK

    def __enter__(self) -> "SweepLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": now_iso()}
        for _ in range(50):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                holder = self._holder()
                if holder is None:  # being written right now
                    time.sleep(0.1)
                    continue
                if holder.get("host") == me["host"] and not _alive(holder.get("pid")):
                    self.path.unlink(missing_ok=True)  # stale: its sweep died
                    continue
                raise SystemExit(
                    f"another sweep (pid {holder.get('pid')} on {holder.get('host')}, since {holder.get('since')}) "
                    f"is running in {self.path.parent}; wait for it, or remove {self.path} if it is gone"
                )
            with os.fdopen(fd, "w") as handle:
                json.dump(me, handle)
            return self
        raise SystemExit(f"cannot take the lock {self.path}; remove it if no sweep is running in {self.path.parent}")

    def _holder(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {"pid": None, "host": socket.gethostname()}  # released meanwhile: retry
        except (OSError, ValueError):
            return None

    def __exit__(self, *exc) -> None:
        self.path.unlink(missing_ok=True)


def _alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
