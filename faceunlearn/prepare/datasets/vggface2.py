"""VGGFace2: training identities → split "train", the 500 test identities → split "holdout".

Files read, per part (``train`` and/or ``test``, ``--parts``):

* images ``ROOT/<part>/<class id>/<image id>_<face id>.jpg`` (e.g. ``train/n000002/0001_01.jpg``);
* ``ROOT/bb_landmark/loose_landmark_<part>.csv`` (or ``ROOT/loose_landmark_<part>.csv``): header
  ``NAME_ID,P1X,P1Y,P2X,P2Y,P3X,P3Y,P4X,P4Y,P5X,P5Y``, rows ``"n000002/0001_01",x1,y1,...,x5,y5``.
  NAME_ID is the image path without extension; P1..P5 are MTCNN's left eye, right eye, nose, left
  and right mouth corner in the loosely cropped image, the order of the ArcFace template.

Every image on disk and every CSV row is a record: a CSV row without its image is reported as a
missing file, an image without a CSV row needs ``--detector``.

Splits: ``train`` identities form the training split (the VGGFace2 forget scenario draws its
forget identities there). The ``test`` identities go to "holdout" with tag "": they are the
VGGFace2 test retention benchmark (SPEC §5) and never become CosFace classes. The pack does not
divide them into the benchmark's per-identity query and gallery halves (the format has no tag
for that); whoever evaluates must draw the halves, e.g. seeded like D_f^train / D_f^test. Being
tagged "", they stay out of ``holdout_frontal`` / ``holdout_profile`` when evaluated beside CFP.
Identity names are the class ids ("n000002").
"""

from __future__ import annotations

from pathlib import Path

from faceunlearn.prepare.annotations import csv_rows, expect_fields, malformed, parse_numbers, require_file
from faceunlearn.prepare.datasets.listing import list_images
from faceunlearn.prepare.errors import PrepareError
from faceunlearn.prepare.records import RecordsBuilder, SourceRecords

NAME = "vggface2"
HELP = "VGGFace2 (train/ and test/ identity folders + bb_landmark CSVs) → train / holdout"
LAYOUT = """\
  ROOT/train/n000002/0001_01.jpg ...             (training identities → split train)
  ROOT/test/n000001/0001_01.jpg ...              (test identities → split holdout)
  ROOT/bb_landmark/loose_landmark_train.csv      NAME_ID,P1X,P1Y,...,P5X,P5Y / "n000002/0001_01",x1,y1,...,x5,y5
  ROOT/bb_landmark/loose_landmark_test.csv"""
SPLIT_OF_PART = {"train": "train", "test": "holdout"}
HEADER = ["NAME_ID"] + [f"P{i}{axis}" for i in range(1, 6) for axis in "XY"]


def add_arguments(parser) -> None:
    parser.add_argument("--parts", default="train,test", help="comma-separated parts to convert (default: train,test)")


def _read_landmarks(path: Path) -> dict[str, object]:
    rows = csv_rows(path)
    header = next(rows, None)
    if header is None or [name.upper() for name in header[1]] != HEADER:
        raise malformed(path, header[0] if header else 1, f"line 1 must be the header {','.join(HEADER)}")
    landmarks = {}
    for line, fields in rows:
        expect_fields(path, line, fields, 11, '"n000002/0001_01",x1,y1,...,x5,y5')
        name = fields[0]
        if name.count("/") != 1:
            raise malformed(path, line, f"NAME_ID {name!r} is not <class id>/<image id>")
        if name in landmarks:
            raise malformed(path, line, f"{name} is listed twice")
        landmarks[name] = parse_numbers(path, line, fields[1:], "landmark coordinates")
    return landmarks


def read(root: Path, args) -> SourceRecords:
    parts = [part.strip() for part in args.parts.split(",") if part.strip()]
    if not parts or any(part not in SPLIT_OF_PART for part in parts):
        raise PrepareError(f"vggface2: --parts {args.parts!r}: choose from train, test")
    builder = RecordsBuilder(NAME, root)
    for part in parts:
        if not (root / part).is_dir():
            raise PrepareError(f"vggface2: image folder {root / part} not found.\nExpected layout:\n{LAYOUT}")
        csv_path = builder.read(require_file(root, f"loose_landmark_{part}.csv", ("bb_landmark", ""), NAME, LAYOUT))
        landmarks = _read_landmarks(csv_path)
        on_disk = {path.rsplit(".", 1)[0][len(part) + 1 :]: path for path in list_images(root, root / part)}
        for key in sorted(set(on_disk) | set(landmarks)):
            if "/" not in key:
                continue  # an image directly in <part>/, outside any identity folder
            path = on_disk.get(key, f"{part}/{key}.jpg")
            identity = key.split("/", 1)[0]
            builder.add(path, identity, SPLIT_OF_PART[part], landmarks=landmarks.get(key))
    return builder.build(landmark_note="they have no row in bb_landmark/loose_landmark_<part>.csv")
