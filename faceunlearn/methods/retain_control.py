"""The D_r-only control: what fine-tuning on everyone else alone does to the network."""

import torch

from faceunlearn.methods.base import FaceModule


class RetainControl(FaceModule):
    """Minimise ``L_cos`` on retain batches (D_r) only, with an unlearning run's settings and steps.

    Where no Retrain exists (the real-faces protocol: Retrain would be the start network itself), this
    row tells what training alone does to the audit — to membership inference (the shadow attack is fit
    on retain identities, which this run trains on) and to relearning — so that a method's trace is
    read against it, not against an untouched network. No forget identity enters it: its images are
    never in a batch, and the forget identities' CosFace head rows (imprinted from D_f^train before the
    run) are zeroed at the start of fit, so the CosFace denominator carries no template of them.
    """

    loss_streams = ("retain",)

    def on_train_start(self) -> None:
        super().on_train_start()
        forget = torch.as_tensor(sorted(int(i) for i in self.training_images.forget_identity_ids), dtype=torch.long)
        with torch.no_grad():
            self.head.weight[forget.to(self.head.weight.device)] = 0.0

    def loss_terms(self, batch):
        return {"cosface": self.cosface(batch["retain"])}
