"""Leave no copies of the forgotten behind: find and remove the forget identities' data in run folders.

A "forget me" request is also a deletion request. By default a fit keeps no embedding of a forget
identity (``RunFiles.keep_forget_embeddings``); runs made with it on, or before it existed, may hold:

* embedding snapshots ``embeddings/step<N>.pt`` with a ``forget`` subset or rows of forget identities;
* TensorBoard projector copies of them (``<step:05d>/<tag>/tensors.tsv``, listed in ``projector_config.pbtxt``);
* the t-SNE figure drawn from them (``figures/tsne.png``).

``forget_data_files`` lists them (``faceunlearn audit`` prints the list for the audited run);
``purge`` rewrites the snapshots without those rows (atomically), deletes the projector copies and
their entries, and redraws (or deletes) the t-SNE figure. The forget identities of a run are read
from its ``done.json`` (``forget_identities``, written by ``faceunlearn sweep``) and from the
snapshots' own ``forget`` subset. ``purge_pack`` blanks a pack's crops of given identities.

Checkpoints hold no images or embeddings, but the CosFace head keeps one weight row per training
identity, forget identities included: a class centroid, imprinted from the Original's embeddings
(real protocols) or trained on them, so a template of the person in the Original's embedding space.
By default it stays (``faceunlearn audit`` reports it): resuming, the forget benchmarks' head accuracy
and the relearning attack read it. ``purge_checkpoints`` (``purge --checkpoints``) zeroes those rows
in every checkpoint and drops the optimiser state (its momentum holds the same rows' gradients), so a
purged checkpoint serves inference, evaluation and export but no longer resumes.
"""
from __future__ import annotations

import json
import pickle
import re
import shutil
from pathlib import Path

import torch

from faceunlearn.io import run_folder
from faceunlearn.callbacks.snapshots import projector_folder, without_identities

PROJECTOR_CONFIG = "projector_config.pbtxt"
_BLOCK = re.compile(r"embeddings \{.*?\}\n?", re.S)


def _done_forget_identities(run_dir: Path) -> set[int]:
    done = run_dir / "done.json"
    if done.is_file():
        return {int(i) for i in json.loads(done.read_text()).get("forget_identities", [])}
    return set()


def _forget_labels(run_dir: Path, snapshots: dict) -> set[int]:
    labels = _done_forget_identities(run_dir)
    for snapshot in snapshots.values():
        if "forget" in snapshot:
            labels |= {int(label) for label in snapshot["forget"]["labels"].tolist()}
    return labels


def _subsets_with_forget_rows(snapshot: dict, labels: set[int]) -> list[str]:
    return [name for name, data in snapshot.items()
            if name == "forget" or any(int(label) in labels for label in data["labels"].unique().tolist())]


def _events_with_tag(path: Path, tag: str) -> tuple[list[bytes], int]:
    """A TensorBoard event file's records without the summaries tagged ``tag``, and how many it dropped."""
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto import event_pb2

    kept, dropped = [], 0
    for record in RawEventFileLoader(str(path)).Load():
        event = event_pb2.Event.FromString(record)
        if event.HasField("summary") and any(value.tag == tag for value in event.summary.value):
            values = [value for value in event.summary.value if value.tag != tag]
            dropped += 1
            if not values:
                continue
            del event.summary.value[:]
            event.summary.value.extend(values)
            record = event.SerializeToString()
        kept.append(record)
    return kept, dropped


def _tsne_event_files(run_dir: Path) -> list[Path]:
    """The run's TensorBoard event files holding the t-SNE image (drawn from forget embeddings)."""
    from faceunlearn.figures.tsne import TAG

    return [path for path in sorted(run_dir.glob("events.out.tfevents.*")) if _events_with_tag(path, TAG)[1]]


def _rewrite_events(path: Path, records: list[bytes]) -> None:
    """Write ``records`` as the event file ``path``, atomically (TFRecord framing, TensorBoard's own writer)."""
    from tensorboard.summary.writer.record_writer import RecordWriter

    from faceunlearn.io.atomic import atomic_path

    with atomic_path(path) as temporary:
        with open(temporary, "wb") as handle:
            writer = RecordWriter(handle)
            for record in records:
                writer.write(record)
            handle.flush()


