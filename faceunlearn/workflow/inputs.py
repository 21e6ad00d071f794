"""What ``faceunlearn unlearn`` refuses, each with one line: the people folders and the names to forget.

Checked twice: on the folders (names, photo files) before anything runs, and on the packs (faces found)
once detection is done, since a photo without a face does not count.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

#: photos a forgotten person needs: D_f^train and D_f^test keep 2 each (faceunlearn.data.splits.split_forget_images)
MIN_FORGET_PHOTOS = 4
#: photos anyone else needs: a query and a gallery half
MIN_PHOTOS = 2
#: people who stay (trained on as retain identities, measured as "kept"): retention needs a few
MIN_KEPT_PEOPLE = 2


class UnlearnInputError(ValueError):
    """Bad input to ``faceunlearn unlearn`` (the message is one line)."""


#: the folders whose photos may be aligned crops already (the rest go through detection and alignment)
FOLDERS = ("people", "heldout")


def aligned_folders(aligned: bool | str | list[str] | tuple[str, ...] | None) -> frozenset[str]:
    """Which of ``FOLDERS`` hold aligned 112x112 crops: ``True`` all, ``False``/``None`` none, or their names."""
    if aligned is True:
        return frozenset(FOLDERS)
    if not aligned:
        return frozenset()
    names = frozenset([aligned] if isinstance(aligned, str) else aligned)
    if not names <= set(FOLDERS):
        raise UnlearnInputError(f"aligned= names folders among {', '.join(FOLDERS)}, got {', '.join(sorted(names - set(FOLDERS)))}")
    return names


def aligned_option(values: list[str] | None) -> bool | list[str]:
    """The command line's ``--aligned [FOLDER ...]``: alone, every folder; with names, those; absent, none."""
    return values if values else values is not None


@dataclass(frozen=True)
class Request:
    """A checked request: the people folder's persons (folder name → photo files), who is forgotten, held out."""

    people: dict[str, int]
    forget: tuple[str, ...]
    heldout: dict[str, int]

    @property
    def kept(self) -> list[str]:
        return [name for name in self.people if name not in self.forget]


def photo_counts(folder: str | Path, what: str) -> dict[str, int]:
    """Photo files per person folder of ``folder`` (the layout ``faceunlearn prepare folder`` reads)."""
    from faceunlearn.prepare.datasets.listing import IMAGE_EXTENSIONS

    folder = Path(folder)
    if not folder.is_dir():
        raise UnlearnInputError(f"{what} {folder}: no such folder (expected {folder}/<person>/<photo>)")
    counts = {person.name: sum(1 for path in person.rglob("*") if path.suffix.lower() in IMAGE_EXTENSIONS)
              for person in sorted(folder.iterdir()) if person.is_dir() and not person.name.startswith(".")}
    if not counts:
        raise UnlearnInputError(f"{what} {folder} has no person folders (expected {folder}/<person>/<photo>)")
    return counts


def _listed(names, limit: int = 8) -> str:
    names = list(names)
    return ", ".join(names[:limit]) + (f", … ({len(names)} in all)" if len(names) > limit else "")


def check_request(people: str | Path, forget: list[str], heldout: str | Path | None = None) -> Request:
    """The request as given, before any photo is read: every line of ``UnlearnInputError`` names the fix."""
    counts = photo_counts(people, "--people")
    if not forget:
        raise UnlearnInputError("--forget names nobody: give the folder names of the people to forget")
    repeated = [name for name, n in Counter(forget).items() if n > 1]
    if repeated:
        raise UnlearnInputError(f"--forget names {_listed(repeated)} more than once")
    unknown = [name for name in forget if name not in counts]
    if unknown:
        raise UnlearnInputError(f"unknown person {_listed(unknown)}: no such folder in {people} (its people: {_listed(counts)})")
    few = [f"{name} ({counts[name]})" for name in forget if counts[name] < MIN_FORGET_PHOTOS]
    if few:
        raise UnlearnInputError(f"too few photos of {_listed(few)}: a person to forget needs at least {MIN_FORGET_PHOTOS} "
                                f"(half to unlearn, half to check)")
    kept = [name for name in counts if name not in forget]
    if len(kept) < MIN_KEPT_PEOPLE:
        raise UnlearnInputError(f"{people} holds {len(kept)} people besides those to forget: at least {MIN_KEPT_PEOPLE} are "
                                f"needed, whose recognition the unlearning keeps (and measures)")
    held = photo_counts(heldout, "--heldout") if heldout is not None else {}
    both = [name for name in forget if name in held]
    if both:
        raise UnlearnInputError(f"{_listed(both)} is both to forget (--forget) and held out ({heldout}): a held-out person "
                                f"must stay recognisable; remove one of the two")
    return Request(counts, tuple(forget), held)


def check_faces(request: Request, faces: dict[str, int], heldout_faces: dict[str, int]) -> None:
    """After detection: the faces found per person must still meet the minimums (photos without a face do not count)."""
    few = [f"{name} ({faces.get(name, 0)} of {request.people[name]} photos)" for name in request.forget
           if faces.get(name, 0) < MIN_FORGET_PHOTOS]
    if few:
        raise UnlearnInputError(f"too few faces found for {_listed(few)}: a person to forget needs at least "
                                f"{MIN_FORGET_PHOTOS} photos with a detectable face")
    kept = [name for name in request.kept if faces.get(name, 0) >= MIN_PHOTOS]
    if len(kept) < MIN_KEPT_PEOPLE:
        raise UnlearnInputError(f"only {len(kept)} of the people to keep have {MIN_PHOTOS}+ photos with a face: at least "
                                f"{MIN_KEPT_PEOPLE} are needed")
    if request.heldout and sum(n >= MIN_PHOTOS for n in heldout_faces.values()) < 1:
        raise UnlearnInputError(f"no held-out person has {MIN_PHOTOS}+ photos with a face")
