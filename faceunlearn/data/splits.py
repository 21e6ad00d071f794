"""Seeded forget/retain splits (SPEC §2): forget identities Y_f, and D_f into D_f^train / D_f^test."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def choose_forget_identities(
    identities: np.ndarray, num_forget: int, seed: int, explicit: Sequence[int] | None = None, min_images: int = 4
) -> np.ndarray:
    """Sorted forget identities: ``explicit`` if given (checked), else ``num_forget`` drawn with ``seed``.

    ``identities`` is the identity of every training image. Only identities with at least
    ``min_images`` images are eligible (each half of the split needs ≥ 2 for positives).
    """
    known, counts = np.unique(identities, return_counts=True)
    if explicit is not None:
        chosen = np.unique(np.asarray(explicit, dtype=np.int64))
        unknown = np.setdiff1d(chosen, known)
        if len(unknown):
            raise ValueError(f"forget identities {unknown[:10].tolist()} are not training identities of this dataset")
        too_small = chosen[counts[np.searchsorted(known, chosen)] < min_images]
        if len(too_small):
            raise ValueError(
                f"forget identities {too_small[:10].tolist()} have fewer than {min_images} images: the forget set needs "
                f"at least 2 images per identity in both D_f^train and D_f^test"
            )
        return chosen
    eligible = known[counts >= min_images]
    if num_forget > len(eligible):
        raise ValueError(
            f"cannot draw {num_forget} forget identities: only {len(eligible)} training identities have >= {min_images} images"
        )
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(eligible, size=num_forget, replace=False))


def split_forget_images(identities: np.ndarray, train_fraction: float, seed: int) -> np.ndarray:
    """Boolean mask over forget images: True for D_f^train, False for D_f^test.

    Per identity, a seeded permutation puts ``round(n·train_fraction)`` images (clamped so both
    halves keep ≥ 2) into D_f^train.
    """
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(len(identities)), identities))  # shuffled within each identity
    _, starts, counts = np.unique(identities[order], return_index=True, return_counts=True)
    position = np.arange(len(order)) - np.repeat(starts, counts)
    train_counts = np.clip(np.round(counts * train_fraction).astype(int), 2, counts - 2)
    in_train = np.empty(len(identities), dtype=bool)
    in_train[order] = position < np.repeat(train_counts, counts)
    return in_train
