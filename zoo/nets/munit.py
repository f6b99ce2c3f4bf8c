"""MUNIT networks in the official module layout (NVlabs/MUNIT ``networks.py``), reusable as building blocks.

Module and parameter names follow the official code, so official ``gen_*.pt`` / ``dis_*.pt`` state dicts load after
:func:`convert_official_state_dict` (which only drops entries the official code stores but never uses). Official
conventions kept on purpose:

* :class:`Conv2dBlock`: explicit padding module -> convolution (bias always on) -> norm -> activation.
* :class:`AdaptiveInstanceNorm2d`: per-sample instance norm with ``y = x_hat * weight + bias`` (raw scale, no ``1 +``);
  the MLP output is split per layer in module order, **first C entries = bias, next C = weight**.
* :class:`LayerNorm`: statistics over (C, H, W) per sample, **unbiased** std with eps added to the std, per-channel
  ``gamma`` initialised U(0, 1) and ``beta`` 0.
* :class:`SpectralNorm`: one power iteration per forward on the ``weight_bar`` parameter, ``u``/``v`` stored under
  ``module.weight_u`` / ``module.weight_v`` and updated in every forward (train or eval), as the official wrapper.
* The style encoder always downsamples 4 times (``n_downsample`` only shapes the content path).
* :func:`weights_init` touches modules whose class name *starts* with ``Conv``/``Linear`` and that have a ``weight``
  (so spectrally normalised layers keep PyTorch's default init, as officially).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.nets.few_output_conv import conv2d_class
from zoo.nets.norm import ChannelsLastInstanceNorm2d, is_channels_last
from zoo.nets.padding import ReflectionPad2d, ReplicationPad2d
from zoo.nets.upsample_conv import upsample2x_conv2d, upsampled_sequential

__all__ = [
    "Activation",
    "PadType",
    "NormName",
    "InitName",
    "GanType",
    "make_activation",
    "make_padding",
    "AdaptiveInstanceNorm2d",
    "LayerNorm",
    "SpectralNorm",
    "Conv2dBlock",
    "LinearBlock",
    "ResBlock",
    "ResBlocks",
    "MLP",
    "StyleEncoder",
    "ContentEncoder",
    "Decoder",
    "AdaINGen",
    "MsImageDis",
    "weights_init",
    "convert_official_state_dict",
    "to_official_state_dict",
]

Activation = Literal["relu", "lrelu", "prelu", "selu", "tanh", "none"]
PadType = Literal["reflect", "replicate", "zero"]
NormName = Literal["none", "bn", "in", "ln", "adain", "sn"]
InitName = Literal["gaussian", "xavier", "kaiming", "orthogonal", "default"]
GanType = Literal["lsgan", "nsgan"]

_ACTIVATIONS = ("relu", "lrelu", "prelu", "selu", "tanh", "none")
_PADS = ("reflect", "replicate", "zero")
_CONV_NORMS = ("none", "bn", "in", "ln", "adain", "sn")
_LINEAR_NORMS = ("none", "bn", "in", "ln", "sn")
_INITS = ("gaussian", "xavier", "kaiming", "orthogonal", "default")


def _compute_dtype(x: Tensor) -> Tensor:
    """Normalisation statistics in at least float32 (bf16/fp16 activations under autocast are upcast)."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def _choice(value: str, allowed: tuple[str, ...], what: str) -> str:
    if value not in allowed:
        raise ValueError(f"unsupported {what} {value!r}; expected one of {', '.join(allowed)}")
    return value


def make_activation(name: Activation) -> nn.Module | None:
    """The official activation modules (``lrelu`` slope 0.2); ``none`` -> ``None``."""
    _choice(name, _ACTIVATIONS, "activation")
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "lrelu":
        return nn.LeakyReLU(0.2, inplace=True)
    if name == "prelu":
        return nn.PReLU()
    if name == "selu":
        return nn.SELU(inplace=True)
    if name == "tanh":
        return nn.Tanh()
    return None


