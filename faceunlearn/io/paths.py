"""Dataset and weight locations from configs: ``$VAR`` expansion with a clear error when unset."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path


class UnsetPathVariableError(ValueError):
    """A configured path names an environment variable that is not set."""


def expand_path(value: str | os.PathLike, field: str) -> Path:
    """``value`` with ``$VAR`` / ``${VAR}`` and ``~`` expanded.

    Configs for real data point at ``$FACEUNLEARN_DATA`` and ``$FACEUNLEARN_WEIGHTS``; a path that
    still names a variable after expansion is an error naming the variable and the config field
    (``field``) to pass on the command line instead.
    """
    expanded = os.path.expanduser(os.path.expandvars(str(value)))
    unset = re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", expanded)
    if unset:
        raise UnsetPathVariableError(
            f"{field} = {str(value)!r} uses environment variable(s) {', '.join(sorted(set(unset)))} that are not set; "
            f"export them (e.g. export {unset[0]}=/data/faces) or pass the path on the command line (--{field} PATH)"
        )
    return Path(expanded)


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's content (start weights are identified by it in checkpoints and sweeps)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
