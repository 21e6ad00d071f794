"""The ``faceunlearn`` command (also installed as ``lightning``).

``faceunlearn fit|validate|test --config X.yaml`` is a LightningCLI: the method is picked by the
config's ``model.class_path``, the data is a ``FaceDataModule``, the evaluation callback and the
checkpointing callback are configured in their own top-level sections ``evaluation:`` and
``checkpoint:``. ``faceunlearn demo`` runs the end-to-end demo on synthetic faces, and
``faceunlearn compare`` runs every method on one forget set (the paper's Tables 1 and 2),
``faceunlearn prepare`` packs a real dataset, ``faceunlearn check-disjoint`` checks the forget
identities against the distractor and retention identities, ``faceunlearn export`` writes an
insightface-loadable ONNX model. Those commands live in ``faceunlearn.commands``, one module each
(``COMMANDS``), apart from the library they drive.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI

from faceunlearn.callbacks import RetrievalEvaluation, RunFiles, WeightSpaceDiagnostics
from faceunlearn.data import FaceDataModule
from faceunlearn.data.packed import PackedDatasetError
from faceunlearn.methods import FaceModule
from faceunlearn.models.onnx_backbone import OnnxModelError
from faceunlearn.models.weights import CheckpointMismatchError
from faceunlearn.io.paths import UnsetPathVariableError

#: errors caused by the user's paths and files; printed without a traceback
USER_ERRORS = (PackedDatasetError, UnsetPathVariableError, CheckpointMismatchError, FileNotFoundError, OnnxModelError)

TRAINER_DEFAULTS = {
    # No sanity check: the evaluation callback evaluates the start model at step 0 itself (evaluate_at_start).
    "num_sanity_val_steps": 0,
    # Our batch samplers shard themselves over DDP ranks (faceunlearn.data.samplers): Lightning must not
    # wrap them in a DistributedSampler (it cannot, for P×K batch samplers).
    "use_distributed_sampler": False,
    "logger": {"class_path": "lightning.pytorch.loggers.TensorBoardLogger", "init_args": {"save_dir": "lightning_logs", "default_hp_metric": False}},
}


#: ``faceunlearn <word> ...`` commands beside LightningCLI's fit/validate/test: word -> (module with ``main(argv)``, one line)
COMMANDS = {
    "unlearn": ("faceunlearn.commands.unlearn", "remove people from your recognizer in one command: unlearn, audit, export, purge, report"),
    "demo": ("faceunlearn.commands.demo", "synthetic faces -> Original -> Dispersion (paper recipe and selected) -> results table"),
    "compare": ("faceunlearn.commands.compare", "every method on one forget set: the paper's Tables 1 and 2"),
    "sweep": ("faceunlearn.commands.sweep", "method configs x forget sets from one Original, resumable"),
    "tune": ("faceunlearn.commands.tune", "choose a method's settings with Optuna on validation forget sets only"),
    "retrain": ("faceunlearn.commands.retrain", "the Retrain reference: the Original's recipe without the forget set"),
    "audit": ("faceunlearn.commands.audit", "does a run truly forget? verification, identification, attacks vs Retrain"),
    "purge": ("faceunlearn.commands.purge", "remove the forget identities' embeddings from run folders (and crops from a pack)"),
    "reevaluate": ("faceunlearn.commands.reevaluate", "a sweep's finished runs, evaluated again with today's benchmarks"),
    "report": ("faceunlearn.commands.report", "a sweep's tables (mean +- std over forget sets) and trade-off curves"),
    "figures": ("faceunlearn.commands.figures", "a run's curves and t-SNE figures"),
    "prepare": ("faceunlearn.commands.prepare", "pack a real dataset (CelebA, VGGFace2, CFP-FP, IJB-B, a folder per person)"),
    "check-disjoint": ("faceunlearn.commands.check_disjoint", "check forget identities against the held-out and distractor people"),
    "export": ("faceunlearn.commands.export", "write the unlearned network as an insightface-loadable ONNX model"),
    "embed": ("faceunlearn.commands.embed", "a gallery (photo folders or a pack) embedded by any model, as .npz or a FAISS index"),
}
SUBCOMMANDS = {word: module for word, (module, _) in COMMANDS.items()}
#: LightningCLI's commands that faceunlearn supports (``predict`` is not: embeddings come from the evaluation callback)
TRAINER_COMMANDS = {
    "fit": "train (unlearn) with a config: faceunlearn fit --config configs/demo_disp.yaml",
    "validate": "evaluate a model's benchmarks: faceunlearn validate --config X.yaml [--ckpt_path Y.ckpt]",
    "test": "the same benchmarks through trainer.test",
}


def overview() -> str:
    """``faceunlearn --help``: every command, one line each."""
    width = max(map(len, [*COMMANDS, *TRAINER_COMMANDS]))
    lines = ["usage: faceunlearn COMMAND [ARGS]   (also installed as `lightning`; COMMAND --help for its options)", "",
             "Lightning commands (LightningCLI; the config picks the method):"]
    lines += [f"  {word:<{width}}  {text}" for word, text in TRAINER_COMMANDS.items()]
    lines += ["", "faceunlearn commands:"]
    lines += [f"  {word:<{width}}  {text}" for word, (_, text) in COMMANDS.items()]
    return "\n".join(lines)


class FaceUnlearnCLI(LightningCLI):
    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        commands = dict(LightningCLI.subcommands())
        commands.pop("predict", None)  # unsupported: our modules' embeddings come from the evaluation callback
        return commands

    def before_instantiate_classes(self) -> None:
        """Forget identities given by name are checked against the pack, then become salted hashes
        (``faceunlearn.data.salted_names``) before anything is built or saved: the run's config.yaml,
        hyper-parameters and checkpoints never hold a forgotten person's name."""
        config = self.config.get(self.subcommand) if self.subcommand else self.config
        data = config.get("data") or {}
        requested = data.get("forget_identities")
        if requested and any(isinstance(entry, str) for entry in requested):
            import json

            from faceunlearn.data import salted_names
            from faceunlearn.data.splits import identity_ids_from_names
            from faceunlearn.io.paths import expand_path

            meta = expand_path(data.get("root"), "data.root") / "meta.json"
            if meta.is_file():  # an unknown name fails here, with its name, not later as an unmatched hash
                identity_ids_from_names(requested, json.loads(meta.read_text()).get("identity_names"))
            data["forget_identities"] = salted_names.salted(requested)

    def _instantiate_trainer(self, config: dict, callbacks: list) -> "Trainer":
        if config.get("enable_checkpointing") is False:  # the `checkpoint:` section is always there; honour the switch
            callbacks = [callback for callback in callbacks if not isinstance(callback, ModelCheckpoint)]
        return super()._instantiate_trainer(config, callbacks)

    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data.num_classes", "model.init_args.num_classes", apply_on="instantiate")
        # the method reads its training streams, D_f^train (SalUn) and imprinting images from the DataModule
        parser.link_arguments("data", "model.init_args.training_images", apply_on="instantiate")
        parser.add_lightning_class_args(RetrievalEvaluation, "evaluation")
        parser.add_lightning_class_args(RunFiles, "run_files")
        # the run files record what the evaluation computed
        parser.link_arguments("evaluation", "run_files.evaluation", apply_on="instantiate")
        # the DataModule embeds only the subsets the benchmarks and snapshots read
        parser.link_arguments(("evaluation.benchmarks", "run_files.snapshots"), "data.eval_subsets",
                              compute_fn=RetrievalEvaluation.subsets_for, apply_on="parse")
        # ... and, at the start and the intermediate evaluations of a fit, only what those compute
        parser.link_arguments(("evaluation.benchmarks", "evaluation.intermediate_benchmarks", "evaluation.intermediate_distractors",
                               "evaluation.start_results", "run_files.snapshots", "run_files.snapshot_every_evaluation"),
                              "data.phase_subsets", compute_fn=RetrievalEvaluation.phase_subsets_for, apply_on="parse")
        # how far training left the start model's basin (weight distance; forget retrieval at the weight midpoint)
        parser.add_lightning_class_args(WeightSpaceDiagnostics, "weight_space")
        parser.link_arguments("data", "weight_space.data", apply_on="instantiate")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults({"checkpoint.dirpath": "checkpoints", "checkpoint.save_last": True})


