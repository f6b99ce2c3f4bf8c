"""pix2pix: paired image-to-image translation with a conditional GAN.

Paper: Isola, Zhu, Zhou, Efros, "Image-to-Image Translation with Conditional Adversarial Networks", CVPR 2017,
https://arxiv.org/abs/1611.07004. Official code: https://github.com/junyanz/pytorch-CycleGAN-and-pix2pix
(networks, losses, update order and schedules reproduced; proven by the parity tests against fixtures of
commit 2a7afba).

Faithful to the official implementation:

* U-Net 256 generator with BatchNorm and dropout (the paper's only noise source), conditional 70x70
  PatchGAN fed ``cat([a, b])`` with ``a`` first, vanilla (non-saturating) GAN loss on logits, L1 weight 100.
* One iteration updates D first (fake pair first, then real; objective halved), then G against the
  just-updated D.
* Inference runs the generator in **train mode** by default, as the paper prescribes and the official
  ``test.py`` does: dropout active and BatchNorm on the test batch's statistics (running buffers are not
  modified by zoo). ``inference_mode="eval"`` switches to the running statistics without dropout;
  ``translate(seed=...)`` makes the dropout noise reproducible.

Deliberate deviation: ``gan_mode="wgangp"`` adds a real gradient penalty (``lambda_gp``); the official
code applies none. Set ``lambda_gp=0`` to reproduce it.

Config: ``configs/pix2pix.yaml`` (facades paper settings), ``configs/tiny/pix2pix.yaml``.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from zoo.compile import CompileSetting
from zoo.losses import GANMode, check_finite, gan_loss, gradient_penalty
from zoo.methods._common import (
    OFFICIAL_PIX2PIX_OPTIONS,
    StepOutput,
    adam,
    backward,
    build_official_schedulers,
    iteration_index,
    official_options_init_args,
    set_requires_grad,
)
from zoo.methods.base import ChannelsLast, TranslationMethod
from zoo.nets import build_discriminator, build_generator
from zoo.nets.init import InitType
from zoo.nets.norm import NormType
from zoo.nets.patch_discriminator import DiscriminatorType
from zoo.nets.resnet_generator import PaddingType
from zoo.registry import PretrainedEntry, register_method, register_pretrained
from zoo.schedules import LRPolicy, StepAt

__all__ = ["Pix2Pix"]

_OFFICIAL_OPTIONS = {**OFFICIAL_PIX2PIX_OPTIONS, "lambda_L1": "lambda_l1"}


@register_method("pix2pix")
class Pix2Pix(TranslationMethod):
    """pix2pix (Isola et al., CVPR 2017) with the official networks, objective and schedule.

    Args:
        input_nc: channels of the input (A) images.
        output_nc: channels of the output (B) images.
        ngf: generator base width.
        ndf: discriminator base width.
        generator: ``unet_256`` (paper), ``unet_128``, any ``unet_<2**k>`` or ``resnet_<N>blocks``.
        discriminator: ``basic`` (70x70 PatchGAN, paper Table 3), ``n_layers`` or ``pixel`` (1x1 PixelGAN).
        n_layers_d: depth of the ``n_layers`` discriminator (1: 16x16 patches, 3: 70x70, 5: 286x286).
        norm: ``batch`` (paper), ``instance``, ``syncbatch`` or ``none``.
        use_dropout: dropout 0.5 in the generator (paper Sec. 3.1: the noise z is given as dropout).
        padding_type: padding inside residual blocks of ResNet generators.
        init_type: weight initialisation (``normal`` N(0, 0.02), paper Sec. 3.3).
        init_gain: scale of the initialisation.
        gan_mode: ``vanilla`` (paper), ``lsgan`` or ``wgangp``.
        lambda_l1: weight of the L1 term (paper Eq. 4, lambda = 100).
        lambda_gp: gradient-penalty weight, used only with ``gan_mode="wgangp"``.
        lr: Adam learning rate (2e-4, paper Sec. 3.3).
        beta1: Adam beta1 (0.5).
        beta2: Adam beta2 (0.999).
        lr_policy: ``linear``, ``step``, ``plateau`` or ``cosine``; all count epochs.
        n_epochs: epochs at the initial learning rate.
        n_epochs_decay: epochs of linear decay.
        epoch_count: starting epoch number of the schedule.
        lr_decay_iters: epochs between x0.1 steps for ``lr_policy="step"``.
        lr_step_at: ``epoch_end`` (current official loop) or ``epoch_start`` (loop the published models used).
        diff_augment: DiffAugment policy for the discriminators' inputs, e.g. ``color,translation,cutout``, for
            small datasets (``None``: off; zoo addition, see ``TranslationMethod.use_diff_augment``).
        ema_decay: keep an exponential moving average of the generator (``None``: off).
        inference_mode: ``train`` (paper and official test.py: dropout + test-batch statistics) or ``eval``.
        channels_last: train in the channels-last memory format (same math): ``true``, ``false`` or ``"auto"``
            (default: channels-last on CUDA and on CPUs with AVX-512, NCHW on other CPUs).
        compile: compile the networks with ``torch.compile`` (``true``, or a mapping with ``mode``, ``dynamic``,
            ``fullgraph``, ``backend``; see :mod:`zoo.compile`). Models loaded from files start eager.
    """

    optimizer_steps_per_iteration = 2
    directions = ("a2b",)
    PAPER_METRICS = ("fid", "kid", "lpips", "miou")  # FCN-score (mIoU) on Cityscapes labels->photo
    direction_hint = "train with data.direction=BtoA for the other way"
    IMAGE_DISCRIMINATORS = ("discriminator",)
    OFFICIAL_NETWORKS = {"G": "generator", "D": "discriminator"}
    OFFICIAL_LOSS_NAMES = {"g_gan": "G_GAN", "g_l1": "G_L1", "g_total": "G", "d_real": "D_real",
                           "d_fake": "D_fake", "d_total": "D"}
    OFFICIAL_IMAGE_NAMES = {"fake_b": "fake_B"}

    def __init__(
        self,
        *,
        input_nc: int = 3,
        output_nc: int = 3,
        ngf: int = 64,
        ndf: int = 64,
        generator: str = "unet_256",
        discriminator: DiscriminatorType = "basic",
        n_layers_d: int = 3,
        norm: NormType = "batch",
        use_dropout: bool = True,
        padding_type: PaddingType = "reflect",
        init_type: InitType = "normal",
        init_gain: float = 0.02,
        gan_mode: GANMode = "vanilla",
        lambda_l1: float = 100.0,
        lambda_gp: float = 10.0,
        lr: float = 2e-4,
        beta1: float = 0.5,
        beta2: float = 0.999,
        lr_policy: LRPolicy = "linear",
        n_epochs: int = 100,
        n_epochs_decay: int = 100,
        epoch_count: int = 1,
        lr_decay_iters: int = 50,
        lr_step_at: StepAt = "epoch_end",
        ema_decay: float | None = None,
        diff_augment: str | None = None,
        inference_mode: Literal["train", "eval"] = "train",
        channels_last: ChannelsLast = "auto",
        compile: CompileSetting = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.generator = build_generator(input_nc=input_nc, output_nc=output_nc, ngf=ngf, netG=generator, norm=norm,
                                         use_dropout=use_dropout, padding_type=padding_type, init_type=init_type,
                                         init_gain=init_gain)
        self.discriminator = build_discriminator(input_nc=input_nc + output_nc, ndf=ndf, netD=discriminator,
                                                 n_layers_D=n_layers_d, norm=norm, init_type=init_type,
                                                 init_gain=init_gain)
        self.build_ema(ema_decay)
        self.use_diff_augment(diff_augment)
        self.use_compile(compile)

    # ---------------------------------------------------------------- training

    @property
    def loss_weights(self) -> dict[str, float]:
        h = self.hparams
        return {"g_gan": 1.0, "g_l1": h.lambda_l1, "d_fake": 1.0, "d_real": 1.0, "gp": h.lambda_gp}

    def discriminator_losses(self, real_a: Tensor, real_b: Tensor, fake_b: Tensor) -> dict[str, Tensor]:
        """Unweighted D terms; the fake pair is judged first (the order moves BatchNorm buffers)."""
        h = self.hparams
        fake_pair = torch.cat([real_a, fake_b], 1).detach()
        real_pair = torch.cat([real_a, real_b], 1)
        terms = {"d_fake": gan_loss(self.discriminator(fake_pair), False, h.gan_mode),
                 "d_real": gan_loss(self.discriminator(real_pair), True, h.gan_mode)}
        if h.gan_mode == "wgangp" and h.lambda_gp > 0:
            terms["gp"] = gradient_penalty(self.discriminator, real_pair, fake_pair)
        return terms

    def generator_losses(self, real_a: Tensor, real_b: Tensor, fake_b: Tensor) -> dict[str, Tensor]:
        """Unweighted G terms against the current D."""
        return {"g_gan": gan_loss(self.discriminator(torch.cat([real_a, fake_b], 1)), True, self.hparams.gan_mode),
                "g_l1": F.l1_loss(fake_b.float(), real_b.float())}

    def optimization_step(self, real_a: Tensor, real_b: Tensor, opt_g: Any, opt_d: Any) -> StepOutput:
        """One official iteration: D (fake then real pair), then G against the updated D.

        Args:
            real_a: (B, input_nc, H, W) in [-1, 1].
            real_b: (B, output_nc, H, W) in [-1, 1].
            opt_g: generator optimizer.
            opt_d: discriminator optimizer.

        Returns:
            Weighted loss terms (``d_total`` = 0.5 (fake + real), ``g_total`` = gan + lambda_l1 * l1) and ``fake_b``.
        """
        weights = self.loss_weights
        iteration, epoch = iteration_index(self)
        fake_b = self.generator(real_a)

        set_requires_grad([self.discriminator], True)
        opt_d.zero_grad()
        d_losses = {k: weights[k] * v for k, v in self.discriminator_losses(real_a, real_b, fake_b).items()}
        # the discriminator objective is halved (paper Sec. 3.3): d_total = 0.5 (fake + real) + penalty
        d_losses["d_total"] = 0.5 * (d_losses["d_fake"] + d_losses["d_real"]) + d_losses.get("gp", 0.0)
        check_finite(d_losses, iteration=iteration, epoch=epoch)
        backward(self, d_losses["d_total"], opt_d)
        opt_d.step()

        set_requires_grad([self.discriminator], False)
        opt_g.zero_grad()
        g_losses = {k: weights[k] * v for k, v in self.generator_losses(real_a, real_b, fake_b).items()}
        g_losses["g_total"] = sum(g_losses.values())
        check_finite(g_losses, iteration=iteration, epoch=epoch)
        backward(self, g_losses["g_total"], opt_g)
        opt_g.step()
        set_requires_grad([self.discriminator], True)
        self.update_ema()
        return StepOutput({**d_losses, **g_losses}, {"fake_b": fake_b})

    @property
    def eager_networks(self) -> tuple[str, ...]:
        """The discriminator when ``gan_mode="wgangp"`` adds its gradient penalty."""
        return ("discriminator",) if self.hparams.gan_mode == "wgangp" and self.hparams.lambda_gp > 0 else ()

    def configure_optimizers(self):
        h = self.hparams
        opt_g = adam(self.generator.parameters(), lr=h.lr, betas=(h.beta1, h.beta2))
        opt_d = adam(self.discriminator.parameters(), lr=h.lr, betas=(h.beta1, h.beta2))
        return [opt_g, opt_d], build_official_schedulers((opt_g, opt_d), h)

    def validation_metrics(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """L1 (model space) between the live generator's output, in the module's current mode, and ``real_b``."""
        fake_b = self.generator(batch["real_a"])
        return {"l1": F.l1_loss(fake_b.float(), batch["real_b"].float())}

    # ---------------------------------------------------------------- official checkpoints

    @classmethod
    def init_args_from_official(cls, opt: dict, networks: dict[str, dict] | None = None) -> dict[str, Any]:
        """zoo constructor arguments from official options (``opt``) and per-network ``define_G/D`` arguments."""
        return official_options_init_args(opt, _OFFICIAL_OPTIONS, networks, generator="G", discriminator="D")


# --------------------------------------------------------------------------------------------------------------------
# Published official generators: unet_256, ngf 64, batch norm, dropout; official inference runs in train mode
# --------------------------------------------------------------------------------------------------------------------

_PIX2PIX_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/{}.pth"
for _name in ("edges2shoes", "sat2map", "map2sat", "facades_label2photo", "day2night"):
    register_pretrained(f"pix2pix.{_name}", PretrainedEntry(
        method="pix2pix",
        init_args={"generator": "unet_256", "ngf": 64, "norm": "batch", "use_dropout": True},
        url=_PIX2PIX_URL.format(_name),
        sha256=None,  # not published; pinned on first download (see zoo.hub)
        filename=f"pix2pix_{_name}.pth",
        format="official",
        official_net="G",
        direction="a2b",
        origin="https://github.com/junyanz/pytorch-CycleGAN-and-pix2pix (scripts/download_pix2pix_model.sh)",
        notes=("facades_label2photo maps labels to photos (trained with --direction BtoA on facades)."
               if _name == "facades_label2photo" else f"Official generator for {_name}."),
    ))
