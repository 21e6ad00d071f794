"""``faceunlearn unlearn`` / ``faceunlearn.unlearn``: remove people from your recognizer in one call.

Steps, each recorded in ``<out>/work/steps.json`` once done (a rerun skips it; the unlearning itself resumes like a
sweep), each timed:

1. **check**: the folders and names (``workflow.inputs``: unknown person, too few photos, forgotten and held out);
2. **detect**: detection and alignment of both folders (YuNet + insightface ``norm_crop``, or ``--aligned``), cached
   by content hash (``workflow.packs``); photos without a face are listed, not fatal;
3. **disjoint**: no forgotten person among the held-out people under another name (``faceunlearn.disjoint``);
4. **unlearn**: the Original's evaluation, the recommended recipe (``configs/own_disp.yaml``: the configuration
   selected on validation, batch sizes from the number of people) and the fair audit of before against after
   (``faceunlearn.audit``: the same attacker for both) — a one-seed ``faceunlearn sweep``;
5. **export**: ``<out>/model.onnx``, checked against onnxruntime before it appears (``faceunlearn.export``);
6. **purge**: every forget-set trace the run made (``faceunlearn.audit.purge``): the forget embeddings and the
   t-SNE, the forgotten people's CosFace head rows and optimiser state in every checkpoint (unless
   ``keep_resumable``), the aligned crops of the people folder and the disjointness report (it names people);
7. **report**: ``<out>/report.md`` (counts, never names), ``<out>/model_card.md``, ``<out>/roc.png``.

The forgotten people go into every config and checkpoint by pack identity id, and into ``steps.json`` as salted
hashes (``faceunlearn.data.salted_names``), never by name.
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from faceunlearn.data import salted_names
from faceunlearn.io.shipped import configs_folder
from faceunlearn.workflow.inputs import MIN_FORGET_PHOTOS, UnlearnInputError, aligned_folders, check_faces, check_request

#: the recipe every unlearn request runs (its header says where each value comes from)
RECIPE = "own_disp.yaml"
#: forget batches hold P people x K images; the recipe's P when at least that many are forgotten
PEOPLE_PER_BATCH, IMAGES_PER_PERSON, RETAIN_BATCH = 5, 4, 20
STEPS = ("check", "detect", "disjoint", "unlearn", "export", "purge", "report")


@dataclass
class UnlearnResult:
    """What ``unlearn`` made: the files, the before/after numbers (fractions) and each step's seconds."""

    model: Path
    report: Path
    model_card: Path
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


class _Steps:
    """``<out>/work/steps.json``: the steps done, their seconds and facts (written atomically after each)."""

    def __init__(self, work: Path, request: dict, forget: list[str]):
        self.path = work / "steps.json"
        state = json.loads(self.path.read_text()) if self.path.is_file() else {}
        # the names asked to forget are kept as salted hashes: enough to know a rerun asks the same, never the names
        stored = (state.get("request") or {}).get("forget")
        salt = stored.get("salt") if isinstance(stored, dict) else salted_names.new_salt()
        request = {**request, "forget": {"salt": salt, "sha256": sorted(salted_names.digest(name, salt) for name in forget)}}
        if state.get("request") not in (None, request):
            raise UnlearnInputError(f"{work.parent} holds another request's run (other model, people or options): "
                                    f"use a new --out")
        self.state = {"request": request, "done": state.get("done", {})}

    def done(self, step: str) -> dict | None:
        return self.state["done"].get(step)

    def record(self, step: str, seconds: float, **facts) -> dict:
        from faceunlearn.io.atomic import write_text_atomic

        self.state["done"][step] = {"seconds": seconds, **facts}
        write_text_atomic(self.path, json.dumps(self.state, indent=1) + "\n")
        return self.state["done"][step]


def _say(message: str) -> None:
    print(f"[unlearn] {message}", flush=True)


def model_overrides(model: str, backbone: str | None) -> list[str]:
    """LightningCLI arguments that make the recipe start from ``model`` (an ONNX file, ``sface``, or a ``.pth``)."""
    if str(model) != "sface" and not Path(model).is_file():
        raise UnlearnInputError(f"--model {model}: no such file (an ONNX recognizer, an insightface .pth with --backbone, or 'sface')")
    weights = model if str(model) == "sface" else str(Path(model).resolve())
    if str(model).endswith((".pth", ".pt", ".ckpt")):
        if backbone is None:
            raise UnlearnInputError(f"--model {model} is a PyTorch file: name its architecture with --backbone (e.g. iresnet50)")
        return ["--model.init_args.init_weights", weights, "--model.init_args.backbone", backbone]
    if backbone not in (None, "onnx"):
        raise UnlearnInputError(f"--backbone {backbone} goes with a .pth file; an ONNX model brings its own architecture")
    return ["--model.init_args.init_weights", weights]


