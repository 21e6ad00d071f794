"""Spawn-safe data: a packed dataset pickles without its images; spawned DataLoader workers give the same batches."""

import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from faceunlearn.data import FaceDataModule
from faceunlearn.data.dataset import FaceImages, collate_batch
from faceunlearn.data.samplers import IdentityBalancedBatchSampler
from tests.conftest import write_random_packed


def test_a_packed_dataset_pickles_small_and_reopens_its_memory_map(tmp_path):
    packed = write_random_packed(tmp_path / "packed", train_identities=40, images_per_identity=12)
    assert packed.images.nbytes > 10_000_000  # the pack itself is larger than the bound below
    datamodule = FaceDataModule(root=str(packed.root), num_forget_identities=3, batch_size=6, images_per_identity=2,
                                holdout_identities=8, eval_retain_identities=4)
    datamodule.setup()
    view = datamodule.packed  # a protocol view: its split column differs from the one on disk
    assert not np.array_equal(view.splits, packed.splits)
    blob = pickle.dumps(view)
    assert len(blob) < 1_000_000
    copy = pickle.loads(blob)
    assert isinstance(copy.images, np.memmap) and np.array_equal(copy.images[:5], view.images[:5])
    for column in ("image_ids", "identities", "splits", "tags"):
        assert np.array_equal(getattr(copy, column), getattr(view, column))
    assert len(pickle.dumps(FaceImages(view, datamodule.rows["retain"]))) < 1_000_000


@pytest.mark.slow  # spawned interpreters: the slow tier
def test_spawned_workers_give_the_batches_of_the_main_process(tmp_path):
    packed = write_random_packed(tmp_path / "packed", train_identities=12, images_per_identity=8)
    rows = packed.select(split="train")
    dataset = FaceImages(packed, rows)

    def loader(**kwargs):
        sampler = IdentityBalancedBatchSampler(packed.identities[rows], 8, 2, seed=3, num_batches=6)
        return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_batch, **kwargs)

    reference = list(loader(num_workers=0))
    spawned = list(loader(num_workers=2, multiprocessing_context="spawn"))
    assert len(spawned) == len(reference) == 6
    for got, want in zip(spawned, reference):
        for key in want:
            assert torch.equal(got[key], want[key]), key
