"""Calibrating ``faceunlearn check-disjoint``'s threshold on real faces (docs/check_disjoint.md).

    faceunlearn check-disjoint --calibrate --model sface --packs celebrities=data/glint-celebrities orl=data/orl \\
        --figure docs/figures/disjoint_calibration.png

The check flags a (forget, other) identity pair when the cosine of their centroids exceeds a
threshold. What it must tell apart, under the reference model:

* **same person** — one person's images in two places (two datasets, or two labels of one): on
  a pack whose labels are right, each identity's images are split at random into two halves
  (the seeded per-identity split the check itself uses for its ``self`` reference,
  ``split_forget_images(·, 0.5, seed)``) and the cosine between the two half-centroids is one
  same-person score; ``repeats`` seeded splits per identity.
* **different people**, two ways, both from the same splits:

  - ``half``: half-centroid of identity *i* against the *other* half-centroid of identity *j ≠ i*
    (every ordered pair), so both centroids average as many images as in the same-person score;
  - ``whole``: half-centroid of *i* against the centroid of **all** images of *j*: the check's own
    situation, a forget identity's D_f centroid against a whole other identity.

A centroid is ``normalize(Σ ẑ_k)`` of unit embeddings, exactly as in the check. Identities with
fewer than ``min_images`` (4: two per half) images are left out. With more than ``max_pairs``
different-person pairs per split, a seeded sample of ``max_pairs`` of them is scored.

Rates at a threshold ``t`` (the check fails on ``cos > t``): **false match** = fraction of
different-person scores ``> t``; **missed match** = fraction of same-person scores ``≤ t``.
``choose_threshold`` applies the rule documented there; ``pooled`` treats all packs together as
one set of identities (so different-person pairs also span datasets).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from faceunlearn.io.atomic import atomic_path, write_json_atomic
from faceunlearn.data.splits import split_forget_images
from faceunlearn.metrics.checks import unit_rows

MIN_IMAGES = 4
DEFAULT_REPEATS = 5
DEFAULT_MAX_PAIRS = 200_000
#: the threshold rule's false-match budget (see ``choose_threshold``)
MAX_FALSE_MATCH = 0.01
#: thresholds are rounded to this step
THRESHOLD_STEP = 0.05


@dataclass
class Calibration:
    """Same- and different-person centroid cosines of one dataset (or of several pooled)."""

    dataset: str
    identities: int  # identities used (>= MIN_IMAGES images)
    images: int  # their images
    repeats: int
    same: np.ndarray  # [repeats · identities]: cos(half A_i, half B_i)
    different: np.ndarray  # cos(half A_i, half B_j), i ≠ j
    different_whole: np.ndarray  # cos(half A_i, all of j), i ≠ j: the check's situation
    images_per_identity: tuple[int, int] = (0, 0)  # min, max
    extra: dict = field(default_factory=dict)

    def false_match_rate(self, threshold: float, whole: bool = True) -> float:
        scores = self.different_whole if whole else self.different
        return float(np.mean(scores > threshold)) if len(scores) else 0.0

    def missed_match_rate(self, threshold: float) -> float:
        return float(np.mean(self.same <= threshold)) if len(self.same) else 0.0

    def summary(self, threshold: float | None = None) -> dict:
        def stats(values: np.ndarray) -> dict:
            if len(values) == 0:
                return {"count": 0}
            q = np.quantile(values, [0.01, 0.05, 0.5, 0.95, 0.99])
            return {"count": int(len(values)), "min": float(values.min()), "p01": float(q[0]), "p05": float(q[1]),
                    "median": float(q[2]), "mean": float(values.mean()), "p95": float(q[3]), "p99": float(q[4]),
                    "max": float(values.max())}

        out = {
            "dataset": self.dataset, "identities": self.identities, "images": self.images, "repeats": self.repeats,
            "images_per_identity": list(self.images_per_identity),
            "same": stats(self.same), "different_half": stats(self.different), "different_whole": stats(self.different_whole),
        }
        if threshold is not None:
            out["threshold"] = threshold
            out["false_match_rate_whole"] = self.false_match_rate(threshold, whole=True)
            out["false_match_rate_half"] = self.false_match_rate(threshold, whole=False)
            out["missed_match_rate"] = self.missed_match_rate(threshold)
        return out


# -- cosines ---------------------------------------------------------------------------------------
def _centroids(unit: torch.Tensor, labels: np.ndarray, count: int) -> torch.Tensor:
    sums = torch.zeros(count, unit.shape[1], dtype=unit.dtype).index_add_(0, torch.from_numpy(labels), unit)
    return F.normalize(sums, dim=1)


def _pair_indices(count: int, max_pairs: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Ordered pairs (i, j), i ≠ j: all of them, or a sample of ``max_pairs``."""
    total = count * (count - 1)
    if total <= max_pairs:
        i, j = np.nonzero(~np.eye(count, dtype=bool))
        return i, j
    i = rng.integers(0, count, max_pairs)
    j = (i + rng.integers(1, count, max_pairs)) % count  # uniform over j ≠ i
    return i, j


