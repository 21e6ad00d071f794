"""Dispersion unlearning (paper Eq. 5): push each forget identity's embeddings apart."""

from faceunlearn.losses import dispersion_loss
from faceunlearn.methods.base import FaceModule


class Dispersion(FaceModule):
    """Minimise ``L_disp`` (SPEC §3) on identity-balanced forget batches (+ optional λ·L_cos retain).

    Args:
        dispersion_margin: ``m_d``, the floor on pushed-apart cosine similarity. Unknown in the paper;
            0 fits its reported forget CS ≈ 0.09.
    """

    loss_function = staticmethod(dispersion_loss)

    def __init__(self, *args, dispersion_margin: float = 0.0, **kwargs):
        super().__init__(*args, **kwargs)

    def loss_terms(self, batch):
        forget = batch["forget"]
        return {"dispersion": self.loss_function(self(forget["image"]), forget["label"], self.hparams.dispersion_margin)}
