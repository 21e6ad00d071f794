"""Networks: IResNet backbones (insightface layout), the CosFace head, and weight loading."""

from faceunlearn.models.cosface import CosFaceHead
from faceunlearn.models.iresnet import IResNet, build_backbone
from faceunlearn.models.weights import load_weights

__all__ = ["CosFaceHead", "IResNet", "build_backbone", "load_weights"]
