"""Attacks on an unlearned model: can the forgotten identities be told apart or recovered?

- ``membership``: a population membership-inference attack on per-image features, fit on shadow
  data of retain identities only; its AUC on the forget set;
- ``probe``: a linear map learned on frozen embeddings of retain identities (CosFace on top), then
  forget retrieval through it;
- ``relearn``: a few fine-tuning steps on 2 images per forget identity.

The stale-gallery attack needs no code of its own: forget queries of the unlearned model against a
gallery embedded by the Original (``faceunlearn.audit``).
"""
from .membership import attack_auc, fit_membership_attack, membership_features
from .probe import fit_linear_probe
from .relearn import relearn

__all__ = ["attack_auc", "fit_membership_attack", "membership_features", "fit_linear_probe", "relearn"]
