"""1:1 verification: TAR at FAR from genuine and impostor similarity scores, exact and chunked.

The ROC curve is drawn as ``sklearn.metrics.roc_curve`` draws it (every distinct score a threshold,
an item accepted when its score is ≥ the threshold, ties accepted together, plus the point (0, 0)).
TAR at FAR is the highest true-positive rate among the curve's points whose false-positive rate is
≤ FAR. With ``m`` the largest impostor count ``c`` with ``c / I ≤ FAR`` (I impostors), the lowest
admissible threshold lies just above the (m + 1)-th largest impostor score ``s``, so

    TAR@FAR = |{genuine scores > s}| / G          (= 1 when m ≥ I)

``s`` is found by an exact radix selection over the scores' order-preserving integer keys, 8 bits
per pass, in chunks: memory is one chunk, whatever the number of impostor scores (10⁸ scores are
400 MB as float32 input and nothing more); scores that fit in one chunk are simply sorted once. The operating threshold itself is returned by
``threshold_at_far`` (a deployed system's threshold, set on impostor pairs of people it keeps).
"""
from __future__ import annotations

import struct
from typing import Sequence

import torch

#: scores per chunk of the counting passes
CHUNK = 1 << 22
FARS = (1e-4, 1e-3, 1e-2, 1e-1)


def _scores(values: torch.Tensor, name: str) -> torch.Tensor:
    values = torch.as_tensor(values).reshape(-1)
    if not values.is_floating_point():
        values = values.double()
    if values.numel() and not bool(torch.isfinite(values).all()):
        raise ValueError(f"{name} scores must be finite")
    return values


_SIGN = -(1 << 63)
_LOW_63 = (1 << 63) - 1


def _unsigned_keys(chunk: torch.Tensor) -> torch.Tensor:
    """int64 words whose *unsigned* order (byte by byte, top byte first) is the values' order.

    float64 bits → signed order key (negative values get their 63 low bits flipped; −0.0 is made
    +0.0 first, as comparisons treat them) → top bit flipped (signed → unsigned order)."""
    bits = (chunk.double() + 0.0).view(torch.int64)
    return torch.where(bits >= 0, bits, bits ^ _LOW_63) ^ _SIGN


def _value_of(unsigned_key: int) -> float:
    signed = unsigned_key - (1 << 63)  # undo the top-bit flip: the signed order key
    bits = signed if signed >= 0 else signed ^ _LOW_63
    return struct.unpack("<d", struct.pack("<q", bits))[0]


def kth_largest(values: torch.Tensor, k: int, chunk: int = CHUNK) -> float:
    """The k-th largest value (k ≥ 1, ties counted), by exact radix selection: 8 passes of 8 bits,
    each a chunked histogram of the next byte among the values that share the bytes fixed so far."""
    n = values.numel()
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}], got {k}")
    prefix, remaining = 0, k  # the answer's key bytes fixed so far (an unsigned 64-bit Python int)
    for shift in range(56, -1, -8):
        counts = torch.zeros(256, dtype=torch.int64)
        fixed = prefix - (1 << 64) if prefix >= 1 << 63 else prefix  # as a signed int64
        for start in range(0, n, chunk):
            keys = _unsigned_keys(values[start:start + chunk])
            if shift < 56:  # arithmetic shifts of both sides: equal iff the higher bytes are equal
                keys = keys[(keys >> (shift + 8)) == (fixed >> (shift + 8))]
            counts += torch.bincount(((keys >> shift) & 0xFF).cpu(), minlength=256)
        at_or_above = torch.cumsum(counts.flip(0), 0)  # [j]: values whose byte is ≥ 255 − j
        j = int(torch.searchsorted(at_or_above, torch.tensor(remaining)))
        remaining -= int(at_or_above[j - 1]) if j > 0 else 0
        prefix |= (255 - j) << shift
    return _value_of(prefix)


def _admissible_false_accepts(far: float, impostors: int) -> int:
    """The largest count c with c / impostors ≤ far, in the float arithmetic roc_curve uses."""
    c = int(far * impostors)
    while c + 1 <= impostors and (c + 1) / impostors <= far:
        c += 1
    while c > 0 and c / impostors > far:
        c -= 1
    return c


