"""``faceunlearn audit``: verification, identification and attacks of an unlearned model against the Original (and Retrain);
or of any two recognizers on your photo folders (``--before A --after B``, ``faceunlearn.workflow.pair``)."""

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
    run = parser.add_argument_group("a faceunlearn run (--config and --model)")
    run.add_argument("--config", help="the run's config (its init_weights is the Original)")
    run.add_argument("--model", "--ckpt_path", dest="ckpt_path",
                     help="the unlearned model's checkpoint (e.g. checkpoints/<run>/last.ckpt); --ckpt_path: the old name")
    pair = parser.add_argument_group("any two recognizers, whoever produced them (--before and --after)")
    pair.add_argument("--before", help="the recognizer before unlearning: an ONNX file, a .pth (with --backbone) or 'sface'")
    pair.add_argument("--after", help="the recognizer after unlearning (same kinds)")
    pair.add_argument("--forget", nargs="+", help="the forgotten people: person folders, or folder names in --people")
    pair.add_argument("--people", help="folder of person folders: the forgotten people and people the after-model kept")
    pair.add_argument("--heldout", help="folder of person folders neither model was unlearned on")
    pair.add_argument("--aligned", nargs="*", choices=("people", "heldout"), default=None, metavar="FOLDER",
                       help="the photos are aligned 112x112 ArcFace crops (no detection): all folders, or only those named "
                            "(people, heldout)")
    pair.add_argument("--backbone", help="the architecture of .pth models, e.g. iresnet50")
    parser.add_argument("--retrain", default=None, help="the Retrain reference's checkpoint for the same forget set (faceunlearn retrain)")
    parser.add_argument("--out", default=None, help="folder for audit.csv, audit.md and roc.png (default: the checkpoint's folder's parent/audit)")
    parser.add_argument("--override", default="", help='LightningCLI arguments, one quoted string, e.g. "--data.seed 1"')
    parser.add_argument("--relearn-steps", type=int, nargs="+", default=list(RELEARN_STEPS), help="relearning attack step counts")
    parser.add_argument("--relearn-lrs", type=float, nargs="+", default=list(RELEARN_LRS),
                        help="the relearning attacker's lr grid, the same for every audited model; the strongest per step "
                             f"count is reported (default {' '.join(f'{lr:g}' for lr in RELEARN_LRS)})")
    args = parser.parse_args(argv)
    from pathlib import Path

    if args.before or args.after:
        if args.config or args.ckpt_path:
            parser.error("--before/--after audit two recognizers; --config/--model audit a run: not both")
        if not (args.before and args.after and args.forget):
            parser.error("--before, --after and --forget go together")
        from faceunlearn.workflow.inputs import UnlearnInputError, aligned_option
        from faceunlearn.workflow.pair import audit_models

        try:
            audit_models(args.before, args.after, args.forget, args.people, args.heldout, args.out or "audit",
                         aligned=aligned_option(args.aligned), backbone=args.backbone)
        except UnlearnInputError as error:
            raise SystemExit(f"faceunlearn audit: error: {error}") from None
        return
    if not (args.config and args.ckpt_path):
        parser.error("give --config and --model (a run), or --before, --after and --forget (two recognizers)")
    from faceunlearn import audit as library

    out = args.out or str(Path(args.ckpt_path).resolve().parent.parent / "audit")
    try:
        library.audit(args.config, args.ckpt_path, out, args.retrain, shlex.split(args.override), tuple(args.relearn_steps),
                      tuple(args.relearn_lrs))
    except library.AuditInputError as error:
        raise SystemExit(f"faceunlearn audit: {error}") from None


if __name__ == "__main__":
    main()