def data_overrides(people_pack: Path, heldout_pack: Path | None, forget_ids: list[int], num_kept_faces: int) -> list[str]:
    """The recipe's data section for this request: the packs, the forgotten ids, batch sizes from the head count."""
    people = min(PEOPLE_PER_BATCH, len(forget_ids))
    args = ["--data.root", str(people_pack), "--data.forget_identities", json.dumps(forget_ids),
            "--data.batch_size", str(people * IMAGES_PER_PERSON), "--data.images_per_identity", str(IMAGES_PER_PERSON),
            "--data.retain_batch_size", str(min(RETAIN_BATCH, num_kept_faces))]
    if heldout_pack is None:
        args += ["--data.extra_sources", "null", "--evaluation", str(configs_folder() / "protocols/own_evaluation_no_heldout.yaml")]
    else:
        args += ["--data.extra_sources", json.dumps({"heldout": str(heldout_pack)})]
    return args


def unlearn(model: str, people: str | Path, forget: list[str], heldout: str | Path | None = None, out: str | Path = "unlearned",
            *, aligned: bool | str | list[str] = False, backbone: str | None = None, audit: bool = True, keep_resumable: bool = False,
            disjoint_threshold: float | None = None, progress: bool = True) -> UnlearnResult:
    """Unlearn ``forget`` (folder names under ``people``) from ``model``; see the module doc. Raises
    ``UnlearnInputError`` (one line) on bad input, before anything is written where possible. ``disjoint_threshold``:
    the centroid cosine above which a forgotten and a held-out person count as one (default: the one measured for
    SFace, ``faceunlearn.disjoint.check.DEFAULT_THRESHOLD``; calibrate yours with ``faceunlearn check-disjoint --calibrate``)."""
    out = Path(out)
    forget = [str(name) for name in forget]
    if audit and heldout is None:
        raise UnlearnInputError("the audit compares the forgotten people with people nobody trained on: give them with "
                                "--heldout DIR (or skip the audit with --no-audit)")
    request = check_request(people, forget, heldout)  # 1. nothing is written before the folders pass
    aligned = aligned_folders(aligned)
    overrides = model_overrides(model, backbone)
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    steps = _Steps(work, {"model": str(Path(model).resolve()) if Path(model).exists() else str(model), "people": str(Path(people).resolve()),
                          "heldout": str(Path(heldout).resolve()) if heldout else None, "aligned": sorted(aligned),
                          "backbone": backbone, "audit": audit}, forget)
    seconds = {}
    started = time.perf_counter()
    steps.record("check", time.perf_counter() - started, people=len(request.people), forget=len(forget),
                 heldout=len(request.heldout))
    seconds["check"] = steps.done("check")["seconds"]

    from faceunlearn.workflow.packs import pack_folder

    detect = steps.done("detect")
    # after the purge the people pack is gone on purpose: the steps that read it are done
    if detect is None or (steps.done("purge") is None and not Path(detect["people_pack"]).is_dir()):
        started = time.perf_counter()
        _say(f"2/7 detect and align the photos of {len(request.people)} people"
             + (f" and {len(request.heldout)} held-out people" if request.heldout else ""))
        packs = work / "packs"
        people_pack = pack_folder(people, packs, "train", "people" in aligned, progress)
        heldout_pack = pack_folder(heldout, packs, "holdout", "heldout" in aligned, progress) if heldout else None
        check_faces(request, people_pack.faces, heldout_pack.faces if heldout_pack else {})
        skipped = people_pack.skipped + (heldout_pack.skipped if heldout_pack else [])
        for path, reason in skipped:
            _say(f"   no usable face, left out: {path} ({reason})")
        names = json.loads((people_pack.root / "meta.json").read_text())["identity_names"]
        detect = steps.record("detect", time.perf_counter() - started, people_pack=str(people_pack.root),
                              heldout_pack=str(heldout_pack.root) if heldout_pack else None,
                              forget_ids=sorted(names.index(name) for name in forget),
                              faces=sum(people_pack.faces.values()), heldout_faces=sum(heldout_pack.faces.values()) if heldout_pack else 0,
                              kept_faces=sum(n for name, n in people_pack.faces.items() if name not in forget),
                              forget_faces=sum(people_pack.faces[name] for name in forget), skipped=len(skipped))
    seconds["detect"] = detect["seconds"]
    heldout_pack = Path(detect["heldout_pack"]) if detect["heldout_pack"] else None
    data = data_overrides(Path(detect["people_pack"]), heldout_pack, detect["forget_ids"], detect["kept_faces"])
    config = str(configs_folder() / RECIPE)

    disjoint = steps.done("disjoint")
    if disjoint is None:
        started = time.perf_counter()
        _say("3/7 check that no forgotten person is among the held-out people" if heldout_pack else "3/7 no held-out people: nothing to check")
        facts = _check_disjoint(model, backbone, Path(detect["people_pack"]), heldout_pack, detect["forget_ids"], work,
                                disjoint_threshold) if heldout_pack else {}
        disjoint = steps.record("disjoint", time.perf_counter() - started, **facts)
    seconds["disjoint"] = disjoint["seconds"]

    runs = work / "runs"
    if steps.done("unlearn") is None:
        started = time.perf_counter()
        _say("4/7 evaluate the model, unlearn, " + ("and audit before against after" if audit else "evaluate again"))
        from faceunlearn.experiments.sweep import sweep

        quiet = [] if progress else ["--trainer.enable_progress_bar", "false"]  # not part of the run's settings
        specs = sweep([config], [0], str(runs), overrides=[*overrides, *data, *quiet], audit=audit)
        method = next(spec for spec in specs if spec.kind == "method")
        original = next(spec.run_dir for spec in specs if spec.kind == "original")
        seconds_of = {name: json.loads((folder / "done.json").read_text()).get("seconds") for name, folder in
                      (("evaluate before", original), ("unlearn 100 steps + evaluate", method.run_dir))}
        steps.record("unlearn", time.perf_counter() - started, run_dir=str(method.run_dir), original_dir=str(original),
                     parts=seconds_of)
    unlearned = steps.done("unlearn")
    parts = {name: value for name, value in unlearned["parts"].items() if value is not None}
    seconds.update(parts)  # the Original's evaluation and the run; the rest of the step is the audit (if any)
    seconds["audit" if audit else "unlearn (rest)"] = max(0.0, unlearned["seconds"] - sum(parts.values()))
    run_dir = Path(unlearned["run_dir"])

    model_path = out / "model.onnx"
    if steps.done("export") is None or not model_path.is_file():
        started = time.perf_counter()
        _say(f"5/7 export {model_path} (checked against onnxruntime before it appears)")
        from faceunlearn.export import export_onnx

        result = export_onnx(str(run_dir / "checkpoints/last.ckpt"), str(model_path), overwrite=True)
        steps.record("export", time.perf_counter() - started, min_cosine=result["min_cosine"],
                     megabytes=model_path.stat().st_size / 2**20)
    seconds["export"] = steps.done("export")["seconds"]

    if steps.done("purge") is None:
        started = time.perf_counter()
        _say("6/7 purge what the run kept of the forgotten people")
        removed = purge_traces(work, detect["forget_ids"], keep_resumable)
        steps.record("purge", time.perf_counter() - started, removed=removed)
    seconds["purge"] = steps.done("purge")["seconds"]

    from faceunlearn.workflow.report import write_report

    started = time.perf_counter()
    _say("7/7 write the report and the model card")
    seconds["report"] = 0.0
    metrics = write_report(out, steps.state["done"], Path(unlearned["original_dir"]), run_dir, audit, seconds,
                           keep_resumable)
    seconds["report"] = steps.record("report", time.perf_counter() - started)["seconds"]
    result = UnlearnResult(model_path, out / "report.md", out / "model_card.md", metrics, seconds)
    _say(f"done in {sum(seconds.values()):.0f} s: {result.model}, {result.report}, {result.model_card}")
    return result


