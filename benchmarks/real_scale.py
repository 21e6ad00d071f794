"""Step times of the paper's real-data protocol at full scale (IResNet-50, 512-d), on random images.

    python benchmarks/real_scale.py [--precision 32|bf16]

No dataset is needed: every step runs on random 112×112 images of the real batch shapes, so the
times are what the configs' steps cost, and the README's "times per step" of the real-data
walkthrough follow from them and the datasets' sizes. Each row: 3 warm-up steps, then the median of
10 timed steps (``torch.cuda.synchronize`` around each). Methods are the real classes and their
``loss_terms``; the optimiser is SGD (momentum 0.9, wd 5e-4) over all parameters, as the configs.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from faceunlearn.methods import BoundaryShrink, Dispersion, FineTune, LipschitzUnlearning

CELEBA_CLASSES = 8_192  # ≈ the CosFace classes of CelebA's training partition


def batch(size: int, identities: int, device) -> dict:
    labels = torch.arange(identities, device=device).repeat_interleave(size // identities)
    return {"image": torch.rand(size, 3, 112, 112, device=device) * 2 - 1, "label": labels}


def time_steps(step, warmup: int = 3, repeats: int = 10) -> float:
    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def train_step_fn(model, streams: dict, autocast: bool):
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9, weight_decay=5e-4)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            loss = torch.stack(list(model.loss_terms(streams).values())).sum()
        loss.backward()
        optimizer.step()
    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", choices=("32", "bf16"), default="32")
    args = parser.parse_args()
    device = torch.device("cuda")
    autocast = args.precision == "bf16"
    torch.backends.cudnn.benchmark = True
    rows = []
    common = dict(num_classes=CELEBA_CLASSES, backbone="iresnet50", embedding_size=512)

    model = FineTune(**common).to(device).train()
    rows.append(("Original fine-tune step, batch 128", 128, time_steps(train_step_fn(model, {"train": batch(128, 64, device)}, autocast))))
    forget = {"forget": batch(32, 8, device)}
    for name, cls, kwargs in (("Dispersion step, batch 32 (8 × 4)", Dispersion, {}),
                              ("Boundary Shrink step, batch 32 (FGSM on a frozen copy)", BoundaryShrink, {}),
                              ("Lipschitz step, batch 32, N = 25 noisy passes", LipschitzUnlearning, {"noise_draws": 25})):
        model = cls(**common, **kwargs).to(device)
        model.log = lambda *args, **kwargs: None  # no Trainer here to log to
        if cls is BoundaryShrink:
            model.original.to(device)  # under a Trainer, on_fit_start moves the frozen copy
        model.train()
        rows.append((name, 32, time_steps(train_step_fn(model, forget, autocast))))
    model = Dispersion(**common).to(device).eval()
    images = torch.rand(512, 3, 112, 112, device=device) * 2 - 1

    def embed():
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            model(images)
    rows.append(("evaluation embedding, batch 512", 512, time_steps(embed)))

    print(f"device {torch.cuda.get_device_name()}, torch {torch.__version__}, precision {args.precision}")
    print("| step | batch | time per step (ms) | images/s |")
    print("|---|---:|---:|---:|")
    for name, size, seconds in rows:
        print(f"| {name} | {size} | {1000 * seconds:.1f} | {size / seconds:,.0f} |")


if __name__ == "__main__":
    main()
