"""Lipschitz Unlearning (SPEC §3; Foster et al. 2024, Kravets et al. 2025).

Minimising the empirical local Lipschitz constant of the encoder around each forget sample
makes its embedding insensitive to the input, i.e. uninformative. For each forget sample
``x_b`` draw ``N`` noisy copies ``x'_{n,b} = x_b + δ_{n,b}``, ``δ ~ N(0, σ²)`` (official ``N = 25``);
``f`` is the raw (unnormalised) embedding. The retain CosFace term and the SalUn mask are the
caller's business.
"""

import torch
from faceunlearn.losses.float32 import float32


def gaussian_noise(
    shape,
    sigma: float,
    generator: torch.Generator | None = None,
    device=None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``δ ~ N(0, σ²)`` of ``shape`` = [N, B, C, H, W] and its per-sample norms ``‖δ_{n,b}‖₂`` [N, B].

    The norm runs over every dimension after the first two. ``generator`` (if given) must live on
    ``device``; a seeded generator makes the draw reproducible.
    """
    shape = tuple(shape)
    if len(shape) < 3:
        raise ValueError(f"gaussian_noise expects a shape [N, B, ...] with per-sample dims, got {shape}")
    noise = torch.randn(shape, generator=generator, device=device) * sigma
    norms = noise.flatten(2).norm(dim=2)
    return noise, norms


@float32
def lipschitz_loss(clean: torch.Tensor, noisy: torch.Tensor, noise_norms: torch.Tensor) -> torch.Tensor:
    """``L_lip = 1/(N·B) Σ_n Σ_b ‖f(x_b) − f(x_b + δ_{n,b})‖₂ / ‖δ_{n,b}‖₂``.

    ``clean`` [B, d] = ``f(x)`` with gradient; ``noisy`` [N, B, d] = ``f(x + δ)``, which SPEC takes
    without gradient: the caller computes it under ``torch.no_grad()`` (it is also detached here);
    ``noise_norms`` [N, B] = ``‖δ_{n,b}‖₂`` in input space.
    """
    if noisy.dim() != 3 or noisy.shape[1:] != clean.shape or noise_norms.shape != noisy.shape[:2]:
        raise ValueError(
            f"lipschitz_loss expects clean [B, d], noisy [N, B, d], noise_norms [N, B]; got "
            f"{tuple(clean.shape)}, {tuple(noisy.shape)}, {tuple(noise_norms.shape)}"
        )
    difference = clean.float().unsqueeze(0) - noisy.detach().float()
    return (difference.norm(dim=2) / noise_norms.detach().float()).mean()
