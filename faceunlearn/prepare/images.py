"""Decoding one source image to RGB, or saying why it cannot be used.

Pillow decodes fully (``Image.load``), so a truncated JPEG or PNG raises instead of coming back
half grey as OpenCV's ``imread`` would; a file Pillow does not recognise at all is given to
OpenCV (e.g. PAM, Sun raster ``.sr``). Every image becomes 8-bit, 3-channel RGB: greyscale,
palette (GIF), RGBA and CMYK by Pillow's ``convert("RGB")`` (alpha is dropped), 16-bit greyscale
(PNG, TIFF, PGM) by scaling 0..65535 to 0..255. Multi-frame files (GIF, TIFF) give their first
frame. EXIF orientation is not applied: annotations refer to the stored pixels.
"""

from __future__ import annotations

import os
import warnings

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError


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
        rgb = _pillow_rgb(path)
    except UnidentifiedImageError as error:
        rgb = _opencv_rgb(path, error)
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as error:
        raise UnusableImage(f"unreadable image ({type(error).__name__}: {error})") from None
    if rgb.ndim != 3 or rgb.shape[0] < 2 or rgb.shape[1] < 2:
        raise UnusableImage(f"image too small ({rgb.shape[1]}x{rgb.shape[0]})")
    return rgb


def _pillow_rgb(path: str) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. "Possibly corrupt EXIF data"
        with Image.open(path) as image:
            image.load()
            if image.mode == "I" or image.mode.startswith("I;16"):  # 16-bit greyscale; convert() would clip at 255
                grey = np.clip(np.asarray(image, dtype=np.float64) / 257.0, 0, 255).round().astype(np.uint8)
                return np.repeat(grey[..., None], 3, axis=2)
            return np.asarray(image.convert("RGB"))


def _opencv_rgb(path: str, pillow_error: Exception) -> np.ndarray:
    bgr = cv2.imread(path, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if bgr is None:
        raise UnusableImage(f"unreadable image ({type(pillow_error).__name__}: {pillow_error})")
    return np.ascontiguousarray(bgr[..., ::-1])
