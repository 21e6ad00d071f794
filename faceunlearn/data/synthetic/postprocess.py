"""The camera: colour transform, blur, sensor noise, quantisation and upsampling to 112×112."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from faceunlearn.data.packed import IMAGE_SIZE
from faceunlearn.data.synthetic.canvas import Canvas, bcast


def _box_blur(x: np.ndarray) -> np.ndarray:
    """3×3 box blur with edge replication over the last two axes."""
    p = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(1, 1), (1, 1)], mode="edge")
    v = p[..., :-2, :] + p[..., 1:-1, :] + p[..., 2:, :]
    return (v[..., :-2] + v[..., 1:-1] + v[..., 2:]) * np.float32(1 / 9)


def postprocess(cv: Canvas, mp: dict, noise: np.ndarray) -> np.ndarray:
    """Colour (gain, contrast, saturation), blur, noise, quantisation, upsampling to 112."""
    img = cv.img
    # One 3×3 colour matrix per image: saturation ∘ contrast ∘ per-channel gain, plus an offset.
    sat = mp["saturation"][:, None, None]
    lum = np.array([0.299, 0.587, 0.114], np.float32)
    mat = sat * np.eye(3, dtype=np.float32) + (1 - sat) * lum[None, None, :]
    mat = mat * (mp["gain"] * mp["contrast"][:, None])[:, None, :]
    off = 0.5 * (1 - mp["contrast"])
    out = np.empty_like(img)
    for c in range(3):
        out[c] = bcast(mat[:, c, 0]) * img[0] + bcast(mat[:, c, 1]) * img[1] + bcast(mat[:, c, 2]) * img[2] + bcast(off)
    for stage in (0.0, 1.0):
        amount = np.clip(mp["blur"] - stage, 0, 1)
        rows = np.flatnonzero(amount > 0)
        if len(rows):
            sub = out[:, rows]
            out[:, rows] = sub + bcast(amount[rows])[None] * (_box_blur(sub) - sub)
    out += noise[:, mp["noise_tile"]] * bcast(mp["noise_sd"])[None]
    out *= 255
    out += 0.5
    q = np.clip(out, 0, 255).astype(np.uint8)
    t = torch.from_numpy(q).permute(1, 0, 2, 3).contiguous(memory_format=torch.channels_last)
    if cv.size != IMAGE_SIZE:
        t = F.interpolate(t, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False)
    return np.ascontiguousarray(t.permute(0, 2, 3, 1).numpy())
