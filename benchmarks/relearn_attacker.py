"""Choose the relearning attacker's learning rate on a *validation* forget set, never on a reported one.

The attacker (``faceunlearn.attacks.relearn``: CosFace fine-tuning of the whole network on 2 images per
forgotten person) is strongest at the lr that brings the most forget retrieval back. This script
attacks one unlearned model of a validation forget set (``--data.seed`` 100+) at every ``--lrs`` value and
prints forget mAP / R@1 after each step count; the audit's ``--relearn-lr`` is then the lr with the
highest forget mAP after the most steps, read off here and not off the reported forget sets 0, 1, 2.

    faceunlearn fit --config configs/demo_disp.yaml --data.seed 100 --checkpoint.dirpath /tmp/val100
    python benchmarks/relearn_attacker.py --config configs/demo_disp.yaml --ckpt_path /tmp/val100/last.ckpt \
        --override "--data.seed 100" --lrs 1e-4 3e-4 1e-3 3e-3 1e-2
"""
from __future__ import annotations

import argparse
import shlex

from faceunlearn.attacks import relearn
from faceunlearn.audit import RELEARN_STEPS, _retrieval, embed_subsets, forget_images, load_model_weights
from faceunlearn.cli import cli_main
from faceunlearn.experiments.tune import REPORTED_SEEDS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="the unlearned run's config")
    parser.add_argument("--ckpt_path", required=True, help="the unlearned model of a validation forget set")
    parser.add_argument("--override", default="", help='LightningCLI arguments, e.g. "--data.seed 100"')
    parser.add_argument("--lrs", type=float, nargs="+", default=[1e-4, 3e-4, 1e-3, 3e-3, 1e-2])
    parser.add_argument("--steps", type=int, nargs="+", default=list(RELEARN_STEPS))
    args = parser.parse_args()
    cli = cli_main(["--config", args.config, *shlex.split(args.override)], run=False)
    model, data = cli.model, cli.datamodule
    data.setup("validate")
    seed = int(data.hparams.seed)
    if seed in REPORTED_SEEDS:
        raise SystemExit(f"forget set {seed} is reported; choose the attacker on a validation forget set (100+)")
    load_model_weights(model, args.ckpt_path)
    images, labels = forget_images(model, data, seed)

    def evaluate(attacked):
        again = embed_subsets(attacked, data, ("forget", "forget_test"))
        return _retrieval(again["forget_test"], again["forget"])

    before = evaluate(model)
    print(f"forget set {seed}, before the attack: mAP {100 * before['mAP']:.1f}, R@1 {100 * before['R@1']:.1f}")
    print("| lr | " + " | ".join(f"after {n} steps (mAP / R@1)" for n in sorted(args.steps)) + " |")
    print("|---:|" + "---|" * len(args.steps))
    for lr in args.lrs:
        results = relearn(model, model.head, images, labels, evaluate, args.steps, lr=lr)
        print(f"| {lr:g} | " + " | ".join(f"{100 * results[n]['mAP']:.1f} / {100 * results[n]['R@1']:.1f}"
                                          for n in sorted(results)) + " |", flush=True)


if __name__ == "__main__":
    main()
