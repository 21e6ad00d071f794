"""The configs shipped inside the package (``faceunlearn.configs``; in the repository, ``configs/``).

``--config`` (and ``--configs``, ``--finetune-config``) of every command takes a path, or the name of a shipped
config with or without ``.yaml`` (``sface_glint_disp``, ``protocols/own_data.yaml``): a path that exists wins."""
from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

#: the options whose values name config files
CONFIG_OPTIONS = ("--config", "--configs", "--finetune-config")


def configs_folder() -> Path:
    """The folder of the shipped configs (a real folder: jsonargparse resolves their relative includes on disk)."""
    return Path(str(files("faceunlearn.configs"))).resolve()


def shipped_config(value: str | os.PathLike) -> Path | None:
    """The shipped config that ``value`` names, if ``value`` is no existing path and such a config exists."""
    value = str(value)
    if not value or Path(value).exists() or Path(value).is_absolute():
        return None
    name = value.removeprefix("configs/")
    for candidate in (name, f"{name}.yaml"):
        path = configs_folder() / candidate
        if path.suffix == ".yaml" and path.is_file():
            return path
    return None


def resolve_config_arguments(words: list[str]) -> list[str]:
    """``words`` with each config option's values that name a shipped config replaced by its path."""
    resolved, option = [], None
    for word in words:
        if word.startswith("--"):
            name, equals, value = word.partition("=")
            option = name if name in CONFIG_OPTIONS and not equals else None
            if equals and name in CONFIG_OPTIONS:
                word = f"{name}={shipped_config(value) or value}"
        elif option is not None:
            word = str(shipped_config(word) or word)
            option = option if option != "--config" else None  # --configs takes several
        resolved.append(word)
    return resolved
