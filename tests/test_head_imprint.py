"""A CosFace head for start weights that carry none: imprinted from class-mean embeddings, never random."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F

from faceunlearn.data.dataset import model_input
from faceunlearn.callbacks import RetrievalEvaluation
from faceunlearn.data import FaceDataModule
from faceunlearn.methods import BoundaryShrink, Dispersion
from faceunlearn.models.head_imprint import class_mean_embeddings, imprinted_weights
from tests.onnx_fixtures import write_tiny_recognizer


def test_class_means_equal_a_brute_force_reference():
    generator = torch.Generator().manual_seed(0)
    embeddings = torch.randn(40, 6, generator=generator)
    labels = torch.randint(0, 5, (40,), generator=generator)
    labels[labels == 3] = 4  # class 3 has no images
    batches = [{"image": embeddings[i:i + 7], "label": labels[i:i + 7]} for i in range(0, 40, 7)]
    sums, counts = class_mean_embeddings(lambda x: x, batches, num_classes=5)
    weight = torch.randn(5, 6, generator=generator)
    imprinted = imprinted_weights(sums, counts, weight)
    unit = F.normalize(embeddings, dim=1)
    for c in (0, 1, 2, 4):
        expected = F.normalize(unit[labels == c].mean(0), dim=0)
        torch.testing.assert_close(imprinted[c], expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(imprinted[3], weight[3])  # no images: the row is kept
    assert counts.tolist() == [int((labels == c).sum()) for c in range(5)]


def _validate(model, root):
    # validate writes its tidy CSV; keep it in the pack's tmp folder

    datamodule = FaceDataModule(root=str(root), num_forget_identities=4, batch_size=8, images_per_identity=4,
                                batches_per_epoch=1, eval_retain_identities=3, eval_batch_size=16)
    evaluation = RetrievalEvaluation(results_csv=str(Path(root).parent / "metrics.csv"))
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[evaluation], accelerator="cpu")
    model.training_images = datamodule  # what the CLI links from data
    trainer.validate(model, datamodule)
    return datamodule, evaluation.history[-1][1]


def test_onnx_start_gets_an_imprinted_head_and_real_accuracies(random_packed, tmp_path):
    onnx_path = write_tiny_recognizer(tmp_path / "tiny.onnx")
    model = Dispersion(num_classes=20, backbone="onnx", init_weights=str(onnx_path))
    assert model.head_source == "random" and not model.head_ready
    datamodule, metrics = _validate(model, random_packed.root)
    assert model.head_source == "imprinted"
    assert "forget/acc" in metrics and "retain/acc" in metrics
    # brute force: class means of D_f^train ∪ D_r under the (unchanged) backbone; D_f^test never used
    images = torch.cat([model_input(batch)["image"] for batch in datamodule.training_identity_dataloader()])
    labels = torch.cat([batch["label"] for batch in datamodule.training_identity_dataloader()])
    assert set(datamodule.packed.image_ids[datamodule.rows["forget_test"]]).isdisjoint(
        torch.cat([b["image_id"] for b in datamodule.training_identity_dataloader()]).tolist())
    with torch.no_grad():
        unit = F.normalize(model.eval()(images), dim=1)
    for c in np.unique(labels.numpy())[:5]:
        expected = F.normalize(unit[labels == c].mean(0), dim=0)
        torch.testing.assert_close(model.head.weight[c], expected, rtol=1e-4, atol=1e-5)


def test_a_random_head_never_gives_an_accuracy(random_packed):
    model = Dispersion(num_classes=20, backbone="iresnet_tiny")  # from scratch: the head is random
    _, metrics = _validate(model, random_packed.root)
    assert model.head_source == "scratch"
    assert "forget/CS" in metrics and "forget/acc_mean" in metrics
    assert "forget/acc" not in metrics and "retain/acc" not in metrics


def test_backbone_only_weights_get_imprinted_and_boundary_shrink_attacks_the_imprinted_original(random_packed, tmp_path):
    source = Dispersion(num_classes=20, backbone="iresnet_tiny")
    torch.save(source.backbone.state_dict(), tmp_path / "backbone.pth")  # an insightface-style backbone.pth: no head
    model = BoundaryShrink(num_classes=20, backbone="iresnet_tiny", init_weights=str(tmp_path / "backbone.pth"), lr=1e-3)
    assert model.head_source == "random"
    datamodule = FaceDataModule(root=str(random_packed.root), num_forget_identities=4, batch_size=8, images_per_identity=4,
                                batches_per_epoch=1, eval_retain_identities=3)
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, num_sanity_val_steps=0, limit_val_batches=0,
                        enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
    captured = {}

    class Capture(L.Callback):
        def on_train_start(self, trainer, pl_module):
            captured["head"] = pl_module.head.weight.detach().clone()

    trainer.callbacks.append(Capture())
    model.training_images = datamodule  # what the CLI links from data
    trainer.fit(model, datamodule)
    assert model.head_source == "imprinted" and model.original_head_ready
    torch.testing.assert_close(model.original["head"].weight, captured["head"])  # the Original's head = the imprint
