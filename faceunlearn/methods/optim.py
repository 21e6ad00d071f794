"""The optimiser and learning-rate schedule every method trains with (SPEC §3: SGD; AdamW for training an
Original from scratch), stepped per iteration: linear warm-up, then constant or linear decay to 0."""
from __future__ import annotations

import torch


def optimizer_and_schedule(parameters, optimizer: str, lr: float, momentum: float, weight_decay: float,
                           warmup_steps: int, lr_schedule: str, total_steps: int) -> dict:
    """Lightning's ``configure_optimizers`` answer for ``parameters`` over a run of ``total_steps`` steps."""
    if optimizer == "adamw":
        chosen = torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)
    else:
        chosen = torch.optim.SGD(parameters, lr=lr, momentum=momentum, weight_decay=weight_decay)
    total = max(1, int(total_steps))

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if lr_schedule == "linear":
            return max(0.0, 1.0 - (step - warmup_steps) / max(1, total - warmup_steps))
        return 1.0

    scheduler = torch.optim.lr_scheduler.LambdaLR(chosen, factor)
    return {"optimizer": chosen, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
