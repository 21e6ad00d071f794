"""``faceunlearn audit``: does a run truly forget? Verification, identification, attacks — against Retrain.

For one unlearning run (a config and its checkpoint) the audit embeds the protocol's sets with the
Original (the config's start weights), the unlearned model and, if given, Retrain, and measures
on each (every number also in ``audit.csv``, tidy: ``model,seed,test,metric,value``):

* **1:1 verification** (``verify_forget``, ``verify_retain``): TAR at FAR 1e-4 … 1e-1 for genuine
  pairs of the forget identities (all of D_f) and of the held-out identities, at thresholds set on
  impostor pairs of held-out identities — the threshold the deployed system would use;
* **1:N open-set identification** (``identify_forget``, ``identify_retain``): a gallery enrolling
  the forget identities from D_f^train (what an attacker holds), the held-out identities from their
  gallery half and every distractor; probes D_f^test and the held-out query half; non-mated probes
  the retain evaluation identities (never enrolled). TPIR at FPIR 1e-2, 1e-1 and rank-1;
* **membership inference** (``membership``): ``faceunlearn.attacks.membership`` fit on shadow data
  of retain identities only (retain_eval members vs held-out gallery half), then AUC of D_f^train
  against never-seen identities (held-out query half) and against D_f^test;
* **recovery**: a linear probe learned on retain embeddings (``probe``: forget mAP/R@1 through it);
  relearning on 2 images per forget identity for 10, 50, 100 steps (``relearn_<N>``), one attacker
  (``RELEARN_LR``) for every model, whatever lr the audited method trained with; the stale
  gallery (``stale_gallery``: forget queries of the model against a forget gallery the Original embedded);
* **retrieval** itself (``forget``: D_f^test queries vs D_f, own image removed) and its chance level.

``audit.md`` puts the models side by side; ``roc.png`` draws the verification ROC curves, whose points
``roc.csv`` keeps (``faceunlearn report`` averages them over forget sets); ``audit.json`` its settings.
The Original's and Retrain's rows depend only on the forget set, the start weights, Retrain and the
attacker, so a sweep audits them once per forget set (``references``: an earlier audit whose settings match)
and every later audit of that forget set copies them.
"""
from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import numpy as np
import torch

#: the sets an audit embeds (DataModule subset names)
AUDIT_SUBSETS = ("forget", "forget_train", "forget_test", "retain_eval", "holdout", "holdout_query", "holdout_gallery", "distractors")
RELEARN_STEPS = (10, 50, 100)
RELEARN_IMAGES_PER_IDENTITY = 2
#: the relearning attacker's learning rate (SGD, momentum 0.9): the same attack on every audited model, so that a
#: method's gap to Retrain is not a gap between two attackers. 1e-4 is the strongest of 1e-5 … 1e-2 against the
#: selected demo Dispersion on validation forget set 100 (benchmarks/relearn_attacker.py, docs/audit.md); another
#: network needs its own (``--relearn-lr``), chosen the same way
RELEARN_LR = 1e-4
#: an audit's settings beside its CSV; ``REUSE_KEYS`` of them must match for a later audit to copy its references
AUDIT_JSON = "audit.json"
REFERENCE_MODELS = ("Original", "Retrain")
REUSE_KEYS = ("seed", "init_weights", "retrain", "relearn_lr", "relearn_steps")


#: a model's embeddings of every audit subset: name → (embeddings, labels, image ids)
Embedded = dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


@torch.no_grad()
def embed_subsets(model, data, names=AUDIT_SUBSETS) -> Embedded:
    """Every named subset through ``model`` (eval mode), one pass over their union."""
    from faceunlearn.metrics.benchmarks import EmbeddingTable

    names = [name for name in names if name in data.subsets]
    model.eval()
    embeddings, labels, ids = [], [], []
    for batch in data.eval_dataloader(names, shard=False):
        batch = model.device_batch(batch)
        embeddings.append(model(batch["image"]).float().cpu())
        labels.append(batch["label"].cpu())
        ids.append(batch["image_id"].cpu())
    table = EmbeddingTable(torch.cat(embeddings), torch.cat(labels), torch.cat(ids), data.subsets)
    return {name: table.take((name,)) for name in names}


