"""CycleGAN: unpaired image-to-image translation with cycle consistency.

Paper: Zhu, Park, Isola, Efros, "Unpaired Image-to-Image Translation using Cycle-Consistent Adversarial
Networks", ICCV 2017, https://arxiv.org/abs/1703.10593. Official code:
https://github.com/junyanz/pytorch-CycleGAN-and-pix2pix (networks, losses, update order and schedules
reproduced; proven by the parity tests against fixtures of commit 2a7afba).

Faithful to the official implementation:

* ``generator_a2b`` is the paper's G (official ``netG_A``), ``generator_b2a`` is F (``netG_B``);
  ``discriminator_b`` judges domain B (official ``netD_A``, paper D_Y), ``discriminator_a`` judges A.
* One iteration updates both generators first (one Adam over both), then both discriminators (one
  Adam) on fakes from the pre-update generators, drawn through a 50-image history pool per domain.
* Identity loss: ``G_a2b(real_b) ~ real_b`` weighted by ``lambda_b * lambda_identity`` and
  ``G_b2a(real_a) ~ real_a`` by ``lambda_a * lambda_identity``; discriminator objective halved.
* Learning rate constant for ``n_epochs``, then linear decay over ``n_epochs_decay`` epochs.

Deliberate deviation: ``gan_mode="wgangp"`` adds a real gradient penalty (``lambda_gp``, 10 as in
Gulrajani et al.); the official code applies none, which is an unconstrained WGAN. Set
``lambda_gp=0`` to reproduce it.

Config: ``configs/cyclegan.yaml`` (horse2zebra paper settings), ``configs/tiny/cyclegan.yaml``.
"""

from __future__ import annotations

import random
from itertools import chain
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

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
from zoo.nets.image_pool import ImagePool
from zoo.nets.init import InitType
from zoo.nets.norm import NormType
from zoo.nets.patch_discriminator import DiscriminatorType
from zoo.nets.resnet_generator import PaddingType
from zoo.registry import PretrainedEntry, register_method, register_pretrained
from zoo.schedules import LRPolicy, StepAt

__all__ = ["CycleGAN", "ImagePool"]  # ImagePool: re-exported from zoo.nets.image_pool


# --------------------------------------------------------------------------------------------------------------------
# The method
# --------------------------------------------------------------------------------------------------------------------

_OFFICIAL_OPTIONS = {
    **OFFICIAL_PIX2PIX_OPTIONS, "lambda_A": "lambda_a", "lambda_B": "lambda_b", "lambda_identity": "lambda_identity",
    "pool_size": "pool_size",
}


