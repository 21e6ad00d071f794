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


def _with_names(root, names):
    import json

    meta_path = root / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "identity_names": names}))


def test_forget_identities_by_name_and_kept_people_halves(tmp_path):
    """``forget_identities`` takes folder names; ``retain_eval_query``/``_gallery`` halve every kept person."""
    root = write_random_packed(tmp_path / "packed", train_identities=12, images_per_identity=6, holdout=0, distractors=0).root
    _with_names(root, [f"person_{i}" for i in range(12)])
    datamodule = FaceDataModule(root=str(root), forget_identities=["person_3", 7, "person_10"], batch_size=6,
                                images_per_identity=2, eval_retain_identities=5, evaluation_seed=0)
    datamodule.setup()
    assert datamodule.forget_identity_ids.tolist() == [3, 7, 10]
    identities = datamodule.packed.identities
    query, gallery = datamodule.rows["retain_eval_query"], datamodule.rows["retain_eval_gallery"]
    assert np.array_equal(np.sort(np.concatenate([query, gallery])), np.sort(datamodule.rows["retain_eval"]))
    assert np.bincount(identities[query]).tolist() == np.bincount(identities[gallery]).tolist()  # 3 + 3 per person
    assert len(np.unique(identities[query])) == 5 and not set(identities[query].tolist()) & {3, 7, 10}

    unknown = FaceDataModule(root=str(root), forget_identities=["person_3", "Nobody"], batch_size=4, images_per_identity=2)
    with pytest.raises(ValueError, match="unknown forget identity Nobody .*person_0"):
        unknown.setup()


def test_names_asked_of_a_pack_without_names(tmp_path):
    root = write_random_packed(tmp_path / "packed", train_identities=6, images_per_identity=6, holdout=0, distractors=0).root
    datamodule = FaceDataModule(root=str(root), forget_identities=["person_1"], batch_size=4, images_per_identity=2)
    with pytest.raises(ValueError, match="no identity_names"):
        datamodule.setup()


def test_missing_pack_names_the_prepare_command(tmp_path):
    """A dataset without a reader of its own (own photos, glint-celebrities) is made with ``prepare folder``."""
    from faceunlearn.data.datamodule import PREPARE_READERS
    from faceunlearn.data.packed import PackedDatasetError
    from faceunlearn.prepare.datasets import READERS

    assert set(PREPARE_READERS) == set(READERS) - {"folder"}
    for dataset, command in (("own", "prepare folder"), ("celeba", "prepare celeba")):
        with pytest.raises(PackedDatasetError, match=f"`faceunlearn {command} --root RAW --out .*missing`"):
            FaceDataModule(root=str(tmp_path / "missing"), dataset=dataset).setup()


def test_validation_identities_are_disjoint_from_the_reported_held_out_ones(tmp_path):
    root = write_random_packed(tmp_path / "packed", train_identities=24, images_per_identity=14, holdout=0, distractors=0).root
    plain = _datamodule(root, seed=0)
    split = FaceDataModule(root=str(root), num_forget_identities=3, batch_size=6, images_per_identity=2, evaluation_seed=0,
                           holdout_identities=8, max_images_per_identity=10, eval_retain_identities=4, seed=1,
                           validation_fraction=0.25)
    split.setup()
    ids = split.packed.identities
    validation, reported = set(ids[split.rows["validation"]].tolist()), set(ids[split.rows["holdout"]].tolist())
    assert len(validation) == 2 and len(reported) == 6 and validation.isdisjoint(reported)
    assert validation | reported == set(ids[plain.rows["holdout"]].tolist())
    # each image keeps its side: the reported halves are the unsplit halves minus the validation identities
    for side in ("query", "gallery"):
        unsplit = plain.rows[f"holdout_{side}"]
        assert np.array_equal(split.rows[f"holdout_{side}"], unsplit[~np.isin(ids[unsplit], list(validation))])
        assert np.array_equal(split.rows[f"validation_{side}"], unsplit[np.isin(ids[unsplit], list(validation))])
    # training streams never see either
    trained = set(ids[np.concatenate([split.rows["forget"], split.rows["retain"]])].tolist())
    assert trained.isdisjoint(validation | reported)
    with pytest.raises(ValueError, match="validation_fraction"):
        FaceDataModule(root=str(root), validation_fraction=1.0)


def test_by_default_the_forget_seed_moves_no_benchmark(tmp_path):
    root = write_random_packed(tmp_path / "packed", train_identities=16, images_per_identity=10, holdout=6, distractors=30).root
    first, second = (FaceDataModule(root=str(root), num_forget_identities=3, batch_size=6, images_per_identity=2,
                                    eval_retain_identities=4, max_distractors=10, seed=seed) for seed in (0, 1))
    first.setup(), second.setup()
    for name in ("holdout_query", "holdout_gallery", "distractors"):
        assert np.array_equal(first.rows[name], second.rows[name]), name
    assert not np.array_equal(first.rows["forget"], second.rows["forget"])
