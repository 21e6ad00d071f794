"""Forgotten people's names as salted SHA-256 hashes: what a run's config, hyper-parameters and the one-command
request record instead of a name.

A token is ``salted-sha256:<salt>:<digest>`` with ``digest = sha256(salt bytes + UTF-8 name)``. Only someone who
already holds the name can match a token (``match``): the pack that trained the run (its ``meta.json`` names every
person) resolves it, so a run resumes and an audit checks it; the run's own files never hold the name. Unlike a pack
id, a token still names the same person after the pack is rebuilt with more people. The mapping token → name is
never written: ask for it with the names you hold (``names_of``)."""
from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Sequence

PREFIX = "salted-sha256:"


def new_salt() -> str:
    """A fresh random salt (hex): one per run, so the same person gets unrelated tokens in two runs."""
    return secrets.token_hex(16)


def digest(name: str, salt: str) -> str:
    return hashlib.sha256(bytes.fromhex(salt) + str(name).encode("utf-8")).hexdigest()


def token(name: str, salt: str) -> str:
    """The token that stands for ``name``."""
    return f"{PREFIX}{salt}:{digest(name, salt)}"


def is_token(entry) -> bool:
    return isinstance(entry, str) and entry.startswith(PREFIX)


def _parts(entry: str) -> tuple[str, str]:
    salt, _, value = entry[len(PREFIX):].partition(":")
    try:
        bytes.fromhex(salt)
    except ValueError:
        raise ValueError(f"{entry!r} is not a salted name hash ({PREFIX}<hex salt>:<hex digest>)") from None
    if len(value) != 64:
        raise ValueError(f"{entry!r} is not a salted name hash ({PREFIX}<hex salt>:<hex digest>)")
    return salt, value


def match(entry: str, names: Iterable[str]) -> str | None:
    """The one name of ``names`` that ``entry`` stands for, or None."""
    salt, value = _parts(entry)
    found = [name for name in names if digest(name, salt) == value]
    return found[0] if found else None


def names_of(tokens: Sequence[str], candidates: Iterable[str]) -> dict[str, str | None]:
    """Token → name among ``candidates`` (the names you hold), None where none matches: the mapping on request."""
    candidates = list(candidates)
    return {entry: match(entry, candidates) for entry in tokens}


def salted(entries: Sequence[int | str], salt: str | None = None) -> list[int | str]:
    """``entries`` with every plain name replaced by its token (one salt for all); ids and tokens stay as they are."""
    salt = salt or new_salt()
    return [token(entry, salt) if isinstance(entry, str) and not is_token(entry) else entry for entry in entries]
