"""Relearning attacks: fine-tune the audited network on a few photos and see who comes back.

The attacker holds a few photos of some people (2 per forgotten person; or, retain-only relearning,
2 per retain person and none of the forgotten) and fine-tunes the whole network with CosFace (SGD,
momentum 0.9) for N steps. It reads nothing of the audited model but its embedding network: its
CosFace head is its own, imprinted under the attacked model at the start of the attack (row c = the
normalised mean embedding of its photos of person c), so the Original, Retrain and every method face
the same attack (an unlearned model's own head still holds a template of each forgotten person; the
attacker never sees it). Measured after each N of ``steps`` on the same held-back forget queries.

``relearn_grid`` runs that attack at every lr of a grid and keeps, per N, the strongest (highest
forget mAP): the attacker's best effort against each model, not one lr tuned for one of them.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from faceunlearn.models.cosface import CosFaceHead


@torch.no_grad()
def imprinted_head(embeddings: torch.Tensor, labels: torch.Tensor, scale: float = 64.0, margin: float = 0.4
                   ) -> tuple[CosFaceHead, torch.Tensor]:
    """A CosFace head with one row per label of ``labels``, each the normalised mean of its normalised
    embeddings, and the labels as that head's classes (0 … C−1)."""
    classes, targets = torch.unique(labels, return_inverse=True)
    z = F.normalize(embeddings.float(), dim=1)
    sums = torch.zeros(len(classes), z.shape[1], device=z.device).index_add_(0, targets.to(z.device), z)
    head = CosFaceHead(z.shape[1], len(classes), scale, margin).to(z.device)
    head.weight.copy_(F.normalize(sums, dim=1))
    return head, targets.to(z.device)


def relearn(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
            evaluate: Callable[[torch.nn.Module], dict], steps: Sequence[int] = (10, 50, 100), lr: float = 1e-4,
            ) -> dict[int, dict]:
    """``{N: evaluate(model after N steps)}``, fine-tuning a copy (``model`` is left untouched).

    ``model(images)`` gives embeddings; ``images`` (normalised, [B, 3, H, W]) and ``labels`` are the
    attacker's whole batch, used at every step, and its head is imprinted from them under ``model``
    before the first step. BatchNorm statistics stay frozen (eval mode), as in the unlearning runs."""
    model = copy.deepcopy(model).eval()
    with torch.no_grad():
        head, targets = imprinted_head(model(images), labels)
    model.requires_grad_(True)
    optimiser = torch.optim.SGD([*model.parameters(), *head.parameters()], lr=lr, momentum=0.9)
    results, done = {}, 0
    for target in sorted(steps):
        for _ in range(target - done):
            loss = head(model(images), targets)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"relearning attack: non-finite loss at step {done + 1} (lr {lr:g})")
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            done += 1
        model.eval()
        with torch.no_grad():
            results[target] = evaluate(model)
    return results


def relearn_grid(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
                 evaluate: Callable[[torch.nn.Module], dict], steps: Sequence[int], lrs: Sequence[float],
                 strength: str = "mAP", on_lr: Callable[[float], None] | None = None
                 ) -> tuple[dict[int, dict], dict[float, dict[int, dict]]]:
    """The attack at every lr of ``lrs``: ``(strongest, every)``. ``strongest[N]`` is the result with the
    highest ``strength`` after N steps, with its ``lr`` added; ``every[lr][N]`` every result (a non-finite
    loss at some lr is that lr's failure, recorded as an empty result, not the audit's). ``on_lr(lr)``: called
    after each lr's attack (progress)."""
    every: dict[float, dict[int, dict]] = {}
    for lr in lrs:
        try:
            every[float(lr)] = relearn(model, images, labels, evaluate, steps, lr)
        except FloatingPointError:
            every[float(lr)] = {}
        if on_lr is not None:
            on_lr(float(lr))
    strongest = {}
    for target in sorted(steps):
        tried = [(result[target][strength], lr) for lr, result in every.items() if target in result
                 and result[target][strength] == result[target][strength]]
        if tried:
            _, lr = max(tried)
            strongest[target] = {**every[lr][target], "lr": lr}
    return strongest, every
