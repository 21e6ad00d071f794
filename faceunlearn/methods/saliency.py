"""SalUn weight saliency (Fan et al., ICLR 2024): which parameters an unlearning run may move.

SPEC §3: the saliency of a parameter element is ``|Σ_{B ⊂ D_f^train} ∇_θ L_forget(B)|`` — the absolute
value of the forgetting loss's gradient summed over the forget set — ranked globally over every
trainable element; the mask keeps the top fraction ``γ`` (SalUn-0.5 keeps the top 50 %). The masked-out
elements must not move at all; ``FaceModule`` (``saliency_fraction``) enforces that during training.

Everything here is a function of a module and batches; ``FaceModule`` calls them once at the start of
fit. Forgetting losses (``SALIENCY_LOSSES``) are picked by name:

- ``cfga``: CosFace gradient ascent, ``−L_cos(f(x_f), y_f)`` (the sign does not change ``|∇|``);
- ``embnorm``: the mean L2 norm of the raw embeddings ``‖f(x_f)‖``;
- ``lipschitz``: ``1/N Σ_n ‖f(x) − f(x + δ_n)‖ / ‖δ_n‖``, ``δ_n ~ N(0, σ²)``, the noisy pass without
  gradient (SPEC §3, Lipschitz Unlearning); the noise is drawn from a seeded generator.
"""

from __future__ import annotations

from typing import Callable, Iterable, Mapping

import torch
from torch import nn

from faceunlearn.losses import gaussian_noise, lipschitz_loss

#: a forgetting loss: ``loss_fn(module, batch) -> scalar``; ``batch`` has "image" [B,3,H,W] and "label" [B]
SaliencyLoss = Callable[[nn.Module, Mapping[str, torch.Tensor]], torch.Tensor]

SALIENCY_LOSSES = ("cfga", "embnorm", "lipschitz")


