"""faceunlearn report: mean ± sample std over seeds, paper order, missing values shown, md/csv/tex written."""

import csv

import numpy as np
import pytest

from faceunlearn.commands.report import main
from faceunlearn.experiments import layout
from faceunlearn.experiments import audit_tables
from faceunlearn.experiments import report as report_module
from faceunlearn.experiments.report import MISSING, collect
from faceunlearn.io.tidy import tidy_rows, write_csv


def make_run(root, stem, seed, method, metrics, scenario="synthetic", config=None, seconds=10.0):
    """A finished run folder as `faceunlearn sweep` leaves it: results.csv + done.json."""
    directory = layout.run_dir(root, stem, seed)
    write_csv(tidy_rows(method, seed, metrics, table_metrics=None), directory / layout.RESULTS)
    layout.write_json_atomic(directory / layout.DONE, {
        "config": config or f"configs/{stem}.yaml", "method": method, "seed": seed, "scenario": scenario,
        "seconds": seconds, "finished_at": layout.now_iso()})
    return directory


RNG = np.random.default_rng(0)
SEEDS = (0, 1, 2)
# method -> seed -> metrics; Dispersion lacks retain/R@1 on seed 2, GradientAscent lacks retain/mAP everywhere
VALUES = {
    method: {seed: {key: float(RNG.uniform(0.05, 0.95)) for key in
                    ("forget/mAP", "forget/R@1", "retain/mAP", "retain/R@1", "forget/CS", "retain/CS", "forget/acc",
                     "retain/acc", "forget_extended/mAP", "forget_extended/R@1", "retain/num_queries_without_relevant")}
             for seed in SEEDS}
    for method in ("Original", "Dispersion", "GradientAscent", "MyMethod")
}
del VALUES["Dispersion"][2]["retain/R@1"]
for seed in SEEDS:
    del VALUES["GradientAscent"][seed]["retain/mAP"]
    del VALUES["MyMethod"][seed]["forget_extended/R@1"]


@pytest.fixture
def run_dir(tmp_path):
    root = tmp_path / "sweep"
    stems = {"Original": "original", "Dispersion": "demo_disp", "GradientAscent": "demo_ga", "MyMethod": "mine"}
    for method, by_seed in VALUES.items():
        for seed, metrics in by_seed.items():
            make_run(root, stems[method], seed, method, metrics)
    # noise the report must ignore: a crashed copy and an unfinished run
    (root / "demo_disp/seed0.crashed-20250101-000000").mkdir()
    (root / "demo_disp/seed0.crashed-20250101-000000/results.csv").write_text("garbage")
    (root / "demo_ga/seed7").mkdir()
    return root


def _report(run_dir, capsys, *extra):
    main([str(run_dir), *extra])
    out = run_dir / "report"
    with (out / "report.csv").open() as handle:
        table = list(csv.DictReader(handle))
    return capsys.readouterr().out, (out / "report.md").read_text(), table, (out / "report.tex").read_text()


def test_mean_and_std_are_numpys(run_dir, capsys):
    printed, markdown, table, tex = _report(run_dir, capsys)
    assert len(collect(run_dir)) == 12
    rows = {(row["method"], row["table"], row["benchmark"], row["metric"]): row for row in table}
    for method, by_seed in VALUES.items():
        for key in ("forget/mAP", "forget/CS", "retain/acc", "forget_extended/mAP"):
            values = [by_seed[seed][key] for seed in SEEDS]
            benchmark, metric = key.split("/")
            row = next(row for (m, _, b, me), row in rows.items() if (m, b, me) == (method, benchmark, metric))
            assert float(row["mean"]) == pytest.approx(np.mean(values), abs=1e-12)
            assert float(row["std"]) == pytest.approx(np.std(values, ddof=1), abs=1e-12)
            assert row["n"] == "3"
    # displayed: % with 2 decimals, CS with 3
    values = [VALUES["Dispersion"][seed]["forget/mAP"] for seed in SEEDS]
    assert f"{100 * np.mean(values):.2f} ± {100 * np.std(values, ddof=1):.2f}" in markdown
    cs = [VALUES["Dispersion"][seed]["forget/CS"] for seed in SEEDS]
    assert f"{np.mean(cs):.3f} ± {np.std(cs, ddof=1):.3f}" in markdown
    assert f"{100 * np.mean(values):.2f}$\\pm${100 * np.std(values, ddof=1):.2f}" in tex
    assert markdown in printed


