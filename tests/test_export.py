"""``faceunlearn export``: ONNX that insightface loads as ArcFaceONNX and that embeds like PyTorch."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F

from faceunlearn.data.dataset import normalize
from faceunlearn.commands.export import main
from faceunlearn.export import export_onnx, infer_backbone_name, load_backbone
from faceunlearn.models import build_backbone
from faceunlearn.models.iresnet import DEPTHS


def save_lightning_checkpoint(path, embedding_size=128, seed=0, calibration_images=None):
    """A real ``Trainer.save_checkpoint`` file of a FineTune model (iresnet_tiny).

    BatchNorm statistics are re-estimated on ``calibration_images`` (uint8 [N,112,112,3]; default
    noise) so the random network's embeddings are centred and its weights are not all at init values.
    """
    import lightning as L

    from faceunlearn.methods import FineTune

    torch.manual_seed(seed)
    module = FineTune(num_classes=5, backbone="iresnet_tiny", embedding_size=embedding_size)
    if calibration_images is None:
        calibration_images = np.random.default_rng(seed).integers(0, 256, (64, 112, 112, 3), dtype=np.uint8)
    for layer in module.backbone.modules():
        if isinstance(layer, torch.nn.modules.batchnorm._BatchNorm):
            layer.reset_running_stats()
            layer.momentum = None  # cumulative average over the calibration pass
    with torch.no_grad():
        module.backbone.train()(normalize(torch.from_numpy(np.array(calibration_images))))
    module.eval()
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu")
    trainer.strategy.connect(module)
    trainer.save_checkpoint(path)
    return module.backbone.eval()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "last.ckpt"
    backbone = save_lightning_checkpoint(path)
    return path, backbone


@pytest.fixture(scope="module")
def exported(checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx") / "model.onnx"
    return export_onnx(checkpoint[0], out), out


def faces(count, seed=1):
    return np.random.default_rng(seed).integers(0, 256, (count, 112, 112, 3), dtype=np.uint8)


def torch_embeddings(backbone, rgb):
    with torch.no_grad():
        return backbone(normalize(torch.from_numpy(rgb)))


def insightface_model(path):
    from insightface.model_zoo import get_model

    return get_model(str(path), providers=["CPUExecutionProvider"])


def test_export_reads_architecture_from_hyper_parameters(exported):
    result, out = exported
    assert result["backbone"] == "iresnet_tiny" and result["embedding_size"] == 128
    assert result["min_cosine"] >= 0.9999
    model = onnx.load(str(out))
    graph_input, graph_output = model.graph.input[0], model.graph.output[0]
    assert graph_input.name == "data" and graph_output.name == "embedding"
    assert [d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim] == ["batch", 3, 112, 112]
    assert [d.dim_param or d.dim_value for d in graph_output.type.tensor_type.shape.dim] == ["batch", 128]
    assert {p.key: p.value for p in model.metadata_props}["faceunlearn.backbone"] == "iresnet_tiny"
    assert not list(out.parent.glob("*.partial*"))


def test_insightface_get_feat_matches_pytorch(checkpoint, exported):
    from insightface.model_zoo.arcface_onnx import ArcFaceONNX

    recogniser = insightface_model(exported[1])
    assert isinstance(recogniser, ArcFaceONNX)
    assert (recogniser.input_mean, recogniser.input_std, recogniser.input_size) == (127.5, 127.5, (112, 112))
    rgb = faces(5)
    onnx_features = recogniser.get_feat([image[..., ::-1] for image in rgb])  # insightface takes BGR images
    cosine = F.cosine_similarity(torch.from_numpy(onnx_features), torch_embeddings(checkpoint[1], rgb), dim=1)
    assert onnx_features.shape == (5, 128)
    assert cosine.min() >= 0.9999


@pytest.mark.filterwarnings("ignore:`estimate` is deprecated:FutureWarning")  # inside insightface's norm_crop
def test_insightface_get_with_keypoints_crops_and_embeds(checkpoint, exported):
    """``ArcFaceONNX.get(img, face)``: norm_crop by the 5 keypoints, then get_feat."""
    from insightface.app.common import Face
    from insightface.utils.face_align import arcface_dst

    rgb = faces(1, seed=2)[0]
    scene = np.zeros((200, 240, 3), dtype=np.uint8)
    scene[30:142, 50:162] = rgb[..., ::-1]  # the aligned face, BGR, at offset (x=50, y=30)
    face = Face(kps=arcface_dst + np.array([50.0, 30.0], dtype=np.float32))
    embedding = insightface_model(exported[1]).get(scene, face)
    expected = torch_embeddings(checkpoint[1], rgb[None])[0]
    assert embedding.shape == (128,)
    assert F.cosine_similarity(torch.from_numpy(embedding), expected, dim=0) >= 0.9999


def test_refuses_to_overwrite_unless_asked(checkpoint, tmp_path, capsys):
    out = tmp_path / "model.onnx"
    out.write_text("keep me")
    with pytest.raises(SystemExit, match="already exists; pass --overwrite"):
        main(["--model", str(checkpoint[0]), "--out", str(out)])  # the one name every command uses (--ckpt: the old one)
    assert out.read_text() == "keep me"
    main(["--ckpt", str(checkpoint[0]), "--out", str(out), "--overwrite"])
    assert "min cosine" in capsys.readouterr().out
    assert onnx.load(str(out)).graph.input[0].name == "data"


def test_missing_and_mismatched_checkpoints_are_named(checkpoint, tmp_path):
    out = tmp_path / "model.onnx"
    with pytest.raises(SystemExit, match="does not exist"):
        main(["--ckpt", str(tmp_path / "nope.ckpt"), "--out", str(out)])
    state = torch.load(checkpoint[0], weights_only=True)["state_dict"]
    state["backbone.fc.bias_renamed"] = state.pop("backbone.fc.bias")
    torch.save({"state_dict": state, "hyper_parameters": {"backbone": "iresnet_tiny", "embedding_size": 128}}, tmp_path / "bad.ckpt")
    with pytest.raises(SystemExit) as error:
        main(["--ckpt", str(tmp_path / "bad.ckpt"), "--out", str(out)])
    assert "missing keys (1): fc.bias" in str(error.value) and "unexpected keys (1): fc.bias_renamed" in str(error.value)
    with pytest.raises(SystemExit, match=r"shape mismatches .*conv1.weight: file \(16, 3, 3, 3\) vs model \(64, 3, 3, 3\)"):
        main(["--ckpt", str(checkpoint[0]), "--out", str(out), "--backbone", "iresnet18"])
    (tmp_path / "junk.pth").write_text("not a torch file")
    with pytest.raises(SystemExit, match="not a readable PyTorch weights file"):
        main(["--ckpt", str(tmp_path / "junk.pth"), "--out", str(out)])
    assert not list(tmp_path.glob("*.onnx*"))


def test_bare_backbone_pth_architecture_is_inferred(checkpoint, tmp_path):
    torch.save(checkpoint[1].state_dict(), tmp_path / "backbone.pth")
    model, name = load_backbone(tmp_path / "backbone.pth")
    assert name == "iresnet_tiny" and model.features.num_features == 128
    for depth_name in DEPTHS:
        with torch.device("meta"):
            keys = build_backbone(depth_name).state_dict()
        assert infer_backbone_name(keys) == depth_name
