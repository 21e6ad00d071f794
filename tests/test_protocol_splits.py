"""Protocol views of a pack: held-out evaluation identities and a per-identity cap, fixed by the evaluation seed."""

from __future__ import annotations

import numpy as np
import pytest

from faceunlearn.data import FaceDataModule
from faceunlearn.data.packed import split_code
from faceunlearn.data.splits import UNUSED_SPLIT, protocol_splits
from tests.conftest import write_random_packed

TRAIN, HOLDOUT = split_code("train"), split_code("holdout")


def test_cap_and_holdout_identities():
    identities = np.repeat(np.arange(10), [3, 5, 8, 8, 8, 8, 8, 8, 8, 20])
    splits = np.full(len(identities), TRAIN, dtype=np.int8)
    out = protocol_splits(identities, splits, TRAIN, HOLDOUT, holdout_identities=4, max_images_per_identity=6, seed=7)
    kept = out != UNUSED_SPLIT
    assert np.bincount(identities[kept]).tolist() == [3, 5, 6, 6, 6, 6, 6, 6, 6, 6]
    held = np.unique(identities[out == HOLDOUT])
    assert len(held) == 4 and set(np.unique(identities[out == TRAIN])).isdisjoint(held)
    again = protocol_splits(identities, splits, TRAIN, HOLDOUT, holdout_identities=4, max_images_per_identity=6, seed=7)
    assert np.array_equal(out, again)
    other = protocol_splits(identities, splits, TRAIN, HOLDOUT, holdout_identities=4, max_images_per_identity=6, seed=8)
    assert not np.array_equal(out, other)
    with pytest.raises(ValueError, match="no training identities"):
        protocol_splits(identities, splits, TRAIN, HOLDOUT, holdout_identities=10)


def _datamodule(root, seed):
    datamodule = FaceDataModule(root=str(root), num_forget_identities=3, batch_size=6, images_per_identity=2,
                                evaluation_seed=0, holdout_identities=8, max_images_per_identity=10,
                                eval_retain_identities=4, seed=seed)
    datamodule.setup()
    return datamodule


def test_the_forget_seed_changes_the_forget_set_only(tmp_path):
    root = write_random_packed(tmp_path / "packed", train_identities=24, images_per_identity=14, holdout=0, distractors=0).root
    first, second = _datamodule(root, seed=0), _datamodule(root, seed=1)
    for name in ("holdout", "holdout_query", "holdout_gallery"):
        assert np.array_equal(first.rows[name], second.rows[name])  # the benchmark is fixed
    assert not np.array_equal(first.rows["forget"], second.rows["forget"])
    held = set(first.packed.identities[first.rows["holdout"]].tolist())
    assert len(held) == 8
    for datamodule in (first, second):
        trained = set(datamodule.packed.identities[np.concatenate([datamodule.rows["forget"], datamodule.rows["retain"]])].tolist())
        assert trained.isdisjoint(held) and len(trained) == 16  # no training stream sees an evaluation identity
        assert np.bincount(datamodule.packed.identities[datamodule.rows["train"]]).max() == 10
