"""Retrain: the Original's recipe without D_f — the reference every unlearning method is measured against."""

from faceunlearn.methods.finetune import FineTune


class Retrain(FineTune):
    """Minimise ``L_cos`` over the training images of the *retain* identities only (the ``retrain``
    stream: every image of the forget identities left out, D_f^test included), with FineTune's
    schedule and settings.

    What it means per protocol: on the synthetic demo the Original is trained from scratch, so
    Retrain (``faceunlearn retrain --config configs/demo_finetune.yaml --data.seed K``) is the ideal
    model that never saw forget set K. On a real protocol the Original is a pretrained network
    fine-tuned on the protocol's identities, and Retrain fine-tunes the same pretrained start on D_r
    only: it falls short of the ideal wherever pretraining already saw the forget identities
    (Glint360K may hold CelebA's celebrities), so Retrain there is "not fine-tuned on D_f", not "never saw D_f".
    Where the Original is a pretrained network used as it is (the real-faces protocol: SFace, no
    fine-tune), its recipe without D_f is the same network: Retrain *is* the Original there, and the
    audit's reference is the Original (``sweep --audit`` without ``--retrain``).
    The forget identities' CosFace head rows receive no gradient (they keep their start values).
    """

    loss_streams = ("retrain",)

    def loss_terms(self, batch):
        return {"cosface": self.cosface(batch["retrain"])}
