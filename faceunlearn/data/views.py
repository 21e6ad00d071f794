"""Two augmented views per forget image (the paper's §6 proposal), drawn by an albumentations pipeline.

The pipeline is configuration: a list of ``{TransformName: {argument: value}}`` naming
albumentations classes, applied in order, e.g.::

    view_transforms:
      - HorizontalFlip: {p: 0.5}
      - RandomResizedCrop: {size: [112, 112], scale: [0.8, 1.0]}
      - ColorJitter: {brightness: 0.2, contrast: 0.2, p: 0.8}

Default: ``[{HorizontalFlip: {p: 0.5}}]``, the paper's only augmentation. Views are seeded: a
batch's draws depend only on ``seed`` and the batch's rows, so the same config and seed give the
same views in any process and DataLoader worker.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch
from torch.utils.data import Dataset

from faceunlearn.data.dataset import FaceImages

DEFAULT_VIEW_TRANSFORMS = ({"HorizontalFlip": {"p": 0.5}},)


def build_view_pipeline(transforms=DEFAULT_VIEW_TRANSFORMS):
    """An ``albumentations.Compose`` of ``transforms`` (module doc); a one-line error for a bad entry."""
    import albumentations

    steps = []
    for entry in transforms or DEFAULT_VIEW_TRANSFORMS:
        if not isinstance(entry, dict) or len(entry) != 1:
            raise ValueError(f"a view transform is one {{Name: {{arguments}}}} entry, got {entry!r}")
        (name, arguments), = entry.items()
        transform = getattr(albumentations, str(name), None)
        if not (isinstance(transform, type) and issubclass(transform, albumentations.BasicTransform)):
            raise ValueError(f"view transform {name!r} is not an albumentations transform (e.g. HorizontalFlip, RandomResizedCrop)")
        try:
            steps.append(transform(**(arguments or {})))
        except Exception as error:  # albumentations validates its arguments with pydantic
            raise ValueError(f"view transform {name}({arguments}): {error}".splitlines()[0]) from error
    return albumentations.Compose(steps)


class TwoViews(Dataset):
    """``FaceImages`` batches plus ``views`` [B, 2, H, W, 3] uint8: two independent draws of ``pipeline`` per image
    (``model_input`` turns them into [B, 2, 3, H, W] floats on the device).

    ``image`` is the unaugmented image (no mirroring: the pipeline decides flips). The random draws of
    a batch are seeded by ``crc32(seed, rows of the batch)``.
    """

    def __init__(self, images: FaceImages, pipeline, seed: int):
        self.images, self.pipeline, self.seed = images, pipeline, int(seed)

    def __len__(self) -> int:
        return len(self.images)

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        indices = np.asarray(indices, dtype=np.int64) % len(self.images)
        raw = self.images.read_uint8(indices)  # read once: the batch's image and both views come from it
        batch = self.images.batch(indices, raw)
        self.pipeline.set_random_seed(zlib.crc32(np.concatenate([[self.seed], indices]).astype(np.int64).tobytes()))
        # albumentations works image by image; forget batches are small (P×K, e.g. 32) and this runs in the loader
        views = np.stack([[self.pipeline(image=image)["image"] for _ in range(2)] for image in raw])  # [B, 2, H, W, 3]
        batch["views"] = torch.from_numpy(views)  # uint8; model_input normalises on the device
        return batch

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {key: value[0] for key, value in self.__getitems__([index]).items()}
