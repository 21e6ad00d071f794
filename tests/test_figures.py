"""Figures from hand-made run files: curves (history.csv + TensorBoard loss) and the t-SNE panels."""
import csv

import numpy as np
import pytest
import torch

from faceunlearn.io import run_folder
from faceunlearn.figures import figures_for_run
from faceunlearn.commands.figures import main as figures_main
from faceunlearn.figures.curves import read_scalar
from faceunlearn.figures.tsne import perplexity_for, tsne_figure

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path, max_bytes=200_000):
    data = path.read_bytes()
    return data.startswith(PNG_MAGIC) and 1000 < len(data) < max_bytes


def _subset(identities, per_identity, spread, seed, first_label=0, first_id=0):
    """Clustered embeddings (``spread`` small) or scattered ones (``spread`` large)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(identities, 32))
    labels = np.repeat(np.arange(identities), per_identity)
    embeddings = centres[labels] + spread * rng.normal(size=(len(labels), 32))
    return {
        "embeddings": torch.tensor(embeddings, dtype=torch.float16),
        "labels": torch.tensor(labels + first_label),
        "image_ids": torch.arange(len(labels)) + first_id,
    }


def _write_run(run_dir, steps=(0, 6)):
    for step, spread in zip(steps, (0.1, 3.0)):
        run_folder.save_snapshot(run_folder.snapshot_path(run_dir, step), {
            "forget": _subset(6, 8, spread, seed=1),
            "retain_eval": _subset(15, 6, 0.2, seed=2, first_label=100, first_id=1000),
        })
    for step in steps:
        run_folder.append_history(run_dir / run_folder.HISTORY, step, {
            "forget/mAP": 0.9 - 0.1 * step, "forget/R@1": 1.0, "forget/CS": 0.5 - 0.05 * step,
            "forget_extended/mAP": 0.8 - 0.1 * step, "retain/mAP": 0.7, "retain/acc": 0.95,
        })
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(str(run_dir)) as writer:
        for step in range(1, 7):
            writer.add_scalar("train/loss", 1.0 / step, step)


def test_history_file_is_tidy_and_trimmed_on_resume(tmp_path):
    path = tmp_path / run_folder.HISTORY
    for step in (0, 3, 6):
        run_folder.append_history(path, step, {"forget/mAP": 0.5, "retain/CS": 0.25})
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["step", "benchmark", "metric", "value"] and len(rows) == 6
    assert rows[1] == {"step": "0", "benchmark": "retain", "metric": "CS", "value": "0.25"}
    run_folder.trim_history(path, 3)  # a fit resumed from step 3 evaluates step 6 again
    assert [row["step"] for row in run_folder.read_history(path)] == [0, 0, 3, 3]
    run_folder.trim_history(path, None)  # a fresh fit in the same folder
    assert not path.exists()


def test_a_resumed_fit_appends_to_history_without_rewriting_it(tmp_path):
    from faceunlearn.callbacks.snapshots import RunRecord

    path = tmp_path / run_folder.HISTORY
    for step in (0, 3, 6):  # the fit evaluated step 6, then crashed before its step-6 checkpoint
        run_folder.append_history(path, step, {"forget/mAP": 0.5})
    before = path.read_bytes()
    record = RunRecord(tmp_path, snapshots=None, max_per_subset=10)
    record.start(3)  # resumed from the step-3 checkpoint: the file is left as it is
    assert path.read_bytes() == before
    record.record(6, {"forget/mAP": 0.25}, None)  # step 6 evaluated again
    assert path.read_bytes().startswith(before)  # appended, not rewritten
    assert [(row["step"], row["value"]) for row in run_folder.read_history(path)] == [(0, 0.5), (3, 0.5), (6, 0.25)]
    RunRecord(tmp_path, snapshots=None, max_per_subset=10).start(0)  # a fresh fit in the same folder
    assert not path.exists()


def test_figures_for_run_writes_small_pngs(tmp_path):
    run = tmp_path / "run"
    _write_run(run)
    assert read_scalar(run) == ([1, 2, 3, 4, 5, 6], pytest.approx([1 / s for s in range(1, 7)]))
    written = figures_for_run(run)
    assert [path.name for path in written] == ["curves.png", "tsne.png"]
    assert all(path.parent == run / "figures" and _is_png(path) for path in written)


def test_tsne_figure_has_the_papers_four_panels(tmp_path):
    run = tmp_path / "run"
    _write_run(run)
    figure = tsne_figure(run / "embeddings/step0.pt", run / "embeddings/step6.pt", max_identities=10)
    titles = [axis.get_title() for axis in figure.axes]
    assert len(titles) == 4
    assert titles[0].startswith("(a) $D_f$ (forget): before unlearning, step 0\n6 identities, 48 images")
    assert titles[1].startswith("(b) $D_f$ (forget): after unlearning, step 6")
    assert titles[2].startswith("(c) $D_r$ (retain): before") and "10 identities, 60 images" in titles[2]  # 10 of 15 drawn
    assert titles[3].startswith("(d) $D_r$ (retain): after")
    assert perplexity_for(1000) == 30 and perplexity_for(10) == 3 and perplexity_for(5) < 5


def test_figures_cli_finds_run_folders_below_a_parent(tmp_path, capsys):
    for seed in (0, 1):
        _write_run(tmp_path / "sweep" / "demo_disp" / f"seed{seed}")
    (tmp_path / "sweep" / "empty").mkdir()
    figures_main([str(tmp_path / "sweep")])
    out = capsys.readouterr().out
    for seed in (0, 1):
        assert f"seed{seed}: curves.png, tsne.png" in out
        assert _is_png(tmp_path / "sweep" / "demo_disp" / f"seed{seed}" / "figures" / "tsne.png")
    figures_main(["--tsne", str(tmp_path / "sweep/demo_disp/seed0/embeddings/step0.pt"),
                  str(tmp_path / "sweep/demo_disp/seed0/embeddings/step6.pt"), "--out", str(tmp_path / "pair.png")])
    assert _is_png(tmp_path / "pair.png")
    with pytest.raises(SystemExit, match="no run folder"):
        figures_main([str(tmp_path / "sweep" / "empty")])


def test_pareto_figure_puts_every_trial_where_its_measures_are():
    from faceunlearn.figures.pareto import Point, pareto_figure

    objectives, directions = ["forget_R@1_gap", "relearn_mAP", "retention_mAP"], ["minimize", "minimize", "maximize"]
    points = [Point("0", {"forget_R@1_gap": 0.70, "relearn_mAP": 0.46, "retention_mAP": 0.955}),
              Point("1", {"forget_R@1_gap": 0.65, "relearn_mAP": 0.45, "retention_mAP": 0.924}, feasible=True, front=True, chosen=True)]
    shipped = Point("shipped", {"forget_R@1_gap": 0.75, "relearn_mAP": 0.60, "retention_mAP": 0.98})
    figure = pareto_figure(points, objectives, directions, references=[shipped],
                           original={"forget_R@1_gap": 0.8, "relearn_mAP": 1.0, "retention_mAP": 0.996}, lines={"retention_mAP": 0.986})
    axes = figure.axes
    assert len(axes) == 2  # the first objective against each other one
    for axis, y_name in zip(axes, objectives[1:]):
        drawn = {tuple(np.round(offset, 6)) for collection in axis.collections for offset in collection.get_offsets()}
        expected = {(round(p.values["forget_R@1_gap"], 6), round(p.values[y_name], 6)) for p in [*points, shipped]}
        assert expected | {(0.8, round({"relearn_mAP": 1.0, "retention_mAP": 0.996}[y_name], 6))} == drawn
        assert axis.get_xlabel() == "forget_R@1_gap (← better)"
    assert axes[1].get_ylabel() == "retention_mAP (better ↑)" and axes[1].lines  # the bound drawn on the retention panel
    assert not axes[0].lines  # no bound on relearn_mAP
    with pytest.raises(ValueError, match="at least two objectives"):
        pareto_figure(points, ["forget_mAP"], ["minimize"])
