"""Losses run in float32 whatever the training precision.

Under ``precision: bf16-mixed`` Lightning runs the whole step inside ``torch.autocast``, which
would also run a loss's matrix products (``ẑ ẑᵀ``, ``Ŵ ẑ``) in bfloat16: 8 mantissa bits, so
cosines near 1 — exactly the ones dispersion pushes on and CosFace's margin acts on — round to
steps of ~0.004. The backbone may run in bf16; its embeddings, the losses and the metrics do not.
"""

from __future__ import annotations

import functools

import torch

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _as_float32(value):
    if isinstance(value, torch.Tensor) and value.dtype in _LOW_PRECISION:
        return value.float()
    return value


def float32(function):
    """Decorate a loss: half-precision tensor arguments become float32 and autocast is off inside.

    Float32 and float64 arguments pass unchanged.
    """

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        tensors = [value for value in (*args, *kwargs.values()) if isinstance(value, torch.Tensor)]
        device_type = tensors[0].device.type if tensors else "cpu"
        with torch.autocast(device_type, enabled=False):
            return function(*map(_as_float32, args), **{name: _as_float32(value) for name, value in kwargs.items()})

    return wrapper
