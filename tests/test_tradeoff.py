"""Trade-off curves: the Pareto front against a brute-force reference; report --tune draws trials and test points."""

import csv
import json

import numpy as np
import pytest

from faceunlearn.commands.report import main
from faceunlearn.experiments.tradeoff import PNG, pareto_front, read_study
from tests.test_report import make_run


def _brute_force_front(forget, retention):
    on = []
    for i in range(len(forget)):
        dominated = any(forget[j] <= forget[i] and retention[j] >= retention[i] and (forget[j] < forget[i] or retention[j] > retention[i])
                        for j in range(len(forget)))
        on.append(not dominated)
    return np.array(on)


def test_pareto_front_equals_brute_force_with_ties():
    rng = np.random.default_rng(0)
    for size in (1, 2, 7, 40):
        forget = rng.integers(0, 6, size) / 5.0  # few levels: many ties
        retention = rng.integers(0, 6, size) / 5.0
        assert np.array_equal(pareto_front(forget, retention), _brute_force_front(forget, retention))
    assert pareto_front([0.2, 0.2, 0.5], [0.9, 0.9, 0.95]).tolist() == [True, True, True]
    assert pareto_front([0.2, 0.3], [0.9, 0.8]).tolist() == [True, False]
    with pytest.raises(ValueError, match="1-d"):
        pareto_front([0.1, 0.2], [0.3])


def _write_study(folder, trials, chosen):
    folder.mkdir(parents=True)
    params = ["model.init_args.lr", "model.init_args.retention.distill"]
    with (folder / "trials.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["trial", *params, "forget_mAP", "retention_mAP"])
        writer.writeheader()
        for number, (lr, distill, forget, kept) in enumerate(trials):
            writer.writerow({"trial": number, params[0]: lr, params[1]: distill, "forget_mAP": forget, "retention_mAP": kept})
    (folder / "study.json").write_text(json.dumps({
        "study": "tune_x", "storage": None, "config": "configs/demo_disp.yaml", "method": "Dispersion", "seeds": [100, 101],
        "retention": ["validation"], "params": params, "chosen_trial": chosen,
        "original_forget_mAP": 0.98, "original_retention_mAP": 0.8}))


def test_report_with_a_tune_study_draws_fronts_and_the_table(tmp_path, capsys):
    root = tmp_path / "sweep"
    for seed in (0, 1):
        make_run(root, "original", seed, "Original", {"forget/mAP": 0.97, "retain/mAP": 0.71})
        make_run(root, "demo_disp", seed, "Dispersion", {"forget/mAP": 0.40 + 0.01 * seed, "retain/mAP": 0.66})
        make_run(root, "demo_ga", seed, "GradientAscent", {"forget/mAP": 0.95, "retain/mAP": 0.60})  # dominated
    study = tmp_path / "tune"
    # trial 1 is dominated by trial 0; trial 2 forgets most; trial 3 keeps most; the study picked trial 0
    _write_study(study, [(1e-2, 1.0, 0.30, 0.75), (2e-2, 0.3, 0.35, 0.70), (3e-2, 0.0, 0.20, 0.50),
                         (1e-3, 3.0, 0.90, 0.80)], chosen=0)
    assert read_study(study).chosen == "trial 0"
    main([str(root), "--tune", str(study)])
    out = root / "report"
    markdown = (out / "report.md").read_text()
    assert (out / PNG).stat().st_size > 1000 and list((out / "tensorboard").glob("events.out.tfevents.*"))
    front_rows = [line for line in markdown.splitlines() if line.startswith("| 0") or line.startswith("| 2") or line.startswith("| 3")
                  or line.startswith("| 1")]
    assert [row.split("|")[1].strip() for row in front_rows] == ["2", "0 (chosen)", "3"]  # by forget mAP, trial 1 left out
    assert "3 of 4 trials on the front" in markdown
    assert "On the test front: Dispersion (40.50 / 66.00)." in markdown  # GradientAscent is dominated


def test_report_tune_folder_must_be_a_study(tmp_path):
    root = tmp_path / "sweep"
    make_run(root, "original", 0, "Original", {"forget/mAP": 0.97, "retain/mAP": 0.71})
    with pytest.raises(SystemExit, match="study.json not found"):
        main([str(root), "--tune", str(tmp_path)])
