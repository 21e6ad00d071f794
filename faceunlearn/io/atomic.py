"""Outputs that appear atomically: a reader sees the old file, no file, or the complete new one.

Every report, CSV, JSON record, figure and history rewrite goes through here: write a hidden
temporary file beside the target, flush it to disk, ``os.replace`` it over the target (atomic on
POSIX and Windows within one file system).
"""
from __future__ import annotations

import contextlib
import csv
import json
import os
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield temporary
        with open(temporary, "rb+") as handle:  # on disk before the rename
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as temporary:
        with open(temporary, "w", newline="") as handle:
            handle.write(text)


def write_json_atomic(path: str | os.PathLike, data, indent: int = 2) -> None:
    write_text_atomic(path, json.dumps(data, indent=indent, sort_keys=False) + "\n")


def write_csv_atomic(path: str | os.PathLike, rows: list[dict], fieldnames) -> None:
    with atomic_path(path) as temporary:
        with open(temporary, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(fieldnames))
            writer.writeheader()
            writer.writerows(rows)
