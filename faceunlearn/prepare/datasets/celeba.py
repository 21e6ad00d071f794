"""CelebA in its official layout → split "train" (the forget/retain pool of the CelebA protocol).

Files read (each may sit in ROOT or in the official archive's ``Anno/``, ``Eval/``, ``Img/`` folders):

* ``identity_CelebA.txt``: ``000001.jpg 2880`` (image, identity number); the list of images.
* ``list_eval_partition.txt``: ``000001.jpg 0`` (0 train, 1 val, 2 test). The paper fine-tunes
  and unlearns on the training partition, so by default only partition 0 is converted;
  ``--partitions train,val,test`` converts more (all into split "train"). CelebA's partitions are
  identity-disjoint.
* ``list_landmarks_align_celeba.txt`` (for ``img_align_celeba/``) or ``list_landmarks_celeba.txt``
  (for the in-the-wild ``img_celeba/``): line 1 the image count, line 2 the header
  ``lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x
  rightmouth_y``, then ``000001.jpg 69 109 106 113 77 142 73 152 108 154``. "left" is image-left,
  the order of the ArcFace template, so these five points align the face directly: no detector.

Identity names in meta.json are CelebA's identity numbers ("2880").
"""

from __future__ import annotations

from pathlib import Path

from faceunlearn.prepare.annotations import expect_fields, malformed, parse_numbers, require_file, split_lines
from faceunlearn.prepare.errors import PrepareError
from faceunlearn.prepare.records import RecordsBuilder, SourceRecords

NAME = "celeba"
HELP = "CelebA (official layout, landmarks included) → split train"
LAYOUT = """\
  ROOT/img_align_celeba/000001.jpg ...   (or ROOT/img_celeba/ with list_landmarks_celeba.txt; ROOT/Img/... also works)
  ROOT/identity_CelebA.txt               000001.jpg 2880
  ROOT/list_eval_partition.txt           000001.jpg 0
  ROOT/list_landmarks_align_celeba.txt   202599 / header line / 000001.jpg 69 109 106 113 77 142 73 152 108 154
  (the .txt files may also sit in ROOT/Anno/ and ROOT/Eval/, as in the official archive)"""
ANNOTATION_FOLDERS = ("", "Anno", "Eval", "Img")
IMAGE_FOLDERS = ("", "Img")
#: (image folder, its landmark file, image file extension)
VARIANTS = (
    ("img_align_celeba", "list_landmarks_align_celeba.txt", ".jpg"),
    ("img_align_celeba_png", "list_landmarks_align_celeba.txt", ".png"),
    ("img_celeba", "list_landmarks_celeba.txt", ".jpg"),
)
LANDMARK_HEADER = "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y".split()
PARTITIONS = {"train": 0, "val": 1, "test": 2}


def add_arguments(parser) -> None:
    parser.add_argument(
        "--partitions", default="train",
        help="comma-separated CelebA partitions to convert, all into split 'train' (default: train; also val, test)",
    )


def _image_folder(root: Path) -> tuple[str, str, str]:
    for folder, landmark_file, extension in VARIANTS:
        for parent in IMAGE_FOLDERS:
            if (root / parent / folder).is_dir():
                return (Path(parent) / folder).as_posix(), landmark_file, extension
    names = " or ".join(folder for folder, _, _ in VARIANTS)
    raise PrepareError(f"celeba: image folder {names} not found in {root}.\nExpected layout:\n{LAYOUT}")


def _read_pairs(path: Path, value_name: str) -> dict[str, tuple[int, str]]:
    """``image -> (line, value)`` of a two-column file; an image listed twice is an error."""
    pairs = {}
    for line, fields in split_lines(path):
        expect_fields(path, line, fields, 2, f"000001.jpg <{value_name}>")
        if fields[0] in pairs:
            raise malformed(path, line, f"{fields[0]} is listed twice (first on line {pairs[fields[0]][0]})")
        pairs[fields[0]] = (line, fields[1])
    return pairs


def _read_landmarks(path: Path) -> dict[str, object]:
    lines = split_lines(path)
    first = next(lines, None)
    if first is None or len(first[1]) != 1 or not first[1][0].isdigit():
        raise malformed(path, first[0] if first else 1, "line 1 must be the number of images")
    declared = int(first[1][0])
    header = next(lines, None)
    if header is None or [name.lower() for name in header[1]] != LANDMARK_HEADER:
        raise malformed(path, header[0] if header else 2, f"line 2 must be the header {' '.join(LANDMARK_HEADER)!r}")
    landmarks = {}
    for line, fields in lines:
        expect_fields(path, line, fields, 11, "000001.jpg 69 109 106 113 77 142 73 152 108 154")
        if fields[0] in landmarks:
            raise malformed(path, line, f"{fields[0]} is listed twice")
        landmarks[fields[0]] = parse_numbers(path, line, fields[1:], "landmark coordinates")
    if len(landmarks) != declared:
        raise PrepareError(f"{path}: line 1 declares {declared} images but the file lists {len(landmarks)} (truncated download?)")
    return landmarks


def read(root: Path, args) -> SourceRecords:
    wanted = [name.strip() for name in args.partitions.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in PARTITIONS]
    if unknown or not wanted:
        raise PrepareError(f"celeba: --partitions {args.partitions!r}: choose from {', '.join(PARTITIONS)}")
    codes = {str(PARTITIONS[name]) for name in wanted}
    folder, landmark_name, extension = _image_folder(root)
    builder = RecordsBuilder(NAME, root)
    identity_path = builder.read(require_file(root, "identity_CelebA.txt", ANNOTATION_FOLDERS, NAME, LAYOUT))
    partition_path = builder.read(require_file(root, "list_eval_partition.txt", ANNOTATION_FOLDERS, NAME, LAYOUT))
    landmark_path = builder.read(require_file(root, landmark_name, ANNOTATION_FOLDERS, NAME, LAYOUT))
    identities = _read_pairs(identity_path, "identity")
    partitions = _read_pairs(partition_path, "partition")
    landmarks = _read_landmarks(landmark_path)
    for image, (line, partition) in partitions.items():
        if partition not in ("0", "1", "2"):
            raise malformed(partition_path, line, f"partition {partition!r} is not 0, 1 or 2")
    for image, (line, identity) in identities.items():
        if not identity.isdigit():
            raise malformed(identity_path, line, f"identity {identity!r} is not a number")
        if image not in partitions:
            raise malformed(identity_path, line, f"{image} is not listed in {partition_path}")
        if partitions[image][1] not in codes:
            continue
        stem = image.rsplit(".", 1)[0]
        builder.add(f"{folder}/{stem}{extension}", identity, "train", landmarks=landmarks.get(image))
    return builder.build(landmark_note=f"they have no line in {landmark_path}")
