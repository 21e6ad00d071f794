"""Chance levels: the exact expected AP / R@k of a random ranking, against every arrangement (sklearn AP),
and a benchmark's chance level from its own composition (own image removed, distractors, no relevant)."""

import itertools
from math import comb

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from faceunlearn.metrics import chance_retrieval
from faceunlearn.metrics.chance import expected_average_precision, expected_recall_at_k


@pytest.mark.parametrize("items", range(1, 8))
def test_expectations_equal_the_mean_over_every_arrangement(items):
    for relevant in range(1, items + 1):
        aps, hits = [], {k: [] for k in (1, 2, 5)}
        for positions in itertools.combinations(range(items), relevant):  # every arrangement equally likely
            truth = np.zeros(items)
            truth[list(positions)] = 1
            aps.append(average_precision_score(truth, -np.arange(items)))
            for k in hits:
                hits[k].append(float(truth[:k].any()))
        r, n = torch.tensor([relevant]), torch.tensor([items])
        assert float(expected_average_precision(r, n)) == pytest.approx(np.mean(aps), abs=1e-12)
        for k, values in hits.items():
            assert float(expected_recall_at_k(r, n, k)) == pytest.approx(np.mean(values), abs=1e-12)


def _brute_force(query_labels, gallery_labels, query_ids, gallery_ids, distractors, ks):
    aps, hits = [], {k: [] for k in ks}
    for label, image in zip(query_labels.tolist(), query_ids.tolist()):
        keep = gallery_ids != image
        relevant = int((gallery_labels[keep] == label).sum())
        items = int(keep.sum()) + distractors
        if relevant == 0:
            continue
        aps.append(float(expected_average_precision(torch.tensor([relevant]), torch.tensor([items]))))
        for k in ks:  # 1 − P(no relevant item in the top k), by counting arrangements
            hits[k].append(1 - comb(items - relevant, k) / comb(items, k))
    return {"mAP": np.mean(aps), **{f"R@{k}": np.mean(v) for k, v in hits.items()}}


def test_a_benchmarks_chance_level_follows_its_composition():
    generator = torch.Generator().manual_seed(0)
    gallery_labels = torch.randint(0, 6, (40,), generator=generator)
    gallery_ids = torch.randperm(100, generator=generator)[:40]
    # half the queries are gallery images (own image removed), half are not; label 9 has no relevant item
    query_ids = torch.cat([gallery_ids[:10], torch.arange(200, 210), torch.tensor([300])])
    query_labels = torch.cat([gallery_labels[:10], torch.randint(0, 6, (10,), generator=generator), torch.tensor([9])])
    for distractors in (0, 25):
        got = chance_retrieval(query_labels, gallery_labels, query_ids, gallery_ids, ks=(1, 5), num_distractors=distractors)
        want = _brute_force(query_labels, gallery_labels, query_ids, gallery_ids, distractors, (1, 5))
        assert got == pytest.approx(want, abs=1e-12)
    # the paper's case: 10 forget identities, 10 images each, gallery = all of them → mAP ≈ 10 %
    labels = torch.arange(10).repeat_interleave(10)
    ids = torch.arange(100)
    paper = chance_retrieval(labels, labels, ids, ids)
    assert 0.10 < paper["mAP"] < 0.13 and paper["R@1"] == pytest.approx(9 / 99)


def test_no_relevant_item_anywhere_gives_nan():
    out = chance_retrieval(torch.tensor([7, 8]), torch.tensor([1, 2, 3]), ks=(1,))
    assert np.isnan(out["mAP"]) and np.isnan(out["R@1"])
    out = chance_retrieval(torch.tensor([1]), torch.tensor([], dtype=torch.long), ks=(1,))
    assert np.isnan(out["mAP"])


def test_random_embeddings_score_near_the_chance_level():
    """The engine's mAP of random embeddings averages out to the exact expectation."""
    from faceunlearn.metrics import retrieval_metrics

    labels = torch.arange(8).repeat_interleave(6)
    ids = torch.arange(48)
    generator = torch.Generator().manual_seed(1)
    maps = []
    for _ in range(200):
        embeddings = torch.randn(48, 16, generator=generator)
        maps.append(retrieval_metrics(embeddings, labels, embeddings, labels, ids, ids)["mAP"])
    chance = chance_retrieval(labels, labels, ids, ids)["mAP"]
    assert np.mean(maps) == pytest.approx(chance, abs=0.01)  # 200 draws: the std of the mean is ≈ 0.002
