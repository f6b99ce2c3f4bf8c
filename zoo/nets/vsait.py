"""VSAIT networks with the official module layout (state-dict keys equal the official ones after ``model.<net>.``).

* :class:`VSAITGenerator` (official ``models/generators.py::ResNetGenerator``): reflect-padded ResNet encoder/decoder
  with fixed Gaussian blur-pool down-sampling and blur transposed-conv up-sampling (:class:`GaussianConv2d`), or the
  strided / nearest-upsampling variant; ``xavier_normal_(gain=0.2)`` init.
* :class:`VSADiscriminator` (official ``models/discriminators.py::VSADiscriminator``): per scale a PatchGAN of
  (by default 1x1) convolutions applied to hypervectors, not pixels.
* :func:`build_mapping_network` (official ``models/iit.py``: ``Sequential(MLP(conv=True), Tanh)``), last layer
  initialised to weight 0 / bias 1, so that its output starts at ``tanh(1)`` everywhere.
* :class:`FeatureExtractor` (official ``models/feature_extractor.py``): taps of a frozen torchvision model through
  ``create_feature_extractor``, which reproduces the official in-place-ReLU behaviour (every VGG tap but the deepest
  comes out after the following ReLU), optional ``RESCALE`` per domain, no ImageNet normalisation by default.

Module specs (``normalization``, ``activation``) may be given as the official strings (``"nn.InstanceNorm2d"``,
``"nn.LeakyReLU(0.2)"``, ``"None"``) or short names (``"instance"``, ``"batch"``, ``"relu"``, ``"lrelu"``,
``"tanh"``, ``"none"``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn import init

from zoo.nets.few_output_conv import conv2d_class
from zoo.nets.norm import ChannelsLastInstanceNorm2d
from zoo.nets.padding import ReflectionPad2d, ReplicationPad2d
from zoo.weights import WeightsFile, resolve_weights

__all__ = [
    "ConvBlock",
    "ResNetBlock",
    "GaussianConv2d",
    "VSAITGenerator",
    "PatchGANDiscriminator",
    "VSADiscriminator",
    "build_mapping_network",
    "FeatureExtractor",
    "init_official",
    "module_spec",
]

_ALIASES: dict[str, str] = {
    "instance": "nn.InstanceNorm2d", "batch": "nn.BatchNorm2d", "relu": "nn.ReLU()", "lrelu": "nn.LeakyReLU(0.2)",
    "leaky_relu": "nn.LeakyReLU(0.2)", "tanh": "nn.Tanh()", "sigmoid": "nn.Sigmoid()", "none": "None",
}


def _convert_args(text: str) -> list[Any]:
    """The official ``convert_str_args``: comma-separated bools / ints / floats."""
    out: list[Any] = []
    for arg in text.replace("(", "").replace(")", "").split(","):
        arg = arg.strip()
        if not arg:
            continue
        if arg.lower() in ("true", "false"):
            out.append(arg.lower() == "true")
        elif arg.isdigit():
            out.append(int(arg))
        else:
            try:
                out.append(float(arg))
            except ValueError:
                out.append(arg)
    return out


def module_spec(spec: Any) -> Any:
    """An official module spec -> a torch.nn class, a module instance or ``None``.

    ``"nn.InstanceNorm2d"`` -> the class; ``"nn.LeakyReLU(0.2)"`` -> an instance; ``"None"`` -> ``None``; classes,
    modules and ``None`` pass through.
    """
    if not isinstance(spec, str):
        return spec
    spec = _ALIASES.get(spec.strip().lower(), spec.strip())
    if spec == "None":
        return None
    match = re.fullmatch(r"(?:(?:torch\.)?nn\.)?(\w+)(\(.*\))?", spec)
    if match is None or not hasattr(nn, match.group(1)):
        raise ValueError(f"unknown module spec {spec!r}; use e.g. 'nn.InstanceNorm2d', 'nn.LeakyReLU(0.2)' or 'None'")
    cls = getattr(nn, match.group(1))
    return cls(*_convert_args(match.group(2))) if match.group(2) is not None else cls


def _activation(spec: Any, default: nn.Module | None) -> nn.Module:
    """An activation module (``None`` -> ``default``; a class is instantiated; no activation -> identity)."""
    act = module_spec(spec)
    if act is None:
        act = default
    if isinstance(act, type):
        act = act()
    return nn.Sequential() if act is None else act


def _pad(pad_type: str | None, padding: Any) -> nn.Module:
    """The official ``get_pad_fn``: reflect, replicate or zero padding."""
    kind = "zero" if pad_type is None else pad_type.lower()
    if kind == "reflect":
        return ReflectionPad2d(padding)
    if kind == "replicate":
        return ReplicationPad2d(padding)
    if kind == "zero":
        return nn.ZeroPad2d(padding)
    raise ValueError(f"unknown pad_type {pad_type!r}; expected reflect, replicate or zero")


_INIT_DEFAULTS = {
    "normal_": {"mean": 0.0, "std": 0.2},
    "xavier_normal_": {"gain": 0.2},
    "xavier_uniform_": {"gain": 1.0},
    "kaiming_normal_": {"a": 0.0, "mode": "fan_in"},
    "orthogonal_": {"gain": 0.2},
}


def init_official(net: nn.Module, init_type: str = "xavier_normal_", **kwargs: Any) -> None:
    """The official ``init_weights`` of generators and discriminators.

    Conv*/Linear weights get ``torch.nn.init.<init_type>`` (defaults: xavier_normal_ gain 0.2, normal_ std 0.2, ...)
    or PyTorch's default (``init_type="default"``), biases 0; BatchNorm2d weights N(1, std) (std 0.2 unless given),
    biases 0; other modules with ``reset_parameters`` are reset.
    """
    for key, value in _INIT_DEFAULTS.get(init_type, {}).items():
        kwargs.setdefault(key, value)
    if init_type.lower() != "default" and not hasattr(init, init_type):
        raise NotImplementedError(f"initialization method `{init_type}` is not implemented")

    def init_func(m: nn.Module) -> None:
        classname = m.__class__.__name__
        if "BatchNorm2d" in classname:
            if getattr(m, "weight", None) is not None:
                init.normal_(m.weight.data, 1.0, kwargs.get("std", 0.2))
            if getattr(m, "bias", None) is not None:
                init.constant_(m.bias.data, 0.0)
        elif hasattr(m, "weight") and (classname.startswith("Conv") or classname.startswith("Linear")):
            if init_type.lower() == "default":
                m.reset_parameters()
            else:
                getattr(init, init_type)(m.weight.data, **kwargs)
            if getattr(m, "bias", None) is not None:
                init.constant_(m.bias.data, 0.0)
        elif hasattr(m, "reset_parameters"):
            m.reset_parameters()

    net.apply(init_func)


# --------------------------------------------------------------------------------------------------- blocks


class ConvBlock(nn.Module):
    """pad -> conv (or transposed conv) -> norm -> activation (official ``models/networks.py::ConvBlock``).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        normalization: norm class (called with ``out_channels``) or ``None``.
        activation: activation module (``nn.Sequential()`` for none).
        deconv: transposed convolution instead of a convolution.
        kernel_size: kernel size.
        padding: explicit padding applied by ``pad_type`` before the convolution.
        pad_type: ``reflect``, ``replicate`` or ``zero``.
        spectral_norm_conv: wrap the convolution in spectral normalisation (bias removed when a norm follows).
        **conv_kwargs: passed to ``nn.Conv2d`` (``stride``, ``bias``, ...).
    """

    def __init__(self, in_channels: int, out_channels: int, *, normalization: Any = None,
                 activation: nn.Module | None = None, deconv: bool = False, kernel_size: int = 3, padding: int = 1,
                 pad_type: str | None = "zero", spectral_norm_conv: bool = False, **conv_kwargs: Any) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.pad = _pad(pad_type, padding)
        conv_cls = nn.ConvTranspose2d if deconv else conv2d_class(out_channels)
        self.conv = conv_cls(in_channels, out_channels, kernel_size, **conv_kwargs)
        norm = module_spec(normalization)
        if norm is nn.InstanceNorm2d:  # same defaults and state dict; keeps channels-last inputs channels-last
            norm = ChannelsLastInstanceNorm2d
        if spectral_norm_conv:
            self.conv = nn.utils.spectral_norm(self.conv)
            if norm and getattr(self.conv, "bias", None) is not None:
                delattr(self.conv, "bias")
                self.conv.register_parameter("bias", None)
        self.norm = norm(out_channels) if norm else nn.Sequential()
        self.act = nn.Sequential() if activation is None else activation

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.norm(self.conv(self.pad(x))))


class ResNetBlock(nn.Module):
    """``x + [ConvBlock(act) -> ConvBlock(no act)](x)``, no activation after the sum (official ``ResNetBlock``)."""

    def __init__(self, channels: int, *, normalization: Any, activation: nn.Module, pad_type: str = "reflect",
                 **conv_kwargs: Any) -> None:
        super().__init__()
        self.net = nn.Sequential(
            ConvBlock(channels, channels, normalization=normalization, activation=activation, kernel_size=3,
                      padding=1, pad_type=pad_type, **conv_kwargs),
            ConvBlock(channels, channels, normalization=normalization, activation=nn.Sequential(), kernel_size=3,
                      padding=1, pad_type=pad_type, **conv_kwargs),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.net(x)


class GaussianConv2d(nn.Module):
    """Fixed depthwise Gaussian (sigma 1) blur with stride: blur-pool down-sampling or blur up-sampling.

    Kernel on the grid ``0..k-1`` centred at ``k/2 - 0.5``, normalised to sum 1 (times ``stride**2`` for ``deconv``),
    stored as the persistent buffer ``weight`` (C, 1, k, k) as officially. Down: zero-pad
    ``padding + (k-1)//2 + (k even)``, conv with ``stride``; up: zero-pad ``padding + 1``, transposed conv with
    ``padding=(k-1)//2 + 1``, then crop one pixel per side. ``k=3, s=2`` halves, ``k=4, s=2`` doubles exactly.

    Args:
        in_channels: channels C (depthwise).
        kernel_size: k.
        stride: stride.
        padding: extra padding.
        pad_type: ``zero`` (official), ``reflect`` or ``replicate``.
        deconv: up-sample with a transposed convolution.
    """

    def __init__(self, in_channels: int, kernel_size: int = 3, stride: int = 2, padding: int = 0,
                 pad_type: str = "zero", deconv: bool = False) -> None:
        super().__init__()
        self.in_channels, self.kernel_size, self.stride, self.deconv = in_channels, kernel_size, stride, deconv
        kernel_pad = (kernel_size - 1) // 2
        if deconv:
            self.conv_padding = kernel_pad + 1
            padding += 1
        else:
            self.conv_padding = 0
            padding += kernel_pad + int(kernel_size % 2 == 0)
        self.slice = slice(int(deconv), None if kernel_size % 2 else -1)
        self.pad = _pad(pad_type, padding)
        weight = self.gaussian_kernel(kernel_size)
        if deconv:
            weight = weight * stride ** 2
        self.register_buffer("weight", weight.repeat(in_channels, 1, 1, 1))

    @staticmethod
    def gaussian_kernel(kernel_size: int) -> Tensor:
        """(1, k, k) Gaussian with sigma 1 centred at ``k/2 - 0.5``, summing to 1."""
        grid = torch.arange(kernel_size, dtype=torch.float32)
        center = kernel_size / 2.0 - 0.5
        d2 = (grid.view(-1, 1) - center) ** 2 + (grid.view(1, -1) - center) ** 2
        g = torch.exp(-d2 / 2).unsqueeze(0)
        return g / g.sum()

    def forward(self, x: Tensor) -> Tensor:
        conv = F.conv_transpose2d if self.deconv else F.conv2d
        out = conv(self.pad(x), self.weight.to(x.dtype), stride=self.stride, padding=self.conv_padding,
                   groups=self.in_channels)
        return out[:, :, self.slice, self.slice]


# ------------------------------------------------------------------------------------------------ generator


class _Coder(nn.Module):
    """A ``net`` Sequential (official ``ResNetEncoder`` / ``ResNetDecoder`` key layout)."""

    def __init__(self, layers: list[nn.Module]) -> None:
        super().__init__()
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class VSAITGenerator(nn.Module):
    """The official VSAIT ResNet generator (``models/generators.py::ResNetGenerator``).

    Encoder: ConvBlock 7x7 (reflect 3) -> per down-sampling a 3x3 ConvBlock doubling the width followed by a
    Gaussian blur-pool (or a stride-2 conv) -> ``res_blocks - res_blocks // 2`` residual blocks. Decoder:
    ``res_blocks // 2`` residual blocks -> per up-sampling a Gaussian blur transposed conv (or nearest ``Upsample``)
    and a 3x3 ConvBlock halving the width -> ConvBlock 7x7 (no norm, Tanh).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        n_channels: width of the first layer (``RES_CHANNELS``, 64).
        res_blocks: residual blocks in total (``RES_BLOCKS``, 9).
        n_downsample: down- (and up-) sampling steps (2).
        normalization: norm class spec (``nn.InstanceNorm2d``).
        activation: activation spec (``nn.ReLU()``).
        bias: conv biases (except the output conv, which always has one).
        gaussian_downsample: blur-pool / blur up-sampling (True) or stride-2 convs / nearest up-sampling.
        init_kwargs: ``init_type`` and its arguments for :func:`init_official` (xavier_normal_, gain 0.2).

    Shapes: (B, in_channels, H, W) in [-1, 1] -> (B, out_channels, H, W) in [-1, 1]; H, W multiples of
    ``2 ** n_downsample``.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, n_channels: int = 64, res_blocks: int = 9, *,
                 n_downsample: int = 2, normalization: Any = "nn.InstanceNorm2d", activation: Any = "nn.ReLU()",
                 bias: bool = True, gaussian_downsample: bool = True,
                 init_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__()
        norm = module_spec(normalization)
        act = _activation(activation, nn.ReLU())
        enc_blocks = res_blocks - res_blocks // 2
        dec_blocks = res_blocks - enc_blocks
        enc: list[nn.Module] = [ConvBlock(in_channels, n_channels, normalization=norm, activation=act, kernel_size=7,
                                          padding=3, pad_type="reflect", bias=bias)]
        for i in range(n_downsample):
            ch = n_channels * 2 ** i
            enc.append(ConvBlock(ch, ch * 2, normalization=norm, activation=act, kernel_size=3, padding=1,
                                 pad_type="reflect", bias=bias, stride=1 if gaussian_downsample else 2))
            if gaussian_downsample:
                enc.append(GaussianConv2d(ch * 2, kernel_size=3, stride=2))
        width = n_channels * 2 ** n_downsample
        enc += [ResNetBlock(width, normalization=norm, activation=act, bias=bias) for _ in range(enc_blocks)]
        dec: list[nn.Module] = [ResNetBlock(width, normalization=norm, activation=act, bias=bias)
                                for _ in range(dec_blocks)]
        for i in range(n_downsample):
            ch = n_channels * 2 ** (n_downsample - i)
            dec.append(GaussianConv2d(ch, kernel_size=4, stride=2, deconv=True) if gaussian_downsample
                       else nn.Upsample(scale_factor=2))
            dec.append(ConvBlock(ch, ch // 2, normalization=norm, activation=act, kernel_size=3, padding=1,
                                 pad_type="reflect", bias=bias))
        dec.append(ConvBlock(n_channels, out_channels, normalization=None, activation=nn.Tanh(), kernel_size=7,
                             padding=3, pad_type="reflect"))
        self.encoder = _Coder(enc)
        self.decoder = _Coder(dec)
        self.encode_channels = width
        self.size_multiple = 2 ** n_downsample
        init_official(self, **(init_kwargs or {}))

    def encode(self, x: Tensor) -> Tensor:
        """(B, C_in, H, W) -> bottleneck (B, n_channels * 2**n_downsample, H / 2**n, W / 2**n)."""
        return self.encoder(x)

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z)

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(x))


