"""Read a config file the way ``faceunlearn fit --config`` composes it, without building the CLI.

Our configs compose from files with jsonargparse's own means:

* ``config: protocols/demo.yaml`` includes a protocol (trainer + data + evaluation + run files);
  the including file then overrides single keys of it as dotted keys, e.g.
  ``trainer.logger.init_args.name: demo_disp`` (a whole ``trainer:`` section there would replace
  the protocol's section, not merge into it, so that form is refused here);
* ``data: protocols/demo_data.yaml`` gives a section as a file (a file-valued group).

Paths are relative to the file that names them, as jsonargparse reads them. Commands that look
at a config without running it (``check-disjoint``, the sweep's config digest, ``tune``'s
``best.yaml``) read it through ``read_config``; the CLI itself is the reference (tests compare).
``same_start_evaluation`` tells whether two configs evaluate the same start model the same way
(the sweep and the demo then share one step-0 evaluation).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

INCLUDE_KEY = "config"


class ConfigFileError(ValueError):
    """A config file that is missing, not a mapping, or composed in a way jsonargparse reads otherwise."""


@dataclass
class ResolvedConfig:
    """A config with its includes, dotted keys and file-valued groups resolved."""

    document: dict
    #: every file read, in order: the config, its includes, its group files (for digests)
    files: list[Path] = field(default_factory=list)


def _load(path: Path) -> dict:
    import yaml

    if not path.is_file():
        raise ConfigFileError(f"config file {str(path)!r} does not exist")
    document = yaml.safe_load(path.read_text()) or {}
    if not isinstance(document, dict):
        raise ConfigFileError(f"config file {str(path)!r} is not a mapping of sections")
    return document


def is_group_file(value) -> bool:
    return isinstance(value, str) and value.endswith((".yaml", ".yml"))


def _set_dotted(document: dict, key: str, value, source: Path) -> None:
    node = document
    *parents, leaf = key.split(".")
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigFileError(f"{source}: {key!r} sets a key inside {part!r}, which is {child!r}, not a section")
        node = child
    node[leaf] = value


def read_config(path: str | os.PathLike) -> ResolvedConfig:
    """The composed document of ``path``: includes first, then the file's own keys, groups inlined."""
    path = Path(path)
    own = _load(path)
    resolved = ResolvedConfig({}, [path])
    includes = own.pop(INCLUDE_KEY, None)
    for include in [includes] if isinstance(includes, str) else list(includes or ()):
        included = read_config(path.parent / include)
        resolved.document.update(included.document)
        resolved.files += included.files
    from_includes = set(resolved.document)
    for key, value in own.items():
        if key in from_includes and isinstance(value, dict):
            raise ConfigFileError(f"{path}: the section {key!r} is also set by its included protocol; jsonargparse would "
                                  f"replace that section, not merge: override single keys as dotted keys ({key}.name: value)")
        if is_group_file(value):
            group_path = path.parent / value
            value = _load(group_path)
            resolved.files.append(group_path)
        if "." in key:
            _set_dotted(resolved.document, key, value, path)
        else:
            resolved.document[key] = value
    return resolved


#: the model settings that change a start model's embeddings (beside its weights, the same per scenario)
FORWARD_SETTINGS = ("backbone", "embedding_size", "input_mean", "input_std", "forward_chunk_size", "channels_last", "scale", "margin")


def same_start_evaluation(config: str, original_config: str) -> bool:
    """Whether a method config's step-0 evaluation is its scenario's Original evaluation (made with
    ``original_config``): the same data, benchmarks, forward settings and precision. Then the method run takes
    the Original's numbers (``--evaluation.start_results``) and embeds only the forget benchmarks at
    step 0, checking them against the Original's."""
    try:
        mine, theirs = read_config(config).document, read_config(original_config).document
    except ConfigFileError:
        return False

    def forward(document):
        init_args = (document.get("model") or {}).get("init_args") or {}
        precision = (document.get("trainer") or {}).get("precision")  # bf16 embeddings differ from float32 ones
        return {key: init_args.get(key) for key in FORWARD_SETTINGS} | {"precision": precision}

    return all(mine.get(key) == theirs.get(key) for key in ("data", "evaluation")) and forward(mine) == forward(theirs)