# -- forgetting losses ---------------------------------------------------------------------------
def cfga_loss(module: nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """CosFace gradient ascent: ``−L_cos`` of the forget batch (``module.head`` is the CosFace head)."""
    return -module.head(module(batch["image"]), batch["label"])


def embnorm_loss(module: nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Mean L2 norm of the raw (unnormalised) embeddings ``f(x)``."""
    return module(batch["image"]).float().norm(dim=1).mean()


def make_lipschitz_loss(noise_std: float = 0.1, noise_draws: int = 4, seed: int = 0) -> SaliencyLoss:
    """The Lipschitz loss with ``noise_draws`` noisy copies of each image, ``δ ~ N(0, noise_std²)``.

    The noise comes from a CPU generator seeded with ``seed`` (then moved to the images' device), so a
    sequence of calls draws the same noise on any device. The noisy embeddings carry no gradient.
    """
    if noise_std <= 0:
        raise ValueError(f"saliency noise std must be > 0, got {noise_std}")
    if noise_draws < 1:
        raise ValueError(f"saliency noise draws must be >= 1, got {noise_draws}")
    generator = torch.Generator().manual_seed(seed)

    def loss(module: nn.Module, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        images = batch["image"]
        shape = (noise_draws, *images.shape)
        noise, norms = gaussian_noise(shape, noise_std, generator=generator)
        noise = noise.to(device=images.device, dtype=images.dtype)
        clean = module(images)
        with torch.no_grad():
            noisy = torch.stack([module(images + delta) for delta in noise])
        return lipschitz_loss(clean.float(), noisy.float(), norms.to(images.device).float())

    return loss


def make_saliency_loss(name: str, noise_std: float = 0.1, noise_draws: int = 4, seed: int = 0) -> SaliencyLoss:
    """The forgetting loss called ``name`` (one of ``SALIENCY_LOSSES``); the noise settings are Lipschitz's."""
    if name == "cfga":
        return cfga_loss
    if name == "embnorm":
        return embnorm_loss
    if name == "lipschitz":
        return make_lipschitz_loss(noise_std, noise_draws, seed)
    raise ValueError(f"unknown saliency loss {name!r}; choose one of {', '.join(SALIENCY_LOSSES)}")


# -- saliency and masks --------------------------------------------------------------------------
def saliency_scores(
    module: nn.Module, batches: Iterable[Mapping[str, torch.Tensor]], loss_fn: SaliencyLoss
) -> dict[str, torch.Tensor]:
    """``|Σ_batches ∇_θ loss_fn(module, batch)|`` for every trainable parameter (``requires_grad``).

    Frozen parameters are left out (they are never ranked). The module runs in eval mode (BatchNorm
    uses and keeps its running statistics, dropout is off); every submodule's mode is restored
    afterwards. Gradients come from ``torch.autograd.grad``, so no ``.grad`` is written or changed.
    Returns float32 tensors shaped like the parameters, keyed by ``named_parameters`` names.
    """
    parameters = {name: p for name, p in module.named_parameters() if p.requires_grad}
    if not parameters:
        raise ValueError("saliency: the module has no trainable parameters")
    sums = {name: torch.zeros_like(p, dtype=torch.float32) for name, p in parameters.items()}
    modes = {submodule: submodule.training for submodule in module.modules()}
    module.eval()
    count = 0
    try:
        for batch in batches:
            with torch.enable_grad():
                loss = loss_fn(module, batch)
                if loss.ndim != 0:
                    raise ValueError(f"saliency loss must be a scalar, got shape {tuple(loss.shape)}")
                grads = torch.autograd.grad(loss, list(parameters.values()), allow_unused=True)
            with torch.no_grad():
                for total, grad in zip(sums.values(), grads):
                    if grad is not None:
                        total.add_(grad.float())
            count += 1
    finally:
        for submodule, training in modes.items():
            submodule.training = training
    if count == 0:
        raise ValueError("saliency: no forget batches (is D_f^train empty?)")
    scores = {name: total.abs_() for name, total in sums.items()}
    bad = [name for name, score in scores.items() if not torch.isfinite(score).all()]
    if bad:
        raise FloatingPointError(f"saliency: non-finite gradient in {', '.join(bad[:5])}")
    return scores


def _check_fraction(fraction: float) -> None:
    if not (isinstance(fraction, (int, float)) and 0.0 < fraction <= 1.0):
        raise ValueError(
            f"saliency fraction γ must be in (0, 1] (the share of parameter elements that may change, "
            f"e.g. 0.5 for SalUn-0.5), got {fraction!r}"
        )


def saliency_masks(scores: Mapping[str, torch.Tensor], fraction: float) -> dict[str, torch.Tensor]:
    """Boolean masks keeping the top ``fraction`` γ of all elements of ``scores``, ranked globally.

    Exactly ``k = round(γ·N)`` elements are True (Python's ``round``: halves go to the even
    integer), N being the total number of elements over every tensor. Ties at the threshold are
    broken by position: among elements whose score equals the k-th largest score, the ones first in
    the concatenation of the flattened tensors (in the order of ``scores``) are kept. That is the
    first k of a stable descending sort, computed in O(N) with ``kthvalue`` and a cumulative count.
    """
    _check_fraction(fraction)
    if not scores:
        raise ValueError("saliency masks: no scores")
    names = list(scores)
    flat = torch.cat([scores[name].detach().reshape(-1).float() for name in names])
    total = flat.numel()
    k = round(fraction * total)
    if k < 1:
        raise ValueError(f"saliency fraction γ={fraction} keeps no element of the {total} parameter elements")
    if not torch.isfinite(flat).all():
        raise ValueError("saliency masks: scores must be finite")
    if k == total:
        keep = torch.ones_like(flat, dtype=torch.bool)
    else:
        threshold = torch.kthvalue(flat.cpu() if flat.device.type == "mps" else flat, total - k + 1).values.to(flat.device)
        above = flat > threshold
        at = flat == threshold
        needed = k - int(above.sum())
        keep = above | (at & (torch.cumsum(at, 0) <= needed))
    masks, start = {}, 0
    for name in names:
        n = scores[name].numel()
        masks[name] = keep[start : start + n].view(scores[name].shape)
        start += n
    return masks


# -- compact storage (checkpoints): 1 bit per element ---------------------------------------------
_BIT_WEIGHTS = torch.tensor([128, 64, 32, 16, 8, 4, 2, 1], dtype=torch.uint8)


def pack_mask(mask: torch.Tensor) -> torch.Tensor:
    """A boolean tensor as uint8 bytes, 8 elements each (MSB first), on the CPU."""
    flat = mask.detach().reshape(-1).to("cpu", torch.uint8)
    flat = torch.cat([flat, flat.new_zeros((-flat.numel()) % 8)])
    return (flat.view(-1, 8) * _BIT_WEIGHTS).sum(dim=1, dtype=torch.uint8)


def unpack_mask(bits: torch.Tensor, shape) -> torch.Tensor:
    """Inverse of ``pack_mask``: the boolean tensor of ``shape`` (on the CPU)."""
    shape = torch.Size(shape)
    flat = (bits.to("cpu", torch.uint8).unsqueeze(1) & _BIT_WEIGHTS) != 0
    return flat.reshape(-1)[: shape.numel()].view(shape).clone()
