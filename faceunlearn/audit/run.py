"""``faceunlearn audit``: does a run truly forget? Verification, identification, attacks — against Retrain.

For one unlearning run (a config and its checkpoint) the audit embeds the protocol's sets with the
Original (the config's start weights), the unlearned model and, if given, Retrain, and measures on
each, with **the same attacker for every model** (no test reads a model's CosFace head: an unlearned
model's head still holds a template of each forgotten person, the Original's may be random). Every
number is also in ``audit.csv`` (tidy: ``model,seed,test,metric,value``):

* **retrieval** (``forget``: D_f^test queries vs D_f, own image removed) and its chance level;
* **1:1 verification**: ``verify_forget``, TAR at FAR 1e-4 … 1e-1 for genuine pairs of the forget
  identities at thresholds set on impostor pairs of the main source's held-out identities (their domain);
  ``verify_retain``, every held-out person of every source pooled (their genuine and impostor pairs);
* **retention that can fail**: ``heldout_pooled`` (``_extended`` with every distractor), every held-out
  person of every source in one gallery — query halves against gallery halves;
* **1:N open-set identification** (``identify_forget``, ``identify_retain``): a gallery enrolling
  the forget identities from D_f^train (what an attacker holds), the held-out identities from their
  gallery half and every distractor; probes D_f^test and the held-out query half; non-mated probes
  the retain evaluation identities (never enrolled). TPIR at FPIR 1e-2, 1e-1 and rank-1;
* **membership inference** (``membership``, ``membership_identity``): ``faceunlearn.audit.attacks.membership``
  on embedding features only, every population cut to the same images per identity, fit on shadow data of
  retain identities only (retain_eval members vs held-out gallery half); pooled AUC of D_f^train against
  never-seen identities (held-out query half) and against D_f^test, and the per-identity view (each
  forgotten person against the never-seen people's score distribution);
* **recovery**: a linear probe learned on retain embeddings (``probe``); old galleries embedded by the
  Original and never re-enrolled — ``stale_gallery`` (forget queries; a leak) and its mirrors
  ``stale_gallery_retain`` / ``stale_gallery_heldout`` (retain and held-out queries: a deployment that does
  not re-embed must still find everyone else); relearning (``relearn_<N>``: 2 photos per forget identity)
  and retain-only relearning (``relearn_retain_<N>``: 2 photos per retain identity, none of the forgotten),
  10, 50, 100 steps, the attacker's own head imprinted from its photos, at every lr of ``RELEARN_LRS`` —
  the strongest per N is reported with its ``lr``, the whole grid as ``relearn@lr=…``;
* **basin** (``basin``): the embedding network's relative weight distance to the Original and forget
  retrieval at the weight midpoint (linear connectivity): hidden people come back there.

``audit.md`` puts the models side by side; ``roc.png`` draws the verification ROC curves, whose points
``roc.csv`` keeps (``faceunlearn report`` averages them over forget sets); ``audit.json`` its settings.
The Original's and Retrain's rows depend only on the forget set, the start weights, Retrain and the
attacker, so a sweep audits them once per forget set (``references``: an earlier audit whose settings match,
by SHA-256 of the weights) and every later audit of that forget set copies them. A checkpoint whose recorded
forget identities or start weights are not the config's is refused (``AuditInputError``).
"""
from __future__ import annotations

import copy
import json
import sys
import time
import warnings
from pathlib import Path

from faceunlearn.audit.battery import RELEARN_LRS, RELEARN_STEPS, _relearning, audit_model, audit_subsets, basin, embed_subsets
from faceunlearn.audit.inputs import check_checkpoint, load_model_weights

#: an audit's settings beside its CSV; ``REUSE_KEYS`` of them must match for a later audit to copy its references
AUDIT_JSON = "audit.json"
#: the audit's protocol: audits of another version are never copied (2: one attacker for every model, issue 27)
AUDIT_VERSION = 2
REFERENCE_MODELS = ("Original", "Retrain")
REUSE_KEYS = ("audit_version", "seed", "forget_identities", "start_weights_sha256", "retrain_sha256", "relearn_lrs",
              "relearn_steps")


#: the verification ROC points of every audited model (tidy CSV; metric ``TAR@FAR=<far>``)
ROC_CSV = "roc.csv"


def strongest_relearning(config: str, ckpt_path: str, overrides: list[str] = (), steps: int = 100,
                         lrs=RELEARN_LRS) -> dict[str, float]:
    """The audit's relearning attack alone on one run (``faceunlearn tune``'s ``relearn_mAP`` objective): forget
    ``mAP``, ``R@1`` after ``steps`` steps at the strongest lr of ``lrs``, and that ``lr``."""
    from faceunlearn.cli import cli_main

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
        cli = cli_main(["--config", config, *overrides], run=False)
    model, data = cli.model, cli.datamodule
    data.setup("validate")
    check_checkpoint(ckpt_path, "the attacked", config, sorted(int(i) for i in data.forget_identity_ids), model.start_weights)
    load_model_weights(model, ckpt_path)
    return _relearning(model, data, int(data.hparams.seed), lrs, (steps,), attacks=("relearn",))[f"relearn_{steps}"]