def forget_images(model, data, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The relearning attacker's batch: ``RELEARN_IMAGES_PER_IDENTITY`` seeded images of each forget
    identity from D_f^train, as normalised model input."""
    images, labels, ids = [], [], []
    for batch in data.eval_dataloader(["forget_train"], shard=False):
        batch = model.device_batch(batch)
        images.append(batch["image"])
        labels.append(batch["label"])
    images, labels = torch.cat(images), torch.cat(labels)
    rng = np.random.default_rng(seed + 11)
    keep = []
    for identity in torch.unique(labels).tolist():
        rows = torch.nonzero(labels == identity).flatten().tolist()
        keep += sorted(rng.choice(rows, size=min(RELEARN_IMAGES_PER_IDENTITY, len(rows)), replace=False).tolist())
    keep = torch.tensor(sorted(keep))
    return images[keep], labels[keep]


def _retrieval(queries, gallery, ks=(1,)):
    from faceunlearn.metrics import retrieval_metrics

    (q, ql, qi), (g, gl, gi) = queries, gallery
    out = retrieval_metrics(q, ql, g, gl, qi, gi, ks=ks)
    return {"mAP": out["mAP"], "R@1": out["R@1"]}


def audit_model(model, data, embedded: Embedded, original: Embedded, seed: int, relearn_lr: float,
                relearn_steps=RELEARN_STEPS) -> tuple[dict[str, dict[str, float]], dict]:
    """Every audit test of one model: ``{test: {metric: value}}`` and its ROC curves (for the figure)."""
    from faceunlearn.attacks import attack_auc, fit_linear_probe, fit_membership_attack, membership_features, relearn
    from faceunlearn.metrics.chance import chance_retrieval
    from faceunlearn.metrics.identification import open_set_identification
    from faceunlearn.metrics.verification import FARS, pair_scores, roc_curve_points, tar_at_far

    results: dict[str, dict[str, float]] = {}
    forget, forget_train, forget_test = embedded["forget"], embedded["forget_train"], embedded["forget_test"]
    holdout, retain_eval = embedded["holdout"], embedded["retain_eval"]
    results["forget"] = _retrieval(forget_test, forget)
    chance = chance_retrieval(forget_test[1], forget[1], forget_test[2], forget[2])
    results["forget"].update({"chance_mAP": chance["mAP"], "chance_R@1": chance["R@1"]})

    # 1:1 verification at thresholds set on held-out impostor pairs
    retain_genuine, impostor = pair_scores(holdout[0], holdout[1])
    forget_genuine, _ = pair_scores(forget[0], forget[1])
    curves = {}
    for name, genuine in (("verify_forget", forget_genuine), ("verify_retain", retain_genuine)):
        results[name] = {f"TAR@FAR={far:g}": value for far, value in tar_at_far(genuine, impostor, FARS).items()}
        curves[name] = roc_curve_points(genuine, impostor, num_points=40)

    # 1:N open-set identification
    distractors = embedded.get("distractors", (torch.zeros(0, forget[0].shape[1]),))[0]
    gallery_q, gallery_g = embedded["holdout_query"], embedded["holdout_gallery"]
    enrol = torch.cat([forget_train[0], gallery_g[0]]), torch.cat([forget_train[1], gallery_g[1]])
    for name, (probes, probe_labels) in (("identify_forget", forget_test[:2]), ("identify_retain", gallery_q[:2])):
        results[name] = open_set_identification(enrol[0], enrol[1], probes, probe_labels, retain_eval[0], distractors)

    # membership inference, fit on retain identities only
    head = model.head.weight.detach().cpu() if getattr(model, "head_ready", True) else None
    features = {name: membership_features(embedded[name][0], embedded[name][1], head)
                for name in ("retain_eval", "holdout_gallery", "holdout_query", "forget_train", "forget_test")}
    attack = fit_membership_attack(features["retain_eval"], features["holdout_gallery"])
    score = {name: attack.score(value) for name, value in features.items()}
    results["membership"] = {
        "AUC_forget_train_vs_unseen": attack_auc(score["forget_train"], score["holdout_query"]),
        "AUC_forget_train_vs_forget_test": attack_auc(score["forget_train"], score["forget_test"]),
        "AUC_shadow_retain_vs_unseen": attack_auc(score["retain_eval"], score["holdout_query"]),  # the attack's own strength
    }

    # recovery: linear probe on retain embeddings, stale gallery, relearning
    linear = fit_linear_probe(retain_eval[0], retain_eval[1], seed=seed)
    results["probe"] = _retrieval((forget_test[0] @ linear, *forget_test[1:]), (forget[0] @ linear, *forget[1:]))
    results["stale_gallery"] = _retrieval(forget_test, original["forget"])
    images, labels = forget_images(model, data, seed)

    def evaluate(relearned):  # a copy of the FaceModule, fine-tuned
        again = embed_subsets(relearned, data, ("forget", "forget_test"))
        return _retrieval(again["forget_test"], again["forget"])

    attacked = copy.deepcopy(model)
    for steps, metrics in relearn(attacked, attacked.head, images, labels, evaluate, relearn_steps, lr=relearn_lr).items():
        results[f"relearn_{steps}"] = metrics
    return results, curves


def load_model_weights(model, path: str | Path) -> None:
    """A Lightning checkpoint's backbone and head into ``model`` (tensors only: ``weights_only=True``)."""
    from faceunlearn.models.weights import load_weights

    load_weights(model.backbone, model.head, path, backbone_name=type(model).__name__)
    model.head_source = "loaded"


#: the verification ROC points of every audited model (tidy CSV; metric ``TAR@FAR=<far>``)
ROC_CSV = "roc.csv"


def reference_results(folder: str | Path, settings: dict) -> tuple[list[dict], dict] | None:
    """The Original's and Retrain's rows and ROC curves of the earlier audit in ``folder``, or None (the reason
    printed) unless its ``REUSE_KEYS`` settings equal ``settings``'."""
    from faceunlearn.experiments.layout import read_results

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


def audit(config: str, ckpt_path: str, out: str | Path, retrain: str | None = None, overrides: list[str] = (),
          relearn_steps=RELEARN_STEPS, relearn_lr: float = RELEARN_LR, references: str | Path | None = None) -> list[dict]:
    """Audit one run (see the module doc); writes ``audit.csv``, ``audit.md``, ``roc.png`` and ``audit.json`` to ``out``.

    ``references``: an earlier audit of the same forget set (a sweep's first) whose Original and Retrain rows
    are copied instead of audited again when its settings match (``REUSE_KEYS``)."""
    from faceunlearn.atomic import write_text_atomic
    from faceunlearn.cli import cli_main
    from faceunlearn.reporting import write_csv

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
        cli = cli_main(["--config", config, *overrides], run=False)
    model, data = cli.model, cli.datamodule
    data.setup("validate")
    seed = int(data.hparams.seed)
    method = type(model).__name__
    models = {"Original": copy.deepcopy(model)}
    load_model_weights(model, ckpt_path)
    models[method] = model
    if retrain:
        models["Retrain"] = copy.deepcopy(model)
        load_model_weights(models["Retrain"], retrain)
    settings = {"config": str(config), "ckpt_path": str(ckpt_path), "seed": seed,
                "init_weights": None if model.hparams.init_weights is None else str(model.hparams.init_weights),
                "retrain": str(Path(retrain).resolve()) if retrain else None, "relearn_lr": float(relearn_lr),
                "relearn_steps": sorted(int(steps) for steps in relearn_steps), "overrides": list(overrides)}
    copied = reference_results(references, settings) if references is not None else None
    rows, curves = copied if copied else ([], {})
    audited = {method: model} if copied else models
    embedded = {name: embed_subsets(m, data) for name, m in audited.items()}
    # the stale-gallery test needs the Original's forget gallery only
    original = embedded.get("Original") or embed_subsets(models["Original"], data, ("forget",))
    for name, m in audited.items():
        results, curves[name] = audit_model(m, data, embedded[name], original, seed, relearn_lr, relearn_steps)
        rows += [{"method": name, "seed": seed, "benchmark": test, "metric": metric, "value": float(value)}
                 for test, metrics in results.items() for metric, value in metrics.items()]
    order = list(models)
    rows.sort(key=lambda row: order.index(row["method"]))  # stable: each model's rows keep their order
    curves = {name: curves[name] for name in order}
    out = Path(out)
    write_csv(rows, out / "audit.csv")
    # the ROC points, tidy, so that `faceunlearn report` can average the curves over forget sets
    write_csv([{"method": name, "seed": seed, "benchmark": test, "metric": f"TAR@FAR={far!r}", "value": float(tar)}
               for name, by_test in curves.items() for test, (fars, tars) in by_test.items() for far, tar in zip(fars, tars)],
              out / ROC_CSV)
    from faceunlearn.purge import forget_data_files

    run_dir = Path(ckpt_path).resolve().parent.parent  # <run>/checkpoints/last.ckpt
    leftovers = forget_data_files(run_dir)
    markdown = audit_markdown(rows, f"{config} @ {ckpt_path}")
    markdown += f"\n## Files of {run_dir} that hold forget-set data\n\n"
    markdown += "\n".join(f"* `{path}`: {what}" for path, what in leftovers) if leftovers else "None."
    markdown += ("\n\n(`faceunlearn purge` removes them. The checkpoint's CosFace head keeps one weight row per "
                 "training identity, forget identities included: a template of each forgotten person, kept because "
                 "resuming and the relearning attack read it; `faceunlearn purge --checkpoints` zeroes those rows "
                 "once the run need not resume.)\n")
    for path, what in leftovers:
        print(f"[audit] holds forget-set data: {path} ({what})")
    write_text_atomic(out / "audit.md", markdown)
    try:
        from faceunlearn.figures.png import save_png

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
            cells.append("—" if v is None or v != v else f"{100 * v:.2f}")
        lines.append(f"| {test} | {metric} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("All values in % (AUC × 100). Closer to Retrain is better forgetting; Retrain is the target, not 0.")
    return "\n".join(lines) + "\n"


def roc_figure(curves: dict[str, dict]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for axis, test in zip(axes, ("verify_forget", "verify_retain")):
        for model, by_test in curves.items():
            fars, tars = by_test[test]
            axis.plot(fars, tars, label=model)
        axis.set_xscale("log")
        axis.set_xlabel("FAR (held-out impostor pairs)")
        axis.set_title({"verify_forget": "forget identities", "verify_retain": "held-out identities"}[test])
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("TAR")
    axes[0].legend()
    figure.tight_layout()
    return figure
