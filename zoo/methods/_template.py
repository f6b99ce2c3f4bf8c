"""Copy-me skeleton of a zoo method (not registered; ``tests/methods/test_template.py`` keeps it working).

A new method is this file under a new name + its networks in ``zoo/nets/`` + ``configs/<name>.yaml`` +
``configs/tiny/<name>.yaml`` + ``tests/methods/test_<name>.py`` + one import line in ``zoo/methods/__init__.py``
+ a CHANGELOG line. The shared tests (``tests/methods/test_common.py``, ``test_training_modes.py``) then run it
automatically. ``CONTRIBUTING.md`` walks through the recipe.

Replace this docstring with: the paper (title, venue, arXiv link), the official repository and commit the parity
fixtures came from, what is faithful, every deliberate deviation, and the config file.

The example below is a minimal paired translator (ResNet generator, PatchGAN, LSGAN + L1). It subclasses
:class:`zoo.methods.base.TranslationMethod`, whose docstring is the full contract, and keeps only what is its own:

* ``__init__`` is keyword-only and typed; ``save_hyperparameters()`` records it for checkpoints and bundles; the
  networks are built, then ``build_ema(ema_decay)`` adds the optional averaged generator.
* ``GENERATORS`` names the network of each direction, and the ``input_nc``/``output_nc`` hyperparameters give the
  channels of both domains (other names go in ``DOMAIN_CHANNELS``). From them the base class derives ``forward``
  (model space, [-1, 1]), ``translate`` (the public [0, 1] API the CLI, callbacks and notebooks use),
  ``generator_for``, ``predict_step`` and validation.
* ``optimization_step`` does one official iteration with plain or Lightning optimizers, so parity tests can call it
  without a Trainer; the base ``training_step`` feeds it the batch and the optimizers, steps the schedulers and logs
  the losses it returns.
* Loss terms are unweighted in ``*_losses`` and weighted in one place (``loss_weights``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from zoo.compile import CompileSetting
from zoo.losses import GANMode, check_finite, gan_loss
from zoo.methods._common import StepOutput, adam, backward, iteration_index, set_requires_grad
from zoo.methods.base import ChannelsLast, TranslationMethod
from zoo.nets import build_discriminator, build_generator

__all__ = ["TemplateTranslator"]


# @register_method("template")   <- uncomment (with a real name) to register the method
class TemplateTranslator(TranslationMethod):
    """One-line summary (Author et al., venue year).

    Args:
        input_nc: channels of the input images.
        output_nc: channels of the output images.
        ngf: generator base width.
        ndf: discriminator base width.
        generator: generator architecture name (see :func:`zoo.nets.build_generator`).
        gan_mode: adversarial loss.
        lambda_l1: weight of the L1 term (cite the paper section that sets it).
        lr: Adam learning rate.
        beta1: Adam beta1.
        ema_decay: keep an exponential moving average of the generator with this decay (``None``: off);
            ``translate`` then uses the averaged weights.
        diff_augment: DiffAugment policy for the discriminator's inputs (``None``: off); keep this argument in every
            GAN method (see ``TranslationMethod.use_diff_augment``).
        channels_last: train in the channels-last memory format (faster convolutions; same math).
        compile: compile the networks with ``torch.compile`` (see :mod:`zoo.compile`).
    """

    optimizer_steps_per_iteration = 2
    directions = ("a2b",)
    GENERATORS = {"a2b": "generator"}
    IMAGE_DISCRIMINATORS = ("discriminator",)
    PAPER_METRICS = ("fid", "kid")  # what `zoo evaluate` computes by default: the metrics the paper reports
    OFFICIAL_NETWORKS = {"G": "generator", "D": "discriminator"}

    def __init__(self, *, input_nc: int = 3, output_nc: int = 3, ngf: int = 64, ndf: int = 64,
                 generator: str = "resnet_6blocks", gan_mode: GANMode = "lsgan", lambda_l1: float = 10.0,
                 lr: float = 2e-4, beta1: float = 0.5, ema_decay: float | None = None,
                 diff_augment: str | None = None, channels_last: ChannelsLast = False,
                 compile: CompileSetting = False) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.generator = build_generator(input_nc=input_nc, output_nc=output_nc, ngf=ngf, netG=generator,
                                         norm="instance")
        self.discriminator = build_discriminator(input_nc=output_nc, ndf=ndf, norm="instance")
        self.build_ema(ema_decay)
        self.use_diff_augment(diff_augment)
        self.use_compile(compile)

    @property
    def official_norm(self) -> str:
        """The official networks use instance norm: running statistics some official files carry are dropped."""
        return "instance"

    # ---------------------------------------------------------------- training

    @property
    def loss_weights(self) -> dict[str, float]:
        return {"d_real": 0.5, "d_fake": 0.5, "g_gan": 1.0, "g_l1": self.hparams.lambda_l1}

    def discriminator_losses(self, real_b: Tensor, fake_b: Tensor) -> dict[str, Tensor]:
        """Unweighted D terms on (B, output_nc, H, W) images in [-1, 1]; ``fake_b`` is detached."""
        mode = self.hparams.gan_mode
        return {"d_real": gan_loss(self.discriminator(real_b), True, mode),
                "d_fake": gan_loss(self.discriminator(fake_b.detach()), False, mode)}

    def generator_losses(self, real_b: Tensor, fake_b: Tensor) -> dict[str, Tensor]:
        """Unweighted G terms against the current D."""
        return {"g_gan": gan_loss(self.discriminator(fake_b), True, self.hparams.gan_mode),
                "g_l1": F.l1_loss(fake_b.float(), real_b.float())}

    def optimization_step(self, real_a: Tensor, real_b: Tensor, opt_g: Any, opt_d: Any) -> StepOutput:
        """One iteration: D, then G.

        Args:
            real_a: (B, input_nc, H, W) in [-1, 1].
            real_b: (B, output_nc, H, W) in [-1, 1], aligned with ``real_a``.
            opt_g: generator optimizer (plain or Lightning-wrapped).
            opt_d: discriminator optimizer.

        Returns:
            Weighted loss terms and ``fake_b`` (B, output_nc, H, W) in [-1, 1].
        """
        weights, (iteration, epoch) = self.loss_weights, iteration_index(self)
        fake_b = self.generator(real_a)

        opt_d.zero_grad()
        d_losses = {k: weights[k] * v for k, v in self.discriminator_losses(real_b, fake_b).items()}
        check_finite(d_losses, iteration=iteration, epoch=epoch)
        backward(self, sum(d_losses.values()), opt_d)
        opt_d.step()

        set_requires_grad([self.discriminator], False)
        opt_g.zero_grad()
        g_losses = {k: weights[k] * v for k, v in self.generator_losses(real_b, fake_b).items()}
        check_finite(g_losses, iteration=iteration, epoch=epoch)
        backward(self, sum(g_losses.values()), opt_g)
        opt_g.step()
        set_requires_grad([self.discriminator], True)
        self.update_ema()
        return StepOutput({**d_losses, **g_losses}, {"fake_b": fake_b})

    def configure_optimizers(self) -> tuple[list[torch.optim.Optimizer], list]:
        h = self.hparams
        return [adam(self.generator.parameters(), lr=h.lr, betas=(h.beta1, 0.999)),
                adam(self.discriminator.parameters(), lr=h.lr, betas=(h.beta1, 0.999))], []

    # ---------------------------------------------------------------- official checkpoints

    @classmethod
    def init_args_from_official(cls, options: dict[str, Any]) -> dict[str, Any]:
        """zoo constructor arguments from the official training options (rename what differs)."""
        names = {"input_nc": "input_nc", "output_nc": "output_nc", "ngf": "ngf", "ndf": "ndf", "lr": "lr"}
        return {ours: options[official] for official, ours in names.items() if official in options}
