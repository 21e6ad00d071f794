"""Tests for faceunlearn.metrics against brute-force numpy / sklearn references."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import average_precision_score

import faceunlearn.metrics.centroids as centroids_mod
from faceunlearn.metrics import centroid_accuracy, cluster_compactness, head_accuracy, retrieval_metrics


def _unit(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _data(seed, Q=40, G=150, d=16, n_ids=12, self_query=False):
    """Random gallery; if self_query, the queries are a subset of the gallery (shared image ids)."""
    g = torch.Generator().manual_seed(seed)
    gal = torch.randn(G, d, generator=g)
    gl = torch.randint(0, n_ids, (G,), generator=g)
    gids = torch.randperm(10 * G, generator=g)[:G]
    if self_query:
        pick = torch.randperm(G, generator=g)[:Q]
        return gal[pick].clone(), gl[pick].clone(), gal, gl, gids[pick].clone(), gids
    qry = torch.randn(Q, d, generator=g)
    ql = torch.randint(0, n_ids + 3, (Q,), generator=g)  # labels >= n_ids have no relevant item
    return qry, ql, gal, gl, None, None


def _reference(q, ql, g, gl, qi=None, gi=None, ks=(1, 5, 10)):
    """Per-query loop: sklearn AP and brute-force CMC on the ranking without the own image."""
    S = _unit(q.numpy()) @ _unit(g.numpy()).T
    aps, hits, empty = [], {k: 0 for k in ks}, 0
    for i in range(len(q)):
        keep = np.ones(len(g), bool) if qi is None else gi.numpy() != qi[i].item()
        s, rel = S[i][keep], gl.numpy()[keep] == ql[i].item()
        if not rel.any():
            empty += 1
            continue
        aps.append(average_precision_score(rel, s))
        order = np.argsort(-s, kind="stable")
        for k in ks:
            hits[k] += bool(rel[order[:k]].any())
    n = len(aps)
    out = {"mAP": float(np.mean(aps)) if n else math.nan, "num_queries": n, "num_queries_without_relevant": empty}
    out.update({f"R@{k}": hits[k] / n if n else math.nan for k in ks})
    return out


def _check(got, ref, tol=1e-5):
    assert set(got) == set(ref)
    for key, v in ref.items():
        if isinstance(v, int):
            assert got[key] == v and isinstance(got[key], int), key
        else:
            assert isinstance(got[key], float), key
            assert got[key] == pytest.approx(v, abs=tol, nan_ok=True), key


# ---------------------------------------------------------------- retrieval
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("self_query", [False, True])
def test_map_and_recall_match_reference(seed, self_query):
    q, ql, g, gl, qi, gi = _data(seed, self_query=self_query)
    _check(retrieval_metrics(q, ql, g, gl, qi, gi), _reference(q, ql, g, gl, qi, gi))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10**6), Q=st.integers(1, 30), G=st.integers(1, 60), n_ids=st.integers(1, 8),
       self_query=st.booleans(), chunk=st.integers(1, 40), ks=st.lists(st.integers(1, 70), min_size=1, max_size=3))
def test_retrieval_property(seed, Q, G, n_ids, self_query, chunk, ks):
    Q = min(Q, G) if self_query else Q
    q, ql, g, gl, qi, gi = _data(seed, Q=Q, G=G, d=8, n_ids=n_ids, self_query=self_query)
    ks = tuple(ks)
    _check(retrieval_metrics(q, ql, g, gl, qi, gi, ks=ks, chunk_size=chunk), _reference(q, ql, g, gl, qi, gi, ks))


def test_self_exclusion_changes_result():
    q, ql, g, gl, qi, gi = _data(0, self_query=True)
    with_ids = retrieval_metrics(q, ql, g, gl, qi, gi)
    without = retrieval_metrics(q, ql, g, gl)
    assert without["R@1"] == 1.0 and with_ids["R@1"] < 1.0  # without ids each query finds itself


def test_queries_without_relevant_are_excluded_and_counted():
    q, ql, g, gl, _, _ = _data(1)
    ql[:5] = 999
    out = retrieval_metrics(q, ql, g, gl)
    assert out["num_queries_without_relevant"] >= 5
    assert out["num_queries"] + out["num_queries_without_relevant"] == len(q)
    sub = retrieval_metrics(q[ql != 999], ql[ql != 999], g, gl)
    assert out["mAP"] == pytest.approx(sub["mAP"]) and out["R@5"] == pytest.approx(sub["R@5"])


def test_no_query_has_relevant_gives_nan():
    out = retrieval_metrics(torch.randn(3, 4), torch.tensor([7, 8, 9]), torch.randn(5, 4), torch.zeros(5, dtype=torch.long))
    assert math.isnan(out["mAP"]) and math.isnan(out["R@1"])
    assert out["num_queries"] == 0 and out["num_queries_without_relevant"] == 3


def test_row_scaling_and_chunking_do_not_change_result():
    q, ql, g, gl, qi, gi = _data(2, self_query=True)
    base = retrieval_metrics(q, ql, g, gl, qi, gi)
    scale_q = torch.rand(len(q), 1) * 100 + 0.01
    scale_g = torch.rand(len(g), 1) * 100 + 0.01
    _check(retrieval_metrics(q * scale_q, ql, g * scale_g, gl, qi, gi), base)
    for chunk in (1, 7, len(q) - 1, len(q), 10 * len(q)):
        _check(retrieval_metrics(q, ql, g, gl, qi, gi, chunk_size=chunk), base, tol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_close_to_float32(dtype):
    q, ql, g, gl, _, _ = _data(3, Q=60, G=400, d=64, n_ids=10)
    ref = retrieval_metrics(q, ql, g, gl)
    low = retrieval_metrics(q.to(dtype), ql, g.to(dtype), gl)
    assert low["mAP"] == pytest.approx(ref["mAP"], abs=0.02)
    assert low["num_queries"] == ref["num_queries"]


def test_known_ranking():
    # gallery along angles 0, 10, 20, 30 deg; query at 0 deg -> ranking is gallery order
    ang = np.deg2rad([0, 10, 20, 30])
    g = torch.tensor(np.stack([np.cos(ang), np.sin(ang)], 1), dtype=torch.float32)
    q = torch.tensor([[1.0, 0.0]])
    gl = torch.tensor([0, 1, 0, 1])
    out = retrieval_metrics(q, torch.tensor([1]), g, gl, ks=(1, 2, 3))
    assert out["mAP"] == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert (out["R@1"], out["R@2"], out["R@3"]) == (0.0, 1.0, 1.0)
    # the same query as gallery item 0 (ids given): item 0 is removed, ranking is 1, 2, 3
    out = retrieval_metrics(q, torch.tensor([0]), g, gl, torch.tensor([5]), torch.tensor([5, 6, 7, 8]), ks=(1, 2))
    assert out["mAP"] == pytest.approx(1 / 2) and (out["R@1"], out["R@2"]) == (0.0, 1.0)


def test_retrieval_errors():
    q, g = torch.randn(4, 8), torch.randn(6, 8)
    ql, gl = torch.zeros(4, dtype=torch.long), torch.zeros(6, dtype=torch.long)
    with pytest.raises(ValueError, match="length mismatch: query_labels"):
        retrieval_metrics(q, ql[:3], g, gl)
    with pytest.raises(ValueError, match="length mismatch: gallery_labels"):
        retrieval_metrics(q, ql, g, gl[:5])
    with pytest.raises(ValueError, match="embedding dim mismatch"):
        retrieval_metrics(q, ql, torch.randn(6, 7), gl)
    with pytest.raises(ValueError, match="query is empty"):
        retrieval_metrics(q[:0], ql[:0], g, gl)
    with pytest.raises(ValueError, match="gallery is empty"):
        retrieval_metrics(q, ql, g[:0], gl[:0])
    bad = g.clone()
    bad[2, 3] = float("nan")
    with pytest.raises(ValueError, match="gallery contains non-finite"):
        retrieval_metrics(q, ql, bad, gl)
    bad = q.clone()
    bad[0, 0] = float("inf")
    with pytest.raises(ValueError, match="query contains non-finite"):
        retrieval_metrics(bad, ql, g, gl)
    with pytest.raises(ValueError, match="must be given together"):
        retrieval_metrics(q, ql, g, gl, query_ids=torch.arange(4))
    with pytest.raises(ValueError, match="must be given together"):
        retrieval_metrics(q, ql, g, gl, gallery_ids=torch.arange(6))
    with pytest.raises(ValueError, match="length mismatch: gallery_ids"):
        retrieval_metrics(q, ql, g, gl, torch.arange(4), torch.arange(5))
    with pytest.raises(ValueError, match="2-D tensor"):
        retrieval_metrics(q[0], ql, g, gl)


# ---------------------------------------------------------------- compactness
def _compactness_ref(z, y):
    z, y = _unit(z), np.asarray(y)
    per_id = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        if len(idx) < 2:
            continue
        sims = [z[i] @ z[j] for i in idx for j in idx if i != j]
        per_id.append(np.mean(sims))
    return float(np.mean(per_id)) if per_id else math.nan


@pytest.mark.parametrize("seed", range(3))
def test_compactness_matches_pairwise(seed):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(80, 12, generator=g) + 0.7  # shared offset -> positive similarities
    y = torch.randint(0, 15, (80,), generator=g)
    assert cluster_compactness(z, y) == pytest.approx(_compactness_ref(z.numpy(), y.numpy()), abs=1e-6)


def test_compactness_identical_singletons_and_nan():
    z = torch.randn(1, 8).repeat(6, 1) * torch.arange(1, 7).float()[:, None]  # same direction, different norms
    assert cluster_compactness(z, torch.tensor([0, 0, 0, 1, 1, 1])) == pytest.approx(1.0, abs=1e-6)
    # singletons are ignored: adding identities with one (random) image changes nothing
    y = torch.tensor([0, 0, 0, 1, 1, 1, 2, 3])
    assert cluster_compactness(torch.cat([z, torch.randn(2, 8)]), y) == pytest.approx(1.0, abs=1e-6)
    # two antipodal images -> -1
    assert cluster_compactness(torch.tensor([[1.0, 0.0], [-2.0, 0.0]]), torch.tensor([4, 4])) == pytest.approx(-1.0)
    assert math.isnan(cluster_compactness(torch.randn(3, 4), torch.tensor([0, 1, 2])))
    half = cluster_compactness(z.half(), torch.tensor([0, 0, 0, 1, 1, 1]))
    assert half == pytest.approx(1.0, abs=1e-3)


def test_compactness_errors():
    with pytest.raises(ValueError, match="length mismatch: labels"):
        cluster_compactness(torch.randn(4, 3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="embeddings is empty"):
        cluster_compactness(torch.randn(0, 3), torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="non-finite"):
        cluster_compactness(torch.tensor([[float("nan"), 1.0]]), torch.zeros(1, dtype=torch.long))


# ---------------------------------------------------------------- centroids
def _centroid_ref(z, y):
    z, y = _unit(z), np.asarray(y)
    classes = np.unique(y)
    sums = np.stack([z[y == c].sum(0) for c in classes])
    correct = total = 0
    for i in range(len(z)):
        ci = int(np.searchsorted(classes, y[i]))
        if (y == y[i]).sum() < 2:
            continue
        cents = sums.copy()
        cents[ci] -= z[i]
        cents /= np.maximum(np.linalg.norm(cents, axis=1, keepdims=True), 1e-12)
        correct += int(np.argmax(cents @ z[i]) == ci)
        total += 1
    return correct / total if total else math.nan


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("chunk", [3, 4096])
def test_centroid_accuracy_matches_reference(seed, chunk, monkeypatch):
    monkeypatch.setattr(centroids_mod, "_CHUNK", chunk)
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(10, 16, generator=g)
    y = torch.randint(0, 10, (70,), generator=g)
    z = means[y] + 1.5 * torch.randn(70, 16, generator=g)
    acc = centroid_accuracy(z, y + 100)  # arbitrary (non-contiguous) label values
    assert acc == pytest.approx(_centroid_ref(z.numpy(), y.numpy()))
    assert 0.0 < acc < 1.0


def test_centroid_accuracy_hand_made():
    # class 0 around +x, class 1 around +y, class 2 a single image (skipped, but its centroid competes)
    z = torch.tensor([[1.0, 0.1], [1.0, -0.1], [0.1, 1.0], [-0.1, 1.0], [0.2, 1.0], [1.0, 1.0]])
    y = torch.tensor([0, 0, 1, 1, 1, 2])
    # sample 0's own leave-one-out centroid is [1,-0.1]/|.| (cos ~0.98) but class 2's [1,1] gives cos ~0.77
    assert centroid_accuracy(z, y) == 1.0
    # a class-0 sample lying near the class-2 direction is misclassified; all else stays right
    z2 = torch.cat([z, torch.tensor([[1.0, 0.95]])])
    y2 = torch.cat([y, torch.tensor([0])])
    assert centroid_accuracy(z2, y2) == pytest.approx(5 / 6)
    # leave-one-out matters: with the sample inside its own centroid sample 0 would be right (0.707 > 0.6)
    z3 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    assert centroid_accuracy(z3, torch.tensor([0, 0, 1])) == 0.0
    assert math.isnan(centroid_accuracy(torch.randn(3, 4), torch.tensor([0, 1, 2])))


def _head_ref(z, y, w):
    return float(np.mean(np.argmax(_unit(z) @ _unit(w).T, axis=1) == np.asarray(y)))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("chunk", [5, 4096])
def test_head_accuracy_matches_reference(seed, chunk, monkeypatch):
    monkeypatch.setattr(centroids_mod, "_CHUNK", chunk)
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(20, 16, generator=g) * (torch.rand(20, 1, generator=g) * 5 + 0.1)  # unnormalised rows
    y = torch.randint(0, 20, (60,), generator=g)
    z = w[y] / w[y].norm(dim=1, keepdim=True) + 0.3 * torch.randn(60, 16, generator=g)
    acc = head_accuracy(z, y, w)
    assert acc == pytest.approx(_head_ref(z.numpy(), y.numpy(), w.numpy()))
    assert head_accuracy(z.bfloat16(), y, w.bfloat16()) == pytest.approx(acc, abs=0.05)


def test_head_accuracy_hand_made_and_errors():
    w = torch.tensor([[1.0, 0.0], [0.0, 3.0], [-1.0, 0.0]])
    z = torch.tensor([[2.0, 0.1], [0.1, 0.5], [-1.0, 0.2], [1.0, 1.0]])
    # preds: 0, 1, 2, tie between 0 and 1 -> first index 0
    assert head_accuracy(z, torch.tensor([0, 1, 2, 0]), w) == 1.0
    assert head_accuracy(z, torch.tensor([0, 1, 2, 1]), w) == 0.75
    with pytest.raises(ValueError, match=r"labels must be class indices in \[0, 3\)"):
        head_accuracy(z, torch.tensor([0, 1, 3, 0]), w)
    with pytest.raises(ValueError, match="embedding dim mismatch"):
        head_accuracy(z, torch.tensor([0, 1, 2, 0]), torch.randn(3, 5))
    with pytest.raises(ValueError, match="length mismatch: labels"):
        head_accuracy(z, torch.tensor([0, 1]), w)
    with pytest.raises(ValueError, match="length mismatch: labels"):
        centroid_accuracy(z, torch.tensor([0, 1]))
