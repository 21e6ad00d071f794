"""Seeded, epoch-aware batch samplers.

Each epoch's batches are a pure function of ``(seed, epoch)``: Lightning calls ``set_epoch``
before every epoch, so a run resumed from an epoch-end checkpoint draws exactly the batches the
uninterrupted run would have drawn. Under ``torch.distributed`` every rank draws the same global
batch list and keeps every ``world_size``-th batch.

With ``mirror=True`` the sampler also draws the random horizontal flip (the only augmentation,
SPEC §2): index ``i + num_items`` means "item ``i``, mirrored" (see ``FaceImages``). Drawing it
here, from the same epoch seed, makes flips replay exactly on resume too.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import Sampler


def _rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class _EpochSeeded:
    def __init__(self, seed: int, mirror: bool):
        self.seed = seed
        self.mirror = mirror
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)

    def _shard(self, batches: torch.Tensor, generator: torch.Generator) -> Iterator[list[int]]:
        if self.mirror:
            batches = batches + self.num_items * (torch.rand(batches.shape, generator=generator) < 0.5)
        rank, world = _rank_and_world()
        for batch in batches[rank::world]:
            yield batch.tolist()

    def __len__(self) -> int:
        rank, world = _rank_and_world()
        return len(range(rank, self.num_batches, world))


def rank_block(num_items: int) -> range:
    """This rank's contiguous block of ``0..num_items−1`` (blocks differ in length by at most one)."""
    rank, world = _rank_and_world()
    return range(rank * num_items // world, (rank + 1) * num_items // world)


class RankShard(Sampler[int]):
    """Items ``0..num_items−1`` in order, this rank's contiguous block of them under ``torch.distributed``.

    Every item is read by exactly one rank, with no padding (DistributedSampler repeats items to even
    out ranks); blocks differ in length by at most one. The rank is read when iterating, so a
    DataLoader built before the process group starts still shards.
    """

    def __init__(self, num_items: int):
        self.num_items = num_items

    def _block(self) -> range:
        return rank_block(self.num_items)

    def __iter__(self) -> Iterator[int]:
        return iter(self._block())

    def __len__(self) -> int:
        return len(self._block())


class ShuffledBatchSampler(_EpochSeeded):
    """Random batches of ``batch_size`` items, each item at most once per epoch (last partial batch dropped).

    ``num_batches`` defaults to one pass over the items; a larger value draws further passes.
    """

    def __init__(self, num_items: int, batch_size: int, seed: int = 0, num_batches: int | None = None, mirror: bool = False):
        super().__init__(seed, mirror)
        if num_items < batch_size:
            raise ValueError(f"batch size {batch_size} is larger than the {num_items} items to sample from")
        self.num_items = num_items
        self.batch_size = batch_size
        self.num_batches = num_batches or num_items // batch_size

    def __iter__(self) -> Iterator[list[int]]:
        generator = self._generator()
        per_pass = self.num_items // self.batch_size
        passes = -(-self.num_batches // per_pass)
        order = torch.cat([torch.randperm(self.num_items, generator=generator)[: per_pass * self.batch_size] for _ in range(passes)])
        batches = order[: self.num_batches * self.batch_size].view(self.num_batches, self.batch_size)
        return self._shard(batches, generator)


class IdentityBalancedBatchSampler(_EpochSeeded):
    """P identities × K images per batch, so every anchor has K−1 positives (SPEC §2).

    Every batch draws P distinct identities uniformly. ``images``: how each identity's K images are
    drawn:

    * ``uniform`` (default): K distinct images uniformly, afresh for every batch;
    * ``cycle``: from the identity's own seeded permutation, K after K, so its ``n`` images are all
      visited within ``⌈n/K⌉`` batches that contain it (the last of them completes its K with
      images from the start of the pass, never a repeat within a batch); then a new permutation.
      With many images per identity (the paper's VGGFace2 regime: ~145 each, batch 160) no image is
      starved.

    ``labels`` gives each item's identity. Impossible P×K settings fail here with a message
    that says which setting to change.
    """

    def __init__(
        self,
        labels,
        batch_size: int = 32,
        images_per_identity: int = 4,
        seed: int = 0,
        num_batches: int | None = None,
        mirror: bool = False,
        images: str = "uniform",
    ):
        super().__init__(seed, mirror)
        if images not in ("uniform", "cycle"):
            raise ValueError(f"images={images!r}: choose uniform or cycle")
        self.images = images
        labels = np.asarray(labels)
        self.num_items = len(labels)
        if images_per_identity < 2:
            raise ValueError(f"images_per_identity={images_per_identity}: need at least 2 so that every anchor has a positive")
        if batch_size % images_per_identity:
            raise ValueError(
                f"batch_size={batch_size} is not a multiple of images_per_identity={images_per_identity} (P×K batches)"
            )
        identities, counts = np.unique(labels, return_counts=True)
        self.identities_per_batch = batch_size // images_per_identity
        if self.identities_per_batch > len(identities):
            raise ValueError(
                f"batch_size={batch_size} with images_per_identity={images_per_identity} needs "
                f"{self.identities_per_batch} identities per batch, but the forget set has only {len(identities)}; "
                f"lower batch_size or raise images_per_identity"
            )
        if counts.min() < images_per_identity:
            short = identities[counts < images_per_identity]
            raise ValueError(
                f"images_per_identity={images_per_identity} but identities {short[:10].tolist()} have only "
                f"{counts.min()} images in the forget-train split; lower images_per_identity"
            )
        self.images_per_identity = images_per_identity
        self.num_batches = num_batches or max(1, len(labels) // batch_size)
        # Identity × image table padded with -1, so a whole epoch is drawn with a few tensor ops.
        order = np.argsort(labels, kind="stable")
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        table = np.full((len(identities), counts.max()), -1, dtype=np.int64)
        rows = np.repeat(np.arange(len(identities)), counts)
        table[rows, np.arange(len(labels)) - starts[rows]] = order
        self.table = torch.from_numpy(table)
        self.counts = torch.from_numpy(counts)

    def __iter__(self) -> Iterator[list[int]]:
        generator = self._generator()
        num_identities, max_images = self.table.shape
        chosen = torch.rand(self.num_batches, num_identities, generator=generator).argsort(dim=1)[:, : self.identities_per_batch]
        if self.images == "cycle":
            batches = self._cycled(chosen, generator)
        else:
            slots = self.table[chosen]  # [batches, P, max_images]
            keys = torch.rand(slots.shape, generator=generator).masked_fill(slots < 0, 2.0)
            picks = keys.argsort(dim=2)[..., : self.images_per_identity]
            batches = slots.gather(2, picks).flatten(1)
        return self._shard(batches, generator)

    def _cycled(self, chosen: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``images="cycle"`` (class doc): appearance ``a`` of identity ``i`` takes group ``a mod c_i`` of
        pass ``a div c_i``, ``c_i = ⌈n_i/K⌉``; position ``j`` of a pass is permutation entry ``j`` (``j − n_i``
        past its end)."""
        num_batches, per_batch = chosen.shape
        num_identities, max_images = self.table.shape
        k = self.images_per_identity
        member = torch.zeros(num_batches, num_identities, dtype=torch.long).scatter_(1, chosen, 1)
        appearance = (member.cumsum(0) - member).gather(1, chosen)  # earlier batches holding the identity [B, P]
        groups = -(-self.counts // k)  # c_i
        passes = int((member.sum(0) / groups).ceil().max().item()) or 1
        keys = torch.rand(passes, num_identities, max_images, generator=generator).masked_fill(self.table < 0, 2.0)
        permutations = keys.argsort(dim=2)  # per pass and identity: its valid columns first, in random order
        n, c = self.counts[chosen], groups[chosen]  # [B, P]
        position = (appearance % c)[..., None] * k + torch.arange(k)  # [B, P, K]
        position = torch.where(position < n[..., None], position, position - n[..., None])
        columns = permutations[(appearance // c)[..., None], chosen[..., None], position]
        return self.table[chosen[..., None], columns].flatten(1)


class PhasedBatchSampler(Sampler[list[int]]):
    """Batches over the dataset positions of the evaluation under way: ``positions[phase()]``.

    ``phase`` (``faceunlearn.schedule.evaluation_phase`` of the trainer) is asked when iteration
    starts, so one DataLoader serves the start, intermediate and final evaluations of a fit, each
    embedding only the images its benchmarks read. Positions are sorted; under ``torch.distributed``
    each rank reads its contiguous block of them (as ``RankShard``). ``len`` is the largest phase's.
    """

    def __init__(self, positions: dict[str, np.ndarray], batch_size: int, phase, shard: bool = True):
        self.positions = {name: np.sort(np.asarray(value, dtype=np.int64)) for name, value in positions.items()}
        self.batch_size = batch_size
        self.phase = phase
        self.shard = shard

    def _mine(self, positions: np.ndarray) -> np.ndarray:
        if not self.shard:
            return positions
        block = rank_block(len(positions))
        return positions[block.start:block.stop]

    def __iter__(self) -> Iterator[list[int]]:
        positions = self._mine(self.positions[self.phase()])
        for start in range(0, len(positions), self.batch_size):
            yield positions[start:start + self.batch_size].tolist()

    def __len__(self) -> int:
        return max(-(-len(self._mine(p)) // self.batch_size) for p in self.positions.values())
