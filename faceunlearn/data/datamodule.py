"""The DataModule: packed aligned faces → forget/retain splits → training streams and evaluation sets."""

from __future__ import annotations

import dataclasses
import inspect
import json
from pathlib import Path
from typing import Literal

import lightning as L
import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, SequentialSampler

from faceunlearn.data.evaluation_subsets import evaluation_rows  # noqa: F401 (re-exported)
from faceunlearn.data.forget_set import ForgetSet
from faceunlearn.data.streams import STREAMS, TrainingStreams  # noqa: F401 (STREAMS re-exported)
from faceunlearn.data.dataset import ConcatFaceImages, FaceImages, collate_batch, model_input
from faceunlearn.data.packed import PackedDatasetError, PackedFaces, split_code
from faceunlearn.data.samplers import PhasedBatchSampler, RankShard
from faceunlearn.data.splits import protocol_splits, split_per_identity
from faceunlearn.data.synthetic import build_synthetic_dataset
from faceunlearn.io.paths import expand_path
from faceunlearn.schedule import PHASES, evaluation_phase


#: row sets that feed training only; every other named set is an evaluation subset
TRAINING_ONLY = ("train", "retain")
#: the training streams ``FaceDataModule.stream`` serves
#: datasets with a reader of their own in ``faceunlearn prepare`` (faceunlearn.prepare.datasets.READERS, but
#: "folder"; not imported here: the readers pull in image libraries); others are prepared with ``prepare folder``
PREPARE_READERS = ("celeba", "vggface2", "cfp", "ijbb")
#: an extra source's subsets are named "<source>:<subset>"
SOURCE_SEPARATOR = ":"
#: image ids and labels of extra source k are shifted by k << 40 so sources never collide
SOURCE_OFFSET_BITS = 40


