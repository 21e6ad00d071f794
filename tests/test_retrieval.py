"""The retrieval engine against sklearn and a brute-force numpy reference.

Most property tests use *grid embeddings*: every entry is ±1/8 in d = 64, times a power of two.
Their norms are powers of two, so normalising is exact, every cosine is a multiple of 1/32 and
exact in float16/bfloat16/float32/float64 — scores are bit-identical in the engine and the
reference, and ties are everywhere, so the tie rule is tested on every example.
"""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score

from faceunlearn.metrics import cmc_recall, nearest_neighbours, retrieval_metrics, retrieval_metrics_extended
from faceunlearn.metrics.retrieval import _count_at_or_above

GRID_DIM = 64


def grid_embeddings(rng: np.random.Generator, n: int, duplicate_fraction: float = 0.0) -> np.ndarray:
    x = rng.choice([-1.0, 1.0], size=(n, GRID_DIM)) / 8.0
    duplicates = rng.random(n) < duplicate_fraction
    if n > 1 and duplicates.any():  # some rows are exact copies of other rows (duplicated images)
        x[duplicates] = x[rng.integers(0, n, duplicates.sum())]
    return x


def reference(query, query_labels, gallery, gallery_labels, query_ids=None, gallery_ids=None, ks=(1, 5, 10)):
    """Per query: sklearn AP and the CMC rank (1 + other people scoring at least as high), on float64 cosines, own image removed."""
    q = query / np.linalg.norm(query, axis=1, keepdims=True)
    g = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    scores = q @ g.T
    aps, best_ranks, without = [], [], 0
    for i in range(len(q)):
        keep = np.ones(len(g), bool) if query_ids is None else gallery_ids != query_ids[i]
        s, relevant = scores[i][keep], gallery_labels[keep] == query_labels[i]
        if not relevant.any():
            without += 1
            continue
        aps.append(average_precision_score(relevant, s))
        best_ranks.append(1 + int(((s >= s[relevant].max()) & ~relevant).sum()))  # ties with other people count against
    n = len(aps)
    out = {"mAP": float(np.mean(aps)) if n else math.nan}
    out.update({f"R@{k}": float(np.mean(np.array(best_ranks) <= k)) if n else math.nan for k in ks})
    out.update(num_queries=n, num_queries_without_relevant=without)
    return out


def assert_same(got: dict, want: dict, tol: float = 1e-12):
    assert set(got) == set(want)
    for key, value in want.items():
        if key.startswith("num_"):
            assert got[key] == value and isinstance(got[key], int), key
        else:
            assert isinstance(got[key], float), key
            assert got[key] == pytest.approx(value, abs=tol, nan_ok=True), (key, got[key], value)


