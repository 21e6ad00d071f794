"""Training objectives as pure functions of tensors (each unit-tested against SPEC's formula)."""

from faceunlearn.losses.cosface import cosface_loss
from faceunlearn.losses.dispersion import dispersion_loss, hard_dispersion_loss

__all__ = ["cosface_loss", "dispersion_loss", "hard_dispersion_loss"]
