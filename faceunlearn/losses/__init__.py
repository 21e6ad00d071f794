"""Training objectives as pure functions of tensors (each unit-tested against SPEC's formula)."""

from faceunlearn.losses.boundary_shrink import boundary_shrink_loss, fgsm_images, nearest_boundary_labels
from faceunlearn.losses.contrastive import contrastive_unlearning_loss
from faceunlearn.losses.cosface import cosface_loss
from faceunlearn.losses.dispersion import dispersion_loss, hard_dispersion_loss, view_dispersion_loss
from faceunlearn.losses.gradient_ascent import gradient_ascent_loss
from faceunlearn.losses.lipschitz import gaussian_noise, lipschitz_loss
from faceunlearn.losses.old_gallery import old_gallery_loss
from faceunlearn.losses.random_labeling import random_labels
from faceunlearn.losses.rank_confusion import rank_confusion_loss
from faceunlearn.losses.retention import embedding_distillation_loss, relational_distillation_loss

__all__ = [
    "boundary_shrink_loss",
    "contrastive_unlearning_loss",
    "cosface_loss",
    "dispersion_loss",
    "embedding_distillation_loss",
    "fgsm_images",
    "gaussian_noise",
    "gradient_ascent_loss",
    "hard_dispersion_loss",
    "lipschitz_loss",
    "nearest_boundary_labels",
    "old_gallery_loss",
    "random_labels",
    "rank_confusion_loss",
    "relational_distillation_loss",
    "view_dispersion_loss",
]
