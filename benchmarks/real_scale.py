"""Step times of the paper's real-data protocol at full scale (IResNet-50, 512-d): today's path against the fast one.

    python benchmarks/real_scale.py                      # on the GPU: IResNet-50, both paths
    python benchmarks/real_scale.py --device cpu --backbone iresnet_tiny --repeats 3   # CPU smoke test

No dataset is needed: every step runs on random 112×112 images of the real batch shapes, so the
times are what the configs' steps cost. Each row is measured twice in the same process:

* **today** — float32, NCHW, eager, Lipschitz noise drawn on the host and copied (the code before
  issue 14 pt 2, reproduced by ``HostNoiseLipschitz``);
* **fast** — ``bf16`` autocast (what ``trainer.precision: bf16-mixed`` does; embeddings, head and
  losses stay float32), channels_last, ``torch.compile`` of the backbone (``--compile off`` to
  leave it out), Lipschitz noise drawn on the device from the seeded per-step generator.

Each row: ``--warmup`` steps (compilation happens there), then the median of ``--repeats`` timed
steps, synchronised around each. Methods are the real classes and their ``loss_terms``; the
optimiser is SGD (momentum 0.9, wd 5e-4) over all parameters, as the configs.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from faceunlearn.losses import gaussian_noise, lipschitz_loss
from faceunlearn.methods import BoundaryShrink, Dispersion, FineTune, LipschitzUnlearning

CELEBA_CLASSES = 8_192  # ≈ the CosFace classes of CelebA's training partition


class HostNoiseLipschitz(LipschitzUnlearning):
    """Lipschitz as it was before issue 14 pt 2: noise drawn by a CPU generator, then copied."""

    def loss_terms(self, batch):
        images = batch["forget"]["image"]
        generator = torch.Generator().manual_seed(self.hparams.noise_seed * 1_000_003 + self.global_step)
        noise, norms = gaussian_noise((self.hparams.noise_draws, *images.shape), self.hparams.noise_std, generator)
        noise, norms = noise.to(self.device), norms.to(self.device)
        clean = self(images)
        with torch.no_grad():
            noisy = self((images[None] + noise).flatten(0, 1)).view(noise.shape[0], images.shape[0], -1)
        return {"lipschitz": lipschitz_loss(clean, noisy, norms)}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def batch(size: int, identities: int, device) -> dict:
    labels = torch.arange(identities, device=device).repeat_interleave(size // identities)
    return {"image": torch.rand(size, 3, 112, 112, device=device) * 2 - 1, "label": labels}


def time_steps(step, device, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        step()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def train_step_fn(model, streams: dict, autocast: bool, device):
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9, weight_decay=5e-4)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            loss = torch.stack(list(model.loss_terms(streams).values())).sum()
        loss.backward()
        optimizer.step()
    return step


def build(cls, device, fast: bool, compile_options, common: dict, **kwargs):
    options = dict(channels_last=fast, compile=compile_options if fast else False)
    model = cls(**common, **options, **kwargs).to(device)
    model.log = lambda *args, **kwargs: None  # no Trainer here to log to
    if model.start_model is not None:
        model.start_model.to(device)  # under a Trainer, on_fit_start moves the frozen copy
    return model


def measure(args, device, fast: bool) -> list[tuple[str, int, float]]:
    compile_options = False if args.compile == "off" else ({} if args.compile == "inductor" else {"backend": args.compile})
    common = dict(num_classes=CELEBA_CLASSES, backbone=args.backbone, embedding_size=512)
    timing = dict(warmup=args.warmup, repeats=args.repeats)
    rows = []
    model = build(FineTune, device, fast, compile_options, common).train()
    step = train_step_fn(model, {"train": batch(args.finetune_batch, args.finetune_batch // 2, device)}, fast, device)
    rows.append((f"Original fine-tune, batch {args.finetune_batch}", args.finetune_batch, time_steps(step, device, **timing)))
    forget = {"forget": batch(32, 8, device)}
    lipschitz = LipschitzUnlearning if fast else HostNoiseLipschitz
    for name, cls, kwargs in (("Dispersion, batch 32 (8 × 4)", Dispersion, {}),
                              ("Boundary Shrink, batch 32 (FGSM on the frozen copy)", BoundaryShrink, {}),
                              ("Lipschitz, batch 32, N = 25 noisy passes", lipschitz, {"noise_draws": 25})):
        model = build(cls, device, fast, compile_options, common, **kwargs).train()
        rows.append((name, 32, time_steps(train_step_fn(model, forget, fast, device), device, **timing)))
    model = build(Dispersion, device, fast, compile_options, common).eval()
    images = torch.rand(args.eval_batch, 3, 112, 112, device=device) * 2 - 1

    def embed():
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=fast):
            model(images)
    rows.append((f"evaluation embedding, batch {args.eval_batch}", args.eval_batch, time_steps(embed, device, **timing)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--backbone", default="iresnet50")
    parser.add_argument("--compile", default="inductor", help="inductor | off | another torch.compile backend (eager, aot_eager)")
    parser.add_argument("--finetune-batch", type=int, default=128)
    parser.add_argument("--eval-batch", type=int, default=512)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        name = torch.cuda.get_device_name(device)
    else:
        name = f"CPU, {torch.get_num_threads()} threads"
    today, fast = measure(args, device, fast=False), measure(args, device, fast=True)
    print(f"device {name}, torch {torch.__version__}, backbone {args.backbone}, compile {args.compile}")
    print("| step | batch | today: fp32, NCHW, eager (ms) | images/s | fast: bf16, channels_last, compiled (ms) | images/s | speed-up |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for (name, size, before), (_, _, after) in zip(today, fast):
        print(f"| {name} | {size} | {1000 * before:.1f} | {size / before:,.0f} | {1000 * after:.1f} | {size / after:,.0f} | {before / after:.2f}× |")


if __name__ == "__main__":
    main()
