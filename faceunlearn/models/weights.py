"""Loading pretrained weights: insightface ``backbone.pth`` files and faceunlearn checkpoints.

Files are read with ``torch.load(..., weights_only=True)``: tensors only, no pickled code.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn


def resolve_weights_path(value: str | os.PathLike, field: str = "model.init_args.init_weights") -> Path:
    """A configured weights location as a path: a model alias (``sface``, see
    ``faceunlearn.models.onnx_backbone.KNOWN_MODELS``) or a path with ``$VAR``/``~`` expanded."""
    from faceunlearn.models.onnx_backbone import KNOWN_MODELS, resolve_onnx_source
    from faceunlearn.io.paths import expand_path

    if str(value) in KNOWN_MODELS:
        return resolve_onnx_source(value)
    return expand_path(value, field)


class CheckpointMismatchError(RuntimeError):
    """A state_dict does not fit the model it is loaded into."""


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of an insightface ``backbone.pth`` or a Lightning ``.ckpt`` (its ``state_dict``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {str(path)!r} does not exist")
    loaded = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(loaded, dict) and "state_dict" in loaded and isinstance(loaded["state_dict"], dict):
        loaded = loaded["state_dict"]  # a Lightning checkpoint
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise CheckpointMismatchError(f"{str(path)!r} holds no state_dict of tensors")
    return loaded


def load_state_dict_strict(module: nn.Module, state_dict: dict[str, torch.Tensor], what: str) -> None:
    """``module.load_state_dict(strict=True)``, failing with the missing, unexpected and mis-shaped keys."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    misshaped = sorted(
        f"{key}: file {tuple(state_dict[key].shape)} vs model {tuple(expected[key].shape)}"
        for key in set(expected) & set(state_dict)
        if state_dict[key].shape != expected[key].shape
    )
    if missing or unexpected or misshaped:
        lines = [f"weights do not match {what}:"]
        for title, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", misshaped)):
            if keys:
                shown = ", ".join(keys[:12]) + (f", … ({len(keys) - 12} more)" if len(keys) > 12 else "")
                lines.append(f"  {title} ({len(keys)}): {shown}")
        raise CheckpointMismatchError("\n".join(lines))
    module.load_state_dict(state_dict, strict=True)


def load_weights(backbone: nn.Module, head: nn.Module | None, path: str | os.PathLike, backbone_name: str = "backbone") -> dict[str, bool]:
    """Load ``path`` into ``backbone`` (and ``head``); returns ``{"head": whether the head was loaded}``.

    A faceunlearn checkpoint (keys ``backbone.*`` and ``head.weight``) restores both; an insightface
    ``backbone.pth`` (bare IResNet keys) restores the backbone and leaves the head as initialised.
    """
    state_dict = read_state_dict(path)
    if any(key.startswith("backbone.") for key in state_dict):
        backbone_state = {k[len("backbone."):]: v for k, v in state_dict.items() if k.startswith("backbone.")}
        head_state = {k[len("head."):]: v for k, v in state_dict.items() if k.startswith("head.")}
        load_state_dict_strict(backbone, backbone_state, f"{backbone_name} (from {path})")
        if head is not None and head_state:
            load_state_dict_strict(head, head_state, f"the CosFace head (from {path})")
        return {"head": head is not None and bool(head_state)}
    load_state_dict_strict(backbone, state_dict, f"{backbone_name} (from {path})")
    return {"head": False}
