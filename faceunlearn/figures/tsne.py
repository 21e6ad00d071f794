"""t-SNE of embeddings before and after unlearning: the paper's Figure 1.

Four panels (a)–(d): D_f before, D_f after, D_r before, D_r after — one row per snapshot subset
(``forget``, then ``retain_eval``), before on the left, after on the right, every identity in its
own colour. D_f is shown whole; other subsets by a seeded draw of ``max_identities`` identities
(the same identities and images in both panels). Embeddings are L2-normalised (retrieval ranks by
cosine) and every panel gets its own t-SNE (``init="pca"``, fixed ``random_state``, perplexity
from the number of points).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from faceunlearn.io import run_folder
from faceunlearn.figures.png import save_png

#: subsets drawn with all their identities; others are capped at ``max_identities``
ALL_IDENTITIES = ("forget",)
#: panel names of the usual snapshot subsets
DISPLAY_NAMES = {"forget": "$D_f$ (forget)", "retain_eval": "$D_r$ (retain)", "forget_test": "$D_f^{test}$"}
TAG = "embeddings/tsne"
FILENAME = "tsne.png"


def perplexity_for(n: int) -> float:
    """sklearn's default 30, lowered for small sets (it must stay below the number of points)."""
    return float(min(30.0, max(2.0, (n - 1) / 3)))