def calibration_cosines(
    embeddings: torch.Tensor,
    identities: np.ndarray,
    dataset: str = "",
    repeats: int = DEFAULT_REPEATS,
    seed: int = 0,
    min_images: int = MIN_IMAGES,
    max_pairs: int = DEFAULT_MAX_PAIRS,
) -> Calibration:
    """Same-/different-person centroid cosines of ``embeddings`` [N, D] labelled ``identities`` [N] (module doc).

    Split ``r`` (0 ≤ r < repeats) is ``split_forget_images(identities, 0.5, seed + r)``.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    if min_images < 4:
        raise ValueError(f"min_images must be >= 4 (two images per half), got {min_images}")
    identities = np.asarray(identities, dtype=np.int64)
    known, counts = np.unique(identities, return_counts=True)
    keep = np.isin(identities, known[counts >= min_images])
    kept_ids, labels, kept_counts = np.unique(identities[keep], return_inverse=True, return_counts=True)
    if len(kept_ids) < 2:
        raise ValueError(f"{dataset or 'the dataset'} has {len(kept_ids)} identities with >= {min_images} images; calibration needs >= 2")
    unit = unit_rows(embeddings, "embeddings")[torch.from_numpy(np.flatnonzero(keep))].double()
    count = len(kept_ids)
    whole = _centroids(unit, labels, count)
    rng = np.random.default_rng(seed)
    same, different, different_whole = [], [], []
    for r in range(repeats):
        first = split_forget_images(labels, 0.5, seed + r)
        half_a = _centroids(unit[torch.from_numpy(first)], labels[first], count)
        half_b = _centroids(unit[torch.from_numpy(~first)], labels[~first], count)
        same.append((half_a * half_b).sum(1))
        i, j = (torch.from_numpy(index) for index in _pair_indices(count, max_pairs, rng))
        different.append((half_a[i] * half_b[j]).sum(1))
        different_whole.append((half_a[i] * whole[j]).sum(1))
    return Calibration(
        dataset, count, int(keep.sum()), repeats,
        torch.cat(same).float().numpy(), torch.cat(different).float().numpy(), torch.cat(different_whole).float().numpy(),
        (int(kept_counts.min()), int(kept_counts.max())),
    )


# -- the rule ---------------------------------------------------------------------------------------
def choose_threshold(
    results: Sequence[Calibration], max_false_match: float = MAX_FALSE_MATCH, step: float = THRESHOLD_STEP
) -> tuple[float, str]:
    """The threshold rule; returns ``(threshold, the rule as applied, in words)``.

    **The smallest multiple of ``step`` at which at most ``max_false_match`` of the different-person
    pairs score above it, on every dataset** (half- and whole-centroid pairs alike): the
    false-match budget holds everywhere and, the check being a safety net, missed matches are as
    few as that budget allows. ``low`` = the largest (1 − ``max_false_match``) quantile of
    different-person scores over the datasets; the threshold is ``low`` rounded up to ``step``.
    """
    if not results:
        raise ValueError("no calibration results")
    quantiles = {
        r.dataset: float(np.quantile(np.concatenate([r.different, r.different_whole]), 1 - max_false_match))
        for r in results if len(r.different)
    }
    if not quantiles:
        raise ValueError("no different-person pairs to calibrate on")
    worst = max(quantiles, key=quantiles.get)
    low = quantiles[worst]
    threshold = round(float(np.ceil(round(low / step, 9)) * step), 10)
    high = min(float(np.quantile(r.same, max_false_match)) for r in results if len(r.same))
    rule = (f"smallest multiple of {step:g} with <= {max_false_match:.0%} different-person pairs above it on every dataset: "
            f"the {1 - max_false_match:.0%} quantile of different-person cosines is at most {low:.3f} ({worst}), "
            f"rounded up to {threshold:g} (same-person {max_false_match:.0%} quantile: min {high:.3f})")
    return threshold, rule


# -- small other identities ------------------------------------------------------------------------
@dataclass
class SizeSweep:
    """The check's forget-side centroid (half an identity) against other centroids of ``size`` images."""

    dataset: str
    size: int
    identities: int  # identities whose other half has >= size images
    same: np.ndarray  # cos(half A_i, `size` images of half B_i)
    different: np.ndarray  # cos(half A_i, `size` images of half B_j), i ≠ j


