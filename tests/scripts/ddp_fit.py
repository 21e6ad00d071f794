"""Run ``fit`` of Dispersion, Boundary Shrink and a SalUn-masked Dispersion on 1 or N CPU processes
(Lightning DDP, gloo), then resume the first from its epoch-0 checkpoint; tests/scripts/ddp.py runs it.

Each rank writes OUT_DIR/rank<r>.json: per run, the forget-batch image ids it trained on, its
evaluation history, a SHA-256 of the final weights and of the SalUn masks. One intra-op thread per
process (see ddp_validate.py); evaluation batches of one image, so embeddings do not depend on how
the evaluation set is split over ranks.
"""
import hashlib
import json
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from faceunlearn.callbacks import RetrievalEvaluation
from faceunlearn.data import FaceDataModule
from faceunlearn.methods import BoundaryShrink, Dispersion
from faceunlearn.methods.saliency import pack_mask

RUNS = {
    "dispersion": (Dispersion, {}),
    "boundary_shrink": (BoundaryShrink, {"epsilon": 0.1}),
    "salun_dispersion": (Dispersion, {"saliency_fraction": 0.5}),
}


class ForgetBatches(L.Callback):
    """The image ids of every forget batch this rank trains on."""

    def __init__(self):
        self.batches = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.batches.append(batch["forget"]["image_id"].tolist())


def digest(tensors) -> str:
    hasher = hashlib.sha256()
    for tensor in tensors:
        hasher.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return hasher.hexdigest()


def fit(root, out_dir, processes, name, ckpt_path=None, max_epochs=2):
    method, extra = RUNS[name]
    L.seed_everything(0)
    data = FaceDataModule(root, num_forget_identities=8, batch_size=8, images_per_identity=4, eval_retain_identities=4,
                          eval_batch_size=1, batches_per_epoch=4, retain_batch_size=8)
    model = method(num_classes=20, backbone="iresnet_tiny", embedding_size=32, lr=0.05, retain_weight=0.5,
                   freeze=["backbone.conv1", "backbone.bn1", "backbone.prelu"], training_images=data, **extra)
    batches = ForgetBatches()
    evaluation = RetrievalEvaluation()
    checkpoints = ModelCheckpoint(dirpath=str(Path(out_dir, name)), save_top_k=-1, every_n_epochs=1, save_last=True)
    trainer = L.Trainer(
        accelerator="cpu", devices=processes, strategy="ddp" if processes > 1 else "auto", max_epochs=max_epochs,
        use_distributed_sampler=False, callbacks=[batches, evaluation, checkpoints],
        logger=False, enable_progress_bar=False, enable_model_summary=False,
    )
    trainer.fit(model, data, ckpt_path=ckpt_path, weights_only=True if ckpt_path else None)
    masks = model.saliency_masks
    return trainer, {
        "batches": batches.batches,
        "history": evaluation.history,
        "weights": digest(model.state_dict().values()),
        "masks": digest(pack_mask(mask) for mask in masks.values()) if masks else None,
        "kept_fraction": model.saliency_kept_fraction,
    }


def run(root: str, out_dir: str, processes: int) -> None:
    torch.set_num_threads(1)
    results = {}
    for name in RUNS:
        trainer, results[name] = fit(root, out_dir, processes, name)
    # resume the first run from its epoch-0 checkpoint: it must end with the uninterrupted run's weights
    trainer, results["dispersion_resumed"] = fit(root, out_dir + "/resumed", processes, "dispersion",
                                                 ckpt_path=str(Path(out_dir, "dispersion", "epoch=0-step=%d.ckpt" % (4 // processes))))
    Path(out_dir, f"rank{trainer.global_rank}.json").write_text(json.dumps(results, sort_keys=True))
