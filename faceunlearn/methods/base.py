"""The base LightningModule of every method: backbone, CosFace head, optimiser, retention, frozen parameters."""

from __future__ import annotations

from typing import Literal

import lightning as L
import torch
from torch import nn

from faceunlearn.models import CosFaceHead, build_backbone, load_weights


class FaceModule(L.LightningModule):
    """IResNet encoder ``f_θ`` + CosFace head; a method subclass supplies ``loss_terms``.

    The training loss is ``Σ loss_terms(batch) + λ·L_cos(retain batch)`` (SPEC §3: the optional
    retention term of every method; ``retain_weight`` = λ, 0 disables it and the retain stream).

    Args:
        num_classes: CosFace classes (training identities); linked from the DataModule by the CLI.
        backbone: ``iresnet18|34|50|100`` (insightface layout) or ``iresnet_tiny`` (CPU demo).
        embedding_size: dimension of ``z``.
        scale, margin: CosFace ``s`` and ``m`` (insightface defaults 64, 0.4).
        optimizer: ``sgd`` (the paper's optimiser for every method) or ``adamw`` (used to train the
            demo's Original model from scratch, where SGD needs far more than a CPU-minute budget).
        lr, momentum, weight_decay: optimiser settings (``momentum`` is SGD's).
        lr_schedule: ``constant``, or ``linear`` decay to 0 over the run (the Original fine-tune).
        warmup_steps: linear warm-up steps before the schedule.
        retain_weight: λ of the retention term.
        init_weights: start from these weights — a faceunlearn ``.ckpt`` (backbone and head) or an
            insightface ``backbone.pth`` (backbone only). ``--ckpt_path`` resumes a run instead.
        freeze: parameter-name prefixes that are not trained (e.g. ``[head]``).
        freeze_bn_stats: keep BatchNorm running statistics fixed during training. Forget batches
            hold ~10 identities; letting them re-estimate the statistics shifts every embedding,
            so unlearning methods default to fixed statistics (gradients still flow through BN).
    """

    #: DataModule streams that ``loss_terms`` reads (the retain stream is added when λ > 0)
    loss_streams: tuple[str, ...] = ("forget",)

    def __init__(
        self,
        num_classes: int,
        backbone: str = "iresnet50",
        embedding_size: int = 512,
        scale: float = 64.0,
        margin: float = 0.4,
        optimizer: Literal["sgd", "adamw"] = "sgd",
        lr: float = 0.01,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        lr_schedule: Literal["constant", "linear"] = "constant",
        warmup_steps: int = 0,
        retain_weight: float = 0.0,
        init_weights: str | None = None,
        freeze: list[str] | None = None,
        freeze_bn_stats: bool = True,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.backbone = build_backbone(backbone, num_features=embedding_size)
        self.head = CosFaceHead(embedding_size, num_classes, scale, margin)
        if init_weights:
            load_weights(self.backbone, self.head, init_weights, backbone_name=backbone)
        self.frozen_prefixes = tuple(freeze or ())
        for name, parameter in self.named_parameters():
            if name.startswith(self.frozen_prefixes):
                parameter.requires_grad_(False)

    @property
    def train_streams(self) -> tuple[str, ...]:
        return self.loss_streams + (("retain",) if self.hparams.retain_weight > 0 else ())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Raw embeddings ``z = f_θ(x)`` (not normalised)."""
        return self.backbone(images)

    def on_train_start(self) -> None:
        # Lightning restores each submodule's captured mode after evaluation but never calls
        # .train() itself, so apply the BatchNorm policy once here; the captures then keep it.
        self.train()

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and self.hparams.freeze_bn_stats:
            for module in self.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self

    # -- losses --------------------------------------------------------------------------------
    def loss_terms(self, batch: dict[str, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """The method's own objective, as named scalar terms (summed into the loss)."""
        raise NotImplementedError

    def cosface(self, stream: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.head(self(stream["image"]), stream["label"])

    def training_step(self, batch: dict[str, dict[str, torch.Tensor]], batch_idx: int) -> torch.Tensor:
        terms = self.loss_terms(batch)
        if self.hparams.retain_weight > 0:
            terms["retain"] = self.hparams.retain_weight * self.cosface(batch["retain"])
        loss = torch.stack(list(terms.values())).sum()
        if not torch.isfinite(loss):
            values = ", ".join(f"{name}={value.item():.4g}" for name, value in terms.items())
            raise FloatingPointError(
                f"non-finite loss at step {self.global_step} ({values}); lower the learning rate "
                f"(lr={self.hparams.lr}) or check the input data"
            )
        batch_size = next(iter(batch.values()))["image"].shape[0]
        self.log_dict({f"train/{name}": value.detach() for name, value in terms.items()}, batch_size=batch_size)
        self.log("train/loss", loss.detach(), prog_bar=True, batch_size=batch_size)
        return loss

    # -- evaluation: embeddings only; the RetrievalEvaluation callback computes the metrics --------
    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        return {"embeddings": self(batch["image"])}

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        return self.validation_step(batch, batch_idx)

    # -- optimisation --------------------------------------------------------------------------
    def configure_optimizers(self):
        hp = self.hparams
        parameters = [p for p in self.parameters() if p.requires_grad]
        if hp.optimizer == "adamw":
            optimizer = torch.optim.AdamW(parameters, lr=hp.lr, weight_decay=hp.weight_decay)
        else:
            optimizer = torch.optim.SGD(parameters, lr=hp.lr, momentum=hp.momentum, weight_decay=hp.weight_decay)
        total = max(1, int(self.trainer.estimated_stepping_batches)) if self.trainer else 1

        def factor(step: int) -> float:
            if step < hp.warmup_steps:
                return (step + 1) / hp.warmup_steps
            if hp.lr_schedule == "linear":
                return max(0.0, 1.0 - (step - hp.warmup_steps) / max(1, total - hp.warmup_steps))
            return 1.0

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
