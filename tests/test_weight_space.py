"""Weight-space options against their formulas: distance, midpoint, SAM's ascent point, the network at other
weights, Dispersion's ``midpoint`` and ``sam_rho`` terms, and the training diagnostics."""

import copy

import lightning as L
import pytest
import torch

from faceunlearn.callbacks import WeightSpaceDiagnostics
from faceunlearn.data import FaceDataModule
from faceunlearn.losses import dispersion_loss
from faceunlearn.methods import Dispersion
from faceunlearn.methods.weight_space import embed_at, midpoint_weights, relative_distance, sharpness_weights, trainable


def test_distance_midpoint_and_ascent_point_are_their_formulas():
    generator = torch.Generator().manual_seed(0)
    a = {"w": torch.randn(3, 4, generator=generator), "b": torch.randn(5, generator=generator)}
    b = {"w": torch.randn(3, 4, generator=generator), "b": torch.randn(5, generator=generator)}
    flat_a, flat_b = torch.cat([a["w"].flatten(), a["b"]]), torch.cat([b["w"].flatten(), b["b"]])
    assert float(relative_distance(a, b)) == pytest.approx(float((flat_a - flat_b).norm() / flat_b.norm()), rel=1e-6)
    assert float(relative_distance(b, b)) == 0.0
    weights = {name: value.clone().requires_grad_(True) for name, value in a.items()}
    middle = midpoint_weights(weights, b)
    assert torch.allclose(middle["w"], (a["w"] + b["w"]) / 2)
    middle["w"].sum().backward()  # differentiable in θ, by one half
    assert torch.allclose(weights["w"].grad, torch.full_like(a["w"], 0.5))
    # SAM on L = Σ θ²: g = 2θ, the ascent point θ + ρ·θ/‖θ‖
    loss = sum(value.square().sum() for value in weights.values())
    ascent = sharpness_weights(loss, weights, rho=0.3)
    norm = flat_a.norm()
    for name in a:
        assert torch.allclose(ascent[name], a[name] + 0.3 * a[name] / norm, atol=1e-6)
    unused = {**weights, "never": torch.ones(2, requires_grad=True)}
    assert torch.equal(sharpness_weights(weights["b"].sum(), unused, 1.0)["never"], torch.ones(2))
    with pytest.raises(ValueError, match="sam_rho must be >= 0"):
        sharpness_weights(loss, weights, -1.0)


def _model(**kwargs):
    torch.manual_seed(0)
    return Dispersion(num_classes=20, backbone="iresnet_tiny", freeze=["backbone.layer1"], **kwargs)


def test_the_network_at_other_weights_is_a_network_loaded_with_them():
    model, other = _model().eval(), _model().eval()
    with torch.no_grad():  # the trainable tensors only: embed_at replaces those, the frozen stem stays the model's
        for parameter in trainable(other.backbone).values():
            parameter.add_(0.01 * torch.randn_like(parameter))
    images = torch.randn(6, 3, 112, 112)
    with torch.no_grad():
        assert torch.allclose(embed_at(model, trainable(model.backbone), images), model(images), atol=1e-6)
        assert torch.allclose(embed_at(model, trainable(other.backbone), images), other(images), atol=1e-5)
        assert not torch.allclose(model(images), other(images), atol=1e-3)


def _batch(seed=0):
    generator = torch.Generator().manual_seed(seed)
    forget = {"image": torch.randn(8, 3, 112, 112, generator=generator), "label": torch.arange(4).repeat_interleave(2)}
    return {"forget": forget}


def test_dispersion_midpoint_and_sam_terms_are_their_formulas():
    model = _model(midpoint=0.7, sam_rho=0.05).eval()
    with torch.no_grad():  # a start model that differs from θ, so that the midpoint is somewhere else
        for parameter in model.backbone.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    batch = _batch()
    images, labels = batch["forget"]["image"], batch["forget"]["label"]
    terms = model.loss_terms(batch)
    assert set(terms) == {"dispersion", "midpoint"}
    # independently: the midpoint network is a copy whose trainable weights are the average
    midpoint = copy.deepcopy(model)
    start = dict(model.start_model["backbone"].named_parameters())
    with torch.no_grad():
        for name, parameter in trainable(midpoint.backbone).items():
            parameter.copy_((parameter + start[name]) / 2)
        assert float(terms["midpoint"]) == pytest.approx(0.7 * float(dispersion_loss(midpoint(images), labels, 0.0)), rel=1e-5)
    # SAM: the loss at θ + ρ g/‖g‖, g the gradient of the dispersion loss at θ over the trainable backbone tensors
    plain = dispersion_loss(model(images), labels, 0.0)
    weights = trainable(model.backbone)
    grads = torch.autograd.grad(plain, list(weights.values()))
    norm = torch.sqrt(sum(g.square().sum() for g in grads))
    ascent = copy.deepcopy(model)
    with torch.no_grad():
        for (name, parameter), g in zip(trainable(ascent.backbone).items(), grads):
            parameter.add_(0.05 * g / norm)
        want = float(dispersion_loss(ascent(images), labels, 0.0))
    assert float(terms["dispersion"]) == pytest.approx(want, rel=1e-5) and want != pytest.approx(float(plain), rel=1e-4)
    # gradients reach θ through both terms, and the frozen layer gets none
    sum(terms.values()).backward()
    assert model.backbone.layer2[0].conv1.weight.grad.abs().sum() > 0
    assert model.backbone.layer1[0].conv1.weight.grad is None
    with pytest.raises(ValueError, match="midpoint must be >= 0"):
        _model(midpoint=-1.0)


