"""``faceunlearn audit``: verification, identification and attacks of one run against the Original and Retrain (``faceunlearn.audit``)."""

from __future__ import annotations

import argparse
import shlex

#: relearning attack step counts and lr grid (faceunlearn.audit.RELEARN_STEPS, RELEARN_LRS; not imported here: it
#: loads torch; tests/test_audit.py checks the copies agree)
RELEARN_STEPS = (10, 50, 100)
RELEARN_LRS = (1e-5, 1e-4, 1e-3)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="faceunlearn audit", description=__doc__.splitlines()[0],
                                     epilog="the tests and their definitions: faceunlearn.audit's docstring")
    parser.add_argument("--config", required=True, help="the run's config (its init_weights is the Original)")
    parser.add_argument("--model", "--ckpt_path", dest="ckpt_path", required=True,
                        help="the unlearned model's checkpoint (e.g. checkpoints/<run>/last.ckpt); --ckpt_path: the old name")
    parser.add_argument("--retrain", default=None, help="the Retrain reference's checkpoint for the same forget set (faceunlearn retrain)")
    parser.add_argument("--out", default=None, help="folder for audit.csv, audit.md and roc.png (default: the checkpoint's folder's parent/audit)")
    parser.add_argument("--override", default="", help='LightningCLI arguments, one quoted string, e.g. "--data.seed 1"')
    parser.add_argument("--relearn-steps", type=int, nargs="+", default=list(RELEARN_STEPS), help="relearning attack step counts")
    parser.add_argument("--relearn-lrs", type=float, nargs="+", default=list(RELEARN_LRS),
                        help="the relearning attacker's lr grid, the same for every audited model; the strongest per step "
                             f"count is reported (default {' '.join(f'{lr:g}' for lr in RELEARN_LRS)})")
    args = parser.parse_args(argv)
    from pathlib import Path

    from faceunlearn import audit as library

    out = args.out or str(Path(args.ckpt_path).resolve().parent.parent / "audit")
    try:
        library.audit(args.config, args.ckpt_path, out, args.retrain, shlex.split(args.override), tuple(args.relearn_steps),
                      tuple(args.relearn_lrs))
    except library.AuditInputError as error:
        raise SystemExit(f"faceunlearn audit: {error}") from None


if __name__ == "__main__":
    main()