def cli_main(args: list[str] | None = None, run: bool = True) -> FaceUnlearnCLI:
    return FaceUnlearnCLI(
        FaceModule,
        FaceDataModule,
        subclass_mode_model=True,
        trainer_defaults=TRAINER_DEFAULTS,
        save_config_kwargs={"overwrite": True},
        args=args,
        run=run,
    )


# ---------------------------------------------------------------- configs read by the CLI's own parser, nothing built
class _ParseOnly(FaceUnlearnCLI):
    def _set_seed(self) -> None:
        pass

    def instantiate_classes(self) -> None:
        pass


class ConfigError(ValueError):
    """A config file that is missing or that the CLI's parser refuses."""


def parse_config(config: str | os.PathLike, overrides: list[str] = (), before: list[str] = ()) -> _ParseOnly:
    """``config`` + ``overrides`` through the LightningCLI/jsonargparse parser, without building anything: the one
    way any tool reads a config (``.config``: the composed namespace, defaults included; ``.parser``: to dump it).
    ``before``: arguments the config may override (e.g. a model for a data-only config)."""
    import warnings

    if not Path(config).is_file():
        raise ConfigError(f"config file {str(config)!r} does not exist")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
        try:
            return _ParseOnly(FaceModule, FaceDataModule, subclass_mode_model=True, trainer_defaults=TRAINER_DEFAULTS,
                              args=[*before, "--config", str(config), *overrides], run=False)
        except SystemExit as error:  # argparse's way of refusing a config
            raise ConfigError(f"config file {str(config)!r} does not parse (see the message above)") from error


