"""Tests for the procedural synthetic faces (faceunlearn.data.synthetic)."""

import numpy as np
import pytest

from faceunlearn.data.packed import PackedDatasetError, PackedFaces, split_code, tag_code
from faceunlearn.data.synthetic import (
    DEFAULT_KNOBS,
    SyntheticFaceGenerator,
    build_synthetic_dataset,
    hash_keys,
    preview_grid,
    splitmix64,
)


@pytest.fixture(scope="module")
def gen():
    return SyntheticFaceGenerator(seed=0)


def test_splitmix64_reference_values():
    # splitmix64 seeded with 0 yields 0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, ... (Vigna's reference).
    out = splitmix64(np.array([0, 0x9E3779B97F4A7C15], dtype=np.uint64))
    assert [hex(int(v)) for v in out] == ["0xe220a8397b1dcdaf", "0x6e789e6aa1b965f4"]
    assert hash_keys(1, np.arange(5)).shape == (5,)
    assert len(np.unique(hash_keys(0, np.arange(1000), 3))) == 1000


def test_shape_dtype_and_view_validation(gen):
    images = gen.render(np.array([0, 1, 2]), np.array([0, 0, 5]), "any")
    assert images.shape == (3, 112, 112, 3) and images.dtype == np.uint8
    assert images.std() > 10  # not blank
    for view in ("frontal", "profile"):
        assert gen.render([4], [1], view).shape == (1, 112, 112, 3)
    with pytest.raises(ValueError):
        gen.render([0], [0], "sideways")
    with pytest.raises(TypeError):
        SyntheticFaceGenerator(0, no_such_knob=1)


def test_deterministic_per_seed(gen):
    ids, keys = np.arange(20) // 4, np.arange(20) % 4
    a = gen.render(ids, keys)
    assert np.array_equal(a, gen.render(ids, keys))
    assert np.array_equal(a, SyntheticFaceGenerator(seed=0).render(ids, keys))
    b = SyntheticFaceGenerator(seed=1).render(ids, keys)
    assert (a != b).mean() > 0.5
    # The view is part of the key: the same (identity, key) differs between views.
    assert not np.array_equal(gen.render([3], [2], "frontal"), gen.render([3], [2], "profile"))


def test_batch_independence(gen):
    """An image's pixels do not depend on what else is rendered with it (or on sub-batching)."""
    n = 150  # crosses the internal rasterisation batches of 64
    ids, keys = np.arange(n) * 7 % 23, np.arange(n)
    for view in ("any", "profile"):
        batch = gen.render(ids, keys, view)
        for i in (0, 5, 63, 64, 100, 149):
            assert np.array_equal(batch[i], gen.render(ids[i : i + 1], keys[i : i + 1], view)[0])
        order = np.random.default_rng(0).permutation(n)
        assert np.array_equal(batch[order], gen.render(ids[order], keys[order], view))


def _asymmetry(images):
    x = images.astype(np.float32).mean(-1)
    return np.abs(x - x[:, :, ::-1]).mean()


def test_profile_views_are_asymmetric():
    g = SyntheticFaceGenerator(0, occlusion_prob=0.0)
    ids, keys = np.arange(48), np.zeros(48, dtype=np.int64)
    frontal, profile = g.render(ids, keys, "frontal"), g.render(ids, keys, "profile")
    assert _asymmetry(profile) > 1.5 * _asymmetry(frontal)


def test_identities_differ_more_than_images_of_one_identity():
    g = SyntheticFaceGenerator(0, occlusion_prob=0.0)
    n_ids, per = 16, 4
    imgs = g.render(np.repeat(np.arange(n_ids), per), np.tile(np.arange(per), n_ids), "frontal")
    x = imgs.reshape(n_ids, per, -1).astype(np.float32)
    # Compare the central face region, where identity lives (the background varies per image).
    faces = imgs.reshape(n_ids, per, 112, 112, 3)[:, :, 30:100, 25:87].reshape(n_ids, per, -1).astype(np.float32)
    for data in (x, faces):
        within = np.mean([np.abs(data[i, a] - data[i, b]).mean() for i in range(n_ids) for a in range(per) for b in range(a)])
        between = np.mean([np.abs(data[i, 0] - data[j, 1]).mean() for i in range(n_ids) for j in range(n_ids) if i != j])
        assert between > 1.15 * within


