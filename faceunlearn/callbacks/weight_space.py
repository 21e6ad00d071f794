"""How far a run has left the start model's basin, logged while it trains (issue 28's diagnostics).

* ``diagnostics/weight_distance``: ``‖θ − θ_0‖/‖θ_0‖`` of the embedding network's trainable tensors, every
  ``every_n_steps`` training steps;
* ``diagnostics/grad_norm_max``: the largest total L2 norm of the trainable parameters' gradients (before any
  clipping) over the steps since the last log, every ``every_n_steps`` steps — a run that diverges (a forget set
  whose dispersion jumps to 1, everyone collapsed) shows the spike that started it, which a 10-step loss curve hides;
* ``diagnostics/midpoint_forget_mAP`` and ``…_R@1``: at the end of fit, forget retrieval (D_f^test queries
  against every D_f image, as the ``forget`` benchmark) with the weights at the midpoint ``(θ + θ_0)/2`` —
  a run that only hid the forgotten people finds them again there (the audit's basin test, during training).

``θ_0`` is the method's frozen start model (kept when a retention term or forgetting term reads it, e.g.
distillation); a run without one logs no distance or midpoint (the audit's basin test still measures it). The gradient
norm is logged for every run; it is kept as a tensor between logs (no host sync per step).
"""
from __future__ import annotations

import lightning as L
import torch

from faceunlearn.methods.weight_space import midpoint_weights, relative_distance, trainable


class WeightSpaceDiagnostics(L.Callback):
    """Log the weight distance to the start model during fit, and forget retrieval at the weight midpoint at its end.

    Args:
        every_n_steps: log the distance every this many training steps (0: never).
        midpoint_at_end: evaluate forget retrieval at the weight midpoint when fit ends.
        data: the FaceDataModule (linked by the CLI) that serves the ``forget`` and ``forget_test`` subsets.
    """

    def __init__(self, every_n_steps: int = 10, midpoint_at_end: bool = True, data=None):
        if every_n_steps < 0:
            raise ValueError(f"every_n_steps must be >= 0, got {every_n_steps}")
        self.every_n_steps = every_n_steps
        self.midpoint_at_end = midpoint_at_end
        self.data = data
        self.grad_norm_max: torch.Tensor | None = None  # since the last log

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        grads = [p.grad for p in pl_module.parameters() if p.requires_grad and p.grad is not None]
        if not self.every_n_steps or not grads:
            return
        norm = torch.nn.utils.get_total_norm(grads).detach()  # what clip_grad_norm_ measures, before it clips
        self.grad_norm_max = norm if self.grad_norm_max is None else torch.maximum(self.grad_norm_max, norm)

    @staticmethod
    def _start(pl_module) -> dict[str, torch.Tensor] | None:
        start_model = getattr(pl_module, "start_model", None)
        return None if start_model is None else dict(start_model["backbone"].named_parameters())

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not self.every_n_steps or trainer.global_step % self.every_n_steps:
            return
        if self.grad_norm_max is not None:
            pl_module.log("diagnostics/grad_norm_max", self.grad_norm_max, on_step=True, on_epoch=False, batch_size=1)
            self.grad_norm_max = None
        start = self._start(pl_module)
        if start is None:
            return
        distance = relative_distance(trainable(pl_module.backbone), start)
        pl_module.log("diagnostics/weight_distance", distance, on_step=True, on_epoch=False, batch_size=1)

    @torch.no_grad()
    def on_train_end(self, trainer, pl_module) -> None:
        start = self._start(pl_module)
        if start is None or not self.midpoint_at_end or self.data is None:
            return
        from faceunlearn.methods.embedding import embed_subsets
        from faceunlearn.metrics import retrieval_metrics

        names = [name for name in ("forget", "forget_test") if name in self.data.subsets]
        if len(names) < 2:
            return
        weights = trainable(pl_module.backbone)
        kept = {name: value.detach().clone() for name, value in weights.items()}
        was_training = pl_module.training
        try:  # the module itself at the midpoint for one pass (a copy would copy its trainer too)
            for name, value in midpoint_weights(weights, start).items():
                weights[name].copy_(value)
            again = embed_subsets(pl_module, self.data, names)
        finally:
            for name, value in kept.items():
                weights[name].copy_(value)
            pl_module.train(was_training)
        (q, ql, qi), (g, gl, gi) = again["forget_test"], again["forget"]
        found = retrieval_metrics(q, ql, g, gl, qi, gi, ks=(1,))
        metrics = {"diagnostics/midpoint_forget_mAP": found["mAP"], "diagnostics/midpoint_forget_R@1": found["R@1"],
                   "diagnostics/weight_distance": float(relative_distance(trainable(pl_module.backbone), start))}
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)
        self.last = metrics
