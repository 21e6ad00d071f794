"""``faceunlearn demo`` end to end on a small packed set: every stage runs, and the summary prints the measures
that can fail (forget R@1 against its chance level, held-out TAR at a low FAR), not only mAP."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import yaml

from conftest import write_random_packed
from faceunlearn.demo import run_demo

REPO = Path(__file__).resolve().parents[1]
SMALL = {  # the shipped demo configs on 20 noise identities, a few steps each
    "data.root": None, "data.synthetic": None, "data.eval_retain_identities": 5, "data.batches_per_epoch": 2,
    "trainer.max_epochs": 1, "trainer.check_val_every_n_epoch": 1, "trainer.enable_progress_bar": False,
    "run_files.snapshots": [],
}


def _small_config(tmp_path: Path, name: str, root: Path) -> str:
    values = {"config": str(REPO / "configs" / name), **SMALL, "data.root": str(root)}
    if name == "demo_finetune.yaml":  # FineTune has no run_files section
        values.pop("run_files.snapshots")
    path = tmp_path / name
    path.write_text(yaml.safe_dump(values))
    return str(path)


def test_demo_runs_every_stage_and_reports_rank1_against_chance(tmp_path, monkeypatch, capsys):
    root = tmp_path / "packed"
    write_random_packed(root)
    monkeypatch.chdir(tmp_path)  # checkpoints/ and lightning_logs/ of the shipped configs land here
    configs = [_small_config(tmp_path, name, root) for name in ("demo_finetune.yaml", "demo_disp_paper.yaml", "demo_disp.yaml")]
    rows = run_demo(configs[0], configs[1:], str(tmp_path / "out"), ["paper", "selected"])
    methods = {row["method"] for row in rows}
    assert methods == {"Original", "paper", "selected"}
    written = list(csv.DictReader((tmp_path / "out" / "results.csv").open()))
    assert {row["method"] for row in written} == methods
    printed = capsys.readouterr().out
    # one line each per unlearned row, with before → after
    assert len(re.findall(r"forget R@1 [\d.]+ → [\d.]+ \(chance [\d.]+\)", printed)) == 2
    assert len(re.findall(r"held-out TAR @ FAR 1e-3 \(every held-out pair\) [\d.]+ → [\d.]+", printed)) == 2
    assert "Stage times:" in printed and (tmp_path / "checkpoints" / "demo_finetune" / "last.ckpt").is_file()