def make_padding(pad_type: PadType, padding: int) -> nn.Module:
    """Explicit padding module: reflection, replication or zeros."""
    _choice(pad_type, _PADS, "pad_type")
    if pad_type == "reflect":
        return ReflectionPad2d(padding)
    if pad_type == "replicate":
        return ReplicationPad2d(padding)
    return nn.ZeroPad2d(padding)


# --------------------------------------------------------------------------------------------------------------------
# Normalisation layers
# --------------------------------------------------------------------------------------------------------------------


class AdaptiveInstanceNorm2d(nn.Module):
    """Instance norm whose per-sample affine parameters come from outside (the MLP of :class:`AdaINGen`).

    Before a forward, ``weight`` and ``bias`` are set to (B * C,) tensors (sample-major), as the official
    ``assign_adain_params`` does; the layer computes ``(x - mean) / sqrt(var + eps) * weight + bias`` with the biased
    variance over (H, W). The official dummy ``running_mean``/``running_var`` buffers are not kept (they never affect
    the output); :func:`convert_official_state_dict` drops them and :func:`to_official_state_dict` puts them back.

    Shape:
        (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.weight: Tensor | None = None
        self.bias: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        if self.weight is None or self.bias is None:
            raise RuntimeError("AdaptiveInstanceNorm2d needs weight and bias assigned before the forward "
                               "(AdaINGen.decode does this from the style code)")
        b, c = x.shape[:2]
        x = _compute_dtype(x)
        weight, bias = self.weight.to(x.dtype), self.bias.to(x.dtype)
        if is_channels_last(x):  # per image, so that the layout (and the next conv's input) stays channels-last
            out = [F.batch_norm(image, None, None, w, b_, True, self.momentum, self.eps)
                   for image, w, b_ in zip(x.split(1), weight.split(c), bias.split(c), strict=True)]
            return out[0] if b == 1 else torch.cat(out)
        out = F.batch_norm(x.reshape(1, b * c, *x.shape[2:]), None, None, weight, bias, True, self.momentum,
                           self.eps)
        return out.view(x.shape)

    def extra_repr(self) -> str:
        return str(self.num_features)


class LayerNorm(nn.Module):
    """MUNIT's layer norm: per-sample mean and unbiased std over all non-batch dims, eps added to the std.

    ``y = (x - mean) / (std + eps) * gamma + beta`` with per-channel ``gamma`` ~ U(0, 1) and ``beta`` = 0 at init.

    Shape:
        (B, C, *) -> (B, C, *).
    """

    def __init__(self, num_features: int, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__()
        self.num_features = num_features
        self.affine = affine
        self.eps = eps
        if affine:
            self.gamma = nn.Parameter(torch.empty(num_features).uniform_())
            self.beta = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: Tensor) -> Tensor:
        x = _compute_dtype(x)
        shape = [-1] + [1] * (x.dim() - 1)
        # the statistics cover every element of a sample, so a channels-last tensor is read through its NHWC view
        flat = (x.permute(0, 2, 3, 1) if is_channels_last(x) else x).reshape(x.shape[0], -1)
        mean = flat.mean(1).view(*shape)
        std = flat.std(1).view(*shape)
        x = (x - mean) / (std + self.eps)
        if self.affine:
            shape = [1, -1] + [1] * (x.dim() - 2)
            x = x * self.gamma.view(*shape) + self.beta.view(*shape)
        return x

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, affine={self.affine}"


def _l2normalize(v: Tensor, eps: float = 1e-12) -> Tensor:
    return v / (v.norm() + eps)


class SpectralNorm(nn.Module):
    """The official spectral-norm wrapper (Miyato et al. 2018) around a ``Conv2d`` or ``Linear``.

    The wrapped layer's ``weight`` is replaced by the trainable ``weight_bar``; ``weight_u`` / ``weight_v`` (unit
    vectors, state-dict entries of the wrapped layer) get one power iteration at every forward, and the layer runs
    with ``weight_bar / sigma``, ``sigma = u . (W v)`` (gradient flows through ``W`` only). The official code keeps
    ``u``/``v`` as frozen parameters; here they are buffers with the same state-dict keys. They are replaced through
    ``.data`` as officially, so when a network runs twice before one backward (the discriminator on fakes, then on
    reals) the backward of both forwards uses the latest ``u``/``v``.

    Args:
        module: ``nn.Conv2d`` or ``nn.Linear``.
        power_iterations: power iterations per forward (1 officially).
    """

    def __init__(self, module: nn.Conv2d | nn.Linear, power_iterations: int = 1) -> None:
        super().__init__()
        if not isinstance(module, (nn.Conv2d, nn.Linear)):
            raise TypeError(f"SpectralNorm wraps nn.Conv2d or nn.Linear, got {type(module).__name__}")
        self.module = module
        self.power_iterations = power_iterations
        w = module.weight
        height = w.shape[0]
        width = w.reshape(height, -1).shape[1]
        del module._parameters["weight"]
        module.register_buffer("weight_u", _l2normalize(w.detach().new_empty(height).normal_(0, 1)))
        module.register_buffer("weight_v", _l2normalize(w.detach().new_empty(width).normal_(0, 1)))
        module.register_parameter("weight_bar", nn.Parameter(w.detach().clone()))

    def normalized_weight(self) -> Tensor:
        """Update ``u``/``v`` in place (one power iteration each) and return ``weight_bar / sigma``, in float32
        under autocast (an fp16 power iteration would turn the float32 ``u``/``v`` buffers into fp16)."""
        m = self.module
        w = m.weight_bar
        height = w.shape[0]
        with torch.autocast(device_type=w.device.type, enabled=False):
            w_mat = w.detach().reshape(height, -1)
            u, v = m.weight_u, m.weight_v
            # ``.data`` assignment as officially: no version bump, so a backward through an earlier forward reads the
            # latest u/v (the official numbers when the discriminator runs twice before one backward)
            for _ in range(self.power_iterations):
                v.data = _l2normalize(torch.mv(w_mat.t(), u.data))
                u.data = _l2normalize(torch.mv(w_mat, v.data))
            sigma = u.dot(w.reshape(height, -1).mv(v))
            return w / sigma

    def forward(self, x: Tensor) -> Tensor:
        weight = self.normalized_weight()
        m = self.module
        if isinstance(m, nn.Conv2d):
            return m._conv_forward(x, weight, m.bias)
        return F.linear(x, weight, m.bias)


# --------------------------------------------------------------------------------------------------------------------
# Basic blocks
# --------------------------------------------------------------------------------------------------------------------


class Conv2dBlock(nn.Module):
    """Padding -> ``Conv2d`` (bias) -> norm -> activation, as the official ``Conv2dBlock``.

    Args:
        input_dim: input channels.
        output_dim: output channels.
        kernel_size: square kernel side.
        stride: convolution stride.
        padding: pixels of explicit padding on each side.
        norm: ``none``, ``bn`` (BatchNorm2d), ``in`` (InstanceNorm2d, no affine, no running stats), ``ln``
            (:class:`LayerNorm`), ``adain`` (:class:`AdaptiveInstanceNorm2d`) or ``sn`` (:class:`SpectralNorm` on the
            convolution, no norm layer).
        activation: ``relu``, ``lrelu`` (0.2), ``prelu``, ``selu``, ``tanh`` or ``none``.
        pad_type: ``reflect``, ``replicate`` or ``zero``.

    Shape:
        (B, input_dim, H, W) -> (B, output_dim, (H + 2 * padding - kernel_size) // stride + 1, ...).
    """

    def __init__(self, input_dim: int, output_dim: int, kernel_size: int, stride: int, padding: int = 0,
                 norm: NormName = "none", activation: Activation = "relu", pad_type: PadType = "zero") -> None:
        super().__init__()
        _choice(norm, _CONV_NORMS, "norm")
        self.pad = make_padding(pad_type, padding)
        self.norm: nn.Module | None
        if norm == "bn":
            self.norm = nn.BatchNorm2d(output_dim)
        elif norm == "in":
            self.norm = ChannelsLastInstanceNorm2d(output_dim)
        elif norm == "ln":
            self.norm = LayerNorm(output_dim)
        elif norm == "adain":
            self.norm = AdaptiveInstanceNorm2d(output_dim)
        else:
            self.norm = None
        self.activation = make_activation(activation)
        conv = conv2d_class(output_dim)(input_dim, output_dim, kernel_size, stride, bias=True)
        self.conv: nn.Module = SpectralNorm(conv) if norm == "sn" else conv

    def forward(self, x: Tensor) -> Tensor:
        return self._norm_activation(self.conv(self.pad(x)))

    def forward_upsampled(self, x: Tensor) -> Tensor:
        """``forward(nearest_x2(x))``, computed at the resolution of ``x`` (see :mod:`zoo.nets.upsample_conv`).

        (B, C, H, W) -> (B, output_dim, 2H, 2W).
        """
        if not isinstance(self.conv, nn.Conv2d) or self.conv.stride != (1, 1):
            return self.forward(F.interpolate(x, scale_factor=2, mode="nearest"))
        mode = {ReflectionPad2d: "reflect", ReplicationPad2d: "replicate", nn.ZeroPad2d: "zeros"}[type(self.pad)]
        return self._norm_activation(upsample2x_conv2d(x, self.conv.weight, self.conv.bias, self.pad.padding[0],
                                                       mode))

    def _norm_activation(self, x: Tensor) -> Tensor:
        if self.norm is not None:
            x = self.norm(x)
        if self.activation is not None:
            x = self.activation(x)
        return x


class LinearBlock(nn.Module):
    """``Linear`` (bias) -> norm -> activation, as the official ``LinearBlock``.

    Args:
        input_dim: input features.
        output_dim: output features.
        norm: ``none``, ``bn`` (BatchNorm1d), ``in`` (InstanceNorm1d), ``ln`` (:class:`LayerNorm`) or ``sn``.
        activation: as in :class:`Conv2dBlock`.

    Shape:
        (B, input_dim) -> (B, output_dim).
    """

    def __init__(self, input_dim: int, output_dim: int, norm: NormName = "none",
                 activation: Activation = "relu") -> None:
        super().__init__()
        _choice(norm, _LINEAR_NORMS, "linear norm")
        fc = nn.Linear(input_dim, output_dim, bias=True)
        self.fc: nn.Module = SpectralNorm(fc) if norm == "sn" else fc
        self.norm: nn.Module | None
        if norm == "bn":
            self.norm = nn.BatchNorm1d(output_dim)
        elif norm == "in":
            self.norm = nn.InstanceNorm1d(output_dim)
        elif norm == "ln":
            self.norm = LayerNorm(output_dim)
        else:
            self.norm = None
        self.activation = make_activation(activation)

    def forward(self, x: Tensor) -> Tensor:
        out = self.fc(x)
        if self.norm is not None:
            out = self.norm(out)
        if self.activation is not None:
            out = self.activation(out)
        return out


class ResBlock(nn.Module):
    """``x + (Conv2dBlock(3, 1, 1, norm, act) -> Conv2dBlock(3, 1, 1, norm, none))(x)``; no activation after the sum.

    Shape:
        (B, dim, H, W) -> (B, dim, H, W).
    """

    def __init__(self, dim: int, norm: NormName = "in", activation: Activation = "relu",
                 pad_type: PadType = "zero") -> None:
        super().__init__()
        self.model = nn.Sequential(
            Conv2dBlock(dim, dim, 3, 1, 1, norm=norm, activation=activation, pad_type=pad_type),
            Conv2dBlock(dim, dim, 3, 1, 1, norm=norm, activation="none", pad_type=pad_type),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x) + x


class ResBlocks(nn.Module):
    """``num_blocks`` :class:`ResBlock` in sequence (official key layout ``model.<i>.model.<j>``)."""

    def __init__(self, num_blocks: int, dim: int, norm: NormName = "in", activation: Activation = "relu",
                 pad_type: PadType = "zero") -> None:
        super().__init__()
        self.model = nn.Sequential(*[ResBlock(dim, norm=norm, activation=activation, pad_type=pad_type)
                                     for _ in range(num_blocks)])

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class MLP(nn.Module):
    """``n_blk`` :class:`LinearBlock` (the last without norm and activation); input flattened to (B, input_dim).

    Shape:
        (B, input_dim, *) -> (B, output_dim).
    """

    def __init__(self, input_dim: int, output_dim: int, dim: int, n_blk: int, norm: NormName = "none",
                 activ: Activation = "relu") -> None:
        super().__init__()
        layers = [LinearBlock(input_dim, dim, norm=norm, activation=activ)]
        layers += [LinearBlock(dim, dim, norm=norm, activation=activ) for _ in range(n_blk - 2)]
        layers += [LinearBlock(dim, output_dim, norm="none", activation="none")]
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x.reshape(x.shape[0], -1))


# --------------------------------------------------------------------------------------------------------------------
# Encoders, decoder, generator
# --------------------------------------------------------------------------------------------------------------------


class StyleEncoder(nn.Module):
    """7x7 conv, 2 channel-doubling stride-2 convs, ``n_downsample - 2`` more stride-2 convs, global average pool,
    1x1 conv to ``style_dim`` (``AdaINGen`` always uses ``n_downsample=4`` and ``norm='none'``).

    Shape:
        (B, input_dim, H, W) -> (B, style_dim, 1, 1).
    """

    def __init__(self, n_downsample: int, input_dim: int, dim: int, style_dim: int, norm: NormName,
                 activ: Activation, pad_type: PadType) -> None:
        super().__init__()
        layers: list[nn.Module] = [Conv2dBlock(input_dim, dim, 7, 1, 3, norm=norm, activation=activ,
                                               pad_type=pad_type)]
        for _ in range(2):
            layers.append(Conv2dBlock(dim, 2 * dim, 4, 2, 1, norm=norm, activation=activ, pad_type=pad_type))
            dim *= 2
        for _ in range(n_downsample - 2):
            layers.append(Conv2dBlock(dim, dim, 4, 2, 1, norm=norm, activation=activ, pad_type=pad_type))
        layers += [nn.AdaptiveAvgPool2d(1), nn.Conv2d(dim, style_dim, 1, 1, 0)]
        self.model = nn.Sequential(*layers)
        self.output_dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class ContentEncoder(nn.Module):
    """7x7 conv, ``n_downsample`` channel-doubling stride-2 convs, ``n_res`` residual blocks (all with ``norm``).

    Shape:
        (B, input_dim, H, W) -> (B, dim * 2**n_downsample, H / 2**n_downsample, W / 2**n_downsample).
    """

    def __init__(self, n_downsample: int, n_res: int, input_dim: int, dim: int, norm: NormName, activ: Activation,
                 pad_type: PadType) -> None:
        super().__init__()
        layers: list[nn.Module] = [Conv2dBlock(input_dim, dim, 7, 1, 3, norm=norm, activation=activ,
                                               pad_type=pad_type)]
        for _ in range(n_downsample):
            layers.append(Conv2dBlock(dim, 2 * dim, 4, 2, 1, norm=norm, activation=activ, pad_type=pad_type))
            dim *= 2
        layers.append(ResBlocks(n_res, dim, norm=norm, activation=activ, pad_type=pad_type))
        self.model = nn.Sequential(*layers)
        self.output_dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class Decoder(nn.Module):
    """Residual blocks (``res_norm``), ``n_upsample`` x (nearest x2 upsampling, 5x5 conv with :class:`LayerNorm`),
    7x7 conv with ``tanh`` (its padding follows ``pad_type``).

    Shape:
        (B, dim, h, w) -> (B, output_dim, h * 2**n_upsample, w * 2**n_upsample), values in [-1, 1].
    """

    def __init__(self, n_upsample: int, n_res: int, dim: int, output_dim: int, res_norm: NormName = "adain",
                 activ: Activation = "relu", pad_type: PadType = "zero") -> None:
        super().__init__()
        layers: list[nn.Module] = [ResBlocks(n_res, dim, res_norm, activ, pad_type=pad_type)]
        for _ in range(n_upsample):
            layers += [nn.Upsample(scale_factor=2),
                       Conv2dBlock(dim, dim // 2, 5, 1, 2, norm="ln", activation=activ, pad_type=pad_type)]
            dim //= 2
        layers.append(Conv2dBlock(dim, output_dim, 7, 1, 3, norm="none", activation="tanh", pad_type=pad_type))
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return upsampled_sequential(self.model, x)


class AdaINGen(nn.Module):
    """MUNIT's per-domain auto-encoder: content encoder, style encoder, MLP -> AdaIN parameters, decoder.

    Args:
        input_dim: image channels of the domain (1 or 3).
        dim: base width (64).
        style_dim: style code length (8).
        n_downsample: downsamplings of the content encoder (= upsamplings of the decoder; 2).
        n_res: residual blocks in the content encoder and in the decoder (4).
        activ: activation of every hidden layer (``relu``).
        pad_type: padding of every convolution (``reflect``).
        mlp_dim: hidden width of the MLP (256).

    Shape:
        images (B, input_dim, H, W) in [-1, 1] with H, W multiples of ``2**n_downsample``; content
        (B, dim * 2**n_downsample, H / 2**n_downsample, W / 2**n_downsample); style (B, style_dim, 1, 1).
    """

    def __init__(self, input_dim: int, *, dim: int = 64, style_dim: int = 8, n_downsample: int = 2, n_res: int = 4,
                 activ: Activation = "relu", pad_type: PadType = "reflect", mlp_dim: int = 256) -> None:
        super().__init__()
        self.style_dim = style_dim
        self.size_multiple = 2**n_downsample  # input sides must be multiples of it (the content encoder's stride)
        self.enc_style = StyleEncoder(4, input_dim, dim, style_dim, norm="none", activ=activ, pad_type=pad_type)
        self.enc_content = ContentEncoder(n_downsample, n_res, input_dim, dim, "in", activ, pad_type=pad_type)
        self.dec = Decoder(n_downsample, n_res, self.enc_content.output_dim, input_dim, res_norm="adain",
                           activ=activ, pad_type=pad_type)
        self.mlp = MLP(style_dim, self.get_num_adain_params(self.dec), mlp_dim, 3, norm="none", activ=activ)

    def forward(self, images: Tensor) -> Tensor:
        """Reconstruct ``images`` from their own content and style codes."""
        content, style = self.encode(images)
        return self.decode(content, style)

    def encode(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """(content, style) codes of ``images``."""
        return self.enc_content(images), self.enc_style(images)

    def decode(self, content: Tensor, style: Tensor) -> Tensor:
        """Images from content (B, C, h, w) and style (B, style_dim, 1, 1) codes."""
        adain_params = self.mlp(style)
        self.assign_adain_params(adain_params, self.dec)
        try:
            return self.dec(content)
        finally:  # do not keep the style's autograd graph alive on the modules
            self.assign_adain_params(None, self.dec)

    @staticmethod
    def adain_layers(model: nn.Module) -> list[AdaptiveInstanceNorm2d]:
        """AdaIN layers of ``model`` in module order (the order the MLP output is assigned in)."""
        return [m for m in model.modules() if isinstance(m, AdaptiveInstanceNorm2d)]

    @classmethod
    def assign_adain_params(cls, adain_params: Tensor | None, model: nn.Module) -> None:
        """Split (B, n_adain) MLP output over the AdaIN layers: per layer, C biases then C weights."""
        offset = 0
        for m in cls.adain_layers(model):
            if adain_params is None:
                m.weight = m.bias = None
                continue
            c = m.num_features
            m.bias = adain_params[:, offset:offset + c].reshape(-1)
            m.weight = adain_params[:, offset + c:offset + 2 * c].reshape(-1)
            offset += 2 * c

    @classmethod
    def get_num_adain_params(cls, model: nn.Module) -> int:
        """Length of the MLP output ``model`` needs (2 * channels per AdaIN layer)."""
        return sum(2 * m.num_features for m in cls.adain_layers(model))


# --------------------------------------------------------------------------------------------------------------------
# Multi-scale discriminator
# --------------------------------------------------------------------------------------------------------------------


def _bce(prob: Tensor, target: float) -> Tensor:
    """``F.binary_cross_entropy`` on probabilities (log clamped at -100, as officially), outside autocast."""
    with torch.autocast(device_type=prob.device.type, enabled=False):
        prob = _compute_dtype(prob)
        return F.binary_cross_entropy(prob, torch.full_like(prob, target))


class MsImageDis(nn.Module):
    """Multi-scale PatchGAN discriminator of MUNIT/UNIT.

    Per scale: ``Conv2dBlock(input_dim -> dim, 4, 2, 1, norm none)``, ``n_layer - 1`` channel-doubling stride-2
    blocks with ``norm``, then a 1x1 convolution to one channel. Scale ``s + 1`` sees the input average-pooled
    (3x3, stride 2, padding 1, padding excluded from the mean).

    Args:
        input_dim: image channels.
        dim: width of the first layer (64).
        norm: ``none`` (official configs), ``bn``, ``in``, ``ln`` or ``sn``.
        activ: activation (``lrelu``).
        n_layer: stride-2 layers per scale (4).
        gan_type: ``lsgan`` or ``nsgan`` (losses of :meth:`calc_dis_loss` / :meth:`calc_gen_loss`).
        num_scales: number of scales (3).
        pad_type: padding type.

    Shape:
        (B, input_dim, H, W) -> list of ``num_scales`` maps (B, 1, h_s, w_s), finest first.
    """

    def __init__(self, input_dim: int, *, dim: int = 64, norm: NormName = "none", activ: Activation = "lrelu",
                 n_layer: int = 4, gan_type: GanType = "lsgan", num_scales: int = 3,
                 pad_type: PadType = "reflect") -> None:
        super().__init__()
        _choice(gan_type, ("lsgan", "nsgan"), "gan_type")
        _choice(norm, _CONV_NORMS[:-2] + ("sn",), "discriminator norm")
        self.n_layer, self.gan_type, self.dim, self.norm = n_layer, gan_type, dim, norm
        self.activ, self.num_scales, self.pad_type, self.input_dim = activ, num_scales, pad_type, input_dim
        self.downsample = nn.AvgPool2d(3, stride=2, padding=[1, 1], count_include_pad=False)
        self.cnns = nn.ModuleList([self._make_net() for _ in range(num_scales)])

    def _make_net(self) -> nn.Sequential:
        dim = self.dim
        layers: list[nn.Module] = [Conv2dBlock(self.input_dim, dim, 4, 2, 1, norm="none", activation=self.activ,
                                               pad_type=self.pad_type)]
        for _ in range(self.n_layer - 1):
            layers.append(Conv2dBlock(dim, dim * 2, 4, 2, 1, norm=self.norm, activation=self.activ,
                                      pad_type=self.pad_type))
            dim *= 2
        layers.append(nn.Conv2d(dim, 1, 1, 1, 0))
        return nn.Sequential(*layers)

    @property
    def per_sample(self) -> bool:
        """Whether batch elements are independent and forwards have no side effects (then calls can be fused)."""
        return self.norm in ("none", "in", "ln")

    def forward(self, x: Tensor) -> list[Tensor]:
        outputs = []
        for i, model in enumerate(self.cnns):
            if i > 0:  # (the official loop also pools after the last scale and discards the result)
                x = self.downsample(x)
            outputs.append(model(x))
        return outputs

    def _real_fake_outputs(self, fake: Tensor, real: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        if self.per_sample and fake.shape[1:] == real.shape[1:]:
            outs = self(torch.cat([fake, real]))
            n = fake.shape[0]
            return [o[:n] for o in outs], [o[n:] for o in outs]
        return self(fake), self(real)  # official order: fake first (batch norm, spectral norm state)

    def calc_dis_loss(self, input_fake: Tensor, input_real: Tensor) -> Tensor:
        """Discriminator loss summed over scales: lsgan ``mean(D(fake)^2) + mean((D(real) - 1)^2)``; nsgan BCE."""
        outs0, outs1 = self._real_fake_outputs(input_fake, input_real)
        loss: Tensor | float = 0.0
        for out0, out1 in zip(outs0, outs1, strict=True):
            out0, out1 = _compute_dtype(out0), _compute_dtype(out1)
            if self.gan_type == "lsgan":
                loss = loss + (torch.mean(out0 ** 2) + torch.mean((out1 - 1) ** 2))
            else:
                loss = loss + torch.mean(_bce(torch.sigmoid(out0), 0.0) + _bce(torch.sigmoid(out1), 1.0))
        return loss  # type: ignore[return-value]

    def calc_gen_loss(self, input_fake: Tensor) -> Tensor:
        """Generator loss summed over scales: lsgan ``mean((D(fake) - 1)^2)``; nsgan ``BCE(sigmoid(D(fake)), 1)``."""
        loss: Tensor | float = 0.0
        for out0 in self(input_fake):
            out0 = _compute_dtype(out0)
            if self.gan_type == "lsgan":
                loss = loss + torch.mean((out0 - 1) ** 2)
            else:
                loss = loss + torch.mean(_bce(torch.sigmoid(out0), 1.0))
        return loss  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------------------------------
# Initialisation and official state dicts
# --------------------------------------------------------------------------------------------------------------------


def weights_init(init_type: InitName = "gaussian") -> Callable[[nn.Module], None]:
    """The official ``weights_init``: a function for ``module.apply``.

    Modules whose class name starts with ``Conv`` or ``Linear`` and that have a ``weight`` get ``gaussian``
    N(0, 0.02), ``xavier`` (gain sqrt 2), ``kaiming`` (normal, a=0, fan_in), ``orthogonal`` (gain sqrt 2) or keep
    PyTorch's init (``default``); their bias is set to 0 in every case.
    """
    _choice(init_type, _INITS, "init")

    def init_fun(m: nn.Module) -> None:
        name = type(m).__name__
        if (name.startswith("Conv") or name.startswith("Linear")) and hasattr(m, "weight"):
            if init_type == "gaussian":
                nn.init.normal_(m.weight, 0.0, 0.02)
            elif init_type == "xavier":
                nn.init.xavier_normal_(m.weight, gain=math.sqrt(2))
            elif init_type == "kaiming":
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            elif init_type == "orthogonal":
                nn.init.orthogonal_(m.weight, gain=math.sqrt(2))
            if getattr(m, "bias", None) is not None:
                nn.init.constant_(m.bias, 0.0)

    return init_fun


_STAT_KEYS = ("running_mean", "running_var", "num_batches_tracked")


def convert_official_state_dict(state_dict: dict[str, Tensor], net: nn.Module) -> dict[str, Tensor]:
    """An official ``AdaINGen`` / ``MsImageDis`` state dict -> the state dict of the zoo module ``net``.

    Drops what the official files carry but never use: the AdaIN dummy ``running_mean``/``running_var`` buffers and
    the instance-norm statistics of PyTorch-0.3-era files (the official ``pytorch03_to_pytorch04`` deletes the same
    keys); strips a ``module.`` prefix; fills a missing BatchNorm ``num_batches_tracked`` with 0. Everything else must
    match ``net`` exactly (checked by ``load_state_dict(strict=True)`` at load time).
    """
    modules = dict(net.named_modules())
    expected = net.state_dict()
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        key = key.removeprefix("module.")
        owner, _, leaf = key.rpartition(".")
        if leaf in _STAT_KEYS and key not in expected and isinstance(
                modules.get(owner), (AdaptiveInstanceNorm2d, nn.InstanceNorm2d, nn.InstanceNorm1d)):
            continue
        out[key] = value
    for key in expected:
        if key.endswith(".num_batches_tracked") and key not in out and key.replace("num_batches_tracked",
                                                                                   "running_mean") in out:
            out[key] = torch.tensor(0, dtype=torch.long)
    return out


def to_official_state_dict(net: nn.Module) -> dict[str, Tensor]:
    """The official key layout of a zoo ``AdaINGen`` / ``MsImageDis`` (re-adds the AdaIN dummy buffers)."""
    out = dict(net.state_dict())
    ref = next(net.parameters())
    for name, m in net.named_modules():
        if isinstance(m, AdaptiveInstanceNorm2d):
            out[f"{name}.running_mean"] = torch.zeros(m.num_features, dtype=ref.dtype, device=ref.device)
            out[f"{name}.running_var"] = torch.ones(m.num_features, dtype=ref.dtype, device=ref.device)
    return out
