"""Proof of forgetting: the audit of an unlearned model against the Original (and Retrain), and cleanup.

* ``run``: ``audit()`` — one run's audit, its files (``audit.csv``, ``audit.md``, ``roc.png``, ``audit.json``)
  and the reuse of reference rows; ``strongest_relearning`` (tune's relearning objective);
* ``battery``: every test of one model (``audit_model``), the same attacker for every model;
* ``inputs``: checkpoints that do not belong to the config are refused; weights read tensors-only;
* ``attacks``: membership inference, linear probe, relearning (pure functions);
* ``purge``: find and remove the forgotten people's data a run left behind.
"""
from faceunlearn.audit.battery import (
    AUDIT_SUBSETS,
    POOLED,
    RELEARN_IMAGES_PER_IDENTITY,
    RELEARN_LRS,
    RELEARN_STEPS,
    Embedded,
    attacker_images,
    audit_model,
    audit_subsets,
    basin,
    embed_subsets,
    pooled,
    retrieval,
)
from faceunlearn.audit.inputs import AuditInputError, check_checkpoint, checkpoint_facts, load_model_weights
from faceunlearn.audit.run import (
    AUDIT_JSON,
    AUDIT_VERSION,
    REFERENCE_MODELS,
    REUSE_KEYS,
    ROC_CSV,
    audit,
    audit_markdown,
    reference_results,
    strongest_relearning,
)

__all__ = ["AUDIT_JSON", "AUDIT_SUBSETS", "AUDIT_VERSION", "AuditInputError", "Embedded", "POOLED", "REFERENCE_MODELS",
           "RELEARN_IMAGES_PER_IDENTITY", "RELEARN_LRS", "RELEARN_STEPS", "REUSE_KEYS", "ROC_CSV", "attacker_images", "audit",
           "audit_markdown", "audit_model", "audit_subsets", "basin", "check_checkpoint", "checkpoint_facts", "embed_subsets",
           "load_model_weights", "pooled", "reference_results", "retrieval", "strongest_relearning"]
