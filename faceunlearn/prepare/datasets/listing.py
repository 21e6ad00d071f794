"""Listing image files under a folder, sorted, as paths relative to the dataset root (by extension, any case)."""

from __future__ import annotations

import os
from pathlib import Path

#: 8-bit raster formats Pillow or OpenCV decode (``images.read_rgb``), as classic face sets store them
IMAGE_EXTENSIONS = (
    ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".dib", ".gif", ".webp", ".tif", ".tiff", ".avif",
    ".pgm", ".ppm", ".pbm", ".pnm", ".pam", ".jp2", ".j2k", ".ras", ".sr", ".tga", ".pcx",
)


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith(".")


def list_images(root: Path, folder: Path) -> list[str]:
    """Every image file below ``folder`` (recursively), as sorted POSIX paths relative to ``root``."""
    found = []
    for directory, subfolders, files in os.walk(folder):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        relative = Path(directory).relative_to(root).as_posix()
        found.extend(f"{relative}/{name}" if relative != "." else name for name in files if is_image_name(name))
    return sorted(found)


def subfolders(folder: Path) -> list[str]:
    """Names of the visible sub-folders of ``folder``, sorted."""
    with os.scandir(folder) as entries:
        return sorted(entry.name for entry in entries if entry.is_dir() and not entry.name.startswith("."))
