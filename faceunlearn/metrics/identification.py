"""1:N open-set identification: TPIR at FPIR against an enrolled gallery of identity templates.

A gallery enrols identities as templates (the normalised mean of each identity's enrolment images,
insightface's IJB protocol), plus distractor templates. Every probe is searched against all of them:

* a *mated* probe (its identity is enrolled) is identified at threshold t when its own identity's
  template ranks first (scores strictly above every other template: ties count against it, as in
  ``retrieval.py``) **and** that score is ≥ t — insightface's corrected TPIR, which does not credit a
  rank-1 hit below the threshold;
* a *non-mated* probe (not enrolled) raises a false alarm when its best template score is ≥ t.

    FPIR(t) = |{non-mated: top score ≥ t}| / N_nm        TPIR(t) = |{mated: rank-1 correct, score ≥ t}| / N_m

TPIR at FPIR is the highest TPIR among thresholds whose FPIR ≤ the target: t just above the
(m + 1)-th largest non-mated top score, m the admissible false-alarm count (``verification.py``'s
rule). Scores are computed chunk by chunk (probes × templates), never all at once.
"""
from __future__ import annotations

from typing import Sequence

import torch

from .checks import unit_rows
from .verification import threshold_at_far

FPIRS = (1e-2, 1e-1)
_CHUNK = 4096


def identity_templates(embeddings: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(templates [T, d] unit rows, their labels [T]): the normalised mean embedding of each identity."""
    embeddings = unit_rows(embeddings, "enrolment")
    labels = labels.reshape(-1).to(embeddings.device)
    identities, inverse = torch.unique(labels, return_inverse=True)
    sums = torch.zeros(len(identities), embeddings.shape[1], dtype=embeddings.dtype, device=embeddings.device)
    sums.index_add_(0, inverse, embeddings)
    return torch.nn.functional.normalize(sums, dim=1), identities


@torch.no_grad()
def search_templates(probes: torch.Tensor, probe_labels: torch.Tensor, templates: torch.Tensor,
                     template_labels: torch.Tensor, chunk: int = _CHUNK) -> tuple[torch.Tensor, torch.Tensor]:
    """Per probe: (top template score, rank-1 correct). Correct needs the probe's own template strictly
    above every other one; a probe whose identity has no template is never correct."""
    probes = unit_rows(probes, "probes")
    templates = unit_rows(templates, "templates", probes.device)
    probe_labels, template_labels = probe_labels.reshape(-1).to(probes.device), template_labels.reshape(-1).to(probes.device)
    top, correct = [], []
    for start in range(0, len(probes), chunk):
        scores = probes[start:start + chunk] @ templates.T
        own = probe_labels[start:start + chunk, None] == template_labels[None, :]
        own_best = scores.masked_fill(~own, float("-inf")).max(1).values if scores.shape[1] else torch.full((len(scores),), float("-inf"))
        other_best = scores.masked_fill(own, float("-inf")).max(1).values if scores.shape[1] else own_best
        top.append(torch.maximum(own_best, other_best))
        correct.append(own_best > other_best)
    return torch.cat(top), torch.cat(correct)


def tpir_at_fpir(mated_top_scores: torch.Tensor, mated_correct: torch.Tensor, nonmated_top_scores: torch.Tensor,
                 fpirs: Sequence[float] = FPIRS) -> dict[float, float]:
    """``{FPIR: TPIR}`` from the searches of mated and non-mated probes (module docstring)."""
    mated_top_scores, mated_correct = mated_top_scores.reshape(-1).double(), mated_correct.reshape(-1).bool()
    if mated_top_scores.numel() == 0:
        raise ValueError("no mated probes: TPIR cannot be measured")
    out = {}
    for fpir in fpirs:
        threshold = threshold_at_far(nonmated_top_scores, fpir)
        out[fpir] = float((mated_correct & (mated_top_scores > threshold)).double().mean())
    return out


def open_set_identification(
    enrol: torch.Tensor, enrol_labels: torch.Tensor, mated: torch.Tensor, mated_labels: torch.Tensor,
    nonmated: torch.Tensor, distractors: torch.Tensor | None = None, fpirs: Sequence[float] = FPIRS,
) -> dict[str, float]:
    """TPIR at each FPIR and the closed-set rank-1 rate of ``mated`` probes against templates of
    ``enrol`` (plus one template per distractor image), false alarms measured on ``nonmated`` probes.
    Returns ``{"TPIR@FPIR=0.01": ..., "rank1": ...}``."""
    templates, labels = identity_templates(enrol, enrol_labels)
    if distractors is not None and len(distractors):
        distractors = unit_rows(distractors, "distractors", templates.device)
        fresh = labels.max() + 1 + torch.arange(len(distractors), device=labels.device)  # one identity each, never a probe's
        templates, labels = torch.cat([templates, distractors]), torch.cat([labels, fresh])
    mated_top, mated_correct = search_templates(mated, mated_labels, templates, labels)
    nonmated_top, _ = search_templates(nonmated, torch.full((len(nonmated),), -1, dtype=labels.dtype), templates, labels)
    out = {f"TPIR@FPIR={fpir:g}": value for fpir, value in tpir_at_fpir(mated_top, mated_correct, nonmated_top, fpirs).items()}
    out["rank1"] = float(mated_correct.double().mean())
    return out
