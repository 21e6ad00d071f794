"""IJB-B → split "distractor" (stills tagged "still", video frames tagged "frame").

The paper extends its galleries with IJB-B stills and frames as distractors (SPEC §5). Two layouts
are read; the one present in ROOT (or ROOT/IJBB) is used.

**insightface IJB package** (``IJB_release/IJBB``, faces pre-cropped, landmarks included):

* ``loose_crop/<n>.jpg``: one loosely cropped face per row of the files below.
* ``meta/ijbb_name_5pts_score.txt`` (required): ``<n>.jpg x1 y1 x2 y2 x3 y3 x4 y4 x5 y5 score``,
  five points in the crop's pixels (the ArcFace order). They align the face: no detector needed.
* ``meta/ijbb_face_tid_mid.txt`` (optional): ``<n>.jpg <TEMPLATE_ID> <MEDIA_ID>``.
* ``meta/`` or ``protocol/`` ``ijbb_1N_gallery_S1.csv``, ``ijbb_1N_gallery_S2.csv``,
  ``ijbb_1N_probe_mixed.csv`` (optional, header row): columns ``TEMPLATE_ID``, ``SUBJECT_ID``,
  ``FILENAME`` (``img/<k>.jpg`` or ``frame/<k>.png``) and ``SIGHTING_ID`` are read.

  Identity: the template's SUBJECT_ID from those CSVs; a template they do not list is its own
  identity ("template:<id>"); without ``ijbb_face_tid_mid.txt`` every face is its own identity
  ("face:<n>") and has tag "".
  Tag: the FILENAME folder (``img/`` → still, ``frame/`` → frame) of the CSV rows with the same
  TEMPLATE_ID and SIGHTING_ID = MEDIA_ID; where that does not decide, a media with several faces
  in one template is a video ("frame"), a single face a "still". meta.json counts which rule
  tagged how many faces (``tag_source``).

  The package lists a face once per template that uses it (227,630 rows for ~76,800 images).
  Rows with the same MEDIA_ID and identical landmark/score text are the same crop and are kept
  once (``--keep-duplicates`` keeps all); meta.json records how many were dropped.

**Official IJB-B release** (full images; faces given as boxes, so ``--detector`` is required):

* ``img/<k>.jpg`` (stills) and ``frame/<k>.png`` (video frames);
* ``protocol/ijbb_1N_gallery_S1.csv``, ``ijbb_1N_gallery_S2.csv``, ``ijbb_1N_probe_mixed.csv``
  (those present; at least one): columns ``SUBJECT_ID``, ``FILENAME`` (or ``FILE``), ``FACE_X``,
  ``FACE_Y``, ``FACE_WIDTH``, ``FACE_HEIGHT``. One record per (FILENAME, SUBJECT_ID), with its first
  box; the detector runs on the box enlarged 2× and keeps the face nearest its centre. Tag from
  the FILENAME folder.

Identity names in meta.json are the SUBJECT_IDs ("123").
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from faceunlearn.prepare.annotations import csv_rows, expect_fields, malformed, parse_numbers, split_lines
from faceunlearn.prepare.errors import PrepareError
from faceunlearn.prepare.records import RecordsBuilder, SourceRecords

NAME = "ijbb"
HELP = "IJB-B (insightface IJB package or the official release) → distractor still/frame"
LAYOUT = """\
  insightface IJB package (ROOT = IJB_release/IJBB):
    ROOT/loose_crop/1.jpg ...
    ROOT/meta/ijbb_name_5pts_score.txt     1.jpg x1 y1 x2 y2 x3 y3 x4 y4 x5 y5 score
    ROOT/meta/ijbb_face_tid_mid.txt        1.jpg <TEMPLATE_ID> <MEDIA_ID>                       (optional)
    ROOT/meta/ijbb_1N_gallery_S1.csv, ijbb_1N_gallery_S2.csv, ijbb_1N_probe_mixed.csv  (optional: subjects)
  or the official IJB-B release (needs --detector):
    ROOT/img/<k>.jpg, ROOT/frame/<k>.png
    ROOT/protocol/ijbb_1N_gallery_S1.csv, ijbb_1N_gallery_S2.csv, ijbb_1N_probe_mixed.csv
        TEMPLATE_ID,SUBJECT_ID,FILENAME,SIGHTING_ID,FACE_X,FACE_Y,FACE_WIDTH,FACE_HEIGHT,..."""
PROTOCOL_CSVS = ("ijbb_1N_gallery_S1.csv", "ijbb_1N_gallery_S2.csv", "ijbb_1N_probe_mixed.csv")
TAG_OF_FOLDER = {"img": "still", "frame": "frame"}
BOX_COLUMNS = ("FACE_X", "FACE_Y", "FACE_WIDTH", "FACE_HEIGHT")


def add_arguments(parser) -> None:
    parser.add_argument(
        "--keep-duplicates", action="store_true",
        help="insightface package: keep every row, also the same crop listed again for another template",
    )


def _resolve_root(root: Path) -> Path:
    if not (root / "loose_crop").is_dir() and not (root / "protocol").is_dir() and (root / "IJBB").is_dir():
        return root / "IJBB"
    return root


def _read_protocol(path: Path, needed: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """Rows of an IJB-B protocol CSV as ``(line, {column: value})``; FILE is read as FILENAME."""
    rows = csv_rows(path)
    header = next(rows, None)
    columns = [name.upper() for name in header[1]] if header else []
    columns = ["FILENAME" if name == "FILE" else name for name in columns]
    missing = [name for name in needed if name not in columns]
    if missing:
        raise malformed(path, header[0] if header else 1, f"header lacks column(s) {', '.join(missing)} (has {','.join(columns)})")
    result = []
    for line, fields in rows:
        if len(fields) < len(columns):
            fields = fields + [""] * (len(columns) - len(fields))
        row = dict(zip(columns, fields))
        for name in ("TEMPLATE_ID", "SUBJECT_ID", "SIGHTING_ID"):
            if name in needed and not row[name].isdigit():
                raise malformed(path, line, f"{name} {row[name]!r} is not a number")
        result.append((line, row))
    return result


def _folder_tag(path: Path, line: int, filename: str) -> str:
    folder = filename.split("/", 1)[0]
    if folder not in TAG_OF_FOLDER or "/" not in filename:
        raise malformed(path, line, f"FILENAME {filename!r} is not img/<k>.jpg or frame/<k>.png")
    return TAG_OF_FOLDER[folder]


def read(root: Path, args) -> SourceRecords:
    root = _resolve_root(root)
    if (root / "meta" / "ijbb_name_5pts_score.txt").is_file():
        return _read_insightface_package(root, args)
    if (root / "protocol").is_dir():
        return _read_official(root)
    raise PrepareError(
        f"ijbb: neither meta/ijbb_name_5pts_score.txt (insightface IJB package) nor protocol/ (official release) "
        f"found in {root}.\nExpected layout:\n{LAYOUT}"
    )


# -- insightface IJB package -----------------------------------------------------------------------
def _read_insightface_package(root: Path, args) -> SourceRecords:
    builder = RecordsBuilder(NAME, root)
    points_path = builder.read(root / "meta" / "ijbb_name_5pts_score.txt")
    faces = []  # (line, file, landmark text, landmarks)
    for line, fields in split_lines(points_path):
        if len(fields) not in (11, 12):
            expect_fields(points_path, line, fields, 12, "1.jpg x1 y1 x2 y2 x3 y3 x4 y4 x5 y5 score")
        faces.append((line, fields[0], " ".join(fields[1:]), parse_numbers(points_path, line, fields[1:11], "landmarks")))

    media = _read_template_media(builder, root / "meta" / "ijbb_face_tid_mid.txt", points_path, faces)
    subject_of, folders_of = _read_subjects(builder, root)
    group_sizes = Counter(media.values()) if media else Counter()
    notes = {"layout": "insightface IJB package", "tag_source": Counter(), "identity_source": Counter()}
    seen = set()
    duplicates = 0
    for line, name, text, points in faces:
        template, medium = media.get(name, (None, None))
        if medium is not None and not args.keep_duplicates:
            if (medium, text) in seen:
                duplicates += 1
                continue
            seen.add((medium, text))
        if template is None:
            identity, source = f"face:{name.rsplit('.', 1)[0]}", "face (no ijbb_face_tid_mid.txt)"
        elif template in subject_of:
            identity, source = subject_of[template], "SUBJECT_ID"
        else:
            identity, source = f"template:{template}", "TEMPLATE_ID (not in the 1:N CSVs)"
        tag, tag_source = _package_tag(template, medium, folders_of, group_sizes)
        notes["identity_source"][source] += 1
        notes["tag_source"][tag_source] += 1
        builder.add(f"loose_crop/{name}", identity, "distractor", tag, landmarks=points)
    notes = {key: dict(value) if isinstance(value, Counter) else value for key, value in notes.items()}
    notes["duplicate_rows_dropped"] = duplicates
    return builder.build(notes=notes)


def _read_template_media(builder, path: Path, points_path: Path, faces) -> dict[str, tuple[int, int]]:
    if not path.is_file():
        return {}
    builder.read(path)
    media = {}
    for line, fields in split_lines(path):
        expect_fields(path, line, fields, 3, "1.jpg <TEMPLATE_ID> <MEDIA_ID>")
        if not (fields[1].isdigit() and fields[2].isdigit()):
            raise malformed(path, line, f"TEMPLATE_ID and MEDIA_ID must be numbers: {' '.join(fields)!r}")
        media[fields[0]] = (int(fields[1]), int(fields[2]))
    for line, name, _, _ in faces:
        if name not in media:
            raise malformed(points_path, line, f"{name} has no line in {path}")
    return media


def _read_subjects(builder, root: Path) -> tuple[dict[int, str], dict[tuple[int, int], set[str]]]:
    """TEMPLATE_ID → SUBJECT_ID, and (TEMPLATE_ID, SIGHTING_ID) → tags of its FILENAMEs."""
    subject_of, folders_of = {}, defaultdict(set)
    for name in PROTOCOL_CSVS:
        path = next((root / folder / name for folder in ("meta", "protocol") if (root / folder / name).is_file()), None)
        if path is None:
            continue
        rows = _read_protocol(builder.read(path), ("TEMPLATE_ID", "SUBJECT_ID", "FILENAME"))
        for line, row in rows:
            template = int(row["TEMPLATE_ID"])
            if subject_of.setdefault(template, row["SUBJECT_ID"]) != row["SUBJECT_ID"]:
                raise malformed(path, line, f"template {template} belongs to subjects {subject_of[template]} and {row['SUBJECT_ID']}")
            if row.get("SIGHTING_ID", "").isdigit():
                folders_of[template, int(row["SIGHTING_ID"])].add(_folder_tag(path, line, row["FILENAME"]))
    return subject_of, folders_of


def _package_tag(template, medium, folders_of, group_sizes) -> tuple[str, str]:
    if template is None:
        return "", "no ijbb_face_tid_mid.txt: tag left empty"
    tags = folders_of.get((template, medium), set())
    if len(tags) == 1:
        return next(iter(tags)), "FILENAME folder"
    if group_sizes[template, medium] > 1:
        return "frame", "several faces per media: frame"
    return "still", "one face per media: still"


# -- official release --------------------------------------------------------------------------------
def _read_official(root: Path) -> SourceRecords:
    builder = RecordsBuilder(NAME, root)
    paths = [root / "protocol" / name for name in PROTOCOL_CSVS if (root / "protocol" / name).is_file()]
    if not paths:
        raise PrepareError(
            f"ijbb: none of {', '.join(PROTOCOL_CSVS)} found in {root / 'protocol'}.\nExpected layout:\n{LAYOUT}"
        )
    seen = set()
    for path in paths:
        for line, row in _read_protocol(builder.read(path), ("SUBJECT_ID", "FILENAME") + BOX_COLUMNS):
            key = (row["FILENAME"], row["SUBJECT_ID"])
            tag = _folder_tag(path, line, row["FILENAME"])
            if key in seen:
                continue
            seen.add(key)
            box = None
            if all(row[name] for name in BOX_COLUMNS):
                x, y, w, h = parse_numbers(path, line, [row[name] for name in BOX_COLUMNS], "face box")
                box = np.array([x, y, x + w, y + h], dtype=np.float32)
            builder.add(row["FILENAME"], row["SUBJECT_ID"], "distractor", tag, box=box)
    return builder.build(
        landmark_note="the official IJB-B release gives face boxes, not 5-point landmarks",
        notes={"layout": "official IJB-B release"},
    )
