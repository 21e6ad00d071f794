"""Linear-probe recovery: does a linear map of the frozen unlearned embeddings bring the forgotten back?

Representation audits found methods that only cut the link between features and classifier: the
identity is still linearly decodable. The attacker learns ``A`` [d, d] (started at the identity) and
a CosFace head on frozen embeddings of *retain* identities only,

    min_{A, W} L_cos(normalise(z A), y; W)        over retain images (z frozen),

then re-ranks the forget queries by cos(z_q A, z_g A). A forget mAP through ``A`` far above the
unlearned model's own means the identities were hidden, not removed.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from faceunlearn.losses.cosface import cosface_loss


def fit_linear_probe(embeddings: torch.Tensor, labels: torch.Tensor, steps: int = 300, lr: float = 1e-2,
                     scale: float = 64.0, margin: float = 0.4, batch_size: int = 256, seed: int = 0) -> torch.Tensor:
    """The learned map ``A`` [d, d] (Adam, seeded minibatches); apply as ``embeddings @ A``."""
    generator = torch.Generator().manual_seed(seed)
    z = F.normalize(embeddings.detach().float().cpu(), dim=1)
    identities, y = torch.unique(labels.reshape(-1).cpu(), return_inverse=True)
    dim = z.shape[1]
    linear = torch.eye(dim).requires_grad_()
    head = (0.01 * torch.randn(len(identities), dim, generator=generator)).requires_grad_()
    optimiser = torch.optim.Adam([linear, head], lr=lr)
    for _ in range(steps):
        rows = torch.randint(0, len(z), (min(batch_size, len(z)),), generator=generator)
        cosine = F.normalize(z[rows] @ linear, dim=1) @ F.normalize(head, dim=1).T
        loss = cosface_loss(cosine, y[rows], scale, margin)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return linear.detach()
