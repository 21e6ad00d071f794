"""``faceunlearn retrain``: the Original's recipe without D_f — the Retrain reference of one forget set.

    faceunlearn retrain --config configs/demo_finetune.yaml --data.seed 0

Every argument is LightningCLI's ``fit``; the config is a FineTune config (the Original's recipe),
and the model class becomes ``faceunlearn.methods.Retrain``: CosFace on the retain identities only,
everything else as the Original (``Retrain``'s docstring says what that means per protocol).
Unless given, checkpoints go to ``checkpoints/retrain/<config stem>/seed<K>/`` and TensorBoard to
``lightning_logs/retrain_<config stem>/``, never over the Original's own checkpoints.
"""
from __future__ import annotations

import sys
from pathlib import Path

from faceunlearn.experiments.plan import RETRAIN_CLASS


def _value(argv: list[str], name: str) -> str | None:
    """The last value of ``--name V`` or ``--name=V`` in argv."""
    found = None
    for index, word in enumerate(argv):
        if word == name and index + 1 < len(argv):
            found = argv[index + 1]
        elif word.startswith(name + "="):
            found = word.split("=", 1)[1]
    return found


def retrain_args(argv: list[str]) -> list[str]:
    """``fit`` arguments: the user's, the Retrain class, and output folders of its own unless given."""
    config = _value(argv, "--config")
    if config is None:
        raise SystemExit("faceunlearn retrain: error: --config <the Original's FineTune config> is required")
    stem, seed = Path(config).stem, _value(argv, "--data.seed")
    where = f"seed{seed}" if seed is not None else "config_seed"
    args = ["fit", *argv, "--model.class_path", RETRAIN_CLASS]
    if _value(argv, "--checkpoint.dirpath") is None:
        args += ["--checkpoint.dirpath", str(Path("checkpoints") / "retrain" / stem / where)]
    if _value(argv, "--trainer.logger.init_args.name") is None:
        args += ["--trainer.logger.init_args.name", f"retrain_{stem}"]
    return args


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return
    from faceunlearn.cli import cli_main

    cli_main(retrain_args(argv))


if __name__ == "__main__":
    main()
