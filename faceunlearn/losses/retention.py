"""Retention losses on retain batches: keep the start model's embedding geometry for everyone else.

Notation, for a retain batch ``x_r`` of ``B`` images: ``z = f_θ(x_r)`` (the model being unlearned),
``z⁰ = f_0(x_r)`` (the frozen start model, no gradient), ``ẑ = z/‖z‖``. CosFace on retain batches
(``cosface_loss``) protects the classifier; these two protect the embeddings themselves, which is
what retrieval of people the network never trained on depends on.
"""

import torch
import torch.nn.functional as F
from faceunlearn.losses.float32 import float32


@float32
def embedding_distillation_loss(embeddings: torch.Tensor, start_embeddings: torch.Tensor) -> torch.Tensor:
    """``L_distill = 1/B Σ_i (1 − ẑ_iᵀ ẑ⁰_i)``: each retain image keeps its start direction."""
    if embeddings.shape != start_embeddings.shape:
        raise ValueError(f"embeddings {tuple(embeddings.shape)} and start embeddings {tuple(start_embeddings.shape)} differ in shape")
    cosine = (F.normalize(embeddings.float(), dim=1) * F.normalize(start_embeddings.float(), dim=1)).sum(dim=1)
    return (1.0 - cosine).mean()


@float32
def relational_distillation_loss(embeddings: torch.Tensor, start_embeddings: torch.Tensor) -> torch.Tensor:
    """``L_rel = 1/(B(B−1)) Σ_{i≠j} (ẑ_iᵀẑ_j − ẑ⁰_iᵀẑ⁰_j)²``: the batch's pairwise cosines stay the start model's.

    Similarity-preserving distillation (Tung & Mori, ICCV 2019), on cosines: only the relations
    between images are kept, so the whole embedding may rotate. The diagonal (always 1) is left
    out. A batch of one image has no pair: an exact zero that stays connected to the graph.
    """
    if embeddings.shape != start_embeddings.shape:
        raise ValueError(f"embeddings {tuple(embeddings.shape)} and start embeddings {tuple(start_embeddings.shape)} differ in shape")
    count = embeddings.shape[0]
    if count < 2:
        return embeddings.sum() * 0.0
    normalized, start = F.normalize(embeddings.float(), dim=1), F.normalize(start_embeddings.float(), dim=1)
    off_diagonal = ~torch.eye(count, dtype=torch.bool, device=embeddings.device)
    difference = (normalized @ normalized.T - start @ start.T)[off_diagonal]
    return difference.pow(2).mean()
