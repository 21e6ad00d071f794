"""Gradient Ascent (SPEC §3, Eq. 8): maximise the CosFace loss of the forget samples."""

import torch

from faceunlearn.losses.cosface import cosface_loss
from faceunlearn.losses.float32 import float32


@float32
def gradient_ascent_loss(
    cosine: torch.Tensor, labels: torch.Tensor, scale: float = 64.0, margin: float = 0.4
) -> torch.Tensor:
    """``L_GA = −L_cos = −CE(s·(cos θ_j − m·[j = y]), y)``, mean over the batch.

    Unbounded below: the paper runs it with a lower learning rate than the other methods.
    """
    return -cosface_loss(cosine, labels, scale, margin)
