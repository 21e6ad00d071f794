"""SalUn's mask on a module's trainable parameters during a fit: which elements may move, and the rest held still.

``FaceModule(saliency_fraction=γ)`` keeps one ``SaliencyMask``: at the start of fit the masks are computed from
the saliency over D_f^train (``faceunlearn.methods.saliency``), unless a resumed checkpoint brought them, and one
process's masks are broadcast to every process; after that, the masked-out elements get no gradient (so
clipping and the optimiser see 0) and their start values are written back after every optimiser step (so
neither weight decay nor momentum moves them). The masks travel in checkpoints, packed 8 per byte.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from faceunlearn.methods.saliency import make_saliency_loss, pack_mask, saliency_masks, saliency_scores, unpack_mask


class SaliencyMask:
    """The masks by parameter name (True = may change) and the fixed elements' start values."""

    def __init__(self, fraction: float, loss: str, noise_std: float, noise_draws: int):
        self.fraction, self.loss, self.noise_std, self.noise_draws = fraction, loss, noise_std, noise_draws
        #: set at fit start or from a checkpoint
        self.masks: dict[str, torch.Tensor] | None = None
        #: share of trainable elements the masks keep
        self.kept_fraction: float | None = None
        self._fixed: list[tuple[nn.Parameter, torch.Tensor, torch.Tensor]] = []

    def compute(self, module: nn.Module, batches) -> dict[str, torch.Tensor]:
        """The top ``fraction`` of ``module``'s trainable elements by saliency over ``batches`` (D_f^train)."""
        loss_fn = make_saliency_loss(self.loss, self.noise_std, self.noise_draws, seed=0)
        return saliency_masks(saliency_scores(module, batches, loss_fn), self.fraction)

    def start(self, module: nn.Module, compute: Callable[[], dict[str, torch.Tensor]], broadcast, device) -> None:
        """Compute the masks (``compute()``, unless restored from a checkpoint), make them one for every process
        (``broadcast(obj, src=0)``: gradients may differ in the last bit between devices) and record the fixed values."""
        if self.masks is None:
            masks = compute()
            packed = {name: (tuple(mask.shape), pack_mask(mask)) for name, mask in masks.items()}
            packed = broadcast(packed, src=0)
            self.masks = {name: unpack_mask(bits, shape) for name, (shape, bits) in packed.items()}
        parameters = {name: p for name, p in module.named_parameters() if p.requires_grad}
        if set(parameters) != set(self.masks) or any(parameters[name].shape != mask.shape for name, mask in self.masks.items()):
            raise RuntimeError(
                "the saliency masks (from the checkpoint) do not match this model's trainable parameters; "
                "was `freeze` or the backbone changed since they were computed?"
            )
        self.masks = {name: mask.to(device) for name, mask in self.masks.items()}
        self._fixed = []
        with torch.no_grad():
            for name, parameter in parameters.items():
                fixed = ~self.masks[name]
                if fixed.any():
                    self._fixed.append((parameter, fixed, parameter.detach()[fixed].clone()))
        kept = sum(int(mask.sum()) for mask in self.masks.values())
        self.kept_fraction = kept / sum(mask.numel() for mask in self.masks.values())

    def zero_fixed_gradients(self) -> None:
        for parameter, fixed, _ in self._fixed:
            if parameter.grad is not None:
                parameter.grad.masked_fill_(fixed, 0.0)

    @torch.no_grad()
    def restore_fixed(self) -> None:
        for parameter, fixed, values in self._fixed:
            parameter.masked_scatter_(fixed, values)

    def release(self) -> None:
        """Drop the copies of the fixed values (the fit is over)."""
        self._fixed = []

    def state(self) -> dict | None:
        """What a checkpoint keeps (None before the masks exist)."""
        if self.masks is None:
            return None
        return {"fraction": self.fraction, "loss": self.loss,
                "masks": {name: {"shape": list(mask.shape), "bits": pack_mask(mask)} for name, mask in self.masks.items()}}

    def load(self, saved: dict) -> None:
        """Masks from a checkpoint's ``state()``; refused if computed with other settings."""
        if (saved["fraction"], saved["loss"]) != (self.fraction, self.loss):
            raise ValueError(
                f"the checkpoint's saliency masks were computed with saliency_fraction={saved['fraction']}, "
                f"saliency_loss={saved['loss']!r}, but this run sets {self.fraction}, {self.loss!r}"
            )
        self.masks = {name: unpack_mask(entry["bits"], entry["shape"]) for name, entry in saved["masks"].items()}
