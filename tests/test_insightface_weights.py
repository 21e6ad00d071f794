"""An insightface ``backbone.pth`` (arcface_torch ``iresnet50``) loads strictly and computes the same function.

The expected state_dict is written here from insightface's ``recognition/arcface_torch/backbones/
iresnet.py``, independently of ``faceunlearn.models.iresnet``: module registration order
``conv1, bn1, prelu, layer1..4, bn2, (dropout), fc, features``; ``IBasicBlock`` registers
``bn1, conv1, bn2, prelu, conv2, bn3, downsample``; the first block of every stage has stride 2
and a ``downsample = Sequential(conv1x1(stride 2, bias=False), BatchNorm2d)``; ``fc_scale = 7·7``.
"""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F

from faceunlearn.models import build_backbone, load_weights
from faceunlearn.models.weights import CheckpointMismatchError

R50_DEPTHS = (3, 4, 14, 3)
WIDTHS = (64, 128, 256, 512)


def insightface_r50_state_dict(seed: int = 0) -> OrderedDict[str, torch.Tensor]:
    """Random tensors under arcface_torch iresnet50's exact names, shapes and order (eval-safe BN stats)."""
    generator = torch.Generator().manual_seed(seed)
    state: OrderedDict[str, torch.Tensor] = OrderedDict()

    def rand(*shape, scale=1.0, offset=0.0):
        return torch.randn(*shape, generator=generator) * scale + offset

    def conv(name, out_ch, in_ch, k):
        state[f"{name}.weight"] = rand(out_ch, in_ch, k, k, scale=(2.0 / (in_ch * k * k)) ** 0.5)

    def bn(name, ch):
        state[f"{name}.weight"] = rand(ch, scale=0.1, offset=1.0)
        state[f"{name}.bias"] = rand(ch, scale=0.1)
        state[f"{name}.running_mean"] = rand(ch, scale=0.1)
        state[f"{name}.running_var"] = torch.rand(ch, generator=generator) + 0.5
        state[f"{name}.num_batches_tracked"] = torch.tensor(1000)

    conv("conv1", 64, 3, 3)
    bn("bn1", 64)
    state["prelu.weight"] = torch.full((64,), 0.25)
    inplanes = 64
    for stage, (depth, planes) in enumerate(zip(R50_DEPTHS, WIDTHS), start=1):
        for block in range(depth):
            prefix, in_ch = f"layer{stage}.{block}", (inplanes if block == 0 else planes)
            bn(f"{prefix}.bn1", in_ch)
            conv(f"{prefix}.conv1", planes, in_ch, 3)
            bn(f"{prefix}.bn2", planes)
            state[f"{prefix}.prelu.weight"] = torch.full((planes,), 0.25)
            conv(f"{prefix}.conv2", planes, planes, 3)
            bn(f"{prefix}.bn3", planes)
            if block == 0:
                conv(f"{prefix}.downsample.0", planes, inplanes, 1)
                bn(f"{prefix}.downsample.1", planes)
        inplanes = planes
    bn("bn2", 512)
    state["fc.weight"] = rand(512, 512 * 7 * 7, scale=(1.0 / 25088) ** 0.5)
    state["fc.bias"] = rand(512, scale=0.01)
    bn("features", 512)
    state["features.weight"] = torch.ones(512)  # arcface_torch fixes it at 1 (requires_grad=False)
    return state


def reference_forward(state: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """arcface_torch IResNet.forward in eval mode, written with torch.nn.functional on ``state``."""

    def bn(name, t):
        return F.batch_norm(t, state[f"{name}.running_mean"], state[f"{name}.running_var"],
                            state[f"{name}.weight"], state[f"{name}.bias"], training=False, eps=1e-5)

    x = F.prelu(bn("bn1", F.conv2d(x, state["conv1.weight"], padding=1)), state["prelu.weight"])
    for stage, depth in enumerate(R50_DEPTHS, start=1):
        for block in range(depth):
            p, stride = f"layer{stage}.{block}", (2 if block == 0 else 1)
            out = F.conv2d(bn(f"{p}.bn1", x), state[f"{p}.conv1.weight"], padding=1)
            out = F.prelu(bn(f"{p}.bn2", out), state[f"{p}.prelu.weight"])
            out = bn(f"{p}.bn3", F.conv2d(out, state[f"{p}.conv2.weight"], stride=stride, padding=1))
            shortcut = bn(f"{p}.downsample.1", F.conv2d(x, state[f"{p}.downsample.0.weight"], stride=2)) if block == 0 else x
            x = out + shortcut
    x = torch.flatten(bn("bn2", x), 1)
    return bn("features", F.linear(x, state["fc.weight"], state["fc.bias"]))


@pytest.fixture(scope="module")
def insightface_state():
    return insightface_r50_state_dict()


def test_keys_shapes_and_order_match_arcface_torch(insightface_state):
    ours = build_backbone("iresnet50").state_dict()
    assert list(ours) == list(insightface_state)  # same names, same registration order
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in insightface_state.items()}
    assert ours["fc.weight"].shape == (512, 25088)


def test_backbone_pth_loads_strictly_and_computes_arcface_torch_forward(tmp_path, insightface_state):
    path = tmp_path / "backbone.pth"
    torch.save(insightface_state, path)  # what arcface_torch writes: torch.save(backbone.module.state_dict())
    model = build_backbone("iresnet50")
    load_weights(model, None, path, backbone_name="iresnet50")
    loaded = model.state_dict()
    for key in ("conv1.weight", "layer3.13.conv2.weight", "layer4.0.downsample.1.running_var", "fc.weight", "features.bias"):
        assert torch.equal(loaded[key], insightface_state[key]), key
    x = torch.randn(1, 3, 112, 112, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours, reference = model.eval()(x), reference_forward(insightface_state, x)
    assert ours.shape == (1, 512)
    torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-4)


def test_wrong_key_and_shape_are_named(tmp_path, insightface_state):
    state = OrderedDict(insightface_state)
    state["output_layer.weight"] = state.pop("fc.weight")  # a renamed key
    state["features.bias"] = torch.zeros(256)  # a wrong shape
    path = tmp_path / "backbone.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointMismatchError) as error:
        load_weights(build_backbone("iresnet50"), None, path, backbone_name="iresnet50")
    message = str(error.value)
    assert "missing keys (1): fc.weight" in message
    assert "unexpected keys (1): output_layer.weight" in message
    assert "features.bias: file (256,) vs model (512,)" in message


def test_ddp_prefixed_file_is_refused_with_the_keys_named(tmp_path, insightface_state):
    """A ``module.``-prefixed (DistributedDataParallel) state_dict is not silently accepted."""
    path = tmp_path / "backbone.pth"
    torch.save({f"module.{k}": v for k, v in list(insightface_state.items())[:3]}, path)
    with pytest.raises(CheckpointMismatchError, match=r"unexpected keys \(3\): module\.bn1\.bias"):
        load_weights(build_backbone("iresnet50"), None, path, backbone_name="iresnet50")
