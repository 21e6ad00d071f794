"""``faceunlearn audit``: verification, identification and attacks of one run against the Original and Retrain (``faceunlearn.audit``)."""

from __future__ import annotations

import argparse
import shlex

#: relearning attack step counts and lr (faceunlearn.audit.RELEARN_STEPS, RELEARN_LR; not imported here: it loads torch)
RELEARN_STEPS = (10, 50, 100)
RELEARN_LR = 1e-4


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="faceunlearn audit", description=__doc__.splitlines()[0],
                                     epilog="the tests and their definitions: faceunlearn.audit's docstring")
    parser.add_argument("--config", required=True, help="the run's config (its init_weights is the Original)")
    parser.add_argument("--ckpt_path", required=True, help="the unlearned model's checkpoint (e.g. checkpoints/<run>/last.ckpt)")
    parser.add_argument("--retrain", default=None, help="the Retrain reference's checkpoint for the same forget set (faceunlearn retrain)")
    parser.add_argument("--out", default=None, help="folder for audit.csv, audit.md and roc.png (default: the checkpoint's folder's parent/audit)")
    parser.add_argument("--override", default="", help='LightningCLI arguments, one quoted string, e.g. "--data.seed 1"')
    parser.add_argument("--relearn-steps", type=int, nargs="+", default=list(RELEARN_STEPS), help="relearning attack step counts")
    parser.add_argument("--relearn-lr", type=float, default=RELEARN_LR,
                        help=f"the relearning attacker's lr, the same for every audited model (default {RELEARN_LR:g})")
    args = parser.parse_args(argv)
    from pathlib import Path

    from faceunlearn import audit as library

    out = args.out or str(Path(args.ckpt_path).resolve().parent.parent / "audit")
    library.audit(args.config, args.ckpt_path, out, args.retrain, shlex.split(args.override), tuple(args.relearn_steps),
                  args.relearn_lr)


if __name__ == "__main__":
    main()
