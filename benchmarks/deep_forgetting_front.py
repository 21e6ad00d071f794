"""The deep-forgetting study's validation front with reference points beside it (docs/model_selection.md's figure).

A study folder is ``faceunlearn tune``'s OUT (``trials.csv``, ``study.json``). A reference is one or more single-trial
tune folders measured by the same objectives code, one per validation forget set, averaged here
(``LABEL=DIR[,DIR...]``), e.g. the shipped recipe and a variant run outside the study's grid:

    python benchmarks/deep_forgetting_front.py --study /work/runs/tune_deep \\
        --reference "shipped=/work/runs/deep_ref/seed100,/work/runs/deep_ref/seed101" \\
        --reference "trial 0 + synthetic pool=/work/runs/pool_ab/seed100,/work/runs/pool_ab/seed101" \\
        --target forget_R@1_gap=0.10 --target relearn_mAP=0.50 --out docs/figures/deep_forgetting_front.png

Dotted red lines: the study's constraint bounds and the ``--target`` values (issue 28 pt 4's targets).
"""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from faceunlearn.experiments.objectives import mean_measures, parse_constraint
from faceunlearn.figures.pareto import Point, pareto_figure
from faceunlearn.figures.png import save_png

SHOWN = ["forget_R@1_gap", "relearn_mAP", "retention_mAP", "retention_TAR"]
DIRECTIONS = ["minimize", "minimize", "maximize", "maximize"]


def trials(folder: Path) -> list[dict]:
    return list(csv.DictReader((folder / "trials.csv").open()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", type=Path, required=True)
    parser.add_argument("--reference", action="append", default=[], help="LABEL=DIR[,DIR...] (averaged)")
    parser.add_argument("--target", action="append", default=[], help="NAME=VALUE, a target line (repeatable)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    study = json.loads((args.study / "study.json").read_text())
    original = study["original"]
    points = [Point(f"trial {row['trial']}", {name: float(row[name]) for name in SHOWN}, row["feasible"] == "1",
                    row["pareto"] == "1", row["chosen"] == "1") for row in trials(args.study)]
    references = []
    for text in args.reference:
        label, folders = text.split("=", 1)
        rows = [trials(Path(folder))[0] for folder in folders.split(",")]
        references.append(Point(label, mean_measures([{name: float(row[name]) for name in SHOWN} for row in rows])))
    lines = {c.name: c.bound(original) for c in map(parse_constraint, study["constraints"])}
    lines.update({name: float(value) for name, value in (text.split("=", 1) for text in args.target)})
    save_png(pareto_figure(points, SHOWN, DIRECTIONS, references, original, lines), args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
