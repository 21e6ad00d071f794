"""Input checks shared by the metric functions: clear errors instead of silent broadcasting."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def unit_rows(x: torch.Tensor, name: str, device: torch.device | str | None = None) -> torch.Tensor:
    """Check an [N, d] embedding tensor; return it as float32 with unit-norm rows (on ``device``).

    Any floating dtype is accepted (float16/bfloat16 embeddings are upcast before normalising, so
    scores are float32 dot products).
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D tensor [N, d], got shape {tuple(getattr(x, 'shape', ()))}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 rows)")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got {x.dtype}")
    x = x.detach().to(device=device, dtype=torch.float32)
    norms = torch.linalg.vector_norm(x, dim=1, keepdim=True)
    if not bool(torch.isfinite(norms).all()):  # O(N) test; the O(N·d) one only when it fails
        if not bool(torch.isfinite(x).all()):
            raise ValueError(f"{name} contains non-finite values (nan/inf)")
        return F.normalize(x / x.abs().amax(dim=1, keepdim=True), dim=1)  # finite, but the norm overflowed
    return x / norms.clamp_min(1e-12)


def vector(x: torch.Tensor, n: int, name: str, of: str, device: torch.device | str | None = None) -> torch.Tensor:
    """Check a 1-D per-row tensor (labels / image ids) of length ``n``."""
    if not isinstance(x, torch.Tensor) or x.ndim != 1:
        raise ValueError(f"{name} must be a 1-D tensor, got shape {tuple(getattr(x, 'shape', ()))}")
    if x.shape[0] != n:
        raise ValueError(f"length mismatch: {name} has {x.shape[0]} entries but {of} has {n} rows")
    return x.detach().to(device)


def check_ks(ks) -> tuple[int, ...]:
    """The k of R@k: a non-empty sequence of positive integers."""
    ks = tuple(int(k) for k in ks)
    if not ks or any(k < 1 for k in ks):
        raise ValueError(f"ks must be positive integers, got {list(ks)}")
    return ks
