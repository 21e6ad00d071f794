"""The audit's battery: every test of one model (``audit_model``), with the same attacker for every model.

See ``faceunlearn.audit.run`` for what each test measures; this module computes them from a model, its
DataModule and the Original's embeddings. No test reads a model's CosFace head.
"""
from __future__ import annotations

import copy

import numpy as np
import torch

from faceunlearn.methods.embedding import Embedded, embed_subsets  # noqa: F401 (re-exported)

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
def audit_subsets(data) -> list[str]:
    """``AUDIT_SUBSETS`` the data has, with every extra source's held-out and distractor subsets."""
    return [name for name in data.subsets if name in AUDIT_SUBSETS or (":" in name and name.split(":", 1)[1] in POOLED)]


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


def main_or_pooled(embedded: Embedded, name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The main source's subset ``name`` (the forgotten people's own domain), or, where the main source has none (your
    own photos with a separate held-out folder), every source's pooled."""
    main = embedded.get(name)
    return main if main is not None and len(main[0]) else pooled(embedded, name)


def _verification(embedded: Embedded) -> tuple[dict, dict]:
    """1:1 verification of the forget identities (thresholds on the main source's held-out impostor pairs, the
    forgotten people's own domain; where the main source holds no held-out people, as with your own photos and a
    separate held-out folder, every source's held-out people) and of every held-out person pooled across sources
    (their own pairs)."""
    from faceunlearn.metrics.verification import FARS, pair_scores, roc_curve_points, tar_at_far

    forget_genuine, _ = pair_scores(*embedded["forget"][:2])
    pooled_genuine, pooled_impostor = pair_scores(*pooled(embedded, "holdout")[:2])
    _, impostor = pair_scores(*main_or_pooled(embedded, "holdout")[:2])
    results, curves = {}, {}
    for name, genuine, impostors in (("verify_forget", forget_genuine, impostor),
                                     ("verify_retain", pooled_genuine, pooled_impostor)):
        results[name] = {f"TAR@FAR={far:g}": value for far, value in tar_at_far(genuine, impostors, FARS).items()}
        curves[name] = roc_curve_points(genuine, impostors, num_points=40)
    return results, curves


def _membership(embedded: Embedded, seed: int) -> dict[str, dict[str, float]]:
    """Membership inference on embedding features only, every population cut to the same images per identity."""
    from faceunlearn.audit.attacks import attack_auc, fit_membership_attack, identity_scores, identity_view, matched_rows, membership_features

    names = ("retain_eval", "holdout_gallery", "holdout_query", "forget_train", "forget_test")
    embedded = {**embedded, "holdout_gallery": main_or_pooled(embedded, "holdout_gallery"),
                "holdout_query": main_or_pooled(embedded, "holdout_query")}
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


def _relearning(model, data, seed: int, lrs, steps, attacks=("relearn", "relearn_retain"), say=None) -> dict[str, dict[str, float]]:
    """Relearning on 2 photos per forgotten person, and retain-only relearning (2 per retain person, none of the
    forgotten): at every lr of ``lrs``, the attacker's own imprinted head; the strongest per step count, and the grid."""
    from faceunlearn.audit.attacks import relearn_grid

    def evaluate(relearned):  # a copy of the FaceModule, fine-tuned
        again = embed_subsets(relearned, data, ("forget", "forget_test"))
        return retrieval(again["forget_test"], again["forget"])

    results, done, total = {}, 0, len(attacks) * len(lrs)
    for attack, subset in (("relearn", "forget_train"), ("relearn_retain", "retain_eval")):
        if attack not in attacks:
            continue
        images, labels = attacker_images(model, data, subset, seed)

        def attacked(lr: float, attack=attack) -> None:
            nonlocal done
            done += 1
            if say is not None:
                say(f"{attack} at lr {lr:g} done ({done}/{total} attacks)")

        strongest, every = relearn_grid(model, images, labels, evaluate, steps, sorted(lrs), on_lr=attacked)
        for count in sorted(steps):
            results[f"{attack}_{count}"] = strongest.get(count, {"mAP": float("nan"), "R@1": float("nan"), "lr": float("nan")})
        for lr, by_steps in every.items():
            results[f"{attack}@lr={lr:g}"] = {f"{metric}@{count}": value for count, result in sorted(by_steps.items())
                                              for metric, value in result.items()}
    return results


