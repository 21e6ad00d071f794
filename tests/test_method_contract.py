"""Every method in ``faceunlearn.methods.__all__`` keeps the base contract, checked automatically: a new method
gets these checks by being exported. One fit step with every retention term on gives a finite loss, moves
trainable parameters only (frozen and SalUn-masked elements stay bitwise), and the checkpoint round-trips."""

import math

import lightning as L
import pytest
import torch

import faceunlearn.methods as methods
from faceunlearn.data import FaceDataModule

METHODS = [name for name in methods.__all__ if name != "FaceModule"]


@pytest.mark.parametrize("name", METHODS)
def test_one_step_of_every_method_keeps_the_contract(name, random_packed, tmp_path):
    cls = getattr(methods, name)
    model = cls(num_classes=20, backbone="iresnet_tiny", freeze=["backbone.layer1"], saliency_fraction=0.5,
                retention={"cosface": 0.5, "distill": 1.0, "relational": 1.0})
    data = FaceDataModule(root=str(random_packed.root), num_forget_identities=4, batch_size=8, images_per_identity=4,
                          batches_per_epoch=1, eval_retain_identities=3, retain_batch_size=8, train_batch_size=8)
    model.training_images = data
    before = {key: value.clone() for key, value in model.state_dict().items()}
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, num_sanity_val_steps=0, limit_val_batches=0,
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(model, data)
    assert math.isfinite(float(trainer.callback_metrics["train/loss"])), name
    after = model.state_dict()
    parameters = {key for key, _ in model.named_parameters()}  # BatchNorm statistics train where the method says so
    assert all(torch.equal(before[key], after[key]) for key in parameters if key.startswith("backbone.layer1.")), "frozen layer moved"
    for parameter_name, mask in model.saliency_masks.items():  # elements outside the SalUn mask stay bitwise
        key = parameter_name
        assert torch.equal(before[key][~mask], after[key][~mask]), parameter_name
    assert any(not torch.equal(before[key], after[key]) for key in parameters if key.startswith("backbone.layer2.")), "nothing trained"
    path = tmp_path / "step.ckpt"
    trainer.save_checkpoint(path)
    restored = cls(num_classes=20, backbone="iresnet_tiny", freeze=["backbone.layer1"], saliency_fraction=0.5,
                   retention={"cosface": 0.5, "distill": 1.0, "relational": 1.0})
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    restored.load_state_dict(checkpoint["state_dict"])
    restored.on_load_checkpoint(checkpoint)
    assert all(torch.equal(value, restored.state_dict()[key]) for key, value in after.items())
    assert checkpoint["hyper_parameters"]["retention"] == {"cosface": 0.5, "distill": 1.0, "relational": 1.0}
    # whether the run unlearns (purge --checkpoints leaves the others alone): it trains on forget batches
    assert checkpoint["unlearning"] == (name not in ("FineTune", "Retrain", "RetainControl")), name
