"""Dispersion losses (SPEC §3, paper Eq. 5 and 6): push same-identity embeddings apart.

Notation, for a batch of embeddings with identity labels: ``ẑ = z/‖z‖``; ``P(i)`` = the other
indices of anchor ``i``'s identity in the batch; ``A`` = anchors with ``|P(i)| ≥ 1``; ``m_d`` =
dispersion margin, a floor on the pushed-apart cosine (similarities below it get no gradient).

A batch in which no anchor has a positive (``A`` empty) has nothing to disperse: both losses
return an exact zero that is still connected to the graph, never NaN. The identity-balanced
sampler makes this impossible during unlearning; it can only arise from hand-made batches.
"""

import torch
import torch.nn.functional as F
from faceunlearn.losses.float32 import float32


def _positive_similarities(embeddings: torch.Tensor, labels: torch.Tensor):
    normalized = F.normalize(embeddings.float(), dim=1)
    similarity = normalized @ normalized.T
    positives = labels[:, None] == labels[None, :]
    positives.fill_diagonal_(False)
    return similarity, positives


@float32
def dispersion_loss(embeddings: torch.Tensor, labels: torch.Tensor, margin: float = 0.0) -> torch.Tensor:
    """Eq. 5: ``L_disp = 1/|A| Σ_{i∈A} 1/|P(i)| Σ_{p∈P(i)} max(ẑ_iᵀẑ_p − m_d, 0)``."""
    similarity, positives = _positive_similarities(embeddings, labels)
    num_positives = positives.sum(dim=1)
    anchors = num_positives > 0
    if not anchors.any():
        return embeddings.sum() * 0.0
    hinge = (similarity - margin).clamp_min(0.0) * positives
    return (hinge.sum(dim=1)[anchors] / num_positives[anchors]).mean()


@float32
def hard_dispersion_loss(embeddings: torch.Tensor, labels: torch.Tensor, margin: float = 0.0) -> torch.Tensor:
    """Eq. 6: ``L_hard = 1/|A| Σ_{i∈A} max(max_{p∈P(i)} ẑ_iᵀẑ_p − m_d, 0)`` (hardest positive only)."""
    similarity, positives = _positive_similarities(embeddings, labels)
    anchors = positives.any(dim=1)
    if not anchors.any():
        return embeddings.sum() * 0.0
    hardest = similarity.masked_fill(~positives, float("-inf")).amax(dim=1)
    return (hardest[anchors] - margin).clamp_min(0.0).mean()


@float32
def view_dispersion_loss(view_a: torch.Tensor, view_b: torch.Tensor, margin: float = 0.0) -> torch.Tensor:
    """Augmented-view dispersion (the paper's §6 proposal): ``L_view = 1/B Σ_i max(ẑ_iᵃᵀẑ_iᵇ − m_d, 0)``.

    ``view_a[i]`` and ``view_b[i]`` embed two augmented views of one forget image; pushing them apart
    removes what is left after identity dispersion: an image still matching itself.
    """
    if view_a.shape != view_b.shape:
        raise ValueError(f"the two views' embeddings differ in shape: {tuple(view_a.shape)} and {tuple(view_b.shape)}")
    cosine = (F.normalize(view_a.float(), dim=1) * F.normalize(view_b.float(), dim=1)).sum(dim=1)
    return (cosine - margin).clamp_min(0.0).mean()
