"""CosFace classification head shared by every method (SPEC §1)."""

import torch
import torch.nn.functional as F
from torch import nn

from faceunlearn.losses import cosface_loss
from faceunlearn.losses.float32 import float32


class CosFaceHead(nn.Module):
    """Class weights ``W`` [C, d]; ``cos θ_j = Ŵ_jᵀ ẑ``; loss ``CE(s·(cos θ_j − m·[j = y]), y)``.

    Defaults ``s = 64, m = 0.4`` are insightface's CosFace. The rows of ``W`` are the class
    centroids used for the paper's centroid accuracy.
    """

    def __init__(self, embedding_size: int, num_classes: int, scale: float = 64.0, margin: float = 0.4):
        super().__init__()
        self.scale = scale
        self.margin = margin
        self.weight = nn.Parameter(torch.normal(0.0, 0.01, (num_classes, embedding_size)))

    @float32  # cosines near 1 must not round to bf16 steps under mixed precision
    def cosine(self, embeddings: torch.Tensor) -> torch.Tensor:
        return F.normalize(embeddings.float(), dim=1) @ F.normalize(self.weight.float(), dim=1).T

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        num_classes = self.weight.shape[0]
        if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"label {int(labels.max())} is outside the CosFace head's {num_classes} classes")
        return cosface_loss(self.cosine(embeddings), labels, self.scale, self.margin)
