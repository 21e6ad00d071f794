"""The FAISS gallery engine against the exact engine: R@k equal, mAP@k = mAP when k covers the gallery."""

import pytest
import torch

from faceunlearn.metrics import retrieval_metrics
from faceunlearn.metrics.index_search import GalleryIndex, truncated_retrieval


def _data(seed=0, identities=30, per_identity=8, dim=16):
    generator = torch.Generator().manual_seed(seed)
    centres = torch.randn(identities, dim, generator=generator)
    labels = torch.arange(identities).repeat_interleave(per_identity)
    embeddings = centres[labels] + 0.9 * torch.randn(len(labels), dim, generator=generator)
    return embeddings, labels, torch.arange(len(labels)) * 3 + 1


@pytest.mark.parametrize("kind", ["flat", "ivf"])
def test_truncated_retrieval_matches_the_exact_engine(kind):
    gallery, labels, ids = _data()
    query, query_labels, query_ids = gallery[::2], labels[::2], ids[::2]  # queries inside the gallery: own image excluded
    index = GalleryIndex(16, kind=kind, nlist=8, nprobe=8, device="cpu")  # nprobe = nlist: an exhaustive ivf search
    if kind == "ivf":
        index.train(gallery[::3])  # lists from a sample across the gallery, before the chunks arrive
    for start in range(0, len(gallery), 50):  # added chunk by chunk
        index.add(gallery[start:start + 50], labels[start:start + 50], ids[start:start + 50])
    assert len(index) == len(gallery)
    exact = retrieval_metrics(query, query_labels, gallery, labels, query_ids, ids, ks=(1, 5))
    whole = truncated_retrieval(query, query_labels, index, k=len(gallery), query_ids=query_ids, ks=(1, 5), chunk=7)
    assert whole["R@1"] == pytest.approx(exact["R@1"]) and whole["R@5"] == pytest.approx(exact["R@5"])
    assert whole[f"mAP@{len(gallery)}"] == pytest.approx(exact["mAP"], abs=1e-9)
    assert whole["num_queries"] == exact["num_queries"]
    top10 = truncated_retrieval(query, query_labels, index, k=10, query_ids=query_ids, ks=(1, 5))
    assert top10["R@1"] == whole["R@1"] and top10["mAP@10"] < exact["mAP"]  # truncated: a lower bound


def test_bad_index_input_says_what_is_wrong():
    gallery, labels, ids = _data()
    with pytest.raises(ValueError, match="trains on its first chunk"):
        GalleryIndex(16, kind="ivf", nlist=64, device="cpu").add(gallery[:10], labels[:10], ids[:10])
    index = GalleryIndex(16, device="cpu")
    index.add(gallery, labels, ids)
    with pytest.raises(ValueError, match="needs a search of at least k=10"):
        truncated_retrieval(gallery, labels, index, k=5, ks=(1, 10))
    with pytest.raises(ValueError, match="needs at least 64 training rows"):
        GalleryIndex(16, kind="ivf", nlist=64, device="cpu").train(gallery[:10])
    with pytest.raises(ValueError, match="kind must be"):
        GalleryIndex(16, kind="hnsw")