def centroid_size_sweep(
    embeddings: torch.Tensor,
    identities: np.ndarray,
    dataset: str = "",
    sizes: Sequence[int] = (1, 2, 3, 5, 10),
    repeats: int = DEFAULT_REPEATS,
    seed: int = 0,
    min_images: int = MIN_IMAGES,
    max_pairs: int = DEFAULT_MAX_PAIRS,
) -> list[SizeSweep]:
    """How the rates depend on the other identity's image count (a distractor with 2 photos, say).

    Per split ``r`` (``split_forget_images(·, 0.5, seed + r)``, as in ``calibration_cosines``), the
    forget side is half A's centroid; the other side is the centroid of ``size`` images drawn
    (seeded) from half B of the same identity (same person) or of another identity (different).
    """
    identities = np.asarray(identities, dtype=np.int64)
    known, counts = np.unique(identities, return_counts=True)
    keep = np.isin(identities, known[counts >= min_images])
    _, labels = np.unique(identities[keep], return_inverse=True)
    unit = unit_rows(embeddings, "embeddings")[torch.from_numpy(np.flatnonzero(keep))].double()
    count = int(labels.max()) + 1 if len(labels) else 0
    rng = np.random.default_rng(seed)
    sweeps = []
    for size in sizes:
        same, different, eligible = [], [], 0
        for r in range(repeats):
            first = split_forget_images(labels, 0.5, seed + r)
            half_a = _centroids(unit[torch.from_numpy(first)], labels[first], count)
            rows_b = np.flatnonzero(~first)
            order = rows_b[np.lexsort((rng.random(len(rows_b)), labels[rows_b]))]
            _, starts, sizes_b = np.unique(labels[order], return_index=True, return_counts=True)
            position = np.arange(len(order)) - np.repeat(starts, sizes_b)
            enough = np.repeat(sizes_b >= size, sizes_b)
            picked = order[(position < size) & enough]
            others = np.unique(labels[picked])
            eligible = len(others)
            if eligible < 2:
                continue
            small = _centroids(unit[torch.from_numpy(picked)], np.searchsorted(others, labels[picked]), eligible)
            same.append((half_a[torch.from_numpy(others)] * small).sum(1))
            i, j = _pair_indices(eligible, max_pairs, rng)  # indices into `others`
            different.append((half_a[torch.from_numpy(others[i])] * small[torch.from_numpy(j)]).sum(1))
        if same:
            sweeps.append(SizeSweep(dataset, int(size), eligible, torch.cat(same).float().numpy(), torch.cat(different).float().numpy()))
    return sweeps


