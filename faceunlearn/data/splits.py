"""Seeded forget/retain splits (SPEC §2): forget identities Y_f, and D_f into D_f^train / D_f^test."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from faceunlearn.data import salted_names


def identity_ids_from_names(requested: Sequence[int | str], identity_names) -> list[int]:
    """Identity ids for ``requested`` entries: ints as they are, names and salted name hashes
    (``faceunlearn.data.salted_names``) looked up in ``identity_names``.

    ``identity_names`` is a pack's ``meta.json`` entry: a list indexed by identity id, or a
    ``{"<id>": name}`` mapping; None when the pack has no names. Unknown names and hashes that match
    no name (and either asked of a pack without names) are a ``ValueError`` that lists them.
    """
    if isinstance(identity_names, dict):
        by_name = {str(name): int(identity) for identity, name in identity_names.items()}
    else:
        by_name = {str(name): identity for identity, name in enumerate(identity_names or ())}
    names = [entry for entry in requested if isinstance(entry, str)]
    if names and not by_name:
        shown = [entry[:24] + "…" if salted_names.is_token(entry) else entry for entry in names[:5]]
        raise ValueError(f"forget identities given by name or salted hash ({', '.join(shown)}), but the pack's meta.json has no identity_names")
    resolved = {entry: salted_names.match(entry, by_name) if salted_names.is_token(entry) else entry for entry in names}
    unmatched = [entry for entry, name in resolved.items() if salted_names.is_token(entry) and name is None]
    if unmatched:
        raise ValueError(f"{len(unmatched)} salted name hash{'' if len(unmatched) == 1 else 'es'} of the forget identities "
                         f"match{'es' if len(unmatched) == 1 else ''} no name of this pack (another pack, or its folders renamed?)")
    unknown = [name for name in names if not salted_names.is_token(name) and name not in by_name]
    if unknown:
        close = sorted(by_name)[:8]
        raise ValueError(f"unknown forget identit{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown[:10])} "
                         f"(the pack's names are its folder names, e.g. {', '.join(close)})")
    return [by_name[resolved[entry]] if isinstance(entry, str) else int(entry) for entry in requested]


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
    return split_per_identity(identities, train_fraction, seed, min_per_side=2)


def split_per_identity(identities: np.ndarray, fraction: float, seed: int, min_per_side: int = 1) -> np.ndarray:
    """Boolean mask: per identity, a seeded ``round(n·fraction)`` of its images are True.

    The count is clamped to ``[min_per_side, n − min_per_side]`` where the identity has enough
    images; an identity with fewer than ``2·min_per_side`` images keeps the rounded count.
    """
    if len(identities) == 0:
        return np.zeros(0, dtype=bool)
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(len(identities)), identities))  # shuffled within each identity
    _, starts, counts = np.unique(identities[order], return_index=True, return_counts=True)
    position = np.arange(len(order)) - np.repeat(starts, counts)
    chosen = np.round(counts * fraction).astype(int)
    clamped = np.clip(chosen, min_per_side, counts - min_per_side)
    chosen = np.where(counts >= 2 * min_per_side, clamped, chosen)
    selected = np.empty(len(identities), dtype=bool)
    selected[order] = position < np.repeat(chosen, counts)
    return selected


#: split code of rows a protocol leaves out (``cap_images_per_identity``); no split selects it
UNUSED_SPLIT = -1


def protocol_splits(
    identities: np.ndarray,
    splits: np.ndarray,
    train_code: int,
    holdout_code: int,
    holdout_identities: int = 0,
    max_images_per_identity: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """A pack's split column as a protocol sees it (seeded by the evaluation seed, not the forget seed).

    * ``max_images_per_identity``: every identity keeps a seeded draw of at most that many images;
      the others get ``UNUSED_SPLIT``.
    * ``holdout_identities``: that many training identities (seeded draw) become held-out
      evaluation identities, never seen by a training stream.
    """
    splits = np.asarray(splits).astype(np.int8, copy=True)
    rng = np.random.default_rng(seed)
    if max_images_per_identity is not None:
        if max_images_per_identity < 1:
            raise ValueError(f"max_images_per_identity must be positive, got {max_images_per_identity}")
        order = np.lexsort((rng.random(len(identities)), identities))
        _, starts, counts = np.unique(identities[order], return_index=True, return_counts=True)
        position = np.arange(len(order)) - np.repeat(starts, counts)
        splits[order[position >= max_images_per_identity]] = UNUSED_SPLIT
    if holdout_identities:
        train_ids = np.unique(identities[splits == train_code])
        if holdout_identities >= len(train_ids):
            raise ValueError(
                f"holdout_identities={holdout_identities} would leave no training identities (the pack has {len(train_ids)})"
            )
        chosen = rng.choice(train_ids, size=holdout_identities, replace=False)
        splits[(splits == train_code) & np.isin(identities, chosen)] = holdout_code
    return splits
