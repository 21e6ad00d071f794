import os

# Under pytest-xdist (`make test`) the test processes share the cores: one intra-op thread each, set
# before torch loads (subprocesses a test starts inherit it), instead of each taking every core.
if os.environ.get("PYTEST_XDIST_WORKER") and "OMP_NUM_THREADS" not in os.environ:
    os.environ["OMP_NUM_THREADS"] = "1"

import numpy as np
import pytest

from faceunlearn.data.packed import PackedFacesWriter, split_code, tag_code

#: the files that take longest (seconds of one process, `--durations`), run first: `make test` shares whole files
#: between its 2 processes in collection order, and a long file started last leaves the other process idle
LONGEST_FIRST = ("test_cli.py", "test_unlearning.py", "test_audit.py", "test_workflow.py", "test_snapshots.py",
                 "test_tune.py", "test_retrieval.py", "test_figures.py")


def pytest_collection_modifyitems(items):
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: each file keeps its own order


def write_random_packed(root, train_identities=20, images_per_identity=12, holdout=4, distractors=5, seed=0):
    """A small packed dataset of noise images with the synthetic dataset's split/tag structure."""
    rng = np.random.default_rng(seed)
    identities, splits, tags = [], [], []
    for identity in range(train_identities):
        identities += [identity] * images_per_identity
        splits += [split_code("train")] * images_per_identity
        tags += [tag_code("")] * images_per_identity
    for identity in range(train_identities, train_identities + holdout):
        identities += [identity] * 5
        splits += [split_code("holdout")] * 5
        tags += [tag_code("frontal")] * 3 + [tag_code("profile")] * 2
    for identity in range(train_identities + holdout, train_identities + holdout + distractors):
        identities += [identity] * 2
        splits += [split_code("distractor")] * 2
        tags += [tag_code("")] * 2
    writer = PackedFacesWriter(root, len(identities))
    writer.write(0, rng.integers(0, 256, (len(identities), 112, 112, 3), dtype=np.uint8))
    return writer.commit(np.arange(len(identities)) + 1000, identities, splits, tags, {"num_classes": train_identities})


@pytest.fixture
def random_packed(tmp_path):
    return write_random_packed(tmp_path / "packed")


@pytest.fixture
def start_weights_override(tmp_path):
    """LightningCLI arguments naming an existing dummy start-weights file: sweep-style tests that
    replace ``sweep.run_one`` need the file to exist, never to load."""
    weights = tmp_path / "original.ckpt"
    weights.write_bytes(b"weights")
    return ["--model.init_args.init_weights", str(weights)]