def test_build_synthetic_dataset(tmp_path):
    root = tmp_path / "synth"
    counts = dict(
        num_train_identities=3, images_per_train_identity=4, num_holdout_identities=2, holdout_frontal=3,
        holdout_profile=2, num_distractor_identities=4, images_per_distractor=2,
    )
    ds = build_synthetic_dataset(root, seed=5, chunk_size=7, occlusion_prob=0.3, **counts)
    assert isinstance(ds, PackedFaces)
    n = 3 * 4 + 2 * (3 + 2) + 4 * 2
    assert len(ds) == n and ds.images.shape == (n, 112, 112, 3)
    assert np.array_equal(ds.image_ids, np.arange(n))
    train, hold, dist = ds.select("train"), ds.select("holdout"), ds.select("distractor")
    assert (len(train), len(hold), len(dist)) == (12, 10, 8)
    assert np.array_equal(np.unique(ds.identities[train]), [0, 1, 2])
    assert np.array_equal(np.unique(ds.identities[hold]), [3, 4])
    assert np.array_equal(np.unique(ds.identities[dist]), [5, 6, 7, 8])
    assert np.all(ds.tags[train] == tag_code("")) and np.all(ds.tags[dist] == tag_code(""))
    for ident in (3, 4):
        rows = hold[ds.identities[hold] == ident]
        assert (ds.tags[rows] == tag_code("frontal")).sum() == 3
        assert (ds.tags[rows] == tag_code("profile")).sum() == 2
    assert len(ds.select("holdout", "profile")) == 4 and np.all(ds.splits[ds.select(tag="frontal")] == split_code("holdout"))
    meta = ds.meta
    assert meta["num_classes"] == 3 and meta["seed"] == 5
    assert meta["knobs"]["occlusion_prob"] == 0.3 and set(meta["knobs"]) == set(DEFAULT_KNOBS)
    assert meta["counts"]["holdout_profile"] == 2
    # The stored pixels are exactly what the generator renders for (identity, key, view).
    gen = SyntheticFaceGenerator(5, occlusion_prob=0.3)
    profile_rows = ds.select("holdout", "profile")
    keys = np.array([3, 4, 3, 4])  # profile keys follow the frontal ones
    assert np.array_equal(ds.images[profile_rows], gen.render(ds.identities[profile_rows], keys, "profile"))
    assert np.array_equal(ds.images[train], gen.render(ds.identities[train], np.tile(np.arange(4), 3), "any"))
    # Never overwrites silently; overwrite=True rebuilds.
    with pytest.raises(PackedDatasetError):
        build_synthetic_dataset(root, seed=5, **counts)
    again = build_synthetic_dataset(root, seed=6, overwrite=True, **counts)
    assert again.meta["seed"] == 6 and not np.array_equal(np.asarray(again.images), np.asarray(ds.images))


def test_preview_grid_shape():
    grid = preview_grid(0, num_identities=2, per_identity=6)
    assert grid.shape == (2 * 112, 6 * 112, 3) and grid.dtype == np.uint8


def test_frontal_landmarks_sit_on_the_arcface_template():
    from faceunlearn.data.synthetic import ARCFACE_TEMPLATE

    g = SyntheticFaceGenerator(0)
    ids = np.arange(200)
    frontal = g.landmarks(ids, np.zeros(200, dtype=np.int64), "frontal")
    assert frontal.shape == (200, 5, 2)
    assert np.abs(frontal.mean(0) - ARCFACE_TEMPLATE).max() < 2.0
    assert np.median(np.linalg.norm(frontal - ARCFACE_TEMPLATE, axis=-1)) < 5.0
    # Profiles keep the eyes roughly aligned vertically but move the face sideways.
    profile = g.landmarks(ids, np.zeros(200, dtype=np.int64), "profile")
    assert np.abs(profile[:, :2, 1].mean() - 51.6) < 3.0
    assert np.abs(profile[:, 2, 0] - 56).mean() > 10



def test_runs_started_side_by_side_build_the_synthetic_faces_once(tmp_path, monkeypatch):
    # a sweep's jobs start together on a fresh machine: without the lock both wrote <root>.partial and one crashed
    import threading
    import time

    from faceunlearn.data import datamodule

    counts = dict(num_train_identities=3, images_per_train_identity=4, num_holdout_identities=2, holdout_frontal=3,
                  holdout_profile=2, num_distractor_identities=4, images_per_distractor=2)
    builds = []

    def slow_build(root, **knobs):  # both runs are inside prepare_data before either finishes
        builds.append(root)
        time.sleep(0.5)
        return build_synthetic_dataset(root, **knobs)

    monkeypatch.setattr(datamodule, "build_synthetic_dataset", slow_build)
    root = tmp_path / "synth"
    errors = []

    def prepare():
        try:
            datamodule.FaceDataModule(root=str(root), synthetic={"seed": 5, **counts}).prepare_data()
        except Exception as error:  # noqa: BLE001 - the test reports it
            errors.append(error)

    threads = [threading.Thread(target=prepare) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == [] and len(builds) == 1
    assert len(PackedFaces.open(root)) == 3 * 4 + 2 * (3 + 2) + 4 * 2
    assert not (tmp_path / "synth.partial").exists()
