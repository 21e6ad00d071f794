"""Random Labeling (SPEC §3, Eq. 7): relabel forget samples with classes drawn uniformly over ``Y``.

The loss itself is the CosFace loss on the random labels,
``L_RL = cosface_loss(cosine_f, random_labels(B, C)) + λ·cosface_loss(cosine_r, y_r)``;
only the label draw lives here. The true label is NOT excluded: ``ỹ ~ U(Y)``, so
``P(ỹ = y) = 1/|Y|``.
"""

import torch


def random_labels(
    num_samples: int,
    num_classes: int,
    generator: torch.Generator | None = None,
    device=None,
) -> torch.LongTensor:
    """``ỹ_i ~ U{0, …, C−1}`` i.i.d. for ``i < num_samples`` (true label included), dtype long.

    ``generator`` (if given) must live on ``device``; a seeded generator makes the draw reproducible.
    """
    if num_classes < 1:
        raise ValueError(f"random_labels needs at least one class, got {num_classes}")
    return torch.randint(0, num_classes, (num_samples,), generator=generator, device=device, dtype=torch.long)
