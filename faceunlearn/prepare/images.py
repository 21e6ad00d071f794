"""Decoding one source image to RGB, or saying why it cannot be used.

Pillow decodes fully (``Image.load``), so a truncated JPEG or PNG raises instead of coming back
half grey as OpenCV's ``imread`` would. EXIF orientation is not applied: annotations refer to the
stored pixels.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
from PIL import Image


class UnusableImage(Exception):
    """The image is missing or cannot be decoded; the message is the reason written to the skip report."""


def read_rgb(path: str) -> np.ndarray:
    """``[H, W, 3]`` uint8 RGB pixels of ``path``, or ``UnusableImage`` with the reason."""
    try:
        size = os.path.getsize(path)
    except FileNotFoundError:
        raise UnusableImage("missing file") from None
    except OSError as error:
        raise UnusableImage(f"cannot stat file ({error.strerror})") from None
    if size == 0:
        raise UnusableImage("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Possibly corrupt EXIF data"
            with Image.open(path) as image:
                image.load()
                rgb = np.asarray(image.convert("RGB"))
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as error:
        raise UnusableImage(f"unreadable image ({type(error).__name__}: {error})") from None
    if rgb.ndim != 3 or rgb.shape[0] < 2 or rgb.shape[1] < 2:
        raise UnusableImage(f"image too small ({rgb.shape[1]}x{rgb.shape[0]})")
    return rgb
