"""``faceunlearn compare``: every method on one forget set, the paper's Tables 1 and 2 (``faceunlearn.experiments.compare``)."""

from __future__ import annotations

import argparse
import shlex

from faceunlearn.experiments import compare as library
from faceunlearn.experiments.compare import DEFAULT_CONFIGS, DEMO_FINETUNE


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="faceunlearn compare", description=library.__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS, help="one unlearning config per method")
    parser.add_argument("--finetune-config", default=None,
                        help="trains the Original model if its checkpoint is missing; 'none': the configs' own init_weights "
                             f"(default: {DEMO_FINETUNE} with the default demo configs, else none)")
    parser.add_argument("--out", default="lightning_logs/compare", help="folder for the runs, results.csv and results.md")
    parser.add_argument("--seed", type=int, default=None, help="the forget-set seed (default: data.seed of the first config)")
    parser.add_argument("--override", default="", help='LightningCLI arguments for every unlearning run, one quoted string, e.g. "--trainer.max_epochs 2"')
    parser.add_argument("--finetune-override", default="", help="LightningCLI arguments for the Original model's run")
    args = parser.parse_args(argv)
    if args.finetune_config is None:  # the demo configs start from the demo's Original; others from their init_weights
        args.finetune_config = DEMO_FINETUNE if args.configs == DEFAULT_CONFIGS else "none"
    library.run_compare(args.configs, args.finetune_config, args.out, shlex.split(args.override),
                        shlex.split(args.finetune_override), args.seed)


if __name__ == "__main__":
    main()
