"""Relearning attack: fine-tune the unlearned model on a few images of each forgotten person.

An attacker holding 2 photos per forgotten identity fine-tunes the whole network with CosFace
(SGD, momentum 0.9) for N steps and checks whether retrieval of those people comes back. Measured
after each N of ``steps`` on the same held-back forget queries; compared with the same attack on
Retrain (which never saw them), the gap is what unlearning left behind.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch


def relearn(backbone: torch.nn.Module, head: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor,
            evaluate: Callable[[torch.nn.Module], dict], steps: Sequence[int] = (10, 50, 100), lr: float = 1e-4,
            ) -> dict[int, dict]:
    """``{N: evaluate(backbone after N steps)}`` on copies (the given modules are left untouched).

    ``images`` (normalised, [B, 3, H, W]) and ``labels`` are the attacker's whole batch, used at every
    step; BatchNorm statistics stay frozen (eval mode), as in the paper's unlearning runs."""
    backbone, head = copy.deepcopy(backbone).eval(), copy.deepcopy(head)
    for module in (backbone, head):
        module.requires_grad_(True)
    optimiser = torch.optim.SGD([*backbone.parameters(), *head.parameters()], lr=lr, momentum=0.9)
    results, done = {}, 0
    for target in sorted(steps):
        for _ in range(target - done):
            loss = head(backbone(images), labels)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"relearning attack: non-finite loss at step {done + 1}")
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            done += 1
        backbone.eval()
        with torch.no_grad():
            results[target] = evaluate(backbone)
    return results