def forget_data_files(run_dir: str | Path) -> list[tuple[Path, str]]:
    """``(path, what)`` of every file of the run that holds forget-set data."""
    run_dir = Path(run_dir)
    snapshots = {step: run_folder.load_snapshot(path) for step, path in run_folder.list_snapshots(run_dir).items()}
    labels = _forget_labels(run_dir, snapshots)
    found = []
    for step, snapshot in snapshots.items():
        subsets = _subsets_with_forget_rows(snapshot, labels)
        if subsets:
            found.append((run_folder.snapshot_path(run_dir, step), f"embeddings of forget identities ({', '.join(subsets)})"))
            for name in subsets:
                folder = run_dir / f"{step:05d}" / projector_folder(name)
                if folder.is_dir():
                    found.append((folder, "TensorBoard projector copy of those embeddings"))
    if found and (run_dir / run_folder.FIGURES / "tsne.png").is_file():
        found.append((run_dir / run_folder.FIGURES / "tsne.png", "t-SNE figure drawn from those embeddings"))
    if found:
        found += [(path, "TensorBoard event file holding that t-SNE image") for path in _tsne_event_files(run_dir)]
    return found


def purge(root: str | Path, dry_run: bool = False) -> list[str]:
    """Remove the forget identities' data from every run folder under ``root``; returns what was done."""
    done = []
    for run_dir in run_folder.find_run_dirs(root):
        files = forget_data_files(run_dir)
        if not files:
            continue
        if dry_run:
            done += [f"would remove {what}: {path}" for path, what in files]
            continue
        snapshots = {step: run_folder.load_snapshot(path) for step, path in run_folder.list_snapshots(run_dir).items()}
        labels = _forget_labels(run_dir, snapshots)
        removed_folders = []
        for step, snapshot in snapshots.items():
            subsets = _subsets_with_forget_rows(snapshot, labels)
            if not subsets:
                continue
            kept = without_identities({name: data for name, data in snapshot.items() if name != "forget"},
                                      torch.tensor(sorted(labels), dtype=torch.long))
            path = run_folder.snapshot_path(run_dir, step)
            run_folder.save_snapshot(path, kept)
            done.append(f"rewrote {path} without the embeddings of {len(labels)} forget identities ({', '.join(subsets)})")
            for name in subsets:
                folder = run_dir / f"{step:05d}" / projector_folder(name)
                if folder.is_dir():
                    shutil.rmtree(folder)
                    removed_folders.append(f"{step:05d}/{projector_folder(name)}/")
                    done.append(f"deleted {folder} (TensorBoard projector copy)")
        config = run_dir / PROJECTOR_CONFIG
        if removed_folders and config.is_file():
            text = config.read_text()
            kept_text = "".join(block for block in _BLOCK.findall(text)
                                if not any(f'"{folder}' in block for folder in removed_folders))
            from faceunlearn.io.atomic import write_text_atomic

            write_text_atomic(config, kept_text)
            done.append(f"rewrote {config} without the deleted projector entries")
        from faceunlearn.figures.tsne import TAG

        for events in _tsne_event_files(run_dir):
            records, dropped = _events_with_tag(events, TAG)
            _rewrite_events(events, records)
            done.append(f"rewrote {events} without its {dropped} t-SNE image(s)")
        figure = run_dir / run_folder.FIGURES / "tsne.png"
        if figure.is_file():
            figure.unlink()
            done.append(f"deleted {figure} (drawn from forget embeddings)")
            try:
                from faceunlearn.figures.tsne import write_tsne

                if write_tsne(run_dir) is not None:
                    done.append(f"redrew {figure} from the purged snapshots")
            except ImportError:
                pass
    return done


#: recorded in a purged checkpoint: the identities whose head rows were zeroed
PURGED_KEY = "purged_forget_identities"


def _checkpoint_forget_identities(path: Path, checkpoint: dict) -> set[int]:
    """The forget identities of the run that wrote ``checkpoint``: recorded in it by its DataModule
    (``FaceDataModule.state_dict``), else in its run folder's ``done.json`` (``<run>/checkpoints/*.ckpt``,
    a sweep's layout; checkpoints from before the DataModule recorded them)."""
    from faceunlearn.data.forget_set import ForgetSet

    recorded = ForgetSet.recorded(checkpoint)
    return set(recorded) if recorded else _done_forget_identities(path.parent.parent)


