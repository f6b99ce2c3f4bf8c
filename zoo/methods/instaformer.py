"""InstaFormer: instance-aware image-to-image translation with a transformer.

Paper: Kim, Baek, Park, Lee, Kim, "InstaFormer: Instance-Aware Image-to-Image Translation with Transformer",
CVPR 2022 (arXiv 2203.16248). Official code: https://github.com/cvlab-kaist/InstaFormer (MIT licence, stated on its
gh-pages branch); networks, losses and update order reproduced, proven by the parity tests against fixtures of
commit 47e7c07.

A content encoder (CNN) maps the source image to features; a conv stem turns them into patch tokens and, for each
box ``[label, x1, y1, x2, y2]`` (normalised), RoIAlign features of the box into one instance token; a transformer
whose pre-norms are AdaIN layers driven by a style code (a random ``N(0, I)`` code, or a reference image's code
from the style encoder, through an MLP) lets objects and scene exchange context; the decoder turns the patch tokens
back into an image. Training (one official ``train.py`` iteration per :meth:`InstaFormer.optimization_step`):

1. forward ``A -> B`` with a random style and A's boxes (the real-A encoder taps 0, 4, 8 and box features are the
   NCE keys), and the reconstruction of ``B`` from its own content, style code and boxes;
2. D step: ``0.5 * (GAN(D(fake), 0) + GAN(D(B), 1))`` (LSGAN, CUT's anti-aliased PatchGAN with batch norm);
3. G and MLP-head step against the updated D: ``w_GAN * GAN(D(fake), 1) + w_Recon * L1(recon, B)
   + w_Style * L1(E_s(recon), E_s(B)) + w_NCE * PatchNCE(taps of fake vs taps of A)
   + w_Instance_NCE * PatchNCE(box features of fake vs of A, valid boxes only, 64 patches each)``.

Faithful to the official implementation (all checked by ``tests/parity/test_instaformer.py``):

* Module trees and keys of the eight official networks (``ContentEncoder``, ``StyleEncoder``, ``Transformer``,
  ``MLP_Adain``, ``Decoder``, ``Discrim``, ``MLP_head``, ``MLP_head_inst``); PyTorch's default initialisation for G
  and D, xavier-normal (gain 0.02) for the MLP heads.
* Official quirks kept: every AdaIN layer gets the *same* (mean, std) from the MLP (``assign_adain_params`` only
  moves on when the MLP output is wider than 2C, see :func:`zoo.nets.instaformer.split_adain_params`); padded boxes
  still become tokens (zero RoI features, ``box_embed`` bias, positional code at a wrapped index) that take part in
  attention and AdaIN statistics; the decoder's box branch decodes every box token but no loss uses it (returned as
  ``fake_box``, computed without a graph); the style loss does not detach the target style code; D stays in train
  mode (batch statistics, running statistics updated on every call) while frozen in the G step; the MLP heads'
  Adam has PyTorch's default betas (0.9, 0.999) while G and D use (0.5, 0.999); no learning-rate schedule (the
  official StepLR is commented out); the NCE taps are the padded input and the two conv outputs before their
  instance norm; keys come from real A, queries from the fake; instance NCE uses the valid boxes only (its batch is
  their count) and is 0 when there is none; a loss term whose weight is 0 is not computed.
* Random draws as officially: the style code ``torch.randn(B, 8, 1, 1)``, the patch ids ``torch.randperm``.

Official bugs fixed (listed in the fixtures' manifest):

* Resume: the official ``train.py`` loads ``adam_g.pth`` into both G's and D's optimizer, saves every optimizer as
  ``adam_G.pth`` (so the states overwrite one another) and never reloads the MLP heads (a resumed run crashes with a
  ``NameError``). zoo's checkpoints hold every network, the heads included, and each optimizer's own state.
* The MLP heads' lazy ``create_mlp`` (called without its ``device`` argument in the lazy path, and on ``cuda:0``
  only) is replaced by heads built at construction from the known channel counts (same architecture and
  initialisation; they exist before the optimizers, in checkpoints and under DDP from the start).
* ``GANLoss('nonsaturating')`` raises ``NameError`` officially; here it is the softplus loss.
* The default config's ``load_optim: True`` (a crash on a fresh run) has no counterpart; official
  ``weights_<epoch>/<Net>.pth`` files (saved from ``nn.DataParallel``, keys prefixed ``module.``) load through
  :meth:`InstaFormer.load_official_weights` / :meth:`InstaFormer.load_official_checkpoint`.

Deliberate deviations:

* PatchNCE groups negatives by the actual batch size (officially the configured one, different on a last partial
  batch).
* The decoder's box branch, which never receives a gradient officially, is left out of G's optimizer (the same
  updates; it lets every optimized parameter train).
* Inference: the networks take one size only (the stem asserts a square ``img_size`` feature map, ``4 * img_size``
  pixels). ``translate`` accepts any size and resizes to that square side (bilinear, antialiased) and back; boxes are
  normalised, so they need no change. Without boxes inference takes the official no-box path (patch tokens only);
  given boxes are padded with -1 rows to ``num_box``, as in training.
* Batches without ``box_a``/``box_b`` train with all-padded boxes (no instance NCE, as officially with no valid
  box).
* The official repository has no data package and no ``test.py``: the box format is inferred from the code (rows
  ``[label, x1, y1, x2, y2]`` in [0, 1], padded rows -1 up to ``num_box``).

Config: ``configs/instaformer.yaml`` (INIT sunny -> night, 352x352), ``configs/tiny/instaformer.yaml``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from zoo.compile import CompileSetting
from zoo.losses import GANMode, check_finite, gan_loss
from zoo.methods._common import (
    StepOutput,
    adam,
    backward,
    check_images,
    discriminator_losses,
    iteration_index,
    set_requires_grad,
    to_memory_format,
    to_model_range,
    to_unit_range,
)
from zoo.methods._inference import InferenceModule, frozen_copy
from zoo.methods.base import ChannelsLast, TranslationMethod
from zoo.nets.cut import PatchSampleF, build_cut_discriminator
from zoo.nets.init import init_weights
from zoo.nets.instaformer import (
    InstaFormerGenerator,
    compute_nce_loss,
    extract_box_features,
    instance_nce_loss,
    pad_boxes,
)
from zoo.registry import register_method

__all__ = ["InstaFormer", "InstaFormerInference", "resize_images"]

#: official network name (``weights_<epoch>/<name>.pth``) -> module path in :class:`InstaFormer`
OFFICIAL_MODULES = {
    "ContentEncoder": "generator.content_encoder",
    "StyleEncoder": "generator.style_encoder",
    "Transformer": "generator.transformer",
    "MLP_Adain": "generator.mlp_adain",
    "Decoder": "generator.decoder",
    "Discrim": "discriminator",
    "MLP_head": "mlp_head",
    "MLP_head_inst": "mlp_head_inst",
}

#: official config key (``config/base_train.yaml``) -> zoo constructor argument
OFFICIAL_OPTIONS = {"lr": "lr", "beta1": "beta1", "beta2": "beta2", "w_GAN": "w_gan", "w_Recon": "w_recon",
                    "w_Style": "w_style", "w_NCE": "w_nce", "w_Instance_NCE": "w_instance_nce",
                    "feat_layers": "feat_layers", "num_patches": "num_patches", "num_box": "num_box"}

#: zoo loss name -> official name (``G_losses`` / ``D_losses`` of ``loss.py``)
OFFICIAL_LOSS_NAMES = {"g_gan": "GAN_loss", "g_recon": "recon_loss", "g_style": "style_loss", "g_nce": "NCE_loss",
                       "g_inst_nce": "instNCE_loss", "g_total": "total_G_loss"}


def resize_images(images: Tensor, size: int | tuple[int, int]) -> Tensor:
    """Bilinear resize of (B, C, H, W) to ``size`` (antialiased when shrinking); unchanged when already that size."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    if tuple(images.shape[-2:]) == size:
        return images
    shrinking = size[0] < images.shape[-2] or size[1] < images.shape[-1]
    return F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=shrinking)


