"""Hard dispersion unlearning (paper Eq. 6): push each anchor from its closest same-identity embedding."""

from faceunlearn.losses import hard_dispersion_loss
from faceunlearn.methods.dispersion import Dispersion


class HardDispersion(Dispersion):
    """Minimise ``L_hard`` (SPEC §3): like Dispersion, but only the hardest positive of each anchor counts."""

    loss_function = staticmethod(hard_dispersion_loss)
