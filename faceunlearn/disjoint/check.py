"""``faceunlearn check-disjoint``: the forget identities must not reappear under other labels (SPEC §5).

    faceunlearn check-disjoint --config configs/disp_celeba.yaml --model checkpoints/finetune_celeba/last.ckpt
    faceunlearn check-disjoint --forget-data data/celeba --seed 0 --num-forget 10 \\
        --against ijbb=data/ijbb cfp=data/cfp --model w600k_r50.onnx
    faceunlearn check-disjoint --calibrate --model sface --packs celebrities=data/glint-celebrities orl=data/orl

Forget set Y_f: drawn from ``--forget-data``'s training identities exactly as ``FaceDataModule``
does (``choose_forget_identities(train identities, num_forget, seed, explicit, min_images=4)``),
with the settings of a training config's ``data`` section (``--config``; flags override it).
Others: every identity of the ``--splits`` (default ``holdout distractor``: the CFP/IJB-B roles)
of every ``--against`` pack, given as ``PATH`` or ``LABEL=PATH``. Default: the forget pack and,
with ``--config``, every ``data.extra_sources`` pack. In the forget pack, D_f's own images are
never counted as "other" (a same-pack identity with a forget id but other images is).

Under the reference ``--model`` (faceunlearn ``.ckpt``, insightface ``backbone.pth``, or any ONNX
face recognizer — ``.onnx`` or the alias ``sface`` — run through ``OnnxBackbone``, which converts
it to torch, block-quantised files included, and applies the model's own input convention), each
identity's centroid is ``c = normalize(Σ_i ẑ_i)``, ``ẑ_i = z_i/‖z_i‖``, over its images. Every forget × other pair gets ``cos = c_fᵀ c_o``; the top
``--top-k`` matches per forget identity and every pair above ``--threshold`` go to a CSV report, the
top ``--show`` pairs to stdout. As a same-person reference under the same model, each forget
identity's ``self`` cosine is that between its D_f^train and D_f^test centroids (the DataModule's
split): a real duplicate elsewhere would score about that high.

Exit status: 0 all pairs ≤ threshold; 1 some pair above it (an identity is probably shared);
2 bad input (missing path, unreadable model, empty set).

Default threshold 0.5, measured (docs/check_disjoint.md; ``calibration`` module): under OpenCV
Zoo's SFace on real aligned faces, each identity's images split at random into two halves
(5 seeded splits) give same-person half-centroid cosines of median 0.987 / min 0.915 on 24
Glint360K celebrities (22–100 images each) and median 0.968 / 1 % quantile 0.847 / min 0.752 on
ORL (40 × 10, YuNet-aligned); a half-centroid against a whole other identity's centroid (the
check's situation) gives different-person cosines of median 0.214 / 99 % quantile 0.463 / max
0.525 (look-alike actresses) on the celebrities and 0.092 / 0.327 / 0.446 on ORL. Rule: the
smallest multiple of 0.05 with ≤ 1 % of different-person pairs above it on every dataset → 0.5.
At 0.5: false matches 0.18 % (celebrities), 0 % (ORL), 0.02 % (both pooled, cross-dataset pairs
included); missed matches 0 % on both. Against another identity of only 1 image the missed rate
is 2.5 % (celebrities; 0 % from 2 images up; their median is only 0.766), a reason not to raise
the threshold into the gap. The expected number of
false alarms is about the false-match rate × forget × other identities, so expect a few
look-alikes in the report of a large distractor set: read them against the ``self`` reference.
For another reference model, measure its own threshold on packs with right labels::

    faceunlearn check-disjoint --calibrate --model M --packs A=PATH B=PATH [--figure F.png]

it prints both distributions, the rule's threshold and its rates (JSON report under
``lightning_logs/check_disjoint/calibration.json``); then pass ``--threshold``. A weak model needs
it: under the demo's reduced IResNet on synthetic faces, distinct identities reach 0.74 while
``self`` is 0.90–0.95.

Identity names come from the pack's ``meta.json`` ``identity_names``: a list indexed by identity
id, or a mapping ``{"<id>": name}``. Otherwise a name is ``id<N>``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from faceunlearn.io.atomic import write_csv_atomic
from faceunlearn.data.packed import SPLITS, PackedDatasetError, PackedFaces, split_code
from faceunlearn.data.forget_set import ForgetSet
from faceunlearn.data.splits import split_forget_images
from faceunlearn.metrics.checks import unit_rows
from faceunlearn.io.paths import expand_path

DEFAULT_THRESHOLD = 0.5
DEFAULT_REPORT = "lightning_logs/check_disjoint/report.csv"
CHECK_SPLITS = ("holdout", "distractor")
OTHER_CHUNK = 65536  # other identities per cosine chunk: F × chunk scores at once
DEFAULT_CALIBRATION_REPORT = "lightning_logs/check_disjoint/calibration.json"

from faceunlearn.disjoint.embedders import Embedder, InputError, make_embedder  # noqa: E402


@dataclass
class Centroids:
    """L2-normalised identity centroids of one pack's rows, with what the report prints."""

    dataset: str
    identities: np.ndarray  # int64 [C]
    counts: np.ndarray  # images per identity [C]
    names: list[str]
    vectors: torch.Tensor  # float32 [C, D], unit rows
    self_cosines: np.ndarray | None = None  # forget only: cos(centroid of D_f^train, centroid of D_f^test) [C]


