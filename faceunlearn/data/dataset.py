"""Batches of aligned faces read from a packed dataset's memory map."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from faceunlearn.data.packed import PackedFaces


def normalize(images_uint8: torch.Tensor) -> torch.Tensor:
    """[B,H,W,3] uint8 → [B,3,H,W] float in [-1, 1]: ``(x/255 − 0.5)/0.5`` as insightface (SPEC §1)."""
    return images_uint8.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def model_input(batch: dict) -> dict:
    """A batch as the model takes it: uint8 ``image`` [B,H,W,3] (and ``views`` [B,2,H,W,3]) →
    ``normalize``d float [B,3,H,W] ([B,2,3,H,W]), with the rows ``mirror`` marks flipped; other keys kept.

    Batches leave the DataLoader workers as uint8 (4× less to copy and pin than float) and this runs
    on the device (``FaceDataModule.on_after_batch_transfer``); a CombinedLoader's ``{stream: batch}``
    is converted stream by stream. Float images pass through unchanged.
    """
    if "image" not in batch:
        return {name: model_input(part) if isinstance(part, dict) else part for name, part in batch.items()}
    out = dict(batch)
    mirror = out.pop("mirror", None)
    if out["image"].dtype == torch.uint8:
        images = out["image"]
        if mirror is not None:  # flipped while uint8 (4× fewer bytes than float), without a host sync
            images = torch.where(mirror.to(images.device)[:, None, None, None], images.flip(2), images)
        out["image"] = normalize(images)
    if "views" in out and out["views"].dtype == torch.uint8:
        views = out["views"]
        out["views"] = normalize(views.flatten(0, 1)).unflatten(0, views.shape[:2])
    return out


class FaceImages(Dataset):
    """Rows ``rows`` of a packed dataset as dicts ``image, label, image_id``.

    ``__getitems__`` reads a whole batch with one sorted fancy-index into the memory map, so the
    DataLoader does no per-image Python work. Images stay uint8 [B,H,W,3]; ``model_input`` normalises
    them on the device. Horizontal flip is the only augmentation (SPEC §2) and is chosen by the
    sampler: index ``i + len(self)`` is row ``i`` mirrored, returned as ``mirror`` and applied by ``model_input``.

    When several packed datasets are evaluated together (``ConcatFaceImages``), ``image_id_offset``
    and ``label_offset`` keep their image ids and identities apart.
    """

    def __init__(self, packed: PackedFaces, rows: np.ndarray, image_id_offset: int = 0, label_offset: int = 0):
        self.packed = packed
        self.rows = np.asarray(rows, dtype=np.int64)
        self.image_id_offset = image_id_offset
        self.label_offset = label_offset

    def __len__(self) -> int:
        return len(self.rows)

    def read_uint8(self, indices: np.ndarray) -> np.ndarray:
        """[B,H,W,3] uint8 images of ``indices`` (mirror bit ignored), read in one sorted pass."""
        rows = self.rows[np.asarray(indices, dtype=np.int64) % len(self.rows)]
        order = np.argsort(rows, kind="stable")  # memory maps read fastest in ascending order
        images = np.empty((len(rows), *self.packed.images.shape[1:]), dtype=np.uint8)
        images[order] = self.packed.images[rows[order]]
        return images

    def batch(self, indices: np.ndarray, images_uint8: np.ndarray) -> dict[str, torch.Tensor]:
        """The batch dict of ``indices`` from their already-read ``images_uint8`` (``mirror``: the mirror bits)."""
        rows = self.rows[indices % len(self.rows)]
        return {
            "image": torch.from_numpy(images_uint8),
            "mirror": torch.from_numpy(indices >= len(self.rows)),
            "label": torch.from_numpy(self.packed.identities[rows] + self.label_offset),
            "image_id": torch.from_numpy(self.packed.image_ids[rows] + self.image_id_offset),
        }

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        indices = np.asarray(indices, dtype=np.int64)
        return self.batch(indices, self.read_uint8(indices))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {key: value[0] for key, value in self.__getitems__([index]).items()}


class ConcatFaceImages(Dataset):
    """Several ``FaceImages`` end to end (evaluation only: no mirroring), read part by part per batch."""

    def __init__(self, parts: list[FaceImages]):
        self.parts = [part for part in parts if len(part)]
        self.starts = np.cumsum([0] + [len(part) for part in self.parts])

    def __len__(self) -> int:
        return int(self.starts[-1])

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        indices = np.asarray(indices, dtype=np.int64)
        which = np.searchsorted(self.starts, indices, side="right") - 1
        batches = [self.parts[p].__getitems__((indices[which == p] - self.starts[p]).tolist()) for p in np.unique(which)]
        merged = {key: torch.cat([batch[key] for batch in batches]) for key in batches[0]}
        order = torch.from_numpy(np.argsort(which, kind="stable"))  # back to the requested order
        return {key: value[torch.argsort(order)] for key, value in merged.items()}

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {key: value[0] for key, value in self.__getitems__([index]).items()}


def collate_batch(batch):
    """``__getitems__`` already returns a collated batch; the DataLoader passes it through."""
    return batch
