"""Unlearning methods: one LightningModule per file, on the shared ``FaceModule`` base."""

from faceunlearn.methods.base import FaceModule
from faceunlearn.methods.boundary_shrink import BoundaryShrink
from faceunlearn.methods.contrastive import ContrastiveUnlearning
from faceunlearn.methods.dispersion import Dispersion
from faceunlearn.methods.finetune import FineTune
from faceunlearn.methods.gradient_ascent import GradientAscent
from faceunlearn.methods.hard_dispersion import HardDispersion
from faceunlearn.methods.lipschitz import LipschitzUnlearning
from faceunlearn.methods.random_labeling import RandomLabeling
from faceunlearn.methods.retain_control import RetainControl
from faceunlearn.methods.retrain import Retrain

__all__ = [
    "BoundaryShrink",
    "ContrastiveUnlearning",
    "Dispersion",
    "FaceModule",
    "FineTune",
    "GradientAscent",
    "HardDispersion",
    "LipschitzUnlearning",
    "RandomLabeling",
    "RetainControl",
    "Retrain",
]
