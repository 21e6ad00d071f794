"""Dispersion unlearning (paper Eq. 5): push each forget identity's embeddings apart."""

from faceunlearn.losses import dispersion_loss, old_gallery_loss, rank_confusion_loss, view_dispersion_loss
from faceunlearn.methods.base import FaceModule
from faceunlearn.methods.weight_space import embed_at, midpoint_weights, sharpness_weights, trainable


class Dispersion(FaceModule):
    """Minimise ``L_disp`` (SPEC §3) on identity-balanced forget batches (+ the retention terms).

    With ``view_dispersion`` = λ_v > 0 (the paper's §6 proposal), each forget image comes as two
    augmented views (the DataModule's ``forget_views`` stream, ``data.view_transforms``): the
    dispersion loss runs over all 2B view embeddings with their identity labels, plus
    ``λ_v · L_view`` (``faceunlearn.losses.view_dispersion_loss``), which also pushes the two views of
    one image apart.

    Two forgetting terms act on ranks rather than on cosines (issue 28; 0 = off, the paper's method):
    ``rank_confusion`` (λ of ``faceunlearn.losses.rank_confusion_loss``: a forgotten person's hardest
    positive no higher than their hardest negative, the retain batch's people among the negatives) and
    ``old_gallery`` (λ of ``faceunlearn.losses.old_gallery_loss``: their embeddings no closer to the start
    model's embeddings of them than to its embeddings of other people, the retain batch's included).
    Either adds the retain stream (its people are the negatives); ``old_gallery`` needs the frozen start model.

    Two options act in weight space, to leave the start model's basin (``faceunlearn.methods.weight_space``):
    ``midpoint`` (λ: the dispersion loss also at the weight midpoint ``(θ + θ_0)/2``, gradients through the
    midpoint to ``θ``; needs the frozen start model) and ``sam_rho`` (ρ > 0: the dispersion term is taken at
    SAM's ascent point ``θ + ρ·∇L/‖∇L‖`` instead of at ``θ``). Either costs one more forward and backward of
    the forget batch per step (SAM one more backward besides).

    Args:
        dispersion_margin: ``m_d``, the floor on pushed-apart cosine similarity. Unknown in the paper;
            0 fits its reported forget CS ≈ 0.09. The view term uses the same floor.
        view_dispersion: λ_v of the augmented-view term; 0 (default): the paper's method, one image each.
        rank_confusion, old_gallery: weights of the two rank-level forgetting terms (≥ 0).
        rank_margin: δ ≥ 0 of both rank terms: the training photos pushed δ past the tie (0: stop at it).
        midpoint: weight of the dispersion loss at the weight midpoint (≥ 0; 0 = off).
        sam_rho: SAM's radius ρ for the dispersion term (≥ 0; 0 = off, plain gradient).
    """

    loss_function = staticmethod(dispersion_loss)

    def __init__(self, *args, dispersion_margin: float = 0.0, view_dispersion: float = 0.0, rank_confusion: float = 0.0,
                 old_gallery: float = 0.0, rank_margin: float = 0.0, midpoint: float = 0.0, sam_rho: float = 0.0, **kwargs):
        for name, value in (("view_dispersion", view_dispersion), ("rank_confusion", rank_confusion), ("old_gallery", old_gallery),
                            ("rank_margin", rank_margin), ("midpoint", midpoint), ("sam_rho", sam_rho)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        super().__init__(*args, **kwargs)

    @property
    def needs_start_model(self) -> bool:
        return self.hparams.old_gallery > 0 or self.hparams.midpoint > 0

    @property
    def loss_streams(self) -> tuple[str, ...]:
        forget = ("forget_views",) if self.hparams.view_dispersion > 0 else ("forget",)
        return forget + (("retain",) if self.hparams.rank_confusion > 0 or self.hparams.old_gallery > 0 else ())

    def loss_terms(self, batch):
        margin = self.hparams.dispersion_margin
        if self.hparams.view_dispersion <= 0:
            forget = batch["forget"]
            images, labels = forget["image"], forget["label"]
            embeddings = self(images)
            terms = {"dispersion": self.loss_function(embeddings, labels, margin)}
        else:
            forget = batch["forget_views"]
            views = forget["views"]  # [B, 2, 3, H, W]
            both = self(views.flatten(0, 1)).unflatten(0, views.shape[:2])  # one forward for both views
            images, labels, embeddings = views.flatten(0, 1), forget["label"].repeat_interleave(2), both.flatten(0, 1)
            terms = {
                "dispersion": self.loss_function(embeddings, labels, margin),
                "view_dispersion": self.hparams.view_dispersion * view_dispersion_loss(both[:, 0], both[:, 1], margin),
            }
        if self.hparams.sam_rho > 0:  # the same loss at the worst point within ρ, its gradient taken there
            weights = trainable(self.backbone)
            ascent = sharpness_weights(terms["dispersion"], weights, self.hparams.sam_rho)
            terms["dispersion"] = self.loss_function(embed_at(self, ascent, images), labels, margin)
        if self.hparams.midpoint > 0:
            weights = trainable(self.backbone)
            start = dict(self.start_model["backbone"].named_parameters())
            at_midpoint = embed_at(self, midpoint_weights(weights, start), images)
            terms["midpoint"] = self.hparams.midpoint * self.loss_function(at_midpoint, labels, margin)
        if self.hparams.rank_confusion > 0:
            others = self.retain_embeddings(batch["retain"])  # shared with the retention terms: one forward
            terms["rank_confusion"] = self.hparams.rank_confusion * rank_confusion_loss(embeddings, labels, others,
                                                                                          self.hparams.rank_margin)
        if self.hparams.old_gallery > 0:
            others = self.start_embeddings(batch["retain"]["image"])
            terms["old_gallery"] = self.hparams.old_gallery * old_gallery_loss(
                embeddings, self.start_embeddings(images), labels, others, self.hparams.rank_margin)
        return terms
