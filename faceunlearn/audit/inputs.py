"""What the audit refuses: checkpoints that do not belong to the audited config; and how it reads their weights."""
from __future__ import annotations

from pathlib import Path

import torch


class AuditInputError(ValueError):
    """A checkpoint that does not belong to the audited config (another forget set or other start weights)."""


def checkpoint_facts(path: str | Path) -> dict:
    """What a Lightning checkpoint records of its run: start weights (path, SHA-256) and forget identities."""
    from faceunlearn.data.forget_set import ForgetSet

    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    return {"start_weights": checkpoint.get("start_weights"), "forget_identities": ForgetSet.recorded(checkpoint)}


def check_checkpoint(path: str | Path, role: str, config: str, forget_identities: list[int], start_weights: dict | None) -> None:
    """Refuse (``AuditInputError``, one line naming both) a checkpoint whose recorded forget identities or start
    weights differ from the audited config's: e.g. a forgotten ``--override "--data.seed 1"`` would audit people
    the model never unlearned. ``start_weights`` None: not checked (Retrain trains from its own start)."""
    facts = checkpoint_facts(path)
    recorded = facts["forget_identities"]
    if recorded is None:
        raise AuditInputError(f"{role} checkpoint {path} records no forget identities (made before faceunlearn recorded "
                              f"them): its forget set cannot be checked against {config}'s")
    if sorted(int(i) for i in recorded) != sorted(forget_identities):
        raise AuditInputError(f"{role} checkpoint {path} unlearned forget identities {sorted(int(i) for i in recorded)}, but "
                              f"{config} (with the given overrides) audits {sorted(forget_identities)}: pass the run's own "
                              f"--override (e.g. \"--data.seed K\")")
    if start_weights is not None:
        theirs = facts["start_weights"]
        if not theirs or theirs.get("sha256") != start_weights["sha256"]:
            what = f"{theirs['path']} (sha256 {theirs['sha256'][:12]})" if theirs else "no recorded start weights"
            raise AuditInputError(f"{role} checkpoint {path} was trained from {what}, but {config} starts from "
                                  f"{start_weights['path']} (sha256 {start_weights['sha256'][:12]})")


def load_model_weights(model, path: str | Path) -> None:
    """A Lightning checkpoint's backbone and head into ``model`` (tensors only: ``weights_only=True``)."""
    from faceunlearn.models.weights import load_weights

    load_weights(model.backbone, model.head, path, backbone_name=type(model).__name__)
    model.head_source = "loaded"
