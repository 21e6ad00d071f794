"""The forget set as a type: who is forgotten, which of their images the unlearning run sees (D_f^train) and which
it is measured on (D_f^test), and the seed that drew them. Made here only: ``FaceDataModule.setup``,
``faceunlearn check-disjoint``, the sweep (a Retrain and its methods must forget the same people: ``same_people``;
every run's ``done.json`` records ``state()``) and checkpoints (``state`` / ``recorded``) all go through
``ForgetSet``."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from faceunlearn.data.packed import PackedDatasetError, PackedFaces
from faceunlearn.data.splits import choose_forget_identities, identity_ids_from_names, split_forget_images

#: a forget identity needs this many training images (P×K batches and a train/test split of its own)
MIN_IMAGES = 4


@dataclass(frozen=True)
class ForgetSet:
    """Forget set ``seed`` of a pack: ``identities`` (sorted ids), every training row of them (``rows``), split
    per identity into ``train_rows`` (D_f^train) and ``test_rows`` (D_f^test)."""

    seed: int
    identities: np.ndarray
    rows: np.ndarray
    train_rows: np.ndarray
    test_rows: np.ndarray

    @classmethod
    def draw(cls, packed: PackedFaces, num_forget: int, seed: int, explicit: Sequence[int | str] | None = None,
             train_fraction: float = 0.5) -> ForgetSet:
        """``num_forget`` training identities drawn with ``seed`` (or ``explicit`` ids or names, checked), and their
        images split ``train_fraction`` / rest per identity with the same seed."""
        train_rows = packed.select(split="train")
        if len(train_rows) == 0:
            raise PackedDatasetError(f"{packed.root} has no images in the 'train' split to draw forget identities from")
        train_identities = packed.identities[train_rows]
        if explicit is not None:
            explicit = identity_ids_from_names(explicit, packed.meta.get("identity_names"))
        identities = choose_forget_identities(train_identities, num_forget, seed, explicit, min_images=MIN_IMAGES)
        rows = train_rows[np.isin(train_identities, identities)]
        in_train = split_forget_images(packed.identities[rows], train_fraction, seed)
        return cls(int(seed), np.asarray(identities), rows, rows[in_train], rows[~in_train])

    def state(self) -> dict:
        """What a checkpoint records (``FaceDataModule.state_dict``)."""
        return {"forget_identities": [int(i) for i in self.identities]}

    def same_people(self, other: ForgetSet) -> bool:
        """Whether ``other`` forgets the same identities (e.g. a Retrain run and the method runs of one seed)."""
        return np.array_equal(self.identities, other.identities)

    @staticmethod
    def recorded(checkpoint: dict) -> list[int] | None:
        """The forget identities a Lightning checkpoint's DataModule recorded (Lightning keys the DataModule's state
        by its class name, ``FaceDataModule``), or None for checkpoints from before it recorded them."""
        recorded = checkpoint.get("FaceDataModule", {}).get("forget_identities")
        return None if recorded is None else [int(i) for i in recorded]