def identity_names(packed: PackedFaces, identities: np.ndarray) -> list[str]:
    """Names from meta.json ``identity_names`` (list by id, or ``{"<id>": name}``), else ``id<N>``."""
    table = packed.meta.get("identity_names")
    names = []
    for identity in identities.tolist():
        name = None
        if isinstance(table, list) and 0 <= identity < len(table):
            name = table[identity]
        elif isinstance(table, dict):
            name = table.get(str(identity))
        names.append(str(name) if name is not None else f"id{identity}")
    return names


def forget_rows(packed: PackedFaces, num_forget: int, seed: int, explicit: list[int | str] | None) -> np.ndarray:
    """Rows of D_f: training images of Y_f — the run's own ``ForgetSet`` (the one the DataModule draws)."""
    try:
        return ForgetSet.draw(packed, num_forget, seed, explicit).rows
    except (ValueError, PackedDatasetError) as error:
        raise InputError(str(error)) from error


def embed_rows(packed: PackedFaces, rows: np.ndarray, embed: Embedder, batch_size: int, progress: str | None = None) -> torch.Tensor:
    """Embeddings [len(rows), D] of ``rows`` (ascending rows read the memory map fastest). ``progress``: a bar with
    this label on a terminal's stderr."""
    from tqdm.auto import tqdm

    order = np.argsort(rows, kind="stable")
    sorted_rows = rows[order]
    starts = tqdm(range(0, len(rows), batch_size), desc=progress, unit="batch", file=sys.stderr, leave=False,
                  disable=True if progress is None else None)  # None: shown on a terminal only
    embeddings = torch.cat([embed(np.asarray(packed.images[sorted_rows[s:s + batch_size]])) for s in starts])
    return embeddings[torch.from_numpy(np.argsort(order, kind="stable"))]


def identity_centroids(dataset: str, packed: PackedFaces, rows: np.ndarray, embeddings: torch.Tensor) -> Centroids:
    """``c = normalize(Σ ẑ_i)`` per identity of ``rows`` (``embeddings`` aligned with ``rows``)."""
    identities, inverse, counts = np.unique(packed.identities[rows], return_inverse=True, return_counts=True)
    unit = unit_rows(embeddings, "embeddings")  # float32 unit rows; checks for nan/inf, survives norm overflow
    sums = torch.zeros(len(identities), unit.shape[1]).index_add_(0, torch.from_numpy(inverse), unit)
    return Centroids(dataset, identities, counts, identity_names(packed, identities), F.normalize(sums, dim=1))


