"""A fit's run record: history.csv, embedding snapshots, TensorBoard projector and t-SNE figure, and resume."""
from pathlib import Path

import numpy as np
import torch

from faceunlearn.io import run_folder
from faceunlearn.callbacks import RetrievalEvaluation
from faceunlearn.callbacks.snapshots import snapshot_rows
from faceunlearn.cli import cli_main

REPO = Path(__file__).resolve().parents[1]


def test_snapshot_rows_keep_whole_identities_and_do_not_depend_on_order_of_calls():
    labels = np.repeat(np.arange(10), 5)
    assert np.array_equal(snapshot_rows(labels, 60), np.arange(50))
    rows = snapshot_rows(labels, 23)
    assert len(rows) == 20 and np.all(np.bincount(labels[rows], minlength=10) % 5 == 0)  # 4 whole identities
    assert np.array_equal(rows, snapshot_rows(labels, 23))
    assert len(snapshot_rows(np.zeros(9, dtype=int), 4)) == 4  # one identity larger than the cap


def _fit(tmp_path, random_packed, epochs, ckpt_path=None):
    args = [
        "fit", "--config", str(REPO / "configs/demo_disp.yaml"),
        "--model.init_args.init_weights", "null",
        "--data.root", str(random_packed.root), "--data.synthetic", "null",
        "--data.num_forget_identities", "4", "--data.batch_size", "16", "--data.batches_per_epoch", "2",
        "--data.eval_retain_identities", "10", "--data.eval_batch_size", "128",
        "--trainer.max_epochs", str(epochs), "--trainer.enable_progress_bar", "false",
        "--trainer.logger.init_args.save_dir", str(tmp_path / "logs"),
        "--trainer.logger.init_args.name", "run", "--trainer.logger.init_args.version", "0",
        "--checkpoint.dirpath", str(tmp_path / "ckpt"),
        "--evaluation.benchmarks", "{forget: {queries: forget_test, gallery: [forget], clusters: forget}}",
        "--run_files.snapshots", "[forget, retain_eval]", "--run_files.keep_forget_embeddings", "true", "--run_files.snapshot_max_per_subset", "50",
        "--model.init_args.view_dispersion", "0", "--model.init_args.retention", "{}",  # run files, not the method
    ]
    return cli_main(args + (["--ckpt_path", str(ckpt_path)] if ckpt_path else []))


def test_fit_writes_history_snapshots_projector_and_figure_and_resume_appends(tmp_path, random_packed):
    run = tmp_path / "logs/run/version_0"
    first = _fit(tmp_path, random_packed, epochs=1)
    assert Path(first.trainer.log_dir) == run
    # retain_eval is embedded for the snapshots although no benchmark reads it
    assert first.datamodule.hparams.eval_subsets == ["forget", "forget_test", "retain_eval"]
    assert [row["step"] for row in run_folder.read_history(run) if row["metric"] == "mAP"] == [0, 2]
    assert sorted(run_folder.list_snapshots(run)) == [0, 2]

    resumed = _fit(tmp_path, random_packed, epochs=2, ckpt_path=tmp_path / "ckpt/last.ckpt")
    history = run_folder.read_history(run)
    assert [row["step"] for row in history if row["metric"] == "mAP"] == [0, 2, 4]  # appended, not truncated
    evaluation = RetrievalEvaluation.of(resumed.trainer)
    assert {f"{row['benchmark']}/{row['metric']}": row["value"] for row in history if row["step"] == 4} == evaluation.history[-1][1]

    snapshots = run_folder.list_snapshots(run)
    assert sorted(snapshots) == [0, 4]  # the first and the last; step 2's was replaced
    forget_ids = np.sort(resumed.datamodule.subsets["forget"])
    retain_labels = None
    for step, path in snapshots.items():
        snapshot = torch.load(path, weights_only=True)
        assert set(snapshot) == {"forget", "retain_eval"}
        assert np.array_equal(snapshot["forget"]["image_ids"].numpy(), forget_ids)  # all 48 forget images
        assert snapshot["forget"]["embeddings"].shape == (len(forget_ids), 512)
        retain = snapshot["retain_eval"]
        assert len(retain["labels"]) == 48 and len(set(retain["labels"].tolist())) == 4  # 120 capped at 50: 4 whole identities
        assert retain_labels is None or torch.equal(retain["labels"], retain_labels)  # the same images at every step
        retain_labels = retain["labels"]
    assert not torch.equal(*(torch.load(path, weights_only=True)["forget"]["embeddings"] for path in snapshots.values()))

    projector = (run / "projector_config.pbtxt").read_text()
    assert projector.count("tensor_name") == 4 and "00000/forget" in projector and "00004/retain_eval" in projector
    assert (run / "00004/retain_eval/tensors.tsv").is_file() and not (run / "00002").exists()  # step 2's copy went with it
    assert (run / "figures/tsne.png").read_bytes().startswith(b"\x89PNG")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run))
    events.Reload()
    assert "embeddings/tsne" in events.Tags()["images"]


def test_by_default_snapshots_hold_no_forget_identity():
    from faceunlearn.callbacks.run_files import forget_labels, without_identities
    from faceunlearn.metrics.benchmarks import EmbeddingTable

    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3])
    table = EmbeddingTable(torch.randn(7, 4), labels, torch.arange(7),
                           {"forget": np.array([0, 1]), "retain_eval": np.array([2, 3, 4, 5, 6])})
    assert forget_labels(table).tolist() == [0]
    snapshot = {"forget": {"embeddings": torch.randn(2, 4), "labels": torch.tensor([0, 0]), "image_ids": torch.tensor([0, 1])},
                "mixed": {"embeddings": torch.randn(3, 4), "labels": torch.tensor([0, 2, 3]), "image_ids": torch.tensor([1, 5, 6])}}
    kept = without_identities(snapshot, forget_labels(table))
    assert list(kept) == ["mixed"] and kept["mixed"]["labels"].tolist() == [2, 3]
    assert kept["mixed"]["image_ids"].tolist() == [5, 6] and kept["mixed"]["embeddings"].shape == (2, 4)