def test_paper_order_and_columns(run_dir, capsys):
    _, markdown, table, _ = _report(run_dir, capsys)
    table1 = markdown.split("### Table 1")[1].split("###")[0]
    lines = [line for line in table1.splitlines() if line.startswith("| ") and not line.startswith("| method")]
    assert [line.split(" | ")[0][2:] for line in lines] == ["Original", "GradientAscent", "Dispersion", "MyMethod"]
    assert "| method | seeds | forget mAP | forget R@1 | retain (held-out) mAP | retain (held-out) R@1 |" in table1
    assert "not in these runs" in table1 and "CFP-FP mAP" in table1  # real-data columns named, not silently dropped
    assert {row["table"] for row in table} == {"table1", "table2", "table3", "table5"}  # table5: shown missing, never dropped


def test_missing_values_are_shown_as_missing(run_dir, capsys):
    _, markdown, table, tex = _report(run_dir, capsys)
    table1 = markdown.split("### Table 1")[1].split("###")[0]
    ga = next(line for line in table1.splitlines() if line.startswith("| GradientAscent"))
    assert ga.split(" | ")[4] == MISSING  # retain mAP of every GradientAscent run
    disp = next(line for line in table1.splitlines() if line.startswith("| Dispersion"))
    values = [VALUES["Dispersion"][seed]["retain/R@1"] for seed in (0, 1)]
    assert disp.rstrip(" |").split(" | ")[-1] == f"{100 * np.mean(values):.2f} ± {100 * np.std(values, ddof=1):.2f} (n=2)"
    rows = {(row["method"], row["table"], row["benchmark"], row["metric"]): row for row in table}
    assert rows["GradientAscent", "table1", "retain", "mAP"] == {
        "method": "GradientAscent", "table": "table1", "benchmark": "retain", "metric": "mAP", "mean": "", "std": "",
        "n": "0", "scenario": "synthetic"}
    assert rows["Dispersion", "table1", "retain", "R@1"]["n"] == "2"
    # a column no run has at all: every cell missing, and a note says so
    for seed in SEEDS:
        path = run_dir / f"mine/seed{seed}/results.csv"
        kept = [line for line in path.read_text().splitlines() if ",forget_extended," not in line]
        path.write_text("\n".join(kept) + "\n")
    for stem in ("original", "demo_disp", "demo_ga"):
        for seed in SEEDS:
            path = run_dir / f"{stem}/seed{seed}/results.csv"
            path.write_text("\n".join(line for line in path.read_text().splitlines() if ",forget_extended,R@1," not in line) + "\n")
    _, markdown, _, tex = _report(run_dir, capsys)
    table3 = markdown.split("### Table 3")[1].split("###")[0]
    assert "missing in every run: forget ext. R@1" in table3
    assert all(line.split(" | ")[3] == MISSING for line in table3.splitlines() if line.startswith("| ") and "method" not in line)
    assert "n/a" in tex


def test_one_seed_and_table_4_absent(tmp_path, capsys):
    root = tmp_path / "one"
    make_run(root, "original", 0, "Original", {"forget/mAP": 0.9, "forget/R@1": 1.0})
    make_run(root, "demo_disp", 0, "Dispersion", {"forget/mAP": 0.3, "forget/R@1": 0.8})
    printed, markdown, _, tex = _report(root, capsys)
    assert "| Dispersion | 0 | 30.00 ± — | 80.00 ± — |" in markdown
    assert f"no runs of scenario vggface2 in {root}" in markdown
    assert "% Table 4: VGGFace2 forget scenario" in tex and "\\begin{tabular}" in tex and "\\toprule" in tex
    assert "\\pm" not in tex.split("Table 1")[1].split("end{table}")[0]  # one seed: no ± in LaTeX


def test_table_4_from_vggface2_runs_and_separate_scenarios(tmp_path, capsys):
    root = tmp_path / "paper"
    for seed in SEEDS:
        make_run(root, "original", seed, "Original", {"forget/mAP": 0.88 + seed / 100, "cfp/mAP": 0.9, "vggface2/mAP": 0.89}, "celeba")
        make_run(root, "disp_celeba", seed, "Dispersion", {"forget/mAP": 0.18, "cfp/mAP": 0.89}, "celeba")
        make_run(root, "original_vggface2", seed, "Original",
                 {"forget/mAP": 0.95, "forget_extended/mAP": 0.894, "forget_extended/R@1": 0.979, "cfp_extended/mAP": 0.7}, "vggface2")
        make_run(root, "disp_vggface2", seed, "Dispersion",
                 {"forget/mAP": 0.1, "forget_extended/mAP": 0.047, "forget_extended/R@1": 0.79, "cfp_extended/mAP": 0.67}, "vggface2")
    _, markdown, table, tex = _report(root, capsys, "--tables", "1", "4")
    table1 = markdown.split("### Table 1")[1].split("###")[0]
    header = next(line for line in table1.splitlines() if line.startswith("| method"))
    assert header == "| method | seeds | forget mAP | forget R@1 | CFP-FP mAP | CFP-FP R@1 | VGGFace2 mAP | VGGFace2 R@1 |"
    assert ("not in these runs (other protocols' benchmarks): retain (held-out) mAP, retain (held-out) R@1, "
            "celebrities (held-out) mAP, celebrities (held-out) R@1, ORL mAP, ORL R@1, "
            "kept people mAP, kept people R@1, held-out people mAP, held-out people R@1.") in table1
    assert "| Original | 0 1 2 | 89.00 ± 1.00 |" in table1  # only the CelebA Original, not the VGGFace2 one
    table4 = markdown.split("### Table 4")[1].split("###")[0]
    assert "| Dispersion | 0 1 2 | 10.00 ± 0.00 | n/a (missing) | 4.70 ± 0.00 | 79.00 ± 0.00 | 67.00 ± 0.00 | n/a (missing) |" in table4
    assert {row["table"] for row in table} == {"table1", "table4"}
    assert "Table 2" not in markdown


