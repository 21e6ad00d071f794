"""``SourceRecords``: what a dataset reader hands to the converter, one row per source image.

A row is (image path relative to the dataset root, identity name, split, tag, and where the face
is): five landmarks in source-image pixels (left eye, right eye, nose tip, left mouth corner, right
mouth corner, "left" meaning image-left, the order of insightface's ``arcface_dst``), or a face box
to run the detector in, or neither (run the detector on the whole image).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from faceunlearn.data.packed import split_code, tag_code

NO_LANDMARKS = np.full((5, 2), np.nan, dtype=np.float32)
NO_BOX = np.full(4, np.nan, dtype=np.float32)


@dataclass
class SourceRecords:
    """Columns of the source images of one dataset (see the module docstring)."""

    dataset: str
    root: Path
    paths: list[str]
    identities: list[str]
    splits: np.ndarray  # int8 codes of faceunlearn.data.packed.SPLITS
    tags: np.ndarray  # int8 codes of faceunlearn.data.packed.TAGS
    landmarks: np.ndarray  # float32 [N, 5, 2], NaN where the annotation has none
    boxes: np.ndarray  # float32 [N, 4] x1, y1, x2, y2, NaN where there is no box
    files_read: list[str] = field(default_factory=list)
    #: why rows may lack landmarks, for the "pass --detector" message
    landmark_note: str = ""
    #: the images are aligned 112×112 crops already: copy them, do not align
    aligned: bool = False
    #: provenance for meta.json (counts of dropped duplicates, how tags were decided, ...)
    notes: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def needs_detector(self) -> np.ndarray:
        """Rows whose landmarks must come from a detector."""
        if self.aligned:
            return np.zeros(len(self), dtype=bool)
        return np.isnan(self.landmarks).any(axis=(1, 2))


class RecordsBuilder:
    """Collects rows one by one (readers call ``add``), then ``build`` makes the columns."""

    def __init__(self, dataset: str, root: Path):
        self.dataset, self.root = dataset, Path(root)
        self.paths: list[str] = []
        self.identities: list[str] = []
        self.splits: list[int] = []
        self.tags: list[int] = []
        self._landmarks = np.empty((1024, 5, 2), dtype=np.float32)
        self._boxes = np.empty((1024, 4), dtype=np.float32)
        self._names: dict[str, str] = {}  # one string object per identity name
        self.files_read: list[str] = []

    def add(self, path: str, identity: str, split: str, tag: str = "", landmarks=None, box=None) -> None:
        n = len(self.paths)
        if n == len(self._landmarks):
            self._landmarks = np.concatenate([self._landmarks, np.empty_like(self._landmarks)])
            self._boxes = np.concatenate([self._boxes, np.empty_like(self._boxes)])
        self._landmarks[n] = NO_LANDMARKS if landmarks is None else np.reshape(landmarks, (5, 2))
        self._boxes[n] = NO_BOX if box is None else box
        self.paths.append(path)
        self.identities.append(self._names.setdefault(identity, identity))
        self.splits.append(split_code(split))
        self.tags.append(tag_code(tag))

    def read(self, path: Path) -> Path:
        """Note an annotation file as read (provenance in meta.json); returns it."""
        self.files_read.append(str(path))
        return path

    def build(self, **extra) -> SourceRecords:
        n = len(self.paths)
        return SourceRecords(
            dataset=self.dataset,
            root=self.root,
            paths=self.paths,
            identities=self.identities,
            splits=np.asarray(self.splits, dtype=np.int8),
            tags=np.asarray(self.tags, dtype=np.int8),
            landmarks=self._landmarks[:n].copy(),
            boxes=self._boxes[:n].copy(),
            files_read=self.files_read,
            **extra,
        )
