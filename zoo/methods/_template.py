"""Copy-me skeleton of a zoo method (not registered; ``tests/methods/test_template.py`` keeps it working).

A new method is this file under a new name + ``configs/<name>.yaml`` + ``configs/tiny/<name>.yaml`` +
``tests/methods/test_<name>.py`` + one import line in ``zoo/methods/__init__.py`` + a CHANGELOG line.
The shared tests (``tests/methods/test_common.py``, ``test_training_modes.py``) then run it automatically.

Replace this docstring with: the paper (title, venue, arXiv link), the official repository and commit the parity
fixtures came from, what is faithful, every deliberate deviation, and the config file.

The example below is a minimal paired translator (ResNet generator, PatchGAN, LSGAN + L1) that shows the contract:

* ``__init__`` is keyword-only and typed; ``save_hyperparameters()`` records it for checkpoints and bundles.
* ``forward`` is inference in model space ([-1, 1]); ``translate`` is the public [0, 1] API the CLI, callbacks and
  notebooks use.
* ``optimization_step`` does one official iteration with plain or Lightning optimizers, so parity tests can call it
  without a Trainer; ``training_step`` only fetches the optimizers and logs.
* Loss terms are unweighted in ``*_losses`` and weighted in one place (``loss_weights``).
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.losses import GANMode, check_finite, gan_loss
from zoo.methods._common import (
    StepOutput,
    adam,
    backward,
    check_images,
    iteration_index,
    predict_outputs,
    random_unpaired_inputs,
    run_generator,
    set_requires_grad,
)
from zoo.nets import build_discriminator, build_generator, generator_size_multiple

__all__ = ["TemplateTranslator"]


# @register_method("template")   <- uncomment (with a real name) to register the method
class TemplateTranslator(L.LightningModule):
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
    """

    optimizer_steps_per_iteration = 2
    scale = 1
    requires_exemplar = False
    directions = ("a2b",)

    def __init__(self, *, input_nc: int = 3, output_nc: int = 3, ngf: int = 64, ndf: int = 64,
                 generator: str = "resnet_6blocks", gan_mode: GANMode = "lsgan", lambda_l1: float = 10.0,
                 lr: float = 2e-4, beta1: float = 0.5) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.generator = build_generator(input_nc=input_nc, output_nc=output_nc, ngf=ngf, netG=generator,
                                         norm="instance")
        self.discriminator = build_discriminator(input_nc=output_nc, ndf=ndf, norm="instance")
        self.size_multiple = generator_size_multiple(generator)

    # ---------------------------------------------------------------- inference

    def input_channels(self, direction: str = "a2b") -> int:
        return self.hparams.input_nc

    def output_channels(self, direction: str = "a2b") -> int:
        return self.hparams.output_nc

    def example_inputs(self, batch_size: int, size: int | tuple[int, int], *,
                       generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """Random ``(real_a, real_b)`` in [-1, 1] for :meth:`optimization_step` (tests, benchmarks)."""
        return random_unpaired_inputs(self, batch_size, size, generator=generator)

    def forward(self, x: Tensor) -> Tensor:
        """(B, input_nc, H, W) in [-1, 1] -> (B, output_nc, H, W) in [-1, 1]."""
        return self.generator(x)

    def translate(self, images: Tensor, *, direction: str = "a2b", seed: int | None = None) -> Tensor:
        """(B, input_nc, H, W) in [0, 1] -> (B, output_nc, H, W) in [0, 1]."""
        check_images(images, self.input_channels(direction), self.size_multiple)
        return run_generator(self.generator, images, train_mode=False, seed=seed)

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Tensor]:
        """``{"fake_b": (B, C, H, W)}`` in [0, 1] from a predict batch's ``real_a`` (B, C, H, W) in [-1, 1]."""
        return predict_outputs(self, batch)

    # ---------------------------------------------------------------- training

    @property
    def loss_weights(self) -> dict[str, float]:
        return {"d_real": 0.5, "d_fake": 0.5, "g_gan": 1.0, "g_l1": self.hparams.lambda_l1}

    def discriminator_losses(self, real_b: Tensor, fake_b: Tensor) -> dict[str, Tensor]:
        mode = self.hparams.gan_mode
        return {"d_real": gan_loss(self.discriminator(real_b), True, mode),
                "d_fake": gan_loss(self.discriminator(fake_b.detach()), False, mode)}

    def generator_losses(self, real_b: Tensor, fake_b: Tensor) -> dict[str, Tensor]:
        return {"g_gan": gan_loss(self.discriminator(fake_b), True, self.hparams.gan_mode),
                "g_l1": F.l1_loss(fake_b.float(), real_b.float())}

    def optimization_step(self, real_a: Tensor, real_b: Tensor, opt_g: Any, opt_d: Any) -> StepOutput:
        """One iteration: D, then G. Inputs (B, C, H, W) in [-1, 1]; returns weighted losses and images."""
        weights, (iteration, epoch) = self.loss_weights, iteration_index(self)
        fake_b = self.generator(real_a)

        opt_d.zero_grad()
        d_losses = {k: weights[k] * v for k, v in self.discriminator_losses(real_b, fake_b).items()}
        check_finite(d_losses, iteration=iteration, epoch=epoch)
        backward(self, sum(d_losses.values()))
        opt_d.step()

        set_requires_grad([self.discriminator], False)
        opt_g.zero_grad()
        g_losses = {k: weights[k] * v for k, v in self.generator_losses(real_b, fake_b).items()}
        check_finite(g_losses, iteration=iteration, epoch=epoch)
        backward(self, sum(g_losses.values()))
        opt_g.step()
        set_requires_grad([self.discriminator], True)
        return StepOutput({**d_losses, **g_losses}, {"fake_b": fake_b})

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        out = self.optimization_step(batch["real_a"], batch["real_b"], opt_g, opt_d)
        self.log_dict({f"train/{k}": v.detach() for k, v in out.losses.items()}, batch_size=batch["real_a"].shape[0])

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        fake_b = self.generator(batch["real_a"])
        self.log("val/l1", F.l1_loss(fake_b.float(), batch["real_b"].float()), batch_size=fake_b.shape[0])

    def configure_optimizers(self) -> tuple[list[torch.optim.Optimizer], list]:
        h = self.hparams
        return [adam(self.generator.parameters(), lr=h.lr, betas=(h.beta1, 0.999)),
                adam(self.discriminator.parameters(), lr=h.lr, betas=(h.beta1, 0.999))], []

    # ---------------------------------------------------------------- official checkpoints

    OFFICIAL_NETWORKS: dict[str, str] = {"G": "generator", "D": "discriminator"}

    def load_official_weights(self, state_dict: dict[str, Tensor], *, net: str = "G") -> None:
        """Map the official key layout onto this module (here it is the same) and load strictly."""
        module: nn.Module = getattr(self, self.OFFICIAL_NETWORKS[net])
        module.load_state_dict(state_dict, strict=True)
