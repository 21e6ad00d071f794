"""One ``faceunlearn prepare`` job: the parsed options → records → plan → detector → ``convert``.

``prepare(args)`` reads the raw dataset with its reader (``datasets``), plans the records
(``plan``), opens the detector the options name (``detector``) and runs the converter (``run``),
returning its ``Summary``. The arguments themselves are defined in ``faceunlearn.commands.prepare``.
"""

from __future__ import annotations

from pathlib import Path

from faceunlearn.prepare.datasets import READERS
from faceunlearn.prepare.detector import YUNET, DetectorSpec, check_detector_path, detector_kind
from faceunlearn.prepare.errors import PrepareError
from faceunlearn.prepare.plan import make_plan
from faceunlearn.prepare.run import Summary, convert

#: arguments that change how a run goes, not what it produces (left out of the resume check)
RUN_ONLY = {"dataset", "root", "out", "workers", "checkpoint_every", "restart", "no_progress", "detector", "det_size", "det_thresh", "device"}


def prepare(args) -> Summary:
    """Convert ``args.root`` into the pack ``args.out``; ``args``: the parsed ``faceunlearn prepare`` arguments."""
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
    return convert(
        plan,
        args.out,
        detector,
        workers=args.workers,
        checkpoint_every=args.checkpoint_every,
        progress=not args.no_progress,
        restart=args.restart,
    )


def run(argv: list[str] | None = None) -> Summary:
    """``faceunlearn prepare`` without the exit handling: parse ``argv``, run the job, print and return its summary."""
    from faceunlearn.prepare.arguments import build_parser

    summary = prepare(build_parser().parse_args(argv))
    print("\n".join(summary.lines()))
    return summary
