"""IResNet keys and shapes match insightface arcface_torch (SPEC §1); weights load strictly."""

import pytest
import torch

from faceunlearn.models import CosFaceHead, build_backbone, load_weights
from faceunlearn.models.weights import CheckpointMismatchError

BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def expected_r50_shapes() -> dict[str, tuple]:
    """SPEC §1's key list for IResNet-50 (depths [3,4,14,3], widths 64..512), with shapes."""
    shapes = {"conv1.weight": (64, 3, 3, 3), "prelu.weight": (64,)}

    def bn(prefix, channels):
        for key in BN_KEYS:
            shapes[f"{prefix}.{key}"] = () if key == "num_batches_tracked" else (channels,)

    bn("bn1", 64)
    inplanes = 64
    for stage, (depth, planes) in enumerate(zip((3, 4, 14, 3), (64, 128, 256, 512)), start=1):
        for block in range(depth):
            prefix = f"layer{stage}.{block}"
            in_ch = inplanes if block == 0 else planes
            bn(f"{prefix}.bn1", in_ch)
            shapes[f"{prefix}.conv1.weight"] = (planes, in_ch, 3, 3)
            bn(f"{prefix}.bn2", planes)
            shapes[f"{prefix}.prelu.weight"] = (planes,)
            shapes[f"{prefix}.conv2.weight"] = (planes, planes, 3, 3)
            bn(f"{prefix}.bn3", planes)
        shapes[f"layer{stage}.0.downsample.0.weight"] = (planes, inplanes, 1, 1)
        bn(f"layer{stage}.0.downsample.1", planes)
        inplanes = planes
    bn("bn2", 512)
    shapes["fc.weight"] = (512, 25088)
    shapes["fc.bias"] = (512,)
    bn("features", 512)
    return shapes


def test_r50_state_dict_matches_insightface_layout():
    state = build_backbone("iresnet50").state_dict()
    expected = expected_r50_shapes()
    assert sorted(state) == sorted(expected)
    assert {k: tuple(v.shape) for k, v in state.items()} == expected


@pytest.mark.parametrize("name,blocks", [("iresnet18", 8), ("iresnet34", 16), ("iresnet100", 49), ("iresnet_tiny", 4)])
def test_depths(name, blocks):
    model = build_backbone(name)
    assert sum(1 for k in model.state_dict() if k.endswith(".conv2.weight")) == blocks


def test_forward_shape_and_unknown_name():
    model = build_backbone("iresnet_tiny").eval()
    assert model(torch.randn(2, 3, 112, 112)).shape == (2, 512)
    with pytest.raises(ValueError, match="unknown backbone 'resnet50'"):
        build_backbone("resnet50")


def test_tiny56_is_the_tiny_network_on_the_crop_averaged_to_56():
    """``iresnet_tiny56`` = a 2×2 average of the 112 crop, then the tiny network built for a 56 input (same keys)."""
    from faceunlearn.models.iresnet import TINY, IResNet

    torch.manual_seed(0)
    small = build_backbone("iresnet_tiny56", 64).eval()
    reference = IResNet(TINY["layers"], TINY["widths"], 64, stem_stride=2, input_size=56).eval()
    reference.load_state_dict(small.state_dict())
    x = torch.randn(3, 3, 112, 112)
    assert torch.allclose(small(x), reference(torch.nn.functional.avg_pool2d(x, 2)), atol=1e-6)
    assert sorted(small.state_dict()) == sorted(build_backbone("iresnet_tiny", 64).state_dict())
    assert small.fc.in_features == 128 * 2 * 2  # 56 → 28 (stem) → 14 → 7 → 4 → 2


def test_tiny_variants_are_told_apart_by_their_keys():
    from faceunlearn.export import infer_backbone_name

    for name in ("iresnet_tiny", "iresnet_tiny56", "iresnet18"):
        assert infer_backbone_name(build_backbone(name, 128).state_dict()) == name


def test_insightface_backbone_file_loads_strictly(tmp_path):
    """A bare arcface_torch state_dict (torch.save(backbone.state_dict())) loads with strict=True."""
    source = build_backbone("iresnet18")
    path = tmp_path / "backbone.pth"
    torch.save(source.state_dict(), path)
    target = build_backbone("iresnet18")
    load_weights(target, None, path, "iresnet18")
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value)


def test_wrong_keys_name_missing_and_unexpected(tmp_path):
    state = build_backbone("iresnet_tiny").state_dict()
    state["extra.weight"] = torch.zeros(1)
    del state["fc.bias"]
    state["conv1.weight"] = torch.zeros(1, 1, 1, 1)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointMismatchError) as error:
        load_weights(build_backbone("iresnet_tiny"), None, path, "iresnet_tiny")
    message = str(error.value)
    assert "missing keys (1): fc.bias" in message
    assert "unexpected keys (1): extra.weight" in message
    assert "conv1.weight: file (1, 1, 1, 1)" in message


def test_checkpoint_with_backbone_and_head_prefixes_restores_both(tmp_path):
    backbone, head = build_backbone("iresnet_tiny"), CosFaceHead(512, 7)
    state = {f"backbone.{k}": v for k, v in backbone.state_dict().items()}
    state["head.weight"] = head.weight.detach().clone()
    torch.save({"state_dict": state, "epoch": 3}, tmp_path / "model.ckpt")
    new_backbone, new_head = build_backbone("iresnet_tiny"), CosFaceHead(512, 7)
    load_weights(new_backbone, new_head, tmp_path / "model.ckpt")
    assert torch.equal(new_head.weight, head.weight)
    with pytest.raises(CheckpointMismatchError, match="shape mismatches"):
        load_weights(build_backbone("iresnet_tiny"), CosFaceHead(512, 9), tmp_path / "model.ckpt")


def test_missing_weights_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_weights(build_backbone("iresnet_tiny"), None, tmp_path / "nope.pth")