# -------------------------------------------------------------------------------------------- discriminator


def _list(value: Any, n: int) -> list[Any]:
    """The official ``parse_list_var``."""
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"expected {n} per-layer values, got {list(value)}")
        return list(value)
    return [value] * n


def _layer_kwargs(kwargs: dict[str, Any], i: int) -> dict[str, Any]:
    """The official ``parse_dict_var``: list values give one entry per layer."""
    return {k: (v[i] if isinstance(v, (list, tuple)) else v) for k, v in kwargs.items()}


class PatchGANDiscriminator(nn.Module):
    """Official ``PatchGANDiscriminator``: ConvBlock (no norm) -> ConvBlocks (norm) -> Conv2d (-> last activation).

    Args:
        in_channels: input channels.
        n_channels: output channels per layer (at least 3 layers).
        kernel_size, stride, padding: per layer (list) or shared.
        normalization: norm spec of the middle layers.
        activation: activation spec of every layer but the last (LeakyReLU(0.2)).
        last_activation: activation spec after the last conv (none).
        init_kwargs: arguments of :func:`init_official`.
        spectral_norm_conv: spectral normalisation on the middle convolutions.
        **kwargs: further ConvBlock arguments, per layer (list) or shared.
    """

    def __init__(self, in_channels: int, n_channels: Sequence[int] = (64, 128, 256, 512, 1), *,
                 kernel_size: Any = 4, stride: Any = 2, padding: Any = 1, normalization: Any = "nn.InstanceNorm2d",
                 activation: Any = None, last_activation: Any = None, init_kwargs: dict[str, Any] | None = None,
                 spectral_norm_conv: bool = False, **kwargs: Any) -> None:
        super().__init__()
        n_channels = list(n_channels)
        n = len(n_channels)
        if n <= 2:
            raise ValueError(f"a PatchGAN discriminator needs at least 3 layers, got n_channels={n_channels}")
        ks, st, pd = _list(kernel_size, n), _list(stride, n), _list(padding, n)
        norm = module_spec(normalization)
        act = _activation(activation, nn.LeakyReLU(0.2))
        layers: list[nn.Module] = [ConvBlock(in_channels, n_channels[0], normalization=None, activation=act,
                                             kernel_size=ks[0], stride=st[0], padding=pd[0],
                                             **_layer_kwargs(kwargs, 0))]
        for i in range(1, n - 1):
            layers.append(ConvBlock(n_channels[i - 1], n_channels[i], normalization=norm, activation=act,
                                    kernel_size=ks[i], stride=st[i], padding=pd[i],
                                    spectral_norm_conv=spectral_norm_conv, **_layer_kwargs(kwargs, i)))
        layers.append(nn.Conv2d(n_channels[-2], n_channels[-1], ks[-1], st[-1], pd[-1]))
        last = module_spec(last_activation)
        if last is not None:
            layers.append(last() if isinstance(last, type) else last)
        self.net = nn.Sequential(*layers)
        init_official(self, **(init_kwargs or {}))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class VSADiscriminator(nn.Module):
    """Official ``VSADiscriminator``: one PatchGAN of 1x1 convs per scale, applied to hypervector maps.

    ``forward`` reproduces the official call ``d_net(x, src, feature_extractor, lsh_feat, map_net)`` through an
    ``encode(images, domain) -> hypervectors`` callable: per scale ``D_s(hv(x))`` and, with ``src``,
    ``D_s(hv(src) * map_net(hv(src)))``; between scales the images are halved (bilinear, align_corners False).

    Args:
        in_channels: hypervector dimension D.
        n_channels: widths of each scale's layers ([1024, 1024, 1]).
        kernel_size, stride, padding: per layer or shared (1, 1, 0).
        normalization: norm spec of the middle layers (none).
        activation: activation spec (LeakyReLU(0.2)).
        num_scales: number of scales.
        **kwargs: further :class:`PatchGANDiscriminator` arguments (``init_kwargs``, ``last_activation``, ...).
    """

    def __init__(self, in_channels: int, n_channels: Sequence[int] = (1024, 1024, 1), *, kernel_size: Any = 1,
                 stride: Any = 1, padding: Any = 0, normalization: Any = None, activation: Any = None,
                 num_scales: int = 1, **kwargs: Any) -> None:
        super().__init__()
        self.num_scales = num_scales
        self.net = nn.ModuleList([
            PatchGANDiscriminator(in_channels, n_channels, kernel_size=kernel_size, stride=stride, padding=padding,
                                  normalization=normalization, activation=activation, **kwargs)
            for _ in range(num_scales)])

    @staticmethod
    def downsample(x: Tensor) -> Tensor:
        """The official ``nn.Upsample(scale_factor=0.5, mode="bilinear", align_corners=False)``."""
        return F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False)

    def forward(self, x: Tensor, src: Tensor | None = None, *, encode: Callable[[Tensor, str], Tensor],
                map_net: nn.Module | None = None) -> list[Tensor]:
        """Images (B, C, H, W) -> list of (B, 1, h_s, w_s) outputs, in the official order."""
        out = []
        for i in range(self.num_scales):
            out.append(self.net[i](encode(x, "target")))
            if src is not None:
                hv_src = encode(src, "source")
                out.append(self.net[i](hv_src * map_net(hv_src)))
            if self.num_scales > 1:
                x = self.downsample(x)
                if src is not None:
                    src = self.downsample(src)
        return out


