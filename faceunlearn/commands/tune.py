"""``faceunlearn tune``: a method's settings chosen with Optuna on validation forget sets (``faceunlearn.experiments.tune``)."""

from __future__ import annotations

import argparse
import math
import shlex

from faceunlearn.experiments import tune as library  # Optuna is imported by tune() itself


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="faceunlearn tune", description=library.__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=library.__doc__.split("\n", 1)[1])
    parser.add_argument("--config", required=True, help="the method config to tune")
    parser.add_argument("--param", action="append", default=[], help="KEY=SPEC, repeatable (see below)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[100, 101, 102], help="validation forget sets (default 100 101 102)")
    parser.add_argument("--trials", type=int, default=10, help="trials this process runs (default 10)")
    parser.add_argument("--retention", nargs="+", required=True, help="validation retention benchmarks (their mean mAP)")
    parser.add_argument("--forget-ratio", type=float, default=0.5, help="forget mAP must be <= this × the Original's (default 0.5)")
    parser.add_argument("--out", required=True, help="folder for originals/, trial_<n>/, trials.csv and best.yaml")
    parser.add_argument("--override", default="", help="LightningCLI arguments for every run, one quoted string")
    parser.add_argument("--storage", help="Optuna RDB storage URL shared by processes (default: in memory)")
    parser.add_argument("--study-name", help="default tune_<config stem>")
    parser.add_argument("--sampler-seed", type=int, default=0, help="sampler seed (default 0)")
    parser.add_argument("--sampler", choices=("tpe", "grid"), default="tpe",
                        help="Optuna's TPE (default) or a grid over choice: params")
    args = parser.parse_args(argv)
    try:
        params = [library.parse_param(text) for text in args.param]
    except ValueError as error:
        parser.error(str(error))
    if not math.isfinite(args.forget_ratio) or not 0 < args.forget_ratio <= 1:
        parser.error(f"--forget-ratio must be in (0, 1], got {args.forget_ratio}")
    library.tune(args.config, params, args.seeds, args.trials, args.out, args.retention, args.forget_ratio,
                 shlex.split(args.override), args.storage, args.study_name, args.sampler_seed, args.sampler)


if __name__ == "__main__":
    main()