def tsne_2d(embeddings: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D t-SNE of L2-normalised rows (PCA when there are too few rows for t-SNE)."""
    x = np.asarray(embeddings, dtype=np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    if len(x) < 5:
        centred = x - x.mean(axis=0)
        u, s, _ = np.linalg.svd(centred, full_matrices=False)
        out = np.zeros((len(x), 2))
        out[:, : min(2, len(s))] = (u * s)[:, :2]
        return out
    try:
        from sklearn.manifold import TSNE
        from threadpoolctl import threadpool_limits
    except ImportError as error:  # scikit-learn is a dependency; say so if it is missing
        raise ImportError("t-SNE figures need scikit-learn: pip install scikit-learn") from error
    tsne = TSNE(n_components=2, perplexity=perplexity_for(len(x)), init="pca", learning_rate="auto", random_state=seed)
    # One thread: the same layout on every machine, and Barnes-Hut's OpenMP threads slow down
    # 10-30x on a CPU that training shares (240 points: 1.4 s on one thread, 40 s on two busy cores).
    with threadpool_limits(limits=1):
        return tsne.fit_transform(x)


def _load(snapshot) -> dict:
    return run_folder.load_snapshot(snapshot) if isinstance(snapshot, (str, Path)) else snapshot


def _step_of(snapshot) -> int | None:
    """The step in a snapshot's file name (``step<N>.pt``), if it is a path."""
    if isinstance(snapshot, (str, Path)):
        match = run_folder.SNAPSHOT_NAME.fullmatch(Path(snapshot).name)
        return int(match.group(1)) if match else None
    return None


def _chosen_rows(before: dict, after: dict, name: str, max_identities: int, seed: int):
    """Rows of ``before`` and ``after`` (matched by image id) of the identities drawn, and their labels."""
    labels = before["labels"].numpy()
    identities = np.unique(labels)
    if name not in ALL_IDENTITIES and len(identities) > max_identities:
        identities = np.sort(np.random.default_rng(seed).choice(identities, size=max_identities, replace=False))
    ids_before, ids_after = before["image_ids"].numpy(), after["image_ids"].numpy()
    wanted = np.intersect1d(ids_before[np.isin(labels, identities)], ids_after)
    rows_before, rows_after = _rows_of(ids_before, wanted), _rows_of(ids_after, wanted)
    return rows_before, rows_after, labels[rows_before], identities


def _rows_of(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Positions in ``ids`` of ``wanted`` (all present)."""
    order = np.argsort(ids, kind="stable")
    return order[np.searchsorted(ids, wanted, sorter=order)]


def _colours(count: int):
    from matplotlib import colormaps

    if count <= 10:
        return colormaps["tab10"].colors[:count]
    if count <= 20:
        return colormaps["tab20"].colors[:count]
    return [colormaps["hsv"](i / count) for i in range(count)]


def tsne_figure(
    before,
    after,
    subsets: list[str] | None = None,
    max_identities: int = 10,
    seed: int = 0,
    steps: tuple[int | None, int | None] = (None, None),
) -> Figure:
    """The figure from two snapshots (paths of ``embeddings/step<N>.pt`` or loaded dicts).

    ``subsets``: the rows, in order (default: every subset in both snapshots, ``forget`` first).
    """
    steps = tuple(step if step is not None else _step_of(path) for step, path in zip(steps, (before, after)))
    before, after = _load(before), _load(after)
    if subsets is None:
        common = [name for name in before if name in after]
        subsets = sorted(common, key=lambda name: (name not in ALL_IDENTITIES, common.index(name)))
    if not subsets:
        raise ValueError("the two snapshots have no subset in common")
    figure = Figure(figsize=(8, 4 * len(subsets)), dpi=100, layout="constrained")
    axes = figure.subplots(len(subsets), 2, squeeze=False)
    letters = iter("abcdefghijklmnopqrstuvwxyz")
    for row, name in enumerate(subsets):
        rows_before, rows_after, labels, identities = _chosen_rows(before[name], after[name], name, max_identities, seed)
        colour_of = dict(zip(identities.tolist(), _colours(len(identities))))
        colours = [colour_of[label] for label in labels.tolist()]
        shown = DISPLAY_NAMES.get(name, name)
        for column, (data, rows, when, step) in enumerate(((before[name], rows_before, "before", steps[0]), (after[name], rows_after, "after", steps[1]))):
            axis = axes[row][column]
            if len(rows):
                points = tsne_2d(data["embeddings"].float().numpy()[rows], seed)
                axis.scatter(points[:, 0], points[:, 1], c=colours, s=9, linewidths=0)
            at = f", step {step}" if step is not None else ""
            axis.set_title(f"({next(letters)}) {shown}: {when} unlearning{at}\n{len(identities)} identities, {len(rows)} images", fontsize=9)
            axis.set_xticks([])
            axis.set_yticks([])
    return figure


def tsne_for_run(run_dir, max_identities: int = 10, seed: int = 0) -> Figure | None:
    """The figure of a run's first and last snapshots (``embeddings/step<N>.pt``); None without two."""
    snapshots = run_folder.list_snapshots(run_dir)
    if len(snapshots) < 2:
        return None
    (first, before), (last, after) = next(iter(snapshots.items())), list(snapshots.items())[-1]
    return tsne_figure(before, after, max_identities=max_identities, seed=seed, steps=(first, last))


def save_figure(figure: Figure, path: str | Path) -> Path:
    return save_png(figure, path)


def write_tsne(run_dir, out=None, max_identities: int = 10) -> Path | None:
    """``<run_dir>/figures/tsne.png`` (or ``out``); None if the run has fewer than two snapshots."""
    figure = tsne_for_run(run_dir, max_identities)
    if figure is None:
        return None
    return save_figure(figure, out or Path(run_dir) / run_folder.FIGURES / FILENAME)


def log_tsne_figure(run_dir, experiment=None) -> Path | None:
    """Write the run's t-SNE figure and add it to TensorBoard (``experiment``: a SummaryWriter) as
    the image ``embeddings/tsne`` at the last snapshot's step."""
    figure = tsne_for_run(run_dir)
    if figure is None:
        return None
    path = save_figure(figure, Path(run_dir) / run_folder.FIGURES / FILENAME)
    if experiment is not None:
        experiment.add_figure(TAG, figure, global_step=max(run_folder.list_snapshots(run_dir)), close=True)
    return path
