"""A preview grid of synthetic faces (``docs/synthetic_faces.png``)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from faceunlearn.data.synthetic.generator import SyntheticFaceGenerator


def preview_grid(seed: int = 0, num_identities: int = 6, per_identity: int = 8, **knobs) -> np.ndarray:
    """A uint8 grid: one row per identity; 2 frontal, 2 profile, then ``any``-view columns (the last 2 occluded)."""
    gen = SyntheticFaceGenerator(seed, **knobs)
    rows = []
    for i in range(num_identities):
        ident = np.full(per_identity, 10_000 + i)
        keys = np.arange(per_identity)
        views = ["frontal", "frontal", "profile", "profile"] + ["any"] * (per_identity - 4)
        imgs = np.concatenate([gen.render(ident[j : j + 1], keys[j : j + 1], views[j]) for j in range(per_identity)])
        if per_identity > 5:  # show the occluders: the last columns are "any" images that have one
            candidates = np.arange(100, 1100)
            occluded = candidates[gen.params(np.full(len(candidates), 10_000 + i), candidates)[1]["occluder"] > 0]
            take = occluded[: min(2, per_identity - 5)]
            if len(take):
                imgs[per_identity - len(take) :] = gen.render(np.full(len(take), 10_000 + i), take)
        rows.append(np.concatenate(list(imgs), axis=1))
    return np.concatenate(rows, axis=0)


def save_preview(path: str | os.PathLike = "docs/synthetic_faces.png", seed: int = 0, **kwargs) -> Path:
    """Write ``preview_grid`` as a PNG (``docs/synthetic_faces.png`` is made by this)."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A 256-colour palette keeps the noisy grid small (< 300 KB) at full resolution.
    Image.fromarray(preview_grid(seed, **kwargs)).quantize(256, dither=Image.Dither.NONE).save(path, optimize=True)
    return path
