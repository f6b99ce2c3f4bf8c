"""DRIT / DRIT++ networks (Lee et al., ECCV 2018 / IJCV 2020) in the official module layout.

Module and parameter names follow ``src/networks.py`` of https://github.com/HsinYingLee/DRIT, so official state dicts
load without renaming. The official code hard-codes its widths (64 and 4 x 64); here ``ch`` is that base width
(``ch=64`` is the official network). Official quirks reproduced on purpose:

* ``LeakyReLUConv2d`` never applies its ``norm`` argument (the official test compares the string literal ``'norm'``
  with ``'Instance'``), so ``dis_norm`` has no effect and the content discriminator has no normalisation; its
  LeakyReLU uses PyTorch's default slope 0.01.
* ``ReLUINSConvTranspose2d`` normalises with a layer norm over (C, H, W) (per-channel affine of shape (C, 1, 1)).
* The feature-wise generator injects the attribute by concatenation and 1x1 convolutions (``MisINSResBlock``).
* Spectral norm is the repository's copy of the PyTorch-0.5 hook: keys ``weight_orig``, ``weight_u`` and a ``weight``
  buffer that keeps W / sigma of the last training forward and is what eval mode uses (no power iteration).

Every Gaussian draw (the content encoder's noise layer, the sampled attributes of the method) goes through
:func:`randn`, which :func:`replay_randn` can redirect to stored tensors (parity tests replay the official draws).
"""

from __future__ import annotations

import contextlib
import contextvars
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.nets.norm import ChannelsLastInstanceNorm2d, is_channels_last
from zoo.nets.padding import ReflectionPad2d

__all__ = [
    "randn",
    "replay_randn",
    "SNConv2d",
    "LayerNorm",
    "LeakyReLUConv2d",
    "ReLUINSConv2d",
    "INSResBlock",
    "MisINSResBlock",
    "ReLUINSConvTranspose2d",
    "GaussianNoiseLayer",
    "BasicBlock",
    "E_content",
    "E_attr",
    "E_attr_concat",
    "G",
    "G_concat",
    "MultiScaleDis",
    "Dis",
    "Dis_content",
    "discriminator_logits",
    "init_official",
    "parse_nonlinearity",
]

# ------------------------------------------------------------------------------------------------------------------
# Random draws (replayable)
# ------------------------------------------------------------------------------------------------------------------

_REPLAY: contextvars.ContextVar[list[Tensor] | None] = contextvars.ContextVar("drit_replay", default=None)


def randn(shape: Sequence[int], *, like: Tensor) -> Tensor:
    """Standard normal tensor of ``shape`` with the dtype and device of ``like`` (global torch generator).

    Inside :func:`replay_randn` the next stored tensor is returned instead (its shape must match).
    """
    queue = _REPLAY.get()
    if queue is None:
        return torch.randn(tuple(shape), dtype=like.dtype, device=like.device)
    if not queue:
        raise RuntimeError(f"replay_randn: no stored draw left for a draw of shape {tuple(shape)}")
    value = queue.pop(0)
    if tuple(value.shape) != tuple(shape):
        raise RuntimeError(f"replay_randn: next stored draw has shape {tuple(value.shape)}, the code draws "
                           f"{tuple(shape)}")
    return value.to(dtype=like.dtype, device=like.device)


@contextlib.contextmanager
def replay_randn(draws: Iterable[Tensor]) -> Iterator[list[Tensor]]:
    """Make :func:`randn` return ``draws`` in order; the block must consume all of them."""
    queue = list(draws)
    token = _REPLAY.set(queue)
    try:
        yield queue
    finally:
        _REPLAY.reset(token)
    if queue:
        raise RuntimeError(f"replay_randn: {len(queue)} stored draw(s) were not used")


# ------------------------------------------------------------------------------------------------------------------
# Building blocks
# ------------------------------------------------------------------------------------------------------------------


