"""The evaluation subsets every packed dataset provides (held-out query/gallery halves, validation identities,
distractors), from its splits and tags: the same rows for every run of a protocol."""
from __future__ import annotations

import numpy as np

from faceunlearn.data.packed import PackedFaces
from faceunlearn.data.splits import split_per_identity


def evaluation_rows(packed: PackedFaces, seed: int, query_fraction: float = 0.5, max_distractors: int | None = None,
                    validation_fraction: float = 0.0) -> dict[str, np.ndarray]:
    """Evaluation subsets every packed dataset provides, from its splits and tags.

    ``holdout_query`` / ``holdout_gallery`` halve every held-out identity's images (seeded; the
    VGGFace2 test protocol, SPEC §5); ``distractors`` is capped at ``max_distractors`` by a
    seeded draw (the paper uses 75,000 IJB-B faces). With ``validation_fraction`` > 0, a seeded
    ``round(fraction · H)`` of the H held-out identities become *validation* identities
    (``validation``, ``validation_frontal``, ``validation_profile``, ``validation_query``,
    ``validation_gallery``, for model selection) and every ``holdout*`` subset keeps only the others
    (the reported benchmarks); each image keeps the query/gallery side it has without the split.
    """
    holdout = packed.select(split="holdout")
    in_query = split_per_identity(packed.identities[holdout], query_fraction, seed, min_per_side=1)
    distractors = packed.select(split="distractor")
    if max_distractors is not None and len(distractors) > max_distractors:
        rng = np.random.default_rng(seed + 3)
        distractors = np.sort(rng.choice(distractors, size=max_distractors, replace=False))
    frontal, profile = packed.select(split="holdout", tag="frontal"), packed.select(split="holdout", tag="profile")
    rows = {}
    held_out_ids = np.unique(packed.identities[holdout])
    validation_ids = np.zeros(0, dtype=held_out_ids.dtype)
    if validation_fraction > 0 and len(held_out_ids):
        count = int(round(validation_fraction * len(held_out_ids)))
        if not 0 < count < len(held_out_ids):
            raise ValueError(f"validation_fraction={validation_fraction} of {len(held_out_ids)} held-out identities leaves "
                             f"{count} validation and {len(held_out_ids) - count} reported ones; both need at least one")
        validation_ids = np.random.default_rng(seed + 5).choice(held_out_ids, size=count, replace=False)
        is_validation = np.isin(packed.identities[holdout], validation_ids)
        rows.update({
            "validation": holdout[is_validation],
            "validation_frontal": frontal[np.isin(packed.identities[frontal], validation_ids)],
            "validation_profile": profile[np.isin(packed.identities[profile], validation_ids)],
            "validation_query": holdout[is_validation & in_query],
            "validation_gallery": holdout[is_validation & ~in_query],
        })
    is_test = ~np.isin(packed.identities[holdout], validation_ids)
    rows.update({
        "holdout": holdout[is_test],
        "holdout_frontal": frontal[~np.isin(packed.identities[frontal], validation_ids)],
        "holdout_profile": profile[~np.isin(packed.identities[profile], validation_ids)],
        "holdout_query": holdout[is_test & in_query],
        "holdout_gallery": holdout[is_test & ~in_query],
        "distractors": distractors,
        "distractor_stills": np.intersect1d(distractors, packed.select(split="distractor", tag="still")),
        "distractor_frames": np.intersect1d(distractors, packed.select(split="distractor", tag="frame")),
    })
    return rows
