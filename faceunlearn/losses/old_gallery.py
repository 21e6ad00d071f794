"""Old-gallery separation: a forgotten person no longer matches what the start model embedded (issue 28).

A deployment that keeps a gallery embedded by the start model ``f_0`` (not re-enrolled) still finds a
forgotten person if the unlearned network maps their photos near ``f_0``'s embeddings of them (the
audit's stale-gallery test). For each forget image ``i`` with the start model's embeddings ``ĝ_j =
f_0(x_j)/‖f_0(x_j)‖`` of the batch, ``P(i)`` the other images of its identity and ``N(i)`` the images of
other people (the batch's other identities and, if given, ``others``: the start model's embeddings of
other people),

    L_old = 1/|A| Σ_{i∈A} 1/|P(i)| Σ_{p∈P(i)} max(ẑ_iᵀĝ_p − max_{n∈N(i)} ẑ_iᵀĝ_n, 0)

pushes each same-person similarity to the old gallery down to the level of the closest other person in
it — no further (rank 1 at chance against the old gallery, not last). ``ĝ`` carries no gradient (``f_0``
is frozen). Retention terms (``distill``) keep everyone else matchable against ``f_0``'s gallery. A ``margin``
δ > 0 hinges at ``ẑ_iᵀĝ_p − max_n ẑ_iᵀĝ_n + δ`` (as ``rank_confusion_loss``'s: past the tie on the training photos).
"""

import torch
import torch.nn.functional as F

from faceunlearn.losses.float32 import float32


@float32
def old_gallery_loss(embeddings: torch.Tensor, start_embeddings: torch.Tensor, labels: torch.Tensor,
                     others: torch.Tensor | None = None, margin: float = 0.0) -> torch.Tensor:
    """``L_old`` (module docstring): ``embeddings`` f_θ(x), ``start_embeddings`` f_0(x) of the same images."""
    z = F.normalize(embeddings.float(), dim=1)
    old = F.normalize(start_embeddings.detach().float(), dim=1)
    similarity = z @ old.T
    positives = labels[:, None] == labels[None, :]
    positives.fill_diagonal_(False)
    negatives = labels[:, None] != labels[None, :]
    level = similarity.masked_fill(~negatives, float("-inf")).amax(dim=1)
    if others is not None and len(others):
        level = torch.maximum(level, (z @ F.normalize(others.detach().float(), dim=1).T).amax(dim=1))
    anchors = positives.any(dim=1) & torch.isfinite(level)
    if not anchors.any():
        return embeddings.sum() * 0.0
    hinge = (similarity - level[:, None] + margin).clamp_min(0.0) * positives
    return (hinge.sum(dim=1)[anchors] / positives.sum(dim=1)[anchors]).mean()
