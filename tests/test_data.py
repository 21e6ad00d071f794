"""Packed format, splits, samplers and the DataModule."""

import numpy as np
import pytest
import torch

from faceunlearn.data.dataset import model_input
from faceunlearn.data import FaceDataModule, PackedDatasetError, PackedFaces, PackedFacesWriter
from faceunlearn.data.dataset import FaceImages
from faceunlearn.data.samplers import IdentityBalancedBatchSampler, ShuffledBatchSampler
from faceunlearn.data.splits import choose_forget_identities, split_forget_images


# -- packed format -------------------------------------------------------------------------------
def test_packed_roundtrip(random_packed):
    reopened = PackedFaces.open(random_packed.root)
    assert len(reopened) == 20 * 12 + 4 * 5 + 5 * 2
    assert np.array_equal(reopened.images[7], random_packed.images[7])
    assert len(reopened.select(split="holdout", tag="profile")) == 8
    assert reopened.meta["num_classes"] == 20
    assert not reopened.images.flags.writeable  # read-only memory map


def test_packed_writer_never_overwrites_and_never_looks_complete(tmp_path, random_packed):
    with pytest.raises(PackedDatasetError, match="refusing to overwrite"):
        PackedFacesWriter(random_packed.root, 4)
    writer = PackedFacesWriter(tmp_path / "half", 4)
    writer.write(0, np.zeros((2, 112, 112, 3), np.uint8))
    with pytest.raises(PackedDatasetError, match="2 of 4 images were never written"):
        writer.commit(np.arange(4), np.zeros(4), np.zeros(4), np.zeros(4))
    assert not (tmp_path / "half").exists()  # only half.partial, which open() does not accept
    with pytest.raises(PackedDatasetError, match="does not exist"):
        PackedFaces.open(tmp_path / "half")


def test_packed_open_reports_missing_files(tmp_path, random_packed):
    (random_packed.root / "index.npz").unlink()
    with pytest.raises(PackedDatasetError, match="incomplete: missing index.npz"):
        PackedFaces.open(random_packed.root)


# -- splits ----------------------------------------------------------------------------------------
def test_forget_identities_are_seeded_and_validated():
    identities = np.repeat(np.arange(30), 6)
    first = choose_forget_identities(identities, 10, seed=3)
    assert np.array_equal(first, choose_forget_identities(identities, 10, seed=3))
    assert not np.array_equal(first, choose_forget_identities(identities, 10, seed=4))
    assert len(np.unique(first)) == 10
    with pytest.raises(ValueError, match=r"forget identities \[77\] are not training identities"):
        choose_forget_identities(identities, 10, 0, explicit=[1, 77])
    small = np.concatenate([identities, [40, 40, 40]])
    with pytest.raises(ValueError, match=r"\[40\] have fewer than 4 images"):
        choose_forget_identities(small, 10, 0, explicit=[40])


def test_forget_sets_compare_by_their_people(random_packed):
    from faceunlearn.data.forget_set import ForgetSet

    first, again = (ForgetSet.draw(random_packed, 4, seed=3) for _ in range(2))
    other_seed = ForgetSet.draw(random_packed, 4, seed=4)
    assert first.same_people(again) and np.array_equal(first.train_rows, again.train_rows)
    assert not first.same_people(other_seed)  # (4 of this pack's identities: another seed draws others)
    named = ForgetSet.draw(random_packed, 4, seed=9, explicit=[int(i) for i in first.identities])
    assert first.same_people(named) and named.seed == 9  # the same people by id, split with another seed
    assert first.state() == {"forget_identities": sorted(int(i) for i in first.identities)}


def test_forget_split_is_about_half_and_keeps_two_per_side():
    identities = np.repeat(np.arange(5), [4, 5, 10, 30, 31])
    in_train = split_forget_images(identities, 0.5, seed=0)
    for identity, count in zip(range(5), [4, 5, 10, 30, 31]):
        n_train = in_train[identities == identity].sum()
        assert 2 <= n_train <= count - 2 and abs(n_train - count / 2) <= 1
    assert np.array_equal(in_train, split_forget_images(identities, 0.5, seed=0))


# -- samplers --------------------------------------------------------------------------------------
def test_identity_balanced_batches():
    labels = np.repeat(np.arange(10), 7)
    sampler = IdentityBalancedBatchSampler(labels, batch_size=32, images_per_identity=4, seed=0, num_batches=50)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 50
    for batch in batches:
        assert len(batch) == 32 and len(set(batch)) == 32
        identities, counts = np.unique(labels[batch], return_counts=True)
        assert len(identities) == 8 and (counts == 4).all()
    assert batches == list(sampler)  # same epoch → same batches
    sampler.set_epoch(1)
    assert batches != list(sampler)


