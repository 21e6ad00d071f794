"""Boundary Shrink (SPEC §3, Eq. 9; Chen et al., CVPR 2023).

Recipe, following the official code: on a frozen copy of the original model take one FGSM
step from the clean forget image, without random start,
``x' = clip(x + ε·sign(∇_x L_cos(f_orig(x), y)))`` with ``ε = 0.1`` in [0, 1] pixel space;
the nearest-boundary label is ``y_nbi = argmax_j cos θ_j(f_orig(x'))`` (not forced ≠ y);
the live model is then trained with ``L_cos(f_θ(x), y_nbi)`` on the CLEAN image.

The gradient ``∇_x`` is computed by the caller (it needs the frozen model); these functions
are the tensor arithmetic around it.
"""

import torch

from faceunlearn.losses.cosface import cosface_loss
from faceunlearn.losses.float32 import float32


def fgsm_images(
    images: torch.Tensor,
    input_gradient: torch.Tensor,
    epsilon: float,
    pixel_range: tuple[float, float] = (-1.0, 1.0),
) -> torch.Tensor:
    """``x' = clip(x + ε_n·sign(∇_x L), low, high)`` with ``ε_n = ε·(high − low)``; detached.

    ``epsilon`` is given in [0, 1] pixel space; ``pixel_range = (low, high)`` is the range of the
    normalised images, so ``ε_n`` is the same step in normalised units (``2ε`` for our
    ``(x/255 − 0.5)/0.5`` normalisation to [-1, 1]). Pixels with zero gradient do not move.
    """
    low, high = pixel_range
    step = epsilon * (high - low)
    adversarial = images.detach() + step * input_gradient.detach().sign()
    return adversarial.clamp(low, high).detach()


def nearest_boundary_labels(cosine_adversarial: torch.Tensor) -> torch.LongTensor:
    """``y_nbi = argmax_j cos θ_j(f_orig(x'))`` over all classes (may equal the true label)."""
    return cosine_adversarial.detach().argmax(dim=1)


@float32
def boundary_shrink_loss(
    cosine: torch.Tensor, neighbour_labels: torch.Tensor, scale: float = 64.0, margin: float = 0.4
) -> torch.Tensor:
    """``L_BS = CE(s·(cos θ_j − m·[j = y_nbi]), y_nbi)`` with ``cos θ`` of the live model on the clean ``x``."""
    return cosface_loss(cosine, neighbour_labels, scale, margin)
