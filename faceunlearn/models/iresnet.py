"""IResNet backbones with insightface ``arcface_torch`` module names and tensor shapes.

An insightface ``backbone.pth`` (e.g. ``glint360k_cosface_r50_fp16_0.1``) loads into
``iresnet50()`` with ``strict=True``. Input: RGB 112×112 normalised as ``(x/255 − 0.5)/0.5``;
output: the 512-d embedding ``z`` (not L2-normalised, SPEC §1).

Block (SPEC §1): BN → conv3×3 → BN → PReLU → conv3×3(stride) → BN, plus shortcut, no activation after.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

ARCFACE_WIDTHS = (64, 128, 256, 512)
DEPTHS = {"iresnet18": (2, 2, 2, 2), "iresnet34": (3, 4, 6, 3), "iresnet50": (3, 4, 14, 3), "iresnet100": (3, 13, 30, 3)}
# A reduced IResNet for CPU demos and tests: same module names, 1/4 width, one block per stage and a
# stride-2 stem. Full-resolution (112×112) stages dominate CPU time, so the strided stem alone trains
# ~8× faster (341 vs 42 img/s at batch 64 on 2 cores).
TINY = {"layers": (1, 1, 1, 1), "widths": (16, 32, 64, 128), "stem_stride": 2}
# The same network seeing the crop at 56×56 (a 2×2 average first): the synthetic faces are rendered at 56 and
# upsampled to 112, so little is lost, and every stage runs on a quarter of the pixels.
TINY56 = {**TINY, "input_pool": 2}
TINY_NAMES = {"iresnet_tiny": TINY, "iresnet_tiny56": TINY56}
#: every name ``build_backbone`` knows
BACKBONE_NAMES = (*DEPTHS, *TINY_NAMES)


def last_side(input_size: int = 112, stem_stride: int = 1, input_pool: int = 1) -> int:
    """The side of the last feature map: the stem and each of the 4 stages halve it (ceil); 112 → 7 for insightface's
    stride-1 stem."""
    side = -(-(input_size // input_pool) // stem_stride)
    for _ in range(4):
        side = -(-side // 2)
    return side


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class IBasicBlock(nn.Module):
    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes, eps=1e-05)
        self.conv1 = conv3x3(inplanes, planes)
        self.bn2 = nn.BatchNorm2d(planes, eps=1e-05)
        self.prelu = nn.PReLU(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn3 = nn.BatchNorm2d(planes, eps=1e-05)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return out + shortcut


class IResNet(nn.Module):
    """IResNet of ``layers`` blocks per stage and ``widths`` channels per stage (arcface_torch layout)."""

    def __init__(
        self,
        layers: Sequence[int],
        widths: Sequence[int] = ARCFACE_WIDTHS,
        num_features: int = 512,
        dropout: float = 0.0,
        stem_stride: int = 1,
        input_size: int = 112,
        input_pool: int = 1,
    ):
        super().__init__()
        self.input_pool = input_pool  # a k×k average of the input before the stem (no parameters)
        self.inplanes = widths[0]
        self.conv1 = nn.Conv2d(3, widths[0], kernel_size=3, stride=stem_stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0], eps=1e-05)
        self.prelu = nn.PReLU(widths[0])
        self.layer1 = self._make_layer(widths[0], layers[0])
        self.layer2 = self._make_layer(widths[1], layers[1])
        self.layer3 = self._make_layer(widths[2], layers[2])
        self.layer4 = self._make_layer(widths[3], layers[3])
        self.bn2 = nn.BatchNorm2d(widths[3], eps=1e-05)
        self.dropout = nn.Dropout(p=dropout, inplace=True)
        side = last_side(input_size, stem_stride, input_pool)
        self.fc = nn.Linear(widths[3] * side * side, num_features)
        self.features = nn.BatchNorm1d(num_features, eps=1e-05)
        nn.init.constant_(self.features.weight, 1.0)
        self.features.weight.requires_grad = False  # as in arcface_torch: a fixed-scale BN on the embedding
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, 0, 0.1)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.constant_(module.weight, 1)
                nn.init.constant_(module.bias, 0)

    def _make_layer(self, planes: int, blocks: int) -> nn.Sequential:
        downsample = nn.Sequential(
            nn.Conv2d(self.inplanes, planes, kernel_size=1, stride=2, bias=False),
            nn.BatchNorm2d(planes, eps=1e-05),
        )
        stage = [IBasicBlock(self.inplanes, planes, stride=2, downsample=downsample)]
        self.inplanes = planes
        stage += [IBasicBlock(planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*stage)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_pool > 1:
            x = nn.functional.avg_pool2d(x, self.input_pool)
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.dropout(torch.flatten(self.bn2(x), 1))
        return self.features(self.fc(x))


def build_backbone(name: str, num_features: int = 512, dropout: float = 0.0) -> IResNet:
    """``iresnet18|34|50|100`` (insightface layout and widths) or ``iresnet_tiny`` / ``iresnet_tiny56`` (CPU demo)."""
    if name in DEPTHS:
        return IResNet(DEPTHS[name], ARCFACE_WIDTHS, num_features, dropout)
    if name in TINY_NAMES:
        tiny = TINY_NAMES[name]
        return IResNet(tiny["layers"], tiny["widths"], num_features, dropout, stem_stride=tiny["stem_stride"],
                       input_pool=tiny.get("input_pool", 1))
    raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONE_NAMES)}")
