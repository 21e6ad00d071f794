"""``faceunlearn export``: a backbone as an ONNX model that insightface loads as a recognition model.

    faceunlearn export --ckpt checkpoints/demo_disp/last.ckpt --out disp.onnx
    faceunlearn export --ckpt glint360k_r50/backbone.pth --backbone iresnet50 --out r50.onnx

The ONNX graph is the bare IResNet with the normalisation outside it, as in insightface's
PyTorch-trained recognition models (e.g. buffalo_l's ``w600k_r50.onnx``):

- input ``data``: float32 ``[N, 3, 112, 112]`` RGB, ``N`` dynamic, already normalised as
  ``(x/255 − 0.5)/0.5 = (x − 127.5)/127.5`` (SPEC §1);
- output ``embedding``: float32 ``[N, D]`` (D = 512 by default), not L2-normalised.

``insightface.model_zoo.get_model(path)`` routes it to ``ArcFaceONNX`` (square input ≥ 112, a
multiple of 16, one output). ``ArcFaceONNX`` looks for ``Sub`` and ``Mul`` nodes among the first 8
graph nodes; finding none, it preprocesses with mean 127.5 and std 127.5 and ``swapRB=True``, so
``get_feat(aligned_bgr_uint8)`` feeds exactly ``(rgb − 127.5)/127.5``, our input normalisation.
Every export is verified on random faces: ``get_feat`` through insightface against the PyTorch
embedding (cosine ≥ ``MIN_COSINE``), before the file appears under its final name.

Weights (``--ckpt``): a faceunlearn Lightning checkpoint (``state_dict`` with ``backbone.*`` keys;
its ``hyper_parameters`` give ``backbone`` and ``embedding_size``) or a bare insightface
``backbone.pth``; both are read with ``torch.load(weights_only=True)`` and loaded strictly. Without
``--backbone`` the architecture is inferred from the file (hyper-parameters, else the key layout).

A run that started from an ONNX recognizer (``backbone: onnx``, e.g. SFace) is exported back into
its own pipeline instead: the converted graph with the trained weights, under the source model's
input name, input shape (SFace: ``[1, 3, 112, 112]``), output name and input convention (SFace: RGB
0..255 with the graph's own ``Sub``/``Mul``, so ``cv2.FaceRecognizerSF`` and insightface treat it
as they treat the source), node names as in the source. It is checked before it appears: the
exported file's convention (as insightface reads it) equals the source's, and onnxruntime fed as
the source pipeline feeds it reproduces the PyTorch embedding (cosine ≥ ``MIN_COSINE``).

Exporter: torch's TorchScript-based exporter (``torch.onnx.export(dynamo=False)``), which needs no
extra package; the torch.export-based one (``dynamo=True``) needs ``onnxscript``, not a dependency.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from faceunlearn.models.iresnet import BACKBONE_NAMES, DEPTHS, TINY, TINY_NAMES, build_backbone, last_side
from faceunlearn.models.weights import CheckpointMismatchError, load_state_dict_strict

INPUT_NAME = "data"
OUTPUT_NAME = "embedding"
DEFAULT_OPSET = 17
#: the exported model must reproduce the PyTorch embedding at least this closely (cosine)
MIN_COSINE = 0.9999


class ExportError(RuntimeError):
    """The ONNX model could not be written or does not reproduce the PyTorch backbone."""


# -- weights ---------------------------------------------------------------------------------------
def read_weights(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """``(backbone state_dict, hyper_parameters)`` of a faceunlearn checkpoint or a ``backbone.pth``.

    A Lightning checkpoint's ``backbone.`` prefix is stripped (``head.*`` is dropped) and its
    recorded start weights (path and SHA-256) are returned as ``hyper_parameters["start_weights"]``;
    a bare state_dict is returned as is, with empty hyper-parameters.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {str(path)!r} does not exist")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # not a torch file, or pickled objects weights_only refuses
        raise CheckpointMismatchError(f"{str(path)!r} is not a readable PyTorch weights file: {error}") from error
    hyper_parameters = {}
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        hyper_parameters = dict(loaded.get("hyper_parameters") or {})
        if loaded.get("start_weights"):
            hyper_parameters["start_weights"] = loaded["start_weights"]
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict) or not loaded or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise CheckpointMismatchError(f"{str(path)!r} holds no state_dict of tensors")
    if any(key.startswith("backbone.") for key in loaded):
        loaded = {key[len("backbone."):]: value for key, value in loaded.items() if key.startswith("backbone.")}
    return loaded, hyper_parameters


