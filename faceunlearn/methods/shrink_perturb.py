"""Shrink-and-perturb: leave the start model's basin before unlearning (issue 28).

Forgetting done by a small move from the start weights is undone by a small move back (Siddiqui et al.,
NeurIPS 2025: resistance to relearning follows the weight distance to the original and the loss of
linear connectivity; Lee et al., NeurIPS 2025, UNDO: noise the weights, then distil the utility back).
At the start of fit every trainable floating-point parameter ``θ`` of the network becomes

    θ ← α·θ + σ·rms(θ)·ε,     ε ~ N(0, I) (seeded; the same draw on every process)

(``rms(θ)``: the tensor's root mean square, so σ is relative to each layer's scale). The frozen start
model ``f_0`` keeps the unperturbed weights, so a distillation retention term pulls everyone else's
embeddings back to the start model's while the forgetting terms act from the new point.
"""
from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def shrink_and_perturb(module: nn.Module, shrink: float = 1.0, noise: float = 0.0, seed: int = 0) -> None:
    """Shrink every trainable floating-point parameter of ``module`` by ``shrink`` and add ``noise``·rms noise, in place."""
    if not 0.0 < shrink <= 1.0 or noise < 0.0:
        raise ValueError(f"shrink_perturb: shrink must be in (0, 1] and noise >= 0, got shrink={shrink}, noise={noise}")
    generator = torch.Generator().manual_seed(seed)
    for _, parameter in sorted(module.named_parameters()):  # a fixed order: the same draw for the same network
        if not parameter.requires_grad or not parameter.is_floating_point():
            continue
        scale = parameter.float().square().mean().sqrt()
        draw = torch.randn(parameter.shape, generator=generator).to(parameter.device, parameter.dtype)
        parameter.mul_(shrink).add_(noise * scale * draw)