def build_mapping_network(dim: int, *, n_channels: Sequence[int] | None = None, normalization: Any = None,
                          activation: Any = None, kernel_size: int = 1, padding: int = 0,
                          **kwargs: Any) -> nn.Sequential:
    """The source -> target mapping ``Sequential(MLP(dim, n_channels, conv=True), Tanh)`` of official ``VSAIT``.

    Every layer but the last is ConvBlock(norm, activation=ReLU by default); the last has neither. The first layers
    keep PyTorch's default init; the last conv is initialised to weight 0, bias 1 (output ``tanh(1)`` everywhere).
    Keys: ``0.<i>.conv.weight`` / ``.bias`` (official ``model.g_net_map.0.<i>.conv.*``).

    Shapes: (B, dim, h, w) -> (B, n_channels[-1] (= dim), h, w) in (-1, 1).
    """
    n_channels = list(n_channels) if n_channels is not None else [dim, dim]
    act = _activation(activation, nn.ReLU())
    layers = []
    for i, ch in enumerate(n_channels):
        last = i == len(n_channels) - 1
        layers.append(ConvBlock(dim if i == 0 else n_channels[i - 1], ch, normalization=None if last else normalization,
                                activation=nn.Sequential() if last else act, kernel_size=kernel_size,
                                padding=padding, **kwargs))
    mlp = nn.Sequential(*layers)
    with torch.no_grad():
        mlp[-1].conv.weight.zero_()
        mlp[-1].conv.bias.fill_(1.0)
    return nn.Sequential(mlp, nn.Tanh())


