"""Rank confusion: a forgotten person's own photos no closer than other people's (issue 28).

Dispersion (Eq. 5) pushes same-person cosines down to a margin but never compares them with other
people's, so a forgotten person's nearest photo can still be their own (forget R@1 92 % on real faces).
Rank confusion compares them: for each anchor ``i`` of the forget batch, with ``P(i)`` its other
same-identity images and ``N(i)`` images of other people (the batch's other identities and, if given,
``others``: e.g. a retain batch),

    L_rank = 1/|A| Σ_{i∈A} max(max_{p∈P(i)} ẑ_iᵀẑ_p − max_{n∈N(i)} ẑ_iᵀẑ_n, 0)

over anchors ``A`` with a positive and a negative. It stops at a tie: the hardest positive is pushed
*down to* the hardest negative, never below it — rank 1 at chance, not "anti-retrieval" (a person whose
photos are always ranked last is named as surely as one ranked first). A ``margin`` δ > 0 hinges at
``max_p − max_n + δ`` instead: the training photos are pushed δ past the tie, because a tie met on them is not
met on new photos of the same people (forgetting overfits D_f^train; docs/model_selection.md).
"""

import torch
import torch.nn.functional as F

from faceunlearn.losses.float32 import float32


@float32
def rank_confusion_loss(embeddings: torch.Tensor, labels: torch.Tensor, others: torch.Tensor | None = None,
                        margin: float = 0.0) -> torch.Tensor:
    """``L_rank`` (module docstring); ``others`` [M, d]: embeddings of other people (never the batch's identities);
    ``margin``: δ ≥ 0."""
    z = F.normalize(embeddings.float(), dim=1)
    similarity = z @ z.T
    positives = labels[:, None] == labels[None, :]
    positives.fill_diagonal_(False)
    negatives = labels[:, None] != labels[None, :]
    hardest_positive = similarity.masked_fill(~positives, float("-inf")).amax(dim=1)
    hardest_negative = similarity.masked_fill(~negatives, float("-inf")).amax(dim=1)
    if others is not None and len(others):
        outside = z @ F.normalize(others.float(), dim=1).T
        hardest_negative = torch.maximum(hardest_negative, outside.amax(dim=1))
    anchors = positives.any(dim=1) & torch.isfinite(hardest_negative)
    if not anchors.any():
        return embeddings.sum() * 0.0
    return (hardest_positive[anchors] - hardest_negative[anchors] + margin).clamp_min(0.0).mean()