def test_diagnostics_log_the_distance_and_forget_retrieval_at_the_midpoint(random_packed, tmp_path):
    from lightning.pytorch.loggers import CSVLogger

    from faceunlearn.audit import embed_subsets, retrieval

    data = FaceDataModule(root=str(random_packed.root), num_forget_identities=4, batch_size=8, images_per_identity=4,
                          batches_per_epoch=4, eval_retain_identities=3, eval_subsets=["forget", "forget_test"])
    model = _model(lr=0.05, retention={"distill": 1.0}, training_images=data)
    diagnostics = WeightSpaceDiagnostics(every_n_steps=2, data=data)
    trainer = L.Trainer(max_epochs=1, logger=CSVLogger(tmp_path), enable_checkpointing=False, num_sanity_val_steps=0,
                        limit_val_batches=0, enable_progress_bar=False, enable_model_summary=False, callbacks=[diagnostics],
                        log_every_n_steps=1)
    trainer.fit(model, data)
    start = dict(model.start_model["backbone"].named_parameters())
    distance = float(relative_distance(trainable(model.backbone), start))
    assert diagnostics.last["diagnostics/weight_distance"] == pytest.approx(distance) and distance > 0
    # forget retrieval of a network loaded with the midpoint weights
    midpoint = copy.deepcopy(model)
    midpoint.trainer = None
    with torch.no_grad():
        for name, parameter in trainable(midpoint.backbone).items():
            parameter.copy_((parameter + start[name]) / 2)
    want = retrieval(*[embed_subsets(midpoint, data, ("forget", "forget_test"))[name] for name in ("forget_test", "forget")])
    assert diagnostics.last["diagnostics/midpoint_forget_mAP"] == pytest.approx(want["mAP"], abs=1e-9)
    assert diagnostics.last["diagnostics/midpoint_forget_R@1"] == pytest.approx(want["R@1"], abs=1e-9)
    # the module itself is back at θ
    assert float(relative_distance(trainable(model.backbone), start)) == pytest.approx(distance)
    logged = (tmp_path / "lightning_logs/version_0/metrics.csv").read_text()
    assert logged.count("\n") > 2 and "diagnostics/weight_distance" in logged and "diagnostics/grad_norm_max" in logged


def test_the_gradient_norm_is_the_largest_total_norm_since_the_last_log():
    """diagnostics/grad_norm_max: the total L2 norm over every trainable parameter's gradient (frozen ones left out),
    the largest of the steps since the last log, then reset."""
    module = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    module[1].bias.requires_grad_(False)
    diagnostics = WeightSpaceDiagnostics(every_n_steps=2)
    norms = []
    for scale in (1.0, 3.0, 0.5):
        for parameter in module.parameters():
            parameter.grad = scale * torch.arange(parameter.numel(), dtype=torch.float32).reshape(parameter.shape) + 1
        norms.append(sum(float((p.grad ** 2).sum()) for p in module.parameters() if p.requires_grad) ** 0.5)
        diagnostics.on_before_optimizer_step(None, module, None)
    assert float(diagnostics.grad_norm_max) == pytest.approx(max(norms), rel=1e-6) and norms[1] == max(norms)
    logged = {}

    class Module:
        def log(self, name, value, **kwargs):
            logged[name] = float(value)

    diagnostics.on_train_batch_end(type("Trainer", (), {"global_step": 2})(), Module(), None, None, 0)
    assert logged == {"diagnostics/grad_norm_max": pytest.approx(max(norms), rel=1e-6)} and diagnostics.grad_norm_max is None
