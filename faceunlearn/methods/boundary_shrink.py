"""Boundary Shrink (paper Eq. 9; Chen et al., CVPR 2023) adapted to CosFace."""

import torch

from faceunlearn.losses import boundary_shrink_loss, fgsm_images, nearest_boundary_labels
from faceunlearn.methods.base import FaceModule


class BoundaryShrink(FaceModule):
    """Train the clean forget image toward its nearest-boundary label found on the Original model.

    On a frozen copy of the Original model: ``x' = clip(x_f + ε·sign(∇_x L_cos(x_f, y_f)))`` (one
    FGSM step, ε in [0,1] pixel space, no random start), ``y_nbi = argmax_j cos θ_j(x')``; then
    minimise ``L_cos(f_θ(x_f), y_nbi)``. The copy is taken at construction, right after
    ``init_weights`` are loaded, so a ``--ckpt_path`` resume still attacks the Original model.

    Args:
        epsilon: FGSM step in [0,1] pixel space (official code: 0.1).
        head_freeze: the "HeadFreeze" variant: the CosFace weights are not trained.
    """

    needs_start_model = True  # the frozen Original it attacks: the base's start_model, shared with retention terms

    def __init__(self, *args, epsilon: float = 0.1, head_freeze: bool = False, freeze: list[str] | None = None, **kwargs):
        if head_freeze:
            freeze = list(freeze or []) + ["head"]
        super().__init__(*args, freeze=freeze, **kwargs)
        self.original_head_ready = self.head_ready

    @property
    def original(self) -> torch.nn.ModuleDict:
        """The frozen Original model (backbone and head): the base's ``start_model``."""
        return self.start_model

    def on_fit_start(self) -> None:
        fresh_imprint = not self.head_ready  # start weights without a head, not a resume
        super().on_fit_start()
        if not self.original_head_ready:
            # The Original's head is the imprint of the Original backbone: the head just imprinted on a
            # fresh run, recomputed on a resume (whose trained head is no longer the Original's).
            if fresh_imprint:
                self.original["head"].weight.data.copy_(self.head.weight.data)
            else:
                self.imprint(self.original["head"], self.original["backbone"])
            self.original_head_ready = True

    def loss_terms(self, batch):
        forget = batch["forget"]
        images, labels = forget["image"], forget["label"]
        with torch.enable_grad():
            attacked = images.detach().requires_grad_(True)
            loss = self.original["head"](self.embed_with(self.original["backbone"], attacked), labels)
            (input_gradient,) = torch.autograd.grad(loss, attacked)
        adversarial = fgsm_images(images, input_gradient, self.hparams.epsilon)
        with torch.no_grad():
            neighbour_labels = nearest_boundary_labels(self.original["head"].cosine(self.embed_with(self.original["backbone"], adversarial)))
        self.log("train/label_changed", (neighbour_labels != labels).float().mean(), batch_size=labels.shape[0])
        cosine = self.head.cosine(self(images))
        return {"boundary_shrink": boundary_shrink_loss(cosine, neighbour_labels, self.head.scale, self.head.margin)}
