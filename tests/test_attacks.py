"""Identification, verification pairs and the attacks, against brute force and sklearn on random data."""

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from faceunlearn.audit.attacks import (attack_auc, fit_linear_probe, fit_membership_attack, identity_scores, identity_view, matched_rows,
                                 membership_features, relearn)
from faceunlearn.audit.attacks.relearn import imprinted_head, relearn_grid
from faceunlearn.metrics import retrieval_metrics
from faceunlearn.metrics.identification import identity_templates, open_set_identification, search_templates, tpir_at_fpir
from faceunlearn.metrics.verification import pair_scores


def test_pair_scores_are_every_pair_once():
    generator = torch.Generator().manual_seed(0)
    x, labels = torch.randn(23, 5, generator=generator), torch.randint(0, 4, (23,), generator=generator)
    genuine, impostor = pair_scores(x, labels, chunk=4)
    z = F.normalize(x, dim=1)
    want_g = [float(z[i] @ z[j]) for i, j in itertools.combinations(range(23), 2) if labels[i] == labels[j]]
    want_i = [float(z[i] @ z[j]) for i, j in itertools.combinations(range(23), 2) if labels[i] != labels[j]]
    assert sorted(genuine.tolist()) == pytest.approx(sorted(want_g), abs=1e-6)
    assert sorted(impostor.tolist()) == pytest.approx(sorted(want_i), abs=1e-6)
    y, y_labels = torch.randn(7, 5, generator=generator), torch.randint(0, 4, (7,), generator=generator)
    genuine, impostor = pair_scores(x, labels, y, y_labels, chunk=5)
    assert len(genuine) + len(impostor) == 23 * 7 and len(genuine) == int((labels[:, None] == y_labels[None]).sum())


def test_open_set_identification_equals_brute_force():
    generator = torch.Generator().manual_seed(1)
    enrol, enrol_labels = torch.randn(30, 8, generator=generator), torch.arange(6).repeat(5)
    mated, mated_labels = torch.randn(40, 8, generator=generator), torch.randint(0, 6, (40,), generator=generator)
    nonmated, distractors = torch.randn(50, 8, generator=generator), torch.randn(9, 8, generator=generator)
    templates, labels = identity_templates(enrol, enrol_labels)
    for identity in range(6):
        mean = F.normalize(enrol[enrol_labels == identity], dim=1).mean(0)
        assert torch.allclose(templates[labels == identity][0], F.normalize(mean, dim=0), atol=1e-6)
    got = open_set_identification(enrol, enrol_labels, mated, mated_labels, nonmated, distractors, fpirs=(0.02, 0.1, 0.5))
    all_templates = torch.cat([templates, F.normalize(distractors, dim=1)])
    all_labels = torch.cat([labels, torch.arange(100, 109)])
    scores = F.normalize(mated, dim=1) @ all_templates.T
    nm_top = (F.normalize(nonmated, dim=1) @ all_templates.T).max(1).values.sort(descending=True).values
    for fpir in (0.02, 0.1, 0.5):
        allowed = int(fpir * 50)
        threshold = nm_top[allowed]
        hits = 0
        for row, label in zip(scores, mated_labels):
            own = row[all_labels == label].max()
            others = row[all_labels != label].max()
            hits += bool(own > others and own > threshold)
        assert got[f"TPIR@FPIR={fpir:g}"] == pytest.approx(hits / 40)
    assert got["rank1"] == pytest.approx(float(np.mean([
        bool(row[all_labels == label].max() > row[all_labels != label].max()) for row, label in zip(scores, mated_labels)])))


def test_a_tie_at_rank_one_is_not_a_hit_and_unknown_identities_never_are():
    templates, labels = torch.eye(3), torch.tensor([0, 1, 2])
    probes = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    top, correct = search_templates(probes, torch.tensor([0, 7]), templates, labels)
    assert correct.tolist() == [False, False] and top.tolist() == pytest.approx([2 ** -0.5, 1.0])
    with pytest.raises(ValueError, match="no mated probes"):
        tpir_at_fpir(torch.tensor([]), torch.tensor([], dtype=torch.bool), torch.tensor([0.1]))


def test_membership_features_and_auc():
    generator = torch.Generator().manual_seed(2)
    x, labels = torch.randn(20, 6, generator=generator), torch.tensor([0] * 5 + [1] * 5 + [2] * 9 + [3])
    features = membership_features(x, labels)
    z = F.normalize(x, dim=1)
    for i in range(20):
        others = [j for j in range(20) if labels[j] == labels[i] and j != i]
        want = float(F.normalize(z[others].sum(0), dim=0) @ z[i]) if others else 0.0
        nearest = max(float(z[i] @ z[j]) for j in others) if others else 0.0
        assert features[i].tolist() == pytest.approx([want, nearest], abs=1e-5)
    positive, negative = torch.tensor([0.3, 0.5, 0.5, 0.9]), torch.tensor([0.1, 0.5, 0.2])  # a tie across classes
    assert attack_auc(positive, negative) == pytest.approx(roc_auc_score([1] * 4 + [0] * 3, torch.cat([positive, negative])))
    assert np.isnan(attack_auc(positive, torch.tensor([])))


def test_populations_are_matched_in_images_per_identity():
    labels = {"members": torch.tensor([0] * 9 + [1] * 4 + [2] * 2), "targets": torch.tensor([5] * 3 + [6] * 7)}
    kept, per_identity = matched_rows(labels, seed=0)
    assert per_identity == 2
    for name, rows in kept.items():
        _, counts = torch.unique(labels[name][rows], return_counts=True)
        assert counts.tolist() == [2] * len(counts) and len(set(rows.tolist())) == len(rows)
    kept, _ = matched_rows(labels, seed=0, per_identity=4)  # identities with fewer are left out
    assert sorted(set(labels["members"][kept["members"]].tolist())) == [0, 1] and labels["targets"][kept["targets"]].tolist() == [6] * 4
    assert torch.equal(matched_rows(labels, seed=0)[0]["members"], matched_rows(labels, seed=0)[0]["members"])  # seeded