# -- cosines ---------------------------------------------------------------------------------------
def cross_cosines(forget: torch.Tensor, others: torch.Tensor, top_k: int, threshold: float, chunk: int = OTHER_CHUNK):
    """Top-``top_k`` cosines per forget row and every pair above ``threshold``, chunked over ``others``.

    Returns ``(top_values [F,k], top_indices [F,k], pairs [P,2] (forget, other), pair_values [P])``
    with ``k = min(top_k, O)``; only ``F × chunk`` scores exist at once.
    """
    k = min(top_k, others.shape[0])
    top_values = torch.full((forget.shape[0], 0), float("-inf"))
    top_indices = torch.zeros((forget.shape[0], 0), dtype=torch.long)
    pairs, pair_values = [], []
    for start in range(0, others.shape[0], chunk):
        scores = forget @ others[start:start + chunk].T
        above = torch.nonzero(scores > threshold)
        pairs.append(above + torch.tensor([0, start]))
        pair_values.append(scores[above[:, 0], above[:, 1]])
        candidates = torch.cat([top_values, scores], dim=1)
        candidate_indices = torch.cat([top_indices, torch.arange(start, start + scores.shape[1]).expand_as(scores)], dim=1)
        top_values, position = candidates.topk(min(k, candidates.shape[1]), dim=1)
        top_indices = candidate_indices.gather(1, position)
    return top_values, top_indices, torch.cat(pairs), torch.cat(pair_values)


# -- report ----------------------------------------------------------------------------------------
CSV_COLUMNS = (
    "forget_dataset", "forget_identity", "forget_name", "forget_images", "forget_self_cosine", "rank",
    "other_dataset", "other_identity", "other_name", "other_images", "cosine", "above_threshold",
)


def match_rows(forget: Centroids, others: list[Centroids], top_k: int, threshold: float) -> list[dict]:
    """One dict per reported pair (CSV_COLUMNS): each forget identity's top-k, plus all pairs above threshold."""
    owner = np.concatenate([np.full(len(o.identities), i) for i, o in enumerate(others)])
    local = np.concatenate([np.arange(len(o.identities)) for o in others])
    top_values, top_indices, pairs, pair_values = cross_cosines(forget.vectors, torch.cat([o.vectors for o in others]), top_k, threshold)
    chosen = {(f, int(j)): float(v) for f in range(len(forget.identities)) for v, j in zip(top_values[f], top_indices[f])}
    chosen.update({(int(f), int(j)): float(v) for (f, j), v in zip(pairs.tolist(), pair_values)})
    rows = []
    for (f, j), cosine in chosen.items():
        other = others[owner[j]]
        rows.append({
            "forget_dataset": forget.dataset, "forget_identity": int(forget.identities[f]),
            "forget_name": forget.names[f], "forget_images": int(forget.counts[f]),
            "forget_self_cosine": round(float(forget.self_cosines[f]), 6) if forget.self_cosines is not None else "",
            "other_dataset": other.dataset, "other_identity": int(other.identities[local[j]]),
            "other_name": other.names[local[j]], "other_images": int(other.counts[local[j]]),
            "cosine": round(cosine, 6), "above_threshold": cosine > threshold,
        })
    rows.sort(key=lambda row: (row["forget_identity"], -row["cosine"]))
    for index, row in enumerate(rows):
        previous = rows[index - 1] if index else None
        row["rank"] = previous["rank"] + 1 if previous and previous["forget_identity"] == row["forget_identity"] else 1
    return rows


def write_csv(rows: list[dict], path: Path) -> None:
    write_csv_atomic(path, rows, CSV_COLUMNS)


