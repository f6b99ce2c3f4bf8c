"""pix2pixHD: semantic label map (+ instance map) -> photo at high resolution.

Paper: Wang, Liu, Zhu, Tao, Kautz, Catanzaro, "High-Resolution Image Synthesis and Semantic Manipulation with
Conditional GANs", CVPR 2018, https://arxiv.org/abs/1711.11585. Official code: https://github.com/NVIDIA/pix2pixHD
(networks, losses, update order and schedule reproduced; proven by the parity tests against fixtures of commit
14b3b3c).

**Inputs.** A label map is an 8-bit image whose pixel value is the class id, read as images are read: ``translate``
takes it in [0, 1] (``id / 255``, as ``zoo translate`` and the DataModules read a grayscale PNG) and training batches
carry it in [-1, 1]; the ids are recovered by rounding and one-hot encoded to ``label_nc`` channels (Cityscapes
``labelIds``: 35). ``label_nc=0`` takes RGB images instead. Unless ``no_instance``, the instance map (``instance``
in batches and ``translate``, integer ids, Cityscapes ``instanceIds``) adds its boundary map as one more channel, so
adjacent objects of one class stay apart; ``translate`` without one uses the label map's class boundaries.

Faithful to the official implementation:

* ``generator: global`` is G1 (``ngf`` 64, 4 downsamplings, 9 residual blocks); ``local`` adds
  ``n_local_enhancers`` enhancers G2 (``ngf`` 32, global part at twice the width on the half-resolution input).
* ``num_d`` PatchGAN discriminators at 1, 1/2, 1/4 ... resolution see ``cat(input encoding, image)``; LSGAN (or
  ``gan_mode: vanilla``), GAN feature matching and the VGG-19 loss, both weighted ``lambda_feat`` (10), with the
  official per-layer and per-scale weights; the VGG gets images in [-1, 1] without ImageNet normalisation.
* One iteration: forward (D on the pooled fake, on the real, then G's adversarial and matching terms), **G step,
  then D step**, both on the losses of that one forward. Adam (2e-4, betas 0.5/0.999); the learning rate of both
  stays for ``n_epochs`` epochs, then falls linearly to 0 over ``n_epochs_decay`` (the official float arithmetic).
* ``instance_feat`` / ``label_feat``: the feature encoder E (``feat_num`` 3, ``nef`` 16, ``n_downsample_e`` 4)
  encodes the real photo, averages it inside each instance (or class) and feeds it to G with the labels; E trains
  with G. After each training epoch the features of every training instance are clustered per class with k-means
  (``n_clusters``, scikit-learn, as the official ``encode_features.py``); ``translate`` samples a cluster centre per
  instance (seeded), takes ``features=`` maps, or encodes a ``feature_image``.
* ``n_epochs_fix_global`` (official ``niter_fix_global``): the local enhancers train alone for that many epochs;
  gradients still reach the global generator, it is just not stepped.

Where the official code is broken, the intended behaviour is the default and the official one an option:

* ``fix_global_optimizer``: after the fixed-global phase ``refresh`` (default) trains the whole generator with a
  fresh Adam state, as ``update_fixed_params`` intends; ``official_head`` reproduces ``train.py`` at HEAD, whose loop
  keeps the first optimizer, so the global generator is never fine-tuned and G's learning rate stops decaying.
* With intermediate features (the GAN feature loss) the official discriminator drops its sigmoid, so
  ``gan_mode: vanilla`` crashes there (``BCELoss`` on raw scores); zoo applies binary cross-entropy to the logits.
  Without the feature loss the discriminator ends with the sigmoid and the official ``BCELoss`` on probabilities.

Not reproduced: ``load_features`` (feature maps precomputed into files; E computes them here) and ``data_type``
(use the Trainer's ``precision``).

Config: ``configs/pix2pixhd.yaml`` (Cityscapes 1024x512, global generator), ``configs/pix2pixhd_2048.yaml`` (local
enhancer at 2048x1024 from a global run, fixed-global phase), ``configs/tiny/pix2pixhd.yaml``.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.compile import CompileSetting
from zoo.losses import check_finite
from zoo.losses.multiscale import feature_matching_loss, multiscale_gan_loss
from zoo.losses.vgg_feature_matching import VGGFeatureMatchingLoss
from zoo.methods._common import (
    StepOutput,
    adam,
    backward,
    check_images,
    iteration_index,
    seeded,
    set_requires_grad,
    to_model_range,
    to_unit_range,
)
from zoo.methods._inference import InferenceModule, frozen_copy
from zoo.methods.base import ChannelsLast, TranslationMethod
from zoo.nets.image_pool import ImagePool
from zoo.nets.pix2pixhd import (
    FeatureEncoder,
    MultiscaleDiscriminator,
    Pix2PixHDNorm,
    build_pix2pixhd_generator,
    init_pix2pixhd_weights,
    instance_edges,
    one_hot_labels,
)
from zoo.nets.resnet_generator import PaddingType
from zoo.registry import PretrainedEntry, register_method, register_pretrained

__all__ = ["Pix2PixHD", "label_ids", "official_learning_rates"]

FixGlobalOptimizer = Literal["refresh", "official_head"]

#: official option -> zoo constructor argument (``no_*`` options are negated, see ``init_args_from_official``)
_OFFICIAL_OPTIONS = {
    "label_nc": "label_nc", "input_nc": "input_nc", "output_nc": "output_nc", "ngf": "ngf", "netG": "generator",
    "n_downsample_global": "n_downsample_global", "n_blocks_global": "n_blocks_global",
    "n_local_enhancers": "n_local_enhancers", "n_blocks_local": "n_blocks_local", "norm": "norm",
    "instance_feat": "instance_feat", "label_feat": "label_feat", "feat_num": "feat_num", "nef": "nef",
    "n_downsample_E": "n_downsample_e", "n_clusters": "n_clusters", "ndf": "ndf", "n_layers_D": "n_layers_d",
    "num_D": "num_d", "lambda_feat": "lambda_feat", "pool_size": "pool_size", "lr": "lr", "beta1": "beta1",
    "niter": "n_epochs", "niter_decay": "n_epochs_decay", "niter_fix_global": "n_epochs_fix_global",
    "no_instance": "no_instance",
}


def label_ids(images: Tensor) -> Tensor:
    """Class ids of label maps read as images: (B, 1, H, W) in [0, 1] (``id / 255``) -> (B, 1, H, W) int64."""
    return torch.round(images.float() * 255).long()


def official_learning_rates(lr: float, n_epochs: int, n_epochs_decay: int, n_epochs_fix_global: int, epochs: int,
                            fix_global_optimizer: FixGlobalOptimizer = "refresh") -> list[tuple[float, float]]:
    """``(lr_G, lr_D)`` in force during each epoch 1..``epochs``, as the official end-of-epoch logic sets them.

    After epoch ``e > n_epochs`` both fall by ``lr / n_epochs_decay`` (repeated float subtraction, as officially).
    With ``official_head`` and a fixed-global phase, the generator optimizer that ``train.py`` steps stops receiving
    the decay once ``update_fixed_params`` replaced the model's optimizer (end of epoch ``n_epochs_fix_global``).
    """
    decay = lr / n_epochs_decay if n_epochs_decay > 0 else 0.0
    old_lr, lr_g, lr_d = lr, lr, lr
    stepped_is_current = True  # the generator optimizer train.py steps is still model.optimizer_G
    rates = []
    for epoch in range(1, epochs + 1):
        rates.append((lr_g, lr_d))
        if n_epochs_fix_global and epoch == n_epochs_fix_global and fix_global_optimizer == "official_head":
            stepped_is_current = False
        if epoch > n_epochs:
            old_lr = old_lr - decay
            lr_d = old_lr
            if stepped_is_current:
                lr_g = old_lr
    return rates


class Pix2PixHDInference(InferenceModule):
    """pix2pixHD: label map (+ instance ids, + instance features) -> photo.

    Shape: images (B, 1, H, W) label ids / 255 (or (B, input_nc, H, W) images when ``label_nc`` is 0), instance
    (B, 1, H, W) integer ids as float, features (B, feat_num, H, W) -> (B, output_nc, H, W) in [0, 1].
    """

    def __init__(self, net: nn.Module, *, label_nc: int, use_instance: bool, feat_num: int | None) -> None:
        super().__init__()
        self.net, self.label_nc, self.use_instance, self.feat_num = net, label_nc, use_instance, feat_num
        self.input_names = ("images",) + (("instance",) if use_instance else ()) + (
            ("features",) if feat_num else ())

    def forward(self, images: Tensor, second: Tensor | None = None, third: Tensor | None = None) -> Tensor:
        """``second`` and ``third`` are the inputs after ``images`` in ``input_names`` order (``instance``,
        ``features``)."""
        from zoo.nets.pix2pixhd import instance_edges

        extras = [t for t in (second, third) if t is not None]
        inputs = dict(zip(self.input_names[1:], extras, strict=True))
        if self.label_nc:
            ids = torch.round(images * 255).long()
            # the one-hot of zoo.nets.pix2pixhd.one_hot_labels, without its Python-side range check
            encoded = torch.zeros(ids.shape[0], self.label_nc, ids.shape[2], ids.shape[3], dtype=images.dtype,
                                  device=images.device).scatter(1, ids, 1.0)
        else:
            encoded = to_model_range(images)
        if self.use_instance:
            encoded = torch.cat([encoded, instance_edges(inputs["instance"]).to(encoded.dtype)], 1)
        if self.feat_num:
            encoded = torch.cat([encoded, inputs["features"].to(encoded.dtype)], 1)
        return to_unit_range(self.net(encoded))

    def example_extras(self, images: Tensor, *, generator: torch.Generator | None = None) -> tuple[Tensor, ...]:
        b, _, h, w = images.shape
        extras: list[Tensor] = []
        if self.use_instance:
            ids = torch.round(images * 255) if self.label_nc else torch.zeros(b, 1, h, w)
            extras.append(ids * 1000 + torch.randint(0, 2, (b, 1, h, w), generator=generator))
        if self.feat_num:
            extras.append(torch.randn(b, self.feat_num, h, w, generator=generator))
        return tuple(extras)


@register_method("pix2pixhd")
class Pix2PixHD(TranslationMethod):
    """pix2pixHD (Wang et al., CVPR 2018) with the official networks, objective, update order and schedule.

    Args:
        label_nc: classes of the label maps (one-hot channels; Cityscapes ``labelIds``: 35); 0: RGB inputs.
        input_nc: channels of the input images when ``label_nc`` is 0.
        output_nc: channels of the photos.
        no_instance: no instance maps (no boundary channel).
        generator: ``global`` (G1) or ``local`` (G1 + local enhancers).
        ngf: generator width (``global``: 64; ``local``: 32, the global part runs at ``ngf * 2**n_local_enhancers``).
        n_downsample_global: stride-2 convolutions of the global generator (4).
        n_blocks_global: its residual blocks (9).
        n_local_enhancers: local enhancers (1 for 2048x1024).
        n_blocks_local: residual blocks per enhancer (3).
        norm: ``instance`` (official) or ``batch``.
        padding_type: padding of the residual blocks.
        instance_feat: feed G instance-wise features encoded from the photo (feature encoder E).
        label_feat: the same, averaged per class instead of per instance.
        feat_num: feature channels of E (3).
        nef: width of E (16).
        n_downsample_e: stride-2 convolutions of E (4).
        n_clusters: k-means clusters per class of the encoded features (10).
        ndf: discriminator width (64).
        n_layers_d: stride-2 layers per PatchGAN (3).
        num_d: discriminators, each at half the previous resolution (2).
        gan_mode: ``lsgan`` (official default) or ``vanilla`` (official ``--no_lsgan``).
        gan_feat_loss: the GAN feature-matching term (official ``--no_ganFeat_loss`` turns it off).
        vgg_loss: the VGG-19 perceptual term (official ``--no_vgg_loss`` turns it off).
        lambda_feat: weight of both matching terms (10).
        vgg_weights: ``imagenet`` (torchvision's VGG-19 file, read when the loss is first computed), a path, or
            None for a random VGG (tests).
        vgg_width_div: narrow the VGG by this factor (tests only; 1 is the real VGG-19).
        pool_size: image history fed to D (official default 0: none).
        seed: seed of the image pool's random draws.
        lr: Adam learning rate of G (+E) and D (2e-4).
        beta1: Adam beta1 (0.5).
        beta2: Adam beta2 (0.999).
        n_epochs: epochs at the initial learning rate (official ``niter``, 100).
        n_epochs_decay: epochs of linear decay to zero (official ``niter_decay``, 100).
        n_epochs_fix_global: epochs that train only the local enhancers (official ``niter_fix_global``; 10 in the
            official 2048x1024 recipe).
        fix_global_optimizer: ``refresh`` (fresh Adam on the whole generator afterwards, the intended behaviour) or
            ``official_head`` (the global generator is never fine-tuned, as ``train.py`` at HEAD).
        global_generator_weights: a trained global pix2pixHD (zoo ``.ckpt`` or official ``latest_net_G.pth``) whose
            generator starts the global part of a ``local`` generator, read when training starts from scratch
            (official ``--load_pretrain``); its width must equal ``ngf * 2**n_local_enhancers``.
        ema_decay: keep an exponential moving average of the generator (None: off).
        channels_last: train in the channels-last memory format.
        compile: compile the networks with ``torch.compile`` (``true``, or a mapping with ``mode``, ``dynamic``,
            ``fullgraph``, ``backend``; see :mod:`zoo.compile`). Models loaded from files start eager.
    """

    optimizer_steps_per_iteration = 2
    directions = ("a2b",)
    GENERATORS = {"a2b": "generator"}
    SIZE_NETWORKS = ("generator", "encoder")
    OFFICIAL_NETWORKS = {"G": "generator", "D": "discriminator", "E": "encoder"}
    OFFICIAL_LOSS_NAMES = {"g_gan": "G_GAN", "g_gan_feat": "G_GAN_Feat", "g_vgg": "G_VGG", "d_real": "D_real",
                           "d_fake": "D_fake", "g_total": "G", "d_total": "D"}
    # the paper's protocol: segmentation of the generated images (pixel accuracy, mIoU); FID beside it
    PAPER_METRICS = ("miou", "pixel_accuracy", "fid", "kid")
    direction_hint = "pix2pixHD maps label maps to photos"
    ALIGNED_INPUTS = {"instance": "instance"}

    def __init__(
        self,
        *,
        label_nc: int = 35,
        input_nc: int = 3,
        output_nc: int = 3,
        no_instance: bool = False,
        generator: Literal["global", "local"] = "global",
        ngf: int = 64,
        n_downsample_global: int = 4,
        n_blocks_global: int = 9,
        n_local_enhancers: int = 1,
        n_blocks_local: int = 3,
        norm: Pix2PixHDNorm = "instance",
        padding_type: PaddingType = "reflect",
        instance_feat: bool = False,
        label_feat: bool = False,
        feat_num: int = 3,
        nef: int = 16,
        n_downsample_e: int = 4,
        n_clusters: int = 10,
        ndf: int = 64,
        n_layers_d: int = 3,
        num_d: int = 2,
        gan_mode: Literal["lsgan", "vanilla"] = "lsgan",
        gan_feat_loss: bool = True,
        vgg_loss: bool = True,
        lambda_feat: float = 10.0,
        vgg_weights: str | None = "imagenet",
        vgg_width_div: int = 1,
        pool_size: int = 0,
        seed: int = 0,
        lr: float = 2e-4,
        beta1: float = 0.5,
        beta2: float = 0.999,
        n_epochs: int = 100,
        n_epochs_decay: int = 100,
        n_epochs_fix_global: int = 0,
        fix_global_optimizer: FixGlobalOptimizer = "refresh",
        global_generator_weights: str | None = None,
        ema_decay: float | None = None,
        channels_last: ChannelsLast = False,
        compile: CompileSetting = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if label_nc < 0:
            raise ValueError(f"label_nc must be >= 0 (0: RGB inputs), got {label_nc}")
        if global_generator_weights is not None and generator != "local":
            raise ValueError("global_generator_weights starts the global part of a local enhancer: it needs "
                             "generator: local")
        if n_epochs_fix_global and generator != "local":
            raise ValueError("n_epochs_fix_global fixes the global generator while the local enhancers train; it "
                             "needs generator: local")
        label_channels = (label_nc or input_nc) + (0 if no_instance else 1)
        features = feat_num if self.uses_features else 0
        self.generator = build_pix2pixhd_generator(
            label_channels + features, output_nc, ngf=ngf, netG=generator, n_downsample_global=n_downsample_global,
            n_blocks_global=n_blocks_global, n_local_enhancers=n_local_enhancers, n_blocks_local=n_blocks_local,
            norm=norm, padding_type=padding_type)
        self.discriminator = init_pix2pixhd_weights(MultiscaleDiscriminator(
            label_channels + output_nc, ndf, n_layers_d, norm, use_sigmoid=gan_mode == "vanilla", num_D=num_d,
            intermediate_features=gan_feat_loss))
        self.encoder = (init_pix2pixhd_weights(FeatureEncoder(output_nc, feat_num, nef, n_downsample_e, norm))
                        if self.uses_features else None)
        self.vgg = VGGFeatureMatchingLoss(vgg_weights, width_div=vgg_width_div) if vgg_loss else None
        if self.uses_features:  # k-means centres per class: (label_nc, n_clusters, feat_num), and how many are set
            classes = max(label_nc, 1)
            self.register_buffer("feature_clusters", torch.zeros(classes, n_clusters, feat_num))
            self.register_buffer("feature_cluster_counts", torch.zeros(classes, dtype=torch.long))
        self.image_pool = ImagePool(pool_size, random.Random(seed))
        self.build_ema(ema_decay)
        self.use_compile(compile)

    # ---------------------------------------------------------------- inputs

    @property
    def uses_features(self) -> bool:
        """Whether G gets instance-wise features from the encoder E (``instance_feat`` or ``label_feat``)."""
        return bool(self.hparams.instance_feat or self.hparams.label_feat)

    @property
    def domain_channels(self) -> tuple[int, int]:
        """``(C_a, C_b)``: 1 (a label map) or ``input_nc`` (``label_nc=0``), and ``output_nc``."""
        h = self.hparams
        return (1 if h.label_nc else h.input_nc), h.output_nc

    def encode_input(self, real_a: Tensor, instance: Tensor | None) -> Tensor:
        """The official ``encode_input``: one-hot labels (or the RGB input) and the instance boundary map.

        Args:
            real_a: (B, 1, H, W) label map in [-1, 1] (``id / 255`` mapped to model space), or (B, input_nc, H, W)
                images when ``label_nc`` is 0.
            instance: (B, 1, H, W) instance ids, or None (the label map's class boundaries stand in).

        Returns:
            (B, label_nc + 1, H, W): ``label_nc`` (or ``input_nc``) channels, then the boundary map unless
            ``no_instance``.
        """
        h = self.hparams
        ids = label_ids(to_unit_range(real_a)) if h.label_nc else None
        encoded = one_hot_labels(ids, h.label_nc).to(real_a.dtype) if h.label_nc else real_a
        if not h.no_instance:
            if instance is None:
                instance = ids if ids is not None else real_a
            encoded = torch.cat([encoded, instance_edges(instance).to(encoded.dtype)], 1)
        return encoded

    def feature_regions(self, real_a: Tensor, instance: Tensor | None) -> Tensor:
        """What E averages over: the instance map (``instance_feat``) or the class ids (``label_feat``)."""
        if self.hparams.label_feat or instance is None:
            return label_ids(to_unit_range(real_a)).float()
        return instance

    def training_inputs(self, batch: dict[str, Any]) -> tuple[Any, ...]:
        """``(real_a, real_b, instance)``: label map and photo in [-1, 1], instance ids (None without)."""
        return batch["real_a"], batch["real_b"], batch.get("instance")

    def example_images(self, batch_size: int, size: int | tuple[int, int], direction: str = "a2b", *,
                       generator: torch.Generator | None = None) -> Tensor:
        """Random label maps as ``translate`` takes them, (B, 1, H, W) ids / 255 (RGB noise when ``label_nc=0``)."""
        return to_unit_range(self.example_inputs(batch_size, size, generator=generator)[0])

    def example_inputs(self, batch_size: int, size: int | tuple[int, int], *,
                       generator: torch.Generator | None = None) -> tuple[Tensor | None, ...]:
        """Random label maps (ids below ``label_nc``, in [-1, 1]), photos and instance maps of a few ids per class."""
        height, width = (size, size) if isinstance(size, int) else size
        h = self.hparams
        if h.label_nc:
            ids = torch.randint(0, h.label_nc, (batch_size, 1, height // 4 + 1, width // 4 + 1), generator=generator)
            ids = F.interpolate(ids.float(), size=(height, width), mode="nearest")
            real_a = ids / 255 * 2 - 1
            instance = ids * 1000 + torch.randint(0, 2, ids.shape, generator=generator)
        else:
            real_a = torch.rand(batch_size, h.input_nc, height, width, generator=generator) * 2 - 1
            instance = torch.randint(0, 4, (batch_size, 1, height, width), generator=generator).float()
        real_b = torch.rand(batch_size, h.output_nc, height, width, generator=generator) * 2 - 1
        return real_a, real_b, None if h.no_instance and not self.uses_features else instance

    # ---------------------------------------------------------------- training

    def generate(self, real_a: Tensor, real_b: Tensor, instance: Tensor | None) -> tuple[Tensor, Tensor]:
        """The input encoding and the generated photo (the encoder's features from ``real_b`` when used).

        Returns:
            ``input_label`` (B, label_nc + 1, H, W) and ``fake_b`` (B, output_nc, H, W) in [-1, 1].
        """
        input_label, generator_input = self.generator_inputs(real_a, instance, photo=real_b)
        return input_label, self.generator(generator_input)

    def generator_inputs(self, real_a: Tensor, instance: Tensor | None, *, photo: Tensor | None = None,
                         features: Tensor | None = None, seed: int | None = None) -> tuple[Tensor, Tensor]:
        """The input encoding and what G gets: the encoding, then (feature-encoder models) instance features:
        ``features`` as given, else E's encoding of ``photo`` (B, output_nc, H, W) in [-1, 1], else one k-means centre
        per instance sampled with ``seed``.

        Returns:
            ``input_label`` (B, label_nc + 1, H, W) and the generator input (B, label_nc + 1 [+ feat_num], H, W).
        """
        input_label = self.encode_input(real_a, instance)
        if self.encoder is None:
            return input_label, input_label
        if features is None:
            regions = self.feature_regions(real_a, instance)
            features = self.encoder(photo, regions) if photo is not None else self._sampled_features(regions, seed)
        return input_label, torch.cat([input_label, features.to(input_label.dtype)], 1)

    @property
    def _gan_options(self) -> dict[str, bool]:
        h = self.hparams
        return {"use_lsgan": h.gan_mode == "lsgan", "probabilities": h.gan_mode == "vanilla" and not h.gan_feat_loss}

    def discriminator_terms(self, input_label: Tensor, fake_b: Tensor, real_b: Tensor
                            ) -> tuple[dict[str, Tensor], list[list[Tensor]]]:
        """D's terms, as officially: D on the (pooled) detached fake, then on the real photo.

        Returns:
            ``{"d_fake", "d_real", "d_total"}`` (``d_total`` = 0.5 (fake + real)) and D's outputs on the real photo
            (the targets of feature matching).
        """
        pred_fake_pool = self.discriminator(self.image_pool.query(torch.cat([input_label, fake_b.detach()], 1)))
        pred_real = self.discriminator(torch.cat([input_label, real_b], 1))
        losses = {"d_fake": multiscale_gan_loss(pred_fake_pool, False, **self._gan_options),
                  "d_real": multiscale_gan_loss(pred_real, True, **self._gan_options)}
        losses["d_total"] = 0.5 * (losses["d_fake"] + losses["d_real"])
        return losses, pred_real

    def generator_terms(self, input_label: Tensor, fake_b: Tensor, real_b: Tensor,
                        pred_real: list[list[Tensor]]) -> dict[str, Tensor]:
        """G's weighted terms against the current D: ``g_gan``, ``g_gan_feat``, ``g_vgg`` (those switched on) and
        their sum ``g_total``."""
        h = self.hparams
        set_requires_grad([self.discriminator], False)  # G's terms need no discriminator gradients
        pred_fake = self.discriminator(torch.cat([input_label, fake_b], 1))
        set_requires_grad([self.discriminator], True)
        losses = {"g_gan": multiscale_gan_loss(pred_fake, True, **self._gan_options)}
        if h.gan_feat_loss:
            losses["g_gan_feat"] = h.lambda_feat * feature_matching_loss(pred_fake, pred_real, n_layers=h.n_layers_d)
        if self.vgg is not None:
            losses["g_vgg"] = h.lambda_feat * self.vgg(fake_b, real_b)
        losses["g_total"] = sum(losses.values())
        return losses

    def forward_losses(self, real_a: Tensor, real_b: Tensor, instance: Tensor | None) -> tuple[dict[str, Tensor],
                                                                                                dict[str, Tensor]]:
        """The official ``Pix2PixHDModel.forward``: the weighted loss terms and ``{"fake_b", "input_label"}``.

        Shapes: real_a (B, 1 or input_nc, H, W), real_b (B, output_nc, H, W) in [-1, 1]; instance (B, 1, H, W) ids.
        """
        input_label, fake_b = self.generate(real_a, real_b, instance)
        d_losses, pred_real = self.discriminator_terms(input_label, fake_b, real_b)
        g_losses = self.generator_terms(input_label, fake_b, real_b, pred_real)
        return {**d_losses, **g_losses}, {"fake_b": fake_b, "input_label": input_label}

    def optimization_step(self, real_a: Tensor, real_b: Tensor, instance: Tensor | None, opt_g: Any,
                          opt_d: Any) -> StepOutput:
        """One official iteration: the forward with every loss, then the G (+E) step, then the D step.

        The numbers are the official ones; the order of the work saves memory: the previous gradients are released
        before the forward, and D's gradients are computed (and its graphs freed) before G's terms are built. D's
        step still follows G's, and both use the losses of this one forward.

        Args:
            real_a: (B, 1, H, W) label map (``id / 255`` in [-1, 1]) or (B, input_nc, H, W) images (``label_nc=0``).
            real_b: (B, output_nc, H, W) photo in [-1, 1].
            instance: (B, 1, H, W) instance ids (None: no instance map).
            opt_g: optimizer of the generator and encoder (:meth:`configure_optimizers`; :meth:`start_epoch` sets its
                learning rates).
            opt_d: optimizer of the discriminators.

        Returns:
            The weighted terms (``g_gan``, ``g_gan_feat``, ``g_vgg``, ``d_real``, ``d_fake``, ``g_total``,
            ``d_total``) and ``fake_b``.
        """
        iteration, epoch = iteration_index(self)
        opt_g.zero_grad()
        opt_d.zero_grad()
        input_label, fake_b = self.generate(real_a, real_b, instance)
        d_losses, pred_real = self.discriminator_terms(input_label, fake_b, real_b)
        check_finite(d_losses, iteration=iteration, epoch=epoch)
        backward(self, d_losses["d_total"], opt_d)
        g_losses = self.generator_terms(input_label, fake_b, real_b, pred_real)
        check_finite(g_losses, iteration=iteration, epoch=epoch)
        backward(self, g_losses["g_total"], opt_g)
        opt_g.step()
        self.update_ema()
        opt_d.step()
        losses = {**d_losses, **g_losses}
        return StepOutput({k: v.detach() for k, v in losses.items()}, {"fake_b": fake_b.detach()})

    def configure_optimizers(self):
        """Adam for the generator and encoder, Adam for the discriminators. With a fixed-global phase the global
        generator is a second parameter group of G's optimizer, whose learning rate is 0 while it is fixed (Adam
        then leaves those weights exactly as they are; their gradients are still computed, as officially)."""
        h = self.hparams
        betas = (h.beta1, h.beta2)
        encoder = list(self.encoder.parameters()) if self.encoder is not None else []
        if h.n_epochs_fix_global:
            fixed = set(self.generator.global_parameter_names())
            named = list(self.generator.named_parameters())
            groups = [{"params": [p for n, p in named if n not in fixed] + encoder, "name": "generator"},
                      {"params": [p for n, p in named if n in fixed], "name": "global_generator"}]
            opt_g = torch.optim.Adam(groups, lr=h.lr, betas=betas, fused=True)
        else:
            opt_g = adam(list(self.generator.parameters()) + encoder, lr=h.lr, betas=betas)
        opt_d = adam(self.discriminator.parameters(), lr=h.lr, betas=betas)
        self.start_epoch(1, [opt_g, opt_d])
        return [opt_g, opt_d], []

    @property
    def lr_step_point(self) -> None:
        return None  # start_epoch / end_epoch set the learning rates with the official arithmetic

    def global_frozen(self, epoch: int) -> bool:
        """Whether the global generator is not stepped in (1-based) ``epoch``: during the fixed-global phase, and
        forever after it with ``fix_global_optimizer: official_head``."""
        h = self.hparams
        if not h.n_epochs_fix_global:
            return False
        return epoch <= h.n_epochs_fix_global or h.fix_global_optimizer == "official_head"

    def stepped_generator_parameters(self, epoch: int) -> int:
        """How many parameter tensors G's optimizer moves in ``epoch`` (the global generator's only when not fixed)."""
        frozen = len(self.generator.global_parameter_names()) if self.global_frozen(epoch) else 0
        encoder = len(list(self.encoder.parameters())) if self.encoder is not None else 0
        return len(list(self.generator.parameters())) - frozen + encoder

    def learning_rates(self, epoch: int) -> tuple[float, float]:
        """``(lr_G, lr_D)`` during (1-based) ``epoch``: :func:`official_learning_rates`."""
        h = self.hparams
        return official_learning_rates(h.lr, h.n_epochs, h.n_epochs_decay, h.n_epochs_fix_global, epoch,
                                       h.fix_global_optimizer)[-1]

    def start_epoch(self, epoch: int, optimizers: list[Any]) -> None:
        """Set the learning rates in force during (1-based) ``epoch`` (the official end-of-epoch arithmetic; the
        fixed global generator gets 0)."""
        opt_g, opt_d = optimizers
        lr_g, lr_d = self.learning_rates(epoch)
        for group in opt_g.param_groups:
            fixed = group.get("name") == "global_generator" and self.global_frozen(epoch)
            group["lr"] = 0.0 if fixed else lr_g
        for group in opt_d.param_groups:
            group["lr"] = lr_d

    def end_epoch(self, epoch: int, opt_g: Any) -> None:
        """After (1-based) ``epoch``: at the end of the fixed-global phase (official ``update_fixed_params``) G's
        optimizer starts afresh with ``refresh`` (new Adam state over the whole generator); ``official_head``
        changes nothing."""
        h = self.hparams
        if h.n_epochs_fix_global and epoch == h.n_epochs_fix_global and h.fix_global_optimizer == "refresh":
            getattr(opt_g, "optimizer", opt_g).state.clear()

    def on_fit_start(self) -> None:
        path = self.hparams.global_generator_weights
        if path is not None and self.trainer.ckpt_path is None:  # resumed runs have these weights already
            self.load_global_generator(path)

    def load_global_generator(self, source: str | os.PathLike[str] | dict[str, Tensor]) -> None:
        """Start the global part of the local generator from a trained global pix2pixHD: a zoo checkpoint (``.ckpt``,
        its ``generator.*``), an official ``latest_net_G.pth`` (``model.*``) or such a state dict. Every layer but
        the global generator's output layers is loaded (shapes checked); the EMA copy follows."""
        state = source
        if not isinstance(source, dict):
            path = Path(source).expanduser()
            if not path.is_file():
                raise FileNotFoundError(f"global_generator_weights: {path} does not exist; train the global "
                                        "generator first (configs/pix2pixhd.yaml) and name its checkpoint")
            state = torch.load(path, map_location="cpu", weights_only=True)
            state = state.get("state_dict", state)
        state = {k.removeprefix("module."): v for k, v in state.items()}
        if any(k.startswith("generator.") for k in state):
            state = {k.removeprefix("generator."): v for k, v in state.items() if k.startswith("generator.")}
        own = self.generator.model.state_dict()
        found = {k.removeprefix("model."): v for k, v in state.items() if k.removeprefix("model.") in own}
        missing = sorted(set(own) - set(found))
        if missing:
            raise KeyError(f"global_generator_weights lack the global generator layers {missing[:4]}...: not a "
                           "global pix2pixHD generator of this depth")
        wrong = [k for k in own if found[k].shape != own[k].shape]
        if wrong:
            raise ValueError(f"global_generator_weights: {wrong[0]} has shape {tuple(found[wrong[0]].shape)}, the "
                             f"local generator's global part {tuple(own[wrong[0]].shape)}; the global run's ngf must "
                             "be ngf * 2**n_local_enhancers")
        with torch.no_grad():
            self.generator.model.load_state_dict(found, strict=True)
            if self.ema is not None:
                self.ema["generator"].module.load_state_dict(self.generator.state_dict())

    def save_resume_state(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["image_pool"] = self.image_pool.state_dict()

    def load_resume_state(self, checkpoint: dict[str, Any]) -> None:
        if "image_pool" in checkpoint:
            self.image_pool.load_state_dict(checkpoint["image_pool"], self.device)

    def on_train_epoch_start(self) -> None:
        self.start_epoch(self.current_epoch + 1, self.optimizer_list())

    def on_train_epoch_end(self) -> None:
        self.end_epoch(self.current_epoch + 1, self.optimizer_list()[0])
        datamodule = getattr(self.trainer, "datamodule", None)
        if self.encoder is not None and datamodule is not None:
            self.cluster_features(datamodule.train_dataloader())

    # ---------------------------------------------------------------- instance features

    @torch.no_grad()
    def encode_features(self, real_a: Tensor, real_b: Tensor, instance: Tensor | None) -> dict[int, Tensor]:
        """The official ``encode_features`` of one batch: per class, one row per instance, its encoded feature
        (taken at the instance's middle pixel in raster order) and its area relative to 1/32 of the image.

        Returns:
            ``{class id: (N, feat_num + 1)}`` float32.
        """
        regions = self.feature_regions(real_a, instance)
        features = self.encoder(real_b, regions)
        rows: dict[int, list[Tensor]] = {}
        height, width = regions.shape[-2:]
        for b in range(regions.shape[0]):
            flat = regions[b, 0].flatten().long()
            for value in torch.unique(flat).tolist():
                positions = (flat == value).nonzero().flatten()
                middle = positions[positions.numel() // 2]
                feature = features[b].flatten(1)[:, middle].float()
                area = positions.numel() / (height * width // 32)
                label = value if value < 1000 else value // 1000
                rows.setdefault(label, []).append(torch.cat([feature.cpu(), torch.tensor([area])]))
        return {label: torch.stack(found) for label, found in rows.items()}

    @torch.no_grad()
    def cluster_features(self, dataloader: Any) -> dict[int, int]:
        """Encode every batch of ``dataloader`` with E and cluster the features of each class with k-means
        (scikit-learn, ``random_state=0``; instances larger than half of 1/32 of the image, as officially).

        Returns:
            ``{class id: clusters kept}``; the centres are stored in ``feature_clusters`` (saved with the weights).
        """
        from sklearn.cluster import KMeans

        was_training = self.encoder.training
        self.encoder.eval()
        rows: dict[int, list[Tensor]] = {}
        for batch in dataloader:
            real_a, real_b = batch["real_a"].to(self.device), batch["real_b"].to(self.device)
            instance = batch.get("instance")
            found = self.encode_features(real_a, real_b, None if instance is None else instance.to(self.device))
            for label, values in found.items():
                rows.setdefault(label, []).append(values)
        self.encoder.train(was_training)
        self.feature_clusters.zero_()
        self.feature_cluster_counts.zero_()
        kept = {}
        for label, values in sorted(rows.items()):
            if label >= self.feature_clusters.shape[0]:
                continue
            table = torch.cat(values)
            table = table[table[:, -1] > 0.5, :-1].double().numpy()
            if not len(table):
                continue
            n_clusters = min(len(table), self.hparams.n_clusters)
            centres = KMeans(n_clusters=n_clusters, random_state=0, n_init=10).fit(table).cluster_centers_
            self.feature_clusters[label, :n_clusters] = torch.as_tensor(centres, dtype=torch.float32)
            self.feature_cluster_counts[label] = n_clusters
            kept[label] = n_clusters
        return kept

    def sample_features(self, regions: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """The official ``sample_features``: each instance (or class region) gets a randomly chosen k-means centre of
        its class (zero where the class has none).

        Shape: regions (B, 1, H, W) ids -> (B, feat_num, H, W).
        """
        out = regions.new_zeros(regions.shape[0], self.hparams.feat_num, *regions.shape[2:], dtype=torch.float32)
        for value in torch.unique(regions).tolist():
            label = int(value) if value < 1000 else int(value) // 1000
            if label >= self.feature_cluster_counts.numel() or not int(self.feature_cluster_counts[label]):
                continue
            choice = int(torch.randint(int(self.feature_cluster_counts[label]), (1,), generator=generator))
            centre = self.feature_clusters[label, choice].to(out.dtype)
            out = torch.where(regions == value, centre.view(1, -1, 1, 1), out)
        return out

    # ---------------------------------------------------------------- inference

    def forward(self, real_a: Tensor, instance: Tensor | None = None) -> Tensor:
        """Label map -> photo in model space with the live generator: (B, 1 or input_nc, H, W) in [-1, 1] and
        optional (B, 1, H, W) instance ids -> (B, output_nc, H, W) in [-1, 1] (feature-encoder models sample the
        feature clusters with torch's global RNG)."""
        return self.generator(self.generator_inputs(real_a, instance)[1])

    def export_module(self, direction: str = "a2b") -> InferenceModule:
        """``translate`` as a traceable module (``zoo export``): the label map, the ``instance`` map (unless
        ``no_instance``) and, for feature-encoder models, the instance ``features`` in."""
        h = self.hparams
        return Pix2PixHDInference(
            frozen_copy(self.generator_for(self.check_direction(direction)), train_mode=False,
                        what=type(self).__name__),
            label_nc=int(h.label_nc), use_instance=not h.no_instance,
            feat_num=int(h.feat_num) if self.uses_features else None)

    def translate(self, images: Tensor, *, direction: str = "a2b", seed: int | None = None,
                  instance: Tensor | None = None, features: Tensor | None = None,
                  feature_image: Tensor | None = None) -> Tensor:
        """Label maps -> photos.

        Args:
            images: (B, 1, H, W) label maps in [0, 1] as read from 8-bit PNGs (``id / 255``), or (B, input_nc, H, W)
                images when ``label_nc`` is 0; H and W multiples of ``size_multiple``.
            direction: ``a2b``.
            seed: seeds the choice of feature clusters (``instance_feat`` / ``label_feat``).
            instance: (B, 1, H, W) instance ids (None: the label map's class boundaries).
            features: (B, feat_num, H, W) feature maps to use as they are (feature-encoder models).
            feature_image: (B, output_nc, H, W) photo in [0, 1] whose encoded instance features are used.

        Returns:
            (B, output_nc, H, W) in [0, 1].
        """
        self.check_direction(direction)
        check_images(images, self.input_channels(direction), self.size_multiple)
        net = self.generator_for(direction)
        real_a = images * 2 - 1
        with torch.no_grad():
            photo = None if feature_image is None else feature_image * 2 - 1
            _, generator_input = self.generator_inputs(real_a, instance, photo=photo, features=features, seed=seed)
            was_training = net.training
            net.eval()
            try:  # a channels-last input, weights as they are: 6% faster on CPU, no second copy of the weights
                out = net(generator_input.contiguous(memory_format=torch.channels_last)).contiguous()
            finally:
                net.train(was_training)
        return to_unit_range(out)

    def _sampled_features(self, regions: Tensor, seed: int | None) -> Tensor:
        if not int(self.feature_cluster_counts.sum()):
            raise ValueError("this pix2pixHD model feeds instance features to its generator but has no feature "
                             "clusters yet: train it (clusters are computed after every epoch), call "
                             "cluster_features(train_dataloader), or pass features= or feature_image=")
        with seeded(seed, regions.device):
            return self.sample_features(regions)

    def validation_metrics(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """L1 (model space) between the translation of the label map (with its instance map) and the photo."""
        fake_b = self.translate(to_unit_range(batch["real_a"]), instance=batch.get("instance"), seed=0) * 2 - 1
        return {"l1": F.l1_loss(fake_b.float(), batch["real_b"].float())}

    @property
    def takes_label_maps(self) -> bool:
        """Label maps in (``label_nc > 0``), not RGB pictures."""
        return self.hparams.label_nc > 0

    def preview(self, images: Tensor, direction: str = "a2b") -> Tensor:
        """Label maps in Cityscapes colours (ids beyond Cityscapes' in a fixed palette); RGB inputs unchanged.

        Shape: (B, 1, H, W) in [0, 1] (``id / 255``) -> (B, 3, H, W) in [0, 1].
        """
        if not self.hparams.label_nc:
            return images
        from zoo.data.toy_world.labels import colorize

        ids = label_ids(images)[:, 0]
        cityscapes = torch.from_numpy(colorize(np.arange(34)[None])[0]).float() / 255
        extra = torch.rand(256 - 34, 3, generator=torch.Generator().manual_seed(0))  # fixed colours beyond
        palette = torch.cat([cityscapes, extra]).to(images.device)
        return palette[ids].permute(0, 3, 1, 2)

    # ---------------------------------------------------------------- official checkpoints

    @classmethod
    def init_args_from_official(cls, opt: dict) -> dict[str, Any]:
        """zoo constructor arguments from the official options (``opt``, e.g. ``opt.txt`` of a run, as a dict)."""
        args = {ours: opt[theirs] for theirs, ours in _OFFICIAL_OPTIONS.items() if theirs in opt}
        if "no_lsgan" in opt:
            args["gan_mode"] = "vanilla" if opt["no_lsgan"] else "lsgan"
        if "no_ganFeat_loss" in opt:
            args["gan_feat_loss"] = not opt["no_ganFeat_loss"]
        if "no_vgg_loss" in opt:
            args["vgg_loss"] = not opt["no_vgg_loss"]
        return args


# --------------------------------------------------------------------------------------------------------------------
# The authors' Cityscapes model (2048x1024, one local enhancer); published on Google Drive, so it is placed by hand
# --------------------------------------------------------------------------------------------------------------------

register_pretrained("pix2pixhd.label2city_1024p", PretrainedEntry(
    method="pix2pixhd",
    init_args={"label_nc": 35, "generator": "local", "ngf": 32, "n_downsample_global": 4, "n_blocks_global": 9,
               "n_local_enhancers": 1, "n_blocks_local": 3, "norm": "instance", "vgg_weights": None},
    url=None,  # a Google Drive folder (README, "Testing"); no direct file URL
    sha256=None,
    filename="pix2pixhd_label2city_1024p_net_G.pth",
    format="official",
    official_net="G",
    direction="a2b",
    origin="https://github.com/NVIDIA/pix2pixHD (README, pretrained Cityscapes model label2city_1024p)",
    notes="Official 2048x1024 Cityscapes generator: download checkpoints/label2city_1024p/latest_net_G.pth from the "
          "link in the pix2pixHD README and save it as pix2pixhd_label2city_1024p_net_G.pth in $ZOO_WEIGHTS_DIR. "
          "Inputs: Cityscapes labelIds with instanceIds maps, full resolution (sides multiples of 32).",
))
