"""The training streams of ``FaceDataModule``: what a method's batches are made of, each seeded.

- ``train``: every training-split image, shuffled (fine-tuning the Original model);
- ``retrain``: the same without any image of the forget identities (the Retrain reference), batches of
  ``train_batch_size``;
- ``forget``: D_f^train in identity-balanced P×K batches, ``batch_size`` = P·K (SPEC §2);
- ``forget_views``: the same batches with ``views`` [B, 2, 3, H, W], two augmented views per image
  (``view_transforms``), for view dispersion;
- ``retain``: D_r training images in shuffled batches of ``retain_batch_size``, for λ·L_cos;
- ``pool``: every image of ``distill_pool`` (unlabeled faces nobody asked to forget) in shuffled batches of
  ``retain_batch_size``, for the ``pool_distill`` retention term.
"""
from __future__ import annotations

import numpy as np
from lightning.pytorch.utilities import CombinedLoader
from torch.utils.data import BatchSampler, DataLoader, SequentialSampler

from faceunlearn.data.dataset import FaceImages
from faceunlearn.data.samplers import IdentityBalancedBatchSampler, ShuffledBatchSampler
from faceunlearn.data.views import TwoViews, build_view_pipeline

STREAMS = ("forget", "forget_views", "retain", "pool", "train", "retrain")


class TrainingStreams:
    """The streams, for a DataModule with ``hparams``, ``packed``, ``rows``, ``_loader`` and ``eval_dataloader``."""

    def _forget_sampler(self, mirror: bool = True) -> IdentityBalancedBatchSampler:
        hp = self.hparams
        return IdentityBalancedBatchSampler(
            self.packed.identities[self.rows["forget_train"]],
            hp.batch_size,
            hp.images_per_identity,
            seed=hp.seed,
            num_batches=hp.batches_per_epoch,
            mirror=mirror,
            images=hp.forget_images,
        )

    def stream(self, name: str) -> DataLoader:
        hp = self.hparams
        if name == "forget":
            return self._loader(self.rows["forget_train"], self._forget_sampler())
        if name == "forget_views":  # the same P×K batches, unmirrored: the view pipeline decides flips
            views = TwoViews(FaceImages(self.packed, self.rows["forget_train"]), build_view_pipeline(hp.view_transforms), hp.seed + 4)
            return self._loader(views, self._forget_sampler(mirror=False))
        if name == "retain":
            rows = self.rows["retain"]
            sampler = ShuffledBatchSampler(len(rows), hp.retain_batch_size, hp.seed + 1, hp.batches_per_epoch, mirror=True)
            return self._loader(rows, sampler)
        if name == "pool":
            if self.pool is None:
                raise ValueError("the pool_distill retention term needs data.distill_pool (an extra source of unlabeled faces)")
            sampler = ShuffledBatchSampler(len(self.pool.identities), hp.retain_batch_size, hp.seed + 5, hp.batches_per_epoch,
                                           mirror=True)
            return self._loader(FaceImages(self.pool, np.arange(len(self.pool.identities))), sampler)
        if name == "train":
            rows = self.rows["train"]
            return self._loader(rows, ShuffledBatchSampler(len(rows), hp.train_batch_size, hp.seed + 2, mirror=True))
        if name == "retrain":
            rows = self.rows["retain"]
            return self._loader(rows, ShuffledBatchSampler(len(rows), hp.train_batch_size, hp.seed + 2, mirror=True))
        raise KeyError(f"unknown training stream {name!r}; known: {', '.join(STREAMS)}")

    def use_streams(self, streams) -> None:
        """Declare the training streams ``train_dataloader`` serves (the model calls this with the streams its
        loss reads, ``FaceModule.train_streams``, from its ``setup``); default ``forget``."""
        unknown = [name for name in streams if name not in STREAMS]
        if unknown:
            raise KeyError(f"unknown training stream(s) {unknown}; known: {', '.join(STREAMS)}")
        self.train_streams = tuple(streams)

    def train_dataloader(self) -> CombinedLoader:
        """The declared training streams (``use_streams``), batch by batch together: ``{name: batch}``."""
        return CombinedLoader({name: self.stream(name) for name in self.train_streams}, mode="min_size")

    def forget_train_dataloader(self) -> DataLoader:
        """Every D_f^train image once, unflipped, on every rank (not sharded): what SalUn's saliency sums over."""
        return self.eval_dataloader(["forget_train"], shard=False)

    def training_identity_dataloader(self) -> DataLoader:
        """Every training image of the training identities (D_f^train ∪ D_r), unflipped: the images a
        CosFace head may be imprinted from (never D_f^test, never an evaluation identity)."""
        rows = np.sort(np.concatenate([self.rows["forget_train"], self.rows["retain"]]))
        sampler = BatchSampler(SequentialSampler(range(len(rows))), self.hparams.eval_batch_size, drop_last=False)
        return self._loader(rows, sampler)