def test_identity_balanced_sampler_rejects_impossible_pk():
    labels = np.repeat(np.arange(10), 7)
    with pytest.raises(ValueError, match="not a multiple of images_per_identity=5"):
        IdentityBalancedBatchSampler(labels, 32, 5)
    with pytest.raises(ValueError, match="needs 16 identities per batch, but the forget set has only 10"):
        IdentityBalancedBatchSampler(labels, 32, 2)
    with pytest.raises(ValueError, match="have only 7 images"):
        IdentityBalancedBatchSampler(labels, 32, 8)


def test_mirror_bit_and_shuffled_sampler():
    sampler = ShuffledBatchSampler(100, 10, seed=1, mirror=True)
    indices = np.concatenate(list(sampler))
    assert len(indices) == 100 and set(indices % 100) == set(range(100))
    assert 20 < (indices >= 100).sum() < 80  # about half mirrored


def test_dataset_reads_batches_and_mirrors(random_packed):
    dataset = FaceImages(random_packed, np.arange(10))
    raw = dataset.__getitems__([3, 13, 0])
    # batches leave the loader as uint8 with the mirror bits; model_input normalises and flips on the device
    assert raw["image"].shape == (3, 112, 112, 3) and raw["image"].dtype == torch.uint8
    assert raw["mirror"].tolist() == [False, True, False]
    batch = model_input(raw)
    assert batch["image"].shape == (3, 3, 112, 112) and batch["image"].dtype == torch.float32 and "mirror" not in batch
    assert torch.equal(batch["image"][1], batch["image"][0].flip(-1))  # 13 = row 3 mirrored
    assert batch["image_id"].tolist() == [1003, 1003, 1000]
    expected = torch.from_numpy(random_packed.images[3].copy()).permute(2, 0, 1).float() / 127.5 - 1
    assert torch.allclose(batch["image"][0], expected)


# -- DataModule ------------------------------------------------------------------------------------
def test_datamodule_subsets(random_packed):
    dm = FaceDataModule(root=str(random_packed.root), num_forget_identities=4, batch_size=8, images_per_identity=4, eval_retain_identities=5)
    assert dm.num_classes == 20
    dm.setup()
    subsets = dm.subsets
    forget_ids = set(random_packed.identities[dm.rows["forget"]])
    assert len(forget_ids) == 4
    assert set(subsets["forget_train"]).isdisjoint(subsets["forget_test"])
    assert set(subsets["forget_train"]) | set(subsets["forget_test"]) == set(subsets["forget"])
    assert forget_ids.isdisjoint(random_packed.identities[dm.rows["retain_eval"]])
    assert len(set(random_packed.identities[dm.rows["retain_eval"]])) == 5
    assert len(subsets["holdout_profile"]) == 8
    batch = next(iter(dm.stream("forget")))
    assert set(batch["label"].tolist()) <= forget_ids and batch["image"].shape[0] == 8


def test_datamodule_errors(tmp_path, random_packed):
    with pytest.raises(PackedDatasetError, match="faceunlearn prepare"):
        FaceDataModule(root=str(tmp_path / "absent")).setup()
    with pytest.raises(ValueError, match="needs 16 identities per batch"):
        FaceDataModule(root=str(random_packed.root), num_forget_identities=10, batch_size=32, images_per_identity=2).setup()
    with pytest.raises(ValueError, match="not training identities"):
        FaceDataModule(root=str(random_packed.root), forget_identities=[0, 21]).setup()


# -- several sources -------------------------------------------------------------------------------
def test_extra_sources_are_evaluated_beside_the_main_dataset(tmp_path, random_packed):
    from conftest import write_random_packed

    cfp = write_random_packed(tmp_path / "cfp", train_identities=0, holdout=6, distractors=0, seed=1)
    ijbb = write_random_packed(tmp_path / "ijbb", train_identities=0, holdout=0, distractors=30, seed=2)
    dm = FaceDataModule(root=str(random_packed.root), extra_sources={"cfp": str(cfp.root), "ijbb": str(ijbb.root)},
                        num_forget_identities=4, batch_size=8, eval_retain_identities=5, max_distractors=40, eval_batch_size=7)
    dm.setup()
    subsets = dm.subsets
    assert len(subsets["cfp:holdout_profile"]) == 12 and len(subsets["cfp:holdout_frontal"]) == 18
    assert len(subsets["ijbb:distractors"]) == 40  # 60 drawn down to max_distractors, seeded
    assert len(np.unique(np.concatenate(list(subsets.values())))) == len(set().union(*map(set, subsets.values())))
    # the same image id in two packs stays two images
    assert set(subsets["cfp:holdout"]).isdisjoint(subsets["holdout"]) and set(subsets["ijbb:distractors"]).isdisjoint(subsets["distractors"])

    names = ["forget_test", "cfp:holdout_profile", "cfp:holdout_frontal", "ijbb:distractors"]
    batches = [model_input(batch) for batch in dm.eval_dataloader(names)]
    image_ids = torch.cat([batch["image_id"] for batch in batches]).numpy()
    labels = torch.cat([batch["label"] for batch in batches]).numpy()
    expected = np.concatenate([subsets[name] for name in names])
    assert sorted(image_ids) == sorted(expected) and len(set(image_ids)) == len(image_ids)  # each image once
    profile = np.isin(image_ids, subsets["cfp:holdout_profile"])
    first = np.flatnonzero(profile)[0]
    pixels = torch.cat([batch["image"] for batch in batches])[first]
    row = np.flatnonzero(cfp.image_ids == image_ids[first] - (1 << 40))[0]
    assert torch.equal(pixels, torch.from_numpy(cfp.images[row].copy()).permute(2, 0, 1).float() / 127.5 - 1)
    assert set(labels[profile] - (1 << 40)) <= set(cfp.identities.tolist())
    assert set(labels[profile]).isdisjoint(labels[np.isin(image_ids, subsets["forget_test"])])
    with pytest.raises(KeyError, match="cfp:nope"):
        dm.eval_dataloader(["cfp:nope"])


