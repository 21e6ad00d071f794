"""The base LightningModule of every method: backbone, CosFace head, optimiser, retention, frozen parameters."""

from __future__ import annotations

from typing import Any, Iterable, Literal, Protocol

import copy

import lightning as L
import torch
from torch import nn

from faceunlearn.data.dataset import model_input
from faceunlearn.methods.optim import optimizer_and_schedule
from faceunlearn.methods.retention import START_MODEL_TERMS, RetentionTerms, retention_streams, retention_weights
from faceunlearn.methods.saliency import SALIENCY_LOSSES
from faceunlearn.methods.saliency_mask import SaliencyMask
from faceunlearn.models import CosFaceHead
from faceunlearn.models.loading import build_recognizer
from faceunlearn.models.head_imprint import class_mean_embeddings, imprinted_weights
from faceunlearn.methods.shrink_perturb import shrink_and_perturb
from faceunlearn.models.weights import CheckpointMismatchError


class TrainingImages(Protocol):
    """What a method reads besides its batches (``FaceDataModule`` provides it)."""

    def use_streams(self, streams) -> None: ...
    def forget_train_dataloader(self) -> Iterable: ...
    def training_identity_dataloader(self) -> Iterable: ...


class FaceModule(RetentionTerms, L.LightningModule):
    """IResNet encoder ``f_θ`` + CosFace head; a method subclass supplies ``loss_terms``.

    The training loss (``step_terms``) is ``Σ loss_terms(batch) + Σ_k λ_k·R_k(retain batch)``: the method's own
    objective plus the retention terms ``retention`` selects (``cosface``, ``distill``, ``relational``, ``pool_distill``:
    ``methods.retention``), on one forward pass of a D_r batch (retain training identities only). ``f_0``
    (``start_model``: as loaded from ``init_weights``, frozen, eval mode, not checkpointed) is kept once per module
    and shared with methods that need it (Boundary Shrink attacks it).

    Args:
        num_classes: CosFace classes (training identities); linked from the DataModule by the CLI.
        backbone: ``iresnet18|34|50|100`` (insightface layout), ``iresnet_tiny`` or ``iresnet_tiny56`` (CPU demo), or
            ``onnx``: the ONNX recognizer named by ``init_weights`` (a path or ``sface``), converted to a
            trainable module (``faceunlearn.models.onnx_backbone``), its input convention kept.
        embedding_size: dimension of ``z`` (default 512 for IResNets; an ONNX model's is read from it).
        scale, margin: CosFace ``s`` and ``m`` (insightface defaults 64, 0.4).
        optimizer: ``sgd`` (the paper's optimiser for every method) or ``adamw`` (used to train the
            demo's Original model from scratch, where SGD needs far more than a CPU-minute budget).
        lr, momentum, weight_decay: optimiser settings (``momentum`` is SGD's).
        lr_schedule: ``constant``, or ``linear`` decay to 0 over the run (the Original fine-tune).
        warmup_steps: linear warm-up steps before the schedule.
        retain_weight: λ of the CosFace retention term (``retention: {cosface: λ}``).
        retention: retention terms and their weights, e.g. ``{distill: 1.0, relational: 0.5}``
            (``cosface``, ``distill``, ``relational``, ``pool_distill``; combinable; weights ≥ 0, 0 = off).
        init_weights: start from these weights — a faceunlearn ``.ckpt`` (backbone and head), an
            insightface ``backbone.pth`` (backbone only) or, with ``backbone: onnx``, an ONNX file.
            ``--ckpt_path`` resumes a run instead. Start weights that carry no CosFace head get one
            imprinted at the start of fit/validate/test: each training identity's row is the
            normalised mean embedding of its training images (D_f^train and D_r), so the CosFace
            baselines and the head's centroid accuracy mean something from step 0. The file's
            SHA-256 is saved in checkpoints; resuming after the file changed is an error.
        input_mean, input_std: override an ONNX model's input convention ``(pixels − mean)/std``
            (default: decided from the graph as insightface does; SFace: 0 and 1).
        train_dropout: keep an ONNX graph's Dropout active in training (default off).
        forward_chunk_size: run the backbone on chunks of this many images and concatenate. With
            BatchNorm statistics fixed every image is independent, so this is exact; it pays on CPUs,
            where some networks (SFace: 4×) run far faster on small batches.
        channels_last: channels-last memory format for the backbone and its inputs (pays on GPUs'
            tensor cores, with ``trainer.precision: bf16-mixed``).
        compile: ``torch.compile`` the backbone's forward: ``true``, or a dict of ``torch.compile``
            arguments (``{mode: max-autotune}``, ``{backend: aot_eager}``). Off by default: on a CPU the
            compilation costs more than a short run saves. The module's parameters and checkpoint keys
            are unchanged (the compiled function wraps the same backbone).

    Under ``trainer.precision: bf16-mixed`` the backbone runs in bfloat16 but ``forward`` returns
    float32 embeddings, and the CosFace head and every loss run in float32 (``losses.float32``),
    as do the evaluation metrics on those embeddings.
        freeze: parameter-name prefixes that are not trained (e.g. ``[head]``).
        freeze_bn_stats: keep BatchNorm running statistics fixed during training. Forget batches
            hold ~10 identities; letting them re-estimate the statistics shifts every embedding,
            so unlearning methods default to fixed statistics (gradients still flow through BN).
        saliency_fraction: SalUn weight saliency (SPEC §3, ``faceunlearn.methods.saliency``) for any
            method: γ, the share of trainable parameter elements that may change. At the start of
            fit the saliency ``|Σ ∇_θ L_forget|`` over D_f^train is ranked globally and only the top
            ``round(γ·N)`` elements are trained (SalUn-0.5: 0.5); the others stay bitwise at their
            start values — neither weight decay nor momentum moves them. ``None`` (default): no mask.
            The masks are saved in checkpoints, so a ``--ckpt_path`` resume keeps them.
        saliency_loss: the forgetting loss ranked: ``cfga`` (CosFace gradient ascent), ``embnorm``
            (mean embedding norm) or ``lipschitz`` (the Lipschitz loss under Gaussian input noise).
        saliency_noise_std, saliency_noise_draws: σ of the input noise ``δ ~ N(0, σ²)`` (images are
            in [-1, 1]) and its number of draws N per image, for ``saliency_loss: lipschitz``.
        shrink_perturb: ``{shrink: α, noise: σ, seed: s}``: at the start of a fit (not a resume) the backbone's
            trainable weights become ``α·θ + σ·rms(θ)·ε`` (``faceunlearn.methods.shrink_perturb``), to leave the
            start model's basin; the frozen start model keeps the unperturbed weights. None (default): off.
        training_images: the source of the training images (``TrainingImages``: a ``FaceDataModule``),
            linked by the CLI (``data`` → ``model.init_args.training_images``); in Python, pass the
            DataModule. ````fit`` tells it the streams ``train_streams`` names (``use_streams``), SalUn D_f^train and head
            imprinting the training identities' images. Never saved as a hyper-parameter.

    The DataModule's batches leave its loaders as uint8 and become the network's float input on the
    device (``FaceDataModule.on_after_batch_transfer``; ``device_batch`` for the loops outside the Trainer's).
    """

    #: DataModule streams that ``loss_terms`` reads (the retain stream is added when a retention term is on)
    loss_streams: tuple[str, ...] = ("forget",)
    #: whether the method itself uses the frozen start model ``start_model`` (Boundary Shrink)
    needs_start_model: bool = False

    def __init__(
        self,
        num_classes: int,
        backbone: str = "iresnet50",
        embedding_size: int | None = None,
        scale: float = 64.0,
        margin: float = 0.4,
        optimizer: Literal["sgd", "adamw"] = "sgd",
        lr: float = 0.01,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        lr_schedule: Literal["constant", "linear"] = "constant",
        warmup_steps: int = 0,
        retain_weight: float = 0.0,
        retention: dict[str, float] | None = None,
        init_weights: str | None = None,
        freeze: list[str] | None = None,
        freeze_bn_stats: bool = True,
        saliency_fraction: float | None = None,
        saliency_loss: Literal["cfga", "embnorm", "lipschitz"] = "cfga",
        saliency_noise_std: float = 0.1,
        saliency_noise_draws: int = 4,
        input_mean: float | None = None,
        input_std: float | None = None,
        train_dropout: bool = False,
        forward_chunk_size: int | None = None,
        channels_last: bool = False,
        compile: bool | dict[str, Any] = False,
        shrink_perturb: dict[str, float] | None = None,
        training_images: Any = None,  # a TrainingImages (typed Any: jsonargparse would parse a Protocol as a class)
    ):
        super().__init__()
        #: where the training streams, D_f^train and the head-imprinting images come from (the CLI links the DataModule)
        self.training_images = training_images
        if saliency_fraction is not None and not (
            isinstance(saliency_fraction, (int, float)) and 0.0 < saliency_fraction <= 1.0
        ):
            raise ValueError(
                f"saliency_fraction must be in (0, 1] (the share of parameter elements SalUn lets move, "
                f"e.g. 0.5) or None for no mask, got {saliency_fraction!r}"
            )
        if saliency_loss not in SALIENCY_LOSSES:
            raise ValueError(f"unknown saliency_loss {saliency_loss!r}; choose one of {', '.join(SALIENCY_LOSSES)}")
        if saliency_noise_std <= 0 or saliency_noise_draws < 1:
            raise ValueError(
                f"saliency_noise_std must be > 0 and saliency_noise_draws >= 1, "
                f"got {saliency_noise_std} and {saliency_noise_draws}"
            )
        if forward_chunk_size is not None and (forward_chunk_size < 1 or not freeze_bn_stats):
            raise ValueError(
                f"forward_chunk_size={forward_chunk_size} must be a positive integer and needs freeze_bn_stats: true "
                f"(BatchNorm in training mode normalises by batch statistics, so chunks would change the result)"
            )
        self.retention_weights = retention_weights(retain_weight, retention)
        if shrink_perturb is not None and (set(shrink_perturb) - {"shrink", "noise", "seed"}):
            raise ValueError(f"shrink_perturb takes shrink, noise and seed; got {sorted(shrink_perturb)}")
        self.save_hyperparameters(ignore=["training_images"])
        #: whether this module's weights came from a resumed checkpoint (shrink-and-perturb is not applied again)
        self._resumed = False
        #: (retain images, their embeddings) of the step under way (``retain_embeddings``)
        self._step_retain: tuple[torch.Tensor, torch.Tensor] | None = None
        network = build_recognizer(backbone, num_classes, init_weights, embedding_size, scale, margin, input_mean, input_std,
                                   train_dropout)
        self.backbone, self.head, self.embedding_size = network.backbone, network.head, network.embedding_size
        #: where the start weights came from and their SHA-256 (checked when a run resumes)
        self.start_weights: dict | None = network.start_weights
        #: "checkpoint" (loaded or resumed), "imprinted" (class-mean embeddings), "trained" (from scratch,
        #: once training starts), "scratch" (no start weights: random, not yet trained) or "random"
        #: (start weights without a head, until it is imprinted)
        self.head_source = network.head_source
        if channels_last:
            self.to(memory_format=torch.channels_last)
        # The compiled forward wraps self.backbone (same parameters); kept outside the submodules so
        # state_dict keys stay insightface's, not "_orig_mod."-prefixed.
        options = compile if isinstance(compile, dict) else {}
        self.__dict__["compiled_backbone"] = torch.compile(self.backbone, **options) if compile else None
        self.frozen_prefixes = tuple(freeze or ())
        for name, parameter in self.named_parameters():
            if name.startswith(self.frozen_prefixes):
                parameter.requires_grad_(False)
        if self.needs_start_model or START_MODEL_TERMS & set(self.retention_weights):
            # f_0, copied right after init_weights were loaded, so a --ckpt_path resume still has the start model
            start_model = copy.deepcopy(nn.ModuleDict({"backbone": self.backbone, "head": self.head})).eval()
            start_model.requires_grad_(False)
            if compile:  # the frozen copy runs every step too (retention targets, Boundary Shrink's attack)
                start_model["backbone"] = torch.compile(start_model["backbone"], **options)
            self.__dict__["start_model"] = start_model  # not a submodule: neither trained nor checkpointed
        else:
            self.__dict__["start_model"] = None
        #: SalUn's mask (``saliency_fraction``), None without one
        self.saliency = None if saliency_fraction is None else SaliencyMask(
            saliency_fraction, saliency_loss, saliency_noise_std, saliency_noise_draws)

    # -- data ----------------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        if self.training_images is not None:
            self.training_images.use_streams(self.train_streams)  # the DataModule's train_dataloader serves these

    def device_batch(self, batch: dict) -> dict:
        """A loader's batch as a step sees it, for loops outside the Trainer's (saliency, imprinting)."""
        batch = {key: value.to(self.device, non_blocking=True) if isinstance(value, torch.Tensor) else value
                 for key, value in batch.items()}
        return model_input(batch)

    @property
    def train_streams(self) -> tuple[str, ...]:
        # a method may read "retain" itself (ContrastiveUnlearning)
        return tuple(dict.fromkeys(self.loss_streams + retention_streams(self.retention_weights)))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Raw embeddings ``z = f_θ(x)`` (not normalised), float32 under any precision."""
        backbone = self.backbone if self.compiled_backbone is None else self.compiled_backbone
        return self.embed_with(backbone, images)

    def embed_with(self, backbone: nn.Module, images: torch.Tensor) -> torch.Tensor:
        """``backbone(images)`` with this module's memory format and forward chunks, as float32."""
        if self.hparams.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        chunk = self.hparams.forward_chunk_size
        if chunk is None or len(images) <= chunk:
            return backbone(images).float()
        return torch.cat([backbone(part) for part in images.split(chunk)]).float()

    # -- a CosFace head for start weights that carry none ------------------------------------------
    @property
    def head_ready(self) -> bool:
        """Whether the head's rows are class centroids (loaded, resumed or imprinted), not random."""
        return self.head_source not in ("random", "scratch")

    def imprint_head(self) -> None:
        """Head rows = normalised class-mean embeddings of the training identities' training images.

        ``W_c = normalize(Σ_{i: y_i = c} ẑ_i)`` over D_f^train ∪ D_r (never D_f^test or an evaluation
        identity); classes without training images keep their rows. Rank 0's result is broadcast.
        """
        if self.training_images is None:
            return  # no training images here: the head stays "random" and no accuracy is logged
        self.imprint(self.head, self)
        self.head_source = "imprinted"

    def imprint(self, head: CosFaceHead, embed) -> None:
        """Set ``head``'s rows from ``embed``'s class-mean embeddings of the training images."""
        was_training = self.training
        self.eval()
        batches = (self.device_batch(batch) for batch in self.training_images.training_identity_dataloader())
        sums, counts = class_mean_embeddings(embed, batches, head.weight.shape[0], self.device)
        self.train(was_training)
        sums, counts = self.trainer.strategy.broadcast((sums.cpu(), counts.cpu()), src=0)
        with torch.no_grad():
            head.weight.copy_(imprinted_weights(sums, counts, head.weight))

    def _ensure_head(self) -> None:
        if self.head_source == "random":
            self.imprint_head()

    def on_fit_start(self) -> None:
        if self.hparams.shrink_perturb and not self._resumed:
            shrink_and_perturb(self.backbone, **self.hparams.shrink_perturb)
        self._ensure_head()  # before the step-0 evaluation, which runs next
        if self.start_model is not None:
            self.start_model.to(self.device)

    def on_validation_start(self) -> None:
        self._ensure_head()

    def on_test_start(self) -> None:
        self._ensure_head()

    def on_train_start(self) -> None:
        # Lightning restores each submodule's captured mode after evaluation but never calls
        # .train() itself, so apply the BatchNorm policy once here; the captures then keep it.
        self.train()
        if self.head_source == "scratch" and self.head.weight.requires_grad:
            self.head_source = "trained"  # a model trained from scratch: its head trains from here on
        if self.hparams.saliency_fraction is not None:
            self._setup_saliency()

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

    def step_terms(self, batch: dict[str, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """Every named term of one training step's loss: the method's own and the retention terms (their sum is the
        loss). The embeddings the terms share within the step are dropped afterwards."""
        try:
            terms = self.loss_terms(batch)
            if self.retention_weights:
                terms.update(self.retention_terms(batch.get("retain"), batch.get("pool")))
        finally:
            self._step_retain = None  # the graph goes with the step
            self.__dict__["_step_start"] = None
        return terms

    def training_step(self, batch: dict[str, dict[str, torch.Tensor]], batch_idx: int) -> torch.Tensor:
        terms = self.step_terms(batch)
        loss = torch.stack(list(terms.values())).sum()
        if not torch.isfinite(loss):
            values = ", ".join(f"{name}={value.item():.4g}" for name, value in terms.items())
            raise FloatingPointError(f"non-finite loss at step {self.global_step} ({values}); lower the learning rate "
                                     f"(lr={self.hparams.lr}) or check the input data")
        batch_size = next(iter(batch.values()))["image"].shape[0]
        self.log_dict({f"train/{name}": value.detach() for name, value in terms.items()}, batch_size=batch_size)
        self.log("train/loss", loss.detach(), prog_bar=True, batch_size=batch_size)
        return loss

    # -- evaluation: embeddings only; the RetrievalEvaluation callback computes the metrics --------
    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        return {"embeddings": self(batch["image"])}

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        return self.validation_step(batch, batch_idx)

    # -- SalUn weight saliency (the SaliencyMask object holds the masks and the fixed values) -------
    @property
    def saliency_masks(self) -> dict[str, torch.Tensor] | None:
        """SalUn masks by parameter name (True = may change); set at fit start or from a checkpoint."""
        return None if self.saliency is None else self.saliency.masks

    @property
    def saliency_kept_fraction(self) -> float | None:
        """Share of trainable elements the mask keeps (logged once as ``saliency/kept_fraction``)."""
        return None if self.saliency is None else self.saliency.kept_fraction

    def compute_saliency_masks(self) -> dict[str, torch.Tensor]:
        """Masks of the top ``saliency_fraction`` of trainable elements by saliency over D_f^train."""
        if self.training_images is None:
            raise RuntimeError("saliency_fraction needs the forget set: pass training_images=<the FaceDataModule> "
                               "(the CLI links it from data)")
        batches = (self.device_batch(batch) for batch in self.training_images.forget_train_dataloader())
        return self.saliency.compute(self, batches)

    def _setup_saliency(self) -> None:
        self.saliency.start(self, self.compute_saliency_masks, self.trainer.strategy.broadcast, self.device)
        for logger in self.loggers:
            logger.log_metrics({"saliency/kept_fraction": self.saliency.kept_fraction}, step=self.global_step)

    def on_before_optimizer_step(self, optimizer) -> None:
        if self.saliency is not None:
            self.saliency.zero_fixed_gradients()

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None) -> None:
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        if self.saliency is not None:
            self.saliency.restore_fixed()

    def on_train_end(self) -> None:
        if self.saliency is not None:
            self.saliency.release()

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["head_source"] = self.head_source
        # whether this run unlearns (trains on forget batches): `purge --checkpoints` leaves other runs' files alone
        checkpoint["unlearning"] = any(stream.startswith("forget") for stream in self.train_streams)
        if self.start_weights is not None:
            checkpoint["start_weights"] = self.start_weights
        state = None if self.saliency is None else self.saliency.state()
        if state is not None:
            checkpoint["saliency"] = state

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self._resumed = True
        self.head_source = checkpoint.get("head_source", "checkpoint")
        recorded, current = checkpoint.get("start_weights"), self.start_weights
        if recorded and current and recorded.get("sha256") != current.get("sha256"):
            raise CheckpointMismatchError(
                f"this run started from {recorded['path']} (sha256 {recorded['sha256'][:12]}…), but init_weights now "
                f"names {current['path']} (sha256 {current['sha256'][:12]}…): the file changed since; restore it or start a new run"
            )
        saved = checkpoint.get("saliency")
        if saved is not None and self.saliency is not None:
            self.saliency.load(saved)

    # -- optimisation --------------------------------------------------------------------------
    def configure_optimizers(self):
        hp = self.hparams
        total = self.trainer.estimated_stepping_batches if self.trainer else 1
        return optimizer_and_schedule([p for p in self.parameters() if p.requires_grad], hp.optimizer, hp.lr, hp.momentum,
                                      hp.weight_decay, hp.warmup_steps, hp.lr_schedule, total)
