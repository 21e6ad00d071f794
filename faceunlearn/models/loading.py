"""Where weights become a network: an IResNet (insightface ``.pth`` or a faceunlearn ``.ckpt``) or any ONNX
recognizer (``onnx2torch``), with its CosFace head and the record of where the start weights came from."""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from faceunlearn.io.paths import expand_path, file_sha256
from faceunlearn.models.cosface import CosFaceHead
from faceunlearn.models.iresnet import build_backbone
from faceunlearn.models.onnx_backbone import OnnxBackbone
from faceunlearn.models.weights import load_weights, resolve_weights_path


@dataclass
class Recognizer:
    backbone: nn.Module
    head: CosFaceHead
    embedding_size: int
    #: ``{"path", "sha256"}`` of the start weights (None: random start)
    start_weights: dict | None
    #: "checkpoint" (the file carried a head), "random" (start weights without a head: imprint it) or "scratch"
    head_source: str


def build_recognizer(backbone: str, num_classes: int, init_weights: str | None = None, embedding_size: int | None = None,
                     scale: float = 64.0, margin: float = 0.4, input_mean: float | None = None,
                     input_std: float | None = None, train_dropout: bool = False) -> Recognizer:
    """The backbone named ``backbone`` (``iresnet*`` or ``onnx``) with ``init_weights`` loaded and a CosFace head
    of ``num_classes`` rows (the file's, when it carries one)."""
    if backbone == "onnx":
        if not init_weights:
            raise ValueError("backbone: onnx needs model.init_args.init_weights: an .onnx file or an alias (sface)")
        network = OnnxBackbone(resolve_weights_path(init_weights), input_mean, input_std, train_dropout)
        if embedding_size not in (None, network.embedding_size):
            raise ValueError(f"embedding_size={embedding_size}, but {network.source} outputs {network.embedding_size}-d embeddings")
        head = CosFaceHead(network.embedding_size, num_classes, scale, margin)
        return Recognizer(network, head, network.embedding_size, {"path": str(network.source), "sha256": network.source_sha256},
                          "random")
    embedding_size = embedding_size or 512
    network = build_backbone(backbone, num_features=embedding_size)
    head = CosFaceHead(embedding_size, num_classes, scale, margin)
    if not init_weights:
        return Recognizer(network, head, embedding_size, None, "scratch")
    path = expand_path(init_weights, "model.init_args.init_weights")
    loaded = load_weights(network, head, path, backbone_name=backbone)
    return Recognizer(network, head, embedding_size, {"path": str(path), "sha256": file_sha256(path)},
                      "checkpoint" if loaded.get("head") else "random")