def test_holdout_query_gallery_halves(random_packed):
    dm = FaceDataModule(root=str(random_packed.root), num_forget_identities=4, batch_size=8)
    dm.setup()
    query, gallery = dm.subsets["holdout_query"], dm.subsets["holdout_gallery"]
    assert set(query).isdisjoint(gallery) and set(query) | set(gallery) == set(dm.subsets["holdout"])
    for identity in np.unique(random_packed.identities[random_packed.select(split="holdout")]):
        ids = set(random_packed.image_ids[random_packed.identities == identity])
        assert len(ids & set(query)) >= 1 and len(ids & set(gallery)) >= 1  # 5 images: 2 or 3 per side


def test_paths_expand_environment_variables(tmp_path, random_packed, monkeypatch):
    monkeypatch.setenv("FACEUNLEARN_TEST_DATA", str(random_packed.root.parent))
    dm = FaceDataModule(root="$FACEUNLEARN_TEST_DATA/" + random_packed.root.name)
    assert dm.root == random_packed.root and dm.num_classes == 20
    monkeypatch.delenv("FACEUNLEARN_TEST_DATA")
    with pytest.raises(ValueError, match=r"FACEUNLEARN_TEST_DATA .*not set.*--data.root"):
        FaceDataModule(root="$FACEUNLEARN_TEST_DATA/packed")
    with pytest.raises(PackedDatasetError, match=r"faceunlearn prepare cfp --root RAW --out .*no_cfp"):
        FaceDataModule(root=str(random_packed.root), extra_sources={"cfp": str(tmp_path / "no_cfp")})


def test_cycled_images_visit_every_image_within_ceil_n_over_k_appearances():
    """The paper's VGGFace2 regime: batch 160 = 40 × 4 from 50 identities of ~145 images (issue 11 point 7)."""
    rng = np.random.default_rng(0)
    counts = rng.integers(130, 160, size=50)
    labels = np.repeat(np.arange(50), counts)
    k = 4
    sampler = IdentityBalancedBatchSampler(labels, batch_size=160, images_per_identity=k, seed=3, num_batches=400, images="cycle")
    batches = list(sampler)
    assert all(len(batch) == 160 and len(set(batch)) == 160 for batch in batches)  # no repeat within a batch
    seen_by_identity = {identity: [] for identity in range(50)}
    for batch in batches:
        for start in range(0, 160, k):
            group = batch[start:start + k]
            identity = labels[group[0]]
            assert (labels[group] == identity).all()
            seen_by_identity[identity].append(group)
    for identity, groups in seen_by_identity.items():
        n = counts[identity]
        per_pass = -(-n // k)
        assert len(groups) >= 2 * per_pass  # each identity appears in more than two full passes here
        for first in range(0, len(groups) - per_pass + 1, per_pass):  # every pass covers every image
            assert set(np.concatenate(groups[first:first + per_pass]).tolist()) == set(np.flatnonzero(labels == identity).tolist())
    assert [b for b in sampler] == batches  # seeded: same epoch, same batches
    uniform = IdentityBalancedBatchSampler(labels, batch_size=160, images_per_identity=k, seed=3, num_batches=400)
    assert [b for b in uniform] != batches  # the default draws images afresh (the published results' sampler)
    with pytest.raises(ValueError, match="images='round'"):
        IdentityBalancedBatchSampler(labels, 160, k, images="round")


def test_datamodule_forget_images_option(random_packed):
    from faceunlearn.data import FaceDataModule

    def batches(images):
        datamodule = FaceDataModule(root=str(random_packed.root), num_forget_identities=4, batch_size=8, images_per_identity=2,
                                    batches_per_epoch=6, eval_retain_identities=3, forget_images=images)
        datamodule.setup()
        return [batch["image_id"].tolist() for batch in datamodule.stream("forget")]

    assert batches("cycle") == batches("cycle") and batches("cycle") != batches("uniform")
