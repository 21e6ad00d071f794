"""The DataModule: packed aligned faces → forget/retain splits → training streams and evaluation sets."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import lightning as L
import numpy as np
from lightning.pytorch.utilities import CombinedLoader
from torch.utils.data import BatchSampler, DataLoader, SequentialSampler

from faceunlearn.data.dataset import FaceImages, collate_batch
from faceunlearn.data.packed import PackedDatasetError, PackedFaces
from faceunlearn.data.samplers import IdentityBalancedBatchSampler, ShuffledBatchSampler
from faceunlearn.data.splits import choose_forget_identities, split_forget_images
from faceunlearn.data.synthetic import build_synthetic_dataset


#: row sets that feed training only; every other named set is an evaluation subset
TRAINING_ONLY = ("train", "retain")


class FaceDataModule(L.LightningDataModule):
    """Reads one packed dataset (``faceunlearn.data.packed``) and serves every split a method needs.

    Training streams (a method lists the ones it uses in ``train_streams``):

    - ``train``: every training-split image, shuffled (fine-tuning the Original model);
    - ``forget``: D_f^train in identity-balanced P×K batches, ``batch_size`` = P·K (SPEC §2);
    - ``retain``: D_r training images in shuffled batches of ``retain_batch_size``, for λ·L_cos.

    Evaluation subsets, by name (benchmarks in the evaluation callback refer to these names):
    ``forget`` (D_f), ``forget_train``, ``forget_test``, ``retain_eval`` (all images of
    ``eval_retain_identities`` seeded retain identities), ``holdout``, ``holdout_frontal``,
    ``holdout_profile`` (identities never trained on) and ``distractors``.

    Args:
        root: packed dataset folder.
        synthetic: if set and ``root`` does not exist, build the synthetic dataset there with these
            arguments of ``faceunlearn.data.synthetic.build_synthetic_dataset``.
        num_forget_identities: size of Y_f, drawn from the training identities with ``seed``.
        forget_identities: explicit Y_f (identity ids) instead of a seeded draw.
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
        num_workers: DataLoader workers (0 reads in the main process; the data is a memory map).
    """

    def __init__(
        self,
        root: str = "data/synthetic",
        synthetic: dict | None = None,
        num_forget_identities: int = 10,
        forget_identities: list[int] | None = None,
        seed: int = 0,
        batch_size: int = 32,
        images_per_identity: int = 4,
        train_batch_size: int = 64,
        retain_batch_size: int = 32,
        batches_per_epoch: int = 100,
        forget_train_fraction: float = 0.5,
        eval_retain_identities: int = 100,
        eval_batch_size: int = 256,
        num_workers: int = 0,
    ):
        super().__init__()
        self.save_hyperparameters()
        #: subsets that validate/test embed (None: all); the evaluation callback sets what its benchmarks read
        self.eval_subset_names: list[str] | None = None
        self.root = Path(root)
        self.packed: PackedFaces | None = None

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

    def _missing_message(self) -> str:
        return (
            f"dataset folder {str(self.root)!r} not found (or incomplete: no meta.json). Convert a dataset with "
            f"`faceunlearn prepare DATASET --root RAW --out {self.root}`, or set data.synthetic to "
            f"generate the built-in synthetic faces there."
        )

    def prepare_data(self) -> None:
        if (self.root / "meta.json").is_file():
            return
        if self.hparams.synthetic is None:
            raise PackedDatasetError(self._missing_message())
        build_synthetic_dataset(self.root, **self.hparams.synthetic)

    def setup(self, stage: str | None = None) -> None:
        if self.packed is not None:
            return
        self.prepare_data()  # idempotent; makes setup() work outside a Trainer too
        self.packed = packed = PackedFaces.open(self.root)
        hp = self.hparams
        train_rows = packed.select(split="train")
        if len(train_rows) == 0:
            raise PackedDatasetError(f"{self.root} has no images in the 'train' split")
        train_identities = packed.identities[train_rows]
        num_classes = int(packed.meta["num_classes"])
        if train_identities.max() >= num_classes:
            raise PackedDatasetError(f"{self.root}: training identity {train_identities.max()} >= num_classes {num_classes}")

        self.forget_identity_ids = choose_forget_identities(
            train_identities, hp.num_forget_identities, hp.seed, hp.forget_identities, min_images=4
        )
        is_forget = np.isin(train_identities, self.forget_identity_ids)
        forget_rows = train_rows[is_forget]
        in_forget_train = split_forget_images(packed.identities[forget_rows], hp.forget_train_fraction, hp.seed)
        retain_rows = train_rows[~is_forget]
        retain_ids = np.unique(packed.identities[retain_rows])
        rng = np.random.default_rng(hp.seed + 1)
        eval_ids = rng.choice(retain_ids, size=min(hp.eval_retain_identities, len(retain_ids)), replace=False)

        self.rows = {
            "train": train_rows,
            "forget": forget_rows,
            "forget_train": forget_rows[in_forget_train],
            "forget_test": forget_rows[~in_forget_train],
            "retain": retain_rows,
            "retain_eval": retain_rows[np.isin(packed.identities[retain_rows], eval_ids)],
            "holdout": packed.select(split="holdout"),
            "holdout_frontal": packed.select(split="holdout", tag="frontal"),
            "holdout_profile": packed.select(split="holdout", tag="profile"),
            "distractors": packed.select(split="distractor"),
        }
        # Fail at set-up, not mid-training, on an impossible P×K for this forget set.
        self._forget_sampler()

    @property
    def subsets(self) -> dict[str, np.ndarray]:
        """Image ids of every named evaluation subset."""
        return {name: self.packed.image_ids[rows] for name, rows in self.rows.items() if name not in TRAINING_ONLY}

    def subset_rows(self, names) -> np.ndarray:
        unknown = [name for name in names if name not in self.rows]
        if unknown:
            raise KeyError(f"unknown evaluation subset(s) {unknown}; known: {', '.join(self.rows)}")
        return np.unique(np.concatenate([self.rows[name] for name in names]))

    # -- training streams ----------------------------------------------------------------------
    def _forget_sampler(self) -> IdentityBalancedBatchSampler:
        hp = self.hparams
        return IdentityBalancedBatchSampler(
            self.packed.identities[self.rows["forget_train"]],
            hp.batch_size,
            hp.images_per_identity,
            seed=hp.seed,
            num_batches=hp.batches_per_epoch,
            mirror=True,
        )

    def _loader(self, rows: np.ndarray, batch_sampler) -> DataLoader:
        return DataLoader(
            FaceImages(self.packed, rows),
            batch_sampler=batch_sampler,
            collate_fn=collate_batch,
            num_workers=self.hparams.num_workers,
            persistent_workers=self.hparams.num_workers > 0,
        )

    def stream(self, name: str) -> DataLoader:
        hp = self.hparams
        if name == "forget":
            return self._loader(self.rows["forget_train"], self._forget_sampler())
        if name == "retain":
            rows = self.rows["retain"]
            sampler = ShuffledBatchSampler(len(rows), hp.retain_batch_size, hp.seed + 1, hp.batches_per_epoch, mirror=True)
            return self._loader(rows, sampler)
        if name == "train":
            rows = self.rows["train"]
            return self._loader(rows, ShuffledBatchSampler(len(rows), hp.train_batch_size, hp.seed + 2, mirror=True))
        raise KeyError(f"unknown training stream {name!r}; known: forget, retain, train")

    def train_dataloader(self) -> CombinedLoader:
        streams = getattr(self.trainer.lightning_module, "train_streams", ("forget",)) if self.trainer else ("forget",)
        return CombinedLoader({name: self.stream(name) for name in streams}, mode="min_size")

    # -- evaluation --------------------------------------------------------------------------
    def eval_dataloader(self, names=None) -> DataLoader:
        """Every image of the named subsets (default: all), each once, in stored order, unflipped."""
        rows = self.subset_rows(names or list(self.subsets))
        sampler = BatchSampler(SequentialSampler(rows), self.hparams.eval_batch_size, drop_last=False)
        return self._loader(rows, sampler)

    def val_dataloader(self) -> DataLoader:
        return self.eval_dataloader(self.eval_subset_names)

    def test_dataloader(self) -> DataLoader:
        return self.eval_dataloader(self.eval_subset_names)
