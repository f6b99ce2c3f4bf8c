"""DRIT and DRIT++: diverse unpaired image-to-image translation via disentangled content and attribute codes.

Papers: Lee, Tseng, Huang, Singh, Yang, "Diverse Image-to-Image Translation via Disentangled Representations",
ECCV 2018, https://arxiv.org/abs/1808.00948; Lee, Tseng, Mao, Huang, Lu, Singh, Yang, "DRIT++: Diverse Image-to-Image
Translation via Disentangled Representations", IJCV 2020, https://arxiv.org/abs/1905.01270 (mode-seeking
regularisation of Mao et al., CVPR 2019). Official code: https://github.com/HsinYingLee/DRIT (its master branch is
DRIT++; ``mode_seeking=False`` is its ``--no_ms``, the ECCV objective). Parity fixtures: commit f19f50a.

Faithful to the official implementation (proven by ``tests/parity/test_drit.py``):

* Networks, module names and initialisation (N(0, 0.02) on conv weights only) of ``src/networks.py``
  (:mod:`zoo.nets.drit`), with the base width ``ch`` (official: 64) as an argument; concat (``E_attr_concat`` +
  ``G_concat``) and feature-wise (``E_attr`` + ``G``) variants; multi-scale or single-scale domain discriminators,
  optional spectral norm; per-domain channel counts ``input_dim_a`` / ``input_dim_b``.
* Only the first image of each batch is translated; the rest only feeds ``dis_a2`` / ``dis_b2`` as real images
  (official ``half_size = 1``), so batches need at least two images (official: 2).
* Losses and weights: content adversarial (target 0.5 for the encoders, B content "real" for ``dis_content``),
  domain adversarial, cross-cycle and self-reconstruction L1 (x10), attribute KL summed over batch and dimensions
  (concat) or mean square (feature-wise) (x0.01), content-code mean square (x0.01), random-attribute adversarial,
  latent regression (x10), mode seeking ``1 / (lz + 1e-5)`` (DRIT++). BCE on sigmoid outputs as officially.
* Schedule: on a batch ``it`` of an epoch with ``(it + 1) % d_iter != 0`` and ``it < batches - 2`` only the content
  discriminator is updated (lr / 2.5, gradient norm clipped to 5); otherwise all discriminators, then the encoders and
  generator twice: first with everything, then with the random-attribute losses, the attribute encoder left out.
  Adam (0.5, 0.999), L2 weight decay 1e-4; lr policy ``lambda`` (linear decay over the epochs after ``n_ep_decay``)
  or ``step``, stepped at the end of each epoch; incomplete batches are skipped.

The second encoder/generator update back-propagates through the forward graph of the first. Under PyTorch 0.4, which
the authors used, that backward pass read the already-updated weights wherever it needed a weight; modern PyTorch
refuses to run it. ``eg_update="legacy"`` (default) reproduces the official numbers exactly (the version counters of
the stepped parameters are restored so that autograd accepts the stale graph); ``eg_update="clean"`` computes both
gradients before either step (the natural modern port). The two agree to ~1e-8 without mode seeking and differ by
up to 2 x lr on a small fraction of the weights with it. (Under bf16 autocast the convolutions back-propagate through
their cached pre-step bf16 weights, i.e. the clean semantics for those layers. Under ``compile`` the
legacy update keeps the encoders and the generator eager, since a compiled backward may hold copies of the weights.)

Deliberate deviations: the in-place residual additions are written out of place (same values; the official
feature-wise generator cannot run its backward on modern PyTorch); the official display code that concatenates A and
B images (and so crashes for different channel counts) is not reproduced; ``translate(reference=...)`` uses the
attribute mean in the concat variant (the official ``test_transfer.py`` samples it).

Config: ``configs/drit.yaml`` (cat2dog, feature-wise variant as the official README recommends for shape-changing
translations), ``configs/tiny/drit.yaml``.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.compile import CompileSetting
from zoo.losses import check_finite
from zoo.methods._common import (
    StepOutput,
    adam,
    backward,
    check_images,
    iteration_index,
    predict_outputs,
    set_requires_grad,
    to_model_range,
    to_unit_range,
    unscale_gradients,
)
from zoo.methods._inference import InferenceModule, frozen_copy
from zoo.methods.base import ChannelsLast, TranslationMethod
from zoo.nets import drit as nets
from zoo.registry import register_method

__all__ = ["DRIT", "bce_on_sigmoid"]


def _full(x: Tensor) -> Tensor:
    """Half-precision tensors in float32 (losses reduce in full precision); float32/float64 unchanged."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def bce_on_sigmoid(logits: Tensor, target: float) -> Tensor:
    """The official adversarial term: ``binary_cross_entropy(sigmoid(logits), target)``, mean over elements.

    Computed outside autocast, in float32 for half-precision logits (float64 stays float64). The log is clamped
    at -100 as in the official code, so saturated logits give no gradient.
    """
    logits = _full(logits)
    with torch.autocast(device_type=logits.device.type, enabled=False):
        p = torch.sigmoid(logits)
        return F.binary_cross_entropy(p, torch.full_like(p, target))


@contextlib.contextmanager
def _eval_mode(*modules: nn.Module) -> Iterator[None]:
    """Put ``modules`` in eval mode for the block and restore every submodule's previous mode afterwards."""
    states = [(m, m.training) for module in modules for m in module.modules()]
    for module in modules:
        module.eval()
    try:
        yield
    finally:
        for m, training in states:
            m.training = training


class _LambdaRule:
    """Picklable official ``lambda_rule``: 1 - max(0, ep - n_ep_decay) / (n_ep - n_ep_decay + 1)."""

    def __init__(self, n_ep: int, n_ep_decay: int) -> None:
        self.n_ep, self.n_ep_decay = n_ep, n_ep_decay

    def __call__(self, ep: int) -> float:
        return 1.0 - max(0, ep - self.n_ep_decay) / float(self.n_ep - self.n_ep_decay + 1)


#: official option -> zoo constructor argument (``concat`` and ``no_ms`` are converted separately)
_OFFICIAL_OPTIONS = {"input_dim_a": "input_dim_a", "input_dim_b": "input_dim_b", "dis_scale": "dis_scale",
                     "dis_norm": "dis_norm", "dis_spectral_norm": "dis_spectral_norm", "lr_policy": "lr_policy",
                     "n_ep": "n_ep", "n_ep_decay": "n_ep_decay", "d_iter": "d_iter"}
#: official options without an effect on the model (data, logging, devices)
_OFFICIAL_IGNORED = {"dataroot", "phase", "batch_size", "resize_size", "crop_size", "nThreads", "no_flip", "name",
                     "display_dir", "result_dir", "display_freq", "img_save_freq", "model_save_freq",
                     "no_display_img", "resume", "gpu", "a2b", "num"}

