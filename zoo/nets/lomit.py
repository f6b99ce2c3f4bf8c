"""LOMIT networks (Cho et al., "What and Where to Translate: Local Mask-based Image-to-Image Translation").

The module tree and parameter names follow the authors' ``model.py`` (repository
``WonwoongCho/Highway-Adaptive-Instance-Normalization``, mirrored as ``AnonymousIclrAuthor/...``, commit 82bb58c), so
official state dicts load strictly: ``Generator`` = ``c_encoder`` (content encoder), ``s_encoder`` (style encoder with a
``shared`` trunk and ``foreground`` / ``background`` heads), ``mask`` (co-segmentation mask network with channel
co-attention ``co_attn``) and ``decoder`` (highway AdaIN, residual blocks, upsampling; style MLPs ``f_mlp`` /
``b_mlp``);
``Discriminator`` = StarGAN-style PatchGAN ``main`` + ``conv1`` (real/fake map) + ``conv2`` (attribute logits).

Shapes for an image side S (a multiple of 4; the discriminator needs S divisible by 2**repeat_num):
content code (B, 4 * conv_dim, S/4, S/4); masks (B, 1, S/4, S/4) in (0, 1); style codes (B, style_dim, 1, 1).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from functools import partial
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.nets.few_output_conv import Conv2dFewOutputs, conv2d_class
from zoo.nets.norm import ChannelsLastInstanceNorm2d
from zoo.nets.padding import ReflectionPad2d
from zoo.nets.upsample_conv import upsample2x_conv2d, upsampled_sequential

__all__ = [
    "ConvBlock",
    "LinearBlock",
    "ResidualBlock",
    "ContentEncoder",
    "StyleEncoder",
    "StyleMLP",
    "CosegAttention",
    "MaskNetwork",
    "Decoder",
    "Generator",
    "Discriminator",
    "SigmaMode",
    "highway_adain",
    "style_affine",
    "content_sigma",
    "upsample_mask",
    "downsample_mask",
    "MaskViews",
    "learned_mask_views",
    "given_mask_views",
    "mask_regularizers",
    "official_weights_init",
]

SigmaMode = Literal["reference", "per_channel"]
_NormName = Literal["in", "ln", "bn", "none"]
_ActName = Literal["relu", "lrelu", "tanh", "sigmoid", "none"]

#: Side ratio between images and the content grid (two stride-2 convolutions).
CONTENT_STRIDE = 4


def _norm(name: str, channels: int) -> nn.Module | None:
    if name == "in":  # the reference tracks running statistics (used in eval mode only)
        return ChannelsLastInstanceNorm2d(channels, affine=True, track_running_stats=True)
    if name == "ln":  # the reference's "layer norm" is GroupNorm with one group and a per-channel affine
        return nn.GroupNorm(1, channels)
    if name == "bn":
        return nn.BatchNorm2d(channels)
    if name == "none":
        return None
    raise ValueError(f"unknown norm {name!r}; expected 'in', 'ln', 'bn' or 'none'")


def _activation(name: str) -> nn.Module | None:
    if name == "relu":
        return nn.ReLU()
    if name == "lrelu":
        return nn.LeakyReLU(0.01)
    if name == "tanh":
        return nn.Tanh()
    if name == "sigmoid":
        return nn.Sigmoid()
    if name == "none":
        return None
    raise ValueError(f"unknown activation {name!r}; expected 'relu', 'lrelu', 'tanh', 'sigmoid' or 'none'")


class ConvBlock(nn.Module):
    """Reflection pad -> conv (with bias) -> optional norm -> optional activation (official ``ConvBlock``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, padding: int, *,
                 norm: _NormName = "in", activation: _ActName = "relu") -> None:
        super().__init__()
        self.pad = ReflectionPad2d(padding)
        self.conv = conv2d_class(out_channels)(in_channels, out_channels, kernel_size, stride)
        self.norm = _norm(norm, out_channels)
        self.activation = _activation(activation)

    def forward(self, x: Tensor) -> Tensor:
        return self._convolve(self.conv, self.pad(x))

    def forward_upsampled(self, x: Tensor) -> Tensor:
        """``forward(nearest_x2(x))``, computed at the resolution of ``x`` (see :mod:`zoo.nets.upsample_conv`).

        (B, C, H, W) -> (B, out_channels, 2H, 2W).
        """
        if self.conv.stride != (1, 1):
            return self.forward(F.interpolate(x, scale_factor=2, mode="nearest"))
        conv = partial(upsample2x_conv2d, weight=self.conv.weight, bias=self.conv.bias,
                       padding=self.pad.padding[0], pad_mode="reflect")
        return self._convolve(conv, x)

    def _convolve(self, conv: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
        if (x.device.type == "cpu" and not x.is_contiguous(memory_format=torch.channels_last)
                and not isinstance(conv, Conv2dFewOutputs)):
            # oneDNN convolutions run about 1.5x faster on channels-last data on CPU, while reflection padding,
            # the norms and elementwise ops are fastest on NCHW data: convert around the convolution only
            x = conv(x.contiguous(memory_format=torch.channels_last)).contiguous()
        else:
            x = conv(x)
        if self.norm is not None:
            x = self.norm(x)
        if self.activation is not None:
            x = self.activation(x)
        return x


class LinearBlock(nn.Module):
    """Linear (with bias) -> optional activation (official ``LinearBlock`` with ``norm='none'``)."""

    def __init__(self, in_features: int, out_features: int, *, activation: _ActName = "relu") -> None:
        super().__init__()
        self.fc = nn.Linear(in_features, out_features)
        self.activation = _activation(activation)

    def forward(self, x: Tensor) -> Tensor:
        x = self.fc(x)
        return self.activation(x) if self.activation is not None else x


class ResidualBlock(nn.Module):
    """``x + ConvBlock3x3(norm, act) -> ConvBlock3x3(norm, no act)``."""

    def __init__(self, dim: int, *, norm: _NormName = "in", activation: _ActName = "relu") -> None:
        super().__init__()
        self.main = nn.Sequential(ConvBlock(dim, dim, 3, 1, 1, norm=norm, activation=activation),
                                  ConvBlock(dim, dim, 3, 1, 1, norm=norm, activation="none"))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.main(x)


class ContentEncoder(nn.Module):
    """(B, 3, H, W) -> content code (B, 4 * conv_dim, H/4, W/4); instance norm with running statistics, ReLU."""

    def __init__(self, conv_dim: int = 64, repeat_num: int = 4, *, in_channels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [ConvBlock(in_channels, conv_dim, 7, 1, 3, norm="in", activation="relu")]
        dim = conv_dim
        for _ in range(2):
            layers.append(ConvBlock(dim, dim * 2, 4, 2, 1, norm="in", activation="relu"))
            dim *= 2
        layers += [ResidualBlock(dim, norm="in", activation="relu") for _ in range(repeat_num)]
        self.main = nn.Sequential(*layers)
        self.out_dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return self.main(x)


class StyleEncoder(nn.Module):
    """(B, 3, H, W) -> style code (B, style_dim, 1, 1); a shared trunk and a foreground / a background head.

    No normalisation, LeakyReLU 0.01. With ``tie_branches`` (the reference) both heads are the *same* modules, so the
    state dict lists both key sets with identical tensors and each weight receives one (summed) gradient.
    """

    def __init__(self, conv_dim: int = 64, style_dim: int = 8, *, in_channels: int = 3,
                 tie_branches: bool = True) -> None:
        super().__init__()
        shared: list[nn.Module] = [ConvBlock(in_channels, conv_dim, 7, 1, 3, norm="none", activation="lrelu")]
        dim = conv_dim
        for _ in range(2):
            shared.append(ConvBlock(dim, dim * 2, 4, 2, 1, norm="none", activation="lrelu"))
            dim *= 2
        head = [ConvBlock(dim, dim, 4, 2, 1, norm="none", activation="lrelu") for _ in range(2)]
        head += [nn.AdaptiveAvgPool2d(1), nn.Conv2d(dim, style_dim, 1, 1, 0)]
        self.shared = nn.Sequential(*shared)
        self.foreground = nn.Sequential(*head)
        self.background = nn.Sequential(*head) if tie_branches else copy.deepcopy(self.foreground)
        self.tie_branches = tie_branches

    def forward(self, x: Tensor, foreground: bool) -> Tensor:
        h = self.shared(x)
        return self.foreground(h) if foreground else self.background(h)


class StyleMLP(nn.Module):
    """Style code (B, style_dim[, 1, 1]) -> AdaIN parameters (B, 2 * C) = [mean (C) | log-variance (C)].

    ``style_dim -> dim`` (LReLU) -> ``num_block`` x (``dim -> dim``, LReLU) -> ``dim -> out_dim`` (linear).
    """

    def __init__(self, in_dim: int, out_dim: int, dim: int, num_block: int = 1) -> None:
        super().__init__()
        layers = [LinearBlock(in_dim, dim, activation="lrelu")]
        layers += [LinearBlock(dim, dim, activation="lrelu") for _ in range(max(num_block, 0))]
        layers.append(LinearBlock(dim, out_dim, activation="none"))
        self.main = nn.Sequential(*layers)

    def forward(self, s: Tensor) -> Tensor:
        return self.main(s.reshape(s.shape[0], -1))


class CosegAttention(nn.Module):
    """Channel attention from a content code: GAP -> Linear(C, 2C), tanh -> Linear(2C, C), sigmoid -> (B, C, 1, 1)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.main = nn.Sequential(LinearBlock(dim, dim * 2, activation="tanh"),
                                  LinearBlock(dim * 2, dim, activation="sigmoid"))

    def forward(self, c: Tensor) -> Tensor:
        return self.main(c.mean(dim=(2, 3)))[:, :, None, None]


class MaskNetwork(nn.Module):
    """Co-segmentation mask ``M(c_a, c_b)``: where in ``c_a`` to translate, steered by the other image's code.

    ``sigmoid(conv1x1(6 x ConvBlock3x3 BN ReLU(co_attn(c_b) * c_a)))`` -> (B, 1, h, w) in (0, 1).
    """

    def __init__(self, dim: int = 256, repeat_num: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(2 * repeat_num):
            layers.append(ConvBlock(dim, dim, 3, 1, 1, norm="bn", activation="relu"))
        layers.append(ConvBlock(dim, 1, 1, 1, 0, norm="none", activation="sigmoid"))
        self.main = nn.Sequential(*layers)
        self.co_attn = CosegAttention(dim)

    def forward(self, c_a: Tensor, c_b: Tensor) -> Tensor:
        return self.main(self.co_attn(c_b) * c_a)


# --------------------------------------------------------------------------------------------------------------------
# Highway AdaIN
# --------------------------------------------------------------------------------------------------------------------


def style_affine(params: Tensor) -> tuple[Tensor, Tensor]:
    """MLP output (B, 2C) -> (mean, std), each (B, C, 1, 1), with ``std = exp(0.5 * log_var)``."""
    n = params.shape[1] // 2
    mean = params[:, :n, None, None]
    std = torch.exp(0.5 * params[:, n:2 * n, None, None])
    return mean, std


def content_sigma(content: Tensor, mode: SigmaMode = "reference") -> Tensor:
    """Normalising scale of HAdaIN, (B, C, h, w) -> (B, C, 1, 1).

    ``reference``: ``std_h(std_w(content))`` with unbiased stds, the authors' implementation (not the per-channel std).
    ``per_channel``: the textbook AdaIN per-channel (biased) standard deviation over h and w.
    """
    if mode == "reference":
        return content.std(dim=3).std(dim=2)[:, :, None, None]
    if mode == "per_channel":
        return content.var(dim=(2, 3), unbiased=False, keepdim=True).sqrt()
    raise ValueError(f"sigma_mode must be 'reference' or 'per_channel', got {mode!r}")


def highway_adain(content: Tensor, mask: Tensor, fg_params: Tensor, bg_params: Tensor, *,
                  sigma_mode: SigmaMode = "reference", eps: float = 1e-5) -> Tensor:
    """Pixel-wise highway AdaIN: ``m * AdaIN_fg(c) + (1 - m) * AdaIN_bg(c)``.

    Args:
        content: (B, C, h, w) content code.
        mask: (B, 1, h, w) in [0, 1], where the foreground (exemplar) style applies.
        fg_params: (B, 2C) foreground MLP output [mean | log-variance].
        bg_params: (B, 2C) background MLP output.
        sigma_mode: see :func:`content_sigma`.
        eps: added to the content sigma.

    Returns:
        (B, C, h, w).
    """
    mu = content.mean(dim=3).mean(dim=2)[:, :, None, None]
    normalised = (content - mu) / (content_sigma(content, sigma_mode) + eps)
    fg_mean, fg_std = style_affine(fg_params)
    bg_mean, bg_std = style_affine(bg_params)
    return mask * (fg_std * normalised + fg_mean) + (1 - mask) * (bg_std * normalised + bg_mean)


def upsample_mask(mask: Tensor, scale: int = CONTENT_STRIDE) -> Tensor:
    """Content-grid mask -> image grid, bilinear x``scale`` with ``align_corners=False`` (as the reference)."""
    return F.interpolate(mask, scale_factor=scale, mode="bilinear", align_corners=False)


def downsample_mask(mask: Tensor, scale: int = CONTENT_STRIDE) -> Tensor:
    """Image-grid mask (B, 1, H, W) -> content grid (B, 1, H/scale, W/scale) by area averaging (``avg_pool2d``).

    Each content cell gets the fraction of its ``scale x scale`` image pixels inside the mask, so a binary mask
    becomes a soft mask whose values are exact coverage fractions (a bilinear resize with antialiasing gives nearly
    the same; the area average is exact and cheap).
    """
    return F.avg_pool2d(mask, scale)


class MaskViews(NamedTuple):
    """One mask in its three uses: content grid (HAdaIN), image grid (foreground style), image grid of ``1 - m``."""

    grid: Tensor
    image: Tensor
    image_inv: Tensor


def learned_mask_views(grid: Tensor) -> MaskViews:
    """Views of a predicted content-grid mask; the reference upsamples ``1 - m`` itself (not ``1 - up(m)``)."""
    return MaskViews(grid, upsample_mask(grid), upsample_mask(1 - grid))


def given_mask_views(image: Tensor) -> MaskViews:
    """Views of a given image-resolution mask (area-averaged to the content grid for HAdaIN)."""
    return MaskViews(downsample_mask(image), image, 1 - image)


class Decoder(nn.Module):
    """HAdaIN (applied once, to the content code) -> residual blocks (GroupNorm(1)) -> 2 x (nearest x2, conv5x5) ->
    conv7x7 -> tanh. ``(B, C, h, w) -> (B, 3, 4h, 4w)`` in [-1, 1].
    """

    def __init__(self, input_dim: int, style_dim: int, mlp_dim: int, repeat_num: int = 4, *, out_channels: int = 3,
                 sigma_mode: SigmaMode = "reference") -> None:
        super().__init__()
        layers: list[nn.Module] = [ResidualBlock(input_dim, norm="ln", activation="relu") for _ in range(repeat_num)]
        dim = input_dim
        for _ in range(2):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"),
                       ConvBlock(dim, dim // 2, 5, 1, 2, norm="ln", activation="relu")]
            dim //= 2
        layers.append(ConvBlock(dim, out_channels, 7, 1, 3, norm="none", activation="tanh"))
        self.main = nn.Sequential(*layers)
        # the reference's MLP depth is tied to the decoder's block count: repeat_num - 3 hidden layers
        self.f_mlp = StyleMLP(style_dim, input_dim * 2, mlp_dim, repeat_num - 3)
        self.b_mlp = StyleMLP(style_dim, input_dim * 2, mlp_dim, repeat_num - 3)
        self.sigma_mode: SigmaMode = sigma_mode

    def forward(self, content: Tensor, mask: Tensor, s_fg: Tensor, s_bg: Tensor) -> Tensor:
        """content (B, C, h, w); mask (B, 1, h, w); foreground / background style codes (B, style_dim, 1, 1)."""
        h = highway_adain(content, mask, self.f_mlp(s_fg), self.b_mlp(s_bg), sigma_mode=self.sigma_mode)
        return upsampled_sequential(self.main, h)


class Generator(nn.Module):
    """The LOMIT generator (official ``Generator``; constructor arguments as the official ones).

    Args:
        conv_dim: base width (64).
        repeat_num: residual blocks, split equally between content encoder and decoder (8).
        style_dim: style code size (8).
        mlp_dim: hidden width of the style MLPs (256).
        c_dim: number of attributes (unused by the generator; kept for the official signature).
        in_channels: image channels.
        build_mask: build the mask network (False in the mask-guided ``given`` mode, where masks come from data).
        tie_style_branches: foreground and background style heads share weights (the reference).
        sigma_mode: HAdaIN normalising scale (see :func:`content_sigma`).
    """

    #: Input and exemplar sides must be multiples of this (the content encoder's stride).
    size_multiple = CONTENT_STRIDE

    def __init__(self, conv_dim: int = 64, repeat_num: int = 8, style_dim: int = 8, mlp_dim: int = 256,
                 c_dim: int = 3, *, in_channels: int = 3, build_mask: bool = True, tie_style_branches: bool = True,
                 sigma_mode: SigmaMode = "reference") -> None:
        super().__init__()
        del c_dim
        content_sigma(torch.ones(1, 1, 2, 2), sigma_mode)  # validates the name early
        self.c_encoder = ContentEncoder(conv_dim, repeat_num // 2, in_channels=in_channels)
        self.s_encoder = StyleEncoder(conv_dim, style_dim, in_channels=in_channels, tie_branches=tie_style_branches)
        self.mask = MaskNetwork(self.c_encoder.out_dim, 3) if build_mask else None
        self.decoder = Decoder(self.c_encoder.out_dim, style_dim, mlp_dim, repeat_num // 2, out_channels=in_channels,
                               sigma_mode=sigma_mode)

    def translate(self, x_a: Tensor, x_b: Tensor, mask_a: Tensor | None = None, mask_b: Tensor | None = None
                  ) -> tuple[Tensor, Tensor]:
        """Translate ``x_a`` (B, C, H, W) in [-1, 1] with the exemplar ``x_b`` (B, C, H', W').

        Missing masks are predicted by the mask network (the reference ``Generator.forward``). Given masks
        ``mask_a`` / ``mask_b`` ((B, 1, H, W) / (B, 1, H', W') in [0, 1], image resolution) replace them: the style
        encoders use them at full resolution, HAdaIN area-averaged to the content grid (:func:`given_mask_views`).

        Returns:
            (translation (B, C, H, W) in [-1, 1], the input mask used, at image resolution (B, 1, H, W)).
        """
        if (mask_a is None or mask_b is None) and self.mask is None:
            raise ValueError("this generator has no mask network (mask_source='given'); pass mask_a and mask_b")
        c_a = self.c_encoder(x_a)
        c_b = self.c_encoder(x_b)
        m_a = learned_mask_views(self.mask(c_a, c_b)) if mask_a is None else given_mask_views(mask_a)
        m_b = learned_mask_views(self.mask(c_b, c_a)) if mask_b is None else given_mask_views(mask_b)
        s_fb = self.s_encoder(m_b.image * x_b, True)
        s_ba = self.s_encoder(m_a.image_inv * x_a, False)
        return self.decoder(c_a, m_a.grid, s_fb, s_ba), m_a.image

    def forward(self, x_a: Tensor, x_b: Tensor, mask_a: Tensor | None = None, mask_b: Tensor | None = None) -> Tensor:
        """(B, C, H, W) input and (B, C, H', W') exemplar in [-1, 1] -> (B, C, H, W); see :meth:`translate`."""
        return self.translate(x_a, x_b, mask_a, mask_b)[0]


class Discriminator(nn.Module):
    """StarGAN-style discriminator: (B, 3, S, S) -> (real/fake map (B, 1, S/2^r, S/2^r), attribute logits (B, c_dim)).

    ``repeat_num`` stride-2 ConvBlocks (no norm, LReLU 0.01, reflection pad) doubling the width from ``conv_dim``;
    ``conv1``: ConvBlock 3x3 -> 1 channel; ``conv2``: a plain conv with kernel ``image_size / 2**repeat_num``.
    """

    def __init__(self, image_size: int = 128, conv_dim: int = 64, c_dim: int = 5, repeat_num: int = 6, *,
                 in_channels: int = 3) -> None:
        super().__init__()
        kernel = int(image_size / 2 ** repeat_num)
        if kernel < 1:
            raise ValueError(f"image_size {image_size} is too small for {repeat_num} stride-2 layers")
        layers: list[nn.Module] = [ConvBlock(in_channels, conv_dim, 4, 2, 1, norm="none", activation="lrelu")]
        dim = conv_dim
        for _ in range(1, repeat_num):
            layers.append(ConvBlock(dim, dim * 2, 4, 2, 1, norm="none", activation="lrelu"))
            dim *= 2
        self.main = nn.Sequential(*layers)
        self.conv1 = ConvBlock(dim, 1, 3, 1, 1, norm="none", activation="none")
        self.conv2 = nn.Conv2d(dim, c_dim, kernel_size=kernel)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.main(x)
        return self.conv1(h), self.conv2(h).reshape(x.shape[0], -1)


# --------------------------------------------------------------------------------------------------------------------
# Mask regularisers and initialisation
# --------------------------------------------------------------------------------------------------------------------


def mask_regularizers(masks: list[Tensor], content: Tensor, eps: float = 1e-8) -> tuple[Tensor, Tensor, Tensor]:
    """The reference ``mask_criterion``: (similarity, mean, smoothness), each summed over ``masks``.

    Args:
        masks: masks (B, 1, h, w) on the grid of ``content``.
        content: (B, C, h, w) content code (pass it detached, as the reference does).
        eps: lower bound of the feature norms.

    Returns:
        ``sim``: sum over masks of ``mean_{b,i,j}(S_ij * |m_i - m_j|)`` with S the cosine similarity of the content
        vectors at positions i and j; ``mean``: sum of ``mean(m)``; ``smooth``: summed (not averaged) absolute
        horizontal and vertical differences.
    """
    x = content.reshape(content.shape[0], content.shape[1], -1)
    x = x / torch.clamp((x ** 2).sum(dim=1, keepdim=True) ** 0.5, min=eps)
    similarity = torch.bmm(x.transpose(1, 2), x)  # (B, hw, hw)
    sim = mean = smooth = content.new_zeros(())
    for m in masks:
        flat = m.reshape(m.shape[0], -1)
        dist = (flat[:, None, :] - flat[:, :, None]).abs()
        sim = sim + (similarity * dist).mean()
        smooth = smooth + (m[..., :-1] - m[..., 1:]).abs().sum() + (m[..., :-1, :] - m[..., 1:, :]).abs().sum()
        mean = mean + m.mean()
    return sim, mean, smooth


def official_weights_init(init_type: str = "gaussian"):
    """The reference ``weights_init``: a function for ``module.apply`` that initialises every Conv*/Linear* weight
    (``gaussian`` N(0, 0.02), ``kaiming`` normal fan-in, ``xavier`` / ``orthogonal`` gain sqrt(2), ``default``: keep)
    and zeroes its bias (also with ``default``, as the reference)."""
    if init_type not in ("gaussian", "kaiming", "xavier", "orthogonal", "default"):
        raise ValueError(f"unsupported init {init_type!r}")

    def init_fun(m: nn.Module) -> None:
        name = type(m).__name__
        if (name.startswith("Conv") or name.startswith("Linear")) and isinstance(getattr(m, "weight", None), Tensor):
            if init_type == "gaussian":
                nn.init.normal_(m.weight, 0.0, 0.02)
            elif init_type == "kaiming":
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            elif init_type == "xavier":
                nn.init.xavier_normal_(m.weight, gain=math.sqrt(2))
            elif init_type == "orthogonal":
                nn.init.orthogonal_(m.weight, gain=math.sqrt(2))
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)

    return init_fun
