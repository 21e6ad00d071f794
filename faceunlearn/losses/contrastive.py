"""Contrastive Unlearning (SPEC §3; Lee et al. 2025), InfoNCE form, official temperature ``T = 0.7``.

Our reading of Lee et al.'s loss adapted to identities (forget-vs-retain contrast): each
forget anchor's positives are the retain embeddings (other identities, pulled toward) and its
negatives are the other forget samples of its own identity (pushed away). Notation as in
``dispersion``: ``ẑ = z/‖z‖``, ``P(i)`` = the other same-identity indices of forget anchor ``i``,
``A`` = anchors with ``|P(i)| ≥ 1``; ``r̂`` ranges over the normalised retain embeddings.

A forget batch with no anchor (``A`` empty) returns an exact zero that is still connected to
the graph, never NaN. The retain CosFace term ``λ·L_cos`` is the caller's business.
"""

import torch
import torch.nn.functional as F

from faceunlearn.losses.float32 import float32


@float32
def contrastive_unlearning_loss(
    forget: torch.Tensor,
    forget_labels: torch.Tensor,
    retain: torch.Tensor,
    temperature: float = 0.7,
) -> torch.Tensor:
    """``L_CU = 1/|A| Σ_{i∈A} ℓ_i`` with

    ``ℓ_i = −log( Σ_r exp(ẑ_iᵀr̂/T) / (Σ_r exp(ẑ_iᵀr̂/T) + Σ_{p∈P(i)} exp(ẑ_iᵀẑ_p/T)) )``,

    computed with logsumexp. ``forget`` [B, d] with identity labels ``forget_labels`` [B];
    ``retain`` [R, d], ``R ≥ 1``.
    """
    if retain.shape[0] == 0:
        raise ValueError("contrastive_unlearning_loss needs at least one retain embedding")
    forget_n = F.normalize(forget.float(), dim=1)
    retain_n = F.normalize(retain.float(), dim=1)
    negatives = forget_labels[:, None] == forget_labels[None, :]
    negatives.fill_diagonal_(False)
    anchors = negatives.any(dim=1)
    if not anchors.any():
        return forget.sum() * 0.0 + retain.sum() * 0.0
    retain_logits = forget_n @ retain_n.T / temperature  # [B, R]
    forget_logits = (forget_n @ forget_n.T / temperature).masked_fill(~negatives, float("-inf"))  # [B, B]
    numerator = torch.logsumexp(retain_logits, dim=1)
    denominator = torch.logsumexp(torch.cat([retain_logits, forget_logits], dim=1), dim=1)
    return (denominator - numerator)[anchors].mean()
