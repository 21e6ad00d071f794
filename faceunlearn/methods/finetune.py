"""Training the Original model: CosFace on every training identity (paper §5.5)."""

from faceunlearn.methods.base import FaceModule


class FineTune(FaceModule):
    """Minimise ``L_cos`` over all training images (D_f and D_r): the model that is later unlearned.

    Defaults follow the paper's fine-tune: SGD, momentum 0.9, linear lr decay; BatchNorm statistics
    are trained as usual.
    """

    loss_streams = ("train",)

    def __init__(self, *args, lr_schedule: str = "linear", freeze_bn_stats: bool = False, **kwargs):
        super().__init__(*args, lr_schedule=lr_schedule, freeze_bn_stats=freeze_bn_stats, **kwargs)

    def loss_terms(self, batch):
        return {"cosface": self.cosface(batch["train"])}
