"""Unlearning methods: one LightningModule per file, on the shared ``FaceModule`` base."""

from faceunlearn.methods.base import FaceModule
from faceunlearn.methods.dispersion import Dispersion
from faceunlearn.methods.finetune import FineTune
from faceunlearn.methods.hard_dispersion import HardDispersion

__all__ = ["Dispersion", "FaceModule", "FineTune", "HardDispersion"]
