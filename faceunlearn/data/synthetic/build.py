"""``build_synthetic_dataset``: render the train / holdout / distractor splits into the packed format."""

from __future__ import annotations

import numpy as np

from faceunlearn.data.packed import IMAGE_SIZE, PackedFaces, PackedFacesWriter, split_code, tag_code
from faceunlearn.data.synthetic.generator import SyntheticFaceGenerator
from faceunlearn.data.synthetic.params import VIEWS


def build_synthetic_dataset(
    root,
    num_train_identities: int = 256,
    images_per_train_identity: int = 24,
    num_holdout_identities: int = 100,
    holdout_frontal: int = 6,
    holdout_profile: int = 3,
    num_distractor_identities: int = 300,
    images_per_distractor: int = 4,
    seed: int = 0,
    overwrite: bool = False,
    chunk_size: int = 512,
    **knobs,
) -> PackedFaces:
    """Render the synthetic dataset into the packed format at ``root`` and open it.

    Identities 0..T−1 are the train identities (CosFace classes), then the holdout identities
    (``holdout_frontal`` frontal- and ``holdout_profile`` profile-view images each, tagged so),
    then the distractors; train and distractor images use the full pose range. Image ids are
    0..N−1 in that order. Refuses to overwrite an existing ``root`` unless ``overwrite``.
    """
    gen = SyntheticFaceGenerator(seed, **knobs)
    T, H, D = num_train_identities, num_holdout_identities, num_distractor_identities
    groups = []  # (identities, image keys, view, split, tag)

    def group(ids, per, view, split, tag, key0=0):
        ids = np.repeat(np.asarray(ids, np.int64), per)
        keys = np.tile(np.arange(key0, key0 + per, dtype=np.int64), len(ids) // max(per, 1))
        groups.append((ids, keys, view, split_code(split), tag_code(tag)))

    group(np.arange(T), images_per_train_identity, "any", "train", "")
    # Holdout images of one identity stay together: frontal first, then profile.
    hold = np.arange(T, T + H)
    for j in range(H):
        group(hold[j : j + 1], holdout_frontal, "frontal", "holdout", "frontal")
        group(hold[j : j + 1], holdout_profile, "profile", "holdout", "profile", key0=holdout_frontal)
    group(np.arange(T + H, T + H + D), images_per_distractor, "any", "distractor", "")
    # Merge consecutive groups of the same view into render calls of up to chunk_size images.
    identities = np.concatenate([g[0] for g in groups])
    keys = np.concatenate([g[1] for g in groups])
    views = np.concatenate([np.full(len(g[0]), VIEWS[g[2]]) for g in groups])
    splits = np.concatenate([np.full(len(g[0]), g[3], np.int8) for g in groups])
    tags = np.concatenate([np.full(len(g[0]), g[4], np.int8) for g in groups])
    n = len(identities)
    writer = PackedFacesWriter(root, n, overwrite=overwrite)
    view_names = {v: k for k, v in VIEWS.items()}
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        chunk = np.empty((stop - start, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
        for code in np.unique(views[start:stop]):
            rows = np.flatnonzero(views[start:stop] == code)
            chunk[rows] = gen.render(identities[start:stop][rows], keys[start:stop][rows], view_names[int(code)])
        writer.write(start, chunk)
    meta = {
        "source": "synthetic",
        "generator": "faceunlearn.data.synthetic.SyntheticFaceGenerator",
        "seed": int(seed),
        "knobs": gen.knobs,
        "counts": {
            "num_train_identities": T,
            "images_per_train_identity": images_per_train_identity,
            "num_holdout_identities": H,
            "holdout_frontal": holdout_frontal,
            "holdout_profile": holdout_profile,
            "num_distractor_identities": D,
            "images_per_distractor": images_per_distractor,
        },
        "num_classes": T,
    }
    return writer.commit(np.arange(n, dtype=np.int64), identities, splits, tags, meta)
