"""Population membership inference: was this face image (or its person) in the training set?

Per-image features, computed from the model alone (no shadow model to train):

    f₁ = cos(z_i, c_{−i})     c_{−i}: normalised mean embedding of the *other* images of i's identity
                              in the same population (leave-one-out; 0 when i is its identity's only image)
    f₂ = max_j cos(z_i, W_j)  the CosFace head's highest class cosine (no label needed)

A trained model pulls its training identities' images together and onto a class weight, so both
are higher for members. The attack is a logistic regression on standardised (f₁, f₂) fit on
*shadow* data — images of retain identities (members) against held-out identities (non-members) —
and scored on the forget set; its AUC (``attack_auc``, torchmetrics' exact AUROC) says how well
D_f^train is told from never-seen identities. The value to compare with is Retrain's, not 0.5.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@torch.no_grad()
def membership_features(embeddings: torch.Tensor, labels: torch.Tensor, head_weight: torch.Tensor | None = None) -> torch.Tensor:
    """[n, 2] (or [n, 1] without a head): the leave-one-out centroid cosine and the top head cosine."""
    z = F.normalize(embeddings.float(), dim=1)
    labels = labels.reshape(-1).to(z.device)
    identities, inverse = torch.unique(labels, return_inverse=True)
    sums = torch.zeros(len(identities), z.shape[1], device=z.device).index_add_(0, inverse, z)
    counts = torch.bincount(inverse, minlength=len(identities))
    others = sums[inverse] - z  # the identity's sum without the image itself
    loo = (F.normalize(others, dim=1) * z).sum(1)
    loo = torch.where(counts[inverse] > 1, loo, torch.zeros_like(loo))
    features = [loo]
    if head_weight is not None:
        features.append((z @ F.normalize(head_weight.float().to(z.device), dim=1).T).max(1).values)
    return torch.stack(features, 1)


@dataclass
class MembershipAttack:
    mean: torch.Tensor
    std: torch.Tensor
    weight: torch.Tensor
    bias: torch.Tensor

    def score(self, features: torch.Tensor) -> torch.Tensor:
        """The attack's logit: higher = more likely a member."""
        return ((features.float() - self.mean) / self.std) @ self.weight + self.bias


def fit_membership_attack(members: torch.Tensor, nonmembers: torch.Tensor, l2: float = 1e-3, steps: int = 100) -> MembershipAttack:
    """Logistic regression (L-BFGS, L2 ``l2``) of members (1) against non-members (0), classes weighted equally."""
    if len(members) == 0 or len(nonmembers) == 0:
        raise ValueError("the membership attack needs both member and non-member shadow images")
    x = torch.cat([members, nonmembers]).float()
    y = torch.cat([torch.ones(len(members)), torch.zeros(len(nonmembers))])
    sample_weight = torch.where(y > 0, 0.5 / len(members), 0.5 / len(nonmembers))
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    x = (x - mean) / std
    weight = torch.zeros(x.shape[1], requires_grad=True)
    bias = torch.zeros((), requires_grad=True)
    optimiser = torch.optim.LBFGS([weight, bias], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        optimiser.zero_grad()
        loss = (F.binary_cross_entropy_with_logits(x @ weight + bias, y, reduction="none") * sample_weight).sum()
        loss = loss + l2 * weight.square().sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    return MembershipAttack(mean, std, weight.detach(), bias.detach())


def attack_auc(positive_scores: torch.Tensor, negative_scores: torch.Tensor) -> float:
    """AUROC of telling ``positive`` from ``negative`` by score (ties count ½), torchmetrics' exact AUROC."""
    from torchmetrics.functional.classification import binary_auroc

    if len(positive_scores) == 0 or len(negative_scores) == 0:
        return float("nan")
    scores = torch.cat([positive_scores.reshape(-1), negative_scores.reshape(-1)]).double()
    target = torch.cat([torch.ones(len(positive_scores)), torch.zeros(len(negative_scores))]).long()
    return float(binary_auroc(scores, target, thresholds=None))
