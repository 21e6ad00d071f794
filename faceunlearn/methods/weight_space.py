"""Weight-space tools for leaving the start model's basin (issue 28): the network at other weights.

Forgetting done by a small move from the start weights ``θ_0`` is undone by a small move back: resistance to
relearning follows the weight distance to the original and the loss of linear connectivity (Siddiqui et al.,
NeurIPS 2025), and flat minima of the forgetting loss resist relearning better (Fan et al., ICML 2025). Two
method options act on that (``Dispersion(midpoint=…, sam_rho=…)``), both by running the backbone at other
weights with ``torch.func.functional_call`` so that gradients flow back to ``θ``:

* ``midpoint_weights``: ``(θ + θ_0)/2`` for every trainable tensor — the forgetting loss is asked to hold at
  the weight midpoint too, so a straight line back to the start model does not find the person again;
* ``sharpness_weights``: SAM's ``θ + ρ·g/‖g‖`` with ``g = ∇_θ L`` — the forgetting loss at the worst nearby
  point (Foret et al., ICLR 2021), its gradient taken there.

``relative_distance`` is the diagnostic logged during training and reported by the audit's basin test.
"""
from __future__ import annotations

import torch
from torch import nn


def trainable(module: nn.Module) -> dict[str, nn.Parameter]:
    """``module``'s trainable floating-point parameters by name."""
    return {name: p for name, p in module.named_parameters() if p.requires_grad and p.is_floating_point()}


def relative_distance(weights: dict[str, torch.Tensor], start: dict[str, torch.Tensor]) -> torch.Tensor:
    """``‖θ − θ_0‖ / ‖θ_0‖`` over the tensors of ``weights`` (a 0-d tensor on their device; no host sync)."""
    names = [name for name, value in weights.items() if value.is_floating_point()]
    if not names:
        return torch.zeros(())
    moved = torch.stack([(weights[n].detach().float() - start[n].float()).square().sum() for n in names]).sum()
    size = torch.stack([start[n].float().square().sum() for n in names]).sum()
    return (moved / size.clamp_min(1e-30)).sqrt()


def midpoint_weights(weights: dict[str, torch.Tensor], start: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``(θ + θ_0)/2`` for every tensor of ``weights`` (differentiable in ``θ``; ``θ_0`` is a constant)."""
    return {name: (value + start[name].detach().to(value.dtype)) / 2 for name, value in weights.items()}


def sharpness_weights(loss: torch.Tensor, weights: dict[str, torch.Tensor], rho: float) -> dict[str, torch.Tensor]:
    """SAM's ascent point ``θ + ρ·g/‖g‖``, ``g = ∇_θ loss`` (the step is a constant: the gradient of a loss at
    these weights is SAM's, ``∇L(θ + ε)``). A parameter the loss does not reach keeps its value."""
    if rho < 0:
        raise ValueError(f"sam_rho must be >= 0, got {rho}")
    names = list(weights)
    grads = torch.autograd.grad(loss, [weights[n] for n in names], retain_graph=True, allow_unused=True)
    grads = [torch.zeros_like(weights[n]) if g is None else g.detach() for n, g in zip(names, grads)]
    norm = torch.stack([g.float().square().sum() for g in grads]).sum().sqrt().clamp_min(1e-12)
    return {n: weights[n] + (rho / norm).to(g.dtype) * g for n, g in zip(names, grads)}


def embed_at(module, weights: dict[str, torch.Tensor], images: torch.Tensor) -> torch.Tensor:
    """``module``'s embeddings of ``images`` with its backbone's tensors of ``weights`` replaced (the rest, and
    every buffer, its own), through ``module.embed_with`` (its memory format and forward chunks)."""
    backbone = module.backbone

    def call(x):
        return torch.func.functional_call(backbone, weights, (x,), strict=False)

    return module.embed_with(call, images)
