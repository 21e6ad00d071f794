"""Gradient Ascent (paper Eq. 8): maximise CosFace on the forget data."""

from faceunlearn.losses import gradient_ascent_loss
from faceunlearn.methods.base import FaceModule


class GradientAscent(FaceModule):
    """Minimise ``−L_cos(x_f, y_f)`` (+ optional ``λ·L_cos`` retain); the paper runs it at a lower lr."""

    def loss_terms(self, batch):
        forget = batch["forget"]
        cosine = self.head.cosine(self(forget["image"]))
        return {"ascent": gradient_ascent_loss(cosine, forget["label"], self.head.scale, self.head.margin)}