def infer_backbone_name(state_dict: dict[str, torch.Tensor]) -> str | None:
    """The ``build_backbone`` name whose blocks-per-stage and stem width match the keys, or None."""
    blocks = [0, 0, 0, 0]
    for key in state_dict:
        match = re.match(r"layer([1-4])\.(\d+)\.", key)
        if match:
            stage, block = int(match.group(1)) - 1, int(match.group(2))
            blocks[stage] = max(blocks[stage], block + 1)
    stem = state_dict.get("conv1.weight")
    stem_width = None if stem is None else int(stem.shape[0])
    if tuple(blocks) == TINY["layers"] and stem_width == TINY["widths"][0]:
        fc = state_dict.get("fc.weight")  # the tiny variants differ in the side of the last feature map only
        for name, tiny in TINY_NAMES.items():
            side = last_side(stem_stride=tiny["stem_stride"], input_pool=tiny.get("input_pool", 1))
            if fc is None or int(fc.shape[1]) == tiny["widths"][-1] * side * side:
                return name
    for name, depths in DEPTHS.items():
        if tuple(blocks) == depths and stem_width == 64:
            return name
    return None


def load_backbone(
    path: str | os.PathLike, backbone: str | None = None, embedding_size: int | None = None,
    weights: tuple[dict[str, torch.Tensor], dict] | None = None,
) -> tuple[nn.Module, str]:
    """The backbone in ``path``, strictly loaded and in eval mode, and its architecture name.

    ``backbone`` / ``embedding_size`` default to the checkpoint's hyper-parameters, else to what the
    keys show (``fc.weight`` rows give the embedding size).
    """
    state_dict, hyper_parameters = weights or read_weights(path)  # (already read by the caller)
    name = backbone or hyper_parameters.get("backbone") or infer_backbone_name(state_dict)
    if name is None:
        raise CheckpointMismatchError(
            f"cannot tell the architecture of {str(path)!r} from its keys; pass --backbone "
            f"({', '.join(BACKBONE_NAMES)})"
        )
    fc = state_dict.get("fc.weight")
    size = embedding_size or hyper_parameters.get("embedding_size") or (int(fc.shape[0]) if fc is not None else 512)
    model = build_backbone(name, num_features=int(size))
    load_state_dict_strict(model, state_dict, f"{name} (from {path})")
    return model.eval(), name


# -- ONNX ------------------------------------------------------------------------------------------
def _torch_to_onnx(model: nn.Module, path: Path, opset: int) -> None:
    example = torch.zeros(2, 3, 112, 112)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)  # the TorchScript exporter's notice
        torch.onnx.export(
            model,
            (example,),
            str(path),
            dynamo=False,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=opset,
            do_constant_folding=True,
        )


def _add_metadata(path: Path, metadata: dict[str, str]) -> None:
    import onnx

    model = onnx.load(str(path))
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def verify_insightface(model: nn.Module, onnx_path: str | os.PathLike, num_images: int = 3, seed: int = 0) -> float:
    """Minimum cosine between insightface ``ArcFaceONNX.get_feat`` and the PyTorch embedding.

    Random uint8 faces: RGB for PyTorch (``(x/255 − 0.5)/0.5``), the same pixels as BGR for
    insightface (which swaps them back). Raises ``ExportError`` when insightface would not load the
    file as ``ArcFaceONNX`` with mean = std = 127.5, or when the cosine is below ``MIN_COSINE``.
    """
    from insightface.model_zoo import get_model
    from insightface.model_zoo.arcface_onnx import ArcFaceONNX

    recogniser = get_model(str(onnx_path), providers=["CPUExecutionProvider"])
    if not isinstance(recogniser, ArcFaceONNX):
        raise ExportError(f"insightface loads {onnx_path} as {type(recogniser).__name__}, not ArcFaceONNX")
    if (recogniser.input_mean, recogniser.input_std) != (127.5, 127.5):
        raise ExportError(
            f"insightface would preprocess {onnx_path} with mean {recogniser.input_mean} / std "
            f"{recogniser.input_std}, not 127.5 / 127.5 (its first graph nodes look like Sub/Mul)"
        )
    rgb = np.random.default_rng(seed).integers(0, 256, (num_images, 112, 112, 3), dtype=np.uint8)
    onnx_embeddings = torch.from_numpy(recogniser.get_feat(list(rgb[..., ::-1])))
    with torch.no_grad():
        torch_embeddings = model(torch.from_numpy(rgb).permute(0, 3, 1, 2).float() / 127.5 - 1.0)
    # float64: an untrained IResNet-50's embeddings reach ~1e26, whose float32 norms overflow
    cosine = float(torch.nn.functional.cosine_similarity(onnx_embeddings.double(), torch_embeddings.double(), dim=1).min())
    if not cosine >= MIN_COSINE:
        raise ExportError(f"the ONNX model's embeddings differ from PyTorch's: min cosine {cosine:.6f} < {MIN_COSINE}")
    return cosine


