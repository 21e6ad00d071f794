"""Contrastive Unlearning (Lee et al. 2025): forget embeddings toward retain ones, away from their own identity."""

from faceunlearn.losses import contrastive_unlearning_loss
from faceunlearn.methods.base import FaceModule


class ContrastiveUnlearning(FaceModule):
    """Minimise the InfoNCE-style contrast of forget against retain embeddings (+ ``λ·L_cos`` retain).

    See ``faceunlearn.losses.contrastive`` for the formula. Reads a retain batch even when λ = 0; its one forward pass also feeds the retention terms.

    Args:
        temperature: T (official: 0.7).
    """

    loss_streams = ("forget", "retain")

    def __init__(self, *args, temperature: float = 0.7, **kwargs):
        super().__init__(*args, **kwargs)

    def loss_terms(self, batch):
        forget, retain = batch["forget"], batch["retain"]
        loss = contrastive_unlearning_loss(self(forget["image"]), forget["label"], self.retain_embeddings(retain),
                                           self.hparams.temperature)
        return {"contrastive": loss}