@st.composite
def benchmarks(draw):
    """A random benchmark: sizes, labels (singletons, absent identities), ids, dtype, duplicates."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    num_gallery = draw(st.integers(1, 120))
    num_identities = draw(st.integers(1, 25))
    gallery_labels = rng.integers(0, num_identities, num_gallery)
    gallery = grid_embeddings(rng, num_gallery, draw(st.sampled_from([0.0, 0.3])))
    self_query = draw(st.booleans())  # queries are gallery images (ids shared) or separate images
    if self_query:
        pick = rng.choice(num_gallery, draw(st.integers(1, num_gallery)), replace=False)
        query, query_labels = gallery[pick], gallery_labels[pick]
        gallery_ids = rng.permutation(10 * num_gallery)[:num_gallery]
        query_ids = gallery_ids[pick]
    else:
        num_queries = draw(st.integers(1, 40))
        query = grid_embeddings(rng, num_queries)
        query_labels = rng.integers(0, num_identities + 3, num_queries)  # some identities absent
        query_ids = gallery_ids = None
    scale = lambda n: 2.0 ** rng.integers(-3, 4, (n, 1))  # noqa: E731  (unnormalised rows)
    return dict(
        query=query * scale(len(query)), query_labels=query_labels,
        gallery=gallery * scale(len(gallery)), gallery_labels=gallery_labels,
        query_ids=query_ids, gallery_ids=gallery_ids,
        dtype=draw(st.sampled_from([torch.float32, torch.float16, torch.bfloat16, torch.float64])),
        ks=tuple(draw(st.lists(st.integers(1, 130), min_size=1, max_size=3, unique=True))),
        chunk_size=draw(st.one_of(st.none(), st.integers(1, 50))),
    )


def run_engine(case, **extra):
    tensor = lambda x, dtype=None: None if x is None else torch.as_tensor(x, dtype=dtype)  # noqa: E731
    return retrieval_metrics(
        tensor(case["query"], case["dtype"]), tensor(case["query_labels"]),
        tensor(case["gallery"], case["dtype"]), tensor(case["gallery_labels"]),
        tensor(case["query_ids"]), tensor(case["gallery_ids"]), ks=case["ks"], chunk_size=case["chunk_size"], **extra,
    )


@settings(max_examples=150, deadline=None)
@given(case=benchmarks())
def test_matches_sklearn_and_brute_force(case):
    want = reference(case["query"], case["query_labels"], case["gallery"], case["gallery_labels"],
                     case["query_ids"], case["gallery_ids"], case["ks"])
    assert_same(run_engine(case), want)


@settings(max_examples=40, deadline=None)
@given(case=benchmarks(), num_distractors=st.integers(1, 60), seed=st.integers(0, 2**31))
def test_distractors_equal_a_gallery_extension(case, num_distractors, seed):
    distractors = grid_embeddings(np.random.default_rng(seed), num_distractors)
    extended_gallery = dict(case, gallery=np.concatenate([case["gallery"], distractors]),
                            gallery_labels=np.concatenate([case["gallery_labels"], np.full(num_distractors, -1)]))
    if case["gallery_ids"] is not None:
        extended_gallery["gallery_ids"] = np.concatenate([case["gallery_ids"], -1 - np.arange(num_distractors)])
    want = reference(extended_gallery["query"], extended_gallery["query_labels"], extended_gallery["gallery"],
                     extended_gallery["gallery_labels"], extended_gallery["query_ids"], extended_gallery["gallery_ids"],
                     case["ks"])
    got = run_engine(case, distractors=torch.as_tensor(distractors, dtype=case["dtype"]))
    assert_same(got, want)
    tensor = lambda x: None if x is None else torch.as_tensor(x)  # noqa: E731
    base, extended = retrieval_metrics_extended(
        tensor(case["query"]), tensor(case["query_labels"]), tensor(case["gallery"]), tensor(case["gallery_labels"]),
        torch.as_tensor(distractors), tensor(case["query_ids"]), tensor(case["gallery_ids"]), ks=case["ks"])
    assert_same(extended, want)
    assert_same(base, reference(case["query"], case["query_labels"], case["gallery"], case["gallery_labels"],
                                case["query_ids"], case["gallery_ids"], case["ks"]))


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**31), rows=st.integers(1, 6), num_thresholds=st.integers(1, 9),
       num_scores=st.integers(1, 300), levels=st.integers(2, 40), pad=st.integers(0, 3))
def test_count_at_or_above_dense_and_sparse_paths(seed, rows, num_thresholds, num_scores, levels, pad):
    rng = np.random.default_rng(seed)
    scores = torch.as_tensor(rng.integers(0, levels, (rows, num_scores)) / levels, dtype=torch.float32)
    thresholds = torch.as_tensor(np.sort(rng.integers(0, levels, (rows, num_thresholds)) / levels, 1), dtype=torch.float32)
    thresholds = torch.cat([thresholds, torch.full((rows, pad), float("inf"))], 1)
    want = (scores[:, None, :] >= thresholds[:, :, None]).sum(-1)
    got = torch.zeros_like(want)
    _count_at_or_above(thresholds, scores, got)
    assert torch.equal(got, want)


def test_continuous_embeddings_match_sklearn():
    """Continuous float32 embeddings (not grid): equal to sklearn up to float32 score rounding.

    No two float64 scores tie, but the closest relevant/irrelevant pair of one query is only 3.8e-7
    apart, while the engine's float32 scores are off by up to 1.8e-7 here and by more on another BLAS
    or CPU: such a near-tie can swap, which moves mAP by ~1e-5 (perturbing every score by up to 1e-5
    moved it by < 9e-5). mAP is therefore compared to 1e-4; R@k (multiples of 1/150, whose nearest
    decisions are >= 5e-4 apart in score) still has to match exactly.
    """
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(40, 128))
    gallery_labels = rng.integers(0, 40, 600)
    gallery = (centres[gallery_labels] + 2.2 * rng.normal(size=(600, 128))).astype(np.float32)
    query_labels = rng.integers(0, 40, 150)
    query = (centres[query_labels] + 2.2 * rng.normal(size=(150, 128))).astype(np.float32)
    want = reference(query.astype(np.float64), query_labels, gallery.astype(np.float64), gallery_labels)
    got = retrieval_metrics(torch.as_tensor(query), torch.as_tensor(query_labels),
                            torch.as_tensor(gallery), torch.as_tensor(gallery_labels), chunk_size=17)
    assert 0.2 < want["mAP"] < 0.95  # a mid-range benchmark, not a degenerate one (0.467)
    assert got["mAP"] == pytest.approx(want["mAP"], abs=1e-4)
    assert_same({**got, "mAP": want["mAP"]}, want, tol=1e-9)


def test_positives_ranked_beyond_5000():
    """6,000 gallery items outrank every relevant one; mAP still counts their exact ranks."""
    rng = np.random.default_rng(1)
    query = np.zeros((2, 32))
    query[:, 0] = 1.0
    near = np.concatenate([np.full((6000, 1), 0.9), 0.02 * rng.normal(size=(6000, 31))], 1)  # cos ≈ 0.999
    relevant = np.concatenate([np.full((7, 1), 0.3), rng.normal(size=(7, 31))], 1)  # cos ≈ 0.05
    gallery = np.concatenate([near, relevant])
    gallery_labels = np.array([1] * 6000 + [0] * 7)
    query_labels = np.array([0, 0])
    want = reference(query, query_labels, gallery, gallery_labels)
    got = retrieval_metrics(torch.as_tensor(query), torch.as_tensor(query_labels),
                            torch.as_tensor(gallery, dtype=torch.float32), torch.as_tensor(gallery_labels))
    assert want["mAP"] < 7 / 6001 + 1e-9 and want["R@10"] == 0.0
    assert_same(got, want, tol=1e-9)


def test_hand_made_ranking_and_tie_rule():
    # gallery at angles 0, 10, 20, 30 deg; query at 0 deg -> ranking is gallery order
    angles = np.deg2rad([0, 10, 20, 30])
    gallery = torch.tensor(np.stack([np.cos(angles), np.sin(angles)], 1), dtype=torch.float32)
    query = torch.tensor([[1.0, 0.0]])
    gallery_labels = torch.tensor([0, 1, 0, 1])
    out = retrieval_metrics(query, torch.tensor([1]), gallery, gallery_labels, ks=(1, 2, 3))
    assert out["mAP"] == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert (out["R@1"], out["R@2"], out["R@3"]) == (0.0, 1.0, 1.0)
    # the query is gallery image 5: removed from its own ranking, which becomes 1, 2, 3
    out = retrieval_metrics(query, torch.tensor([0]), gallery, gallery_labels, torch.tensor([5]),
                            torch.tensor([5, 6, 7, 8]), ks=(1, 2))
    assert out["mAP"] == pytest.approx(1 / 2) and (out["R@1"], out["R@2"]) == (0.0, 1.0)
    # a relevant item tied with an irrelevant one ranks after it: AP = 1/2, and no hit at k = 1
    tied = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    out = retrieval_metrics(query, torch.tensor([0]), tied, torch.tensor([0, 1]), ks=(1, 2))
    assert out["mAP"] == 0.5 and (out["R@1"], out["R@2"]) == (0.0, 1.0)
    # two exact duplicates of the query's own person at the top score: a hit at rank 1, AP 1 (they never
    # count against each other); the other person below them changes nothing
    duplicates = torch.tensor([[0.9, 0.1, 0.0], [0.9, 0.1, 0.0], [0.0, 1.0, 0.0]])
    out = retrieval_metrics(torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([0]), duplicates, torch.tensor([0, 0, 1]), ks=(1,))
    assert (out["mAP"], out["R@1"]) == (1.0, 1.0)
    assert cmc_recall(torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([0]), duplicates, torch.tensor([0, 0, 1]), ks=(1,))["R@1"] == 1.0
    # ... but another person's photo tied with them still counts against the query
    tied_other = torch.cat([duplicates, duplicates[:1]])
    out = retrieval_metrics(torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([0]), tied_other, torch.tensor([0, 0, 1, 2]), ks=(1, 2))
    assert (out["R@1"], out["R@2"]) == (0.0, 1.0) and out["mAP"] == pytest.approx(2 / 3)


def test_queries_without_relevant_are_excluded_and_counted():
    query, gallery = torch.randn(6, 8), torch.randn(20, 8)
    gallery_labels = torch.arange(20) % 4
    query_labels = torch.tensor([0, 1, 99, 2, 98, 3])
    out = retrieval_metrics(query, query_labels, gallery, gallery_labels)
    assert (out["num_queries"], out["num_queries_without_relevant"]) == (4, 2)
    keep = query_labels < 4
    assert_same(retrieval_metrics(query[keep], query_labels[keep], gallery, gallery_labels),
                dict(out, num_queries_without_relevant=0))
    none = retrieval_metrics(query, query_labels + 1000, gallery, gallery_labels)
    assert math.isnan(none["mAP"]) and math.isnan(none["R@1"]) and none["num_queries"] == 0
    # an identity with one image, queried with that image: nothing left to retrieve
    single = retrieval_metrics(gallery[:1], torch.tensor([7]), gallery, torch.tensor([7] + [0] * 19),
                               torch.tensor([0]), torch.arange(20))
    assert (single["num_queries"], single["num_queries_without_relevant"]) == (0, 1)


def test_memory_budget_sets_chunks_without_changing_results():
    rng = np.random.default_rng(3)
    gallery, query = torch.as_tensor(grid_embeddings(rng, 500)), torch.as_tensor(grid_embeddings(rng, 90))
    gallery_labels, query_labels = torch.as_tensor(rng.integers(0, 30, 500)), torch.as_tensor(rng.integers(0, 30, 90))
    full = retrieval_metrics(query, query_labels, gallery, gallery_labels)
    for budget in (1, 25_000, 10**9):  # 1 byte -> one query per chunk
        assert_same(retrieval_metrics(query, query_labels, gallery, gallery_labels, memory_budget=budget), full)


def test_faiss_neighbours_and_recall_agree_with_engine():
    rng = np.random.default_rng(4)
    centres = rng.normal(size=(30, 64))
    labels = rng.integers(0, 30, 400)
    gallery = torch.as_tensor(centres[labels] + rng.normal(size=(400, 64)), dtype=torch.float32)
    ids = torch.as_tensor(rng.permutation(1000)[:400])
    labels = torch.as_tensor(labels)
    query, query_labels, query_ids = gallery[:120] * 3.0, labels[:120], ids[:120]  # self-queries, unnormalised
    scores, indices = nearest_neighbours(query, gallery, 12, query_ids, ids)
    cosines = torch.nn.functional.normalize(query, dim=1) @ torch.nn.functional.normalize(gallery, dim=1).T
    cosines[torch.arange(120), torch.arange(120)] = float("-inf")  # own image
    want_scores, want_indices = cosines.topk(12, dim=1)
    assert torch.equal(indices, want_indices) and torch.allclose(scores, want_scores, atol=1e-5)
    engine = retrieval_metrics(query, query_labels, gallery, labels, query_ids, ids, ks=(1, 5, 10))
    searched = cmc_recall(query, query_labels, gallery, labels, query_ids, ids, ks=(1, 5, 10))
    assert searched == {key: engine[key] for key in searched}
    # fewer eligible gallery items than k: padded with -inf / -1
    scores, indices = nearest_neighbours(query[:2], gallery[:3], 5)
    assert indices[:, 3:].eq(-1).all() and torch.isinf(scores[:, 3:]).all()


def test_errors_name_the_problem():
    query, gallery = torch.randn(4, 8), torch.randn(6, 8)
    query_labels, gallery_labels = torch.zeros(4, dtype=torch.long), torch.zeros(6, dtype=torch.long)
    cases = [
        (dict(query_labels=query_labels[:3]), "length mismatch: query_labels"),
        (dict(gallery_labels=gallery_labels[:5]), "length mismatch: gallery_labels"),
        (dict(gallery=torch.randn(6, 7)), "embedding dim mismatch"),
        (dict(query=query[:0], query_labels=query_labels[:0]), "query is empty"),
        (dict(gallery=gallery.index_put((torch.tensor(2), torch.tensor(3)), torch.tensor(float("nan")))), "gallery contains non-finite"),
        (dict(query_ids=torch.arange(4)), "must be given together"),
        (dict(query_ids=torch.arange(4), gallery_ids=torch.arange(5)), "length mismatch: gallery_ids"),
        (dict(query_ids=torch.arange(4), gallery_ids=torch.tensor([0, 1, 2, 2, 3, 4])), "gallery_ids must be unique"),
        (dict(query=query[0]), "2-D tensor"),
        (dict(query_labels=query_labels.float()), "integer identity labels"),
        (dict(query=query.long()), "floating-point"),
        (dict(ks=(0, 5)), "ks must be positive"),
        (dict(distractors=torch.randn(3, 5)), "distractors has d=5"),
    ]
    base = dict(query=query, query_labels=query_labels, gallery=gallery, gallery_labels=gallery_labels)
    for change, message in cases:
        with pytest.raises(ValueError, match=message):
            retrieval_metrics(**dict(base, **change))


@pytest.mark.parametrize("seed", range(4))
def test_both_faiss_paths_follow_the_tie_rule_on_duplicated_rows(seed):
    """An oracle test: galleries full of exact duplicates (a person's repeated photos, and some rows copied
    to other people), every R@k of the FAISS search paths against the brute-force reference."""
    from faceunlearn.metrics.index_search import GalleryIndex, truncated_retrieval

    rng = np.random.default_rng(seed)
    gallery = grid_embeddings(rng, 300, duplicate_fraction=0.5)
    labels = rng.integers(0, 12, 300)
    copies = rng.integers(0, 300, 60)  # whole blocks of one person's duplicates: ties that outrun a short list
    gallery[:60], labels[:60] = gallery[copies[0]], labels[copies[0]]
    ids = rng.permutation(10_000)[:300]
    query, query_labels, query_ids = gallery[::3], labels[::3], ids[::3]
    want = reference(query, query_labels, gallery, labels, query_ids, ids, ks=(1, 5, 10))
    assert 0.0 < want["R@1"] < 1.0
    tensors = [torch.as_tensor(x) for x in (query, query_labels, gallery, labels, query_ids, ids)]
    got = cmc_recall(*[t.float() if t.is_floating_point() else t for t in tensors], ks=(1, 5, 10))
    assert {key: got[key] for key in ("R@1", "R@5", "R@10")} == pytest.approx({key: want[key] for key in ("R@1", "R@5", "R@10")})
    index = GalleryIndex(GRID_DIM, device="cpu")
    index.add(torch.as_tensor(gallery, dtype=torch.float32), torch.as_tensor(labels), torch.as_tensor(ids))
    searched = truncated_retrieval(torch.as_tensor(query, dtype=torch.float32), torch.as_tensor(query_labels), index, k=10,
                                   query_ids=torch.as_tensor(query_ids), ks=(1, 5, 10), chunk=17)
    assert {key: searched[key] for key in ("R@1", "R@5", "R@10")} == pytest.approx({key: want[key] for key in ("R@1", "R@5", "R@10")})
