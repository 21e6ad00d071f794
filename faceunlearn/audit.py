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
* **membership inference** (``membership``, ``membership_identity``): ``faceunlearn.attacks.membership``
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
import time
import warnings
from pathlib import Path

import numpy as np
import torch

#: the sets an audit embeds (DataModule subset names; every extra source's "<source>:<name>" of the held-out ones too)
AUDIT_SUBSETS = ("forget", "forget_train", "forget_test", "retain_eval", "retain_eval_query", "retain_eval_gallery",
                 "holdout", "holdout_query", "holdout_gallery", "distractors")
#: the held-out subsets pooled across sources (retention that can fail: every held-out person in one benchmark)
POOLED = ("holdout", "holdout_query", "holdout_gallery", "distractors")
RELEARN_STEPS = (10, 50, 100)
RELEARN_IMAGES_PER_IDENTITY = 2
#: the relearning attacker's grid of learning rates (SGD, momentum 0.9), the same for every audited model; the
#: audit reports, per step count, the strongest (highest forget mAP) with the lr that gave it. Two decades around
#: the lrs chosen on validation forget set 100 (demo 1e-4, SFace 3e-5: benchmarks/relearn_attacker.py)
RELEARN_LRS = (1e-5, 1e-4, 1e-3)
#: an audit's settings beside its CSV; ``REUSE_KEYS`` of them must match for a later audit to copy its references
AUDIT_JSON = "audit.json"
#: the audit's protocol: audits of another version are never copied (2: one attacker for every model, issue 27)
AUDIT_VERSION = 2
REFERENCE_MODELS = ("Original", "Retrain")
REUSE_KEYS = ("audit_version", "seed", "forget_identities", "start_weights_sha256", "retrain_sha256", "relearn_lrs",
              "relearn_steps")


class AuditInputError(ValueError):
    """A checkpoint that does not belong to the audited config (another forget set or other start weights)."""


#: a model's embeddings of every audit subset: name → (embeddings, labels, image ids)
Embedded = dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def audit_subsets(data) -> list[str]:
    """``AUDIT_SUBSETS`` the data has, with every extra source's held-out and distractor subsets."""
    return [name for name in data.subsets if name in AUDIT_SUBSETS or (":" in name and name.split(":", 1)[1] in POOLED)]


@torch.no_grad()
def embed_subsets(model, data, names=None) -> Embedded:
    """Every named subset (default: ``audit_subsets``) through ``model`` (eval mode), one pass over their union."""
    from faceunlearn.metrics.benchmarks import EmbeddingTable

    names = [name for name in (names or audit_subsets(data)) if name in data.subsets]
    model.eval()
    embeddings, labels, ids = [], [], []
    for batch in data.eval_dataloader(names, shard=False):
        batch = model.device_batch(batch)
        embeddings.append(model(batch["image"]).float().cpu())
        labels.append(batch["label"].cpu())
        ids.append(batch["image_id"].cpu())
    table = EmbeddingTable(torch.cat(embeddings), torch.cat(labels), torch.cat(ids), data.subsets)
    return {name: table.take((name,)) for name in names}


