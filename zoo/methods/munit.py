"""MUNIT: multimodal unsupervised image-to-image translation.

Paper: Huang, Liu, Belongie, Kautz, "Multimodal Unsupervised Image-to-Image Translation", ECCV 2018,
https://arxiv.org/abs/1804.04732. Official code: https://github.com/NVlabs/MUNIT (networks, objective, update order,
initialisation and schedule reproduced; proven by the parity tests against fixtures of commit a82e222).

Faithful to the official implementation:

* One auto-encoder per domain (:class:`zoo.nets.munit.AdaINGen`: content encoder with instance norm, style encoder
  with 4 downsamplings and no norm, MLP -> AdaIN parameters, decoder with AdaIN residual blocks and MUNIT's layer
  norm) and one multi-scale discriminator per domain (:class:`zoo.nets.munit.MsImageDis`), official key layout.
* One iteration = learning-rate scheduler step (the official loop calls ``update_learning_rate`` first), then the
  discriminator update, then the generator update, each with freshly drawn N(0, I) style codes (s_a then s_b).
* Generator objective: ``gan_w`` x adversarial + ``recon_x_w`` x image reconstruction + ``recon_s_w`` x style
  reconstruction (of the random code) + ``recon_c_w`` x content reconstruction (target not detached) +
  ``recon_x_cyc_w`` x cycle reconstruction (decoded with the *encoded* style) + ``vgg_w`` x domain-invariant
  perceptual loss; every reconstruction is a mean absolute error.
* Adam (lr 1e-4, betas (0.5, 0.999), L2 weight decay 1e-4) over both generators and over both discriminators;
  ``lr_policy="step"``: StepLR(step_size, gamma) counted in iterations; ``constant``: no scheduler.
* Initialisation: ``init`` (kaiming) on every network, then the discriminators re-initialised N(0, 0.02).

Same computation, less work: the content codes of the real images are computed once per iteration and shared by the
discriminator and generator updates (the generators do not change in between; the discriminator update only uses
them detached), the style encoder is not run in the discriminator update (its output is unused there), the
within-domain reconstruction and the cross-domain translation of one decoder run as one batch, the discriminators
get real and fake images in one batch when their norm is per-sample, and the discriminators are frozen during the
generator update (officially they accumulate gradients that are zeroed before use).

Deliberate deviations: the VGG-16 of the perceptual loss is torchvision's architecture (pool4 removed as officially);
it takes the official Caffe-converted ``vgg16.weight`` file or torchvision's weights (then with ImageNet
preprocessing); it is not part of the checkpoint and is only built when ``vgg_w > 0`` and training starts.

Config: ``configs/munit.yaml`` (edges2shoes), ``configs/tiny/munit.yaml``.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from itertools import chain
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from zoo.compile import CompileSetting
from zoo.losses import check_finite
from zoo.methods._common import (
    StepOutput,
    adam,
    backward,
    check_images,
    iteration_index,
    set_requires_grad,
    to_model_range,
    to_unit_range,
)
from zoo.methods._inference import InferenceModule, frozen_copy
from zoo.methods.base import ChannelsLast, TranslationMethod
from zoo.nets.munit import (
    Activation,
    AdaINGen,
    GanType,
    InitName,
    MsImageDis,
    NormName,
    PadType,
    convert_official_state_dict,
    to_official_state_dict,
    weights_init,
)
from zoo.registry import PretrainedEntry, register_method, register_pretrained

__all__ = ["MUNIT"]

#: Official top-level / ``gen`` / ``dis`` config keys -> zoo constructor arguments.
_OFFICIAL_TOP = ("input_dim_a", "input_dim_b", "gan_w", "recon_x_w", "recon_s_w", "recon_c_w", "recon_x_cyc_w",
                 "vgg_w", "lr", "beta1", "beta2", "weight_decay", "init", "lr_policy", "step_size", "gamma")
_OFFICIAL_GEN = {"dim": "dim", "mlp_dim": "mlp_dim", "style_dim": "style_dim", "activ": "activ",
                 "n_downsample": "n_downsample", "n_res": "n_res", "pad_type": "pad_type"}
_OFFICIAL_DIS = {"dim": "dis_dim", "norm": "dis_norm", "activ": "dis_activ", "n_layer": "n_layer",
                 "gan_type": "gan_type", "num_scales": "num_scales", "pad_type": "dis_pad_type"}


def _l1(a: Tensor, b: Tensor) -> Tensor:
    """The official ``recon_criterion``: mean absolute difference, reduced in at least float32."""
    a = a if a.dtype in (torch.float32, torch.float64) else a.float()
    b = b if b.dtype in (torch.float32, torch.float64) else b.float()
    return torch.mean(torch.abs(a - b))


class MUNITInference(InferenceModule):
    """MUNIT: content of the source auto-encoder, decoded with the given style codes by the target's.

    Shape: images (B, C_in, H, W) in [0, 1], style (B, style_dim) -> (B, C_out, H, W) in [0, 1].
    """

    input_names = ("images", "style")

    def __init__(self, source: nn.Module, target: nn.Module, style_dim: int) -> None:
        super().__init__()
        self.source, self.target, self.style_dim = source, target, style_dim

    def forward(self, images: Tensor, style: Tensor) -> Tensor:
        content = self.source.enc_content(to_model_range(images))
        return to_unit_range(self.target.decode(content, style.reshape(style.shape[0], -1, 1, 1)))

    def example_extras(self, images: Tensor, *, generator: torch.Generator | None = None) -> tuple[Tensor, ...]:
        return (torch.randn(images.shape[0], self.style_dim, generator=generator),)


@register_method("munit")
class MUNIT(TranslationMethod):
    """MUNIT (Huang et al., ECCV 2018) with the official networks, objective, update order and schedule.

    Domain ``a`` is the input of ``direction="a2b"``. Defaults are the official edges2shoes configuration.

    Args:
        input_dim_a: channels of domain A images (1 or 3).
        input_dim_b: channels of domain B images.
        dim: generator base width (official ``gen.dim``, 64).
        mlp_dim: hidden width of the MLP producing the AdaIN parameters (256).
        style_dim: style code length (8).
        n_downsample: downsamplings in the content encoder (2); images sides must be multiples of 2**n_downsample.
        n_res: residual blocks in the content encoder and in the decoder (4).
        activ: generator activation: ``relu``, ``lrelu``, ``prelu``, ``selu``, ``tanh`` or ``none``.
        pad_type: generator padding: ``reflect``, ``replicate`` or ``zero``.
        dis_dim: discriminator base width (official ``dis.dim``, 64).
        dis_norm: discriminator norm: ``none`` (official configs), ``bn``, ``in``, ``ln`` or ``sn``.
        dis_activ: discriminator activation (``lrelu``).
        n_layer: stride-2 layers per discriminator scale (4).
        gan_type: ``lsgan`` (official configs) or ``nsgan``.
        num_scales: discriminator scales (3).
        dis_pad_type: discriminator padding (``reflect``).
        gan_w: weight of the adversarial losses (1).
        recon_x_w: weight of the within-domain image reconstruction (10, paper lambda_x).
        recon_s_w: weight of the style reconstruction (1, lambda_s).
        recon_c_w: weight of the content reconstruction (1, lambda_c).
        recon_x_cyc_w: weight of the explicit cycle reconstruction (0 for edges2shoes, 10 for Yosemite/SYNTHIA).
        vgg_w: weight of the domain-invariant perceptual loss (0; 1 for synthia2cityscape). Needs 3-channel domains.
        vgg_weights: VGG-16 weights for ``vgg_w > 0``: the official ``vgg16.weight`` file, torchvision's
            ``vgg16-397923af.pth``, ``"torchvision"`` (looked up via zoo.hub) or ``"random"`` (tests only).
        vgg_preprocess: ``auto`` (Caffe preprocessing for the official weights, ImageNet for torchvision's),
            ``caffe`` or ``imagenet``.
        lr: Adam learning rate (1e-4).
        beta1: Adam beta1 (0.5).
        beta2: Adam beta2 (0.999).
        weight_decay: Adam L2 weight decay (1e-4).
        init: generator initialisation ``kaiming`` (official), ``gaussian``, ``xavier``, ``orthogonal``, ``default``;
            the discriminators are always re-initialised ``gaussian`` afterwards, as officially.
        lr_policy: ``step`` (x``gamma`` every ``step_size`` iterations) or ``constant``.
        step_size: iterations between learning-rate decays (100000).
        gamma: learning-rate decay factor (0.5).
        diff_augment: DiffAugment policy for the discriminators' inputs, e.g. ``color,translation,cutout``, for
            small datasets (``None``: off; zoo addition, see ``TranslationMethod.use_diff_augment``).
        ema_decay: keep an exponential moving average of both generators (``None``: off); inference then uses it.
        channels_last: train in the channels-last memory format (same math): ``true``, ``false`` or ``"auto"``
            (default: channels-last on CUDA and on CPUs with AVX-512, NCHW on other CPUs).
        compile: compile the networks with ``torch.compile`` (``true``, or a mapping with ``mode``, ``dynamic``,
            ``fullgraph``, ``backend``; see :mod:`zoo.compile`). Models loaded from files start eager.
    """

    optimizer_steps_per_iteration = 2
    directions = ("a2b", "b2a")
    DOMAIN_CHANNELS = ("input_dim_a", "input_dim_b")
    PAPER_METRICS = ("fid", "kid", "diversity")  # LPIPS diversity of K styles per input
    #: a translation runs both auto-encoders (see :meth:`generator_for`), so no direction has a network of its own
    GENERATORS = {}
    SIZE_NETWORKS = ("gen_a", "gen_b")
    #: the EMA follows both auto-encoders
    ema_networks = ("gen_a", "gen_b")
    #: the official loop calls ``update_learning_rate`` before each iteration
    lr_step_point = "iteration_start"
    #: official network name -> attribute (``gen``/``dis`` files hold ``{'a': ..., 'b': ...}``).
    IMAGE_DISCRIMINATORS = ("dis_a", "dis_b")
    COMPILE_BY_PARTS = ("gen_a", "gen_b")  # run through methods other than forward
    OFFICIAL_NETWORKS = {"gen_a": "gen_a", "gen_b": "gen_b", "dis_a": "dis_a", "dis_b": "dis_b"}
    #: zoo loss name -> official trainer attribute ``loss_<name>`` (the same names).
    OFFICIAL_LOSS_NAMES = {n: n for n in (
        "dis_a", "dis_b", "dis_total", "gen_adv_a", "gen_adv_b", "gen_recon_x_a", "gen_recon_x_b", "gen_recon_s_a",
        "gen_recon_s_b", "gen_recon_c_a", "gen_recon_c_b", "gen_cycrecon_x_a", "gen_cycrecon_x_b", "gen_vgg_a",
        "gen_vgg_b", "gen_total")}

    def __init__(
        self,
        *,
        input_dim_a: int = 3,
        input_dim_b: int = 3,
        dim: int = 64,
        mlp_dim: int = 256,
        style_dim: int = 8,
        n_downsample: int = 2,
        n_res: int = 4,
        activ: Activation = "relu",
        pad_type: PadType = "reflect",
        dis_dim: int = 64,
        dis_norm: NormName = "none",
        dis_activ: Activation = "lrelu",
        n_layer: int = 4,
        gan_type: GanType = "lsgan",
        num_scales: int = 3,
        dis_pad_type: PadType = "reflect",
        gan_w: float = 1.0,
        recon_x_w: float = 10.0,
        recon_s_w: float = 1.0,
        recon_c_w: float = 1.0,
        recon_x_cyc_w: float = 0.0,
        vgg_w: float = 0.0,
        vgg_weights: str | None = None,
        vgg_preprocess: Literal["auto", "caffe", "imagenet"] = "auto",
        lr: float = 1e-4,
        beta1: float = 0.5,
        beta2: float = 0.999,
        weight_decay: float = 1e-4,
        init: InitName = "kaiming",
        lr_policy: Literal["step", "constant"] = "step",
        step_size: int = 100000,
        gamma: float = 0.5,
        ema_decay: float | None = None,
        diff_augment: str | None = None,
        channels_last: ChannelsLast = "auto",
        compile: CompileSetting = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if vgg_w > 0 and (input_dim_a != 3 or input_dim_b != 3):
            raise ValueError(f"vgg_w > 0 needs 3-channel domains (got input_dim_a={input_dim_a}, "
                             f"input_dim_b={input_dim_b}); set vgg_w=0")
        if vgg_w > 0 and vgg_weights is None:
            raise ValueError("vgg_w > 0 needs vgg_weights: the official vgg16.weight file, torchvision's "
                             "vgg16-397923af.pth, 'torchvision' (via $ZOO_WEIGHTS_DIR / the zoo cache) or 'random'")
        gen = dict(dim=dim, style_dim=style_dim, n_downsample=n_downsample, n_res=n_res, activ=activ,
                   pad_type=pad_type, mlp_dim=mlp_dim)
        dis = dict(dim=dis_dim, norm=dis_norm, activ=dis_activ, n_layer=n_layer, gan_type=gan_type,
                   num_scales=num_scales, pad_type=dis_pad_type)
        self.gen_a = AdaINGen(input_dim_a, **gen)
        self.gen_b = AdaINGen(input_dim_b, **gen)
        self.dis_a = MsImageDis(input_dim_a, **dis)
        self.dis_b = MsImageDis(input_dim_b, **dis)
        for net in (self.gen_a, self.gen_b, self.dis_a, self.dis_b):  # the official trainer.apply(weights_init(init))
            net.apply(weights_init(init))
        for net in (self.dis_a, self.dis_b):
            net.apply(weights_init("gaussian"))
        self._perceptual: list[nn.Module] = []  # built on first use, kept out of the state dict
        self.build_ema(ema_decay)
        self.use_diff_augment(diff_augment)
        self.use_compile(compile)

    # ---------------------------------------------------------------- inference

    @property
    def style_dim(self) -> int:
        """Length of the style codes (``style_dim``), drawn from N(0, I)."""
        return self.hparams.style_dim

    def generator_for(self, direction: str = "a2b", *, use_ema: bool = True) -> nn.ModuleDict:
        """Both auto-encoders (``gen_a``, ``gen_b``; their EMA copies when kept and ``use_ema``): a translation
        encodes with the source domain's and decodes (and encodes reference styles) with the target domain's."""
        self.check_direction(direction)
        if use_ema and self.ema is not None:
            return nn.ModuleDict({name: self.ema[name].module for name in self.ema_networks})
        return nn.ModuleDict({"gen_a": self.gen_a, "gen_b": self.gen_b})

    def _generator(self, domain: str) -> AdaINGen:
        if domain not in ("a", "b"):
            raise ValueError(f"domain must be 'a' or 'b', got {domain!r}")
        return self.generator_for("a2b")[f"gen_{domain}"]

    def forward(self, x: Tensor, style: Tensor | None = None, *, generator: torch.Generator | None = None) -> Tensor:
        """A -> B in model space: (B, input_dim_a, H, W) in [-1, 1] -> (B, input_dim_b, H, W) in [-1, 1].

        ``style``: (style_dim,), (1, style_dim) or (B, style_dim) codes (a trailing (1, 1) is accepted); drawn from
        N(0, I) (with ``generator``, on the CPU) when omitted.
        """
        batch = x.shape[0]
        if style is None:
            style = torch.randn(batch, self.hparams.style_dim, generator=generator)
        codes = self._style_matrix(style, batch, 1).to(x.device, next(self.gen_b.parameters()).dtype)
        return self.gen_b.decode(self.gen_a.enc_content(x), codes.expand(batch, -1).reshape(batch, -1, 1, 1))

    @torch.inference_mode()
    def encode(self, images: Tensor, *, domain: str) -> tuple[Tensor, Tensor]:
        """Content and style codes of model-space images of ``domain`` (``"a"`` or ``"b"``).

        Args:
            images: (B, C_domain, H, W) in [-1, 1], sides multiples of ``size_multiple``.

        Returns:
            content (B, dim * 2**n_downsample, H / 2**n_downsample, W / 2**n_downsample) and style (B, style_dim).
        """
        gen = self._generator(domain)
        check_images(images, gen.enc_content.model[0].conv.in_channels, self.size_multiple, value_range=(-1.0, 1.0))
        images = images.to(self.device, next(gen.parameters()).dtype)
        content, style = gen.encode(images)
        return content, style.flatten(1)

    @torch.inference_mode()
    def decode(self, content: Tensor, style: Tensor, *, domain: str) -> Tensor:
        """Model-space images of ``domain`` from content (B, C, h, w) and style (B, style_dim[, 1, 1]) or (style_dim,)
        codes; returns (B, C_domain, h * 2**n_downsample, w * 2**n_downsample) in [-1, 1]."""
        gen = self._generator(domain)
        dtype = next(gen.parameters()).dtype
        content = content.to(self.device, dtype)
        codes = self._style_matrix(style, content.shape[0], 1).to(self.device, dtype)
        return gen.decode(content, codes.expand(content.shape[0], -1).reshape(content.shape[0], -1, 1, 1))

    def _style_matrix(self, style: Tensor, batch: int, num_styles: int) -> Tensor:
        """Validate user style codes and return them as (N, style_dim)."""
        d = self.hparams.style_dim
        if style.dim() == 1:
            style = style.unsqueeze(0)
        elif style.dim() == 4 and style.shape[2:] == (1, 1):
            style = style.flatten(1)
        if style.dim() != 2 or style.shape[1] != d:
            raise ValueError(f"style codes must have shape (style_dim,), (N, style_dim) or (N, style_dim, 1, 1) with "
                             f"style_dim={d}; got {tuple(style.shape)}")
        n = style.shape[0]
        if num_styles == 1 and n not in (1, batch):
            raise ValueError(f"got {n} style codes for a batch of {batch} images: give 1 (shared), {batch} (one per "
                             f"image) or pass num_styles={n} to apply each code to every image")
        if num_styles > 1 and n != num_styles:
            raise ValueError(f"num_styles={num_styles} needs style codes of shape ({num_styles}, {d}); got "
                             f"{tuple(style.shape)}")
        return style

    def export_module(self, direction: str = "a2b") -> InferenceModule:
        """``translate`` with given style codes as a traceable module (``zoo export``): images and ``style`` in."""
        nets = self.generator_for(self.check_direction(direction))
        source, target = ("gen_a", "gen_b") if direction == "a2b" else ("gen_b", "gen_a")
        what = type(self).__name__
        return MUNITInference(frozen_copy(nets[source], train_mode=False, what=what),
                              frozen_copy(nets[target], train_mode=False, what=what), self.style_dim)

    @torch.inference_mode()
    def translate(self, images: Tensor, *, direction: str = "a2b", style: Tensor | None = None, num_styles: int = 1,
                  reference: Tensor | None = None, seed: int | None = None) -> Tensor:
        """Translate a batch, with random, given or example-guided styles.

        Args:
            images: (B, C_in, H, W) in [0, 1]; H and W multiples of ``size_multiple``.
            direction: ``a2b`` or ``b2a``.
            style: style codes (style_dim,) or (1, style_dim) shared by the batch, (B, style_dim) one per image, or
                (K, style_dim) with ``num_styles=K``; a trailing (1, 1) is accepted.
            num_styles: K > 1 returns K translations per image; without ``style`` the K codes are drawn from the
                prior and shared by the batch (column k has the same style for every image).
            reference: (B or 1, C_out, H', W') images of the target domain in [0, 1]; their encoded styles are used
                (the official example-guided mode).
            seed: seeds the prior draws (a ``torch.Generator`` on the CPU); fresh randomness when ``None``.

        Returns:
            (B, C_out, H, W) in [0, 1], or (B, K, C_out, H, W) when ``num_styles=K > 1``.
        """
        self.check_direction(direction)
        if num_styles < 1:
            raise ValueError(f"num_styles must be >= 1, got {num_styles}")
        if style is not None and reference is not None:
            raise ValueError("give either style codes or reference images, not both")
        if reference is not None and num_styles != 1:
            raise ValueError("reference images give one style per image; num_styles must be 1 with reference")
        check_images(images, self.input_channels(direction), self.size_multiple)
        nets = self.generator_for(direction)
        src, dst = (nets["gen_a"], nets["gen_b"]) if direction == "a2b" else (nets["gen_b"], nets["gen_a"])
        param = next(src.parameters())
        x = to_model_range(images.to(param.device, param.dtype))
        batch = x.shape[0]
        content = src.enc_content(x)
        if reference is not None:
            if reference.dim() != 4 or reference.shape[1] != self.output_channels(direction):
                raise ValueError(f"reference images must be (B or 1, {self.output_channels(direction)}, H', W') in "
                                 f"[0, 1]; got {tuple(reference.shape)}")
            if reference.shape[0] not in (1, batch):
                raise ValueError(f"got {reference.shape[0]} reference images for a batch of {batch}: give 1 or {batch}")
            codes = dst.enc_style(to_model_range(reference.to(param.device, param.dtype))).flatten(1)
        elif style is not None:
            codes = self._style_matrix(style, batch, num_styles).to(param.device, param.dtype)
        else:
            generator = torch.Generator().manual_seed(seed) if seed is not None else None
            count = num_styles if num_styles > 1 else batch
            codes = torch.randn(count, self.hparams.style_dim, generator=generator).to(param.device, param.dtype)
        if num_styles == 1:
            codes = codes.expand(batch, -1).reshape(batch, -1, 1, 1)
            return to_unit_range(dst.decode(content, codes))
        outputs = [dst.decode(content, code.expand(batch, -1).reshape(batch, -1, 1, 1)) for code in codes]
        return to_unit_range(torch.stack(outputs, 1))

    # ---------------------------------------------------------------- training

    @property
    def loss_weights(self) -> dict[str, float]:
        """Weight of every loss term in the totals (official hyperparameter names in the docstring)."""
        h = self.hparams
        weights = {"dis_a": h.gan_w, "dis_b": h.gan_w, "gen_adv_a": h.gan_w, "gen_adv_b": h.gan_w}
        for d in ("a", "b"):
            weights.update({f"gen_recon_x_{d}": h.recon_x_w, f"gen_recon_s_{d}": h.recon_s_w,
                            f"gen_recon_c_{d}": h.recon_c_w, f"gen_cycrecon_x_{d}": h.recon_x_cyc_w,
                            f"gen_vgg_{d}": h.vgg_w})
        return weights

    def perceptual(self) -> nn.Module:
        """The frozen VGG-16 perceptual loss (built on first call; ``vgg_w > 0`` only)."""
        from zoo.losses.perceptual import PerceptualLoss

        h = self.hparams
        if not self._perceptual:
            if h.vgg_weights == "random":  # tests: a fixed random network that leaves the global RNG untouched
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(0)
                    loss = PerceptualLoss(None, preprocess=h.vgg_preprocess)
            else:
                loss = PerceptualLoss(h.vgg_weights, preprocess=h.vgg_preprocess)
            self._perceptual.append(loss)
        param = next(self.gen_a.parameters())
        loss = self._perceptual[0]
        if next(loss.parameters()).device != param.device or next(loss.parameters()).dtype != param.dtype:
            loss.to(param.device, param.dtype)
        return loss

    def _draw_style(self, like: Tensor) -> Tensor:
        param = next(self.gen_a.parameters())
        return torch.randn(like.shape[0], self.hparams.style_dim, 1, 1, device=like.device, dtype=param.dtype)

    def _decode_pair(self, gen: AdaINGen, contents: tuple[Tensor, Tensor], styles: tuple[Tensor, Tensor]
                     ) -> tuple[Tensor, Tensor]:
        """Two decodes by one network as one batch (every decoder layer is per-sample), separately if shapes differ."""
        if contents[0].shape[1:] == contents[1].shape[1:]:
            out = gen.decode(torch.cat(contents), torch.cat(styles))
            return out[:contents[0].shape[0]], out[contents[0].shape[0]:]
        return gen.decode(contents[0], styles[0]), gen.decode(contents[1], styles[1])

    def optimization_step(self, real_a: Tensor, real_b: Tensor, opt_gen: Any, opt_dis: Any, *,
                          style_codes: Sequence[Tensor] | None = None) -> StepOutput:
        """One official iteration after the scheduler step: ``dis_update`` then ``gen_update``.

        Works with plain ``torch.optim`` optimizers (no Trainer) and with Lightning's wrapped ones. The learning-rate
        schedulers are stepped before this by :meth:`update_learning_rate` (``training_step`` does both).

        Args:
            real_a: (B, input_dim_a, H, W) in [-1, 1].
            real_b: (B, input_dim_b, H, W) in [-1, 1].
            opt_gen: optimizer over both generators.
            opt_dis: optimizer over both discriminators.
            style_codes: optional injected random style codes, in the official draw order: s_a and s_b of the
                discriminator update, then s_a and s_b of the generator update, each (B, style_dim, 1, 1).

        Returns:
            Unweighted loss terms named as the official ``loss_*`` attributes, the weighted ``dis_total`` and
            ``gen_total``, and the images of both updates (``dis_x_ba``, ``dis_x_ab``, ``x_a_recon``, ``x_b_recon``,
            ``x_ba``, ``x_ab``, and ``x_aba``/``x_bab`` when ``recon_x_cyc_w > 0``).
        """
        h = self.hparams
        iteration, epoch = iteration_index(self)
        if style_codes is not None and len(style_codes) != 4:
            raise ValueError("style_codes must hold 4 tensors (dis s_a, dis s_b, gen s_a, gen s_b), "
                             f"got {len(style_codes)}")
        codes = iter(style_codes) if style_codes is not None else None

        def draw(like: Tensor) -> Tensor:
            return next(codes) if codes is not None else self._draw_style(like)

        images: dict[str, Tensor] = {}
        # ------------------------------------------------------------ dis_update
        s_a, s_b = draw(real_a), draw(real_b)
        # The content codes are reused by gen_update: the generators do not change in between.
        c_a, c_b = self.gen_a.enc_content(real_a), self.gen_b.enc_content(real_b)
        with torch.no_grad():
            x_ba = self.gen_a.decode(c_b.detach(), s_a)
            x_ab = self.gen_b.decode(c_a.detach(), s_b)
        images["dis_x_ba"], images["dis_x_ab"] = x_ba, x_ab
        opt_dis.zero_grad()
        losses: dict[str, Tensor] = {"dis_a": self.dis_a.calc_dis_loss(x_ba, real_a),
                                     "dis_b": self.dis_b.calc_dis_loss(x_ab, real_b)}
        losses["dis_total"] = h.gan_w * losses["dis_a"] + h.gan_w * losses["dis_b"]
        check_finite({k: losses[k] for k in ("dis_a", "dis_b")}, iteration=iteration, epoch=epoch)
        backward(self, losses["dis_total"], opt_dis)
        opt_dis.step()

        # ------------------------------------------------------------ gen_update
        discriminators = (self.dis_a, self.dis_b)
        set_requires_grad(discriminators, False)
        try:
            opt_gen.zero_grad()
            s_a, s_b = draw(real_a), draw(real_b)
            s_a_prime, s_b_prime = self.gen_a.enc_style(real_a), self.gen_b.enc_style(real_b)
            x_a_recon, x_ba = self._decode_pair(self.gen_a, (c_a, c_b), (s_a_prime, s_a))
            x_b_recon, x_ab = self._decode_pair(self.gen_b, (c_b, c_a), (s_b_prime, s_b))
            c_b_recon, s_a_recon = self.gen_a.encode(x_ba)
            c_a_recon, s_b_recon = self.gen_b.encode(x_ab)
            images.update(x_a_recon=x_a_recon, x_b_recon=x_b_recon, x_ba=x_ba, x_ab=x_ab)
            terms = {"gen_recon_x_a": _l1(x_a_recon, real_a), "gen_recon_x_b": _l1(x_b_recon, real_b),
                     "gen_recon_s_a": _l1(s_a_recon, s_a), "gen_recon_s_b": _l1(s_b_recon, s_b),
                     "gen_recon_c_a": _l1(c_a_recon, c_a), "gen_recon_c_b": _l1(c_b_recon, c_b)}
            if h.recon_x_cyc_w > 0:
                images["x_aba"] = self.gen_a.decode(c_a_recon, s_a_prime)
                images["x_bab"] = self.gen_b.decode(c_b_recon, s_b_prime)
                terms["gen_cycrecon_x_a"] = _l1(images["x_aba"], real_a)
                terms["gen_cycrecon_x_b"] = _l1(images["x_bab"], real_b)
            terms["gen_adv_a"] = self.dis_a.calc_gen_loss(x_ba)
            terms["gen_adv_b"] = self.dis_b.calc_gen_loss(x_ab)
            if h.vgg_w > 0:
                vgg = self.perceptual()
                terms["gen_vgg_a"] = vgg(x_ba, real_b)
                terms["gen_vgg_b"] = vgg(x_ab, real_a)
            check_finite(terms, iteration=iteration, epoch=epoch)
            weights = self.loss_weights
            order = ("gen_adv_a", "gen_adv_b", "gen_recon_x_a", "gen_recon_s_a", "gen_recon_c_a", "gen_recon_x_b",
                     "gen_recon_s_b", "gen_recon_c_b", "gen_cycrecon_x_a", "gen_cycrecon_x_b", "gen_vgg_a",
                     "gen_vgg_b")
            total = sum(weights[k] * terms[k] for k in order if k in terms)
            backward(self, total, opt_gen)
            opt_gen.step()
        finally:
            set_requires_grad(discriminators, True)
        self.update_ema()
        losses.update(terms)
        losses["gen_total"] = total
        return StepOutput({k: v.detach() for k, v in losses.items()}, {k: v.detach() for k, v in images.items()})

    def update_learning_rate(self, schedulers: Sequence[Any] | None = None) -> None:
        """Step the learning-rate schedulers (discriminator first), as the official loop does before each iteration.

        Args:
            schedulers: the schedulers of :meth:`configure_optimizers` (scheduler objects or Lightning config dicts);
                the Trainer's when omitted.
        """
        schedulers = self.scheduler_list() if schedulers is None else schedulers
        items = [s["scheduler"] if isinstance(s, dict) else s for s in schedulers]
        with warnings.catch_warnings():  # the official loop steps the schedule before the first optimizer step
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step\\(\\)`")
            for scheduler in reversed(items):  # configure_optimizers lists (gen, dis); official order is dis, gen
                scheduler.step()

    def step_schedulers(self) -> None:
        """The official order, discriminator first (:meth:`update_learning_rate`)."""
        self.update_learning_rate()

    def validation_metrics(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Within-domain reconstruction error (model space) of both live auto-encoders."""
        real_a, real_b = batch["real_a"], batch["real_b"]
        return {"recon_x_a": _l1(self.gen_a(real_a), real_a), "recon_x_b": _l1(self.gen_b(real_b), real_b)}

    def configure_optimizers(self):
        """Adam over both generators and over both discriminators; StepLR per optimizer for ``lr_policy="step"``."""
        h = self.hparams
        kwargs = dict(lr=h.lr, betas=(h.beta1, h.beta2), weight_decay=h.weight_decay)
        opt_gen = adam([p for p in chain(self.gen_a.parameters(), self.gen_b.parameters()) if p.requires_grad],
                       **kwargs)
        opt_dis = adam([p for p in chain(self.dis_a.parameters(), self.dis_b.parameters()) if p.requires_grad],
                       **kwargs)
        if h.lr_policy == "constant":
            return [opt_gen, opt_dis], []
        schedulers = [{"scheduler": torch.optim.lr_scheduler.StepLR(opt, step_size=h.step_size, gamma=h.gamma),
                       "interval": "step"} for opt in (opt_gen, opt_dis)]
        return [opt_gen, opt_dis], schedulers

    # ---------------------------------------------------------------- official checkpoints

    @classmethod
    def init_args_from_official(cls, config: dict[str, Any] | str | Path) -> dict[str, Any]:
        """zoo constructor arguments from an official MUNIT YAML config (a dict or a file path).

        Data, logging and snapshot keys are ignored; ``vgg_model_path`` becomes ``vgg_weights`` pointing at the
        ``models/vgg16.weight`` file the official ``load_vgg16`` writes there.
        """
        if not isinstance(config, dict):
            import yaml

            config = yaml.safe_load(Path(config).read_text())
        args: dict[str, Any] = {k: config[k] for k in _OFFICIAL_TOP if k in config}
        args.setdefault("lr_policy", "constant")  # the official get_scheduler: no lr_policy -> no scheduler
        for official, ours in _OFFICIAL_GEN.items():
            if official in config.get("gen", {}):
                args[ours] = config["gen"][official]
        for official, ours in _OFFICIAL_DIS.items():
            if official in config.get("dis", {}):
                args[ours] = config["dis"][official]
        if config.get("vgg_w", 0) > 0 and "vgg_model_path" in config:
            args["vgg_weights"] = str(Path(config["vgg_model_path"]) / "models" / "vgg16.weight")
        return args

    def _official_targets(self, net: str) -> dict[str, str]:
        """{official file key ('' for a single network, 'a'/'b' for a two-domain file): attribute}."""
        if net in self.OFFICIAL_NETWORKS:
            return {"": self.OFFICIAL_NETWORKS[net]}
        if net in ("gen", "dis"):
            return {"a": f"{net}_a", "b": f"{net}_b"}
        raise ValueError(f"net must be 'gen', 'dis' (gen_*.pt / dis_*.pt files with keys 'a' and 'b') or one of "
                         f"{sorted(self.OFFICIAL_NETWORKS)}; got {net!r}")

    def _converted_official_networks(self, state_dict: dict[str, Any], net: str) -> Iterator[tuple[str, dict]]:
        """``(attribute, its state dict in zoo's layout)`` for each network an official file of ``net`` holds."""
        for key, attr in self._official_targets(net).items():
            if key and key not in state_dict:
                raise KeyError(f"an official {net}_*.pt file holds keys 'a' and 'b'; got {sorted(state_dict)}")
            yield attr, convert_official_state_dict(state_dict[key] if key else state_dict, getattr(self, attr))

    def convert_official_state_dict(self, state_dict: dict[str, Any], *, net: str = "gen") -> dict[str, Tensor]:
        """An official state dict -> keys of this module (``gen_a.enc_style.model.0.conv.weight`` ...).

        Args:
            state_dict: the content of an official ``gen_<iter>.pt`` / ``dis_<iter>.pt`` (``{'a': ..., 'b': ...}``)
                for ``net="gen"`` / ``"dis"``, or one network's state dict for ``gen_a``, ``gen_b``, ``dis_a``,
                ``dis_b``.
            net: which network(s) the file holds.
        """
        return {f"{attr}.{key}": value for attr, converted in self._converted_official_networks(state_dict, net)
                for key, value in converted.items()}

    def load_official_weights(self, state_dict: dict[str, Any], *, net: str = "gen") -> None:
        """Load official weights (strict: every key used once, shapes checked); EMA copies follow."""
        for attr, converted in self._converted_official_networks(state_dict, net):
            getattr(self, attr).load_state_dict(converted, strict=True)
            if self.ema is not None and attr in self.ema:
                self.ema[attr].module.load_state_dict(converted, strict=True)

    def official_state_dict(self, net: str = "gen") -> dict[str, Any]:
        """Weights in the official layout: ``{'a': ..., 'b': ...}`` for ``gen``/``dis``, else one network's."""
        targets = self._official_targets(net)
        if "" in targets:
            return to_official_state_dict(getattr(self, targets[""]))
        return {key: to_official_state_dict(getattr(self, attr)) for key, attr in targets.items()}


# --------------------------------------------------------------------------------------------------------------------
# Published official weights
# --------------------------------------------------------------------------------------------------------------------

register_pretrained("munit.edges2shoes", PretrainedEntry(
    method="munit",
    init_args={"input_dim_a": 3, "input_dim_b": 3, "dim": 64, "mlp_dim": 256, "style_dim": 8, "n_downsample": 2,
               "n_res": 4, "activ": "relu", "pad_type": "reflect"},
    url=None,  # a Google Drive folder (USAGE.md); no direct link
    filename="edges2shoes.pt",
    format="official",
    official_net="gen",
    origin="https://github.com/NVlabs/MUNIT (USAGE.md: pretrained edges2shoes model, Google Drive)",
    default=True,
    notes="Generators only (keys 'a' = edges, 'b' = shoes). Download edges2shoes.pt from the Google Drive folder "
          "linked in the official USAGE.md and put it in $ZOO_WEIGHTS_DIR; PyTorch-0.3 instance-norm statistics in "
          "the file are dropped on load.",
))
