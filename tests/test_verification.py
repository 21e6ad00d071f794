"""1:1 verification: TAR at FAR equals reading sklearn's ROC curve (ties, tiny and empty inputs), and
the radix selection it rests on equals a sort; chunking changes nothing."""

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_curve

from faceunlearn.metrics import tar_at_far
from faceunlearn.metrics.verification import kth_largest, roc_curve_points, threshold_at_far


def _sklearn_tar(genuine, impostor, far):
    truth = np.r_[np.ones(len(genuine)), np.zeros(len(impostor))]
    fpr, tpr, _ = roc_curve(truth, np.r_[genuine, impostor], drop_intermediate=False)
    return tpr[fpr <= far].max()


@pytest.mark.parametrize("decimals", [None, 1, 0])  # None: continuous scores; 1, 0: many ties
def test_tar_at_far_equals_sklearns_roc_curve(decimals):
    rng = np.random.default_rng(decimals or 7)
    for trial in range(24):
        genuine = rng.normal(1.0, 1.0, size=int(rng.integers(1, 50)))
        impostor = rng.normal(0.0, 1.0, size=int(rng.integers(1, 300)))
        if decimals is not None:
            genuine, impostor = np.round(genuine, decimals), np.round(impostor, decimals)
        fars = (0.0, 1e-4, 1e-3, 1e-2, 1e-1, 1 / len(impostor), 0.5, 1.0)
        chunk = 13 if trial % 2 else 1 << 20  # radix selection in small chunks, or one sort
        got = tar_at_far(torch.tensor(genuine, dtype=torch.float32), torch.tensor(impostor, dtype=torch.float32), fars, chunk=chunk)
        for far in fars:  # float32 inputs: sklearn reads the same float32 values
            assert got[far] == _sklearn_tar(genuine.astype(np.float32), impostor.astype(np.float32), far), far


def test_kth_largest_is_a_sort_with_negatives_zeros_and_ties():
    values = torch.tensor([0.0, -0.0, -1.5, 2.0, 2.0, -1e-300, 1e300, -3.0, 0.25])
    ordered = torch.sort(values.double(), descending=True).values
    for k in range(1, len(values) + 1):
        assert kth_largest(values, k, chunk=2) == float(ordered[k - 1])
    with pytest.raises(ValueError, match="k must be in"):
        kth_largest(values, 0)


def test_edge_cases():
    genuine, impostor = torch.tensor([0.9, 0.8]), torch.tensor([0.85, 0.1])
    assert tar_at_far(genuine, impostor, (0.0, 0.5, 1.0)) == {0.0: 0.5, 0.5: 1.0, 1.0: 1.0}
    assert threshold_at_far(impostor, 0.0) == pytest.approx(0.85) and threshold_at_far(impostor, 1.0) == float("-inf")
    with pytest.raises(ValueError, match="impostor_scores is empty"):
        tar_at_far(genuine, torch.tensor([]))
    with pytest.raises(ValueError, match="genuine_scores is empty"):
        tar_at_far(torch.tensor([]), impostor)
    with pytest.raises(ValueError, match="finite"):
        tar_at_far(genuine, torch.tensor([float("nan")]))
    with pytest.raises(ValueError, match="FAR must be in"):
        tar_at_far(genuine, impostor, (1.5,))
    fars, tars = roc_curve_points(genuine, impostor, num_points=5)
    assert fars[0] == pytest.approx(0.5) and fars[-1] == pytest.approx(1.0) and tars == sorted(tars)


def test_a_million_impostors_in_small_chunks_match_a_sort():
    generator = torch.Generator().manual_seed(0)
    impostor = torch.randn(1_000_000, generator=generator)
    genuine = torch.randn(5_000, generator=generator) + 3
    got = tar_at_far(genuine, impostor, (1e-4, 1e-2), chunk=1 << 17)
    ordered = torch.sort(impostor, descending=True).values
    for far in (1e-4, 1e-2):
        threshold = ordered[int(far * len(impostor))]  # the (m + 1)-th largest impostor score
        assert got[far] == float((genuine > threshold).double().mean())
