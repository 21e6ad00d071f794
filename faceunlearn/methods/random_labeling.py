"""Random Labeling (paper Eq. 7): CosFace toward labels drawn uniformly over all identities."""

import torch

from faceunlearn.losses import random_labels
from faceunlearn.methods.base import FaceModule


class RandomLabeling(FaceModule):
    """Minimise ``L_cos(x_f, ỹ) + λ·L_cos(x_r, y_r)`` with ``ỹ ~ U(Y)`` drawn afresh for every batch.

    Args:
        label_seed: seeds the random labels; batch ``t`` uses ``label_seed·1,000,003 + t``, so a
            resumed run draws the same labels as an uninterrupted one.
    """

    def __init__(self, *args, label_seed: int = 0, **kwargs):
        super().__init__(*args, **kwargs)

    def loss_terms(self, batch):
        forget = batch["forget"]
        generator = torch.Generator().manual_seed(self.hparams.label_seed * 1_000_003 + self.global_step)
        labels = random_labels(forget["label"].shape[0], self.head.weight.shape[0], generator).to(self.device)
        return {"random_label": self.head(self(forget["image"]), labels)}