def _check_disjoint(model, backbone, people_pack: Path, heldout_pack: Path, forget_ids: list[int], work: Path,
                    threshold: float | None) -> dict:
    """``faceunlearn check-disjoint`` of the forgotten ids against the held-out pack; refuses an overlap."""
    import csv
    import sys

    from faceunlearn.disjoint.arguments import build_parser
    from faceunlearn.disjoint.check import run

    report = work / "disjoint.csv"
    argv = ["--forget-data", str(people_pack), "--forget-identities", *map(str, forget_ids), "--against",
            f"heldout={heldout_pack}", "--model", str(model), "--report", str(report)]
    argv += ["--backbone", backbone] if backbone else []
    args = build_parser().parse_args(argv + (["--threshold", str(threshold)] if threshold is not None else []))
    status = run(args)
    with report.open() as handle:
        rows = list(csv.DictReader(handle))
    highest = max((float(row["cosine"]) for row in rows), default=float("nan"))
    if status:
        raise UnlearnInputError(f"a person to forget looks like a held-out person (centroid cosine {highest:.2f} >= "
                                f"{args.threshold}; details in {report}): the same person under two names cannot be both "
                                f"forgotten and kept")
    print(f"[unlearn]    highest cosine between a forgotten and a held-out person: {highest:.2f} (threshold {args.threshold})",
          file=sys.stderr)
    return {"highest_cosine": highest, "threshold": args.threshold}


def purge_traces(work: Path, forget_ids: list[int], keep_resumable: bool) -> list[str]:
    """Remove what the run holds of the forgotten people (see the module doc); returns what was done."""
    from faceunlearn.audit import purge as library

    runs = work / "runs"
    done = [] if keep_resumable else library.purge_checkpoints(runs, forget_ids)
    done += library.purge(runs)
    for pack in (work / "packs").glob("train-*"):  # the people folder's crops: the forgotten people's faces
        shutil.rmtree(pack)
        done.append(f"removed {pack} (aligned crops of the people folder)")
    for report in (work / "disjoint.csv",):  # names the forgotten people
        if report.exists():
            report.unlink()
            done.append(f"removed {report}")
    return done


__all__ = ["MIN_FORGET_PHOTOS", "UnlearnInputError", "UnlearnResult", "unlearn"]
