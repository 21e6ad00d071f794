"""``faceunlearn demo``: the end-to-end demo on synthetic faces (``faceunlearn.demo``)."""

from __future__ import annotations

import argparse
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    from faceunlearn import demo as library  # imports Lightning and torch: only when the command runs

    parser = argparse.ArgumentParser(prog="faceunlearn demo", description=library.__doc__.splitlines()[0])
    parser.add_argument("--finetune-config", default="configs/demo_finetune.yaml")
    parser.add_argument("--configs", nargs="+", default=["configs/demo_disp_paper.yaml", "configs/demo_disp.yaml"],
                        help="the unlearning configs, one row each (default: the paper's recipe, then the selected configuration)")
    parser.add_argument("--methods", nargs="+", default=None,
                        help="their names in the results table (default: 'Dispersion (paper recipe)', 'Dispersion (selected)')")
    parser.add_argument("--out", default="lightning_logs/demo", help="folder for results.csv and results.md")
    parser.add_argument("--retrain", action="store_true", help="train the Original model even if its checkpoint exists")
    args = parser.parse_args(argv)
    methods = args.methods or (["Dispersion (paper recipe)", "Dispersion (selected)"] if args.configs == parser.get_default("configs")
                               else [Path(config).stem for config in args.configs])
    library.run_demo(args.finetune_config, args.configs, args.out, methods, args.retrain)


if __name__ == "__main__":
    main()