def test_two_configs_of_one_method_are_separate_rows(tmp_path, capsys):
    root = tmp_path / "two"
    for seed in (0, 1):
        make_run(root, "demo_disp", seed, "Dispersion", {"forget/mAP": 0.3})
        make_run(root, "demo_disp_lr3", seed, "Dispersion", {"forget/mAP": 0.5})
    _, markdown, _, _ = _report(root, capsys)
    assert "| Dispersion (demo_disp) | 0 1 | 30.00 ± 0.00 |" in markdown
    assert "| Dispersion (demo_disp_lr3) | 0 1 | 50.00 ± 0.00 |" in markdown


def test_retrieval_tables_start_with_the_chance_row(tmp_path, capsys):
    root = tmp_path / "sweep"
    for seed, chance in ((0, 0.10), (1, 0.14)):
        make_run(root, "original", seed, "Original", {"forget/mAP": 0.9, "forget/R@1": 0.95, "forget/CS": 0.5,
                                                       "forget/chance_mAP": chance, "forget/chance_R@1": chance / 2})
        make_run(root, "demo_disp", seed, "Dispersion", {"forget/mAP": 0.3, "forget/R@1": 0.4, "forget/CS": 0.1,
                                                          "forget/chance_mAP": chance, "forget/chance_R@1": chance / 2})
    _, markdown, table, _ = _report(root, capsys)
    table1 = markdown.split("### Table 1")[1].split("###")[0]
    lines = [line for line in table1.splitlines() if line.startswith("| ") and not line.startswith("| method")]
    assert lines[0].startswith("| Chance (random ranking) | 0 1 | 12.00 ± 2.83 | 6.00 ± 1.41 |")
    assert [line.split(" | ")[0][2:] for line in lines[1:]] == ["Original", "Dispersion"]
    table2 = markdown.split("### Table 2")[1].split("###")[0]
    assert "Chance" not in table2  # no retrieval column: no chance row
    assert {row["method"] for row in table if row["table"] == "table1"} == {"Chance (random ranking)", "Original", "Dispersion"}


def test_gap_to_retrain_per_forget_set(tmp_path, capsys):
    root = tmp_path / "sweep"
    retrain = {0: {"forget/mAP": 0.20, "forget/R@1": 0.30, "retain/mAP": 0.80, "forget/CS": 0.1},
               1: {"forget/mAP": 0.22, "forget/R@1": 0.26, "retain/mAP": 0.78, "forget/CS": 0.1}}
    disp = {0: {"forget/mAP": 0.30, "forget/R@1": 0.50, "retain/mAP": 0.74, "forget/CS": 0.9},
            1: {"forget/mAP": 0.22, "forget/R@1": 0.36, "retain/mAP": 0.78, "forget/CS": 0.9}}
    for seed in (0, 1):
        make_run(root, "retrain", seed, "Retrain", retrain[seed], seconds=100.0)
        make_run(root, "demo_disp", seed, "Dispersion", disp[seed], seconds=25.0)
    make_run(root, "demo_ga", 0, "GradientAscent", {"forget/mAP": 0.5}, seconds=10.0)  # seed 1 has no run
    _, markdown, table, _ = _report(root, capsys)
    # Dispersion: seed 0 mean(10, 20, 6) = 12, seed 1 mean(0, 10, 0) = 3.33 (CS is not a % metric: left out)
    gaps = [np.mean([10, 20, 6]), np.mean([0, 10, 0])]
    assert f"| Dispersion | 2 | {np.mean(gaps):.2f} ± {np.std(gaps, ddof=1):.2f} | 0.25× |" in markdown
    assert "| GradientAscent | 1 | 30.00 | 0.10× |" in markdown
    row = next(r for r in table if r["table"] == "gap_to_retrain" and r["method"] == "Dispersion" and r["metric"] == "avg_gap")
    assert float(row["mean"]) == pytest.approx(np.mean(gaps))
    table1 = markdown.split("### Table 1")[1].split("###")[0]
    assert [line.split(" | ")[0][2:] for line in table1.splitlines() if line.startswith("| ") and not line.startswith("| method")][:1] == ["Retrain"]


