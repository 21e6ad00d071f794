"""Membership inference on equal terms: was this person in the training set?

Per-image features, computed from embeddings alone — nothing a model has besides its embedding
network (a CosFace head, say) is read, so every model is attacked with the same features:

    f₁ = cos(z_i, c_{−i})              c_{−i}: normalised mean embedding of the *other* images of i's
                                       identity in the same population (leave-one-out)
    f₂ = max_{j≠i, y_j=y_i} cos(z_i, z_j)   the nearest other image of the same identity

A trained model pulls its training identities' images together, so both are higher for members.
Both read how many images an identity has in its population, so every population is first cut to the
same number of images per identity (``matched_rows``, seeded): shadow members, shadow non-members and
the targets differ in who they are, never in how many photos each has.

The attack is scikit-learn's logistic regression (standardised features, classes weighted equally)
fit on *shadow* data — images of retain identities (members) against held-out identities (non-members)
— and scored on the forget set. Two views: the pooled AUC of D_f^train images against never-seen
identities' images (``attack_auc``), and a per-identity view in the spirit of U-LiRA (Hayes et al.,
2024): each person's mean attack score against the distribution of never-seen people's
(``identity_scores``, ``identity_view``) — how many forgotten people stand out as members one by one.
The value to compare with is Retrain's (or the D_r-only control's), not 0.5.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


@torch.no_grad()
def membership_features(embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """[n, 2]: the leave-one-out centroid cosine and the nearest same-identity cosine (0 for an identity's only image)."""
    z = F.normalize(embeddings.float(), dim=1)
    labels = labels.reshape(-1).to(z.device)
    identities, inverse = torch.unique(labels, return_inverse=True)
    sums = torch.zeros(len(identities), z.shape[1], device=z.device).index_add_(0, inverse, z)
    counts = torch.bincount(inverse, minlength=len(identities))
    alone = counts[inverse] <= 1
    loo = (F.normalize(sums[inverse] - z, dim=1) * z).sum(1)  # the identity's sum without the image itself
    same = (inverse[:, None] == inverse[None]) & ~torch.eye(len(z), dtype=torch.bool, device=z.device)
    nearest = (z @ z.T).masked_fill(~same, float("-inf")).max(1).values
    return torch.stack([torch.where(alone, 0.0, loo), torch.where(alone, 0.0, nearest)], 1)


def matched_rows(labels_by_population: dict[str, torch.Tensor], seed: int, per_identity: int | None = None
                 ) -> tuple[dict[str, torch.Tensor], int]:
    """Row numbers of each population keeping exactly ``per_identity`` images of every identity (a seeded
    draw; default: the fewest any identity has, at least 2); identities with fewer are left out."""
    counts = [torch.unique(labels, return_counts=True)[1] for labels in labels_by_population.values() if len(labels)]
    if per_identity is None:
        per_identity = max(2, min(int(count.min()) for count in counts)) if counts else 2
    rng = np.random.default_rng(seed + 17)
    kept = {}
    for name, labels in labels_by_population.items():
        labels = labels.reshape(-1).cpu().numpy()
        rows = [np.sort(rng.choice(np.flatnonzero(labels == identity), size=per_identity, replace=False))
                for identity in np.unique(labels) if (labels == identity).sum() >= per_identity]
        kept[name] = torch.from_numpy(np.concatenate(rows) if rows else np.zeros(0, np.int64)).long()
    return kept, per_identity


class MembershipAttack:
    """scikit-learn's ``LogisticRegression(class_weight="balanced")`` on standardised features."""

    def __init__(self, members: torch.Tensor, nonmembers: torch.Tensor, l2: float = 1e-3):
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        if len(members) == 0 or len(nonmembers) == 0:
            raise ValueError("the membership attack needs both member and non-member shadow images")
        x = torch.cat([members, nonmembers]).double().numpy()
        y = np.r_[np.ones(len(members)), np.zeros(len(nonmembers))]
        # sklearn's C is the inverse L2 strength on the mean loss; l2 is on the sum over (balanced) classes
        self.model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0 / (2 * l2 * len(x)) if l2 else np.inf,
                                                                         class_weight="balanced"))
        self.model.fit(x, y)

    def score(self, features: torch.Tensor) -> torch.Tensor:
        """The attack's logit: higher = more likely a member."""
        if len(features) == 0:
            return torch.zeros(0, dtype=torch.float64)
        return torch.from_numpy(self.model.decision_function(features.double().numpy()))


def fit_membership_attack(members: torch.Tensor, nonmembers: torch.Tensor, l2: float = 1e-3) -> MembershipAttack:
    """The attack fit on shadow members (1) against shadow non-members (0), classes weighted equally."""
    return MembershipAttack(members, nonmembers, l2)


def attack_auc(positive_scores: torch.Tensor, negative_scores: torch.Tensor) -> float:
    """AUROC of telling ``positive`` from ``negative`` by score (ties count ½), scikit-learn's exact AUROC.

    (Not torchmetrics' ``binary_auroc``: it squashes scores outside [0, 1] through a sigmoid, which ties
    large attack logits together.)"""
    from sklearn.metrics import roc_auc_score

    if len(positive_scores) == 0 or len(negative_scores) == 0:
        return float("nan")
    scores = torch.cat([positive_scores.reshape(-1).double(), negative_scores.reshape(-1).double()]).numpy()
    return float(roc_auc_score(np.r_[np.ones(len(positive_scores)), np.zeros(len(negative_scores))], scores))


def identity_scores(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Each identity's mean attack score (identities in ascending label order)."""
    _, inverse = torch.unique(labels.reshape(-1), return_inverse=True)
    sums = torch.zeros(int(inverse.max()) + 1 if len(inverse) else 0, dtype=torch.float64).index_add_(0, inverse, scores.double())
    return sums / torch.bincount(inverse).double()


def identity_view(target: torch.Tensor, unseen: torch.Tensor, level: float = 0.05) -> dict[str, float]:
    """Per-identity membership: ``target`` and ``unseen`` are per-identity scores (``identity_scores``).

    * ``AUC_identity``: AUROC of target people against never-seen people;
    * ``flagged@5%``: the share of target people scoring above the never-seen people's (1 − ``level``)
      quantile — people an auditor would call members at a ``level`` false-alarm rate (chance: ``level``);
    * ``flagged_low@5%``: the share scoring *below* their ``level`` quantile — people who stand out the other
      way (e.g. pushed apart further than anyone never seen): as telling to an auditor (chance: ``level``);
    * ``percentile``: the mean share of never-seen people a target person out-scores (chance: ½)."""
    if len(target) == 0 or len(unseen) == 0:
        return {"AUC_identity": float("nan"), "flagged@5%": float("nan"), "flagged_low@5%": float("nan"),
                "percentile": float("nan")}
    target, unseen = target.double(), unseen.double()
    high, low = torch.quantile(unseen, 1.0 - level), torch.quantile(unseen, level)
    beaten = (target[:, None] > unseen[None]).double() + 0.5 * (target[:, None] == unseen[None])
    return {"AUC_identity": attack_auc(target, unseen), "flagged@5%": float((target > high).double().mean()),
            "flagged_low@5%": float((target < low).double().mean()), "percentile": float(beaten.mean())}
