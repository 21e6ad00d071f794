"""Small face-recognizer ONNX files built by the tests: block-quantised weights, an unused input, and
optionally an MXNet-style ``Sub``/``Mul`` normalisation at the start (raw-pixel input, like SFace)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import helper, numpy_helper
from torch import nn

EMBEDDING = 24


class TinyRecognizer(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=4, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.prelu = nn.PReLU(8)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=4, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16 * 7 * 7, EMBEDDING)

    def forward(self, x):
        x = self.bn2(self.conv2(self.prelu(self.bn(self.conv(x)))))
        return self.fc(torch.flatten(x, 1))


def _block_quantise(model: onnx.ModelProto, name: str, block: int = 4) -> None:
    """Replace initializer ``name`` [O, ...] by int8 ``q`` + ``DequantizeLinear(block_size)`` along axis 1."""
    graph = model.graph
    initializer = next(item for item in graph.initializer if item.name == name)
    weight = numpy_helper.to_array(initializer).astype(np.float32)
    flat = weight.reshape(weight.shape[0], -1)
    pad = (-flat.shape[1]) % block
    padded = np.pad(flat, ((0, 0), (0, pad)))
    blocks = padded.reshape(flat.shape[0], -1, block)
    scales = np.maximum(np.abs(blocks).max(axis=2), 1e-8) / 127.0
    quantised = np.clip(np.round(blocks / scales[..., None]), -127, 127).astype(np.int8).reshape(flat.shape[0], -1)
    graph.initializer.remove(initializer)
    graph.initializer.extend([
        numpy_helper.from_array(quantised, f"{name}_quantized"),
        numpy_helper.from_array(scales.astype(np.float32), f"{name}_scales"),
        numpy_helper.from_array(np.zeros_like(scales, dtype=np.int8), f"{name}_zero_point"),
        numpy_helper.from_array(np.array(weight.shape, dtype=np.int64), f"{name}_shape"),
        numpy_helper.from_array(np.array([flat.shape[0], flat.shape[1]], dtype=np.int64), f"{name}_ends"),
        numpy_helper.from_array(np.array([0, 0], dtype=np.int64), f"{name}_starts"),
    ])
    nodes = [
        helper.make_node("DequantizeLinear", [f"{name}_quantized", f"{name}_scales", f"{name}_zero_point"],
                         [f"{name}_padded"], axis=1, block_size=block),
        helper.make_node("Slice", [f"{name}_padded", f"{name}_starts", f"{name}_ends"], [f"{name}_flat"]),
        helper.make_node("Reshape", [f"{name}_flat", f"{name}_shape"], [name]),
    ]
    for node in reversed(nodes):
        graph.node.insert(0, node)


def write_tiny_recognizer(path: Path, raw_pixels: bool = False, seed: int = 0) -> Path:
    """Export ``TinyRecognizer`` (trained BN statistics from noise) to ``path`` as opset 21 with
    block-quantised conv weights and an unused graph input; ``raw_pixels`` prepends
    ``_minusscalar0 = x − 127.5`` and ``_mulscalar0 = · × 1/128`` (MXNet-style, as SFace)."""
    torch.manual_seed(seed)
    model = TinyRecognizer()
    with torch.no_grad():
        model.train()(torch.randn(16, 3, 112, 112))
        model.prelu.weight.uniform_(0.1, 0.4)
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.zeros(1, 3, 112, 112),), str(path), dynamo=False, input_names=["data"],
                          output_names=["embedding"], dynamic_axes={"data": {0: "batch"}, "embedding": {0: "batch"}},
                          opset_version=17, do_constant_folding=False)
    exported = onnx.load(str(path))
    graph = exported.graph
    for name in ("conv.weight", "conv2.weight"):
        _block_quantise(exported, name)
    if raw_pixels:
        graph.initializer.extend([numpy_helper.from_array(np.array([127.5], np.float32), "scalar_op1"),
                                  numpy_helper.from_array(np.array([1 / 128], np.float32), "scalar_op2")])
        for node in graph.node:
            node.input[:] = ["_mulscalar0" if name == "data" else name for name in node.input]
        graph.node.insert(0, helper.make_node("Mul", ["_minusscalar0", "scalar_op2"], ["_mulscalar0"], name="_mulscalar0"))
        graph.node.insert(0, helper.make_node("Sub", ["data", "scalar_op1"], ["_minusscalar0"], name="_minusscalar0"))
    graph.input.append(helper.make_tensor_value_info("unused_weight", onnx.TensorProto.FLOAT, [3]))
    del exported.opset_import[:]
    exported.opset_import.append(helper.make_opsetid("", 21))
    exported.ir_version = 10
    onnx.checker.check_model(exported)
    onnx.save(exported, str(path))
    return path


def runtime_session(path: Path):
    """onnxruntime on ``path`` with only the unused inputs removed (its own dequantisation)."""
    import onnxruntime

    model = onnx.load(str(path))
    used = {name for node in model.graph.node for name in node.input}
    for item in [item for item in model.graph.input if item.name not in used]:
        model.graph.input.remove(item)
    return onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