def config_files(parsed) -> list[Path]:
    """Every file a parsed config was read from, as jsonargparse records them: the ``--config`` files (includes first,
    then the config) and each file-valued group (``data: protocols/x_data.yaml``), in section order."""
    files = [Path(path.absolute) for path in parsed.get("config") or ()]
    for value in vars(parsed).values():  # the top-level sections (keys() would flatten them)
        where = getattr(value, "__path__", None) if value is not None else None
        if where is not None and Path(where.absolute) not in files:
            files.append(Path(where.absolute))
    return files


@functools.lru_cache(maxsize=256)
def composed_files(config: str, mtime_ns: int) -> tuple[Path, ...]:
    """``config_files`` of ``config`` as it is at ``mtime_ns`` (parsed once per version of the file: a sweep digests
    every config for every run it plans; a group file's *content* is re-read by the digest each time)."""
    return tuple(config_files(parse_config(config).config))


def plain(section) -> dict:
    """A parsed section as a plain dict, without jsonargparse's ``__path__`` records."""
    if hasattr(section, "as_dict"):
        section = section.as_dict()
    if isinstance(section, dict):
        return {key: plain(value) for key, value in section.items() if key != "__path__"}
    return section


#: the model settings that change a start model's embeddings (beside its weights, the same per scenario)
FORWARD_SETTINGS = ("backbone", "embedding_size", "input_mean", "input_std", "forward_chunk_size", "channels_last", "scale", "margin")


def start_evaluation(config: str) -> dict | None:
    """What a config's step-0 evaluation depends on: its data, benchmarks, forward settings and precision (None for
    a config that does not parse)."""
    path = Path(config)
    return _start_evaluation(str(config), path.stat().st_mtime_ns if path.is_file() else None)


@functools.lru_cache(maxsize=256)
def _start_evaluation(config: str, mtime_ns: int | None) -> dict | None:  # parsed once per version of the file
    try:
        parsed = parse_config(config).config
    except ConfigError:
        return None
    init_args = plain(parsed.model.get("init_args")) or {}
    forward = {key: init_args.get(key) for key in FORWARD_SETTINGS} | {"precision": parsed.trainer.get("precision")}
    return {"data": plain(parsed.get("data")), "evaluation": plain(parsed.get("evaluation")), "forward": forward}


def start_evaluation_sha256(config: str) -> str | None:
    """A digest of ``start_evaluation(config)``: two configs with one digest evaluate a start model alike."""
    import hashlib
    import json

    settings = start_evaluation(config)
    return None if settings is None else hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()


def same_start_evaluation(config: str, original_config: str) -> bool:
    """Whether a method config's step-0 evaluation is its scenario's Original evaluation (made with
    ``original_config``): the same data, benchmarks, forward settings and precision. Then the method run takes
    the Original's numbers (``--evaluation.start_results``) and embeds only the forget benchmarks at
    step 0, checking them against the Original's."""
    mine = start_evaluation(config)
    return mine is not None and mine == start_evaluation(original_config)


def main(argv: list[str] | None = None) -> None:
    from faceunlearn.io.shipped import resolve_config_arguments

    words = resolve_config_arguments(sys.argv[1:] if argv is None else argv)  # --config NAME: a shipped config
    if not words or words[0] in ("-h", "--help"):
        print(overview())
        return
    if words[0] in SUBCOMMANDS:
        from importlib import import_module

        import_module(SUBCOMMANDS[words[0]]).main(words[1:])
        return
    try:
        cli_main(words)
    except Exception as error:
        cause = user_error(error)
        if cause is None:
            raise
        sys.exit(f"faceunlearn: error: {cause}")  # a wrong path or file, not a bug: the message says what to do


def user_error(error: BaseException) -> BaseException | None:
    """The first of ``USER_ERRORS`` in ``error``'s chain (jsonargparse wraps errors raised while instantiating)."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, USER_ERRORS):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


if __name__ == "__main__":
    main()