def test_the_membership_attack_learns_which_side_is_members():
    generator = torch.Generator().manual_seed(3)
    members = torch.randn(200, 2, generator=generator) + torch.tensor([1.0, 0.5])
    nonmembers = torch.randn(300, 2, generator=generator)
    attack = fit_membership_attack(members, nonmembers)
    auc = attack_auc(attack.score(members), attack.score(nonmembers))
    best = roc_auc_score([1] * 200 + [0] * 300, torch.cat([members, nonmembers]) @ torch.tensor([1.0, 0.5]))
    assert auc == pytest.approx(best, abs=0.01)  # the Bayes direction, up to the fit
    with pytest.raises(ValueError, match="both member and non-member"):
        fit_membership_attack(members, nonmembers[:0])


def test_the_per_identity_view_against_a_reference():
    scores, labels = torch.tensor([1.0, 3.0, 0.0, 2.0, 5.0]), torch.tensor([4, 4, 9, 9, 2])
    assert identity_scores(scores, labels).tolist() == [5.0, 2.0, 1.0]  # labels 2, 4, 9
    unseen = torch.arange(100, dtype=torch.float64)  # 95 % quantile 94.05
    target = torch.tensor([99.0, 94.0, 50.0, 20.0])
    view = identity_view(target, unseen)
    assert view["flagged_low@5%"] == 0.0 and identity_view(torch.tensor([99.0, 3.0, 50.0, 20.0]), unseen)["flagged_low@5%"] == 0.25  # 5 % quantile 4.95
    assert view["flagged@5%"] == 0.25 and view["AUC_identity"] == pytest.approx(roc_auc_score([1] * 4 + [0] * 100, torch.cat([target, unseen])))
    assert view["percentile"] == pytest.approx(np.mean([(unseen < t).float().mean() + 0.5 * (unseen == t).float().mean() for t in target]))


def test_a_linear_probe_recovers_identities_that_are_hidden_not_removed():
    """Identity lives in 8 faint dimensions under 56 loud shared-noise ones: raw retrieval is poor, a
    map learned on *other* (retain) identities amplifies the faint ones and brings the forget ones back."""
    generator = torch.Generator().manual_seed(4)

    def people(n, per):
        centres = torch.randn(n, 8, generator=generator)
        labels = torch.arange(n).repeat_interleave(per)
        signal = 0.08 * (centres[labels] + 0.3 * torch.randn(n * per, 8, generator=generator))
        return torch.cat([signal, torch.randn(n * per, 56, generator=generator)], 1), labels

    retain, retain_labels = people(60, 8)
    forget, forget_labels = people(10, 8)
    raw = retrieval_metrics(forget, forget_labels, forget, forget_labels, torch.arange(80), torch.arange(80))["mAP"]
    linear = fit_linear_probe(retain, retain_labels, steps=300, seed=0)
    assert torch.equal(linear, fit_linear_probe(retain, retain_labels, steps=300, seed=0))  # seeded
    probed = retrieval_metrics(forget @ linear, forget_labels, forget @ linear, forget_labels, torch.arange(80), torch.arange(80))["mAP"]
    assert raw < 0.3 and probed > raw + 0.3


def test_relearning_fine_tunes_copies_and_reports_each_step_count():
    torch.manual_seed(0)
    backbone = torch.nn.Linear(12, 6)
    images, labels = torch.randn(6, 12), torch.tensor([7, 7, 3, 3, 9, 9])  # any labels: the attacker's head is its own
    before = backbone.weight.clone()

    def separation(model):  # mean same-identity minus mean cross-identity cosine
        z = F.normalize(model(images), dim=1)
        same = labels[:, None] == labels[None]
        return {"mAP": float((z @ z.T)[same & ~torch.eye(6, dtype=torch.bool)].mean() - (z @ z.T)[~same].mean())}

    results = relearn(backbone, images, labels, separation, steps=(5, 1, 20), lr=0.05)
    assert list(results) == [1, 5, 20] and torch.equal(backbone.weight, before)  # the given model is left alone
    with torch.no_grad():
        start = separation(backbone)["mAP"]
    assert results[20]["mAP"] > results[1]["mAP"] > start + 0.2
    # the grid keeps, per step count, the lr whose result is strongest, and every lr's results
    strongest, every = relearn_grid(backbone, images, labels, separation, steps=(1, 20), lrs=(1e-4, 0.05, 1e-2))
    assert sorted(every) == [1e-4, 1e-2, 0.05]
    for steps in (1, 20):
        best = max(every, key=lambda lr: every[lr][steps]["mAP"])
        assert strongest[steps] == {**every[best][steps], "lr": best}
    assert every[0.05][20] == pytest.approx(results[20])  # each lr of the grid is the plain attack at that lr


def test_the_attackers_head_is_imprinted_from_its_own_photos():
    embeddings, labels = torch.randn(9, 5), torch.tensor([4, 4, 4, 1, 1, 8, 8, 8, 8])
    head, targets = imprinted_head(embeddings, labels)
    assert targets.tolist() == [1, 1, 1, 0, 0, 2, 2, 2, 2]
    for row, label in enumerate((1, 4, 8)):
        mean = F.normalize(embeddings[labels == label], dim=1).mean(0)
        assert torch.allclose(head.weight[row], mean / mean.norm(), atol=1e-6)