# ---------------------------------------------------------------------------------------- feature extractor


def _torchvision_builder(name: str) -> Callable[..., nn.Module]:
    import torchvision

    for namespace in (torchvision.models, torchvision.models.detection, torchvision.models.segmentation):
        fn = getattr(namespace, name, None)
        if callable(fn):
            return fn
    raise ValueError(f"unknown feature extractor model {name!r}: not found in torchvision.models")


def _default_init(net: nn.Module) -> None:
    """torchvision's VGG initialisation (kaiming-normal fan-out convs, N(0, 0.01) linears, unit norms)."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)) and getattr(m, "weight", None) is not None:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


def _drop_reproducible_weights(module: FeatureExtractor, state_dict: dict, prefix: str, metadata: Any) -> None:
    """State-dict hook: frozen weights that can be rebuilt (seeded or from the weights file) are not saved."""
    if not module.imported:
        for key in [k for k in state_dict if k.startswith(prefix + "net.")]:
            del state_dict[key]


def _note_loaded_weights(module: FeatureExtractor, state_dict: dict, prefix: str, *args: Any) -> None:
    """Load pre-hook: weights present in the state dict (an official checkpoint) are used and kept from then on."""
    module._load_prefix = prefix
    if any(k.startswith(prefix + "net.") for k in state_dict):
        module.imported = True
        module._weights_ready = True


def _forgive_reproducible_weights(module: FeatureExtractor, incompatible: Any) -> None:
    """Load post-hook: absent feature-extractor weights are not missing (they are rebuilt, see above)."""
    prefix = getattr(module, "_load_prefix", "") + "net."
    incompatible.missing_keys[:] = [k for k in incompatible.missing_keys if not k.startswith(prefix)]


class FeatureExtractor(nn.Module):
    """Frozen taps of a torchvision model (official ``models/feature_extractor.py::FeatureExtractor``).

    ``net`` is ``torchvision.models.feature_extraction.create_feature_extractor(model, return_nodes)``, exactly as
    officially: only the layers up to the deepest tap exist (state-dict keys ``net.features.<i>.*``), and because
    VGG's ReLUs run in place, every tap followed by a deeper one comes out after the ReLU that follows it, while the
    deepest tap keeps its pre-activation value. ``model="identity"`` returns the image itself as the only tap.

    The input is the generator-range image in [-1, 1], fed as is unless ``rescale`` is set:
    ``x' = (x * 0.5 + 0.5 - mean) / std`` with ``rescale=[mean, std]`` or per domain
    ``{"source": [mean, std], "target": [mean, std]}``.

    Weights: ``weights=None`` gives a seeded random initialisation (tests); ``"imagenet"`` / ``"DEFAULT"`` (official)
    or a torchvision weights name (``"IMAGENET1K_V1"``) the file torchvision publishes for ``model``, resolved through
    :mod:`zoo.weights` (``$ZOO_WEIGHTS_DIR``, zoo's cache, torch's hub cache for VGG; downloaded only when allowed); any
    other string is a path to a torchvision state dict (``.pth`` or ``.safetensors``). Pretrained weights are read
    when first needed (:meth:`ensure_weights`), so loading a trained model for inference never touches them. The
    weights are frozen (``requires_grad=False``); the module follows its parent's train/eval mode, as the official
    one does once Lightning 1.x has called ``train()`` on the solver (VGG's feature layers have no mode-dependent
    layers). It keeps its weights out of
    the state dict (they are reproducible) unless they were loaded from one.

    Args:
        model: torchvision model name (``vgg19``) or ``identity``.
        return_nodes: graph node names of the taps (``features.2``, ...), in output order.
        weights: see above.
        rescale: see above.
        in_channels: expand 1-channel input to this many channels.
        seed: seed of the random initialisation.
        image_channels: channels of the images fed in (to infer the tap widths).
        **model_kwargs: other torchvision constructor arguments.
    """

    def __init__(self, model: str = "vgg19", return_nodes: Sequence[str] = (), *, weights: str | None = "imagenet",
                 rescale: Any = None, in_channels: int | None = None, seed: int = 0, image_channels: int = 3,
                 **model_kwargs: Any) -> None:
        super().__init__()
        self.model_name = model
        self.in_channels = in_channels
        self.weights = weights
        self.imported = False
        self._weights_ready = weights is None or model.lower() == "identity"
        self._set_rescale(rescale)
        feed = in_channels if in_channels is not None else image_channels
        if model.lower() == "identity":
            self.net: nn.Module = nn.Sequential()
            self.out_channels = [feed]
        else:
            from torchvision.models.feature_extraction import create_feature_extractor

            nodes = list(return_nodes)
            if not nodes:
                raise ValueError(f"feature extractor {model!r} needs at least one return node (e.g. 'features.2')")
            with torch.device("meta"):  # build and prune without allocating the full model
                full = _torchvision_builder(model)(weights=None, **model_kwargs)
                net = create_feature_extractor(full, {node: str(i) for i, node in enumerate(nodes)})
                try:
                    shapes = [o.shape for o in net(torch.zeros(1, feed, 256, 256)).values()]
                except RuntimeError as error:
                    raise ValueError(f"feature extractor {model!r} cannot take {feed}-channel images ({error}); set "
                                     "feature_in_channels to expand 1-channel images") from error
            net = net.to_empty(device="cpu")
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                _default_init(net)
            self.net = net
            self.out_channels = [int(s[1]) for s in shapes]
        for p in self.net.parameters():
            p.requires_grad_(False)
        self._register_state_dict_hook(_drop_reproducible_weights)
        self._register_load_state_dict_pre_hook(_note_loaded_weights, with_module=True)
        self.register_load_state_dict_post_hook(_forgive_reproducible_weights)

    def _set_rescale(self, rescale: Any) -> None:
        self._rescale_index = {"source": 0, "target": 0}
        if not rescale:
            self.mu = self.sigma = None
            return
        if isinstance(rescale, dict):
            pairs = [rescale.get("source", [[], []]), rescale.get("target", [[], []])]
            self._rescale_index = {"source": 0, "target": 1}
        else:
            pairs = [rescale]
        n = len(pairs)
        self.register_buffer("mu", torch.tensor([p[0] for p in pairs], dtype=torch.float32).view(n, 1, -1, 1, 1),
                             persistent=False)
        self.register_buffer("sigma", torch.tensor([p[1] for p in pairs], dtype=torch.float32).view(n, 1, -1, 1, 1),
                             persistent=False)

    # ------------------------------------------------------------------ weights

    def _weights_file(self) -> Path:
        """The weights file: torchvision's published file for ``imagenet``/``DEFAULT``/an enum name, else a path."""
        spec = str(self.weights)
        path = Path(os.path.expanduser(spec))
        if path.is_file():
            return path
        import torchvision.models as tvm

        try:
            enum = tvm.get_model_weights(self.model_name)
        except (ValueError, KeyError):
            enum = None
        member = "DEFAULT" if spec.upper() in ("IMAGENET", "DEFAULT") else spec
        if enum is None or not hasattr(enum, member):
            raise FileNotFoundError(f"feature extractor weights {spec!r}: neither a file nor published torchvision "
                                    f"weights of {self.model_name!r} (use 'imagenet', None or a path)")
        weights = getattr(enum, member)
        arch = re.fullmatch(r"(vgg\d+)(_bn)?", self.model_name)
        if arch and weights.name == "IMAGENET1K_V1":  # shared lookup (torch hub cache too) with a file-name hash check
            from zoo.losses.vgg_content import vgg_weights_path

            return vgg_weights_path(arch.group(1), batch_norm=bool(arch.group(2)))
        record = WeightsFile(owner=__name__, url=weights.url, filename=weights.url.rsplit("/", 1)[1],
                             license="torchvision (BSD-3-Clause)", origin=f"torchvision {enum.__name__}.{weights.name}")
        return resolve_weights(record)

    @torch.no_grad()
    def ensure_weights(self) -> None:
        """Load the pretrained weights if they are not there yet (first training use)."""
        if self._weights_ready:
            return
        path = self._weights_file()
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
        own = self.net.state_dict()
        missing = [k for k in own if k not in state]
        if missing:
            raise KeyError(f"{path} lacks the feature extractor weights {missing[:5]} (is it a {self.model_name} "
                           "state dict?)")
        self.net.load_state_dict({k: state[k] for k in own}, strict=True)
        self._weights_ready = True

    # ------------------------------------------------------------------ forward

    def prepare(self, x: Tensor, domain: str = "source") -> Tensor:
        """The official input handling: optional per-domain rescale, then channel expansion."""
        if self.mu is not None:
            idx = self._rescale_index.get(domain, 0)
            x = (x * 0.5 + 0.5 - self.mu[idx].to(x.dtype)) / self.sigma[idx].to(x.dtype)
        if self.in_channels is not None and self.in_channels > x.shape[1]:
            x = x.expand(-1, self.in_channels, -1, -1)
        return x

    def taps(self, x: Tensor) -> list[Tensor]:
        """Prepared input -> taps [(B, C_l, H_l, W_l)] in return-node order."""
        self.ensure_weights()
        out = self.net(x)
        return list(out.values()) if isinstance(out, dict) else [out]

    def forward(self, x: Tensor, domain: str = "source") -> list[Tensor]:
        """Images (B, C, H, W) in [-1, 1] -> taps [(B, C_l, H_l, W_l)] in return-node order."""
        return self.taps(self.prepare(x, domain))
