"""Attacks on an unlearned model: can the forgotten identities be told apart or recovered?

- ``membership``: a population membership-inference attack on per-image embedding features (the same
  for every model), fit on shadow data of retain identities only, populations matched in images per
  identity; its pooled AUC on the forget set and a per-identity view;
- ``probe``: a linear map learned on frozen embeddings of retain identities (CosFace on top), then
  forget retrieval through it;
- ``relearn``: a few fine-tuning steps on 2 images per forget identity (or per retain identity:
  retain-only relearning), with the attacker's own imprinted head, at a grid of lrs (the strongest kept).

The stale-gallery attack needs no code of its own: forget queries of the unlearned model against a
gallery embedded by the Original (``faceunlearn.audit``).
"""
from .membership import attack_auc, fit_membership_attack, identity_scores, identity_view, matched_rows, membership_features
from .probe import fit_linear_probe
from .relearn import imprinted_head, relearn, relearn_grid

__all__ = ["attack_auc", "fit_membership_attack", "identity_scores", "identity_view", "matched_rows", "membership_features",
           "fit_linear_probe", "imprinted_head", "relearn", "relearn_grid"]
