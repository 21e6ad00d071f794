"""The reference model of ``faceunlearn check-disjoint``: any recognizer (ONNX, insightface ``.pth``, faceunlearn
``.ckpt``) as an ``Embedder`` — uint8 RGB faces in, float32 embeddings out."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from faceunlearn.data.dataset import normalize
from faceunlearn.models.weights import CheckpointMismatchError

ONNX_CHUNK = 8  # images per ONNX forward: small batches run fastest on CPU (SFace)

#: uint8 RGB faces [B,112,112,3] → float32 embeddings [B,D] on the CPU
Embedder = Callable[[np.ndarray], torch.Tensor]


class InputError(RuntimeError):
    """A path, model or identity set the check cannot use (exit status 2)."""


# -- reference model -------------------------------------------------------------------------------
def onnx_embedder(source: str | Path, device: str) -> Embedder:
    """An ONNX recognizer (a path or an alias: ``sface``) through ``OnnxBackbone``.

    ``OnnxBackbone`` cleans and converts the graph to torch (so block-quantised files such as
    SFace work) and applies the model's own input convention, as insightface's ``ArcFaceONNX``
    decides it. Faces go through it in chunks of ``ONNX_CHUNK`` under ``torch.inference_mode``;
    a graph whose batch is fixed in its layers (not only in the declared input) gets zero-padded
    chunks of that batch.
    """
    from faceunlearn.models.onnx_backbone import OnnxBackbone, OnnxModelError

    try:
        model = OnnxBackbone(source)
    except (OnnxModelError, FileNotFoundError) as error:
        raise InputError(f"reference model: {error}") from error
    except Exception as error:  # onnx, onnxruntime and onnx2torch raise many types for an unusable graph
        raise InputError(f"reference model {str(source)!r} cannot be used as an ONNX recognizer: {type(error).__name__}: {error}") from error
    if model.convention.size != (112, 112):
        raise InputError(f"reference model {str(source)!r} expects {model.convention.size} input; packed faces are 112×112")
    model = model.to(device).eval()
    chunk, declared, fixed = ONNX_CHUNK, model.convention.shape[0], False
    try:
        with torch.inference_mode():
            probe_rows = model(torch.zeros(2, 3, 112, 112, device=device)).shape[0]
    except Exception as error:  # e.g. a Reshape to a constant [1, -1]
        probe_rows = f"an error ({type(error).__name__}: {error})"
    if probe_rows != 2:
        if not isinstance(declared, int) or declared < 1:
            raise InputError(f"reference model {str(source)!r} gives {probe_rows} for a batch of 2 images")
        chunk, fixed = declared, True

    @torch.inference_mode()
    def embed(rgb: np.ndarray) -> torch.Tensor:
        images = normalize(torch.from_numpy(rgb))
        out = []
        for start in range(0, len(images), chunk):
            part = images[start:start + chunk]
            if fixed and len(part) < chunk:  # a fixed-batch graph: pad the last chunk with zeros
                part = torch.cat([part, part.new_zeros(chunk - len(part), *part.shape[1:])])
            out.append(model(part.to(device)).float().cpu()[:min(chunk, len(images) - start)])
        return torch.cat(out)

    return embed


def torch_embedder(path: Path, backbone: str | None, embedding_size: int | None, device: str) -> Embedder:
    from faceunlearn import export

    state, hyper_parameters = export.read_weights(path)
    if hyper_parameters.get("backbone") == "onnx":  # a run started from an ONNX recognizer
        model, chunk = export.load_onnx_run(path, state, hyper_parameters), ONNX_CHUNK
    else:
        model, _ = export.load_backbone(path, backbone, embedding_size, weights=(state, hyper_parameters))
        chunk = None
    model = model.to(device)

    @torch.inference_mode()
    def embed(rgb: np.ndarray) -> torch.Tensor:
        images = normalize(torch.from_numpy(rgb))
        step = chunk or max(len(images), 1)
        return torch.cat([model(images[s:s + step].to(device)).float().cpu() for s in range(0, len(images), step)])

    return embed


def make_embedder(path: str, backbone: str | None, embedding_size: int | None, device: str) -> Embedder:
    """The reference model: ``.onnx`` or an alias (``sface``) via ``OnnxBackbone``, else a ``.ckpt``/``.pth``."""
    from faceunlearn.models.onnx_backbone import KNOWN_MODELS

    if path in KNOWN_MODELS or Path(path).suffix.lower() == ".onnx":
        if path not in KNOWN_MODELS and not Path(path).is_file():
            raise InputError(f"reference model {path!r} does not exist")
        return onnx_embedder(path, device)
    path = Path(path)
    if not path.is_file():
        raise InputError(f"reference model {str(path)!r} does not exist (known ONNX aliases: {', '.join(KNOWN_MODELS)})")
    try:
        return torch_embedder(path, backbone, embedding_size, device)
    except (CheckpointMismatchError, ValueError) as error:
        raise InputError(str(error)) from error


# -- identity sets ---------------------------------------------------------------------------------
