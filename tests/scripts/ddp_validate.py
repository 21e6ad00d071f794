"""Run `validate` with the evaluation callback on 1 or N CPU processes (Lightning DDP, gloo);
tests/scripts/ddp.py runs it.

Each rank writes the metrics it logged to OUT_DIR/<engine>_rank<r>.json, for the exact and the FAISS engine. Lightning's default DistributedSampler
is kept here (it pads the ranks with repeated images, which the metric drops by image id). Images are embedded one per batch: a conv net's
output for an image is bit-identical only for the same batch shape, and per-image batches make
the single- and multi-process embeddings identical, so the comparison isolates gathering,
de-duplication and the metrics. Every process also runs one intra-op thread: without
OMP_NUM_THREADS Lightning gives each DDP rank cpu_count // processes threads while the single
process keeps torch's default, and kernels may round differently with another thread count.
"""
import json
from pathlib import Path

import lightning as L
import torch

from faceunlearn.callbacks import RetrievalEvaluation
from faceunlearn.data import FaceDataModule
from faceunlearn.metrics.streaming import FaissOptions
from faceunlearn.methods import Dispersion

BENCHMARKS = {
    "forget": {"queries": "forget_test", "gallery": ["forget"], "distractors": ["distractors"], "clusters": "forget"},
    "retain": {"queries": "holdout_profile", "gallery": ["holdout_frontal"], "distractors": ["distractors"], "clusters": "retain_eval"},
}


def run(root: str, out_dir: str, processes: int) -> None:
    torch.set_num_threads(1)
    for engine in ("exact", "faiss"):
        L.seed_everything(0)
        data = FaceDataModule(root, num_forget_identities=8, batch_size=16, eval_retain_identities=4, eval_batch_size=1)
        model = Dispersion(num_classes=20, backbone="iresnet_tiny", embedding_size=64)
        # exact: Lightning's DistributedSampler (padding the callback drops); faiss: each rank indexes its own block of
        # rows (the DataModule's RankShard, the CLI's setting) and the ranked lists are merged over the ranks
        faiss = FaissOptions(k=400, device="cpu") if engine == "faiss" else None
        evaluation = RetrievalEvaluation(BENCHMARKS, results_csv=str(Path(out_dir, f"{engine}.csv")), engine=engine, faiss=faiss)
        trainer = L.Trainer(
            accelerator="cpu", devices=processes, strategy="ddp" if processes > 1 else "auto",
            callbacks=[evaluation], logger=False, enable_progress_bar=False, use_distributed_sampler=engine == "exact",
        )
        trainer.validate(model, data)
        logged = {key: float(value) for key, value in trainer.callback_metrics.items()}
        Path(out_dir, f"{engine}_rank{trainer.global_rank}.json").write_text(json.dumps(logged, sort_keys=True))
