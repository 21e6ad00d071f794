"""CFP (Celebrities in Frontal-Profile) → split "holdout", tags "frontal" / "profile".

Read: ``ROOT/Data/Images/<id>/frontal/*.jpg`` (10 per identity) and ``.../profile/*.jpg`` (4 per
identity), 500 identities named "001".."500". CFP ships no 5-point landmarks (its ``Data/Fiducials``
are not the five ArcFace points and are not read), so every face is found by ``--detector``,
which picks the largest, most central face in each image. These identities are the CFP-FP
retention benchmark (profile queries against the frontal gallery; SPEC §5) and never become
CosFace classes.
"""

from __future__ import annotations

from pathlib import Path

from faceunlearn.prepare.annotations import require_folder
from faceunlearn.prepare.datasets.listing import list_images, subfolders
from faceunlearn.prepare.errors import PrepareError
from faceunlearn.prepare.records import RecordsBuilder, SourceRecords

NAME = "cfp"
HELP = "CFP (Data/Images/<id>/{frontal,profile}/) → holdout frontal/profile; needs --detector"
LAYOUT = """\
  ROOT/Data/Images/001/frontal/01.jpg ... 10.jpg
  ROOT/Data/Images/001/profile/01.jpg ... 04.jpg
  ... up to ROOT/Data/Images/500/"""
TAGS = ("frontal", "profile")


def add_arguments(parser) -> None:
    pass


def read(root: Path, args) -> SourceRecords:
    images = require_folder(root, ("Data/Images", "Images"), NAME, LAYOUT)
    builder = RecordsBuilder(NAME, root)
    for identity in subfolders(images):
        for tag in TAGS:
            folder = images / identity / tag
            if folder.is_dir():
                for path in list_images(root, folder):
                    builder.add(path, identity, "holdout", tag)
    if not builder.paths:
        raise PrepareError(f"cfp: no images in {images}/<id>/frontal/ or .../profile/.\nExpected layout:\n{LAYOUT}")
    return builder.build(landmark_note="CFP has no 5-point landmarks")
