"""LOMIT: local mask-based, exemplar-guided image-to-image translation, plus a mask-guided mode.

Paper: W. Cho, S. Choi, J. Park, D. K. Park, T. Qin, J. Choo, "What and Where to Translate: Local Mask-based
Image-to-Image Translation", https://arxiv.org/abs/1906.03598 (earlier: "Local Image-to-Image Translation via
Pixel-wise Highway Adaptive Instance Normalization", ICLR 2019 submission). Authors' code:
https://github.com/WonwoongCho/Highway-Adaptive-Instance-Normalization (fixtures from the mirror
``AnonymousIclrAuthor/Highway-Adaptive-Instance-Normalization``, commit 82bb58c; PyTorch 0.4, CelebA).

An input image ``x_a`` takes the style of an exemplar ``x_b``: co-segmentation networks predict *where* to translate
in the input (``m_a = M(c_a, c_b)``) and *what* to take from the exemplar (``m_b = M(c_b, c_a)``); the exemplar's
foreground style (from ``up(m_b) * x_b``) is applied inside ``m_a`` and the input's own background style (from
``up(1 - m_a) * x_a``) outside it, by highway AdaIN on the content code.

Faithful to the authors' code (proven by ``tests/parity/test_lomit.py``):

* networks and parameter names (:mod:`zoo.nets.lomit`): instance norm with running statistics in the content
  encoder, BatchNorm in the mask network, GroupNorm(1) in the decoder, no norm in the style encoder and the
  discriminator, reflection padding, LeakyReLU 0.01, foreground/background style heads sharing their weights
  (``tie_style_branches=True``), HAdaIN applied once at the bottleneck with the reference's
  ``sigma = std_h(std_w(c))`` (``sigma_mode="reference"``) and the MLPs' log-variance output;
* the objective of ``Run.update_G`` / ``Run.update_D``: WGAN adversarial terms, StarGAN attribute classification
  (BCE summed over attributes / batch), self and cross-cycle reconstruction, content and foreground/background style
  reconstruction, mask size / feature-similarity (on detached content codes) / smoothness, style regulariser, and
  WGAN-GP (both directions summed, one D step), with every weight configurable;
* the schedule: D every iteration, G when ``iteration % n_critic == 0``; Adam (0.5, 0.999), lr 1e-4 for both; the
  learning rate halves every ``step_size`` iterations once ``iteration > num_iters_decay`` (official ``StepLR`` stepped
  after each iteration past the decay start); kaiming init for G, N(0, 0.02) for D; the generator runs in train mode
  during training, including the translations made for the D step (so running statistics move as in the reference).

Deliberate differences (same mathematics): calls of the per-sample networks (style encoder, decoder, discriminator)
are batched together; the generator calls inside the D step run without a graph; the discriminator is frozen during
the generator step (its gradients there are discarded by the reference anyway). Inside the D step the second
translation reuses the first one's content codes and masks (they depend only on the batch) and replays only the
running-statistics updates of their norm layers, in the reference's order of calls.

Mask-guided mode (not in the paper; for users who have masks, e.g. simulator segmentation) with ``mask_source``:

* ``"learned"``: the paper's method (mask network + mask regularisers).
* ``"given"``: no mask network, no mask losses. Batches carry ``mask_a`` (where to translate in the input) and
  ``mask_b`` (which region of the exemplar gives the style), (B, 1, H, W) in [0, 1]. The style encoders see the images
  multiplied by the masks at full resolution; HAdaIN uses the masks area-averaged (``avg_pool2d(4)``) to the content
  grid. Translated images keep the geometry of their source, so the second stage reuses the same masks
  (``m_ab = m_aa = mask_a``, ``m_ba = m_bb = mask_b``).
* ``"given+learned"``: as ``"given"``, and the mask network is trained on the given masks (BCE, ``lambda_mask_sup``)
  so that inference works with or without masks.

``paste_outside_mask=True`` (inference only) returns ``mask * translation + (1 - mask) * input``: with a binary mask
every pixel outside it is exactly the input's.

Config: ``configs/lomit.yaml`` (CelebA hair colour + smile, paper defaults), ``configs/lomit_masked.yaml`` (restyle
only the cars of toy-world simulator frames), ``configs/tiny/lomit.yaml``.
"""

from __future__ import annotations

import contextlib
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
    load_official_network,
    official_attribute,
    predict_outputs,
    preserved_norm_buffers,
    seeded,
    set_requires_grad,
    to_memory_format,
    to_model_range,
    to_unit_range,
)
from zoo.methods._inference import InferenceModule, frozen_copy
from zoo.methods.base import ChannelsLast, LRStepPoint, TranslationMethod
from zoo.nets.lomit import (
    Discriminator,
    Generator,
    MaskViews,
    SigmaMode,
    given_mask_views,
    learned_mask_views,
    mask_regularizers,
    official_weights_init,
)
from zoo.registry import register_method

__all__ = ["LOMIT", "MaskSource"]

MaskSource = Literal["learned", "given", "given+learned"]

#: official config key -> zoo constructor argument
_OFFICIAL_OPTIONS = {
    "C_DIM": "c_dim", "IMG_SIZE": "image_size", "G_LR": "g_lr", "D_LR": "d_lr", "BETA1": "beta1", "BETA2": "beta2",
    "GAMMA": "gamma", "LR_POLICY": "lr_policy", "NUM_ITERS_DECAY": "num_iters_decay", "STEP_SIZE": "step_size",
    "N_CRITIC": "n_critic", "INIT": "init", "LAMBDA_X_REC": "lambda_x_rec", "LAMBDA_X_CYC": "lambda_x_cyc",
    "LAMBDA_C": "lambda_c", "LAMBDA_S_B": "lambda_s_b", "LAMBDA_S_F": "lambda_s_f", "LAMBDA_CLS": "lambda_cls",
    "LAMBDA_GP": "lambda_gp", "LAMBDA_MASK_MIN": "lambda_mask_min", "LAMBDA_MASK_SMOOTH": "lambda_mask_smooth",
    "LAMBDA_MASK_SIM": "lambda_mask_sim", "LAMBDA_STYLE_REG": "lambda_style_reg",
}
_OFFICIAL_G = {"FIRST_DIM": "g_conv_dim", "N_RES_BLOCKS": "g_repeat_num", "STYLE_DIM": "style_dim",
               "MLP_DIM": "mlp_dim"}