def audit_model(model, data, embedded: Embedded, original: Embedded, seed: int, relearn_lrs=RELEARN_LRS,
                relearn_steps=RELEARN_STEPS, say=None) -> tuple[dict[str, dict[str, float]], dict]:
    """Every audit test of one model: ``{test: {metric: value}}`` and its ROC curves (for the figure).

    Reads the model's embedding network only, never its CosFace head: every model faces the same attacks.
    ``say(text)``: progress (the relearning attacks are most of the time)."""
    from faceunlearn.audit.attacks import fit_linear_probe
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
    enrol_gallery = main_or_pooled(embedded, "holdout_gallery")
    enrol = torch.cat([forget_train[0], enrol_gallery[0]]), torch.cat([forget_train[1], enrol_gallery[1]])
    retain_probes = main_or_pooled(embedded, "holdout_query")
    for name, (probes, probe_labels) in (("identify_forget", forget_test[:2]), ("identify_retain", retain_probes[:2])):
        results[name] = open_set_identification(enrol[0], enrol[1], probes, probe_labels, retain_eval[0],
                                                main_or_pooled(embedded, "distractors")[0].reshape(-1, forget[0].shape[1]))

    results.update(_membership(embedded, seed))

    # recovery: linear probe on retain embeddings; old galleries (embedded by the Original, not re-enrolled)
    linear = fit_linear_probe(retain_eval[0], retain_eval[1], seed=seed)
    results["probe"] = retrieval((forget_test[0] @ linear, *forget_test[1:]), (forget[0] @ linear, *forget[1:]))
    results["stale_gallery"] = retrieval(forget_test, original["forget"])
    # its mirror: a deployment that does not re-embed must still find everyone else
    results["stale_gallery_retain"] = retrieval(embedded["retain_eval_query"], original["retain_eval_gallery"])
    results["stale_gallery_heldout"] = retrieval(heldout_query, pooled(original, "holdout_gallery"))
    if say is not None:
        say("retrieval, verification, identification, membership, probe and old-gallery tests done")
    results.update(_relearning(model, data, seed, relearn_lrs, relearn_steps, say=say))
    return results, curves


@torch.no_grad()
def basin(model, original, data) -> dict[str, float]:
    """How far the model left the Original's basin (Siddiqui et al., NeurIPS 2025: resistance to relearning
    follows weight distance and the loss of linear connectivity): the relative L2 distance of the embedding
    network's weights, and forget retrieval at the weight midpoint ``(θ + θ_0)/2``. A model that only hid the
    forgotten people sits close, and its midpoint retrieves them again."""
    from faceunlearn.methods.weight_space import midpoint_weights, relative_distance

    theirs = dict(original.backbone.state_dict())
    mine = model.backbone.state_dict()
    if {n: v.shape for n, v in mine.items()} != {n: v.shape for n, v in theirs.items()}:
        # two recognizers of different architectures (e.g. ONNX files audited as a pair): no common weight space
        nan = float("nan")
        return {"weight_distance": nan, "midpoint_forget_mAP": nan, "midpoint_forget_R@1": nan}
    floats = {name: value for name, value in mine.items() if value.is_floating_point()}
    midpoint = copy.deepcopy(model)
    midpoint.backbone.load_state_dict({**mine, **midpoint_weights(floats, theirs)})
    again = embed_subsets(midpoint, data, ("forget", "forget_test"))
    at_midpoint = retrieval(again["forget_test"], again["forget"])
    return {"weight_distance": float(relative_distance(floats, theirs)), "midpoint_forget_mAP": at_midpoint["mAP"],
            "midpoint_forget_R@1": at_midpoint["R@1"]}