class SNConv2d(nn.Conv2d):
    """Conv2d with the official (PyTorch-0.5 copy) spectral normalisation; state keys as the official hook.

    Training forward: one power iteration ``v = normalize(W^T u)``, ``u = normalize(W v)`` (no gradient),
    ``sigma = u . (W v)`` (with gradient), convolution with ``W / sigma``; ``weight_u`` and the ``weight`` buffer are
    updated. Eval forward: convolution with the stored ``weight`` buffer as is.
    """

    def __init__(self, *args, eps: float = 1e-12, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.eps = eps
        weight = self.weight
        del self._parameters["weight"]
        self.weight_orig = nn.Parameter(weight.detach().clone())
        self.register_buffer("weight", weight.detach().clone())
        u = F.normalize(weight.new_empty(weight.shape[0]).normal_(0, 1), dim=0, eps=eps)
        self.register_buffer("weight_u", u)

    def normalized_weight(self) -> Tensor:
        """``W / sigma`` after one power iteration (updates ``weight_u``)."""
        w = self.weight_orig
        with torch.autocast(device_type=w.device.type, enabled=False):
            mat = w.reshape(w.shape[0], -1)
            with torch.no_grad():
                v = F.normalize(mat.t().mv(self.weight_u.to(mat.dtype)), dim=0, eps=self.eps)
                u = F.normalize(mat.mv(v), dim=0, eps=self.eps)
                self.weight_u.copy_(u)
            sigma = torch.dot(u, mat.mv(v))
            return w / sigma

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            weight = self.normalized_weight()
            with torch.no_grad():
                self.weight.copy_(weight)
        else:
            weight = self.weight
        return self._conv_forward(x, weight, self.bias)


def _conv(n_in: int, n_out: int, kernel_size: int, stride: int = 1, *, sn: bool = False) -> nn.Conv2d:
    cls = SNConv2d if sn else nn.Conv2d
    return cls(n_in, n_out, kernel_size=kernel_size, stride=stride, padding=0, bias=True)


class LayerNorm(nn.Module):
    """Layer norm over (C, H, W) per sample (biased variance, eps inside the sqrt) with a per-channel affine.

    ``weight`` and ``bias`` have the official shape (C, 1, 1).
    """

    def __init__(self, n_out: int, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__()
        self.n_out, self.eps, self.affine = n_out, eps, affine
        if affine:
            self.weight = nn.Parameter(torch.ones(n_out, 1, 1))
            self.bias = nn.Parameter(torch.zeros(n_out, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        if is_channels_last(x):
            # the same statistics over a (B, H, W, C) view: no copy to NCHW and back; the per-channel affine is
            # applied by broadcasting, so that its gradient is not first materialised at full size
            c, h, w = x.shape[1:]
            out = F.layer_norm(x.permute(0, 2, 3, 1), (h, w, c), eps=self.eps)
            if self.affine:
                out = out * self.weight.view(c) + self.bias.view(c)
            return out.permute(0, 3, 1, 2)
        shape = x.shape[1:]
        if self.affine:
            return F.layer_norm(x, shape, self.weight.expand(shape), self.bias.expand(shape), self.eps)
        return F.layer_norm(x, shape, eps=self.eps)


class LeakyReLUConv2d(nn.Module):
    """ReflectionPad -> Conv (optionally spectral-normed) -> LeakyReLU(0.01). ``norm`` is ignored, as officially."""

    def __init__(self, n_in: int, n_out: int, kernel_size: int, stride: int, padding: int = 0, norm: str = "None",
                 sn: bool = False) -> None:
        super().__init__()
        del norm  # the official layer never applies it
        self.model = nn.Sequential(ReflectionPad2d(padding), _conv(n_in, n_out, kernel_size, stride, sn=sn),
                                   nn.LeakyReLU(inplace=True))

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class ReLUINSConv2d(nn.Module):
    """ReflectionPad -> Conv -> InstanceNorm (no affine) -> ReLU."""

    def __init__(self, n_in: int, n_out: int, kernel_size: int, stride: int, padding: int = 0) -> None:
        super().__init__()
        self.model = nn.Sequential(ReflectionPad2d(padding), _conv(n_in, n_out, kernel_size, stride),
                                   ChannelsLastInstanceNorm2d(n_out, affine=False), nn.ReLU(inplace=True))

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class INSResBlock(nn.Module):
    """x + [pad, conv3x3, IN, ReLU, pad, conv3x3, IN](x)."""

    def __init__(self, inplanes: int, planes: int) -> None:
        super().__init__()
        self.model = nn.Sequential(ReflectionPad2d(1), _conv(inplanes, planes, 3),
                                   ChannelsLastInstanceNorm2d(planes),
                                   nn.ReLU(inplace=True), ReflectionPad2d(1), _conv(planes, planes, 3),
                                   ChannelsLastInstanceNorm2d(planes))

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x) + x


def _expand(z: Tensor, like: Tensor) -> Tensor:
    """(B, E) -> (B, E, H, W) broadcast to the spatial size of ``like``, in ``like``'s memory format."""
    expanded = z.view(z.shape[0], z.shape[1], 1, 1).expand(z.shape[0], z.shape[1], like.shape[2], like.shape[3])
    if is_channels_last(like):
        # torch.cat returns NCHW unless every input is channels-last, and the next conv would copy it back
        expanded = expanded.contiguous(memory_format=torch.channels_last)
    return expanded


class MisINSResBlock(nn.Module):
    """Residual block of the feature-wise generator: the attribute code is concatenated after each 3x3 conv + IN
    and mixed in by two 1x1 convs with ReLUs. (The official in-place residual add is written out of place: same
    values, but modern autograd accepts it.)"""

    def __init__(self, dim: int, dim_extra: int) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(nn.Sequential(ReflectionPad2d(1), _conv(dim, dim, 3)),
                                   ChannelsLastInstanceNorm2d(dim))
        self.conv2 = nn.Sequential(nn.Sequential(ReflectionPad2d(1), _conv(dim, dim, 3)),
                                   ChannelsLastInstanceNorm2d(dim))
        self.blk1 = nn.Sequential(_conv(dim + dim_extra, dim + dim_extra, 1), nn.ReLU(),
                                  _conv(dim + dim_extra, dim, 1), nn.ReLU())
        self.blk2 = nn.Sequential(_conv(dim + dim_extra, dim + dim_extra, 1), nn.ReLU(),
                                  _conv(dim + dim_extra, dim, 1), nn.ReLU())
        self.model = nn.Sequential()  # the official (empty) dropout container

    def forward(self, x: Tensor, z: Tensor) -> Tensor:
        z_expand = _expand(z, x)
        o2 = self.blk1(torch.cat([self.conv1(x), z_expand], dim=1))
        return self.blk2(torch.cat([self.conv2(o2), z_expand], dim=1)) + x


class ReLUINSConvTranspose2d(nn.Module):
    """ConvTranspose2d -> LayerNorm over (C, H, W) (despite the name) -> ReLU."""

    def __init__(self, n_in: int, n_out: int, kernel_size: int, stride: int, padding: int,
                 output_padding: int) -> None:
        super().__init__()
        self.model = nn.Sequential(
            nn.ConvTranspose2d(n_in, n_out, kernel_size=kernel_size, stride=stride, padding=padding,
                               output_padding=output_padding, bias=True),
            LayerNorm(n_out), nn.ReLU(inplace=True))

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class GaussianNoiseLayer(nn.Module):
    """Adds unit Gaussian noise in training mode (drawn through :func:`randn`); identity in eval mode."""

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return x
        return x + randn(x.shape, like=x)


NonLinearity = Literal["lrelu", "relu", "elu"]
NormLayer = Literal["none", "instance", "batch"]


def _nonlinearity(kind: NonLinearity) -> nn.Module:
    """The official ``get_non_linearity``: ``lrelu`` is LeakyReLU(0.2)."""
    if kind == "lrelu":
        return nn.LeakyReLU(0.2, inplace=False)
    if kind == "relu":
        return nn.ReLU(inplace=True)
    if kind == "elu":
        return nn.ELU(inplace=True)
    raise ValueError(f"nl_layer must be 'lrelu', 'relu' or 'elu', got {kind!r}")


def parse_nonlinearity(description: str | None) -> NonLinearity:
    """``"lrelu"`` or an official description such as ``"get_non_linearity('lrelu') = LeakyReLU(0.2)"``."""
    if description is None:
        return "lrelu"
    match = re.search(r"get_non_linearity\(\s*(?:layer_type\s*=\s*)?['\"](\w+)['\"]", description)
    kind = match.group(1) if match else description.strip()
    if kind not in ("lrelu", "relu", "elu"):
        raise ValueError(f"unknown non-linearity {description!r}")
    return kind  # type: ignore[return-value]


def _norm2d(kind: NormLayer, channels: int) -> list[nn.Module]:
    if kind in ("none", None):
        return []
    if kind == "instance":
        return [ChannelsLastInstanceNorm2d(channels, affine=False)]
    if kind == "batch":
        return [nn.BatchNorm2d(channels, affine=True)]
    raise ValueError(f"norm_layer must be 'none', 'instance' or 'batch', got {kind!r}")


class BasicBlock(nn.Module):
    """Attribute-encoder block: [norm, nl, pad, conv3x3, norm, nl, [pad, conv3x3, avgpool2]] + [avgpool2, conv1x1]."""

    def __init__(self, inplanes: int, outplanes: int, norm_layer: NormLayer = "none",
                 nl_layer: NonLinearity = "lrelu") -> None:
        super().__init__()
        layers = [*_norm2d(norm_layer, inplanes), _nonlinearity(nl_layer), ReflectionPad2d(1),
                  _conv(inplanes, inplanes, 3), *_norm2d(norm_layer, inplanes), _nonlinearity(nl_layer),
                  nn.Sequential(ReflectionPad2d(1), _conv(inplanes, outplanes, 3), nn.AvgPool2d(2, 2))]
        self.conv = nn.Sequential(*layers)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2), _conv(inplanes, outplanes, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x) + self.shortcut(x)


# ------------------------------------------------------------------------------------------------------------------
# Encoders
# ------------------------------------------------------------------------------------------------------------------


def _content_branch(input_dim: int, ch: int) -> nn.Sequential:
    return nn.Sequential(LeakyReLUConv2d(input_dim, ch, 7, 1, 3), ReLUINSConv2d(ch, ch * 2, 3, 2, 1),
                         ReLUINSConv2d(ch * 2, ch * 4, 3, 2, 1), *[INSResBlock(ch * 4, ch * 4) for _ in range(3)])


class E_content(nn.Module):  # noqa: N801 (official name)
    """Content encoder: per-domain ``convA`` / ``convB`` and a shared ``conv_share`` (residual block + noise).

    (B, input_dim, H, W) in [-1, 1] -> content (B, 4 ch, ceil(H/4), ceil(W/4)); unit Gaussian noise is added in
    training mode (first the A code, then the B code).
    """

    #: Input sides must be multiples of this (two stride-2 convolutions).
    size_multiple = 4

    def __init__(self, input_dim_a: int = 3, input_dim_b: int = 3, ch: int = 64) -> None:
        super().__init__()
        self.conv_share = nn.Sequential(INSResBlock(ch * 4, ch * 4), GaussianNoiseLayer())
        self.convA = _content_branch(input_dim_a, ch)
        self.convB = _content_branch(input_dim_b, ch)

    def forward(self, xa: Tensor, xb: Tensor) -> tuple[Tensor, Tensor]:
        a, b = self.convA(xa), self.convB(xb)
        if a.shape[1:] == b.shape[1:]:  # the shared block treats samples independently: one call for both
            a, b = self.conv_share[0](torch.cat([a, b])).split([a.shape[0], b.shape[0]])
        else:
            a, b = self.conv_share[0](a), self.conv_share[0](b)
        return self.conv_share[1](a), self.conv_share[1](b)

    def forward_a(self, xa: Tensor) -> Tensor:
        return self.conv_share(self.convA(xa))

    def forward_b(self, xb: Tensor) -> Tensor:
        return self.conv_share(self.convB(xb))


def _attr_branch(input_dim: int, output_nc: int, ch: int) -> nn.Sequential:
    layers: list[nn.Module] = [ReflectionPad2d(3), nn.Conv2d(input_dim, ch, 7, 1), nn.ReLU(inplace=True)]
    for n_in, n_out in ((ch, ch * 2), (ch * 2, ch * 4), (ch * 4, ch * 4), (ch * 4, ch * 4)):
        layers += [ReflectionPad2d(1), nn.Conv2d(n_in, n_out, 4, 2), nn.ReLU(inplace=True)]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Conv2d(ch * 4, output_nc, 1, 1, 0)]
    return nn.Sequential(*layers)


class E_attr(nn.Module):  # noqa: N801
    """Deterministic attribute encoder (feature-wise variant): (B, C, H, W) -> (B, output_nc)."""

    def __init__(self, input_dim_a: int = 3, input_dim_b: int = 3, output_nc: int = 8, ch: int = 64) -> None:
        super().__init__()
        self.model_a = _attr_branch(input_dim_a, output_nc, ch)
        self.model_b = _attr_branch(input_dim_b, output_nc, ch)

    def forward(self, xa: Tensor, xb: Tensor) -> tuple[Tensor, Tensor]:
        return self.forward_a(xa), self.forward_b(xb)

    def forward_a(self, xa: Tensor) -> Tensor:
        return self.model_a(xa).flatten(1)

    def forward_b(self, xb: Tensor) -> Tensor:
        return self.model_b(xb).flatten(1)


def _attr_concat_branch(input_dim: int, ch: int, norm_layer: NormLayer, nl_layer: NonLinearity) -> nn.Sequential:
    layers: list[nn.Module] = [ReflectionPad2d(1), nn.Conv2d(input_dim, ch, kernel_size=4, stride=2, padding=0)]
    for n in range(1, 4):
        layers.append(BasicBlock(ch * min(4, n), ch * min(4, n + 1), norm_layer, nl_layer))
    layers += [_nonlinearity(nl_layer), nn.AdaptiveAvgPool2d(1)]
    return nn.Sequential(*layers)


class E_attr_concat(nn.Module):  # noqa: N801
    """Variational attribute encoder (concat variant): (B, C, H, W) -> mean and log-variance, each (B, output_nc)."""

    def __init__(self, input_dim_a: int = 3, input_dim_b: int = 3, output_nc: int = 8, ch: int = 64,
                 norm_layer: NormLayer = "none", nl_layer: NonLinearity = "lrelu") -> None:
        super().__init__()
        self.fc_A = nn.Sequential(nn.Linear(ch * 4, output_nc))
        self.fcVar_A = nn.Sequential(nn.Linear(ch * 4, output_nc))
        self.conv_A = _attr_concat_branch(input_dim_a, ch, norm_layer, nl_layer)
        self.fc_B = nn.Sequential(nn.Linear(ch * 4, output_nc))
        self.fcVar_B = nn.Sequential(nn.Linear(ch * 4, output_nc))
        self.conv_B = _attr_concat_branch(input_dim_b, ch, norm_layer, nl_layer)

    def forward(self, xa: Tensor, xb: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return (*self.forward_a(xa), *self.forward_b(xb))

    def forward_a(self, xa: Tensor) -> tuple[Tensor, Tensor]:
        flat = self.conv_A(xa).flatten(1)
        return self.fc_A(flat), self.fcVar_A(flat)

    def forward_b(self, xb: Tensor) -> tuple[Tensor, Tensor]:
        flat = self.conv_B(xb).flatten(1)
        return self.fc_B(flat), self.fcVar_B(flat)


# ------------------------------------------------------------------------------------------------------------------
# Generators
# ------------------------------------------------------------------------------------------------------------------


class G_concat(nn.Module):  # noqa: N801
    """Concat generator: shared residual block, then per domain the attribute is concatenated at four depths.

    content (B, 4 ch, h, w) and attribute (B, nz) -> image (B, output_dim, 4 h, 4 w) in [-1, 1].
    """

    def __init__(self, output_dim_a: int = 3, output_dim_b: int = 3, nz: int = 8, ch: int = 64) -> None:
        super().__init__()
        self.nz = nz
        self.dec_share = nn.Sequential(INSResBlock(ch * 4, ch * 4))
        for domain, out_dim in (("A", output_dim_a), ("B", output_dim_b)):
            tch = ch * 4 + nz
            dec1 = nn.Sequential(*[INSResBlock(tch, tch) for _ in range(3)])
            tch += nz
            dec2 = nn.Sequential(ReLUINSConvTranspose2d(tch, tch // 2, 3, 2, 1, 1))
            tch = tch // 2 + nz
            dec3 = nn.Sequential(ReLUINSConvTranspose2d(tch, tch // 2, 3, 2, 1, 1))
            tch = tch // 2 + nz
            dec4 = nn.Sequential(nn.ConvTranspose2d(tch, out_dim, kernel_size=1, stride=1, padding=0), nn.Tanh())
            for i, block in enumerate((dec1, dec2, dec3, dec4), start=1):
                setattr(self, f"dec{domain}{i}", block)

    def _decode(self, domain: str, x: Tensor, z: Tensor) -> Tensor:
        out = self.dec_share(x)
        for i in range(1, 5):
            out = getattr(self, f"dec{domain}{i}")(torch.cat([out, _expand(z, out)], 1))
        return out

    def forward_a(self, x: Tensor, z: Tensor) -> Tensor:
        return self._decode("A", x, z)

    def forward_b(self, x: Tensor, z: Tensor) -> Tensor:
        return self._decode("B", x, z)


class G(nn.Module):
    """Feature-wise generator: an MLP maps the attribute to four codes, one per ``MisINSResBlock``, then two
    upsampling blocks and a 1x1 transposed conv with tanh.

    content (B, 4 ch, h, w) and attribute (B, nz) -> image (B, output_dim, 4 h, 4 w) in [-1, 1]. (The official MLP
    input width is the literal 8, which equals ``nz`` in every official configuration.)
    """

    def __init__(self, output_dim_a: int = 3, output_dim_b: int = 3, nz: int = 8, ch: int = 64) -> None:
        super().__init__()
        self.nz = nz
        tch = self.tch_add = ch * 4
        for domain, out_dim in (("A", output_dim_a), ("B", output_dim_b)):
            for i in range(1, 5):
                setattr(self, f"dec{domain}{i}", MisINSResBlock(tch, tch))
            setattr(self, f"dec{domain}5", nn.Sequential(
                ReLUINSConvTranspose2d(tch, tch // 2, 3, 2, 1, 1),
                ReLUINSConvTranspose2d(tch // 2, tch // 4, 3, 2, 1, 1),
                nn.ConvTranspose2d(tch // 4, out_dim, kernel_size=1, stride=1, padding=0), nn.Tanh()))
        for domain in ("A", "B"):
            setattr(self, f"mlp{domain}", nn.Sequential(nn.Linear(nz, ch * 4), nn.ReLU(inplace=True),
                                                        nn.Linear(ch * 4, ch * 4), nn.ReLU(inplace=True),
                                                        nn.Linear(ch * 4, tch * 4)))

    def _decode(self, domain: str, x: Tensor, z: Tensor) -> Tensor:
        codes = getattr(self, f"mlp{domain}")(z).split(self.tch_add, dim=1)
        out = x
        for i, code in enumerate(codes, start=1):
            out = getattr(self, f"dec{domain}{i}")(out, code)
        return getattr(self, f"dec{domain}5")(out)

    def forward_a(self, x: Tensor, z: Tensor) -> Tensor:
        return self._decode("A", x, z)

    def forward_b(self, x: Tensor, z: Tensor) -> Tensor:
        return self._decode("B", x, z)


# ------------------------------------------------------------------------------------------------------------------
# Discriminators
# ------------------------------------------------------------------------------------------------------------------


class MultiScaleDis(nn.Module):
    """Multi-scale image discriminator: ``n_scale`` nets of ``n_layer`` 4x4 stride-2 convs + a 1x1 conv; the input is
    downsampled by AvgPool2d(3, 2, 1, count_include_pad=False) between scales. Returns raw logits, one
    (B, 1, h_s, w_s) map per scale, finest first.
    """

    def __init__(self, input_dim: int = 3, n_scale: int = 3, n_layer: int = 4, norm: str = "None", sn: bool = False,
                 ch: int = 64) -> None:
        super().__init__()
        del norm  # never applied by the official LeakyReLUConv2d
        self.downsample = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.Diss = nn.ModuleList()
        for _ in range(n_scale):
            layers: list[nn.Module] = [LeakyReLUConv2d(input_dim, ch, 4, 2, 1, sn=sn)]
            tch = ch
            for _ in range(1, n_layer):
                layers.append(LeakyReLUConv2d(tch, tch * 2, 4, 2, 1, sn=sn))
                tch *= 2
            layers.append(_conv(tch, 1, 1, sn=sn))
            self.Diss.append(nn.Sequential(*layers))

    def forward(self, x: Tensor) -> list[Tensor]:
        outs = []
        for net in self.Diss:
            outs.append(net(x))
            x = self.downsample(x)
        return outs


class Dis(nn.Module):
    """Single-scale image discriminator (``dis_scale == 1``): six 3x3 stride-2 convs and a 1x1 conv.

    ``forward`` returns the official one-element list of flattened logits; :func:`discriminator_logits` the map.
    """

    def __init__(self, input_dim: int = 3, norm: str = "None", sn: bool = False, ch: int = 64) -> None:
        super().__init__()
        del norm
        layers: list[nn.Module] = [LeakyReLUConv2d(input_dim, ch, 3, 2, 1, sn=sn)]
        tch = ch
        for _ in range(1, 5):
            layers.append(LeakyReLUConv2d(tch, tch * 2, 3, 2, 1, sn=sn))
            tch *= 2
        layers.append(LeakyReLUConv2d(tch, tch * 2, 3, 2, 1, sn=sn))
        layers.append(_conv(tch * 2, 1, 1, sn=sn))
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> list[Tensor]:
        return [self.model(x).reshape(-1)]


class Dis_content(nn.Module):  # noqa: N801
    """Content discriminator on (B, 4 ch, h, w) codes: ``n_down`` 7x7 stride-2 layers (official: 3), a 4x4 layer
    and a 1x1 conv. Returns the official one-element list of flattened logits (one per sample at the 216 crop).

    With the official ``n_down=3`` the codes need h, w >= 53 (images >= 209 px); ``n_down=1`` accepts codes of
    11 px (images >= 44 px), ``n_down=0`` codes of 4 px.
    """

    def __init__(self, ch: int = 64, n_down: int = 3) -> None:
        super().__init__()
        c = ch * 4
        self.model = nn.Sequential(*[LeakyReLUConv2d(c, c, 7, 2, 1) for _ in range(n_down)],
                                   LeakyReLUConv2d(c, c, 4, 1, 0), nn.Conv2d(c, 1, kernel_size=1, stride=1, padding=0))

    def forward(self, x: Tensor) -> list[Tensor]:
        return [self.model(x).reshape(-1)]


def discriminator_logits(net: nn.Module, x: Tensor) -> list[Tensor]:
    """Raw logit maps (B, 1, h, w) per scale of any DRIT discriminator (batch dimension kept, for splitting)."""
    if isinstance(net, MultiScaleDis):
        return net(x)
    if isinstance(net, (Dis, Dis_content)):
        return [net.model(x)]
    raise TypeError(f"not a DRIT discriminator: {type(net).__name__}")


def init_official(net: nn.Module, std: float = 0.02) -> nn.Module:
    """The official ``gaussian_weights_init``: N(0, std) for every Conv2d / ConvTranspose2d weight (spectral-normed
    ones included); biases, Linear layers and layer norms keep their PyTorch initialisation."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, SNConv2d):
                m.weight_orig.normal_(0.0, std)
                m.weight.copy_(m.weight_orig)
            elif isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                m.weight.normal_(0.0, std)
    return net