@register_method("cyclegan")
class CycleGAN(TranslationMethod):
    """CycleGAN (Zhu et al., ICCV 2017) with the official networks, objective and schedule.

    Args:
        input_nc: channels of domain A images.
        output_nc: channels of domain B images.
        ngf: generator base width.
        ndf: discriminator base width.
        generator: ``resnet_9blocks`` (256² training, paper appendix), ``resnet_6blocks`` (128²), any
            ``resnet_<N>blocks`` or ``unet_<2**k>``.
        discriminator: ``basic`` (70x70 PatchGAN), ``n_layers`` (``n_layers_d`` layers) or ``pixel``.
        n_layers_d: depth of the ``n_layers`` discriminator.
        norm: ``instance`` (paper), ``batch``, ``syncbatch`` or ``none``.
        use_dropout: dropout in the generators' residual blocks (off for CycleGAN).
        padding_type: padding inside residual blocks: ``reflect``, ``replicate`` or ``zero``.
        init_type: weight initialisation: ``normal`` N(0, 0.02) in the paper, ``xavier``, ``kaiming``, ``orthogonal``.
        init_gain: scale of the initialisation.
        gan_mode: ``lsgan`` (paper Sec. 4), ``vanilla`` or ``wgangp``.
        lambda_a: weight of the cycle loss A -> B -> A (paper lambda = 10, Eq. 3).
        lambda_b: weight of the cycle loss B -> A -> B.
        lambda_identity: identity loss weight relative to the cycle weights (0.5 for painting <-> photo, appendix 7.1).
        lambda_gp: gradient-penalty weight, used only with ``gan_mode="wgangp"`` (0 reproduces the official code).
        pool_size: size of each image history pool (50 in the paper).
        lr: Adam learning rate (2e-4).
        beta1: Adam beta1 (0.5).
        beta2: Adam beta2 (0.999).
        lr_policy: ``linear`` (paper), ``step``, ``plateau`` or ``cosine``; all count epochs.
        n_epochs: epochs at the initial learning rate (100).
        n_epochs_decay: epochs of linear decay to zero (100).
        epoch_count: starting epoch number of the schedule (1; raise it to re-enter a schedule).
        lr_decay_iters: epochs between x0.1 steps for ``lr_policy="step"``.
        lr_step_at: ``epoch_end`` (current official loop) or ``epoch_start`` (loop the published models used).
        diff_augment: DiffAugment policy for the discriminators' inputs, e.g. ``color,translation,cutout``, for
            small datasets (``None``: off; zoo addition, see ``TranslationMethod.use_diff_augment``).
        ema_decay: keep an exponential moving average of the generators with this decay (``None``: off);
            ``translate`` then uses the averaged weights.
        inference_mode: mode of the generators in ``translate``: ``eval`` or ``train`` (official test.py default;
            identical for the paper's instance-norm, dropout-free generators).
        seed: seed of the image-pool random source.
        channels_last: train in the channels-last memory format (same math): ``true``, ``false`` or ``"auto"``
            (default: channels-last on CUDA and on CPUs with AVX-512, NCHW on other CPUs).
        compile: compile the networks with ``torch.compile`` (``true``, or a mapping with ``mode``, ``dynamic``,
            ``fullgraph``, ``backend``; see :mod:`zoo.compile`). Models loaded from files start eager.
    """

    optimizer_steps_per_iteration = 2
    directions = ("a2b", "b2a")
    PAPER_METRICS = ("fid", "kid", "miou")  # FCN-score on Cityscapes; FID/KID as later papers report it
    GENERATORS = {"a2b": "generator_a2b", "b2a": "generator_b2a"}
    IMAGE_DISCRIMINATORS = ("discriminator_a", "discriminator_b")
    OFFICIAL_NETWORKS = {"G_A": "generator_a2b", "G_B": "generator_b2a", "D_A": "discriminator_b",
                         "D_B": "discriminator_a"}
    #: zoo loss name -> official ``loss_<name>`` attribute (the official values are already weighted).
    OFFICIAL_LOSS_NAMES = {"gan_a2b": "G_A", "gan_b2a": "G_B", "cycle_a": "cycle_A", "cycle_b": "cycle_B",
                           "idt_a2b": "idt_A", "idt_b2a": "idt_B", "g_total": "G", "d_b": "D_A", "d_a": "D_B"}
    OFFICIAL_IMAGE_NAMES = {"fake_b": "fake_B", "fake_a": "fake_A", "rec_a": "rec_A", "rec_b": "rec_B",
                            "idt_a2b": "idt_A", "idt_b2a": "idt_B"}

    def __init__(
        self,
        *,
        input_nc: int = 3,
        output_nc: int = 3,
        ngf: int = 64,
        ndf: int = 64,
        generator: str = "resnet_9blocks",
        discriminator: DiscriminatorType = "basic",
        n_layers_d: int = 3,
        norm: NormType = "instance",
        use_dropout: bool = False,
        padding_type: PaddingType = "reflect",
        init_type: InitType = "normal",
        init_gain: float = 0.02,
        gan_mode: GANMode = "lsgan",
        lambda_a: float = 10.0,
        lambda_b: float = 10.0,
        lambda_identity: float = 0.5,
        lambda_gp: float = 10.0,
        pool_size: int = 50,
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
        inference_mode: Literal["eval", "train"] = "eval",
        seed: int = 0,
        channels_last: ChannelsLast = "auto",
        compile: CompileSetting = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if lambda_identity > 0 and input_nc != output_nc:
            raise ValueError(f"the identity loss needs input_nc == output_nc (got {input_nc} and {output_nc}); "
                             "set lambda_identity=0 for domains with different channel counts")
        g_args = dict(ngf=ngf, netG=generator, norm=norm, use_dropout=use_dropout, padding_type=padding_type,
                      init_type=init_type, init_gain=init_gain)
        d_args = dict(ndf=ndf, netD=discriminator, n_layers_D=n_layers_d, norm=norm, init_type=init_type,
                      init_gain=init_gain)
        self.generator_a2b = build_generator(input_nc=input_nc, output_nc=output_nc, **g_args)
        self.generator_b2a = build_generator(input_nc=output_nc, output_nc=input_nc, **g_args)
        self.discriminator_b = build_discriminator(input_nc=output_nc, **d_args)
        self.discriminator_a = build_discriminator(input_nc=input_nc, **d_args)
        rng = random.Random(seed)
        self.pool_fake_b = ImagePool(pool_size, rng)  # feeds discriminator_b
        self.pool_fake_a = ImagePool(pool_size, rng)
        self.build_ema(ema_decay)
        self.use_diff_augment(diff_augment)
        self.use_compile(compile)

    # ---------------------------------------------------------------- training

    @property
    def loss_weights(self) -> dict[str, float]:
        h = self.hparams
        return {"gan_a2b": 1.0, "gan_b2a": 1.0, "cycle_a": h.lambda_a, "cycle_b": h.lambda_b,
                "idt_a2b": h.lambda_b * h.lambda_identity, "idt_b2a": h.lambda_a * h.lambda_identity,
                "d_b": 0.5, "d_a": 0.5, "gp_b": h.lambda_gp, "gp_a": h.lambda_gp}

    @property
    def _per_sample_norm(self) -> bool:
        """Whether every network treats batch elements independently (instance/no norm).

        Then calls of the same network are fused into one larger batch, which is numerically the same computation
        but faster; with batch statistics the official one-call-per-image order is kept, because each call moves
        the BatchNorm running buffers.
        """
        return self.hparams.norm in ("instance", "none")

    def generator_losses(self, real_a: Tensor, real_b: Tensor) -> StepOutput:
        """Unweighted generator terms; the images of the official ``forward()`` plus the identity images."""
        h = self.hparams
        identity = h.lambda_identity > 0
        images: dict[str, Tensor] = {}
        if self._per_sample_norm and identity:
            images["fake_b"], images["idt_a2b"] = self.generator_a2b(torch.cat([real_a, real_b])).split(
                [real_a.shape[0], real_b.shape[0]])
            images["fake_a"], images["idt_b2a"] = self.generator_b2a(torch.cat([real_b, real_a])).split(
                [real_b.shape[0], real_a.shape[0]])
            images["rec_a"] = self.generator_b2a(images["fake_b"])
            images["rec_b"] = self.generator_a2b(images["fake_a"])
        else:  # the official call order
            images["fake_b"] = self.generator_a2b(real_a)
            images["rec_a"] = self.generator_b2a(images["fake_b"])
            images["fake_a"] = self.generator_b2a(real_b)
            images["rec_b"] = self.generator_a2b(images["fake_a"])
            if identity:
                images["idt_a2b"] = self.generator_a2b(real_b)
                images["idt_b2a"] = self.generator_b2a(real_a)
        terms: dict[str, Tensor] = {}
        if identity:
            terms["idt_a2b"] = F.l1_loss(images["idt_a2b"].float(), real_b.float())
            terms["idt_b2a"] = F.l1_loss(images["idt_b2a"].float(), real_a.float())
        terms["gan_a2b"] = gan_loss(self.discriminator_b(images["fake_b"]), True, h.gan_mode)
        terms["gan_b2a"] = gan_loss(self.discriminator_a(images["fake_a"]), True, h.gan_mode)
        terms["cycle_a"] = F.l1_loss(images["rec_a"].float(), real_a.float())
        terms["cycle_b"] = F.l1_loss(images["rec_b"].float(), real_b.float())
        return StepOutput(terms, images)

    def _real_fake_loss(self, discriminator: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        mode = self.hparams.gan_mode
        if self._per_sample_norm:
            pred_real, pred_fake = discriminator(torch.cat([real, fake])).split([real.shape[0], fake.shape[0]])
        else:
            pred_real, pred_fake = discriminator(real), discriminator(fake)
        return gan_loss(pred_real, True, mode) + gan_loss(pred_fake, False, mode)

    def discriminator_losses(self, real_a: Tensor, real_b: Tensor, fake_a: Tensor, fake_b: Tensor) -> dict[str, Tensor]:
        """Unweighted discriminator terms (real + fake); ``fake_*`` are taken through the image pools."""
        h = self.hparams
        pooled_b = self.pool_fake_b.query(fake_b).detach()
        pooled_a = self.pool_fake_a.query(fake_a).detach()
        terms = {"d_b": self._real_fake_loss(self.discriminator_b, real_b, pooled_b),
                 "d_a": self._real_fake_loss(self.discriminator_a, real_a, pooled_a)}
        if h.gan_mode == "wgangp" and h.lambda_gp > 0:
            terms["gp_b"] = gradient_penalty(self.discriminator_b, real_b, pooled_b)
            terms["gp_a"] = gradient_penalty(self.discriminator_a, real_a, pooled_a)
        return terms

    def optimization_step(self, real_a: Tensor, real_b: Tensor, opt_g: Any, opt_d: Any) -> StepOutput:
        """One official iteration: generators (both, one optimizer), then discriminators.

        Works with plain ``torch.optim`` optimizers (no Trainer) and with Lightning's wrapped ones.

        Args:
            real_a: (B, input_nc, H, W) in [-1, 1].
            real_b: (B, output_nc, H, W) in [-1, 1].
            opt_g: optimizer over both generators.
            opt_d: optimizer over both discriminators.

        Returns:
            Weighted loss terms (``g_total`` is their generator sum) and the generated images.
        """
        weights = self.loss_weights
        iteration, epoch = iteration_index(self)
        discriminators = (self.discriminator_b, self.discriminator_a)

        set_requires_grad(discriminators, False)
        opt_g.zero_grad()
        out = self.generator_losses(real_a, real_b)
        g_losses = {k: weights[k] * v for k, v in out.losses.items()}
        g_losses["g_total"] = sum(g_losses.values())
        check_finite(g_losses, iteration=iteration, epoch=epoch)
        backward(self, g_losses["g_total"], opt_g)
        opt_g.step()
        self.update_ema()

        set_requires_grad(discriminators, True)
        opt_d.zero_grad()
        d_terms = self.discriminator_losses(real_a, real_b, out.images["fake_a"], out.images["fake_b"])
        d_losses = {k: weights[k] * v for k, v in d_terms.items()}
        check_finite(d_losses, iteration=iteration, epoch=epoch)
        backward(self, sum(d_losses.values()), opt_d)
        opt_d.step()
        return StepOutput({**g_losses, **d_losses}, out.images)

    @property
    def eager_networks(self) -> tuple[str, ...]:
        """Both discriminators when ``gan_mode="wgangp"`` adds their gradient penalties."""
        if self.hparams.gan_mode == "wgangp" and self.hparams.lambda_gp > 0:
            return ("discriminator_a", "discriminator_b")
        return ()

    def configure_optimizers(self):
        h = self.hparams
        betas = (h.beta1, h.beta2)
        opt_g = adam(chain(self.generator_a2b.parameters(), self.generator_b2a.parameters()), lr=h.lr, betas=betas)
        opt_d = adam(chain(self.discriminator_b.parameters(), self.discriminator_a.parameters()), lr=h.lr, betas=betas)
        return [opt_g, opt_d], build_official_schedulers((opt_g, opt_d), h)

    def save_resume_state(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["image_pools"] = {"fake_b": self.pool_fake_b.state_dict(), "fake_a": self.pool_fake_a.state_dict()}

    def load_resume_state(self, checkpoint: dict[str, Any]) -> None:
        pools = checkpoint.get("image_pools")
        if pools:
            self.pool_fake_b.load_state_dict(pools["fake_b"], self.device)
            self.pool_fake_a.load_state_dict(pools["fake_a"], self.device)

    def validation_metrics(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Cycle-consistency L1 of both domains (model space) with the live generators."""
        real_a, real_b = batch["real_a"], batch["real_b"]
        rec_a = self.generator_b2a(self.generator_a2b(real_a))
        rec_b = self.generator_a2b(self.generator_b2a(real_b))
        return {"cycle_a": F.l1_loss(rec_a.float(), real_a.float()),
                "cycle_b": F.l1_loss(rec_b.float(), real_b.float())}

    # ---------------------------------------------------------------- official checkpoints

    @classmethod
    def init_args_from_official(cls, opt: dict, networks: dict[str, dict] | None = None) -> dict[str, Any]:
        """zoo constructor arguments from official options (``opt``) and per-network ``define_G/D`` arguments."""
        return official_options_init_args(opt, _OFFICIAL_OPTIONS, networks, generator="G_A", discriminator="D_A")


# --------------------------------------------------------------------------------------------------------------------
# Published official generators (one direction per file): resnet_9blocks, ngf 64, instance norm, no dropout
# --------------------------------------------------------------------------------------------------------------------

_CYCLEGAN_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/{}.pth"
_CYCLEGAN_PUBLISHED = (
    "apple2orange", "orange2apple", "summer2winter_yosemite", "winter2summer_yosemite", "horse2zebra", "zebra2horse",
    "monet2photo", "style_monet", "style_cezanne", "style_ukiyoe", "style_vangogh", "sat2map", "map2sat",
    "cityscapes_photo2label", "cityscapes_label2photo", "facades_photo2label", "facades_label2photo",
    "iphone2dslr_flower",
)
for _name in _CYCLEGAN_PUBLISHED:
    register_pretrained(f"cyclegan.{_name}", PretrainedEntry(
        method="cyclegan",
        init_args={"generator": "resnet_9blocks", "ngf": 64, "norm": "instance", "use_dropout": False},
        url=_CYCLEGAN_URL.format(_name),
        sha256=None,  # not published; pinned on first download (see zoo.hub)
        filename=f"cyclegan_{_name}.pth",
        format="official",
        official_net="G_A",
        direction="a2b",
        origin="https://github.com/junyanz/pytorch-CycleGAN-and-pix2pix (scripts/download_cyclegan_model.sh)",
        notes=f"Official generator for {_name}; only the a2b direction is contained in the file.",
    ))
