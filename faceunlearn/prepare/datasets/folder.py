"""Any identity-per-folder dataset: ``ROOT/<identity>/[<tag>/]<image>``.

* Identity = the first folder below ROOT; every image below it (any depth) belongs to it. If the
  folder right above an image is named ``frontal``, ``profile``, ``still`` or ``frame``, that is
  the image's tag, otherwise the tag is "".
* Images: every 8-bit format Pillow or OpenCV decodes, by extension (``.jpg .png .bmp .gif .webp
  .tif .pgm .ppm`` … , see ``listing.IMAGE_EXTENSIONS``); greyscale, palette, RGBA and 16-bit images
  become 3-channel RGB.
* All images go to ``--split`` (train, holdout or distractor; default train).
* ``--landmarks CSV``: ``path,x1,y1,x2,y2,x3,y3,x4,y4,x5,y5`` per line, ``path`` relative to ROOT,
  points in the order left eye, right eye, nose, left mouth corner, right mouth corner (image-left
  first). A first line starting with ``path`` is a header. Rows whose image is missing are reported
  as missing files; images without a row need ``--detector``.
* ``--detector yunet`` (or a detector ONNX file): find the five landmarks of images without a row,
  e.g. loose crops such as ORL's 92×112 greyscale PGMs (YuNet upscales small images itself).
* ``--aligned``: the images are aligned 112×112 faces already (e.g. an insightface ``imgs/``
  export); they are copied as they are, and any other size is reported as skipped.

Identity names in meta.json are the folder names.
"""

from __future__ import annotations

from pathlib import Path

from faceunlearn.data.packed import SPLITS
from faceunlearn.prepare.annotations import csv_rows, expect_fields, malformed, parse_numbers
from faceunlearn.prepare.datasets.listing import list_images, subfolders
from faceunlearn.prepare.errors import PrepareError
from faceunlearn.prepare.records import RecordsBuilder, SourceRecords

NAME = "folder"
HELP = "ROOT/<identity>/<image> folders, with a landmarks CSV, --detector (yunet or FILE.onnx) or --aligned"
LAYOUT = """\
  ROOT/<identity>/<image>.jpg ...   (or .png, .bmp, .gif, .webp, .tif, .pgm, .ppm, ...)
  ROOT/<identity>/<frontal|profile|still|frame>/<image>.jpg ...   (optional tag folders)"""
FOLDER_TAGS = ("frontal", "profile", "still", "frame")


def add_arguments(parser) -> None:
    parser.add_argument("--landmarks", default=None, help="CSV path,x1,y1,...,x5,y5 (paths relative to --root)")
    parser.add_argument("--aligned", action="store_true", help="images are aligned 112x112 faces already: copy them as they are")
    parser.add_argument("--split", default="train", choices=SPLITS, help="split of every image (default: train)")


def _read_landmarks(path: Path) -> dict[str, object]:
    landmarks = {}
    for line, fields in csv_rows(path):
        if line == 1 and fields[0].lower() == "path":
            continue
        expect_fields(path, line, fields, 11, "alice/001.jpg,x1,y1,x2,y2,x3,y3,x4,y4,x5,y5")
        name = Path(fields[0]).as_posix()
        if "/" not in name:
            raise malformed(path, line, f"{name!r} is not <identity>/<image> relative to --root")
        if name in landmarks:
            raise malformed(path, line, f"{name} is listed twice")
        landmarks[name] = parse_numbers(path, line, fields[1:], "landmark coordinates")
    return landmarks


def read(root: Path, args) -> SourceRecords:
    if args.aligned and args.landmarks:
        raise PrepareError("folder: --aligned copies aligned faces as they are; it cannot be combined with --landmarks")
    builder = RecordsBuilder(NAME, root)
    landmarks = {}
    if args.landmarks:
        csv_path = Path(args.landmarks)
        if not csv_path.is_file():
            raise PrepareError(f"folder: --landmarks file {csv_path} not found")
        landmarks = _read_landmarks(builder.read(csv_path))
    paths = set()
    for identity in subfolders(root):
        paths.update(list_images(root, root / identity))
    if not paths and not landmarks:
        raise PrepareError(f"folder: no images found in {root}.\nExpected layout:\n{LAYOUT}")
    for path in sorted(paths | set(landmarks)):
        parts = path.split("/")
        tag = parts[-2] if len(parts) > 2 and parts[-2] in FOLDER_TAGS else ""
        builder.add(path, parts[0], args.split, tag, landmarks=landmarks.get(path))
    note = f"they have no row in {args.landmarks}" if args.landmarks else "no --landmarks CSV was given"
    return builder.build(landmark_note=f"{note} (or pass --aligned if they are aligned 112x112 crops already)", aligned=args.aligned)
