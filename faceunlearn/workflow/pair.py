"""``faceunlearn.audit_models`` / ``faceunlearn audit --before A --after B``: the fair audit of any two recognizers,
whoever produced them, on your photo folders: the same tests and report as ``faceunlearn unlearn``'s, the same
attacker against both (``faceunlearn.audit``).

The people folder holds the forgotten people and people the after-model kept (membership inference, retain-only
relearning and the old-gallery mirror need kept people); ``--forget`` names folders in it, or gives their paths.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from faceunlearn.workflow.inputs import UnlearnInputError, aligned_folders, check_faces, check_request
from faceunlearn.io.shipped import configs_folder
from faceunlearn.workflow.run import RECIPE, data_overrides, model_overrides


def forget_names(people: str | Path | None, forget: list[str]) -> tuple[Path, list[str]]:
    """``--forget`` as names in ``people``, or as person folders (then ``people`` is their common parent)."""
    folders = [Path(entry) for entry in forget]
    if all(folder.is_dir() for folder in folders) and (people is None or len({f.resolve().parent for f in folders}) == 1):
        parents = {folder.resolve().parent for folder in folders}
        if len(parents) != 1:
            raise UnlearnInputError(f"--forget folders lie in {len(parents)} different folders: give them from one people folder")
        parent = parents.pop()
        if people is not None and Path(people).resolve() != parent:
            raise UnlearnInputError(f"--forget folders lie in {parent}, not in --people {people}")
        return parent, [folder.name for folder in folders]
    if people is None:
        raise UnlearnInputError("--forget gives names: say whose folder they are with --people DIR (or give person folders)")
    return Path(people), [str(entry) for entry in forget]


def audit_models(before: str, after: str, forget: list[str], people: str | Path | None = None,
                 heldout: str | Path | None = None, out: str | Path = "audit", *, aligned: bool | str | list[str] = False,
                 backbone: str | None = None, progress: bool = True) -> dict[str, dict[str, float]]:
    """Audit ``after`` against ``before`` for the people ``forget``; writes ``out/report.md``, ``audit.csv``, ``audit.md``,
    ``roc.png``; returns the report's numbers (``{label: {"before", "after", "chance"?}}``)."""
    from faceunlearn.audit import audit
    from faceunlearn.workflow.packs import pack_folder
    from faceunlearn.workflow.report import collect_audit, write_pair_report

    if heldout is None:
        raise UnlearnInputError("the audit compares the forgotten people with people neither model was unlearned on: "
                                "give them with --heldout DIR")
    people, names = forget_names(people, forget)
    request = check_request(people, names, heldout)
    aligned = aligned_folders(aligned)
    overrides = model_overrides(before, backbone)
    model_overrides(after, backbone)  # the same checks for the other file
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    seconds = {}
    started = time.perf_counter()
    packs = out / "packs"
    people_pack = pack_folder(people, packs, "train", "people" in aligned, progress)
    heldout_pack = pack_folder(heldout, packs, "holdout", "heldout" in aligned, progress) if heldout else None
    check_faces(request, people_pack.faces, heldout_pack.faces if heldout_pack else {})
    identity_names = json.loads((people_pack.root / "meta.json").read_text())["identity_names"]
    forget_ids = sorted(identity_names.index(name) for name in names)
    kept_faces = sum(n for name, n in people_pack.faces.items() if name not in names)
    seconds["detect"] = time.perf_counter() - started
    started = time.perf_counter()
    data = data_overrides(people_pack.root, heldout_pack.root if heldout_pack else None, forget_ids, kept_faces)
    after_weights = after if str(after) == "sface" else str(Path(after).resolve())
    audit(str(configs_folder() / RECIPE), None, out, overrides=[*overrides, *data], after_weights=after_weights,
          after_name="After", progress=progress)
    seconds["audit"] = time.perf_counter() - started
    facts = {"forget": len(names), "forget_faces": sum(people_pack.faces[name] for name in names),
             "kept": len(request.kept), "kept_faces": kept_faces, "heldout": len(request.heldout),
             "heldout_faces": sum(heldout_pack.faces.values()) if heldout_pack else 0,
             "skipped": len(people_pack.skipped) + (len(heldout_pack.skipped) if heldout_pack else 0)}
    return write_pair_report(out, collect_audit(out / "audit.csv", "After"), facts, seconds, before, after)