def format_sweep(sweeps: Sequence[SizeSweep], threshold: float) -> str:
    lines = [("dataset", "other images", "ids", "same: p01 / median", "different: p99 / max", "false match", "missed match")]
    for s in sweeps:
        lines.append((
            s.dataset, str(s.size), str(s.identities),
            f"{np.quantile(s.same, 0.01):.3f} / {np.median(s.same):.3f}",
            f"{np.quantile(s.different, 0.99):.3f} / {s.different.max():.3f}",
            f"{np.mean(s.different > threshold):.2%}", f"{np.mean(s.same <= threshold):.2%}",
        ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines)


# -- packs, report, figure -------------------------------------------------------------------------
def pooled(results_inputs: Sequence[tuple[str, torch.Tensor, np.ndarray]], **options) -> Calibration:
    """All datasets' identities as one set (identity ids offset per dataset): cross-dataset different pairs too."""
    offset, embeddings, identities = 0, [], []
    for _, vectors, ids in results_inputs:
        ids = np.asarray(ids, dtype=np.int64)
        _, dense = np.unique(ids, return_inverse=True)
        identities.append(dense + offset)
        offset += int(dense.max()) + 1 if len(dense) else 0
        embeddings.append(vectors)
    return calibration_cosines(torch.cat(embeddings), np.concatenate(identities), "pooled", **options)


def calibrate_packs(
    packs: Sequence[tuple[str, object]],
    embed_rows: Callable[[object, np.ndarray], torch.Tensor],
    rows_of: Callable[[object], np.ndarray],
    repeats: int = DEFAULT_REPEATS,
    seed: int = 0,
    max_pairs: int = DEFAULT_MAX_PAIRS,
    sizes: Sequence[int] = (1, 2, 3, 5, 10),
    log: Callable[[str], None] = print,
) -> tuple[list[Calibration], list[SizeSweep]]:
    """One ``Calibration`` per ``(label, PackedFaces)`` (plus ``pooled`` when there are several) and their size sweeps."""
    inputs, results, sweeps = [], [], []
    for label, pack in packs:
        rows = rows_of(pack)
        log(f"embedding {len(rows)} images of {label}")
        embeddings = embed_rows(pack, rows)
        identities = pack.identities[rows]
        inputs.append((label, embeddings, identities))
        results.append(calibration_cosines(embeddings, identities, label, repeats, seed, max_pairs=max_pairs))
        sweeps += centroid_size_sweep(embeddings, identities, label, sizes, repeats, seed, max_pairs=max_pairs)
    if len(inputs) > 1:
        results.append(pooled(inputs, repeats=repeats, seed=seed, max_pairs=max_pairs))
    return results, sweeps


def format_calibration(results: Sequence[Calibration], threshold: float) -> str:
    header = ("dataset", "ids", "images", "same: p01 / median / min", "different (whole): median / p99 / max",
              "different (half): p99 / max", "false match", "missed match")
    lines = [header]
    for r in results:
        s = r.summary(threshold)
        same, whole, half = s["same"], s["different_whole"], s["different_half"]
        lines.append((
            r.dataset, str(r.identities), str(r.images),
            f"{same['p01']:.3f} / {same['median']:.3f} / {same['min']:.3f}" if same["count"] else "-",
            f"{whole['median']:.3f} / {whole['p99']:.3f} / {whole['max']:.3f}",
            f"{half['p99']:.3f} / {half['max']:.3f}",
            f"{s['false_match_rate_whole']:.2%}", f"{s['missed_match_rate']:.2%}" if same["count"] else "-",
        ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines)


def write_report(
    results: Sequence[Calibration], threshold: float, rule: str, path: Path, model: str = "", sweeps: Sequence[SizeSweep] = ()
) -> None:
    """Summaries, every cosine and the size sweep's rates as JSON (``path``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "model": model, "threshold": threshold, "rule": rule,
        "datasets": [
            {**r.summary(threshold), "cosines": {
                "same": np.round(r.same, 5).tolist(), "different_half": np.round(r.different, 5).tolist(),
                "different_whole": np.round(r.different_whole, 5).tolist(),
            }} for r in results
        ],
        "size_sweep": [
            {"dataset": w.dataset, "other_images": w.size, "identities": w.identities,
             "same_p01": float(np.quantile(w.same, 0.01)), "same_median": float(np.median(w.same)),
             "different_p99": float(np.quantile(w.different, 0.99)), "different_max": float(w.different.max()),
             "false_match_rate": float(np.mean(w.different > threshold)), "missed_match_rate": float(np.mean(w.same <= threshold))}
            for w in sweeps
        ],
    }
    write_json_atomic(path, payload, indent=1)


def plot_calibration(
    results: Sequence[Calibration], threshold: float, path: Path, sweeps: Sequence[SizeSweep] = (), title: str = ""
) -> None:
    """Histograms (each scaled to peak 1) of same-/different-person cosines per dataset with the threshold line, and (with
    ``sweeps``) a panel of the same-person 1 % and different-person 99 % quantiles against the other
    identity's image count. matplotlib Agg, a small PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = len(results) + (1 if sweeps else 0)
    fig, axes = plt.subplots(1, panels, figsize=(3.3 * panels, 2.8), squeeze=False)
    bins = np.linspace(-0.4, 1.0, 71)
    for axis, r in zip(axes[0], results):
        for values, label, color, style in (
            (r.different_whole, "different: half vs whole", "tab:red", "stepfilled"),
            (r.different, "different: half vs half", "tab:orange", "step"),
            (r.same, "same: half vs half", "tab:blue", "stepfilled"),
        ):
            if len(values):  # each histogram scaled to peak 1: the narrow same-person one would dwarf the others
                heights, _ = np.histogram(np.clip(values, bins[0], bins[-1]), bins=bins)
                axis.stairs(heights / heights.max(), bins, fill=style == "stepfilled", color=color,
                            alpha=0.5 if style == "stepfilled" else 1.0, label=label, linewidth=1.1)
        axis.axvline(threshold, color="black", linestyle="--", linewidth=1)
        s = r.summary(threshold)
        text = f"t = {threshold:g}\nfalse match {s['false_match_rate_whole']:.2%}"
        if len(r.same):
            text += f"\nmissed {s['missed_match_rate']:.2%}"
        axis.text(threshold + 0.02, 1.72, text, fontsize=6.5, va="top")
        axis.set_ylim(0, 1.8)  # room above the peaks for the text and legend
        axis.set_title(f"{r.dataset}: {r.identities} ids, {r.images} img", fontsize=8.5)
        axis.set_xlabel("centroid cosine", fontsize=8)
        axis.set_xlim(bins[0], bins[-1])
        axis.tick_params(labelsize=7)
        axis.set_yticks([])
    axes[0][0].legend(fontsize=5.5, loc="upper left", frameon=False)
    if sweeps:
        axis = axes[0][-1]
        for number, dataset in enumerate(dict.fromkeys(w.dataset for w in sweeps)):
            rows = [w for w in sweeps if w.dataset == dataset]
            x = [w.size for w in rows]
            color = f"C{number}"
            axis.plot(x, [np.quantile(w.same, 0.01) for w in rows], "o-", color=color, markersize=3, linewidth=1, label=f"{dataset}: same p01")
            axis.plot(x, [np.quantile(w.different, 0.99) for w in rows], "s--", color=color, markersize=3, linewidth=1, label=f"{dataset}: different p99")
        axis.axhline(threshold, color="black", linestyle="--", linewidth=1)
        axis.set_xscale("log")
        axis.set_xticks(sorted({w.size for w in sweeps}), [str(v) for v in sorted({w.size for w in sweeps})])
        axis.set_xlabel("images of the other identity", fontsize=8)
        axis.set_ylabel("cosine", fontsize=7)
        axis.set_title("forget half vs a small other centroid", fontsize=8.5)
        axis.tick_params(labelsize=7)
        axis.legend(fontsize=5.5, frameon=False, loc="center right")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as partial:
        fig.savefig(partial, dpi=90, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