def _l1(a: Tensor, b: Tensor) -> Tensor:
    """Mean absolute difference, reduced in at least float32."""
    return F.l1_loss(a.float(), b.float())


class InstaFormerInference(InferenceModule):
    """InstaFormer's ``translate`` without boxes as a traceable module: images resized to the network's side,
    translated with the given style codes, resized back.

    Shape: images (B, C, H, W) in [0, 1], style (B, style_dim) -> (B, C, H, W) in [0, 1].
    """

    input_names = ("images", "style")

    def __init__(self, generator: InstaFormerGenerator) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, images: Tensor, style: Tensor) -> Tensor:
        size = images.shape[-2:]
        x = to_model_range(resize_images(images, self.generator.image_size))
        out = self.generator(x, style.reshape(style.shape[0], -1, 1, 1))
        return to_unit_range(resize_images(out, (int(size[0]), int(size[1]))))

    def example_extras(self, images: Tensor, *, generator: torch.Generator | None = None) -> tuple[Tensor, ...]:
        return (torch.randn(images.shape[0], self.generator.style_dim, generator=generator),)


@register_method("instaformer")
class InstaFormer(TranslationMethod):
    """InstaFormer (Kim et al., CVPR 2022) with the official networks, objective and update order.

    Defaults are the official ones (``config/base_train.yaml`` and the constructors of ``initialize.py``).

    Args:
        input_nc: channels of domain A images.
        output_nc: channels of domain B images (must equal ``input_nc``: one content encoder reads both domains).
        ngf: encoder/decoder base width (64; the content features have ``4 * ngf`` channels, official ``feat_C``).
        n_downsampling: encoder down-sampling steps (2).
        img_size: side of the content feature map the transformer takes, i.e. the image side / 4 (88 for the
            paper's 352x352 images). The networks take square images of side ``4 * img_size`` only.
        embed_c: token width (official ``embed_C``, 1024).
        depth: transformer blocks (6).
        heads: attention heads (4; each ``4 * ngf`` wide, official ``dim_head = feat_C``).
        mlp_dim: feed-forward width of the transformer (4096).
        style_dim: style code length (8).
        adain_dim: hidden width of the style MLP (256).
        adain_params: output width of the style MLP (default ``2 * embed_c``, the official one: every AdaIN layer gets
            the same parameters; wider outputs are split, see :func:`zoo.nets.instaformer.split_adain_params`).
        stem_channels: outputs of the first two convolutions of the aggregator's two conv stems (default
            ``embed_c // 2``; the parity fixtures, whose tiny ``embed_C`` equals ``feat_C``, cannot tell it from
            ``4 * ngf // 2``: set that if an official checkpoint's ``patch_embed.proj.0`` has that width).
        ndf: discriminator base width (64).
        n_layers_d: discriminator depth (3).
        gan_mode: adversarial loss (``lsgan`` officially; ``vanilla``, ``wgangp`` without penalty, as the official
            ``GANLoss``; ``nonsaturating``).
        w_gan, w_recon, w_style, w_nce, w_instance_nce: loss weights (1, 10, 10, 2, 2).
        feat_layers: content-encoder layers of the PatchNCE taps (0, 4, 8).
        num_patches: patches per tap in PatchNCE (256).
        nce_t: PatchNCE temperature (0.07).
        nc_patch: width of the PatchNCE MLP head (256).
        nc_inst: width of the instance-NCE MLP head (64).
        num_box: boxes per image (20); shorter box lists are padded with -1 rows to it.
        lr: Adam learning rate of G, D and the MLP heads (2e-4).
        beta1, beta2: Adam betas of G and D (0.5, 0.999).
        beta1_f, beta2_f: Adam betas of the MLP heads (PyTorch's defaults 0.9, 0.999, as officially).
        ema_decay: keep an exponential moving average of the generator (``None``: off).
        diff_augment: DiffAugment policy for the discriminator's inputs (``None``: off).
        channels_last: train in the channels-last memory format.
        compile: compile the networks with ``torch.compile`` (see :mod:`zoo.compile`).
    """

    optimizer_steps_per_iteration = 3
    directions = ("a2b",)
    GENERATORS = {"a2b": "generator"}
    IMAGE_DISCRIMINATORS = ("discriminator",)
    COMPILE_BY_PARTS = ("generator",)
    PAPER_METRICS = ("fid", "kid")  # the paper's CIS/IS need classifiers trained on INIT; FID/KID as later work
    OFFICIAL_NETWORKS = OFFICIAL_MODULES
    OFFICIAL_LOSS_NAMES = OFFICIAL_LOSS_NAMES

    def __init__(self, *, input_nc: int = 3, output_nc: int = 3, ngf: int = 64, n_downsampling: int = 2,
                 img_size: int = 88, embed_c: int = 1024, depth: int = 6, heads: int = 4, mlp_dim: int = 4096,
                 style_dim: int = 8, adain_dim: int = 256, adain_params: int | None = None,
                 stem_channels: int | None = None, ndf: int = 64,
                 n_layers_d: int = 3, gan_mode: GANMode = "lsgan", w_gan: float = 1.0, w_recon: float = 10.0,
                 w_style: float = 10.0, w_nce: float = 2.0, w_instance_nce: float = 2.0,
                 feat_layers: Sequence[int] = (0, 4, 8), num_patches: int = 256, nce_t: float = 0.07,
                 nc_patch: int = 256, nc_inst: int = 64, num_box: int = 20, lr: float = 2e-4, beta1: float = 0.5,
                 beta2: float = 0.999, beta1_f: float = 0.9, beta2_f: float = 0.999, ema_decay: float | None = None,
                 diff_augment: str | None = None, channels_last: ChannelsLast = False,
                 compile: CompileSetting = False) -> None:
        super().__init__()
        if input_nc != output_nc:
            raise ValueError(f"InstaFormer encodes both domains with one content encoder: input_nc ({input_nc}) must "
                             f"equal output_nc ({output_nc})")
        if num_box < 1:
            raise ValueError(f"num_box must be >= 1, got {num_box}")
        self.save_hyperparameters()
        self.feat_layers = [int(i) for i in feat_layers]
        self.generator = InstaFormerGenerator(input_nc=input_nc, ngf=ngf, n_downsampling=n_downsampling,
                                              img_size=img_size, embed_c=embed_c, depth=depth, heads=heads,
                                              mlp_dim=mlp_dim, style_dim=style_dim, adain_dim=adain_dim,
                                              adain_params=adain_params, stem_channels=stem_channels)
        self.discriminator = build_cut_discriminator(input_nc=output_nc, ndf=ndf, netD="n_layers",
                                                     n_layers_D=n_layers_d, norm="batch", init_type=None)
        content = self.generator.content_encoder
        self.mlp_head = init_weights(PatchSampleF(content.feature_channels(self.feat_layers), nc=nc_patch),
                                     "xavier", 0.02)
        self.mlp_head_inst = init_weights(PatchSampleF([content.output_nc], nc=nc_inst), "xavier", 0.02)
        self.build_ema(ema_decay)
        self.use_diff_augment(diff_augment)
        self.use_compile(compile)

    # ---------------------------------------------------------------- inference

    @property
    def style_dim(self) -> int:
        """Length of the style codes (``style_dim``), drawn from N(0, I)."""
        return self.hparams.style_dim

    @property
    def image_size(self) -> int:
        """Side of the square images the networks take (``4 * img_size``); ``translate`` resizes to it."""
        return self.generator.image_size

    def _style_codes(self, style: Tensor, batch: int) -> Tensor:
        """User style codes (style_dim,), (1 or B, style_dim) or (1 or B, style_dim, 1, 1) -> (B, style_dim, 1, 1)."""
        d = self.hparams.style_dim
        codes = style.reshape(1, -1) if style.dim() == 1 else style.reshape(style.shape[0], -1)
        if codes.shape[1] != d or codes.shape[0] not in (1, batch) or style.dim() not in (1, 2, 4):
            raise ValueError(f"style codes must be (style_dim,), (1 or B, style_dim) or (1 or B, style_dim, 1, 1) "
                             f"with style_dim={d} and B={batch}; got {tuple(style.shape)}")
        return codes.expand(batch, -1).reshape(batch, d, 1, 1)

    def export_module(self, direction: str = "a2b") -> InferenceModule:
        """``translate`` without boxes, with given style codes, as a traceable module (``zoo export``)."""
        self.check_direction(direction)
        return InstaFormerInference(frozen_copy(self.generator_for(direction), train_mode=False,
                                                what=type(self).__name__))

    def forward(self, x: Tensor, style: Tensor | None = None, boxes: Tensor | None = None) -> Tensor:
        """A -> B in model space with the live generator: (B, C, H, W) in [-1, 1] -> (B, C, H, W) in [-1, 1]
        (resized to the networks' side and back); ``style`` codes as in :meth:`translate` (drawn from N(0, I) when
        omitted), ``boxes`` (B, n, 5) optional."""
        batch, size = x.shape[0], x.shape[-2:]
        net = self.generator
        if style is None:
            style = torch.randn(batch, self.hparams.style_dim, 1, 1)
        codes = self._style_codes(style, batch).to(x.device, x.dtype)
        boxes = None if boxes is None else pad_boxes(boxes, batch, self.hparams.num_box, like=x)
        out = net(resize_images(x, net.image_size), codes, boxes)
        return resize_images(out, (int(size[0]), int(size[1])))

    @torch.inference_mode()
    def translate(self, images: Tensor, *, direction: str = "a2b", seed: int | None = None,
                  style: Tensor | None = None, reference: Tensor | None = None,
                  boxes: Tensor | None = None) -> Tensor:
        """Translate a batch with a random, given or reference style, with or without instance boxes.

        Args:
            images: (B, C, H, W) in [0, 1], any size (resized to the networks' square side and back).
            direction: ``a2b`` only.
            seed: seeds the random style codes (a ``torch.Generator`` on the CPU); fresh randomness when ``None``.
            style: style codes (style_dim,) or (1 or B, style_dim[, 1, 1]) instead of random ones.
            reference: (1 or B, C, H', W') target-domain images in [0, 1] whose encoded styles are used.
            boxes: (B, n <= num_box, 5) rows ``[label, x1, y1, x2, y2]`` normalised to [0, 1], padded rows all -1:
                instance tokens join the patch tokens. ``None``: the official no-box inference.

        Returns:
            (B, C, H, W) in [0, 1].
        """
        self.check_direction(direction)
        check_images(images, self.input_channels(direction), 1)
        if style is not None and reference is not None:
            raise ValueError("give either style codes or reference images, not both")
        net = self.generator_for(direction)
        param = next(net.parameters())
        batch, size = images.shape[0], images.shape[-2:]
        x = to_model_range(resize_images(images.to(param.device, param.dtype), net.image_size))
        if reference is not None:
            if reference.dim() != 4 or reference.shape[1] != self.output_channels(direction) or \
                    reference.shape[0] not in (1, batch):
                raise ValueError(f"reference images must be (1 or {batch}, {self.output_channels(direction)}, H', W') "
                                 f"in [0, 1]; got {tuple(reference.shape)}")
            ref = to_model_range(resize_images(reference.to(param.device, param.dtype), net.image_size))
            codes = net.style_encoder(ref).expand(batch, -1, -1, -1)
        elif style is not None:
            codes = self._style_codes(style, batch).to(param.device, param.dtype)
        else:
            generator = torch.Generator().manual_seed(seed) if seed is not None else None
            codes = torch.randn(batch, self.hparams.style_dim, 1, 1, generator=generator).to(param.device,
                                                                                            param.dtype)
        if boxes is not None:
            boxes = pad_boxes(boxes, batch, self.hparams.num_box, like=x)
        out = net(x, codes, boxes)
        return to_unit_range(resize_images(out, (int(size[0]), int(size[1]))))

    # ---------------------------------------------------------------- training

    @property
    def loss_weights(self) -> dict[str, float]:
        h = self.hparams
        return {"g_gan": h.w_gan, "g_recon": h.w_recon, "g_style": h.w_style, "g_nce": h.w_nce,
                "g_inst_nce": h.w_instance_nce}

    def training_inputs(self, batch: dict[str, Any]) -> tuple[Any, ...]:
        """``(real_a, real_b, box_a, box_b)``: images (B, C, H, W) in [-1, 1] (channels-last when training uses it)
        and boxes (B, num_box, 5), None when the batch has none."""
        images = tuple(to_memory_format(batch[key], self.uses_channels_last) for key in ("real_a", "real_b"))
        return (*images, batch.get("box_a"), batch.get("box_b"))

    def example_inputs(self, batch_size: int, size: int | tuple[int, int], *,
                       generator: torch.Generator | None = None) -> tuple[Tensor, ...]:
        """Random ``(real_a, real_b, box_a, box_b)``: images uniform in [-1, 1], and per image up to two valid boxes
        (at least one) followed by padded rows, (B, num_box, 5)."""
        height, width = (size, size) if isinstance(size, int) else size
        channels = self.hparams.input_nc
        real_a = torch.rand(batch_size, channels, height, width, generator=generator) * 2 - 1
        real_b = torch.rand(batch_size, channels, height, width, generator=generator) * 2 - 1
        return real_a, real_b, self.random_boxes(batch_size, generator=generator), \
            self.random_boxes(batch_size, generator=generator)

    def random_boxes(self, batch_size: int, *, generator: torch.Generator | None = None) -> Tensor:
        """(B, num_box, 5) random boxes: per image 1 or 2 valid ones (label 0..9, sides 0.2..0.7), then padding."""
        n = self.hparams.num_box
        boxes = torch.full((batch_size, n, 5), -1.0)
        for b in range(batch_size):
            for i in range(min(n, 1 + int(torch.randint(2, (), generator=generator)))):
                side = 0.2 + 0.5 * torch.rand(2, generator=generator)
                corner = (1 - side) * torch.rand(2, generator=generator)
                label = torch.randint(10, (1,), generator=generator).float()
                boxes[b, i] = torch.cat([label, corner, corner + side])
        return boxes

    def padded_boxes(self, boxes: Tensor | None, images: Tensor) -> Tensor:
        """``boxes`` (B, n <= num_box, 5) padded with -1 rows to num_box (all padded when None)."""
        return pad_boxes(boxes, images.shape[0], self.hparams.num_box, like=images)

    def optimization_step(self, real_a: Tensor, real_b: Tensor, box_a: Tensor | None, box_b: Tensor | None,
                          opt_g: Any, opt_d: Any, opt_f: Any, *, draws: Mapping[str, Any] | None = None,
                          ) -> StepOutput:
        """One official ``train.py`` iteration: forward (translation and reconstruction), D step, then the G and
        MLP-head step against the updated D.

        Args:
            real_a: (B, C, S, S) source images in [-1, 1], S = ``image_size``.
            real_b: (B, C, S, S) target-domain images in [-1, 1].
            box_a, box_b: (B, n <= num_box, 5) boxes of each batch (rows ``[label, x1, y1, x2, y2]`` in [0, 1],
                padded rows -1), or None (all padded).
            opt_g, opt_d, opt_f: optimizers of the generator, the discriminator and the two MLP heads.
            draws: fixed random draws instead of sampling them (parity tests): ``style`` (B, style_dim, 1, 1),
                ``nce`` (per tap (P,) positions), ``inst_nce`` (one (64,) position list).

        Returns:
            Loss terms (``d_fake``, ``d_real``: halved; ``g_*`` weighted; ``g_total``) and the tensors computed on
            the way: ``fake_b``, ``recon_b``, ``fake_box`` (B * num_box, C, 32, 32) box-branch images of the
            translation (unused by the losses, as officially), ``style_b`` (B, style_dim, 1, 1) and ``box_feature_a``
            (B * num_box, 4 ngf, 8, 8).
        """
        h, draws = self.hparams, draws or {}
        iteration, epoch = iteration_index(self)
        gen, weights = self.generator, self.loss_weights
        box_a, box_b = self.padded_boxes(box_a, real_a), self.padded_boxes(box_b, real_b)
        batch = real_a.shape[0]

        # (1) official model_forward, I2I then RECON
        style = draws.get("style")
        if style is None:
            style = torch.randn(batch, h.style_dim, 1, 1, device=real_a.device, dtype=real_a.dtype)
        content_a, keys = gen.content_encoder(real_a, self.feat_layers)
        box_feature_a = extract_box_features(content_a, box_a)
        patch_tokens, box_tokens = gen.aggregate(content_a, style.to(real_a), box_a)
        fake_b = gen.decoder(patch_tokens)
        with torch.no_grad():
            fake_box = gen.decoder(box_tokens, box_a)
        content_b, _ = gen.content_encoder(real_b)
        style_b = gen.style_encoder(real_b)
        recon_b = gen.decoder(gen.aggregate(content_b, style_b, box_b)[0])

        # (2) D step
        set_requires_grad([self.discriminator], True)
        opt_d.zero_grad()
        d_losses = discriminator_losses(self.discriminator, fake_b.detach(), real_b, h.gan_mode, joint=False)
        check_finite(d_losses, iteration=iteration, epoch=epoch)
        backward(self, d_losses["d_fake"] + d_losses["d_real"], opt_d)
        opt_d.step()

        # (3) G and MLP-head step against the updated D (in train mode: its batch statistics)
        set_requires_grad([self.discriminator], False)
        opt_g.zero_grad()
        opt_f.zero_grad()
        g_losses: dict[str, Tensor] = {}
        if weights["g_gan"] > 0:
            g_losses["g_gan"] = weights["g_gan"] * gan_loss(self.discriminator(fake_b), True, h.gan_mode)
        if weights["g_recon"] > 0:
            g_losses["g_recon"] = weights["g_recon"] * _l1(recon_b, real_b)
        if weights["g_style"] > 0:
            g_losses["g_style"] = weights["g_style"] * _l1(gen.style_encoder(recon_b), style_b)
        if weights["g_nce"] > 0 or weights["g_inst_nce"] > 0:
            content_fake, queries = gen.content_encoder(fake_b, self.feat_layers)
            if weights["g_nce"] > 0:
                g_losses["g_nce"] = weights["g_nce"] * compute_nce_loss(
                    self.mlp_head, keys, queries, num_patches=h.num_patches, batch_size=batch, nce_t=h.nce_t,
                    patch_ids=draws.get("nce"))
            if weights["g_inst_nce"] > 0:
                g_losses["g_inst_nce"] = weights["g_inst_nce"] * instance_nce_loss(
                    self.mlp_head_inst, box_feature_a, extract_box_features(content_fake, box_a), box_a,
                    nce_t=h.nce_t, patch_ids=draws.get("inst_nce"))
        g_losses["g_total"] = sum(g_losses.values()) if g_losses else fake_b.new_zeros(())
        check_finite(g_losses, iteration=iteration, epoch=epoch)
        backward(self, g_losses["g_total"], opt_g, opt_f)
        opt_g.step()
        opt_f.step()
        set_requires_grad([self.discriminator], True)
        self.update_ema()
        images = {"fake_b": fake_b, "recon_b": recon_b, "fake_box": fake_box, "style_b": style_b,
                  "box_feature_a": box_feature_a}
        return StepOutput({**d_losses, **g_losses}, images)

    def official_losses(self, losses: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """zoo's loss terms under the official names (``D_fake_loss``, ``total_D_loss``, ``GAN_loss``, ...)."""
        out = {"D_fake_loss": losses["d_fake"] / 0.5, "D_real_loss": losses["d_real"] / 0.5,
               "total_D_loss": losses["d_fake"] + losses["d_real"]}
        out.update({theirs: losses[ours] for ours, theirs in OFFICIAL_LOSS_NAMES.items() if ours in losses})
        return out

    def validation_metrics(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """``recon``: L1 in model space between the live generator's reconstruction of ``real_b`` (its own style
        code and boxes) and ``real_b``."""
        real_b = batch["real_b"]
        gen = self.generator
        boxes = self.padded_boxes(batch.get("box_b"), real_b)
        recon = gen(resize_images(real_b, gen.image_size), gen.style_encoder(resize_images(real_b, gen.image_size)),
                    boxes)
        return {"recon": _l1(recon, resize_images(real_b, gen.image_size))}

    def configure_optimizers(self) -> tuple[list[torch.optim.Optimizer], list]:
        """Adam for G (without the decoder's box branch, which no loss reaches) and D with (beta1, beta2); Adam for
        both MLP heads with (beta1_f, beta2_f); no schedule."""
        h = self.hparams
        box_branch = {id(p) for p in self.generator.decoder.inv_patch_embed_box.parameters()}
        g_params = [p for p in self.generator.parameters() if id(p) not in box_branch]
        return [adam(g_params, lr=h.lr, betas=(h.beta1, h.beta2)),
                adam(self.discriminator.parameters(), lr=h.lr, betas=(h.beta1, h.beta2)),
                adam([*self.mlp_head.parameters(), *self.mlp_head_inst.parameters()], lr=h.lr,
                     betas=(h.beta1_f, h.beta2_f))], []

    # ---------------------------------------------------------------- official checkpoints

    @classmethod
    def init_args_from_official(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        """zoo constructor arguments from the official training config (``config/base_train.yaml``'s ``Train``
        section, or the whole file as a dict). The official widths are fixed in ``initialize.py`` (the defaults
        here); ``height`` gives ``img_size`` (height / 4)."""
        config = dict(config.get("Train", config))
        args = {ours: config[theirs] for theirs, ours in OFFICIAL_OPTIONS.items() if theirs in config}
        if "feat_layers" in args:
            args["feat_layers"] = [int(v) for v in args["feat_layers"]]
        if "height" in config:
            if config.get("width", config["height"]) != config["height"]:
                raise ValueError(f"InstaFormer takes square images; the config has {config['height']}x"
                                 f"{config['width']}")
            args["img_size"] = int(config["height"]) // 4
        return args

    def official_network_norm(self, net: str) -> str:
        """Batch norm in ``Discrim``; nothing to fix up elsewhere (the AdaIN buffers are kept)."""
        return "batch" if net == "Discrim" else "none"

    def load_official_weights(self, state_dict: Mapping[str, Any], *, net: str | None = None) -> None:
        """Load official weights (strict: every key used once, shapes checked; EMA copies follow).

        Args:
            state_dict: one official ``weights_<epoch>/<net>.pth`` state dict (keys with or without ``module.``),
                or, with ``net=None``, a mapping official network name -> such a state dict (any subset).
            net: the official network name of ``state_dict`` (``ContentEncoder``, ``StyleEncoder``, ``Transformer``,
                ``MLP_Adain``, ``Decoder``, ``Discrim``, ``MLP_head``, ``MLP_head_inst``).
        """
        if net is None:
            if not state_dict or not set(state_dict) <= set(OFFICIAL_MODULES):
                raise ValueError(f"give net= for one network's state dict, or a mapping of official network names "
                                 f"({', '.join(OFFICIAL_MODULES)}) to state dicts; got keys {sorted(state_dict)[:5]}")
            for name, state in state_dict.items():
                self.load_official_weights(state, net=name)
            return
        super().load_official_weights(dict(state_dict), net=net)

    def load_official_checkpoint(self, folder: str | Path) -> list[str]:
        """Load an official ``weights/<model_name>/weights_<epoch>/`` folder (``<Net>.pth`` per network; missing
        files are skipped, e.g. a folder holding the generator only). Returns the networks loaded."""
        folder = Path(folder)
        loaded = []
        for name in OFFICIAL_MODULES:
            path = folder / f"{name}.pth"
            if path.is_file():
                self.load_official_weights(torch.load(path, map_location="cpu", weights_only=True), net=name)
                loaded.append(name)
        if not loaded:
            raise FileNotFoundError(f"no official InstaFormer weights (<Net>.pth) in {folder}")
        return loaded
