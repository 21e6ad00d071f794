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
    parser.add_argument("--retrain", action="store_true",
                        help="also train and evaluate the Retrain reference per forget set (the finetune config's recipe without D_f)")
    parser.add_argument("--audit", action="store_true",
                        help="then `faceunlearn audit` every finished method run into <run>/audit/ (against Retrain with --retrain)")
    parser.add_argument("--relearn-lrs", type=float, nargs="+", default=None,
                        help="with --audit: the relearning attacker's lr grid for every model (default faceunlearn.audit.RELEARN_LRS, "
                             "1e-5 1e-4 1e-3); a resumed sweep whose audits used another stops before auditing")
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs at once, each in its own process (one GPU each, round-robin; on a CPU, cores // jobs threads each)")
    parser.add_argument("--launcher", choices=("processes", "submitit"), default="processes",
                        help="processes (default, this machine) or submitit: one SLURM job array task per run")
    parser.add_argument("--slurm-partition", default=None, help="submitit: the SLURM partition")
    parser.add_argument("--slurm-time", type=int, default=120, help="submitit: minutes per run (default 120)")
    parser.add_argument("--slurm-gpus", type=int, default=1, help="submitit: GPUs per run (default 1)")
    parser.add_argument("--slurm-array-parallelism", type=int, default=32, help="submitit: array tasks at once")
    args = parser.parse_args(argv)
    from faceunlearn.experiments import launch

    if args.launcher == "submitit":
        slurm = {"timeout_min": args.slurm_time, "gpus_per_node": args.slurm_gpus, "slurm_array_parallelism": args.slurm_array_parallelism}
        if args.slurm_partition:
            slurm["slurm_partition"] = args.slurm_partition
        launcher = launch.submitit_array(f"{args.out}/.submitit", **slurm)
    else:
        launcher = launch.processes(args.jobs)
    library.sweep(args.configs, args.seeds, args.out, args.finetune_config, shlex.split(args.override),
                  shlex.split(args.finetune_override), launcher=launcher, retrain=args.retrain, audit=args.audit,
                  relearn_lrs=args.relearn_lrs)


if __name__ == "__main__":
    main()