def reference_results(folder: str | Path, settings: dict) -> tuple[list[dict], dict] | None:
    """The Original's and Retrain's rows and ROC curves of the earlier audit in ``folder``, or None (the reason
    printed) unless its ``REUSE_KEYS`` settings equal ``settings``'."""
    from faceunlearn.io.tidy import read_results

    folder = Path(folder)
    try:
        theirs = json.loads((folder / AUDIT_JSON).read_text())
        rows = [row for row in read_results(folder / "audit.csv") if row["method"] in REFERENCE_MODELS]
        points = [row for row in read_results(folder / ROC_CSV) if row["method"] in REFERENCE_MODELS]
    except (OSError, ValueError, KeyError) as error:
        print(f"[audit] auditing the Original and Retrain again: cannot read the audit in {folder} ({error})")
        return None
    differ = [key for key in REUSE_KEYS if theirs.get(key) != settings.get(key)]
    if differ:
        print(f"[audit] auditing the Original and Retrain again: {folder} has other {', '.join(differ)}")
        return None
    rows = [{"method": row["method"], "seed": int(row["seed"]), "benchmark": row["benchmark"], "metric": row["metric"],
             "value": row["value"]} for row in rows]
    curves: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    for row in points:
        fars, tars = curves.setdefault(row["method"], {}).setdefault(row["benchmark"], ([], []))
        fars.append(float(row["metric"].split("=", 1)[1]))
        tars.append(row["value"])
    return rows, curves


