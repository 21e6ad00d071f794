"""Small PNGs: matplotlib renders at 100 dpi, Pillow stores a 256-colour palette (plots use few colours)."""
from __future__ import annotations

import io
from pathlib import Path

from matplotlib.figure import Figure

from faceunlearn.io.atomic import atomic_path

DPI = 100


def save_png(figure: Figure, path: str | Path) -> Path:
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    buffer.seek(0)
    image = Image.open(buffer).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    with atomic_path(path) as partial:
        image.save(partial, format="PNG", optimize=True)
    return path
