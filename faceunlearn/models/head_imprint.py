"""Weight imprinting: CosFace class weights from class-mean embeddings (for start weights without a head)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F


@torch.no_grad()
def class_mean_embeddings(
    embed: Callable[[torch.Tensor], torch.Tensor], batches: Iterable[dict], num_classes: int, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(S, n)``: ``S_c = Σ_{i: y_i = c} ẑ_i`` [C, D] (float32) and ``n_c`` [C] over ``batches``.

    ``normalize(S_c)`` is the imprinted class weight (the normalised mean of unit embeddings).
    """
    sums = counts = None
    for batch in batches:
        embeddings = F.normalize(embed(batch["image"].to(device)).float(), dim=1)
        labels = batch["label"].to(device)
        if sums is None:
            sums = torch.zeros(num_classes, embeddings.shape[1], device=device)
            counts = torch.zeros(num_classes, dtype=torch.long, device=device)
        sums.index_add_(0, labels, embeddings)
        counts += torch.bincount(labels, minlength=num_classes)
    if sums is None:
        raise ValueError("no training images to imprint the CosFace head from")
    return sums, counts


def imprinted_weights(sums: torch.Tensor, counts: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``weight`` with every class that has images replaced by ``normalize(S_c)``."""
    present = counts > 0
    out = weight.detach().clone()
    out[present.to(out.device)] = F.normalize(sums[present], dim=1).to(out)
    return out
