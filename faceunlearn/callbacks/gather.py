"""Gathering evaluation rows across DDP ranks, and removing DistributedSampler's padding duplicates."""
from __future__ import annotations

import torch


def gather_rows(strategy, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Every rank's rows of each tensor, concatenated in rank order, on every rank.

    Ranks may hold different numbers of rows: each pads to the largest count for
    ``strategy.all_gather`` (which needs equal shapes) and the padding is cut off again.
    """
    device = strategy.root_device
    count = torch.tensor([tensors[0].shape[0]], device=device)
    counts = strategy.all_gather(count).view(-1).tolist()
    longest = max(counts)
    gathered = []
    for tensor in tensors:
        padded = tensor.new_zeros((longest, *tensor.shape[1:]))
        padded[: tensor.shape[0]] = tensor
        everyone = strategy.all_gather(padded.to(device))  # [world, longest, ...]
        gathered.append(torch.cat([everyone[rank, :n] for rank, n in enumerate(counts)]).to(tensor.device))
    return tuple(gathered)


def drop_duplicate_ids(image_ids: torch.Tensor, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Keep the first row of every image id (DistributedSampler repeats images to even out ranks)."""
    order = torch.argsort(image_ids, stable=True)
    sorted_ids = image_ids[order]
    first = torch.ones_like(sorted_ids, dtype=torch.bool)
    first[1:] = sorted_ids[1:] != sorted_ids[:-1]
    keep = order[first].sort().values
    return (image_ids[keep], *(tensor[keep] for tensor in tensors))