_OFFICIAL_D = {"FIRST_DIM": "d_conv_dim", "N_RES_BLOCKS": "d_repeat_num"}


def _full(x: Tensor) -> Tensor:
    """Half-precision tensors in float32 (losses under mixed precision); float32/float64 unchanged."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _cls_loss(logits: Tensor, target: Tensor) -> Tensor:
    """StarGAN multi-label loss: BCE-with-logits summed over attributes and samples, divided by the batch size."""
    return F.binary_cross_entropy_with_logits(_full(logits), _full(target), reduction="sum") / logits.shape[0]


def _l1(a: Tensor, b: Tensor) -> Tensor:
    return (_full(a) - _full(b)).abs().mean()


def _within(module: nn.Module, parent: nn.Module | None) -> bool:
    return parent is not None and any(m is module for m in parent.modules())


def _batch_inputs(batch: dict[str, Any]) -> tuple[Tensor | None, ...]:
    """``(real_a, real_b, attr_a, attr_b, mask_a, mask_b)`` of a LOMIT batch (masks None when absent)."""
    missing = [k for k in ("real_a", "real_b", "attr_a", "attr_b") if k not in batch]
    if missing:
        raise KeyError(f"LOMIT batches need real_a, real_b, attr_a, attr_b (and mask_a, mask_b for given masks); "
                       f"missing {missing}; use zoo.data.MaskedDataModule")
    return batch["real_a"], batch["real_b"], batch["attr_a"], batch["attr_b"], batch.get("mask_a"), batch.get("mask_b")


@contextlib.contextmanager
def _recording_inputs(modules: list[nn.Module]) -> Iterator[list[tuple[nn.Module, Tensor]]]:
    """Record ``(module, input)`` of every call of ``modules`` inside the block, in call order."""
    records: list[tuple[nn.Module, Tensor]] = []
    handles = [m.register_forward_pre_hook(lambda mod, args: records.append((mod, args[0]))) for m in modules]
    try:
        yield records
    finally:
        for handle in handles:
            handle.remove()


def _rectangle_masks(batch: int, height: int, width: int, generator: torch.Generator | None) -> Tensor:
    """Random binary rectangles (B, 1, H, W) covering a quarter to half of each side."""
    corners = torch.rand(batch, 4, generator=generator)
    ys, xs = torch.arange(height)[None, :, None] / height, torch.arange(width)[None, None, :] / width
    top, left = corners[:, 0, None, None] * 0.5, corners[:, 1, None, None] * 0.5
    bottom, right = top + 0.25 + corners[:, 2, None, None] * 0.25, left + 0.25 + corners[:, 3, None, None] * 0.25
    return ((ys >= top) & (ys < bottom) & (xs >= left) & (xs < right)).float()[:, None]


class LOMITInference(InferenceModule):
    """LOMIT: the exemplar's (masked) style given to the images.

    Shape: images and exemplar (B, C, H, W) in [0, 1] (same size in the graph); with given masks also mask and
    exemplar_mask (B, 1, H, W) in [0, 1] -> (B, C, H, W) in [0, 1].
    """

    def __init__(self, net: nn.Module, *, paste_outside_mask: bool) -> None:
        super().__init__()
        self.net, self.paste = net, paste_outside_mask
        self.given_masks = net.mask is None
        self.input_names = ("images", "exemplar", "mask", "exemplar_mask") if self.given_masks else ("images",
                                                                                                   "exemplar")

    def forward(self, images: Tensor, exemplar: Tensor, mask: Tensor | None = None,
                exemplar_mask: Tensor | None = None) -> Tensor:
        out, where = self.net.translate(to_model_range(images), to_model_range(exemplar), mask, exemplar_mask)
        out = to_unit_range(out)
        return where * out + (1 - where) * images if self.paste else out

    def example_extras(self, images: Tensor, *, generator: torch.Generator | None = None) -> tuple[Tensor, ...]:
        b, _, h, w = images.shape
        exemplar = torch.rand(images.shape, generator=generator)
        if not self.given_masks:
            return (exemplar,)
        return exemplar, _rectangle_masks(b, h, w, generator), _rectangle_masks(b, h, w, generator)


@register_method("lomit")
class LOMIT(TranslationMethod):
    """LOMIT (Cho et al., 2019) with the authors' networks, objective and schedule, and a mask-guided mode.

    Args:
        in_channels: image channels (3).
        c_dim: number of attributes / domains of the classification head (CelebA hair + smile: 4).
        image_size: training image side (128); sets the kernel of the discriminator's attribute head.
        g_conv_dim: generator base width (``G.FIRST_DIM``, 64).
        g_repeat_num: generator residual blocks, half in the content encoder, half in the decoder (8).
        style_dim: style code size (8).
        mlp_dim: hidden width of the style MLPs (256).
        d_conv_dim: discriminator base width (64).
        d_repeat_num: discriminator stride-2 layers (6).
        lambda_x_rec: self-reconstruction weight (10).
        lambda_x_cyc: cross-cycle reconstruction weight (10).
        lambda_c: content reconstruction weight (1).
        lambda_s_f: foreground style reconstruction weight (1).
        lambda_s_b: background style reconstruction weight (1).
        lambda_cls: attribute classification weight, G and D (1).
        lambda_gp: gradient-penalty weight (10).
        lambda_mask_min: mask size weight (1e-4).
        lambda_mask_sim: mask feature-similarity weight (0.1).
        lambda_mask_smooth: mask total-variation weight (0, summed over pixels).
        lambda_style_reg: weight of ``-L1(s_fa, s_fb)`` (0).
        lambda_mask_sup: weight of the mask-network supervision in ``mask_source="given+learned"`` (1).
        n_critic: G is updated on iterations ``i % n_critic == 0`` (5); D every iteration.
        g_lr: generator Adam learning rate (1e-4).
        d_lr: discriminator Adam learning rate (1e-4).
        beta1: Adam beta1 (0.5).
        beta2: Adam beta2 (0.999).
        lr_policy: ``step`` (official) or ``constant``.
        num_iters_decay: iteration after which the learning rate starts to decay (100 000).
        step_size: iterations per halving during the decay (10 000).
        gamma: decay factor (0.5).
        init: generator initialisation, ``kaiming`` (official), ``gaussian``, ``xavier``, ``orthogonal``, ``default``.
        mask_source: ``learned`` (paper), ``given`` or ``given+learned`` (see the module docstring).
        tie_style_branches: foreground and background style heads share weights (the reference; False gives two).
        sigma_mode: HAdaIN normalising scale: ``reference`` (``std_h(std_w(c))``) or ``per_channel``.
        paste_outside_mask: at inference, keep the input outside the input mask.
        inference_mode: generator mode in ``translate``: ``train`` (batch statistics, as the authors' test code,
            which never switches to eval; running buffers are left untouched) or ``eval`` (running statistics).
        diff_augment: DiffAugment policy for the discriminators' inputs, e.g. ``color,translation,cutout``, for
            small datasets (``None``: off; zoo addition, see ``TranslationMethod.use_diff_augment``).
        ema_decay: keep an exponential moving average of the generator (``None``: off); ``translate`` uses it.
        channels_last: train in the channels-last memory format (same math): ``true``, ``false`` or ``"auto"``
            (default: channels-last on CUDA and on CPUs with AVX-512, NCHW on other CPUs).
        compile: compile the networks with ``torch.compile`` (``true``, or a mapping with ``mode``, ``dynamic``,
            ``fullgraph``, ``backend``; see :mod:`zoo.compile`). Models loaded from files start eager.
    """

    optimizer_steps_per_iteration = 2  # an iteration with a generator step (every iteration when n_critic == 1)
    requires_exemplar = True
    directions = ("a2b", "b2a")  # one generator; the exemplar decides the target
    DOMAIN_CHANNELS = ("in_channels", "in_channels")  # both domains have in_channels
    GENERATORS = {"a2b": "generator", "b2a": "generator"}
    IMAGE_DISCRIMINATORS = ("discriminator",)
    COMPILE_BY_PARTS = ("generator", "generator.s_encoder")  # run through methods other than forward
    OFFICIAL_NETWORKS = {"G": "generator", "D": "discriminator"}
    #: zoo loss name(s) -> official ``self.loss`` entry (the official values are already weighted)
    OFFICIAL_LOSS_NAMES = {
        "G/loss_fake": ("g_fake",), "G/D_loss_cls": ("g_cls",), "G/loss_ae_rec": ("g_x_rec",),
        "G/loss_cross_rec": ("g_x_cyc",), "G/loss_cross_c": ("g_c",), "G/loss_cross_s": ("g_s_f", "g_s_b"),
        "G/loss_mask": ("g_mask_min",), "G/loss_mask_smooth": ("g_mask_smooth",),
        "G/loss_style_reg": ("g_style_reg",), "G/loss_mask_sim": ("g_mask_sim",),
        "D/loss_real": ("d_real_b",), "D/loss_fake": ("d_fake_b",), "D/loss_cls": ("d_cls_b",),
        "D/loss_gp": ("d_gp_b",),
    }

    def __init__(
        self,
        *,
        in_channels: int = 3,
        c_dim: int = 4,
        image_size: int = 128,
        g_conv_dim: int = 64,
        g_repeat_num: int = 8,
        style_dim: int = 8,
        mlp_dim: int = 256,
        d_conv_dim: int = 64,
        d_repeat_num: int = 6,
        lambda_x_rec: float = 10.0,
        lambda_x_cyc: float = 10.0,
        lambda_c: float = 1.0,
        lambda_s_f: float = 1.0,
        lambda_s_b: float = 1.0,
        lambda_cls: float = 1.0,
        lambda_gp: float = 10.0,
        lambda_mask_min: float = 1e-4,
        lambda_mask_sim: float = 0.1,
        lambda_mask_smooth: float = 0.0,
        lambda_style_reg: float = 0.0,
        lambda_mask_sup: float = 1.0,
        n_critic: int = 5,
        g_lr: float = 1e-4,
        d_lr: float = 1e-4,
        beta1: float = 0.5,
        beta2: float = 0.999,
        lr_policy: Literal["step", "constant"] = "step",
        num_iters_decay: int = 100_000,
        step_size: int = 10_000,
        gamma: float = 0.5,
        init: Literal["kaiming", "gaussian", "xavier", "orthogonal", "default"] = "kaiming",
        mask_source: MaskSource = "learned",
        tie_style_branches: bool = True,
        sigma_mode: SigmaMode = "reference",
        paste_outside_mask: bool = False,
        inference_mode: Literal["train", "eval"] = "train",
        ema_decay: float | None = None,
        diff_augment: str | None = None,
        channels_last: ChannelsLast = "auto",
        compile: CompileSetting = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if n_critic < 1:
            raise ValueError(f"n_critic must be >= 1, got {n_critic}")
        if image_size % 2 ** d_repeat_num:
            raise ValueError(f"image_size {image_size} must be divisible by 2**d_repeat_num = {2 ** d_repeat_num}")
        self.generator = Generator(g_conv_dim, g_repeat_num, style_dim, mlp_dim, c_dim, in_channels=in_channels,
                                   build_mask=mask_source != "given", tie_style_branches=tie_style_branches,
                                   sigma_mode=sigma_mode)
        self.discriminator = Discriminator(image_size, d_conv_dim, c_dim, d_repeat_num, in_channels=in_channels)
        self.generator.apply(official_weights_init(init))
        self.discriminator.apply(official_weights_init("gaussian"))
        self._iterations_done = 0  # iteration counter used without a Trainer
        self.build_ema(ema_decay)
        self.use_diff_augment(diff_augment)
        self.use_compile(compile)

    # ---------------------------------------------------------------- inference

    @property
    def uses_given_masks(self) -> bool:
        return self.hparams.mask_source != "learned"

    def example_inputs(self, batch_size: int, size: int | tuple[int, int], *,
                       generator: torch.Generator | None = None) -> tuple[Tensor, ...]:
        """Random ``(real_a, real_b, attr_a, attr_b, mask_a, mask_b)`` for :meth:`optimization_step`.

        Images (B, C, H, W) uniform in [-1, 1]; attributes (B, c_dim) random multi-hot in {0, 1}; masks (B, 1, H, W)
        random rectangles in {0, 1} (ignored when ``mask_source="learned"``).
        """
        h, w = (size, size) if isinstance(size, int) else size
        c = self.hparams.in_channels
        real_a = torch.rand(batch_size, c, h, w, generator=generator) * 2 - 1
        real_b = torch.rand(batch_size, c, h, w, generator=generator) * 2 - 1
        attr_a = (torch.rand(batch_size, self.hparams.c_dim, generator=generator) > 0.5).float()
        attr_b = (torch.rand(batch_size, self.hparams.c_dim, generator=generator) > 0.5).float()
        masks = []
        for _ in range(2):
            corners = torch.rand(batch_size, 4, generator=generator)
            ys, xs = torch.arange(h)[None, :, None] / h, torch.arange(w)[None, None, :] / w
            top, left = corners[:, 0, None, None] * 0.5, corners[:, 1, None, None] * 0.5
            bottom = top + 0.25 + corners[:, 2, None, None] * 0.25
            right = left + 0.25 + corners[:, 3, None, None] * 0.25
            masks.append(((ys >= top) & (ys < bottom) & (xs >= left) & (xs < right)).float()[:, None])
        return real_a, real_b, attr_a, attr_b, masks[0], masks[1]

    def forward(self, x: Tensor, exemplar: Tensor | None = None, mask: Tensor | None = None,
                exemplar_mask: Tensor | None = None) -> Tensor:
        """Model-space translation: (B, C, H, W) in [-1, 1] with the exemplar's style -> (B, C, H, W) in [-1, 1].

        ``exemplar`` (B, C, H', W') defaults to ``x`` itself (a self-translation, for tracing). Masks as in
        :meth:`translate`; missing ones are predicted (learned mask network) or all ones (``mask_source="given"``).
        """
        net = self.generator_for("a2b")
        return self._run(net, x, x if exemplar is None else exemplar, mask, exemplar_mask)[0]

    def _run(self, net: nn.Module, x: Tensor, exemplar: Tensor, mask: Tensor | None,
             exemplar_mask: Tensor | None) -> tuple[Tensor, Tensor]:
        """(translation in [-1, 1], input mask used at image resolution); all-ones masks replace missing ones when
        the generator has no mask network."""
        if net.mask is None:
            mask = torch.ones_like(x[:, :1]) if mask is None else mask
            exemplar_mask = torch.ones_like(exemplar[:, :1]) if exemplar_mask is None else exemplar_mask
        return net.translate(x, exemplar, mask, exemplar_mask)

    @contextlib.contextmanager
    def _inference(self, net: nn.Module) -> Iterator[None]:
        """``inference_mode`` of ``net`` (train: batch statistics, running buffers restored afterwards)."""
        was_training = net.training
        train_mode = self.hparams.inference_mode == "train"
        net.train(train_mode)
        try:
            with preserved_norm_buffers(net) if train_mode else contextlib.nullcontext():
                yield
        finally:
            net.train(was_training)

    @staticmethod
    def _check_mask(mask: Tensor, batch: int, like: Tensor, name: str) -> Tensor:
        if mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[0] not in (1, batch):
            raise ValueError(f"{name} must have shape (B or 1, 1, H, W), got {tuple(mask.shape)}")
        if mask.shape[-2:] != like.shape[-2:]:
            raise ValueError(f"{name} has size {tuple(mask.shape[-2:])} but its image {tuple(like.shape[-2:])}; "
                             "pad or resize it like the image")
        if mask.numel() and (mask.min() < 0 or mask.max() > 1):
            raise ValueError(f"{name} values must lie in [0, 1] (got [{mask.min():.3g}, {mask.max():.3g}])")
        return mask.to(like.dtype).expand(batch, -1, -1, -1)

    def export_module(self, direction: str = "a2b") -> InferenceModule:
        """``translate`` as a traceable module (``zoo export``): images and ``exemplar`` in (and the masks with
        ``mask_source="given"``); train-mode inference normalises with the batch's statistics, as here."""
        net = frozen_copy(self.generator_for(self.check_direction(direction)),
                          train_mode=self.hparams.inference_mode == "train", what=type(self).__name__)
        return LOMITInference(net, paste_outside_mask=bool(self.hparams.paste_outside_mask))

    def translate(self, images: Tensor, *, exemplar: Tensor, mask: Tensor | None = None,
                  exemplar_mask: Tensor | None = None, direction: str = "a2b", seed: int | None = None) -> Tensor:
        """Give ``images`` the (masked) style of ``exemplar``.

        Args:
            images: (B, C, H, W) in [0, 1]; H and W multiples of 4.
            exemplar: (B or 1, C, H', W') in [0, 1]; H', W' multiples of 4 (any size: its style is pooled).
            mask: (B or 1, 1, H, W) in {0, 1} (soft values allowed): where to translate. None: the learned mask
                network decides, or the whole image when the model has none (``mask_source="given"``).
            exemplar_mask: (B or 1, 1, H', W'): which region of the exemplar gives the style; None as for ``mask``.
            direction: ``a2b`` or ``b2a`` (the same generator; the exemplar sets the target).
            seed: accepted for the common API; LOMIT's inference draws no random numbers.

        Returns:
            (B, C, H, W) in [0, 1]. With ``paste_outside_mask`` the input is kept outside the input mask (exactly,
            for a binary mask).
        """
        self.check_direction(direction)
        c = self.hparams.in_channels
        for name, x in (("images", images), ("exemplar", exemplar)):
            check_images(x, c, self.size_multiple, name=name)
        batch = images.shape[0]
        if exemplar.shape[0] not in (1, batch):
            raise ValueError(f"exemplar batch must be 1 or {batch}, got {exemplar.shape[0]}")
        net = self.generator_for(direction)
        device = next(net.parameters()).device
        images, exemplar = images.to(device), exemplar.to(device).expand(batch, -1, -1, -1)
        if mask is not None:
            mask = self._check_mask(mask.to(device), batch, images, "mask")
        if exemplar_mask is not None:
            exemplar_mask = self._check_mask(exemplar_mask.to(device), batch, exemplar, "exemplar_mask")
        with torch.inference_mode(), seeded(seed, images.device), self._inference(net):
            out, where = self._run(net, to_model_range(images), to_model_range(exemplar), mask, exemplar_mask)
            out = to_unit_range(out)
            if self.hparams.paste_outside_mask:
                out = where * out + (1 - where) * images
            return out

    def predict_masks(self, images: Tensor, *, exemplar: Tensor) -> tuple[Tensor, Tensor]:
        """The co-segmentation masks the model would use: where in ``images`` and what in ``exemplar``.

        Args:
            images: (B, C, H, W) in [0, 1]; exemplar: (B or 1, C, H', W') in [0, 1] (sides multiples of 4).

        Returns:
            ``(mask, exemplar_mask)``: (B, 1, H, W) and (B, 1, H', W') in [0, 1], bilinearly upsampled from the
            content grid as the style encoders see them.
        """
        net = self.generator_for("a2b")
        if net.mask is None:
            raise ValueError("this model has no mask network (mask_source='given'); its masks come from the data")
        batch = images.shape[0]
        device = next(net.parameters()).device
        x, e = to_model_range(images.to(device)), to_model_range(exemplar.to(device).expand(batch, -1, -1, -1))
        with torch.inference_mode(), self._inference(net):
            c_a, c_b = net.c_encoder(x), net.c_encoder(e)
            return learned_mask_views(net.mask(c_a, c_b)).image, learned_mask_views(net.mask(c_b, c_a)).image

    # ---------------------------------------------------------------- training

    @property
    def loss_weights(self) -> dict[str, float]:
        h = self.hparams
        return {"g_fake": 1.0, "g_cls": h.lambda_cls, "g_x_rec": h.lambda_x_rec, "g_x_cyc": h.lambda_x_cyc,
                "g_c": h.lambda_c, "g_s_f": h.lambda_s_f, "g_s_b": h.lambda_s_b, "g_mask_min": h.lambda_mask_min,
                "g_mask_sim": h.lambda_mask_sim, "g_mask_smooth": h.lambda_mask_smooth,
                "g_style_reg": h.lambda_style_reg, "g_mask_sup": h.lambda_mask_sup,
                "d_real": 1.0, "d_fake": 1.0, "d_cls": h.lambda_cls, "d_gp": h.lambda_gp}

    def lr_at(self, iteration: int, base_lr: float) -> float:
        """Learning rate of ``iteration`` (0-based): official ``StepLR`` stepped after every iteration past
        ``num_iters_decay``, i.e. ``base * gamma ** (max(0, iteration - 1 - num_iters_decay) // step_size)``."""
        h = self.hparams
        if h.lr_policy == "constant":
            return base_lr
        return base_lr * h.gamma ** (max(0, iteration - 1 - h.num_iters_decay) // h.step_size)

    def _masks(self, c_x: Tensor, c_y: Tensor, given: Tensor | None) -> MaskViews:
        return given_mask_views(given) if self.uses_given_masks else learned_mask_views(self.generator.mask(c_x, c_y))

    def _styles(self, images: list[Tensor], masks: list[Tensor], foreground: list[bool]) -> list[Tensor]:
        """Style codes of ``masks[i] * images[i]`` in one batched trunk call (the style encoder is per-sample)."""
        enc = self.generator.s_encoder
        h = enc.shared(torch.cat([m * x for m, x in zip(masks, images, strict=True)]))
        parts = h.split([x.shape[0] for x in images])
        if enc.tie_branches:
            return list(enc.foreground(h).split([x.shape[0] for x in images]))
        return [(enc.foreground if fg else enc.background)(p) for p, fg in zip(parts, foreground, strict=True)]

    def _decode(self, contents: list[Tensor], masks: list[Tensor], s_fg: list[Tensor], s_bg: list[Tensor]
                ) -> list[Tensor]:
        """Decoder calls batched together (HAdaIN, GroupNorm and the MLPs are per-sample)."""
        out = self.generator.decoder(torch.cat(contents), torch.cat(masks), torch.cat(s_fg), torch.cat(s_bg))
        return list(out.split([c.shape[0] for c in contents]))

    def generator_losses(self, real_a: Tensor, real_b: Tensor, attr_a: Tensor, attr_b: Tensor,
                         mask_a: Tensor | None = None, mask_b: Tensor | None = None) -> StepOutput:
        """Unweighted generator terms of the official ``update_G`` (both directions) and its images.

        Args:
            real_a / real_b: (B, C, H, W) in [-1, 1]: inputs and exemplars (each is the other's exemplar).
            attr_a / attr_b: (B, c_dim) multi-hot attributes.
            mask_a / mask_b: (B, 1, H, W) in [0, 1], used when ``mask_source`` is ``given`` or ``given+learned``.
        """
        h, g = self.hparams, self.generator
        given = self.uses_given_masks
        if given and (mask_a is None or mask_b is None):
            raise ValueError(f"mask_source={h.mask_source!r} needs mask_a and mask_b in every batch")
        learned_ok = g.mask is not None
        # stage 1
        c_a, c_b = g.c_encoder(real_a), g.c_encoder(real_b)
        m_a, m_b = self._masks(c_a, c_b, mask_a), self._masks(c_b, c_a, mask_b)
        s_fa, s_ba, s_fb, s_bb = self._styles([real_a, real_a, real_b, real_b],
                                              [m_a.image, m_a.image_inv, m_b.image, m_b.image_inv],
                                              [True, False, True, False])
        x_ab, x_ba = self._decode([c_a, c_b], [m_a.grid, m_b.grid], [s_fb, s_fa], [s_ba, s_bb])
        src, cls = self.discriminator(torch.cat([x_ab, x_ba]))
        src_ab, src_ba = src.split(x_ab.shape[0])
        cls_ab, cls_ba = cls.split(x_ab.shape[0])
        # stage 2: re-encode the translations
        c_ab, c_ba = g.c_encoder(x_ab), g.c_encoder(x_ba)
        m_ab, m_ba = (m_a, m_b) if given else (self._masks(c_ab, c_ba, None), self._masks(c_ba, c_ab, None))
        s_fab, s_bab, s_fba, s_bba = self._styles([x_ab, x_ab, x_ba, x_ba],
                                                  [m_ab.image, m_ab.image_inv, m_ba.image, m_ba.image_inv],
                                                  [True, False, True, False])
        m_aa, m_bb = (m_a, m_b) if given else (self._masks(c_a, c_a, None), self._masks(c_b, c_b, None))
        x_aba, x_bab, x_aa, x_bb = self._decode([c_ab, c_ba, c_a, c_b], [m_ab.grid, m_ba.grid, m_aa.grid, m_bb.grid],
                                                [s_fba, s_fab, s_fa, s_fb], [s_bab, s_bba, s_ba, s_bb])
        terms = {
            "g_fake": -(_full(src_ab).mean() + _full(src_ba).mean()),
            "g_cls": _cls_loss(cls_ab, attr_b) + _cls_loss(cls_ba, attr_a),
            "g_x_rec": _l1(x_aa, real_a) + _l1(x_bb, real_b),
            "g_x_cyc": _l1(x_aba, real_a) + _l1(x_bab, real_b),
            "g_c": _l1(c_ab, c_a) + _l1(c_ba, c_b),
            "g_s_f": _l1(s_fab, s_fb) + _l1(s_fba, s_fa),
            "g_s_b": _l1(s_bab, s_ba) + _l1(s_bba, s_bb),
            "g_style_reg": -_l1(s_fa, s_fb),
        }
        if not given:
            sim_a, min_a, smooth_a = mask_regularizers([_full(m.grid) for m in (m_a, m_ab, m_aa)],
                                                       _full(c_a.detach()))
            sim_b, min_b, smooth_b = mask_regularizers([_full(m.grid) for m in (m_b, m_ba, m_bb)],
                                                       _full(c_b.detach()))
            terms.update(g_mask_min=min_a + min_b, g_mask_sim=sim_a + sim_b, g_mask_smooth=smooth_a + smooth_b)
        elif learned_ok:  # given+learned: teach the mask network the given masks (content grid)
            pred_a, pred_b = g.mask(c_a, c_b), g.mask(c_b, c_a)
            with torch.autocast(pred_a.device.type, enabled=False):  # BCE on probabilities refuses autocast
                terms["g_mask_sup"] = (F.binary_cross_entropy(_full(pred_a), _full(m_a.grid))
                                       + F.binary_cross_entropy(_full(pred_b), _full(m_b.grid)))
        images = {"x_ab": x_ab, "x_ba": x_ba, "x_aba": x_aba, "x_bab": x_bab, "x_aa": x_aa, "x_bb": x_bb,
                  "m_a": m_a.grid, "m_b": m_b.grid, "s_fa": s_fa, "s_fb": s_fb, "s_ba": s_ba, "s_bb": s_bb,
                  "c_a": c_a, "c_b": c_b}
        return StepOutput(terms, images)

    def discriminator_losses(self, real_a: Tensor, real_b: Tensor, attr_a: Tensor, attr_b: Tensor,
                             mask_a: Tensor | None = None, mask_b: Tensor | None = None, *,
                             gp_alpha: tuple[Tensor, Tensor] | None = None) -> StepOutput:
        """Unweighted terms of the official ``update_D`` for both directions (suffix ``_a``: real ``x_a``).

        The generator translates both ways in its current (train) mode without a graph, moving its running
        statistics as the reference does; ``gp_alpha`` = the two (B, 1, 1, 1) interpolation weights (drawn with
        ``torch.rand`` after each translation when None, as the reference).
        """
        g = self.generator
        if self.uses_given_masks and (mask_a is None or mask_b is None):
            raise ValueError(f"mask_source={self.hparams.mask_source!r} needs mask_a and mask_b in every batch")
        batch = real_a.shape[0]
        alphas = []

        def draw_alpha(index: int) -> None:
            if gp_alpha is None:
                alphas.append(torch.rand(batch, 1, 1, 1, device=real_a.device, dtype=real_a.dtype))
            else:
                alphas.append(gp_alpha[index].to(device=real_a.device, dtype=real_a.dtype))

        # The reference calls G(x_a, x_b) then G(x_b, x_a): the second call's content codes and masks equal the
        # first's (instance / batch norm outputs use batch statistics only), so they are reused; only the
        # running-statistics updates of those calls are replayed, on the recorded norm inputs, in the reference's
        # order (per layer: a, b, b, a for the content encoder; (a, b), (b, a), (b, a), (a, b) for the mask network).
        with torch.no_grad():
            norm_modules = [m for m in g.modules() if isinstance(m, (nn.InstanceNorm2d, nn.BatchNorm2d))]
            with _recording_inputs([m for m in norm_modules if _within(m, g.c_encoder)]) as rec_c_a:
                c_a = g.c_encoder(real_a)
            with _recording_inputs([m for m in norm_modules if _within(m, g.c_encoder)]) as rec_c_b:
                c_b = g.c_encoder(real_b)
            if self.uses_given_masks:
                m_a, m_b = given_mask_views(mask_a), given_mask_views(mask_b)
                rec_m_ab = rec_m_ba = []
            else:
                mask_norms = [m for m in norm_modules if _within(m, g.mask)]
                with _recording_inputs(mask_norms) as rec_m_ab:
                    m_a = learned_mask_views(g.mask(c_a, c_b))
                with _recording_inputs(mask_norms) as rec_m_ba:
                    m_b = learned_mask_views(g.mask(c_b, c_a))
            fake_ab = g.decoder(c_a, m_a.grid, g.s_encoder(m_b.image * real_b, True),
                                g.s_encoder(m_a.image_inv * real_a, False))
            draw_alpha(0)
            for module, x in rec_c_b + rec_c_a + rec_m_ba + rec_m_ab:
                module(x)
            del rec_c_a, rec_c_b, rec_m_ab, rec_m_ba
            fake_ba = g.decoder(c_b, m_b.grid, g.s_encoder(m_a.image * real_a, True),
                                g.s_encoder(m_b.image_inv * real_b, False))
            draw_alpha(1)
            fakes = [fake_ab, fake_ba]
        reals = torch.cat([real_a, real_b])
        fake = torch.cat(fakes).detach()
        src, cls = self.discriminator(torch.cat([reals, fake]))
        src_real, src_fake = _full(src).split(2 * batch)
        alpha = torch.cat(alphas)
        x_hat = (alpha * reals.detach() + (1 - alpha) * fake).requires_grad_(True)
        src_hat, _ = self.discriminator(x_hat)
        (grad,) = torch.autograd.grad(_full(src_hat).sum(), x_hat, create_graph=True)
        norms = torch.sqrt((_full(grad).flatten(1) ** 2).sum(dim=1))
        penalty = (norms - 1) ** 2
        cls_real = cls[: 2 * batch]
        terms = {}
        for index, (side, attr) in enumerate((("a", attr_a), ("b", attr_b))):
            part = slice(index * batch, (index + 1) * batch)
            terms[f"d_real_{side}"] = -src_real[part].mean()
            terms[f"d_fake_{side}"] = src_fake[part].mean()
            terms[f"d_cls_{side}"] = _cls_loss(cls_real[part], attr)
            terms[f"d_gp_{side}"] = penalty[part].mean()
        return StepOutput(terms, {"fake_ab": fakes[0], "fake_ba": fakes[1]})

    def optimization_step(self, real_a: Tensor, real_b: Tensor, attr_a: Tensor, attr_b: Tensor,
                          mask_a: Tensor | None, mask_b: Tensor | None, opt_g: Any, opt_d: Any, *,
                          iteration: int | None = None, gp_alpha: tuple[Tensor, Tensor] | None = None) -> StepOutput:
        """One official iteration: the D step (both directions, one Adam step), then, when
        ``iteration % n_critic == 0``, the G step.

        Args:
            real_a / real_b: (B, C, H, W) in [-1, 1]; ``real_b`` are the exemplars of ``real_a`` and vice versa.
            attr_a / attr_b: (B, c_dim) multi-hot attributes (domain one-hots for two-domain data).
            mask_a / mask_b: (B, 1, H, W) in [0, 1] or None (``mask_source="learned"`` ignores them).
            opt_g / opt_d: generator / discriminator optimizers (plain or Lightning-wrapped).
            iteration: 0-based iteration index for the schedule; None: the Trainer's batch index, or a counter of
                the calls made without a Trainer.
            gp_alpha: fixed gradient-penalty interpolation weights (parity tests).

        Returns:
            Weighted loss terms (``d_total``; ``g_total`` on generator iterations) and images.
        """
        h, weights = self.hparams, self.loss_weights
        if iteration is None:
            if getattr(self, "_trainer", None) is not None:
                iteration = iteration_index(self)[0]
            else:
                iteration = self._iterations_done
        self._iterations_done = iteration + 1
        _, epoch = iteration_index(self)
        if h.lr_policy != "constant":
            for opt, base in ((opt_g, h.g_lr), (opt_d, h.d_lr)):
                for group in opt.param_groups:
                    group["lr"] = self.lr_at(iteration, base)
        if not self.uses_given_masks:
            mask_a = mask_b = None

        d_out = self.discriminator_losses(real_a, real_b, attr_a, attr_b, mask_a, mask_b, gp_alpha=gp_alpha)
        losses = {k: weights[k.rsplit("_", 1)[0]] * v for k, v in d_out.losses.items()}
        losses["d_total"] = sum(losses.values())
        check_finite(losses, iteration=iteration, epoch=epoch)
        opt_d.zero_grad()
        backward(self, losses["d_total"], opt_d)
        opt_d.step()
        images = dict(d_out.images)

        if iteration % h.n_critic == 0:
            set_requires_grad([self.discriminator], False)
            g_out = self.generator_losses(real_a, real_b, attr_a, attr_b, mask_a, mask_b)
            g_losses = {k: weights[k] * v for k, v in g_out.losses.items()}
            g_losses["g_total"] = sum(g_losses.values())
            check_finite(g_losses, iteration=iteration, epoch=epoch)
            opt_g.zero_grad()
            backward(self, g_losses["g_total"], opt_g)
            opt_g.step()
            set_requires_grad([self.discriminator], True)
            self.update_ema()
            losses.update(g_losses)
            images.update(g_out.images)
        return StepOutput(losses, images)

    @property
    def lr_step_point(self) -> LRStepPoint | None:
        """None: :meth:`optimization_step` sets the learning rate of each iteration itself (:meth:`lr_at`)."""
        return None

    @property
    def eager_networks(self) -> tuple[str, ...]:
        """The discriminator: its WGAN-GP gradient penalty differentiates its input gradient."""
        return ("discriminator",)

    @property
    def schedule_cycle(self) -> int:
        """``n_critic``: D every iteration, G every ``n_critic``-th."""
        return int(self.hparams.n_critic)

    def training_inputs(self, batch: dict[str, Any]) -> tuple[Tensor | None, ...]:
        """``(real_a, real_b, attr_a, attr_b, mask_a, mask_b)`` of :meth:`optimization_step` from a batch.

        Images (B, C, H, W) in [-1, 1] (channels-last when training uses it), attributes (B, c_dim), masks
        (B, 1, H, W) in [0, 1] or None.
        """
        real_a, real_b, *conditions = _batch_inputs(batch)
        return (to_memory_format(real_a, self.uses_channels_last), to_memory_format(real_b, self.uses_channels_last),
                *conditions)

    def validation_metrics(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """``cycle_a``: L1 of ``real_a`` -> exemplar ``real_b`` -> exemplar ``real_a``; with ``mask_a`` (B, 1, H, W)
        also ``change_outside`` / ``change_inside``: how much the translation changed the input outside / inside it.
        """
        real_a, real_b, _, _, mask_a, mask_b = _batch_inputs(batch)
        net = self.generator
        masks = (mask_a, mask_b) if self.uses_given_masks else (None, None)
        with self._inference(net):
            x_ab = self._run(net, real_a, real_b, *masks)[0]
            x_aba = self._run(net, x_ab, real_a, *masks)[0]
        metrics = {"cycle_a": _l1(x_aba, real_a)}
        if mask_a is not None:
            change = (_full(x_ab) - _full(real_a)).abs().mean(1, keepdim=True)
            outside, inside = (1 - mask_a).sum().clamp_min(1), mask_a.sum().clamp_min(1)
            metrics.update(change_outside=(change * (1 - mask_a)).sum() / outside,
                           change_inside=(change * mask_a).sum() / inside)
        return metrics

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Tensor]:
        """``{"fake_b": ...}`` (B, C, H, W) in [0, 1]: ``real_a`` with the style of the exemplar ``real_b``.

        The exemplar (and its ``mask_b``) only gives its pooled style, so it is padded on its own (it may differ in
        size from ``real_a``); the input mask ``mask_a`` is padded with ``real_a``.
        """
        if "real_b" not in batch:
            raise KeyError("LOMIT translates with the style of an exemplar: the predict batch needs 'real_b'")
        unaligned = {"exemplar": ((batch["real_b"] + 1) / 2).clamp(0, 1)}
        if batch.get("mask_b") is not None:
            unaligned["exemplar_mask"] = batch["mask_b"]
        return predict_outputs(self, batch, masks={"mask": "mask_a"}, unaligned=unaligned)

    def configure_optimizers(self):
        h = self.hparams
        betas = (h.beta1, h.beta2)
        # The bias of the real/fake head gets an identically zero gradient (the WGAN real and fake means cancel it),
        # so Adam never moves it; leaving it out of the optimizer is the same computation.
        d_params = [p for n, p in self.discriminator.named_parameters() if n != "conv1.conv.bias"]
        return [adam(self.generator.parameters(), lr=h.g_lr, betas=betas),
                adam(d_params, lr=h.d_lr, betas=betas)], []

    # ---------------------------------------------------------------- official checkpoints

    @classmethod
    def init_args_from_official(cls, config: dict[str, Any]) -> dict[str, Any]:
        """zoo constructor arguments from an official ``configs/config_*.yaml`` dict (top level + ``G`` / ``D``)."""
        args = {ours: config[key] for key, ours in _OFFICIAL_OPTIONS.items() if key in config}
        args.update({ours: config["G"][key] for key, ours in _OFFICIAL_G.items() if key in config.get("G", {})})
        args.update({ours: config["D"][key] for key, ours in _OFFICIAL_D.items() if key in config.get("D", {})})
        if "init" in args:
            args["init"] = str(args["init"])
        return args

    def convert_official_state_dict(self, state_dict: dict[str, Tensor], *, net: str = "G") -> dict[str, Tensor]:
        """An official ``G_exemplar_*.pth`` / ``D_exemplar_*.pth`` state dict -> keys of this module.

        A ``module.`` prefix (DataParallel) is stripped. For the generator: without a mask network
        (``mask_source="given"``) the ``mask.*`` entries are dropped; with untied style heads both heads start from
        the official (shared) weights; a missing ``background.*`` set is filled from ``foreground.*``.
        """
        attribute = official_attribute(self, net)
        out = {k.removeprefix("module."): v for k, v in state_dict.items()}
        if net == "G":
            if self.generator.mask is None:
                out = {k: v for k, v in out.items() if not k.startswith("mask.")}
            for key in [k for k in out if k.startswith("s_encoder.foreground.")]:
                out.setdefault(key.replace(".foreground.", ".background."), out[key])
        return {f"{attribute}.{k}": v for k, v in out.items()}

    def load_official_weights(self, state_dict: dict[str, Tensor], *, net: str = "G") -> None:
        """Load an official network state dict strictly (every key used once, shapes checked); EMA copy too."""
        prefix = f"{official_attribute(self, net)}."
        converted = self.convert_official_state_dict(state_dict, net=net)
        load_official_network(self, {key.removeprefix(prefix): value for key, value in converted.items()}, net,
                              norm=self.official_norm)
