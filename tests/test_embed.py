"""``faceunlearn embed``: a pack or a folder of aligned photos embedded by a model, as arrays or a FAISS index."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from faceunlearn.commands.embed import main
from faceunlearn.data.packed import PackedFaces
from test_export import save_lightning_checkpoint  # tests/ is on sys.path (pytest prepend import mode)


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "model.ckpt"
    save_lightning_checkpoint(path, seed=0)
    return path


def _reference(model, images: np.ndarray) -> np.ndarray:
    """The checkpoint's backbone on normalised faces, unit rows: an independent path to the same numbers."""
    from faceunlearn import export
    from faceunlearn.data.dataset import normalize

    backbone, _ = export.load_backbone(model, None, None)
    with torch.no_grad():
        return F.normalize(backbone.eval()(normalize(torch.from_numpy(images))).float(), dim=1).numpy()


def test_a_pack_as_arrays_and_as_a_faiss_index(model, random_packed, tmp_path, capsys):
    out = tmp_path / "gallery.npz"
    main(["--model", str(model), "--pack", str(random_packed.root), "--out", str(out), "--batch-size", "7"])
    saved = np.load(out)
    packed = PackedFaces.open(random_packed.root)
    assert saved["embeddings"].dtype == np.float32 and saved["embeddings"].shape[0] == len(packed)
    assert np.array_equal(saved["ids"], packed.image_ids)
    assert saved["labels"].tolist() == [f"id{i}" for i in packed.identities]  # a pack without names: id<N>
    assert np.allclose(saved["embeddings"], _reference(model, np.asarray(packed.images)), atol=1e-5)
    assert "faces of" in capsys.readouterr().out

    import faiss

    index_path = tmp_path / "gallery.faiss"
    main(["--model", str(model), "--pack", str(random_packed.root), "--out", str(index_path)])
    index = faiss.read_index(str(index_path))
    scores, ids = index.search(saved["embeddings"][:5], 1)
    assert np.array_equal(ids[:, 0], saved["ids"][:5]) and np.allclose(scores[:, 0], 1.0, atol=1e-5)  # itself first
    sidecar = np.load(tmp_path / "gallery.faiss.labels.npz")
    assert np.array_equal(sidecar["ids"], saved["ids"]) and np.array_equal(sidecar["labels"], saved["labels"])


def test_a_folder_of_aligned_photos_per_person(model, tmp_path):
    rng = np.random.default_rng(0)
    photos = {}
    for person in ("alice", "bob"):
        (tmp_path / "people" / person).mkdir(parents=True)
        for index in range(2):
            face = rng.integers(0, 256, (112, 112, 3), dtype=np.uint8)
            Image.fromarray(face).save(tmp_path / "people" / person / f"{index}.png")
            photos[(person, index)] = face
    out = tmp_path / "people.npz"
    main(["--model", str(model), "--root", str(tmp_path / "people"), "--aligned", "--out", str(out)])
    saved = np.load(out)
    assert sorted(saved["labels"].tolist()) == ["alice", "alice", "bob", "bob"]  # the person folders' names
    want = _reference(model, np.stack(list(photos.values())))
    for vector in saved["embeddings"]:  # each photo's embedding is one of the photos' own
        assert np.abs(want - vector).max(axis=1).min() < 1e-4


def test_bad_output_and_missing_model_say_so(model, random_packed, tmp_path):
    with pytest.raises(SystemExit, match="write a .npz"):
        main(["--model", str(model), "--pack", str(random_packed.root), "--out", str(tmp_path / "g.csv")])
    with pytest.raises(SystemExit, match="does not exist"):
        main(["--model", str(tmp_path / "absent.ckpt"), "--pack", str(random_packed.root), "--out", str(tmp_path / "g.npz")])
    assert not (tmp_path / "g.npz").exists()
