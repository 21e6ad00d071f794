"""A model's embeddings of named DataModule subsets, outside the Trainer (the audit, training diagnostics)."""
from __future__ import annotations

import torch

#: a model's embeddings of named subsets: name → (embeddings, labels, image ids)
Embedded = dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


@torch.no_grad()
def embed_subsets(model, data, names=None) -> Embedded:
    """Every named subset (default: every subset the DataModule serves) through ``model`` (eval mode), one pass over
    their union: ``{name: (embeddings, labels, image ids)}``."""
    from faceunlearn.metrics.benchmarks import EmbeddingTable

    names = [name for name in (names or data.subsets) if name in data.subsets]
    model.eval()
    embeddings, labels, ids = [], [], []
    for batch in data.eval_dataloader(names, shard=False):
        batch = model.device_batch(batch)
        embeddings.append(model(batch["image"]).float().cpu())
        labels.append(batch["label"].cpu())
        ids.append(batch["image_id"].cpu())
    table = EmbeddingTable(torch.cat(embeddings), torch.cat(labels), torch.cat(ids), data.subsets)
    return {name: table.take((name,)) for name in names}
