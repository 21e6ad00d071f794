"""Lipschitz Unlearning (Foster et al. 2024; Kravets et al. 2025): flatten the encoder around forget images."""

import torch

from faceunlearn.losses import gaussian_noise, lipschitz_loss
from faceunlearn.methods.base import FaceModule


class LipschitzUnlearning(FaceModule):
    """Minimise ``1/N Σ_n ‖f(x) − f(x + δ_n)‖₂ / ‖δ_n‖₂`` over forget images, ``δ_n ~ N(0, σ²)``
    (+ ``λ·L_cos`` retain; the paper pairs it with a SalUn mask). Noisy passes run without gradient.

    Args:
        noise_std: σ, in the normalised input space ([-1, 1] pixels).
        noise_draws: N noisy copies per image (official code: 25).
        noise_seed: seeds the noise; batch ``t`` uses ``noise_seed·1,000,003 + t`` (resume-exact).

    The noise (N·B images' worth: 30 M normals for N = 25, B = 32 at 112×112) is drawn on the
    model's device from a generator seeded per step, never on the host and copied: reproducible for
    a fixed device type (a CUDA generator draws other numbers than the CPU's from the same seed).
    """

    def __init__(self, *args, noise_std: float = 0.1, noise_draws: int = 25, noise_seed: int = 0, **kwargs):
        super().__init__(*args, **kwargs)

    def loss_terms(self, batch):
        images = batch["forget"]["image"]
        generator = torch.Generator(device=images.device).manual_seed(self.hparams.noise_seed * 1_000_003 + self.global_step)
        noise, norms = gaussian_noise((self.hparams.noise_draws, *images.shape), self.hparams.noise_std, generator, images.device)
        clean = self(images)
        with torch.no_grad():  # BatchNorm statistics are fixed during unlearning, so one big batch is exact
            noisy = self((images[None] + noise).flatten(0, 1)).view(noise.shape[0], images.shape[0], -1)
        return {"lipschitz": lipschitz_loss(clean, noisy, norms)}
