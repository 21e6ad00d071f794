"""``faceunlearn sweep``: method configs × forget sets from one Original, resumable (``faceunlearn.experiments.sweep``)."""

from __future__ import annotations

import argparse
import shlex

from faceunlearn.experiments import sweep as library


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="faceunlearn sweep", description=library.__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(library.__doc__.splitlines()[1:]))
    parser.add_argument("--configs", nargs="+", required=True, help="one unlearning config per method (FineTune configs are left out)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="forget-set seeds (default: 0 1 2, the paper's three forget sets)")
    parser.add_argument("--finetune-config", default=None,
                        help="trains (or reuses) the Original model every run starts from; default none: the configs' own model.init_args.init_weights")
    parser.add_argument("--out", default="lightning_logs/sweep", help="the sweep folder: <out>/<config stem>/seed<K>/ per run")
    parser.add_argument("--override", default="", help='LightningCLI arguments for every run, one quoted string, e.g. "--trainer.max_epochs 2"')
    parser.add_argument("--finetune-override", default="", help="LightningCLI arguments for training the Original model")
    args = parser.parse_args(argv)
    library.sweep(args.configs, args.seeds, args.out, args.finetune_config, shlex.split(args.override),
                  shlex.split(args.finetune_override))


if __name__ == "__main__":
    main()