def audit(config: str, ckpt_path: str | None, out: str | Path, retrain: str | None = None, overrides: list[str] = (),
          relearn_steps=RELEARN_STEPS, relearn_lrs=RELEARN_LRS, references: str | Path | None = None,
          progress: bool = True, after_weights: str | None = None, after_name: str = "Unlearned") -> list[dict]:
    """Audit one run (see the module doc); writes ``audit.csv``, ``audit.md``, ``roc.png`` and ``audit.json`` to ``out``.

    The checkpoints must belong to the config: their recorded forget identities (and the method's start
    weights, by SHA-256) must be the config's, or ``AuditInputError`` says which differ. ``references``: an
    earlier audit of the same forget set (a sweep's first) whose Original and Retrain rows are copied instead of
    audited again when its settings match (``REUSE_KEYS``: forget set, start weights' and Retrain's SHA-256,
    attacker).

    ``after_weights`` instead of ``ckpt_path``: audit any recognizer file (ONNX, ``.pth``, ``sface``) against the config's
    start weights, whoever produced it, as ``after_name`` (``faceunlearn audit --before A --after B``): it records no
    forget set to check, so the caller vouches that it was meant to forget the config's."""
    from faceunlearn.io.atomic import write_text_atomic
    from faceunlearn.cli import cli_main
    from faceunlearn.io.paths import file_sha256
    from faceunlearn.io.tidy import write_csv

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
        cli = cli_main(["--config", config, *overrides], run=False)
    model, data = cli.model, cli.datamodule
    data.setup("validate")
    seed = int(data.hparams.seed)
    forget_identities = sorted(int(i) for i in data.forget_identity_ids)
    if (ckpt_path is None) == (after_weights is None):
        raise ValueError("audit: give the audited model as ckpt_path (a faceunlearn checkpoint) or after_weights, not both")
    if ckpt_path is not None:
        check_checkpoint(ckpt_path, "the audited", config, forget_identities, model.start_weights)
    if retrain:
        check_checkpoint(retrain, "the Retrain", config, forget_identities, None)
    method = type(model).__name__ if ckpt_path is not None else after_name
    models = {"Original": copy.deepcopy(model)}
    if ckpt_path is not None:
        load_model_weights(model, ckpt_path)
    else:  # the same config, started from the other file: the same data, evaluation and attacker
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
            model = cli_main(["--config", config, *overrides, "--model.init_args.init_weights", str(after_weights)], run=False).model
    models[method] = model
    if retrain:
        models["Retrain"] = copy.deepcopy(model)
        load_model_weights(models["Retrain"], retrain)
    settings = {"audit_version": AUDIT_VERSION, "config": str(config), "ckpt_path": ckpt_path and str(ckpt_path), "seed": seed,
                "after_weights": after_weights and str(after_weights),
                "forget_identities": forget_identities,
                "init_weights": None if model.hparams.init_weights is None else str(model.hparams.init_weights),
                "start_weights_sha256": (model.start_weights or {}).get("sha256"),
                "retrain": str(Path(retrain).resolve()) if retrain else None,
                "retrain_sha256": file_sha256(retrain) if retrain else None,
                "relearn_lrs": sorted(float(lr) for lr in relearn_lrs),
                "relearn_steps": sorted(int(steps) for steps in relearn_steps), "overrides": list(overrides)}
    copied = reference_results(references, settings) if references is not None else None
    rows, curves = copied if copied else ([], {})
    audited = {method: model} if copied else models
    embedded = {name: embed_subsets(m, data, audit_subsets(data)) for name, m in audited.items()}
    # the old-gallery tests need the Original's galleries only
    original = embedded.get("Original") or embed_subsets(models["Original"], data, audit_subsets(data))
    for index, (name, m) in enumerate(audited.items(), start=1):
        started = time.perf_counter()

        def say(text: str, name=name, started=started) -> None:
            print(f"[audit] {name}: {text} ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)

        results, curves[name] = audit_model(m, data, embedded[name], original, seed, relearn_lrs, relearn_steps,
                                            say=say if progress else None)
        results["basin"] = basin(m, models["Original"], data)
        rows += [{"method": name, "seed": seed, "benchmark": test, "metric": metric, "value": float(value)}
                 for test, metrics in results.items() for metric, value in metrics.items()]
        if progress:
            print(f"[audit] {index}/{len(audited)} {name} audited in {time.perf_counter() - started:.0f} s", flush=True)
    order = list(models)
    rows.sort(key=lambda row: order.index(row["method"]))  # stable: each model's rows keep their order
    curves = {name: curves[name] for name in order}
    out = Path(out)
    write_csv(rows, out / "audit.csv")
    # the ROC points, tidy, so that `faceunlearn report` can average the curves over forget sets
    write_csv([{"method": name, "seed": seed, "benchmark": test, "metric": f"TAR@FAR={far!r}", "value": float(tar)}
               for name, by_test in curves.items() for test, (fars, tars) in by_test.items() for far, tar in zip(fars, tars)],
              out / ROC_CSV)
    from faceunlearn.audit.purge import forget_data_files

    markdown = audit_markdown(rows, f"{config} @ {ckpt_path or after_weights}")
    leftovers = []
    if ckpt_path is not None:
        run_dir = Path(ckpt_path).resolve().parent.parent  # <run>/checkpoints/last.ckpt
        leftovers = forget_data_files(run_dir)
        markdown += f"\n## Files of {run_dir} that hold forget-set data\n\n"
        markdown += "\n".join(f"* `{path}`: {what}" for path, what in leftovers) if leftovers else "None."
        markdown += ("\n\n(`faceunlearn purge` removes them. The checkpoint's CosFace head keeps one weight row per "
                     "training identity, forget identities included: a template of each forgotten person, kept because "
                     "resuming reads it (no audit test reads it); `faceunlearn purge --checkpoints` zeroes those rows "
                     "once the run need not resume.)\n")
    for path, what in leftovers:
        print(f"[audit] holds forget-set data: {path} ({what})")
    write_text_atomic(out / "audit.md", markdown)
    try:
        from faceunlearn.figures.png import save_png
        from faceunlearn.figures.roc import roc_figure

        save_png(roc_figure(curves), out / "roc.png")
    except ImportError as error:  # matplotlib missing: the numbers stand without the figure
        print(f"[audit] no ROC figure: {error}")
    settings["references"] = str(references) if copied else None
    write_text_atomic(out / AUDIT_JSON, json.dumps(settings, indent=1) + "\n")
    print(f"[audit] wrote {out / 'audit.csv'}, {out / 'audit.md'}"
          + (f" (Original and Retrain copied from {references})" if copied else ""))
    return rows


def audit_markdown(rows: list[dict], title: str) -> str:
    """One table: a row per (test, metric), a column per model."""
    models = list(dict.fromkeys(row["method"] for row in rows))
    keys = list(dict.fromkeys((row["benchmark"], row["metric"]) for row in rows))
    value = {(row["method"], row["benchmark"], row["metric"]): row["value"] for row in rows}
    lines = [f"# faceunlearn audit: {title}", "", "| test | metric | " + " | ".join(models) + " |",
             "|---|---|" + "---:|" * len(models)]
    for test, metric in keys:
        cells = []
        for model in models:
            v = value.get((model, test, metric))
            cells.append("—" if v is None or v != v else f"{v:g}" if metric == "lr" or metric.startswith("lr@")
                         else f"{100 * v:.2f}")
        lines.append(f"| {test} | {metric} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("All values in % (AUC × 100), but the relearning attacker's lr. Closer to Retrain (or, without one, the "
                 "D_r-only control) is better forgetting; Retrain is the target, not 0.")
    return "\n".join(lines) + "\n"
