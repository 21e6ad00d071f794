"""CosFace (large-margin cosine) loss, SPEC §1."""

import torch
import torch.nn.functional as F
from faceunlearn.losses.float32 import float32


@float32
def cosface_loss(cosine: torch.Tensor, labels: torch.Tensor, scale: float = 64.0, margin: float = 0.4) -> torch.Tensor:
    """``L_cos = CE(s·(cos θ_j − m·[j = y]), y)``, mean over the batch.

    ``cosine`` [B, C] holds ``cos θ_j = Ŵ_jᵀ ẑ`` (normalised class weights and embeddings).
    """
    one_hot = F.one_hot(labels, num_classes=cosine.shape[1]).to(cosine.dtype)
    return F.cross_entropy(scale * (cosine - margin * one_hot), labels)