EGUpdate = Literal["legacy", "clean"]


class DRITInference(InferenceModule):
    """DRIT: content of the source domain, decoded with the given attribute codes (z) into the target domain.

    Shape: images (B, C_in, H, W) in [0, 1], style (B, nz) -> (B, C_out, H, W) in [0, 1].
    """

    input_names = ("images", "style")

    def __init__(self, enc_c: nn.Module, gen: nn.Module, *, direction: str, style_dim: int) -> None:
        super().__init__()
        self.enc_c, self.gen, self.a2b, self.style_dim = enc_c, gen, direction == "a2b", style_dim

    def forward(self, images: Tensor, style: Tensor) -> Tensor:
        x = to_model_range(images)
        if self.a2b:
            return to_unit_range(self.gen.forward_b(self.enc_c.forward_a(x), style))
        return to_unit_range(self.gen.forward_a(self.enc_c.forward_b(x), style))

    def example_extras(self, images: Tensor, *, generator: torch.Generator | None = None) -> tuple[Tensor, ...]:
        return (torch.randn(images.shape[0], self.style_dim, generator=generator),)


@register_method("drit")
class DRIT(TranslationMethod):
    """DRIT / DRIT++ (Lee et al., ECCV 2018 / IJCV 2020) with the official networks, losses and schedule.

    Args:
        input_dim_a: channels of domain A images.
        input_dim_b: channels of domain B images.
        ch: base width of every network (official: 64; content codes have 4 ch channels).
        nz: attribute size (official: 8).
        concat: concat variant (variational attribute encoder, attribute concatenated in the generator; official
            default ``--concat 1``); False: feature-wise variant (``--concat 0``, recommended for shape changes).
        mode_seeking: DRIT++ mode-seeking loss and second random attribute (official default; False is
            ``--no_ms``, the ECCV DRIT objective).
        dis_scale: scales of the domain discriminators; 1 selects the single-scale ``Dis``.
        dis_n_layer: stride-2 layers per scale of the multi-scale discriminators (official: 4).
        dis_norm: official ``--dis_norm``; accepted but without effect, as in the official code.
        dis_spectral_norm: spectral norm in the domain discriminators.
        dis_content_n_down: 7x7 stride-2 layers of the content discriminator (official: 3, which needs images of at
            least 209 px; 1 trains on images from 44 px, 0 from 16 px; not an official option).
        lambda_content_adv: weight of the content adversarial terms (1).
        lambda_adv: weight of the domain adversarial terms on translations with encoded attributes (1).
        lambda_cycle: weight of the cross-cycle L1 terms (10).
        lambda_self_rec: weight of the self-reconstruction L1 terms (10).
        lambda_kl_attr: weight of the attribute KL / L2 terms (0.01).
        lambda_kl_content: weight of the content-code L2 terms (0.01).
        lambda_adv_random: weight of the adversarial terms on random-attribute images (1).
        lambda_latent: weight of the latent-regression L1 terms (10).
        lambda_ms: weight of the mode-seeking terms (1).
        content_adv_target: BCE target of the content codes for the encoders (0.5: indistinguishable domains).
        lr: Adam learning rate (1e-4).
        lr_dis_content: learning rate of the content discriminator (None: ``lr / 2.5`` as officially).
        beta1: Adam beta1 (0.5).
        beta2: Adam beta2 (0.999).
        weight_decay: Adam L2 weight decay (1e-4).
        dis_content_grad_clip: gradient-norm clipping of the content discriminator (5; None: off).
        lr_policy: ``lambda`` (constant, then linear decay after ``n_ep_decay`` epochs) or ``step`` (x0.1 every
            ``n_ep_decay`` epochs).
        n_ep: number of epochs of the lambda schedule (1200).
        n_ep_decay: epoch where the decay starts (600); -1 keeps the learning rate constant.
        d_iter: one full update every ``d_iter`` batches, content-discriminator-only updates in between (3).
        eg_update: ``legacy`` (official PyTorch-0.4 numbers) or ``clean`` (both encoder/generator gradients taken
            before either step); see the module docstring.
        init_std: standard deviation of the official N(0, std) convolution initialisation (0.02).
        diff_augment: DiffAugment policy for the discriminators' inputs, e.g. ``color,translation,cutout``, for
            small datasets (``None``: off; zoo addition, see ``TranslationMethod.use_diff_augment``).
        ema_decay: keep an exponential moving average of the encoders and generator with this decay (None: off);
            ``translate``, ``encode`` and ``decode`` then use it.
        channels_last: train in the channels-last memory format (same math): ``true``, ``false`` or ``"auto"``
            (default: channels-last on CUDA and on CPUs with AVX-512, NCHW on other CPUs).
        compile: compile the networks with ``torch.compile`` (``true``, or a mapping with ``mode``, ``dynamic``,
            ``fullgraph``, ``backend``; see :mod:`zoo.compile`). Models loaded from files start eager.
    """

    optimizer_steps_per_iteration = 4  # discriminators, content discriminator, encoders/generator twice
    SIZE_NETWORKS = ("enc_c",)
    directions = ("a2b", "b2a")
    DOMAIN_CHANNELS = ("input_dim_a", "input_dim_b")
    PAPER_METRICS = ("fid", "kid", "diversity")
    #: both domains live in each network: a translation runs all three (see :meth:`generator_for`)
    GENERATORS = {}
    #: ``train/lr`` is the learning rate of the encoders and generator (``configure_optimizers`` order)
    logged_lr_optimizer = 2
    #: official network name (``DRIT.<name>`` and checkpoint key) -> attribute of this module
    IMAGE_DISCRIMINATORS = ("dis_a", "dis_b", "dis_a2", "dis_b2")
    COMPILE_BY_PARTS = ("enc_c", "enc_a", "gen")  # run through methods other than forward
    OFFICIAL_NETWORKS = {"disA": "dis_a", "disB": "dis_b", "disA2": "dis_a2", "disB2": "dis_b2",
                         "disContent": "dis_content", "enc_c": "enc_c", "enc_a": "enc_a", "gen": "gen"}
    #: zoo loss name -> official model attribute (both already weighted)
    OFFICIAL_LOSS_NAMES = {
        "d_a": "disA_loss", "d_a2": "disA2_loss", "d_b": "disB_loss", "d_b2": "disB2_loss",
        "d_content": "disContent_loss", "gan_a": "gan_loss_a", "gan_b": "gan_loss_b",
        "gan_content_a": "gan_loss_acontent", "gan_content_b": "gan_loss_bcontent", "kl_attr_a": "kl_loss_za_a",
        "kl_attr_b": "kl_loss_za_b", "kl_content_a": "kl_loss_zc_a", "kl_content_b": "kl_loss_zc_b",
        "cycle_a": "l1_recon_A_loss", "cycle_b": "l1_recon_B_loss", "self_rec_a": "l1_recon_AA_loss",
        "self_rec_b": "l1_recon_BB_loss", "eg_total": "G_loss", "latent_a": "l1_recon_z_loss_a",
        "latent_b": "l1_recon_z_loss_b", "gan_random_a": "gan2_loss_a", "gan_random_b": "gan2_loss_b",
        "ms_ab": "lz_AB", "ms_ba": "lz_BA",
    }
    _EG_NETWORKS = ("enc_c", "enc_a", "gen")
    _DISCRIMINATORS = ("dis_a", "dis_b", "dis_a2", "dis_b2", "dis_content")
    #: the EMA follows the content encoder, the attribute encoder and the generator
    ema_networks = _EG_NETWORKS

    def __init__(
        self,
        *,
        input_dim_a: int = 3,
        input_dim_b: int = 3,
        ch: int = 64,
        nz: int = 8,
        concat: bool = True,
        mode_seeking: bool = True,
        dis_scale: int = 3,
        dis_n_layer: int = 4,
        dis_norm: str = "None",
        dis_spectral_norm: bool = False,
        dis_content_n_down: int = 3,
        lambda_content_adv: float = 1.0,
        lambda_adv: float = 1.0,
        lambda_cycle: float = 10.0,
        lambda_self_rec: float = 10.0,
        lambda_kl_attr: float = 0.01,
        lambda_kl_content: float = 0.01,
        lambda_adv_random: float = 1.0,
        lambda_latent: float = 10.0,
        lambda_ms: float = 1.0,
        content_adv_target: float = 0.5,
        lr: float = 1e-4,
        lr_dis_content: float | None = None,
        beta1: float = 0.5,
        beta2: float = 0.999,
        weight_decay: float = 1e-4,
        dis_content_grad_clip: float | None = 5.0,
        lr_policy: Literal["lambda", "step"] = "lambda",
        n_ep: int = 1200,
        n_ep_decay: int = 600,
        d_iter: int = 3,
        eg_update: EGUpdate = "legacy",
        init_std: float = 0.02,
        ema_decay: float | None = None,
        diff_augment: str | None = None,
        channels_last: ChannelsLast = "auto",
        compile: CompileSetting = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if d_iter < 1:
            raise ValueError(f"d_iter must be >= 1, got {d_iter}")
        if dis_scale < 1:
            raise ValueError(f"dis_scale must be >= 1, got {dis_scale}")
        if lr_policy == "step" and n_ep_decay == 0:
            raise ValueError("lr_policy='step' needs n_ep_decay > 0 (the step size in epochs), or -1 for no decay")

        def domain_discriminator(input_dim: int) -> nn.Module:
            if dis_scale > 1:
                return nets.MultiScaleDis(input_dim, dis_scale, dis_n_layer, norm=dis_norm, sn=dis_spectral_norm,
                                          ch=ch)
            return nets.Dis(input_dim, norm=dis_norm, sn=dis_spectral_norm, ch=ch)

        self.dis_a = domain_discriminator(input_dim_a)
        self.dis_b = domain_discriminator(input_dim_b)
        self.dis_a2 = domain_discriminator(input_dim_a)
        self.dis_b2 = domain_discriminator(input_dim_b)
        if dis_content_n_down < 0:
            raise ValueError(f"dis_content_n_down must be >= 0, got {dis_content_n_down}")
        self.dis_content = nets.Dis_content(ch=ch, n_down=dis_content_n_down)
        self.enc_c = nets.E_content(input_dim_a, input_dim_b, ch=ch)
        if concat:
            self.enc_a = nets.E_attr_concat(input_dim_a, input_dim_b, nz, ch=ch)
            self.gen = nets.G_concat(input_dim_a, input_dim_b, nz=nz, ch=ch)
        else:
            self.enc_a = nets.E_attr(input_dim_a, input_dim_b, nz, ch=ch)
            self.gen = nets.G(input_dim_a, input_dim_b, nz=nz, ch=ch)
        for name in (*self._DISCRIMINATORS, *self._EG_NETWORKS):
            nets.init_official(getattr(self, name), init_std)
        self.build_ema(ema_decay)
        self.use_diff_augment(diff_augment)
        self.use_compile(compile)

    # ---------------------------------------------------------------- inference

    @staticmethod
    def _check_domain(domain: str) -> str:
        if domain not in ("a", "b"):
            raise ValueError(f"domain must be 'a' or 'b', got {domain!r}")
        return domain

    def _inference_nets(self, use_ema: bool = True) -> tuple[nn.Module, nn.Module, nn.Module]:
        if use_ema and self.ema is not None:
            return tuple(self.ema[name].module for name in self._EG_NETWORKS)  # type: ignore[return-value]
        return self.enc_c, self.enc_a, self.gen

    @property
    def style_dim(self) -> int:
        """Length of the style codes (``nz``), drawn from N(0, I)."""
        return self.hparams.nz

    def generator_for(self, direction: str = "a2b", *, use_ema: bool = True) -> nn.Module:
        """The networks translating in ``direction`` (content encoder, attribute encoder, generator; both domains
        live in each), or their EMA copies when kept and ``use_ema``."""
        self.check_direction(direction)
        return nn.ModuleDict(dict(zip(self._EG_NETWORKS, self._inference_nets(use_ema), strict=True)))

    def encode(self, images: Tensor, *, domain: str) -> tuple[Tensor, Tensor]:
        """Content and attribute codes of model-space images (eval mode: no noise; concat variant: the mean).

        Args:
            images: (B, C_domain, H, W) in [-1, 1].
            domain: ``a`` or ``b``.

        Returns:
            content (B, 4 ch, ceil(H/4), ceil(W/4)) and attribute (B, nz).
        """
        enc_c, enc_a, _ = self._inference_nets()
        side = self._check_domain(domain)
        with _eval_mode(enc_c, enc_a):
            content = enc_c.forward_a(images) if side == "a" else enc_c.forward_b(images)
            attribute = enc_a.forward_a(images) if side == "a" else enc_a.forward_b(images)
        if self.hparams.concat:
            attribute = attribute[0]
        return content, attribute

    def encode_attribute(self, images: Tensor, *, domain: str) -> Tensor:
        """Attribute code (B, nz) of model-space images of ``domain`` (the mean in the concat variant)."""
        _, enc_a, _ = self._inference_nets()
        with _eval_mode(enc_a):
            attribute = enc_a.forward_a(images) if self._check_domain(domain) == "a" else enc_a.forward_b(images)
        return attribute[0] if self.hparams.concat else attribute

    def decode(self, content: Tensor, attribute: Tensor, *, domain: str) -> Tensor:
        """Images of ``domain`` in [-1, 1]: content (B, 4 ch, h, w) and attribute (B, nz) or (1, nz) or (nz,)
        -> (B, C_domain, 4 h, 4 w)."""
        _, _, gen = self._inference_nets()
        attribute = attribute.to(device=content.device, dtype=content.dtype).reshape(-1, self.hparams.nz)
        if attribute.shape[0] == 1 and content.shape[0] != 1:
            attribute = attribute.expand(content.shape[0], -1)
        if attribute.shape[0] != content.shape[0]:
            raise ValueError(f"attribute has {attribute.shape[0]} codes for {content.shape[0]} content maps")
        return gen.forward_a(content, attribute) if self._check_domain(domain) == "a" else gen.forward_b(
            content, attribute)

    def forward_random(self, images: Tensor, *, direction: str = "a2b") -> Tensor:
        """The official ``test_forward``: translation with an attribute drawn from the prior N(0, I).

        Runs in the current train/eval mode, like the official method (``test.py`` calls ``eval()`` first). Draws,
        in order: the attribute (B, nz), then (train mode only) the content noise.

        Args:
            images: (B, C_source, H, W) in [-1, 1].
            direction: ``a2b`` or ``b2a``.

        Returns:
            (B, C_target, H, W) in [-1, 1].
        """
        enc_c, _, gen = self._inference_nets()
        z = nets.randn((images.shape[0], self.hparams.nz), like=images)
        if self.check_direction(direction) == "a2b":
            return gen.forward_b(enc_c.forward_a(images), z)
        return gen.forward_a(enc_c.forward_b(images), z)

    def forward_transfer(self, images_a: Tensor, images_b: Tensor, *, direction: str = "a2b") -> Tensor:
        """The official ``test_forward_transfer``: translation with the attribute encoded from the other image.

        Both images are encoded (content and attribute of A and of B). Feature-wise variant: the attribute is the
        deterministic ``E_attr`` output. Concat variant: ``mu + exp(logvar / 2) * eps`` is sampled for A, then for
        B (two draws, whichever direction is asked), so the result is stochastic. Runs in the current train/eval
        mode, like the official method (train mode adds the content noise, drawn A then B, before the attributes).

        Args:
            images_a: (B, input_dim_a, H, W) in [-1, 1].
            images_b: (B, input_dim_b, H', W') in [-1, 1], paired element-wise with ``images_a``.
            direction: ``a2b`` (content of A, attribute of B) or ``b2a`` (content of B, attribute of A).

        Returns:
            (B, input_dim_b, H, W) for ``a2b``, (B, input_dim_a, H', W') for ``b2a``, in [-1, 1].
        """
        direction = self.check_direction(direction)
        if images_a.shape[0] != images_b.shape[0]:
            raise ValueError(f"forward_transfer pairs the images element-wise: got {images_a.shape[0]} A and "
                             f"{images_b.shape[0]} B images")
        enc_c, enc_a, gen = self._inference_nets()
        content_a, content_b = enc_c(images_a, images_b)
        if self.hparams.concat:
            mu_a, logvar_a, mu_b, logvar_b = enc_a(images_a, images_b)
            attr_a = self._sample_attribute(mu_a, logvar_a)
            attr_b = self._sample_attribute(mu_b, logvar_b)
        else:
            attr_a, attr_b = enc_a(images_a, images_b)
        if direction == "a2b":
            return gen.forward_b(content_a, attr_b)
        return gen.forward_a(content_b, attr_a)

    def forward(self, x: Tensor, attribute: Tensor | None = None) -> Tensor:
        """A -> B in model space: (B, input_dim_a, H, W) in [-1, 1] -> (B, input_dim_b, H, W) in [-1, 1].

        ``attribute`` (B, nz) defaults to a draw from the prior N(0, I) (global generator).
        """
        content, _ = self.encode(x, domain="a")
        if attribute is None:
            attribute = torch.randn(x.shape[0], self.hparams.nz, device=x.device, dtype=content.dtype)
        return self.decode(content, attribute, domain="b")

    def export_module(self, direction: str = "a2b") -> InferenceModule:
        """``translate`` with given attribute codes as a traceable module (``zoo export``): images and ``style`` in."""
        nets = self.generator_for(self.check_direction(direction))
        what = type(self).__name__
        return DRITInference(frozen_copy(nets["enc_c"], train_mode=False, what=what),
                             frozen_copy(nets["gen"], train_mode=False, what=what), direction=direction,
                             style_dim=self.style_dim)

    def translate(self, images: Tensor, *, direction: str = "a2b", style: Tensor | None = None, num_styles: int = 1,
                  reference: Tensor | None = None, seed: int | None = None) -> Tensor:
        """Translate a batch with attribute codes from the prior, given codes, or a reference image.

        Args:
            images: (B, C_in, H, W) in [0, 1]; H and W multiples of 4.
            direction: ``a2b`` or ``b2a``.
            style: attribute codes (DRIT's z): (nz,) or (1, nz) shared, (B, nz) per image, or (K, nz) with
                ``num_styles=K`` (each image with each code).
            num_styles: K codes per image; with K > 1 the result is (B, K, C_out, H, W).
            reference: (B or 1, C_out, H', W') target-domain images in [0, 1] whose attribute is used (the mean in
                the concat variant).
            seed: seeds the prior draws (a ``torch.Generator`` on the CPU; None: the global generator). With
                ``num_styles=1`` each image gets its own code; with K > 1 the K codes are shared by the batch.

        Returns:
            (B, C_out, H, W) in [0, 1], or (B, K, C_out, H, W) when ``num_styles=K > 1``.
        """
        direction = self.check_direction(direction)
        check_images(images, self.input_channels(direction), self.size_multiple)
        if num_styles < 1:
            raise ValueError(f"num_styles must be >= 1, got {num_styles}")
        if style is not None and reference is not None:
            raise ValueError("pass either style codes or a reference image, not both")
        if reference is not None and num_styles != 1:
            raise ValueError("a reference image gives one attribute; it cannot be combined with num_styles > 1")
        nz, batch = self.hparams.nz, images.shape[0]
        source, target = ("a", "b") if direction == "a2b" else ("b", "a")
        enc_c, _, _ = self._inference_nets()
        with torch.inference_mode(), _eval_mode(enc_c):
            x = to_model_range(images)
            content = enc_c.forward_a(x) if source == "a" else enc_c.forward_b(x)
            if reference is not None:
                if reference.dim() != 4 or reference.shape[1] != self.output_channels(direction) or \
                        reference.shape[0] not in (1, batch):
                    raise ValueError(f"reference must be (1 or {batch}, {self.output_channels(direction)}, H', W') "
                                     f"target-domain images, got {tuple(reference.shape)}")
                codes = self.encode_attribute(to_model_range(reference.to(x)), domain=target)
            elif style is not None:
                codes = style.to(device=x.device, dtype=content.dtype)
                if codes.dim() == 1:
                    codes = codes[None]
                elif codes.dim() == 4 and codes.shape[2:] == (1, 1):
                    codes = codes.flatten(1)
                if codes.dim() != 2 or codes.shape[1] != nz:
                    raise ValueError(f"style must be (nz,), (1, nz), (B, nz) or (K, nz) with nz={nz}, "
                                     f"got {tuple(style.shape)}")
                if num_styles > 1 and codes.shape[0] != num_styles:
                    raise ValueError(f"num_styles={num_styles} needs style of shape ({num_styles}, {nz}), "
                                     f"got {tuple(style.shape)}")
                if num_styles == 1 and codes.shape[0] not in (1, batch):
                    raise ValueError(f"style must hold 1 or {batch} codes for a batch of {batch} (or pass "
                                     f"num_styles={codes.shape[0]}), got {tuple(style.shape)}")
            else:
                generator = torch.Generator().manual_seed(seed) if seed is not None else None
                count = num_styles if num_styles > 1 else batch
                codes = torch.randn(count, nz, generator=generator).to(device=x.device, dtype=content.dtype)
            if num_styles == 1:
                out = self.decode(content, codes, domain=target)
            else:
                out = self.decode(content.repeat_interleave(num_styles, 0), codes.repeat(batch, 1), domain=target)
                out = out.view(batch, num_styles, *out.shape[1:])
            return to_unit_range(out)

    # ---------------------------------------------------------------- training: the official forward()

    @property
    def loss_weights(self) -> dict[str, float]:
        h = self.hparams
        weights = {"d_a": 1.0, "d_b": 1.0, "d_a2": 1.0, "d_b2": 1.0, "d_content": 1.0}
        for side in ("a", "b"):
            weights.update({f"gan_content_{side}": h.lambda_content_adv, f"gan_{side}": h.lambda_adv,
                            f"cycle_{side}": h.lambda_cycle, f"self_rec_{side}": h.lambda_self_rec,
                            f"kl_attr_{side}": h.lambda_kl_attr, f"kl_content_{side}": h.lambda_kl_content,
                            f"gan_random_{side}": h.lambda_adv_random, f"latent_{side}": h.lambda_latent})
        weights.update({"ms_ab": h.lambda_ms, "ms_ba": h.lambda_ms})
        return weights

    def _sample_attribute(self, mu: Tensor, logvar: Tensor) -> Tensor:
        """Reparameterisation ``mu + exp(logvar / 2) * eps`` (one draw)."""
        return nets.randn(mu.shape, like=mu) * logvar.mul(0.5).exp() + mu

    def _attributes(self, xa: Tensor, xb: Tensor) -> dict[str, Tensor]:
        """Encoded attributes of (xa, xb): ``z_a``, ``z_b`` (+ ``mu_*``, ``logvar_*`` in the concat variant)."""
        if not self.hparams.concat:
            z_a, z_b = self.enc_a(xa, xb)
            return {"z_a": z_a, "z_b": z_b}
        mu_a, logvar_a, mu_b, logvar_b = self.enc_a(xa, xb)
        return {"mu_a": mu_a, "logvar_a": logvar_a, "mu_b": mu_b, "logvar_b": logvar_b}

    def training_forward(self, real_a: Tensor, real_b: Tensor) -> dict[str, Tensor]:
        """The official ``DRIT.forward()``; tensors under their official attribute names.

        Random draws in the official order: content noise A, B; [attribute eps A, B]; z_random; [z_random2];
        noise of the re-encoded fake A, fake B; [eps of their attributes A, B].
        """
        h = self.hparams
        out: dict[str, Tensor] = {"real_A_encoded": real_a[:1], "real_A_random": real_a[1:],
                                  "real_B_encoded": real_b[:1], "real_B_random": real_b[1:]}
        a_enc, b_enc = out["real_A_encoded"], out["real_B_encoded"]
        out["z_content_a"], out["z_content_b"] = self.enc_c(a_enc, b_enc)
        attr = self._attributes(a_enc, b_enc)
        if h.concat:
            out.update(attr)
            out["z_attr_a"] = self._sample_attribute(attr["mu_a"], attr["logvar_a"])
            out["z_attr_b"] = self._sample_attribute(attr["mu_b"], attr["logvar_b"])
        else:
            out["z_attr_a"], out["z_attr_b"] = attr["z_a"], attr["z_b"]
        z_c_a, z_c_b = out["z_content_a"], out["z_content_b"]
        out["z_random"] = nets.randn((1, h.nz), like=out["z_attr_a"])
        randoms = [out["z_random"]]
        if h.mode_seeking:
            out["z_random2"] = nets.randn((1, h.nz), like=out["z_attr_a"])
            randoms.append(out["z_random2"])
        # Two calls per generator: the first update's loss reads only the translations and self-reconstructions,
        # the second only the random-attribute images, so each backward pass runs through half of the batch.
        n = z_c_a.shape[0]
        fake_a = self.gen.forward_a(torch.cat([z_c_b, z_c_a]), torch.cat([out["z_attr_a"], out["z_attr_a"]]))
        fake_b = self.gen.forward_b(torch.cat([z_c_a, z_c_b]), torch.cat([out["z_attr_b"], out["z_attr_b"]]))
        random_a = self.gen.forward_a(torch.cat([z_c_b] * len(randoms)), torch.cat(randoms))
        random_b = self.gen.forward_b(torch.cat([z_c_a] * len(randoms)), torch.cat(randoms))
        for side, images, randoms_out in (("A", fake_a, random_a), ("B", fake_b, random_b)):
            out[f"fake_{side}_encoded"], out[f"fake_{side}{side}_encoded"] = images.split(n)
            names = [f"fake_{side}_random", f"fake_{side}_random2"][: len(randoms)]
            out.update(zip(names, randoms_out.split(n), strict=True))
        # re-encoding for the cross cycle (first update) and the attributes of the random-attribute images (latent
        # regression, second update)
        out["z_content_recon_b"], out["z_content_recon_a"] = self.enc_c(out["fake_A_encoded"], out["fake_B_encoded"])
        recon = self._attributes(out["fake_A_encoded"], out["fake_B_encoded"])
        regress = self._attributes(out["fake_A_random"], out["fake_B_random"])
        if h.concat:
            out["mu_recon_a"], out["logvar_recon_a"] = recon["mu_a"], recon["logvar_a"]
            out["mu_recon_b"], out["logvar_recon_b"] = recon["mu_b"], recon["logvar_b"]
            out["z_attr_recon_a"] = self._sample_attribute(recon["mu_a"], recon["logvar_a"])
            out["z_attr_recon_b"] = self._sample_attribute(recon["mu_b"], recon["logvar_b"])
            out["mu2_a"], out["mu2_b"] = regress["mu_a"], regress["mu_b"]
        else:
            out["z_attr_recon_a"], out["z_attr_recon_b"] = recon["z_a"], recon["z_b"]
            out["z_attr_random_a"], out["z_attr_random_b"] = regress["z_a"], regress["z_b"]
        out["fake_A_recon"] = self.gen.forward_a(out["z_content_recon_a"], out["z_attr_recon_a"])
        out["fake_B_recon"] = self.gen.forward_b(out["z_content_recon_b"], out["z_attr_recon_b"])
        return out

    # ---------------------------------------------------------------- training: losses

    def _logits(self, net: nn.Module, inputs: list[Tensor]) -> list[list[Tensor]]:
        """Per input, the per-scale logit maps of ``net``.

        Without spectral norm all inputs go through one batched call (the discriminators treat samples
        independently); with it, one call per input in the given (official) order, since each training call runs a
        power iteration.
        """
        spectral = self.hparams.dis_spectral_norm and net is not self.dis_content
        if spectral or len({tuple(x.shape[1:]) for x in inputs}) > 1:
            return [nets.discriminator_logits(net, x) for x in inputs]
        sizes = [x.shape[0] for x in inputs]
        per_scale = [logits.split(sizes) for logits in nets.discriminator_logits(net, torch.cat(inputs))]
        return [[scale[i] for scale in per_scale] for i in range(len(inputs))]

    def _d_loss(self, net: nn.Module, real: Tensor, fakes: list[Tensor]) -> Tensor:
        """Official ``backward_D`` for each fake (D on the fake, then the real), summed over scales and fakes."""
        if self.hparams.dis_spectral_norm:
            pairs = []
            for fake in fakes:
                outs_fake, outs_real = self._logits(net, [fake, real])
                pairs.append((outs_real, outs_fake))
        else:
            outs_real, *outs_fakes = self._logits(net, [real, *fakes])
            pairs = [(outs_real, outs_fake) for outs_fake in outs_fakes]
        total = 0
        for outs_real, outs_fake in pairs:
            for out_real, out_fake in zip(outs_real, outs_fake, strict=True):
                total = total + bce_on_sigmoid(out_real, 1.0) + bce_on_sigmoid(out_fake, 0.0)
        return total

    def _d_content_loss(self, z_content_a: Tensor, z_content_b: Tensor) -> Tensor:
        """Official ``backward_contentD``: B codes are "real", A codes "fake" (both detached)."""
        (fake,), (real,) = self._logits(self.dis_content, [z_content_a.detach(), z_content_b.detach()])
        return bce_on_sigmoid(real, 1.0) + bce_on_sigmoid(fake, 0.0)

    def _g_adv(self, net: nn.Module, fakes: list[Tensor]) -> Tensor:
        """Official ``backward_G_GAN`` summed over ``fakes`` (target 1, summed over scales)."""
        return sum(bce_on_sigmoid(out, 1.0) for outs in self._logits(net, fakes) for out in outs)

    def discriminator_losses(self, f: dict[str, Tensor]) -> dict[str, Tensor]:
        """``update_D`` terms (unweighted): the four domain discriminators and the content discriminator."""
        randoms_a = [f["fake_A_random"].detach()] + ([f["fake_A_random2"].detach()] if self.hparams.mode_seeking
                                                     else [])
        randoms_b = [f["fake_B_random"].detach()] + ([f["fake_B_random2"].detach()] if self.hparams.mode_seeking
                                                     else [])
        return {"d_a": self._d_loss(self.dis_a, f["real_A_encoded"], [f["fake_A_encoded"].detach()]),
                "d_a2": self._d_loss(self.dis_a2, f["real_A_random"], randoms_a),
                "d_b": self._d_loss(self.dis_b, f["real_B_encoded"], [f["fake_B_encoded"].detach()]),
                "d_b2": self._d_loss(self.dis_b2, f["real_B_random"], randoms_b),
                "d_content": self._d_content_loss(f["z_content_a"], f["z_content_b"])}

    def encoder_generator_losses(self, f: dict[str, Tensor]) -> dict[str, Tensor]:
        """``backward_EG`` terms (unweighted; the first encoder/generator update)."""
        h = self.hparams
        (c_a,), (c_b,) = self._logits(self.dis_content, [f["z_content_a"], f["z_content_b"]])
        terms = {"gan_content_a": bce_on_sigmoid(c_a, h.content_adv_target),
                 "gan_content_b": bce_on_sigmoid(c_b, h.content_adv_target),
                 "gan_a": self._g_adv(self.dis_a, [f["fake_A_encoded"]]),
                 "gan_b": self._g_adv(self.dis_b, [f["fake_B_encoded"]])}
        for side, up in (("a", "A"), ("b", "B")):
            if h.concat:
                mu, logvar = _full(f[f"mu_{side}"]), _full(f[f"logvar_{side}"])
                terms[f"kl_attr_{side}"] = torch.sum(1 + logvar - mu.pow(2) - logvar.exp()) * -0.5
            else:
                terms[f"kl_attr_{side}"] = _full(f[f"z_attr_{side}"]).pow(2).mean()
            terms[f"kl_content_{side}"] = _full(f[f"z_content_{side}"]).pow(2).mean()
            real = _full(f[f"real_{up}_encoded"])
            terms[f"cycle_{side}"] = F.l1_loss(_full(f[f"fake_{up}_recon"]), real)
            terms[f"self_rec_{side}"] = F.l1_loss(_full(f[f"fake_{up}{up}_encoded"]), real)
        return terms

    def random_attribute_losses(self, f: dict[str, Tensor]) -> dict[str, Tensor]:
        """``backward_G_alone`` terms (unweighted; the second update): random-attribute adversarial, latent
        regression and (DRIT++) mode seeking."""
        h = self.hparams
        terms = {}
        for side, up in (("a", "A"), ("b", "B")):
            fakes = [f[f"fake_{up}_random"]] + ([f[f"fake_{up}_random2"]] if h.mode_seeking else [])
            terms[f"gan_random_{side}"] = self._g_adv(getattr(self, f"dis_{side}2"), fakes)
            regressed = f[f"mu2_{side}"] if h.concat else f[f"z_attr_random_{side}"]
            terms[f"latent_{side}"] = (_full(regressed) - _full(f["z_random"])).abs().mean()
        if h.mode_seeking:
            dz = (_full(f["z_random2"]) - _full(f["z_random"])).abs().mean()
            for name, up in (("ms_ab", "B"), ("ms_ba", "A")):
                lz = (_full(f[f"fake_{up}_random2"]) - _full(f[f"fake_{up}_random"])).abs().mean() / dz
                terms[name] = 1 / (lz + 1e-5)
        return terms

    # ---------------------------------------------------------------- training: one official iteration

    def _params(self, *names: str) -> list[nn.Parameter]:
        return [p for name in names for p in getattr(self, name).parameters()]

    def _clip_and_step_content(self, opt_dis_content: Any, losses: dict[str, Tensor]) -> None:
        clip = self.hparams.dis_content_grad_clip
        if clip is not None:
            unscale_gradients(self, opt_dis_content)
            losses["d_content_grad_norm"] = torch.nn.utils.clip_grad_norm_(self.dis_content.parameters(), clip)
        opt_dis_content.step()

    def content_discriminator_step(self, real_a: Tensor, real_b: Tensor, opt_dis_content: Any) -> StepOutput:
        """Official ``update_D_content``: content codes of the first images (train mode, with noise), one clipped
        step of the content discriminator."""
        with torch.no_grad():  # the official loss detaches the codes
            z_a, z_b = self.enc_c(real_a[:1], real_b[:1])
        opt_dis_content.zero_grad()
        losses = {"d_content": self._d_content_loss(z_a, z_b)}
        iteration, epoch = iteration_index(self)
        check_finite(losses, iteration=iteration, epoch=epoch)
        backward(self, losses["d_content"], opt_dis_content)
        self._clip_and_step_content(opt_dis_content, losses)
        return StepOutput(losses, {})

    def optimization_step(self, real_a: Tensor, real_b: Tensor, opt_dis: Any, opt_dis_content: Any, opt_eg: Any, *,
                          content_only: bool = False) -> StepOutput:
        """One official iteration: ``update_D`` then ``update_EG`` (or ``update_D_content`` when ``content_only``).

        Works with plain ``torch.optim`` optimizers (no Trainer) and with Lightning's wrapped ones.

        Args:
            real_a: (B, input_dim_a, H, W) in [-1, 1], B >= 2 (the first image is translated, the others are real
                examples for ``dis_a2``); H, W >= 209 for the official content discriminator.
            real_b: (B, input_dim_b, H, W) in [-1, 1].
            opt_dis: optimizer of the four domain discriminators.
            opt_dis_content: optimizer of the content discriminator.
            opt_eg: optimizer of the content encoder, attribute encoder and generator.
            content_only: run the content-discriminator-only iteration of the ``d_iter`` schedule.

        Returns:
            Weighted loss terms (official names in ``OFFICIAL_LOSS_NAMES``) and the forward's tensors (detached,
            official names).
        """
        if content_only:
            return self.content_discriminator_step(real_a, real_b, opt_dis_content)
        if real_a.shape[0] < 2 or real_b.shape[0] < 2:
            raise ValueError(f"DRIT needs batches of at least 2 images per domain (the first is translated, the "
                             f"others are real examples for the random-attribute discriminators); got "
                             f"{real_a.shape[0]} and {real_b.shape[0]}")
        weights = self.loss_weights
        iteration, epoch = iteration_index(self)
        f = self.training_forward(real_a, real_b)

        # update_D
        discriminators = [getattr(self, name) for name in self._DISCRIMINATORS]
        opt_dis.zero_grad()
        opt_dis_content.zero_grad()
        d_losses = {k: weights[k] * v for k, v in self.discriminator_losses(f).items()}
        check_finite(d_losses, iteration=iteration, epoch=epoch)
        backward(self, sum(d_losses.values()), opt_dis)
        opt_dis.step()
        self._clip_and_step_content(opt_dis_content, d_losses)

        # update_EG: two steps of the encoders and the generator, the second without the attribute encoder
        set_requires_grad(discriminators, False)
        try:
            eg_losses = {k: weights[k] * v for k, v in self.encoder_generator_losses(f).items()}
            eg_losses["eg_total"] = sum(eg_losses.values())
            alone = {k: weights[k] * v for k, v in self.random_attribute_losses(f).items()}
            check_finite({**eg_losses, **alone}, iteration=iteration, epoch=epoch)
            self._encoder_generator_steps(opt_eg, eg_losses["eg_total"], sum(alone.values()))
        finally:
            set_requires_grad(discriminators, True)
        self.update_ema()
        losses = {**d_losses, **eg_losses, **alone}
        images = {k: v.detach() for k, v in f.items()}
        return StepOutput(losses, images)

    def _encoder_generator_steps(self, opt_eg: Any, loss_eg: Tensor, loss_alone: Tensor) -> None:
        eg_params = self._params(*self._EG_NETWORKS)
        attr_params = self._params("enc_a")
        opt_eg.zero_grad(set_to_none=False)
        if self.hparams.eg_update == "clean":
            backward(self, loss_eg, opt_eg, retain_graph=True)
            first = [p.grad for p in eg_params]
            for p in eg_params:
                p.grad = None
            backward(self, loss_alone, opt_eg)
            second = [torch.zeros_like(p) if p.grad is None else p.grad for p in eg_params]
            for p, g in zip(eg_params, first, strict=True):
                p.grad = g
            opt_eg.step()
            for p, g in zip(eg_params, second, strict=True):
                p.grad = g
        else:
            backward(self, loss_eg, opt_eg, retain_graph=True)
            versions = [p._version for p in eg_params]
            opt_eg.step()
            # PyTorch 0.4 semantics: the second backward runs through the first forward's graph and reads the
            # updated weights wherever it needs a weight; restoring the version counters lets autograd accept it
            torch._C._autograd._unsafe_set_version_counter(tuple(eg_params), tuple(versions))
            opt_eg.zero_grad(set_to_none=False)
            backward(self, loss_alone, opt_eg)
        for p in attr_params:  # the attribute encoder takes no part in the second step
            p.grad = None
        opt_eg.step()

    # ---------------------------------------------------------------- Trainer loop, validation, prediction

    @property
    def eager_networks(self) -> tuple[str, ...]:
        """With ``eg_update="legacy"``, the encoders and the generator: the second update's backward pass runs through
        the first forward's graph after their step and must read their updated weights, which a compiled backward,
        holding its own copies of some, does not (measured: the content encoder's second gradients far off under
        inductor). ``eg_update="clean"`` compiles them."""
        return self._EG_NETWORKS if self.hparams.eg_update == "legacy" else ()

    @property
    def schedule_cycle(self) -> int:
        """``d_iter``: one full update every ``d_iter`` batches, content-discriminator-only ones in between."""
        return int(self.hparams.d_iter)

    def training_inputs(self, batch: dict[str, Any]) -> tuple[Tensor, Tensor] | None:
        """``(real_a, real_b)``, (B, C, H, W) in [-1, 1] (channels-last when training uses it); ``None`` for an
        incomplete batch, which the official loop skips."""
        expected = getattr(getattr(self.trainer, "datamodule", None), "batch_size", None)
        size = batch["real_a"].shape[0]
        if (expected is not None and size != expected) or batch["real_b"].shape[0] != size:
            return None
        return super().training_inputs(batch)

    def optimization_options(self, batch_idx: int) -> dict[str, Any]:
        """``content_only`` for the official schedule: content-discriminator-only unless ``(it + 1) % d_iter == 0``
        or ``it`` is one of the last two batches of the epoch."""
        trainer = getattr(self, "_trainer", None)
        n_batches = trainer.num_training_batches if trainer is not None else float("inf")
        return {"content_only": (batch_idx + 1) % self.hparams.d_iter != 0 and batch_idx < n_batches - 2}

    def validation_metrics(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Self-reconstruction and cross-cycle L1 (model space) of both domains, encoded attributes (eval mode)."""
        real_a, real_b = batch["real_a"], batch["real_b"]
        c_a, attr_a = self.encode(real_a, domain="a")
        c_b, attr_b = self.encode(real_b, domain="b")
        n = min(real_a.shape[0], real_b.shape[0])
        fake_b = self.decode(c_a[:n], attr_b[:n], domain="b")
        fake_a = self.decode(c_b[:n], attr_a[:n], domain="a")
        rec_a = self.decode(self.encode(fake_b, domain="b")[0], attr_a[:n], domain="a")
        rec_b = self.decode(self.encode(fake_a, domain="a")[0], attr_b[:n], domain="b")
        return {"self_rec_a": F.l1_loss(self.decode(c_a, attr_a, domain="a").float(), real_a.float()),
                "self_rec_b": F.l1_loss(self.decode(c_b, attr_b, domain="b").float(), real_b.float()),
                "cycle_a": F.l1_loss(rec_a.float(), real_a[:n].float()),
                "cycle_b": F.l1_loss(rec_b.float(), real_b[:n].float())}

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Tensor]:
        """The base ``predict_step`` with the prior draws seeded by ``batch_idx`` (reproducible predictions)."""
        return predict_outputs(self, batch, directions=("a2b", "b2a"), seed=batch_idx)

    def configure_optimizers(self):
        h = self.hparams
        kwargs = {"betas": (h.beta1, h.beta2), "weight_decay": h.weight_decay}
        opt_dis = adam(self._params("dis_a", "dis_b", "dis_a2", "dis_b2"), lr=h.lr, **kwargs)
        lr_content = h.lr / 2.5 if h.lr_dis_content is None else h.lr_dis_content
        opt_dis_content = adam(self.dis_content.parameters(), lr=lr_content, **kwargs)
        opt_eg = adam(self._params(*self._EG_NETWORKS), lr=h.lr, **kwargs)
        optimizers = [opt_dis, opt_dis_content, opt_eg]
        if h.n_ep_decay <= -1:
            return optimizers, []
        if h.lr_policy == "lambda":
            schedulers = [torch.optim.lr_scheduler.LambdaLR(o, lr_lambda=_LambdaRule(h.n_ep, h.n_ep_decay))
                          for o in optimizers]
        else:
            schedulers = [torch.optim.lr_scheduler.StepLR(o, step_size=h.n_ep_decay, gamma=0.1) for o in optimizers]
        return optimizers, [{"scheduler": s, "interval": "epoch"} for s in schedulers]

    # ---------------------------------------------------------------- official checkpoints

    @classmethod
    def init_args_from_official(cls, opts: dict[str, Any]) -> dict[str, Any]:
        """zoo constructor arguments from the official ``TrainOptions`` / ``TestOptions`` (a dict or namespace).

        ``concat`` and ``no_ms`` are converted; data, logging and device options are ignored; zoo argument names
        are passed through; anything else raises ``ValueError``.
        """
        opts = dict(vars(opts)) if not isinstance(opts, dict) else dict(opts)
        args: dict[str, Any] = {}
        zoo_names = set(inspect.signature(cls.__init__).parameters) - {"self"}
        for key, value in opts.items():
            if key in _OFFICIAL_OPTIONS:
                args[_OFFICIAL_OPTIONS[key]] = value
            elif key == "concat":
                if value not in (0, 1):  # bools compare equal to 0 / 1
                    raise ValueError(f"official DRIT option concat must be 0 (feature-wise) or 1 (concat), "
                                     f"got {value!r}")
                args["concat"] = bool(value)
            elif key == "a2b" and value not in (0, 1):
                raise ValueError(f"official DRIT option a2b must be 0 or 1, got {value!r}")
            elif key == "no_ms":
                args["mode_seeking"] = not value
            elif key in _OFFICIAL_IGNORED:
                continue
            elif key in zoo_names:
                args[key] = value
            else:
                raise ValueError(f"unknown official DRIT option {key!r}")
        if "dis_spectral_norm" in args:
            args["dis_spectral_norm"] = bool(args["dis_spectral_norm"])
        return args

    def _official_networks(self, state_dict: dict[str, Any], net: str | None) -> dict[str, dict[str, Tensor]]:
        """Official network name -> its state dict: every network of a whole checkpoint, or ``{net: state_dict}``."""
        if net is not None:
            return {net: state_dict}
        return {name: state for name, state in state_dict.items() if name in self.OFFICIAL_NETWORKS}

    def convert_official_state_dict(self, state_dict: dict[str, Any], *, net: str | None = None) -> dict[str, Tensor]:
        """An official checkpoint (``{"disA": ..., "gen": ..., "ep": ..., ...}``, or one network's state dict with
        ``net``) -> keys of this module (``gen.decA1.0.model.1.weight``, ...)."""
        converted: dict[str, Tensor] = {}
        for name, state in self._official_networks(state_dict, net).items():
            converted.update(super().convert_official_state_dict(state, net=name))
        return converted

    def load_official_weights(self, state_dict: dict[str, Any], *, net: str | None = None,
                              strict_networks: bool = True) -> None:
        """Load an official checkpoint (every network it holds) or, with ``net``, one network's state dict.

        Each network is loaded strictly (every key used once, shapes checked), into its EMA copy too when one is
        kept; ``strict_networks`` also requires the inference networks ``enc_c``, ``enc_a`` and ``gen`` in a whole
        checkpoint (``test.py`` loads only these).
        """
        networks = self._official_networks(state_dict, net)
        if net is None and strict_networks:
            missing = [name for name in self._EG_NETWORKS if name not in networks]
            if missing:
                raise ValueError(f"the official checkpoint lacks the network(s) {missing}; it holds "
                                 f"{sorted(state_dict)}")
        for name, state in networks.items():
            super().load_official_weights(state, net=name)

    def official_state_dict(self, net: str = "gen") -> dict[str, Tensor]:
        """One network's state dict in the official layout (for export back to the official code)."""
        return super().official_state_dict(net)
