"""Look at the relearning attacker's lr on a *validation* forget set, never on a reported one.

The attacker (``faceunlearn.audit.attacks.relearn``: CosFace fine-tuning of the whole network on 2 images per
forgotten person, its own head imprinted from them) is strongest at the lr that brings the most forget
retrieval back. The audit runs a grid of lrs against every model and keeps the strongest
(``--relearn-lrs``, default ``faceunlearn.audit.RELEARN_LRS``); this script attacks one unlearned model of a
validation forget set (``--data.seed`` 100+) at every ``--lrs`` value and prints forget mAP / R@1 after
each step count, to check that the audit's grid spans the strongest lr for a new network.

    faceunlearn fit --config configs/demo_disp.yaml --data.seed 100 --checkpoint.dirpath /tmp/val100
    python benchmarks/relearn_attacker.py --config configs/demo_disp.yaml --ckpt_path /tmp/val100/last.ckpt \
        --override "--data.seed 100" --lrs 1e-4 3e-4 1e-3 3e-3 1e-2
"""
from __future__ import annotations

import argparse
import shlex

from faceunlearn.audit.attacks import relearn
from faceunlearn.audit import RELEARN_STEPS, attacker_images, embed_subsets, load_model_weights, retrieval
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
    images, labels = attacker_images(model, data, "forget_train", seed)

    def evaluate(attacked):
        again = embed_subsets(attacked, data, ("forget", "forget_test"))
        return retrieval(again["forget_test"], again["forget"])

    before = evaluate(model)
    print(f"forget set {seed}, before the attack: mAP {100 * before['mAP']:.1f}, R@1 {100 * before['R@1']:.1f}")
    print("| lr | " + " | ".join(f"after {n} steps (mAP / R@1)" for n in sorted(args.steps)) + " |")
    print("|---:|" + "---|" * len(args.steps))
    for lr in args.lrs:
        results = relearn(model, images, labels, evaluate, args.steps, lr=lr)
        print(f"| {lr:g} | " + " | ".join(f"{100 * results[n]['mAP']:.1f} / {100 * results[n]['R@1']:.1f}"
                                          for n in sorted(results)) + " |", flush=True)


if __name__ == "__main__":
    main()
