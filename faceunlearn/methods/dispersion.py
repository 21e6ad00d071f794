"""Dispersion unlearning (paper Eq. 5): push each forget identity's embeddings apart."""

from faceunlearn.losses import dispersion_loss, view_dispersion_loss
from faceunlearn.methods.base import FaceModule


class Dispersion(FaceModule):
    """Minimise ``L_disp`` (SPEC §3) on identity-balanced forget batches (+ the retention terms).

    With ``view_dispersion`` = λ_v > 0 (the paper's §6 proposal), each forget image comes as two
    augmented views (the DataModule's ``forget_views`` stream, ``data.view_transforms``): the
    dispersion loss runs over all 2B view embeddings with their identity labels, plus
    ``λ_v · L_view`` (``faceunlearn.losses.view_dispersion_loss``), which also pushes the two views of
    one image apart.

    Args:
        dispersion_margin: ``m_d``, the floor on pushed-apart cosine similarity. Unknown in the paper;
            0 fits its reported forget CS ≈ 0.09. The view term uses the same floor.
        view_dispersion: λ_v of the augmented-view term; 0 (default): the paper's method, one image each.
    """

    loss_function = staticmethod(dispersion_loss)

    def __init__(self, *args, dispersion_margin: float = 0.0, view_dispersion: float = 0.0, **kwargs):
        if view_dispersion < 0:
            raise ValueError(f"view_dispersion must be >= 0, got {view_dispersion}")
        super().__init__(*args, **kwargs)

    @property
    def loss_streams(self) -> tuple[str, ...]:
        return ("forget_views",) if self.hparams.view_dispersion > 0 else ("forget",)

    def loss_terms(self, batch):
        margin = self.hparams.dispersion_margin
        if self.hparams.view_dispersion <= 0:
            forget = batch["forget"]
            return {"dispersion": self.loss_function(self(forget["image"]), forget["label"], margin)}
        forget = batch["forget_views"]
        views = forget["views"]  # [B, 2, 3, H, W]
        embeddings = self(views.flatten(0, 1)).unflatten(0, views.shape[:2])  # one forward for both views
        labels = forget["label"].repeat_interleave(2)
        return {
            "dispersion": self.loss_function(embeddings.flatten(0, 1), labels, margin),
            "view_dispersion": self.hparams.view_dispersion * view_dispersion_loss(embeddings[:, 0], embeddings[:, 1], margin),
        }
