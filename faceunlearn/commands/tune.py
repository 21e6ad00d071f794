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
    parser.add_argument("--objectives", nargs="+", default=list(library.DEFAULT_OBJECTIVES), choices=list(library.OBJECTIVES),
                        help="what the study optimises, each in its direction (default: forget_mAP retention_mAP)")
    parser.add_argument("--constraint", action="append", default=[],
                        help="NAME<=VALUE or NAME>=VALUE, repeatable; VALUE absolute, 0.5x (x the Original's) or -0.01d "
                             "(the Original's + VALUE)")
    parser.add_argument("--pick", default="retention_mAP", choices=list(library.OBJECTIVES),
                        help="the pick rule: the best by this among the feasible Pareto-front trials (default retention_mAP)")
    parser.add_argument("--forget-ratio", type=float, default=0.5,
                        help="adds the constraint forget_mAP<=RATIOx (default 0.5; 1 for none)")
    parser.add_argument("--relearn-steps", type=int, default=100, help="the relearn_mAP objective's attack length (default 100)")
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
    try:
        constraints = [library.parse_constraint(text) for text in args.constraint]
    except ValueError as error:
        parser.error(str(error))
    library.tune(args.config, params, args.seeds, args.trials, args.out, args.retention,
                 None if args.forget_ratio == 1 else args.forget_ratio, shlex.split(args.override), args.storage,
                 args.study_name, args.sampler_seed, args.sampler, args.objectives, constraints, args.pick, args.relearn_steps)


if __name__ == "__main__":
    main()
