"""The one on-disk format for aligned faces.

A packed dataset is a folder::

    images.npy   uint8 [N, 112, 112, 3] RGB, NumPy .npy (memory-mapped on read)
    index.npz    image_id int64 [N], identity int64 [N], split int8 [N], tag int8 [N]
    meta.json    format/version, split and tag names, identity names, provenance

Synthetic faces are written in it and real datasets are converted to it. A writer fills
``<root>.partial/`` and renames it to ``<root>`` only after ``meta.json`` is written, so an
interrupted write never leaves a folder that looks complete, and an existing dataset is never
overwritten.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FORMAT_NAME = "faceunlearn-packed"
FORMAT_VERSION = 1
IMAGE_SIZE = 112
SPLITS = ("train", "holdout", "distractor")
TAGS = ("", "frontal", "profile", "still", "frame")
REQUIRED_FILES = ("images.npy", "index.npz", "meta.json")


class PackedDatasetError(RuntimeError):
    """A packed dataset is missing, incomplete or inconsistent."""


@dataclass
class PackedFaces:
    """A packed dataset opened for reading; ``images`` is a read-only memory map."""

    root: Path
    images: np.ndarray
    image_ids: np.ndarray
    identities: np.ndarray
    splits: np.ndarray
    tags: np.ndarray
    meta: dict = field(default_factory=dict)

    @classmethod
    def open(cls, root: str | os.PathLike) -> "PackedFaces":
        root = Path(root)
        if not root.is_dir():
            raise PackedDatasetError(f"packed dataset folder {str(root)!r} does not exist")
        missing = [name for name in REQUIRED_FILES if not (root / name).is_file()]
        if missing:
            raise PackedDatasetError(
                f"packed dataset {str(root)!r} is incomplete: missing {', '.join(missing)}"
            )
        meta = json.loads((root / "meta.json").read_text())
        if meta.get("format") != FORMAT_NAME:
            raise PackedDatasetError(f"{str(root)!r} is not a {FORMAT_NAME} folder (meta.json format={meta.get('format')!r})")
        if meta.get("version") != FORMAT_VERSION:
            raise PackedDatasetError(f"{str(root)!r} has format version {meta.get('version')}, expected {FORMAT_VERSION}")
        images = np.load(root / "images.npy", mmap_mode="r")
        with np.load(root / "index.npz") as index:
            columns = {name: index[name] for name in ("image_id", "identity", "split", "tag")}
        n = images.shape[0]
        if images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 3) or images.dtype != np.uint8:
            raise PackedDatasetError(f"{root}/images.npy has shape {images.shape} {images.dtype}, expected [N,112,112,3] uint8")
        for name, column in columns.items():
            if column.shape != (n,):
                raise PackedDatasetError(f"{root}/index.npz column {name!r} has {column.shape[0]} rows, images.npy has {n}")
        if len(np.unique(columns["image_id"])) != n:
            raise PackedDatasetError(f"{root}/index.npz has duplicate image ids")
        return cls(root, images, columns["image_id"], columns["identity"], columns["split"], columns["tag"], meta)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    # Pickled (DataLoader workers under ``spawn``, ``ddp_spawn``), a memory map would be copied whole
    # (6–15 GB for real packs). The pickle holds the folder, meta and the split column (a protocol may
    # have changed it); the receiving process opens the memory map and index columns itself.
    def __getstate__(self) -> dict:
        return {"root": str(self.root), "splits": self.splits, "meta": self.meta}

    def __setstate__(self, state: dict) -> None:
        opened = PackedFaces.open(state["root"])
        if opened.splits.shape != state["splits"].shape:
            raise PackedDatasetError(f"{state['root']} changed since this dataset was pickled ({len(opened)} images now, "
                                     f"{len(state['splits'])} then)")
        self.__dict__.update(opened.__dict__)
        self.splits, self.meta = state["splits"], state["meta"]

    def select(self, split: str | None = None, tag: str | None = None) -> np.ndarray:
        """Row indices of the images in ``split`` (and with ``tag``), in stored order."""
        mask = np.ones(len(self), dtype=bool)
        if split is not None:
            mask &= self.splits == split_code(split)
        if tag is not None:
            mask &= self.tags == tag_code(tag)
        return np.flatnonzero(mask)


def split_code(name: str) -> int:
    if name not in SPLITS:
        raise ValueError(f"unknown split {name!r}; known splits: {', '.join(SPLITS)}")
    return SPLITS.index(name)


def tag_code(name: str) -> int:
    if name not in TAGS:
        raise ValueError(f"unknown tag {name!r}; known tags: {', '.join(repr(t) for t in TAGS)}")
    return TAGS.index(name)


class PackedFacesWriter:
    """Writes a packed dataset of a known size, chunk by chunk, then commits it atomically.

    ``resume=True`` reopens the images of an interrupted writer in ``<root>.partial/`` instead of
    starting over; the caller, which knows how far it got, declares those rows with
    ``mark_written``. ``truncate`` drops unused rows at the end (e.g. images that were skipped).
    """

    def __init__(self, root: str | os.PathLike, num_images: int, overwrite: bool = False, resume: bool = False):
        self.root = Path(root)
        if self.root.exists() and not overwrite:
            raise PackedDatasetError(f"{str(self.root)!r} already exists; refusing to overwrite it")
        self.partial = self.root.with_name(self.root.name + ".partial")
        images_path = self.partial / "images.npy"
        shape = (num_images, IMAGE_SIZE, IMAGE_SIZE, 3)
        if resume and images_path.is_file():
            self.images = np.load(images_path, mmap_mode="r+")
            if self.images.shape != shape or self.images.dtype != np.uint8:
                raise PackedDatasetError(
                    f"cannot resume {images_path}: it holds {self.images.shape} {self.images.dtype}, expected {shape} uint8"
                )
        else:
            if self.partial.exists():
                shutil.rmtree(self.partial)
            self.partial.mkdir(parents=True)
            self.images = np.lib.format.open_memmap(images_path, mode="w+", dtype=np.uint8, shape=shape)
        self.num_images = num_images
        self._written = np.zeros(num_images, dtype=bool)

    def write(self, start: int, images: np.ndarray) -> None:
        stop = start + len(images)
        if stop > self.num_images:
            raise PackedDatasetError(f"chunk [{start}, {stop}) exceeds the dataset size {self.num_images}")
        self.images[start:stop] = images
        self._written[start:stop] = True

    def mark_written(self, start: int, stop: int) -> None:
        """Declare rows [start, stop) as written by an earlier, interrupted run (see ``resume``)."""
        self._written[start:stop] = True

    def flush(self) -> None:
        """Push written rows to disk (call before recording progress elsewhere)."""
        self.images.flush()

    def truncate(self, num_images: int) -> None:
        """Shrink the dataset to its first ``num_images`` rows, in place (no copy)."""
        if num_images > self.num_images:
            raise PackedDatasetError(f"cannot truncate {self.num_images} images to {num_images}")
        self.images.flush()
        del self.images
        path = self.partial / "images.npy"
        with open(path, "r+b") as handle:
            major, _ = np.lib.format.read_magic(handle)
            length_bytes = 2 if major == 1 else 4
            header_start = handle.tell()
            if major == 1:
                np.lib.format.read_array_header_1_0(handle)
            else:
                np.lib.format.read_array_header_2_0(handle)
            data_start = handle.tell()
            header = repr({"descr": "|u1", "fortran_order": False, "shape": (num_images, IMAGE_SIZE, IMAGE_SIZE, 3)})
            # Same header size as before (padded with spaces), so the data does not move.
            header = header.ljust(data_start - header_start - length_bytes - 1) + "\n"
            handle.seek(header_start + length_bytes)
            handle.write(header.encode("latin1"))
            handle.truncate(data_start + num_images * IMAGE_SIZE * IMAGE_SIZE * 3)
        self.images = np.load(path, mmap_mode="r+")
        self.num_images = num_images
        self._written = self._written[:num_images]

    def commit(self, image_ids, identities, splits, tags, meta: dict | None = None) -> PackedFaces:
        """Write the index and meta.json, then rename ``<root>.partial`` to ``<root>``."""
        if not self._written.all():
            raise PackedDatasetError(f"{int((~self._written).sum())} of {self.num_images} images were never written")
        columns = {
            "image_id": np.asarray(image_ids, dtype=np.int64),
            "identity": np.asarray(identities, dtype=np.int64),
            "split": np.asarray(splits, dtype=np.int8),
            "tag": np.asarray(tags, dtype=np.int8),
        }
        for name, column in columns.items():
            if column.shape != (self.num_images,):
                raise PackedDatasetError(f"index column {name!r} has shape {column.shape}, expected ({self.num_images},)")
        self.images.flush()
        del self.images
        np.savez(self.partial / "index.npz", **columns)
        full_meta = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "num_images": self.num_images,
            "image_size": IMAGE_SIZE,
            "splits": list(SPLITS),
            "tags": list(TAGS),
            **(meta or {}),
        }
        (self.partial / "meta.json").write_text(json.dumps(full_meta, indent=2))
        if self.root.exists():  # only reachable with overwrite=True
            shutil.rmtree(self.root)
        os.replace(self.partial, self.root)
        return PackedFaces.open(self.root)