def _load_checkpoint(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as error:  # unreadable, truncated or not a torch file
        raise SystemExit(f"faceunlearn purge: cannot read checkpoint {path}: {error}; nothing changed")


def _head_rows(checkpoint: dict, path: Path, labels: set[int] | list[int]) -> torch.Tensor:
    """The checkpoint's CosFace head weight, after checking that every label has a row."""
    head = checkpoint.get("state_dict", {}).get("head.weight") if isinstance(checkpoint, dict) else None
    if not isinstance(head, torch.Tensor):
        raise SystemExit(f"faceunlearn purge: {path} has no CosFace head (state_dict['head.weight']); nothing changed")
    outside = sorted(label for label in labels if not 0 <= label < head.shape[0])
    if outside:
        raise SystemExit(f"faceunlearn purge: identities {outside} have no row in the head of {path} "
                         f"({head.shape[0]} classes); nothing changed")
    return head


def purge_checkpoints(root: str | Path, identities: list[int] | None = None, dry_run: bool = False) -> list[str]:
    """Zero the CosFace head rows of the forget identities in every ``*.ckpt`` under ``root`` (atomically) and drop
    their optimiser and scheduler state; ``identities`` for checkpoints that record none (made before the DataModule
    recorded them, outside a sweep).
    Every checkpoint is checked before any is rewritten: one that cannot be purged stops it, nothing changed."""
    from faceunlearn.io.atomic import atomic_path

    root = Path(root)
    named = root.is_file()
    checkpoints = [root] if named else sorted(root.rglob("*.ckpt"))
    plan, skipped = [], []
    for path in checkpoints:  # check them all first (one at a time: a sweep's checkpoints need not fit in memory)
        checkpoint = _load_checkpoint(path)
        if checkpoint.get("unlearning") is False and not named:  # an Original's or Retrain's: rewritten only if named
            skipped.append(path)
            del checkpoint
            continue
        labels = _checkpoint_forget_identities(path, checkpoint) or set(identities or ())
        if not labels:
            raise SystemExit(f"faceunlearn purge: {path} records no forget identities (nor a done.json beside its folder); "
                             "pass them with --identities; nothing changed")
        _head_rows(checkpoint, path, labels)
        del checkpoint
        plan.append((path, sorted(labels)))
    done = [f"left {path} alone: not an unlearning run's checkpoint (name the file to purge it)" for path in skipped]
    for path, labels in plan:
        if dry_run:
            done.append(f"would zero the head rows of {len(labels)} forget identities {labels} in {path}")
            continue
        checkpoint = _load_checkpoint(path)
        _head_rows(checkpoint, path, labels)[labels] = 0
        dropped = [key for key in ("optimizer_states", "lr_schedulers") if checkpoint.pop(key, None) is not None]
        checkpoint[PURGED_KEY] = sorted(set(checkpoint.get(PURGED_KEY, [])) | set(labels))
        with atomic_path(path) as partial:
            torch.save(checkpoint, partial)
        done.append(f"zeroed the head rows of forget identities {labels} in {path}"
                    + (f" and dropped its {' and '.join(dropped)} (it no longer resumes)" if dropped else ""))
    return done


def purge_pack(pack: str | Path, identities: list[int]) -> str:
    """Blank (zero) every crop of ``identities`` in a pack, in place, and record them in meta.json."""
    import numpy as np

    from faceunlearn.io.atomic import write_json_atomic
    from faceunlearn.data.packed import PackedFaces

    packed = PackedFaces.open(pack)
    rows = np.flatnonzero(np.isin(packed.identities, np.asarray(identities)))
    unknown = sorted(set(identities) - set(np.unique(packed.identities[rows]).tolist()))
    if unknown:
        raise SystemExit(f"faceunlearn purge: identities {unknown} are not in {pack}; nothing changed")
    images = np.load(Path(pack) / "images.npy", mmap_mode="r+")
    images[rows] = 0
    images.flush()
    meta_path = Path(pack) / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["purged_identities"] = sorted(set(meta.get("purged_identities", [])) | set(int(i) for i in identities))
    write_json_atomic(meta_path, meta)
    return f"blanked {len(rows)} crops of identities {sorted(identities)} in {pack} (recorded in meta.json purged_identities)"
