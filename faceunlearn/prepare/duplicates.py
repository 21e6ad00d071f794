"""Exact duplicate photos in a pack: byte-identical 112×112 crops.

Face collections hold them (the Glint360K celebrity sample: 7 pairs, each of one person). They matter
for evaluation: two copies of one photo tie at every score, so a metric's tie rule decides what they
count for (``faceunlearn.metrics.retrieval``). ``prepare`` lists them (``duplicates.tsv``) and says how
many it packed; it keeps them, since the source is what the user chose to pack.
"""
from __future__ import annotations

import hashlib

import numpy as np


def exact_duplicate_groups(images: np.ndarray, chunk: int = 4096) -> list[list[int]]:
    """Rows of ``images`` [N, ...] whose bytes are identical, as groups of ≥ 2 row numbers (ascending).

    One BLAKE2b-128 digest per row (the pack is read once, chunk by chunk from its memory map)."""
    by_digest: dict[bytes, list[int]] = {}
    for start in range(0, len(images), chunk):
        block = np.ascontiguousarray(images[start:start + chunk])
        for offset, row in enumerate(block.reshape(len(block), -1)):
            by_digest.setdefault(hashlib.blake2b(row.data, digest_size=16).digest(), []).append(start + offset)
    return sorted((rows for rows in by_digest.values() if len(rows) > 1), key=lambda rows: rows[0])