def export_onnx(
    checkpoint_or_weights: str | os.PathLike,
    out: str | os.PathLike,
    backbone: str | None = None,
    embedding_size: int | None = None,
    opset: int = DEFAULT_OPSET,
    overwrite: bool = False,
) -> dict:
    """Write the backbone of ``checkpoint_or_weights`` to ``out`` as ONNX and verify it (see module doc).

    The file is written as ``<out>.partial.onnx`` and renamed only after verification, so a failed
    export leaves nothing under ``out``. Returns ``{"path", "backbone", "embedding_size", "opset",
    "min_cosine"}``.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{str(out)!r} already exists; pass --overwrite to replace it")
    if out.suffix != ".onnx":
        raise ValueError(f"output {str(out)!r} must end in .onnx (insightface routes files by that suffix)")
    state_dict, hyper_parameters = read_weights(checkpoint_or_weights)
    if hyper_parameters.get("backbone") == "onnx":
        out.parent.mkdir(parents=True, exist_ok=True)
        return export_onnx_run(checkpoint_or_weights, state_dict, hyper_parameters, out, opset)
    model, name = load_backbone(checkpoint_or_weights, backbone, embedding_size, (state_dict, hyper_parameters))
    size = int(model.features.num_features)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial.onnx")
    try:
        _torch_to_onnx(model, partial, opset)
        _add_metadata(partial, {
            "faceunlearn.source": str(checkpoint_or_weights),
            "faceunlearn.backbone": name,
            "faceunlearn.embedding_size": str(size),
            "faceunlearn.input": "RGB 112x112, (x/255 - 0.5)/0.5; insightface ArcFaceONNX: mean 127.5, std 127.5",
        })
        cosine = verify_insightface(model, partial)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return {"path": str(out), "backbone": name, "embedding_size": size, "opset": opset, "min_cosine": cosine}


# -- runs that started from an ONNX recognizer (backbone: onnx) -----------------------------------
def load_onnx_run(path: str | os.PathLike, state: dict[str, torch.Tensor], hp: dict):
    """The ``OnnxBackbone`` of an ONNX-started run (``read_weights(path)`` = ``state, hp``), its
    trained weights loaded, in eval mode.

    The architecture is rebuilt from the run's source ONNX file (``init_weights``), which must be
    the file the run started from (SHA-256 recorded in the checkpoint).
    """
    from faceunlearn.models.onnx_backbone import OnnxBackbone
    from faceunlearn.models.weights import resolve_weights_path

    if hp.get("init_weights") is None:
        raise CheckpointMismatchError(f"{path}: a backbone: onnx checkpoint without init_weights (the source ONNX file)")
    model = OnnxBackbone(resolve_weights_path(hp["init_weights"]), hp.get("input_mean"), hp.get("input_std"))
    recorded = (hp.get("start_weights") or {}).get("sha256")
    if recorded and recorded != model.source_sha256:
        raise CheckpointMismatchError(
            f"{path} was trained from an ONNX file with sha256 {recorded[:12]}…, but {model.source} now has "
            f"{model.source_sha256[:12]}…: the export needs the run's own source model"
        )
    load_state_dict_strict(model, state, f"the ONNX backbone of {model.source}")
    return model.eval()


def _source_names(model) -> tuple[str, str]:
    import onnx

    graph = onnx.load(str(model.source), load_external_data=False).graph
    return model.convention.name, graph.output[0].name


def _rename_nodes_like_the_source(path: Path) -> None:
    """``/conv_1/Conv`` → ``conv_1``: the exporter prefixes the module path; onnx2torch named modules
    after the source's nodes, and insightface decides a model's input convention from node names."""
    import onnx

    model = onnx.load(str(path))
    seen: dict[str, int] = {}
    for node in model.graph.node:
        base = node.name.strip("/").split("/")[0] or node.op_type
        seen[base] = seen.get(base, 0) + 1
        node.name = base if seen[base] == 1 else f"{base}_{seen[base] - 1}"
    onnx.save(model, str(path))


def verify_onnx_export(model, onnx_path: str | os.PathLike, num_images: int = 3, seed: int = 0) -> float:
    """Minimum cosine between onnxruntime on the exported file (fed as the source pipeline feeds its
    model: ``(pixels − mean)/std``) and the PyTorch backbone; the exported graph must also keep the
    source's input convention as insightface reads it."""
    import onnxruntime

    from faceunlearn.models.onnx_backbone import clean_onnx, insightface_convention

    import onnx

    exported = insightface_convention(clean_onnx(onnx.load(str(onnx_path))))
    source = model.convention
    if (exported.name, tuple(exported.shape), exported.mean, exported.std) != (source.name, tuple(source.shape), source.mean, source.std):
        raise ExportError(f"the exported input convention {exported} differs from the source model's {source}")
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    rgb = np.random.default_rng(seed).integers(0, 256, (num_images, 112, 112, 3), dtype=np.uint8)
    batch = source.shape[0] if isinstance(source.shape[0], int) else num_images
    pixels = rgb.transpose(0, 3, 1, 2).astype(np.float32)
    if not source.rgb:
        pixels = pixels[:, ::-1].copy()
    onnx_embeddings = np.concatenate([
        session.run(None, {source.name: (pixels[i:i + batch] - source.mean) / source.std})[0] for i in range(0, num_images, batch)
    ])
    with torch.no_grad():
        torch_embeddings = model(torch.from_numpy(rgb).permute(0, 3, 1, 2).float() / 127.5 - 1.0)
    cosine = float(torch.nn.functional.cosine_similarity(torch.from_numpy(onnx_embeddings).double(), torch_embeddings.double(), dim=1).min())
    if not cosine >= MIN_COSINE:
        raise ExportError(f"the ONNX model's embeddings differ from PyTorch's: min cosine {cosine:.6f} < {MIN_COSINE}")
    return cosine