def format_table(rows: list[dict], show: int) -> str:
    """The ``show`` highest-cosine pairs as a fixed-width table."""
    header = ("cosine", "forget identity", "self", "other dataset", "other identity", "")
    lines = [header]
    for row in sorted(rows, key=lambda r: -r["cosine"])[:show]:
        self_cosine = row["forget_self_cosine"]
        lines.append((
            f"{row['cosine']:.4f}",
            f"{row['forget_name']} ({row['forget_images']} img)",
            f"{self_cosine:.4f}" if self_cosine != "" else "-",
            row["other_dataset"],
            f"{row['other_name']} ({row['other_images']} img)",
            "ABOVE THRESHOLD" if row["above_threshold"] else "",
        ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines)


# -- command ---------------------------------------------------------------------------------------
CONFIG_KEYS = ("root", "dataset", "extra_sources", "seed", "num_forget_identities", "forget_identities", "forget_train_fraction")


def forget_settings_from_config(path: str) -> dict:
    """The ``data`` section's forget-set keys (``CONFIG_KEYS``); ``$VAR`` paths expanded."""
    from faceunlearn.cli import ConfigError, parse_config, plain

    try:
        # a config may hold the data section alone: any method stands in for the model it does not name
        data = plain(parse_config(path, before=["--model", "faceunlearn.methods.Dispersion"]).config.data)
    except ConfigError as error:
        raise InputError(str(error)) from error
    settings = {key: data[key] for key in CONFIG_KEYS if data.get(key) is not None}
    try:
        if "root" in settings:
            settings["root"] = str(expand_path(settings["root"], "data.root"))
        settings["extra_sources"] = {
            name: str(expand_path(value, f"data.extra_sources.{name}")) for name, value in (settings.get("extra_sources") or {}).items()
        }
    except ValueError as error:
        raise InputError(str(error)) from error
    return settings


def labelled(value: str) -> tuple[str, str]:
    """``LABEL=PATH`` → (label, path); a plain ``PATH`` is its own label."""
    label, separator, path = value.partition("=")
    return (label, path) if separator and label and "/" not in label else (value, value)


def open_pack(path: str) -> PackedFaces:
    try:
        return PackedFaces.open(path)
    except PackedDatasetError as error:
        raise InputError(str(error)) from error


def self_cosines(embeddings: torch.Tensor, identities: np.ndarray, train_fraction: float, seed: int) -> np.ndarray:
    """Per identity (ascending id): cosine between its D_f^train and D_f^test centroids (DataModule split)."""
    in_train = split_forget_images(identities, train_fraction, seed)
    unit, halves = unit_rows(embeddings, "embeddings"), []
    for mask in (in_train, ~in_train):  # every forget identity has >= 2 images on each side
        _, inverse = np.unique(identities[mask], return_inverse=True)
        sums = torch.zeros(len(np.unique(identities)), unit.shape[1]).index_add_(0, torch.from_numpy(inverse), unit[torch.from_numpy(mask)])
        halves.append(F.normalize(sums, dim=1))
    return (halves[0] * halves[1]).sum(1).numpy()


def run(args) -> int:
    """The check (or, with ``--calibrate``, the calibration); returns the exit status (see module doc).

    ``args``: the parsed ``faceunlearn check-disjoint`` arguments (``faceunlearn.commands.check_disjoint``)."""
    if args.calibrate:
        return run_calibration(args)
    args.splits = args.splits or list(CHECK_SPLITS)
    args.report = args.report or DEFAULT_REPORT
    settings = forget_settings_from_config(args.config) if args.config else {}
    if args.forget_data:
        forget_label, root = labelled(args.forget_data)
    else:
        forget_label, root = settings.get("dataset") or settings.get("root"), settings.get("root")
    if root is None:
        raise InputError("no forget dataset: pass --forget-data PACKED (or --config with a data.root)")
    seed = args.seed if args.seed is not None else int(settings.get("seed", 0))
    num_forget = args.num_forget if args.num_forget is not None else int(settings.get("num_forget_identities", 10))
    explicit = args.forget_identities if args.forget_identities is not None else settings.get("forget_identities")
    forget_pack = open_pack(root)
    if args.against:
        against_paths = [labelled(value) for value in args.against]
    else:
        against_paths = [(forget_label, root), *(settings.get("extra_sources") or {}).items()]
    against = [(label, open_pack(path)) for label, path in against_paths]
    if args.top_k < 1 or args.batch_size < 1:
        raise InputError(f"--top-k and --batch-size must be >= 1, got {args.top_k} and {args.batch_size}")
    bad_splits = [s for s in args.splits if s not in SPLITS]
    if bad_splits:
        raise InputError(f"unknown split(s) {bad_splits}; known: {', '.join(SPLITS)}")
    embed = make_embedder(args.model, args.backbone, args.embedding_size, args.device)
    batch_size = args.batch_size

    d_f = forget_rows(forget_pack, num_forget, seed, explicit)
    if len(d_f) == 0:
        raise InputError(f"the forget set is empty (--num-forget {num_forget})")
    split_codes = [split_code(s) for s in args.splits]
    others = []
    for label, pack in against:
        rows = np.flatnonzero(np.isin(pack.splits, split_codes))
        same_pack = pack.root.resolve() == forget_pack.root.resolve()
        if same_pack:
            rows = np.setdiff1d(rows, d_f)  # D_f itself is not "other"
        if len(rows) == 0:
            print(f"note: {label} has no images in splits {', '.join(args.splits)}", file=sys.stderr)
            continue
        print(f"embedding {len(rows)} images of {label} ({', '.join(args.splits)})", file=sys.stderr)
        embeddings = embed_rows(pack, rows, embed, batch_size, progress=label)
        others.append(identity_centroids(label, pack, rows, embeddings))
    if not others:
        labels = ", ".join(label for label, _ in against)
        raise InputError(f"no identities to check against in splits {', '.join(args.splits)} of {labels}")
    print(f"embedding {len(d_f)} forget images of {forget_label}", file=sys.stderr)
    forget_embeddings = embed_rows(forget_pack, d_f, embed, batch_size, progress=forget_label)
    forget = identity_centroids(forget_label, forget_pack, d_f, forget_embeddings)
    fraction = float(settings.get("forget_train_fraction", 0.5))
    forget.self_cosines = self_cosines(forget_embeddings, forget_pack.identities[d_f], fraction, seed)

    rows = match_rows(forget, others, args.top_k, args.threshold)
    write_csv(rows, Path(args.report))
    num_others = sum(len(o.identities) for o in others)
    num_above = sum(row["above_threshold"] for row in rows)
    print(format_table(rows, args.show))
    print(
        f"\n{len(forget.identities)} forget identities × {num_others} other identities; max cosine "
        f"{max(row['cosine'] for row in rows):.4f}; {num_above} pair(s) above {args.threshold}. Same-person "
        f"reference (self: D_f^train vs D_f^test centroids): min {forget.self_cosines.min():.4f}, "
        f"median {np.median(forget.self_cosines):.4f}. Report: {args.report}"
    )
    if num_above:
        print(f"FAIL: forget identities may also appear among the other identities (cosine > {args.threshold})")
        return 1
    print("OK: forget identities are disjoint from the other identities at this threshold")
    return 0


def run_calibration(args) -> int:
    """``--calibrate``: same-/different-person centroid cosines on ``--packs``, the threshold rule's value."""
    from faceunlearn.disjoint import calibration

    if not args.packs:
        raise InputError("--calibrate needs --packs [LABEL=]PATH ...: packed datasets whose identity labels are right")
    if args.repeats < 1 or args.batch_size < 1:
        raise InputError(f"--repeats and --batch-size must be >= 1, got {args.repeats} and {args.batch_size}")
    if not 0 < args.max_false_match < 1:
        raise InputError(f"--max-false-match must be in (0, 1), got {args.max_false_match}")
    bad_splits = [s for s in args.splits or () if s not in SPLITS]
    if bad_splits:
        raise InputError(f"unknown split(s) {bad_splits}; known: {', '.join(SPLITS)}")
    packs = [(label, open_pack(path)) for label, path in map(labelled, args.packs)]
    embed = make_embedder(args.model, args.backbone, args.embedding_size, args.device)
    codes = [split_code(s) for s in args.splits] if args.splits else None

    def rows_of(pack: PackedFaces) -> np.ndarray:
        return np.flatnonzero(np.isin(pack.splits, codes)) if codes is not None else np.arange(len(pack))

    seed = args.seed if args.seed is not None else 0
    try:
        results, sweeps = calibration.calibrate_packs(
            packs, lambda pack, rows: embed_rows(pack, rows, embed, args.batch_size), rows_of, args.repeats, seed,
            log=lambda line: print(line, file=sys.stderr),
        )
        threshold, rule = calibration.choose_threshold(results, args.max_false_match)
    except ValueError as error:
        raise InputError(str(error)) from error
    report = Path(args.report or DEFAULT_CALIBRATION_REPORT)
    calibration.write_report(results, threshold, rule, report, model=args.model, sweeps=sweeps)
    print(f"Centroid cosines under {args.model} ({args.repeats} seeded half splits per identity; rates at {threshold:g}):")
    print(calibration.format_calibration(results, threshold))
    print("\nForget half against other identities of few images (the same splits):")
    print(calibration.format_sweep(sweeps, threshold))
    print(f"\nthreshold {threshold:g}: {rule}")
    if args.figure:
        calibration.plot_calibration(results, threshold, Path(args.figure), sweeps, title=f"check-disjoint calibration under {args.model}")
        print(f"figure: {args.figure}")
    print(f"report: {report}\nuse it: faceunlearn check-disjoint ... --model {args.model} --threshold {threshold:g}")
    return 0
