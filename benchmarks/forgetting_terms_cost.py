"""The extra cost per training step of each forgetting option (issue 28 pt 6), on one config's real batches.

Times ``training_step`` + backward of ``Dispersion`` on the same forget and retain batches, first as the
config sets it, then with each option switched on alone (median of ``--repeats`` steps after one warm-up),
and prints the ratio to the config's own step. A run's other costs (evaluations, data) do not change.

    FACEUNLEARN_DATA=/work/data python benchmarks/forgetting_terms_cost.py --config configs/sface_glint_disp.yaml \
        [--pool PACK] [--only pool_distill]

``--pool PACK`` adds the ``pool_distill`` variant (distillation on a pool batch of ``retain_batch_size`` faces from PACK).
"""
from __future__ import annotations

import argparse
import shlex
import statistics
import time

import torch

from faceunlearn.cli import cli_main

OPTIONS = {
    "rank_confusion": ["--model.init_args.rank_confusion", "1.0"],
    "old_gallery": ["--model.init_args.old_gallery", "1.0"],
    "midpoint": ["--model.init_args.midpoint", "1.0"],
    "sam_rho": ["--model.init_args.sam_rho", "0.05"],
    "all four": ["--model.init_args.rank_confusion", "1.0", "--model.init_args.old_gallery", "1.0",
                 "--model.init_args.midpoint", "1.0", "--model.init_args.sam_rho", "0.05"],
}


def step_seconds(config: str, overrides: list[str], repeats: int) -> float:
    cli = cli_main(["--config", config, *overrides, "--trainer.logger", "false"], run=False)
    model, data = cli.model, cli.datamodule
    data.setup("fit")
    data.use_streams(model.train_streams)
    loader = data.train_dataloader()
    iter(loader)  # a CombinedLoader yields (batch, batch index, loader index)
    raw, _, _ = next(iter(loader))
    batch = data.on_after_batch_transfer(raw, 0)
    model.train()
    times = []
    for index in range(repeats + 1):
        started = time.perf_counter()
        terms = model.step_terms(batch)
        torch.stack(list(terms.values())).sum().backward()
        model.zero_grad(set_to_none=True)
        if index:
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/sface_glint_disp.yaml")
    parser.add_argument("--override", default="", help="LightningCLI arguments for every variant")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pool", help="a pack of unlabeled faces: adds the pool_distill variant")
    parser.add_argument("--only", nargs="+", help="time only these variants (besides the config's own step)")
    args = parser.parse_args()
    base = shlex.split(args.override)
    options = dict(OPTIONS)
    if args.pool:
        options["pool_distill"] = ["--data.extra_sources.pool", args.pool, "--data.distill_pool", "pool",
                                   "--model.init_args.retention.pool_distill", "1.0"]
    options = {name: extra for name, extra in options.items() if not args.only or name in args.only}
    print(f"threads {torch.get_num_threads()}; config {args.config}")
    reference = step_seconds(args.config, base, args.repeats)
    print(f"| variant | s/step | × the config's step |\n|---|---:|---:|\n| as configured | {reference:.2f} | 1.00 |")
    for name, extra in options.items():
        seconds = step_seconds(args.config, base + extra, args.repeats)
        print(f"| + {name} | {seconds:.2f} | {seconds / reference:.2f} |", flush=True)


if __name__ == "__main__":
    main()