class FaceDataModule(TrainingStreams, L.LightningDataModule):
    """Reads one packed dataset (``faceunlearn.data.packed``) and serves every split a method needs.

    Training streams: ``faceunlearn.data.streams.TrainingStreams`` (``train``, ``retrain``, ``forget``,
    ``forget_views``, ``retain``); a method lists the ones it uses in ``train_streams``.

    Evaluation subsets, by name (benchmarks in the evaluation callback refer to these names):
    ``forget`` (D_f), ``forget_train``, ``forget_test``, ``retain_eval`` (all images of
    ``eval_retain_identities`` seeded retain identities), ``retain_eval_query`` /
    ``retain_eval_gallery`` (its per-identity halves, seeded by the evaluation seed: retrieval of
    kept people), ``holdout``, ``holdout_frontal``,
    ``holdout_profile``, ``holdout_query``, ``holdout_gallery`` (identities never trained on),
    ``validation*`` (held-out identities kept for model selection, ``validation_fraction``),
    ``distractors``, ``distractor_stills`` and ``distractor_frames``. Every extra source (a
    second packed dataset, e.g. CFP-FP or IJB-B beside CelebA) adds its own evaluation subsets as
    ``<source>:<subset>``, e.g. ``cfp:holdout_profile`` or ``ijbb:distractors``.

    Paths may use environment variables (``$FACEUNLEARN_DATA/celeba``); an unset one is an error.

    Args:
        root: packed dataset folder (forget and retain identities come from its ``train`` split).
        extra_sources: source name → packed dataset folder, for evaluation only (or as ``distill_pool``).
        distill_pool: the name of an ``extra_sources`` entry whose every image is an unlabeled face nobody asked
            to forget (the user's own gallery, any unlabeled faces): the ``pool`` stream, batches of
            ``retain_batch_size``, for the ``pool_distill`` retention term. No benchmark may read it (a face
            the network was held on cannot measure retention). Run ``faceunlearn check-disjoint`` on it first:
            a forgotten person's photo in the pool is distilled back.
        dataset: what ``root`` holds (``celeba``, ``vggface2``, …), for the error that says how to prepare it.
        synthetic: if set and ``root`` does not exist, build the synthetic dataset there with these
            arguments of ``faceunlearn.data.synthetic.build_synthetic_dataset``.
        num_forget_identities: size of Y_f, drawn from the training identities with ``seed``.
        forget_identities: explicit Y_f instead of a seeded draw: identity ids, or names from the
            pack's ``identity_names`` (``prepare folder``: the folder names), e.g. ``[Tom_Hanks, 7]``.
        seed: seeds the forget-set draw, the D_f split and every sampler.
        batch_size: forget batch size P·K (32 in the paper; 160 on VGGFace2).
        images_per_identity: K in P×K forget batches.
        train_batch_size: batch size of the ``train`` stream.
        retain_batch_size: batch size of the ``retain`` stream.
        batches_per_epoch: length of a ``forget``/``retain`` epoch; epochs are where validation and
            checkpoints happen, and where a resumed run continues exactly.
        forget_train_fraction: share of each forget identity's images in D_f^train (~50/50, SPEC §2).
        eval_retain_identities: number of retain identities in the ``retain_eval`` subset.
        eval_batch_size: batch size for embedding evaluation sets.
        max_distractors: cap on every source's ``distractors`` (seeded draw); None keeps all.
        evaluation_seed: seeds what defines the benchmarks rather than the forget set: the
            held-out and validation identities, the per-identity image cap, query/gallery halves and
            distractor draws. Fixed by default (0), so every forget set is scored on the same
            benchmarks and the Original's retention rows have std 0 over forget sets, as in the
            paper's tables; None: ``seed`` (the benchmarks are redrawn with each forget set).
        holdout_identities: move this many training identities (drawn with the evaluation seed) to
            the held-out split: evaluation identities no training stream ever sees (e.g. 12 of the
            24 shared celebrities).
        validation_fraction: share of every source's held-out identities (seeded draw with the
            evaluation seed) kept apart as validation identities for model selection
            (``faceunlearn tune``): subsets ``validation``, ``validation_query``,
            ``validation_gallery``, ``validation_frontal``, ``validation_profile``; the ``holdout*``
            subsets (the reported benchmarks) then hold only the others. 0: no validation identities.
        max_images_per_identity: keep at most this many images per identity (seeded draw with the
            evaluation seed), in every source; None keeps all.
        view_transforms: the albumentations pipeline of the ``forget_views`` stream (two views per
            forget image, ``faceunlearn.data.views``); None: horizontal flip with p = 0.5.
        forget_images: how a forget batch draws each identity's K images: ``uniform`` (afresh every
            batch; the published results) or ``cycle`` (through a seeded permutation, so all of an
            identity's n images are seen within ⌈n/K⌉ of its batches; for many images per identity,
            e.g. the VGGFace2 scenario). See ``IdentityBalancedBatchSampler``.
        num_workers: DataLoader workers (0 reads in the main process; the data is a memory map).
        eval_subsets: the subsets ``val_dataloader``/``test_dataloader`` embed (None: all). The CLI links it
            from the evaluation callback's benchmarks and snapshots (``RetrievalEvaluation.subsets_for``).
        phase_subsets: the subsets a fit's ``start`` and ``intermediate`` evaluations embed (``{phase:
            [names]}``, ``faceunlearn.schedule``; a phase not named embeds ``eval_subsets``). The fit's
            evaluation loader then yields, each time it is iterated, only the images of the evaluation
            under way. The CLI links it from the evaluation callback (``RetrievalEvaluation.phase_subsets_for``).
    """

    def __init__(
        self,
        root: str = "data/synthetic",
        extra_sources: dict[str, str] | None = None,
        distill_pool: str | None = None,
        dataset: str | None = None,
        synthetic: dict | None = None,
        num_forget_identities: int = 10,
        forget_identities: list[int | str] | None = None,
        seed: int = 0,
        batch_size: int = 32,
        images_per_identity: int = 4,
        train_batch_size: int = 64,
        retain_batch_size: int = 32,
        batches_per_epoch: int = 100,
        forget_train_fraction: float = 0.5,
        eval_retain_identities: int = 100,
        eval_batch_size: int = 256,
        max_distractors: int | None = None,
        evaluation_seed: int | None = 0,
        holdout_identities: int = 0,
        validation_fraction: float = 0.0,
        max_images_per_identity: int | None = None,
        view_transforms: list[dict] | None = None,
        forget_images: Literal["uniform", "cycle"] = "uniform",
        num_workers: int = 0,
        eval_subsets: list[str] | None = None,
        phase_subsets: dict[str, list[str]] | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()
        #: the streams ``train_dataloader`` combines (``use_streams``)
        self.train_streams: tuple[str, ...] = ("forget",)
        self.root = expand_path(root, "data.root")
        self.extra_roots = {name: expand_path(path, f"data.extra_sources.{name}") for name, path in (extra_sources or {}).items()}
        if not 0 <= validation_fraction < 1:
            raise ValueError(f"data.validation_fraction must be in [0, 1), got {validation_fraction}")
        bad = [name for name in self.extra_roots if SOURCE_SEPARATOR in name or not name]
        if bad:
            raise ValueError(f"extra source names {bad} must be non-empty and contain no {SOURCE_SEPARATOR!r}")
        # Fail before any model is built or trained: only the main dataset can be generated (synthetic).
        if synthetic is None and not (self.root / "meta.json").is_file():
            raise PackedDatasetError(self._missing_message())
        for name, extra_root in self.extra_roots.items():
            if not (extra_root / "meta.json").is_file():
                raise PackedDatasetError(self._missing_message(extra_root, name))
        #: the ``pool`` stream's pack (``distill_pool``): taken out of the evaluation sources, so no benchmark reads it
        self.pool_root = None
        if distill_pool is not None:
            if distill_pool not in self.extra_roots:
                raise ValueError(f"data.distill_pool {distill_pool!r} is not an entry of data.extra_sources "
                                 f"({', '.join(self.extra_roots) or 'none given'})")
            evaluated = [name for name in eval_subsets or () if name.startswith(distill_pool + SOURCE_SEPARATOR)]
            if evaluated:
                raise ValueError(f"data.distill_pool {distill_pool!r} is evaluated ({', '.join(evaluated)}): faces the "
                                 f"network is distilled on cannot measure retention; pool another source")
            self.pool_root = self.extra_roots.pop(distill_pool)
        self.pool: PackedFaces | None = None
        self.packed: PackedFaces | None = None
        #: extra source name → its packed dataset and evaluation rows
        self.extra: dict[str, tuple[PackedFaces, dict[str, np.ndarray]]] = {}

    # -- dataset ---------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        """Number of training identities (CosFace classes); read without loading the images."""
        meta_path = self.root / "meta.json"
        if meta_path.is_file():
            return int(json.loads(meta_path.read_text())["num_classes"])
        if self.hparams.synthetic is not None:
            default = inspect.signature(build_synthetic_dataset).parameters["num_train_identities"].default
            return int(self.hparams.synthetic.get("num_train_identities", default))
        raise PackedDatasetError(self._missing_message())

    def _missing_message(self, root: Path | None = None, dataset: str | None = None) -> str:
        root = root or self.root
        dataset = dataset or self.hparams.dataset or "DATASET"
        hint = "" if root != self.root or self.hparams.dataset else ", or set data.synthetic to generate the built-in synthetic faces there"
        reader = dataset if dataset in PREPARE_READERS else "folder"  # any other dataset: one folder per person
        return (
            f"dataset folder {str(root)!r} not found (or incomplete: no meta.json). Convert the raw dataset with "
            f"`faceunlearn prepare {reader} --root RAW --out {root}`{hint}."
        )

    def prepare_data(self) -> None:
        if (self.root / "meta.json").is_file():
            return
        if self.hparams.synthetic is None:
            raise PackedDatasetError(self._missing_message())
        from filelock import FileLock

        # runs launched side by side (a sweep's jobs) share the folder: one builds it, the others wait
        self.root.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(f"{self.root}.lock"):
            if not (self.root / "meta.json").is_file():
                build_synthetic_dataset(self.root, **self.hparams.synthetic)

    # -- checkpoint state: whom the run forgets ---------------------------------------------------
    def state_dict(self) -> dict:
        """Saved in every checkpoint (Lightning keys it by the class name, ``FaceDataModule``): the forget
        identities, so that a checkpoint says whom it was trained to forget (``faceunlearn purge
        --checkpoints``) and a resumed run cannot go on with another forget set."""
        if self.packed is None:
            return {}
        return self.forget_set.state()

    def load_state_dict(self, state_dict: dict) -> None:
        """On resume (after ``setup``): the checkpoint's forget identities must be this run's."""
        recorded = state_dict.get("forget_identities")
        if recorded is None or self.packed is None:
            return
        current = sorted(int(i) for i in self.forget_identity_ids)
        if sorted(recorded) != current:
            from faceunlearn.models.weights import CheckpointMismatchError

            raise CheckpointMismatchError(
                f"the checkpoint was trained to forget identities {sorted(recorded)}, but this run's data "
                f"(data.seed {self.hparams.seed}, forget_identities {self.hparams.forget_identities}) forgets {current}: "
                "resume with the checkpoint's data settings, or start a new run")

    def setup(self, stage: str | None = None) -> None:
        if self.packed is not None:
            return
        self.prepare_data()  # idempotent; makes setup() work outside a Trainer too
        hp = self.hparams
        self.packed = packed = self._protocol_view(PackedFaces.open(self.root), hp.holdout_identities)
        train_rows = packed.select(split="train")
        if len(train_rows) == 0:
            raise PackedDatasetError(f"{self.root} has no images in the 'train' split")
        train_identities = packed.identities[train_rows]
        num_classes = int(packed.meta["num_classes"])
        if train_identities.max() >= num_classes:
            raise PackedDatasetError(f"{self.root}: training identity {train_identities.max()} >= num_classes {num_classes}")

        #: whom this run forgets, and which of their images it sees
        self.forget_set = ForgetSet.draw(packed, hp.num_forget_identities, hp.seed, hp.forget_identities, hp.forget_train_fraction)
        self.forget_identity_ids = self.forget_set.identities
        is_forget = np.isin(train_identities, self.forget_identity_ids)
        forget_rows = self.forget_set.rows
        retain_rows = train_rows[~is_forget]
        retain_ids = np.unique(packed.identities[retain_rows])
        rng = np.random.default_rng(hp.seed + 1)
        eval_ids = rng.choice(retain_ids, size=min(hp.eval_retain_identities, len(retain_ids)), replace=False)
        evaluation_seed = self.evaluation_seed

        retain_eval = retain_rows[np.isin(packed.identities[retain_rows], eval_ids)]
        in_retain_query = split_per_identity(packed.identities[retain_eval], 0.5, evaluation_seed, min_per_side=1)
        self.rows = {
            "train": train_rows,
            "forget": forget_rows,
            "forget_train": self.forget_set.train_rows,
            "forget_test": self.forget_set.test_rows,
            "retain": retain_rows,
            "retain_eval": retain_eval,
            # retrieval of kept people: per-identity query/gallery halves of retain_eval
            "retain_eval_query": retain_eval[in_retain_query],
            "retain_eval_gallery": retain_eval[~in_retain_query],
            **evaluation_rows(packed, evaluation_seed, max_distractors=hp.max_distractors,
                              validation_fraction=hp.validation_fraction),
        }
        self.extra = {
            name: (source, evaluation_rows(source, evaluation_seed, max_distractors=hp.max_distractors,
                                           validation_fraction=hp.validation_fraction))
            for name, source in ((name, self._protocol_view(PackedFaces.open(root))) for name, root in self.extra_roots.items())
        }
        if self.pool_root is not None:
            self.pool = PackedFaces.open(self.pool_root)
        # Fail at set-up, not mid-training, on an impossible P×K for this forget set.
        self._forget_sampler()

    @property
    def evaluation_seed(self) -> int:
        hp = self.hparams
        return hp.seed if hp.evaluation_seed is None else hp.evaluation_seed

    def _protocol_view(self, packed: PackedFaces, holdout_identities: int = 0) -> PackedFaces:
        """``packed`` with the protocol's split column (per-identity cap, held-out identities)."""
        hp = self.hparams
        if not holdout_identities and hp.max_images_per_identity is None:
            return packed
        splits = protocol_splits(
            packed.identities, packed.splits, split_code("train"), split_code("holdout"),
            holdout_identities, hp.max_images_per_identity, seed=self.evaluation_seed,
        )
        return dataclasses.replace(packed, splits=splits)

    def _sources(self):
        """(source index, subset-name prefix, packed dataset, rows by subset) of the main and extra sources."""
        yield 0, "", self.packed, {name: rows for name, rows in self.rows.items() if name not in TRAINING_ONLY}
        for index, (name, (packed, rows)) in enumerate(self.extra.items(), start=1):
            yield index, name + SOURCE_SEPARATOR, packed, rows

    @property
    def subsets(self) -> dict[str, np.ndarray]:
        """Image ids of every named evaluation subset (extra sources' ids shifted apart)."""
        return {
            prefix + name: packed.image_ids[rows] + (index << SOURCE_OFFSET_BITS)
            for index, prefix, packed, subsets in self._sources() for name, rows in subsets.items()
        }

    # -- training streams ----------------------------------------------------------------------
    def _loader(self, rows_or_dataset, batch_sampler) -> DataLoader:
        dataset = FaceImages(self.packed, rows_or_dataset) if isinstance(rows_or_dataset, np.ndarray) else rows_or_dataset
        return DataLoader(
            dataset,
            batch_sampler=batch_sampler,
            collate_fn=collate_batch,
            num_workers=self.hparams.num_workers,
            persistent_workers=self.hparams.num_workers > 0,
            pin_memory=torch.cuda.is_available(),  # uint8 batches, copied to the GPU asynchronously
        )

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        return model_input(batch)  # uint8 → normalised float, mirrored rows flipped, on the device

    # -- evaluation --------------------------------------------------------------------------
    def eval_dataloader(self, names=None, shard: bool = True) -> DataLoader:
        """Every image of the named subsets (default: all), each once, in stored order, unflipped.

        Under ``torch.distributed`` each rank reads its contiguous block (``RankShard``, no padding)
        unless ``shard`` is False. (With Lightning's ``use_distributed_sampler`` on, Lightning swaps in a
        DistributedSampler instead, whose padding duplicates the evaluation drops by image id.)"""
        dataset, _ = self._eval_dataset(names)
        order = RankShard(len(dataset)) if shard else SequentialSampler(range(len(dataset)))
        return self._loader(dataset, BatchSampler(order, self.hparams.eval_batch_size, drop_last=False))

    def _eval_dataset(self, names=None) -> tuple[ConcatFaceImages, dict[str, np.ndarray]]:
        """Every image of the named subsets once, in stored order, and each subset's positions in it."""
        names = list(names or self.subsets)
        known = set(self.subsets)
        unknown = [name for name in names if name not in known]
        if unknown:
            raise KeyError(f"unknown evaluation subset(s) {unknown}; known: {', '.join(sorted(known))}")
        parts, positions, start = [], {}, 0
        for index, prefix, packed, subsets in self._sources():
            mine = [name for name in names if name.startswith(prefix) and name[len(prefix):] in subsets
                    and (prefix or SOURCE_SEPARATOR not in name)]
            if mine:
                offset = index << SOURCE_OFFSET_BITS
                rows = np.unique(np.concatenate([subsets[name[len(prefix):]] for name in mine]))
                parts.append(FaceImages(packed, rows, image_id_offset=offset, label_offset=offset))
                positions.update({name: start + np.searchsorted(rows, subsets[name[len(prefix):]]) for name in mine})
                start += len(rows)
        return ConcatFaceImages(parts), positions

    def val_dataloader(self) -> DataLoader:
        phases = self.hparams.phase_subsets
        if not phases:
            return self.eval_dataloader(self.hparams.eval_subsets)
        # one loader for every evaluation of the fit: each iteration yields the images of the one under way
        dataset, positions = self._eval_dataset(self.hparams.eval_subsets)
        everything = np.arange(len(dataset))
        by_phase = {phase: everything for phase in PHASES}
        for phase, names in phases.items():
            if phase not in PHASES:
                raise ValueError(f"data.phase_subsets: unknown evaluation phase {phase!r}; known: {', '.join(PHASES)}")
            missing = [name for name in names if name not in positions]
            if missing:
                raise ValueError(f"data.phase_subsets.{phase}: {missing} are not among data.eval_subsets")
            by_phase[phase] = np.unique(np.concatenate([positions[name] for name in names])) if names else everything[:0]
        return self._loader(dataset, PhasedBatchSampler(by_phase, self.hparams.eval_batch_size, self._evaluation_phase))

    def _evaluation_phase(self) -> str:
        return evaluation_phase(getattr(self, "trainer", None))

    def test_dataloader(self) -> DataLoader:
        return self.eval_dataloader(self.hparams.eval_subsets)
