"""Which retention terms a method uses and their weights (``FaceModule(retain_weight=…, retention={…})``).

The terms themselves are pure losses in ``faceunlearn.losses.retention``; ``FaceModule.retention_terms`` computes
them on one retain batch.
"""
from __future__ import annotations

import torch

from faceunlearn.losses.retention import embedding_distillation_loss, relational_distillation_loss


class RetentionTerms:
    """``FaceModule``'s retention side: the retain batch through the trained network once per step, the frozen
    start model's embeddings once per batch, and the weighted terms (``retention_weights``) from them:

    * ``cosface``: ``L_cos`` on the retain batch (SPEC §3, the paper's optional term; ``retain_weight``
      is its λ);
    * ``distill``: ``mean_i (1 − cos(f_θ(x_i), f_0(x_i)))``, embedding distillation to the frozen start
      model ``f_0``;
    * ``relational``: ``mean_{i≠j} (cos_θ(x_i, x_j) − cos_0(x_i, x_j))²``, the batch's pairwise cosines
      kept at the start model's;
    * ``pool_distill``: ``distill``'s formula on a ``pool`` batch (``data.distill_pool``: unlabeled faces nobody
      asked to forget), so everyone else is held by more faces than D_r's few people.
    """

    def start_embeddings(self, images: torch.Tensor) -> torch.Tensor:
        """``f_0(x)``: the frozen start model's embeddings, without gradient (once per batch and step: a
        retention term and a forgetting term reading the same retain batch share one forward of ``f_0``)."""
        cached = self.__dict__.get("_step_start")
        if cached is not None and cached[0] is images:
            return cached[1]
        with torch.no_grad():
            embeddings = self.embed_with(self.start_model["backbone"], images)
        if self.training:
            self.__dict__["_step_start"] = (images, embeddings)
        return embeddings

    def retain_embeddings(self, retain: dict[str, torch.Tensor]) -> torch.Tensor:
        """The retain batch through the trained network, once per step: a method's objective that reads it
        (Contrastive Unlearning) and the retention terms share the one forward pass."""
        if self._step_retain is None or self._step_retain[0] is not retain["image"]:
            self._step_retain = (retain["image"], self(retain["image"]))
        return self._step_retain[1]

    def retention_terms(self, retain: dict[str, torch.Tensor] | None,
                        pool: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """The weighted retention terms on one retain batch and one pool batch (class doc); one forward pass of each."""
        weights = self.retention_weights
        terms = {}
        if RETAIN_TERMS & set(weights):
            terms.update(self._retain_terms(retain))
        if "pool_distill" in weights:  # after the retain terms: f_0's retain embeddings are cached for them
            terms["pool_distill"] = weights["pool_distill"] * embedding_distillation_loss(
                self(pool["image"]), self.start_embeddings(pool["image"]))
        return terms

    def _retain_terms(self, retain: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        weights = self.retention_weights
        embeddings = self.retain_embeddings(retain)
        terms = {}
        if "cosface" in weights:
            terms["retain"] = weights["cosface"] * self.head(embeddings, retain["label"])
        if {"distill", "relational"} & set(weights):
            start = self.start_embeddings(retain["image"])
            if "distill" in weights:
                terms["distill"] = weights["distill"] * embedding_distillation_loss(embeddings, start)
            if "relational" in weights:
                terms["relational"] = weights["relational"] * relational_distillation_loss(embeddings, start)
        return terms


RETENTION_TERMS = ("cosface", "distill", "relational", "pool_distill")
#: the terms computed on the retain batch (``pool_distill`` reads the ``pool`` stream instead)
RETAIN_TERMS = {"cosface", "distill", "relational"}
#: the terms that need the frozen start model
START_MODEL_TERMS = {"distill", "relational", "pool_distill"}


def retention_streams(weights: dict[str, float]) -> tuple[str, ...]:
    """The training streams the retention terms that are on read: ``retain`` and/or ``pool``."""
    return (("retain",) if RETAIN_TERMS & set(weights) else ()) + (("pool",) if "pool_distill" in weights else ())


def retention_weights(retain_weight: float, retention: dict[str, float] | None) -> dict[str, float]:
    """The retention terms that are on, ``{name: λ > 0}``, from ``retain_weight`` (CosFace's λ) and ``retention``."""
    retention = dict(retention or {})
    unknown = sorted(set(retention) - set(RETENTION_TERMS))
    if unknown:
        raise ValueError(f"unknown retention term(s) {', '.join(unknown)}; choose from {', '.join(RETENTION_TERMS)}")
    bad = {name: weight for name, weight in retention.items() if not (isinstance(weight, (int, float)) and weight >= 0)}
    if bad or retain_weight < 0:
        raise ValueError(f"retention weights must be numbers >= 0, got {bad or {'retain_weight': retain_weight}}")
    if retain_weight > 0:
        if retention.get("cosface", retain_weight) != retain_weight:
            raise ValueError(f"retain_weight={retain_weight} and retention.cosface={retention['cosface']} disagree; set one of them")
        retention["cosface"] = retain_weight
    return {name: float(weight) for name, weight in retention.items() if weight > 0}
