"""Photo folders → packs of aligned faces (``faceunlearn prepare folder``), cached by content: a pack is named by
the SHA-256 of the folder's photos (relative paths and bytes) and the options that shape it, so an interrupted
or repeated ``faceunlearn unlearn`` detects and aligns each folder once, and a changed photo makes a new pack."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from faceunlearn.prepare.datasets.listing import IMAGE_EXTENSIONS


@dataclass(frozen=True)
class Pack:
    root: Path
    #: faces packed per person (folder name)
    faces: dict[str, int]
    #: photos without a usable face: (path relative to the folder, reason)
    skipped: list[tuple[str, str]]
    reused: bool


def folder_digest(folder: str | Path, options: dict) -> str:
    """SHA-256 over the options and every photo's relative path and bytes, in sorted order."""
    folder = Path(folder)
    digest = hashlib.sha256(repr(sorted(options.items())).encode())
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def pack_folder(folder: str | Path, cache: str | Path, split: str, aligned: bool, progress: bool = True) -> Pack:
    """The pack of ``folder`` under ``cache`` (made, or found from an earlier run with the same photos)."""
    from faceunlearn.prepare.job import run as prepare
    from faceunlearn.data.packed import PackedFaces

    folder = Path(folder)
    options = {"split": split, "aligned": aligned, "detector": None if aligned else "yunet"}
    root = Path(cache) / f"{split}-{folder_digest(folder, options)[:20]}"
    reused = (root / "meta.json").is_file()
    if not reused:  # an interrupted one resumes from <root>.partial (prepare's own resume)
        argv = ["folder", "--root", str(folder), "--out", str(root), "--split", split]
        argv += ["--aligned"] if aligned else ["--detector", "yunet"]
        prepare(argv + ([] if progress else ["--no-progress"]))
    pack = PackedFaces.open(root)
    names = pack.meta.get("identity_names")
    ids, counts = _unique(pack.identities)
    name_of = (lambda i: names[i]) if isinstance(names, list) else (lambda i: (names or {}).get(str(i), f"id{i}"))
    return Pack(root, {name_of(int(i)): int(n) for i, n in zip(ids, counts)}, skipped_photos(root, folder), reused)


def _unique(values):
    import numpy as np

    return np.unique(values, return_counts=True)


def skipped_photos(root: Path, folder: Path) -> list[tuple[str, str]]:
    """The photos ``prepare`` left out (``skipped.tsv``: no face found, undecodable, …), relative to ``folder``."""
    from faceunlearn.prepare.run import SKIP_REPORT

    report = root / SKIP_REPORT
    if not report.is_file():
        return []
    rows = [line.split("\t") for line in report.read_text().splitlines()[1:] if line]
    out = []
    for _, path, reason in rows:
        try:
            path = str(Path(path).relative_to(folder.resolve()))
        except ValueError:
            pass
        out.append((path, reason))
    return out