def pooled(embedded: Embedded, name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Subset ``name`` of every source in one set (sources' labels and ids never collide)."""
    parts = [value for key, value in embedded.items() if key == name or key.endswith(":" + name)]
    if not parts:
        return torch.zeros(0, 1), torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)
    return tuple(torch.cat(column) for column in zip(*parts))


def attacker_images(model, data, subset: str, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A relearning attacker's batch: ``RELEARN_IMAGES_PER_IDENTITY`` seeded images of each identity of
    ``subset`` (``forget_train``: the forgotten people; ``retain_eval``: retain people only), as model input."""
    images, labels = [], []
    for batch in data.eval_dataloader([subset], shard=False):
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


def retrieval(queries, gallery, distractors=None) -> dict[str, float]:
    """mAP and R@1 of ``queries`` against ``gallery`` (own image removed by id), ``+ distractors`` if given."""
    from faceunlearn.metrics import retrieval_metrics

    (q, ql, qi), (g, gl, gi) = queries, gallery
    out = retrieval_metrics(q, ql, g, gl, qi, gi, ks=(1,), distractors=distractors)
    return {"mAP": out["mAP"], "R@1": out["R@1"]}


def _verification(embedded: Embedded) -> tuple[dict, dict]:
    """1:1 verification of the forget identities (thresholds on the main source's held-out impostor pairs, the
    forgotten people's own domain) and of every held-out person pooled across sources (their own pairs)."""
    from faceunlearn.metrics.verification import FARS, pair_scores, roc_curve_points, tar_at_far

    forget_genuine, _ = pair_scores(*embedded["forget"][:2])
    _, impostor = pair_scores(*embedded["holdout"][:2])
    pooled_genuine, pooled_impostor = pair_scores(*pooled(embedded, "holdout")[:2])
    results, curves = {}, {}
    for name, genuine, impostors in (("verify_forget", forget_genuine, impostor),
                                     ("verify_retain", pooled_genuine, pooled_impostor)):
        results[name] = {f"TAR@FAR={far:g}": value for far, value in tar_at_far(genuine, impostors, FARS).items()}
        curves[name] = roc_curve_points(genuine, impostors, num_points=40)
    return results, curves


def _membership(embedded: Embedded, seed: int) -> dict[str, dict[str, float]]:
    """Membership inference on embedding features only, every population cut to the same images per identity."""
    from faceunlearn.attacks import attack_auc, fit_membership_attack, identity_scores, identity_view, matched_rows, membership_features

    names = ("retain_eval", "holdout_gallery", "holdout_query", "forget_train", "forget_test")
    rows, per_identity = matched_rows({name: embedded[name][1] for name in names}, seed)
    features = {name: membership_features(embedded[name][0][rows[name]], embedded[name][1][rows[name]]) for name in names}
    attack = fit_membership_attack(features["retain_eval"], features["holdout_gallery"])
    score = {name: attack.score(value) for name, value in features.items()}
    by_identity = {name: identity_scores(score[name], embedded[name][1][rows[name]]) for name in ("forget_train", "holdout_query")}
    return {
        "membership": {
            "AUC_forget_train_vs_unseen": attack_auc(score["forget_train"], score["holdout_query"]),
            "AUC_forget_train_vs_forget_test": attack_auc(score["forget_train"], score["forget_test"]),
            "AUC_shadow_retain_vs_unseen": attack_auc(score["retain_eval"], score["holdout_query"]),  # the attack's own strength
        },
        # U-LiRA-style: each forgotten person against the distribution of never-seen people
        "membership_identity": identity_view(by_identity["forget_train"], by_identity["holdout_query"]),
    }


def _relearning(model, data, seed: int, lrs, steps, attacks=("relearn", "relearn_retain")) -> dict[str, dict[str, float]]:
    """Relearning on 2 photos per forgotten person, and retain-only relearning (2 per retain person, none of the
    forgotten): at every lr of ``lrs``, the attacker's own imprinted head; the strongest per step count, and the grid."""
    from faceunlearn.attacks import relearn_grid

    def evaluate(relearned):  # a copy of the FaceModule, fine-tuned
        again = embed_subsets(relearned, data, ("forget", "forget_test"))
        return retrieval(again["forget_test"], again["forget"])

    results = {}
    for attack, subset in (("relearn", "forget_train"), ("relearn_retain", "retain_eval")):
        if attack not in attacks:
            continue
        images, labels = attacker_images(model, data, subset, seed)
        strongest, every = relearn_grid(model, images, labels, evaluate, steps, sorted(lrs))
        for count in sorted(steps):
            results[f"{attack}_{count}"] = strongest.get(count, {"mAP": float("nan"), "R@1": float("nan"), "lr": float("nan")})
        for lr, by_steps in every.items():
            results[f"{attack}@lr={lr:g}"] = {f"{metric}@{count}": value for count, result in sorted(by_steps.items())
                                              for metric, value in result.items()}
    return results


def audit_model(model, data, embedded: Embedded, original: Embedded, seed: int, relearn_lrs=RELEARN_LRS,
                relearn_steps=RELEARN_STEPS) -> tuple[dict[str, dict[str, float]], dict]:
    """Every audit test of one model: ``{test: {metric: value}}`` and its ROC curves (for the figure).

    Reads the model's embedding network only, never its CosFace head: every model faces the same attacks."""
    from faceunlearn.attacks import fit_linear_probe
    from faceunlearn.metrics.chance import chance_retrieval
    from faceunlearn.metrics.identification import open_set_identification

    results: dict[str, dict[str, float]] = {}
    forget, forget_train, forget_test = embedded["forget"], embedded["forget_train"], embedded["forget_test"]
    retain_eval = embedded["retain_eval"]
    results["forget"] = retrieval(forget_test, forget)
    chance = chance_retrieval(forget_test[1], forget[1], forget_test[2], forget[2])
    results["forget"].update({"chance_mAP": chance["mAP"], "chance_R@1": chance["R@1"]})

    verification, curves = _verification(embedded)
    results.update(verification)
    # retention that can fail: every held-out person of every source in one gallery (+ every distractor)
    distractors = pooled(embedded, "distractors")[0]
    heldout_query, heldout_gallery = pooled(embedded, "holdout_query"), pooled(embedded, "holdout_gallery")
    results["heldout_pooled"] = retrieval(heldout_query, heldout_gallery)
    if len(distractors):
        results["heldout_pooled_extended"] = retrieval(heldout_query, heldout_gallery, distractors)

    # 1:N open-set identification
    enrol_gallery = embedded["holdout_gallery"]
    enrol = torch.cat([forget_train[0], enrol_gallery[0]]), torch.cat([forget_train[1], enrol_gallery[1]])
    for name, (probes, probe_labels) in (("identify_forget", forget_test[:2]), ("identify_retain", embedded["holdout_query"][:2])):
        results[name] = open_set_identification(enrol[0], enrol[1], probes, probe_labels, retain_eval[0],
                                                embedded.get("distractors", (torch.zeros(0, forget[0].shape[1]),))[0])

    results.update(_membership(embedded, seed))

    # recovery: linear probe on retain embeddings; old galleries (embedded by the Original, not re-enrolled)
    linear = fit_linear_probe(retain_eval[0], retain_eval[1], seed=seed)
    results["probe"] = retrieval((forget_test[0] @ linear, *forget_test[1:]), (forget[0] @ linear, *forget[1:]))
    results["stale_gallery"] = retrieval(forget_test, original["forget"])
    # its mirror: a deployment that does not re-embed must still find everyone else
    results["stale_gallery_retain"] = retrieval(embedded["retain_eval_query"], original["retain_eval_gallery"])
    results["stale_gallery_heldout"] = retrieval(heldout_query, pooled(original, "holdout_gallery"))
    results.update(_relearning(model, data, seed, relearn_lrs, relearn_steps))
    return results, curves


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


@torch.no_grad()
def basin(model, original, data) -> dict[str, float]:
    """How far the model left the Original's basin (Siddiqui et al., NeurIPS 2025: resistance to relearning
    follows weight distance and the loss of linear connectivity): the relative L2 distance of the embedding
    network's weights, and forget retrieval at the weight midpoint ``(θ + θ_0)/2``. A model that only hid the
    forgotten people sits close, and its midpoint retrieves them again."""
    theirs = dict(original.backbone.state_dict())
    mine = model.backbone.state_dict()
    floats = [name for name, value in mine.items() if value.is_floating_point()]
    difference = sum(float((mine[name].float() - theirs[name].float()).square().sum()) for name in floats)
    size = sum(float(theirs[name].float().square().sum()) for name in floats)
    midpoint = copy.deepcopy(model)
    midpoint.backbone.load_state_dict({name: (mine[name] + theirs[name]) / 2 if name in floats else mine[name] for name in mine})
    again = embed_subsets(midpoint, data, ("forget", "forget_test"))
    at_midpoint = retrieval(again["forget_test"], again["forget"])
    return {"weight_distance": (difference / max(size, 1e-30)) ** 0.5, "midpoint_forget_mAP": at_midpoint["mAP"],
            "midpoint_forget_R@1": at_midpoint["R@1"]}


def checkpoint_facts(path: str | Path) -> dict:
    """What a Lightning checkpoint records of its run: start weights (path, SHA-256) and forget identities."""
    from faceunlearn.data.datamodule import recorded_forget_identities

    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    return {"start_weights": checkpoint.get("start_weights"), "forget_identities": recorded_forget_identities(checkpoint)}


def check_checkpoint(path: str | Path, role: str, config: str, forget_identities: list[int], start_weights: dict | None) -> None:
    """Refuse (``AuditInputError``, one line naming both) a checkpoint whose recorded forget identities or start
    weights differ from the audited config's: e.g. a forgotten ``--override "--data.seed 1"`` would audit people
    the model never unlearned. ``start_weights`` None: not checked (Retrain trains from its own start)."""
    facts = checkpoint_facts(path)
    recorded = facts["forget_identities"]
    if recorded is None:
        raise AuditInputError(f"{role} checkpoint {path} records no forget identities (made before faceunlearn recorded "
                              f"them): its forget set cannot be checked against {config}'s")
    if sorted(int(i) for i in recorded) != sorted(forget_identities):
        raise AuditInputError(f"{role} checkpoint {path} unlearned forget identities {sorted(int(i) for i in recorded)}, but "
                              f"{config} (with the given overrides) audits {sorted(forget_identities)}: pass the run's own "
                              f"--override (e.g. \"--data.seed K\")")
    if start_weights is not None:
        theirs = facts["start_weights"]
        if not theirs or theirs.get("sha256") != start_weights["sha256"]:
            what = f"{theirs['path']} (sha256 {theirs['sha256'][:12]})" if theirs else "no recorded start weights"
            raise AuditInputError(f"{role} checkpoint {path} was trained from {what}, but {config} starts from "
                                  f"{start_weights['path']} (sha256 {start_weights['sha256'][:12]})")


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
          relearn_steps=RELEARN_STEPS, relearn_lrs=RELEARN_LRS, references: str | Path | None = None,
          progress: bool = True) -> list[dict]:
    """Audit one run (see the module doc); writes ``audit.csv``, ``audit.md``, ``roc.png`` and ``audit.json`` to ``out``.

    The checkpoints must belong to the config: their recorded forget identities (and the method's start
    weights, by SHA-256) must be the config's, or ``AuditInputError`` says which differ. ``references``: an
    earlier audit of the same forget set (a sweep's first) whose Original and Retrain rows are copied instead of
    audited again when its settings match (``REUSE_KEYS``: forget set, start weights' and Retrain's SHA-256,
    attacker)."""
    from faceunlearn.atomic import write_text_atomic
    from faceunlearn.cli import cli_main
    from faceunlearn.paths import file_sha256
    from faceunlearn.reporting import write_csv

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
        cli = cli_main(["--config", config, *overrides], run=False)
    model, data = cli.model, cli.datamodule
    data.setup("validate")
    seed = int(data.hparams.seed)
    forget_identities = sorted(int(i) for i in data.forget_identity_ids)
    check_checkpoint(ckpt_path, "the audited", config, forget_identities, model.start_weights)
    if retrain:
        check_checkpoint(retrain, "the Retrain", config, forget_identities, None)
    method = type(model).__name__
    models = {"Original": copy.deepcopy(model)}
    load_model_weights(model, ckpt_path)
    models[method] = model
    if retrain:
        models["Retrain"] = copy.deepcopy(model)
        load_model_weights(models["Retrain"], retrain)
    settings = {"audit_version": AUDIT_VERSION, "config": str(config), "ckpt_path": str(ckpt_path), "seed": seed,
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
    embedded = {name: embed_subsets(m, data) for name, m in audited.items()}
    # the old-gallery tests need the Original's galleries only
    original = embedded.get("Original") or embed_subsets(models["Original"], data)
    for index, (name, m) in enumerate(audited.items(), start=1):
        started = time.perf_counter()
        results, curves[name] = audit_model(m, data, embedded[name], original, seed, relearn_lrs, relearn_steps)
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
    from faceunlearn.purge import forget_data_files

    run_dir = Path(ckpt_path).resolve().parent.parent  # <run>/checkpoints/last.ckpt
    leftovers = forget_data_files(run_dir)
    markdown = audit_markdown(rows, f"{config} @ {ckpt_path}")
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