def export_onnx_run(checkpoint: str | os.PathLike, state: dict[str, torch.Tensor], hp: dict, out: Path, opset: int) -> dict:
    """Export an ONNX-started run with the source model's input name, shape, convention and output name."""
    model = load_onnx_run(checkpoint, state, hp)
    input_name, output_name = _source_names(model)
    shape = model.convention.shape
    dynamic_batch = not isinstance(shape[0], int)
    example = torch.zeros(1 if dynamic_batch else shape[0], *shape[1:])
    partial = out.with_name(out.name + ".partial.onnx")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore")
            torch.onnx.export(
                model.graph, (example,), str(partial), dynamo=False, input_names=[input_name], output_names=[output_name],
                dynamic_axes={input_name: {0: shape[0]}, output_name: {0: shape[0]}} if dynamic_batch else None,
                opset_version=opset, do_constant_folding=True,
            )
        _rename_nodes_like_the_source(partial)
        convention = model.convention
        _add_metadata(partial, {
            "faceunlearn.source": str(checkpoint),
            "faceunlearn.start_model": f"{model.source} (sha256 {model.source_sha256})",
            "faceunlearn.embedding_size": str(model.embedding_size),
            "faceunlearn.input": f"{'RGB' if convention.rgb else 'BGR'} {convention.size[0]}x{convention.size[1]}, "
                                 f"(pixels - {convention.mean:g})/{convention.std:g}, as the source model",
        })
        cosine = verify_onnx_export(model, partial)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return {"path": str(out), "backbone": f"onnx ({model.source.name})", "embedding_size": model.embedding_size,
            "opset": opset, "min_cosine": cosine, "check": "onnxruntime, source input convention"}
