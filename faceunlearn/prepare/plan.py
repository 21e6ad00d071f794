"""The conversion plan: records in their final order, what identifies the run, and the pack's index.

Order: split (train, holdout, distractor), then identity (natural order of the names, so "2" comes
before "10"), then path. A record's ``image_id`` in the pack is its position in this order, so ids
are stable and skipped images leave gaps. Identity ids are assigned at the end, over the images
actually written, in order of first appearance: identities with training images come first, so
they are 0..num_classes-1, the CosFace classes the DataModule expects; holdout and distractor
identities follow.

The fingerprint hashes the options that shape the output and every record, so a resumed run can
check it continues the very same conversion.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

import numpy as np

from faceunlearn.data.packed import SPLITS, TAGS, split_code
from faceunlearn.prepare.records import SourceRecords


def natural_key(name: str) -> tuple:
    """Sort key that orders embedded numbers numerically ("n2" < "n10")."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name) if part)


@dataclass
class Plan:
    records: SourceRecords  # in final order
    options: dict  # everything besides the records that shapes the output (JSON-able)
    fingerprint: str

    def __len__(self) -> int:
        return len(self.records)


def make_plan(records: SourceRecords, options: dict) -> Plan:
    ranks = {name: rank for rank, name in enumerate(sorted(set(records.identities), key=natural_key))}
    order = sorted(range(len(records)), key=lambda i: (records.splits[i], ranks[records.identities[i]], records.paths[i]))
    ordered = SourceRecords(
        dataset=records.dataset,
        root=records.root,
        paths=[records.paths[i] for i in order],
        identities=[records.identities[i] for i in order],
        splits=records.splits[order],
        tags=records.tags[order],
        landmarks=records.landmarks[order],
        boxes=records.boxes[order],
        files_read=records.files_read,
        landmark_note=records.landmark_note,
        aligned=records.aligned,
        notes=records.notes,
    )
    return Plan(ordered, options, _fingerprint(ordered, options))


def _fingerprint(records: SourceRecords, options: dict) -> str:
    digest = hashlib.sha256(json.dumps(options, sort_keys=True).encode())
    for column in (records.paths, records.identities):
        digest.update("\n".join(column).encode("utf-8", "surrogateescape"))
        digest.update(b"\0")
    for array in (records.splits, records.tags, records.landmarks, records.boxes):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


@dataclass
class PackIndex:
    """The columns of index.npz and the identity names of meta.json for the written images."""

    image_ids: np.ndarray
    identities: np.ndarray
    splits: np.ndarray
    tags: np.ndarray
    identity_names: list[str]
    num_classes: int


def pack_index(records: SourceRecords, kept: np.ndarray) -> PackIndex:
    rows = np.flatnonzero(kept)
    names = np.asarray(records.identities, dtype=object)[rows]
    ids: dict[str, int] = {}
    identities = np.fromiter((ids.setdefault(name, len(ids)) for name in names), dtype=np.int64, count=len(rows))
    splits = records.splits[rows]
    train = identities[splits == split_code("train")]
    return PackIndex(
        image_ids=rows.astype(np.int64),
        identities=identities,
        splits=splits,
        tags=records.tags[rows],
        identity_names=list(ids),
        num_classes=int(train.max()) + 1 if len(train) else 0,
    )


def counts(index: PackIndex) -> dict:
    """Images and identities per split, images per tag (for meta.json and the summary)."""
    by_split = {}
    for code, name in enumerate(SPLITS):
        mask = index.splits == code
        if mask.any():
            by_split[name] = {"images": int(mask.sum()), "identities": int(len(np.unique(index.identities[mask])))}
    by_tag = {TAGS[code] or "(none)": int((index.tags == code).sum()) for code in np.unique(index.tags)}
    return {"images": int(len(index.image_ids)), "identities": len(index.identity_names), "by_split": by_split, "by_tag": by_tag}
