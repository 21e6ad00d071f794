"""Reading annotation files: locating them, and splitting their lines with file:line error messages.

Every reader in ``faceunlearn.prepare.datasets`` goes through these helpers, so a malformed line
always stops the run with ``<file>:<line>: <what is wrong>`` rather than being skipped silently:
a bad annotation line usually means a truncated or mismatched download, which should be fixed,
not converted.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from faceunlearn.prepare.errors import PrepareError


def find_file(root: Path, name: str, folders: Sequence[str] = ("",)) -> Path | None:
    """The first ``root/<folder>/<name>`` that exists, or None."""
    for folder in folders:
        path = root / folder / name
        if path.is_file():
            return path
    return None


def require_file(root: Path, name: str, folders: Sequence[str], dataset: str, layout: str) -> Path:
    """Like ``find_file``, but a missing file stops with a message naming it and the expected layout."""
    path = find_file(root, name, folders)
    if path is None:
        places = ", ".join(str(root / folder / name) for folder in folders)
        raise PrepareError(f"{dataset}: annotation file {name} not found (looked for {places}).\nExpected layout:\n{layout}")
    return path


def require_folder(root: Path, names: Sequence[str], dataset: str, layout: str) -> Path:
    """The first existing folder ``root/<name>``; a missing one stops with the expected layout."""
    for name in names:
        if (root / name).is_dir():
            return root / name
    raise PrepareError(f"{dataset}: image folder {' or '.join(names)} not found in {root}.\nExpected layout:\n{layout}")


def split_lines(path: Path, skip: int = 0) -> Iterator[tuple[int, list[str]]]:
    """``(line number, whitespace-separated fields)`` of every non-blank line after the first ``skip``."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if number <= skip:
                continue
            fields = line.split()
            if fields:
                yield number, fields


def csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """``(line number, fields)`` of every non-blank row of a comma-separated file (quotes allowed)."""
    with open(path, encoding="utf-8", errors="replace", newline="") as handle:
        reader = csv.reader(handle, skipinitialspace=True)
        for fields in reader:
            fields = [field.strip() for field in fields]
            if any(fields):
                yield reader.line_num, fields


def malformed(path: Path, line: int, message: str) -> PrepareError:
    return PrepareError(f"{path}:{line}: {message}")


def parse_numbers(path: Path, line: int, fields: Sequence[str], what: str) -> np.ndarray:
    """Fields as float32, or a ``file:line`` error naming the field that is not a number."""
    try:
        values = np.array([float(field) for field in fields], dtype=np.float32)
    except ValueError:
        bad = next(field for field in fields if not _is_number(field))
        raise malformed(path, line, f"{what}: {bad!r} is not a number") from None
    if not np.isfinite(values).all():
        raise malformed(path, line, f"{what}: not finite ({' '.join(fields)})")
    return values


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def expect_fields(path: Path, line: int, fields: Sequence[str], count: int, example: str) -> None:
    if len(fields) != count:
        raise malformed(path, line, f"expected {count} fields like {example!r}, found {len(fields)}: {' '.join(fields)!r}")