def _count_above(values: torch.Tensor, threshold: float, chunk: int = CHUNK) -> int:
    return sum(int((values[start:start + chunk].double() > threshold).sum()) for start in range(0, values.numel(), chunk))


def threshold_at_far(impostor_scores: torch.Tensor, far: float, chunk: int = CHUNK, _sorted=None) -> float:
    """The score a pair must *exceed* to be accepted at this FAR (−inf: every pair is accepted)."""
    impostor = _scores(impostor_scores, "impostor")
    if impostor.numel() == 0:
        raise ValueError("impostor_scores is empty: no false accept rate can be measured")
    if not 0 <= far <= 1:
        raise ValueError(f"FAR must be in [0, 1], got {far}")
    allowed = _admissible_false_accepts(float(far), impostor.numel())
    if allowed >= impostor.numel():
        return float("-inf")
    if _sorted is not None:  # scores that fit in one chunk: sorted once for every FAR
        return float(_sorted[allowed])
    return kth_largest(impostor, allowed + 1, chunk)


def tar_at_far(genuine_scores: torch.Tensor, impostor_scores: torch.Tensor, fars: Sequence[float] = FARS,
               chunk: int = CHUNK) -> dict[float, float]:
    """``{FAR: TAR}``: the highest true-positive rate on the ROC curve whose false-positive rate is ≤ FAR
    (module docstring; equal to reading ``sklearn.metrics.roc_curve(..., drop_intermediate=False)``)."""
    genuine = _scores(genuine_scores, "genuine")
    if genuine.numel() == 0:
        raise ValueError("genuine_scores is empty: no true accept rate can be measured")
    impostor = _scores(impostor_scores, "impostor")
    ordered = torch.sort(impostor.double(), descending=True).values if 0 < impostor.numel() <= chunk else None
    out = {}
    for far in fars:
        threshold = threshold_at_far(impostor, far, chunk, ordered)
        out[far] = 1.0 if threshold == float("-inf") else _count_above(genuine, threshold, chunk) / genuine.numel()
    return out


def roc_curve_points(genuine_scores: torch.Tensor, impostor_scores: torch.Tensor, num_points: int = 60,
                     min_far: float | None = None) -> tuple[list[float], list[float]]:
    """(FARs, TARs) on a log-spaced FAR grid from ``min_far`` (default 1/I) to 1, for ROC figures."""
    impostors = torch.as_tensor(impostor_scores).numel()
    low = min_far or 1.0 / max(impostors, 1)
    fars = torch.logspace(torch.log10(torch.tensor(low)), 0, num_points, dtype=torch.float64).tolist()
    tars = tar_at_far(genuine_scores, impostor_scores, fars)
    return fars, [tars[far] for far in fars]


@torch.no_grad()
def pair_scores(embeddings: torch.Tensor, labels: torch.Tensor, other: torch.Tensor | None = None,
                other_labels: torch.Tensor | None = None, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """(genuine, impostor) cosine scores of every pair: within one set (i < j), or between two sets
    (every cross pair). Chunked over rows; the outputs hold one score per pair (n²/2 for one set)."""
    from .checks import unit_rows

    a = unit_rows(embeddings, "embeddings")
    labels = labels.reshape(-1).to(a.device)
    within = other is None
    b = a if within else unit_rows(other, "other", a.device)
    b_labels = labels if within else other_labels.reshape(-1).to(a.device)
    genuine, impostor = [], []
    for start in range(0, len(a), chunk):
        scores = a[start:start + chunk] @ b.T
        same = labels[start:start + chunk, None] == b_labels[None, :]
        keep = torch.ones_like(same)
        if within:  # each unordered pair once, no self pairs
            rows = torch.arange(start, start + len(scores), device=a.device)[:, None]
            keep = torch.arange(len(b), device=a.device)[None, :] > rows
        genuine.append(scores[same & keep])
        impostor.append(scores[~same & keep])
    return torch.cat(genuine), torch.cat(impostor)