def test_audit_table_from_the_runs_audit_files(tmp_path, capsys):
    root = tmp_path / "sweep"
    for seed, value in ((0, 0.2), (1, 0.4)):
        run = make_run(root, "demo_disp", seed, "Dispersion", {"forget/mAP": value})
        rows = [{"method": method, "seed": seed, "benchmark": test, "metric": metric,
                 "value": float("nan") if (method, test, seed) == ("Dispersion", "membership", 1) else number}
                for method, number in (("Original", 0.9), ("Dispersion", value), ("Retrain", 0.1))
                for test, metric in (("forget", "mAP"), ("membership", "AUC_forget_train_vs_unseen"))]
        write_csv(rows, run / "audit" / "audit.csv")
        fars = [1e-3, 1e-2, 1e-1, 1.0]
        write_csv([{"method": method, "seed": seed, "benchmark": test, "metric": f"TAR@FAR={far!r}", "value": min(1.0, tar * (1 + seed))}
                   for method, tar in (("Original", 0.5), ("Dispersion", 0.1), ("Retrain", 0.2))
                   for test in ("verify_forget", "verify_retain") for far in fars], run / "audit" / "roc.csv")
    _, markdown, _, _ = _report(root, capsys)
    assert "![verification ROC](audit_roc.png)" in markdown and (root / "report/audit_roc.png").stat().st_size > 1000
    curves = audit_tables.audit_roc_curves(collect(root))
    assert sorted(curves) == ["Dispersion", "Original", "Retrain"] and len(curves["Original"]["verify_forget"]) == 2
    grid, mean = audit_tables.mean_roc(curves["Dispersion"]["verify_forget"])
    assert grid[0] == pytest.approx(1e-3) and grid[-1] == pytest.approx(1.0)
    assert mean == pytest.approx(np.full(len(grid), (0.1 + 0.2) / 2))  # seeds 0 and 1: TAR 0.1 and 0.2
    audit = markdown.split("### Audit")[1]
    summary = audit.split("####")[0]
    lines = [line for line in summary.splitlines() if line.startswith("| ") and not line.startswith("| model")]
    assert [line.split(" | ")[0][2:] for line in lines] == ["Original", "Retrain", "Dispersion"]
    assert lines[2].startswith(f"| Dispersion | 30.00 ± {100 * np.std([0.2, 0.4], ddof=1):.2f} | n/a (missing) |")
    assert lines[1].startswith("| Retrain | 10.00 ± 0.00 |")
    # every test of every model: a row per (test, metric); a NaN (no data) counts as missing, "(n=k)" says so
    detail = audit.split("#### Every test, every model")[1]
    assert "| test | metric | Original | Retrain | Dispersion |" in detail
    assert f"| forget | mAP | 90.00 ± 0.00 | 10.00 ± 0.00 | 30.00 ± {100 * np.std([0.2, 0.4], ddof=1):.2f} |" in detail
    assert "| membership | AUC_forget_train_vs_unseen | 90.00 ± 0.00 | 10.00 ± 0.00 | 20.00 (n=1) |" in detail
    table = list(csv.DictReader((root / "report/report.csv").open()))
    audited = {(row["method"], row["benchmark"], row["metric"]): row for row in table if row["table"] == "audit"}
    assert len(audited) == 3 * 2
    row = audited["Dispersion", "forget", "mAP"]
    assert (float(row["mean"]), float(row["std"]), row["n"]) == (pytest.approx(0.3), pytest.approx(np.std([0.2, 0.4], ddof=1)), "2")
    assert audited["Dispersion", "membership", "AUC_forget_train_vs_unseen"]["std"] == ""  # one finite value


def test_mean_roc_interpolates_in_log_far_on_the_shared_range():
    from faceunlearn.experiments.audit_tables import mean_roc

    first = (np.array([1e-4, 1e-2, 1.0]), np.array([0.0, 0.5, 1.0]))
    second = (np.array([1e-3, 1e-1, 1.0]), np.array([0.2, 0.4, 1.0]))
    grid, mean = mean_roc([first, second], num_points=3)
    assert grid == pytest.approx([1e-3, 10 ** -1.5, 1.0])
    # at 1e-3: first is halfway (in log FAR) from 0 to 0.5 between 1e-4 and 1e-2, second is 0.2
    assert mean[0] == pytest.approx((0.25 + 0.2) / 2) and mean[-1] == pytest.approx(1.0)
