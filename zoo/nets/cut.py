"""CUT-family networks (Park et al., ECCV 2020; github.com/taesungp/contrastive-unpaired-translation), as DECENT and
other CUT forks use them, in the official state-dict layouts.

* :class:`CUTResnetGenerator`: ResNet generator with anti-aliased down-sampling (blur-pool, ``Downsample``) and
  up-sampling (``Upsample``) unless ``no_antialias`` / ``no_antialias_up``; ``forward(x, layers, encode_only)``
  returns the outputs of ``model[i]`` for the requested indices (the official feature taps).
* :class:`CUTNLayerDiscriminator`: PatchGAN whose stride-2 convs become stride-1 conv + blur-pool when anti-aliased.
* :class:`PatchSampleF` and :func:`patch_nce_loss`: CUT's patch sampler (same positions for every image of the
  batch, optional 2-layer MLP, L2 normalisation) and PatchNCE loss, for CUT-style methods.
* SRUNIT's additions (Jia et al., ICCV 2021): :meth:`CUTResnetGenerator.perturb` (noise on one feature map, decoded
  and re-encoded), :func:`semantic_robustness_loss`, :class:`InputNoise` (the discriminator's ``D_noise``) and the
  ``srunit`` normalisation of :class:`PatchSampleF`.

Feature taps keep the official aliasing: a tapped tensor that the next layer modifies in place (``ReLU(True)``
right after a tapped norm layer, e.g. layer 8 without anti-aliasing) is returned after that modification.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.nets.few_output_conv import Conv2dFewOutputs
from zoo.nets.init import InitType, init_weights
from zoo.nets.norm import NormType, get_norm_layer, norm_uses_bias
from zoo.nets.padding import ReflectionPad2d, ReplicationPad2d
from zoo.nets.patch_discriminator import PixelDiscriminator
from zoo.nets.resnet_generator import PaddingType, ResnetBlock

__all__ = [
    "Downsample",
    "Upsample",
    "CUTResnetGenerator",
    "CUTNLayerDiscriminator",
    "build_cut_generator",
    "build_cut_discriminator",
    "build_cut_networks",
    "cut_generator_blocks",
    "PatchSampleF",
    "patch_nce_loss",
    "InputNoise",
    "semantic_robustness_loss",
    "gather_patches",
    "generator_taps",
]

_BINOMIAL = {1: [1.0], 2: [1.0, 1.0], 3: [1.0, 2.0, 1.0], 4: [1.0, 3.0, 3.0, 1.0], 5: [1.0, 4.0, 6.0, 4.0, 1.0],
             6: [1.0, 5.0, 10.0, 10.0, 5.0, 1.0], 7: [1.0, 6.0, 15.0, 20.0, 15.0, 6.0, 1.0]}


def _filter(size: int) -> Tensor:
    """Normalised 2-D binomial filter (outer product of a binomial row, sum 1)."""
    a = torch.tensor(_BINOMIAL[size], dtype=torch.float64)
    filt = (a[:, None] * a[None, :]).float()
    return filt / filt.sum()


def _pad_layer(pad_type: str, sizes: Sequence[int]) -> nn.Module:
    if pad_type in ("refl", "reflect"):
        return ReflectionPad2d(tuple(sizes))
    if pad_type in ("repl", "replicate"):
        return ReplicationPad2d(tuple(sizes))
    if pad_type == "zero":
        return nn.ZeroPad2d(tuple(sizes))
    raise ValueError(f"pad_type must be reflect, replicate or zero; got {pad_type!r}")


class Downsample(nn.Module):
    """Blur-pool (Zhang 2019): reflect pad, depthwise binomial filter (buffer ``filt``), stride 2.

    Shape:
        (B, C, H, W) -> (B, C, ceil(H/2), ceil(W/2)) for the default 3x3 filter.
    """

    def __init__(self, channels: int, pad_type: str = "reflect", filt_size: int = 3, stride: int = 2,
                 pad_off: int = 0) -> None:
        super().__init__()
        self.filt_size, self.stride, self.pad_off = filt_size, stride, pad_off
        lo, hi = (filt_size - 1) // 2, -(-(filt_size - 1) // 2)
        self.pad = _pad_layer(pad_type, [lo + pad_off, hi + pad_off, lo + pad_off, hi + pad_off])
        self.register_buffer("filt", _filter(filt_size)[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        if self.filt_size == 1:
            return (x if self.pad_off == 0 else self.pad(x))[:, :, ::self.stride, ::self.stride]
        return F.conv2d(self.pad(x), self.filt.to(x.dtype), stride=self.stride, groups=x.shape[1])


class Upsample(nn.Module):
    """Anti-aliased x2 up-sampling: replicate pad 1, depthwise transposed conv with the binomial filter x stride²
    (buffer ``filt``), crop.

    Shape:
        (B, C, H, W) -> (B, C, 2H, 2W) for the default 4x4 filter.
    """

    def __init__(self, channels: int, pad_type: str = "repl", filt_size: int = 4, stride: int = 2) -> None:
        super().__init__()
        self.filt_size, self.stride = filt_size, stride
        self.filt_odd = filt_size % 2 == 1
        self.pad_size = (filt_size - 1) // 2
        self.pad = _pad_layer(pad_type, [1, 1, 1, 1])
        self.register_buffer("filt", (_filter(filt_size) * stride**2)[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        out = F.conv_transpose2d(self.pad(x), self.filt.to(x.dtype), stride=self.stride, padding=1 + self.pad_size,
                                 groups=x.shape[1])[:, :, 1:, 1:]
        return out if self.filt_odd else out[:, :, :-1, :-1]


class CUTResnetGenerator(nn.Module):
    """CUT's ``ResnetGenerator`` (state-dict keys ``model.<i>.*``, blur filters ``model.<i>.filt`` included).

    Default layer indices (anti-aliased): 0 pad, 1 conv7, 2 norm, 3 ReLU, 4 conv3, 5 norm, 6 ReLU, 7 Downsample,
    8 conv3, 9 norm, 10 ReLU, 11 Downsample, 12.. residual blocks, then per up-sampling step Upsample, conv3, norm,
    ReLU, and pad, conv7, tanh. With ``no_antialias`` the down steps are stride-2 conv, norm, ReLU (3 layers each);
    with ``no_antialias_up`` the up steps are ConvTranspose2d, norm, ReLU.

    Args:
        input_nc, output_nc: image channels.
        ngf: width of the first conv (the residual blocks run at 4 * ngf).
        norm: ``instance`` (official default), ``batch``, ``none``.
        use_dropout: dropout 0.5 in the residual blocks.
        n_blocks: residual blocks (9 for ``resnet_9blocks``).
        padding_type: padding inside the residual blocks.
        no_antialias: plain stride-2 convs instead of conv + blur-pool.
        no_antialias_up: transposed convs instead of blur up-sampling + conv.

    Shape:
        (B, input_nc, H, W) -> (B, output_nc, H, W) in [-1, 1], H and W multiples of 4.
    """

    size_multiple = 4

    def __init__(self, *, input_nc: int = 3, output_nc: int = 3, ngf: int = 64, norm: NormType = "instance",
                 use_dropout: bool = False, n_blocks: int = 9, padding_type: PaddingType = "reflect",
                 no_antialias: bool = False, no_antialias_up: bool = False) -> None:
        super().__init__()
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        norm_layer = get_norm_layer(norm)
        bias = norm_uses_bias(norm)
        layers: list[nn.Module] = [ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, padding=0, bias=bias),
                                   norm_layer(ngf), nn.ReLU(True)]
        for i in range(2):
            c_in, c_out = ngf * 2**i, ngf * 2 ** (i + 1)
            if no_antialias:
                layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=bias), norm_layer(c_out), nn.ReLU(True)]
            else:
                layers += [nn.Conv2d(c_in, c_out, 3, stride=1, padding=1, bias=bias), norm_layer(c_out), nn.ReLU(True),
                           Downsample(c_out)]
        for _ in range(n_blocks):
            layers.append(ResnetBlock(ngf * 4, padding_type=padding_type, norm=norm, use_dropout=use_dropout))
        for i in range(2):
            c_in = ngf * 2 ** (2 - i)
            c_out = c_in // 2
            if no_antialias_up:
                layers += [nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1, bias=bias),
                           norm_layer(c_out), nn.ReLU(True)]
            else:
                layers += [Upsample(c_in), nn.Conv2d(c_in, c_out, 3, stride=1, padding=1, bias=bias),
                           norm_layer(c_out), nn.ReLU(True)]
        layers += [ReflectionPad2d(3), Conv2dFewOutputs(ngf, output_nc, 7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        self.input_nc = input_nc

    def feature_channels(self, layers: Sequence[int]) -> list[int]:
        """Channels of the outputs of ``model[i]`` for ``i`` in ``layers`` (no forward pass needed)."""
        channels, c = [], self.input_nc
        per_layer = []
        for module in self.model:
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                c = module.out_channels
            per_layer.append(c)
        for i in layers:
            if not 0 <= i < len(per_layer):
                raise ValueError(f"feature layer {i} out of range: the generator has layers 0..{len(per_layer) - 1}")
            channels.append(per_layer[i])
        return channels

    def forward(self, x: Tensor, layers: Sequence[int] = (), encode_only: bool = False):
        """``G(x)``; with ``layers``: ``(G(x), [model[i](...) for i in layers])``; with ``encode_only`` only the
        feature list, stopping after the last requested layer.

        Shape:
            x (B, input_nc, H, W) -> (B, output_nc, H, W) and feature maps (B, C_i, H_i, W_i).
        """
        if not layers:
            return self.model(x)
        wanted, last = set(layers), layers[-1]
        feats: list[Tensor] = []
        for i, layer in enumerate(self.model):
            x = layer(x)
            if i in wanted:
                feats.append(x)
            if encode_only and i == last:
                return feats
        return x, feats


    def perturb(self, feature: Tensor, layer: int, noise: float, *, direction: Tensor | None = None,
                uniform: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """SRUNIT's perturbation: ``feature`` (the output of ``model[layer]``) plus ``noise`` times a random unit
        direction per position, decoded to an image by ``model[layer + 1:]`` and re-encoded by ``model[:layer + 1]``.

        Args:
            feature: (B, C, H, W) output of ``model[layer]``.
            layer: index of the layer that produced ``feature``.
            noise: perturbation size (official ``reg_noise``); every position moves by exactly this much.
            direction: (B, C, H, W) standard normal draw (default: drawn here); normalised over channels.
            uniform: (B, 1, H, W) uniform draw for the magnitude map (default: drawn here).

        Returns:
            (re-encoded perturbed feature (B, C, H, W), magnitude map (B, 1, H, W)
            ``1e-7 + (noise - 1e-7) * uniform``). As in the official code the magnitude map only divides the
            regulariser; the perturbation added is always ``noise`` times the unit direction.
        """
        b, _, h, w = feature.shape
        if direction is None:
            direction = torch.randn(feature.shape, device=feature.device, dtype=feature.dtype)
        if uniform is None:
            uniform = torch.rand(b, 1, h, w, device=feature.device, dtype=feature.dtype)
        direction = direction.to(feature)
        unit = direction / (direction.pow(2).sum(1, keepdim=True).sqrt() + 1e-12)
        magnitude = 1e-7 + (noise - 1e-7) * uniform.to(feature)
        x = feature + unit * noise
        for module in self.model[layer + 1:]:
            x = module(x)
        for module in self.model[:layer + 1]:
            x = module(x)
        return x, magnitude


def generator_taps(generator: CUTResnetGenerator, real_a: Tensor, real_b: Tensor | None, layers: Sequence[int], *,
                   joint: bool) -> tuple[Tensor, Tensor | None, list[Tensor], list[Tensor] | None]:
    """``G(a)``, ``G(b)`` and their features at ``layers`` (``real_b=None``: A only).

    With ``joint`` both batches go through one call (the same numbers when G normalises each sample on its own:
    instance norm or none, and no dropout); otherwise one call each, as batch statistics require.

    Returns:
        ``(fake_b, idt_b, feats_a, feats_b)``: (B, C, H, W) images and per layer (B, C_l, H_l, W_l) maps; the B
        entries are None without ``real_b``.
    """
    if real_b is None:
        fake_b, feats_a = generator(real_a, layers)
        return fake_b, None, feats_a, None
    if joint:
        n = real_a.shape[0]
        out, feats = generator(torch.cat([real_a, real_b]), layers)
        return out[:n], out[n:], [f[:n] for f in feats], [f[n:] for f in feats]
    fake_b, feats_a = generator(real_a, layers)
    idt_b, feats_b = generator(real_b, layers)
    return fake_b, idt_b, feats_a, feats_b


def cut_generator_blocks(netG: str) -> int:
    """Residual-block count of ``resnet_<N>blocks``."""
    if netG.startswith("resnet_") and netG.endswith("blocks"):
        try:
            return int(netG[len("resnet_"):-len("blocks")])
        except ValueError:
            pass
    raise ValueError(f"netG must be resnet_<N>blocks (official: resnet_9blocks, resnet_6blocks, resnet_4blocks); "
                     f"got {netG!r}")


def build_cut_generator(*, input_nc: int = 3, output_nc: int = 3, ngf: int = 64, netG: str = "resnet_9blocks",
                        norm: NormType = "instance", use_dropout: bool = False, init_type: InitType | None = "xavier",
                        init_gain: float = 0.02, no_antialias: bool = False,
                        no_antialias_up: bool = False) -> CUTResnetGenerator:
    """The official CUT ``define_G`` for the ResNet generators (``init_type=None`` skips initialisation)."""
    net = CUTResnetGenerator(input_nc=input_nc, output_nc=output_nc, ngf=ngf, norm=norm, use_dropout=use_dropout,
                             n_blocks=cut_generator_blocks(netG), no_antialias=no_antialias,
                             no_antialias_up=no_antialias_up)
    if init_type is not None:
        init_weights(net, init_type, init_gain)
    return net


class CUTNLayerDiscriminator(nn.Module):
    """CUT's ``NLayerDiscriminator`` (keys ``model.<i>.*``; blur filters ``model.<i>.filt`` when anti-aliased).

    Shape:
        (B, input_nc, H, W) -> (B, 1, H', W') raw logits; 256² -> 30² for n_layers 3.
    """

    def __init__(self, *, input_nc: int = 3, ndf: int = 64, n_layers: int = 3, norm: NormType = "instance",
                 no_antialias: bool = False) -> None:
        super().__init__()
        norm_layer = get_norm_layer(norm)
        bias = norm_uses_bias(norm)
        if no_antialias:
            seq: list[nn.Module] = [nn.Conv2d(input_nc, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        else:
            seq = [nn.Conv2d(input_nc, ndf, 4, stride=1, padding=1), nn.LeakyReLU(0.2, True), Downsample(ndf)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            if no_antialias:
                seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=2, padding=1, bias=bias), norm_layer(ndf * mult),
                        nn.LeakyReLU(0.2, True)]
            else:
                seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=1, padding=1, bias=bias), norm_layer(ndf * mult),
                        nn.LeakyReLU(0.2, True), Downsample(ndf * mult)]
        prev, mult = mult, min(2**n_layers, 8)
        seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=1, padding=1, bias=bias), norm_layer(ndf * mult),
                nn.LeakyReLU(0.2, True), nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1)]
        self.model = nn.Sequential(*seq)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


CUTDiscriminatorType = Literal["basic", "n_layers", "pixel"]


def build_cut_discriminator(*, input_nc: int = 3, ndf: int = 64, netD: CUTDiscriminatorType = "basic",
                            n_layers_D: int = 3, norm: NormType = "instance", init_type: InitType | None = "xavier",
                            init_gain: float = 0.02, no_antialias: bool = False) -> nn.Module:
    """The official CUT ``define_D``: ``basic`` (3 layers), ``n_layers`` (``n_layers_D``) or ``pixel``."""
    if netD == "basic":
        net: nn.Module = CUTNLayerDiscriminator(input_nc=input_nc, ndf=ndf, n_layers=3, norm=norm,
                                                no_antialias=no_antialias)
    elif netD == "n_layers":
        net = CUTNLayerDiscriminator(input_nc=input_nc, ndf=ndf, n_layers=n_layers_D, norm=norm,
                                     no_antialias=no_antialias)
    elif netD == "pixel":
        net = PixelDiscriminator(input_nc=input_nc, ndf=ndf, norm=norm)
    else:
        raise ValueError(f"netD must be 'basic', 'n_layers' or 'pixel' (the StyleGAN2 and 'global' discriminators "
                         f"of the code base are not provided); got {netD!r}")
    if init_type is not None:
        init_weights(net, init_type, init_gain)
    return net


def build_cut_networks(options: Mapping[str, Any]) -> tuple[CUTResnetGenerator, nn.Module]:
    """The generator and discriminator of a CUT-family method (CUT, FastCUT, SRUNIT, DECENT) from its options:
    ``input_nc``, ``output_nc``, ``ngf``, ``ndf``, ``netG``, ``netD``, ``n_layers_d``, ``norm_g``, ``norm_d``,
    ``use_dropout``, ``init_type``, ``init_gain``, ``no_antialias``, ``no_antialias_up`` (the official option names,
    lower-cased where zoo's are). The discriminator sees domain B images (``output_nc`` channels)."""
    o = options
    generator = build_cut_generator(input_nc=o["input_nc"], output_nc=o["output_nc"], ngf=o["ngf"], netG=o["netG"],
                                    norm=o["norm_g"], use_dropout=o["use_dropout"], init_type=o["init_type"],
                                    init_gain=o["init_gain"], no_antialias=o["no_antialias"],
                                    no_antialias_up=o["no_antialias_up"])
    discriminator = build_cut_discriminator(input_nc=o["output_nc"], ndf=o["ndf"], netD=o["netD"],
                                            n_layers_D=o["n_layers_d"], norm=o["norm_d"], init_type=o["init_type"],
                                            init_gain=o["init_gain"], no_antialias=o["no_antialias"])
    return generator, discriminator


def _standard_normal_like(x: Tensor) -> Tensor:
    return torch.randn(x.shape, device=x.device, dtype=x.dtype)


class InputNoise:
    """Forward pre-hook adding ``std`` times standard normal noise to a network's input, in training and evaluation
    alike (SRUNIT's ``D_noise`` on the discriminator). Register with :meth:`attach`; keys and weights are untouched.

    Args:
        std: noise scale (0 adds nothing and draws nothing).
        draw: ``draw(x) -> Tensor`` of ``x``'s shape (default ``torch.randn_like``); parity tests replay draws.
    """

    def __init__(self, std: float, draw=None) -> None:
        self.std = float(std)
        self.draw = draw or _standard_normal_like  # a module-level function: the hook pickles (DDP spawn)

    def attach(self, net: nn.Module) -> InputNoise:
        if self.std > 0:
            net.register_forward_pre_hook(self)
        return self

    def __call__(self, module: nn.Module, args: tuple) -> tuple:
        x = args[0]
        return (x + self.std * self.draw(x), *args[1:])


def gather_patches(maps: Tensor, ids: Tensor) -> Tensor:
    """(B, C, H, W) maps -> (B * P, C) values at the flat positions ``ids`` (P,), image-major (CUT's order)."""
    return maps.permute(0, 2, 3, 1).flatten(1, 2)[:, ids.to(maps.device), :].flatten(0, 1)


class PatchSampleF(nn.Module):
    """CUT's ``PatchSampleF``: sample positions (shared across the batch), optional MLP, L2 normalisation.

    The MLPs (``mlp_<i>``: Linear(C_i, nc), ReLU, Linear(nc, nc)) are built eagerly from ``channels`` instead of on
    the first call; initialise them with :func:`zoo.nets.init.init_weights` as the official code does.

    Args:
        channels: feature channels of each layer (needed with ``use_mlp``).
        use_mlp: project with the MLP (CUT's ``mlp_sample``).
        nc: MLP width.
        normalize: ``cut``: ``x / (||x|| + 1e-7)``; ``srunit``: ``(x + 1e-12) / ||x + 1e-12||`` (SRUNIT's variant).
    """

    def __init__(self, channels: Sequence[int] = (), *, use_mlp: bool = True, nc: int = 256,
                 normalize: Literal["cut", "srunit"] = "cut") -> None:
        super().__init__()
        if normalize not in ("cut", "srunit"):
            raise ValueError(f"normalize must be 'cut' or 'srunit', got {normalize!r}")
        self.use_mlp, self.nc, self.normalize = use_mlp, nc, normalize
        if use_mlp:
            for i, c in enumerate(channels):
                setattr(self, f"mlp_{i}", nn.Sequential(nn.Linear(c, nc), nn.ReLU(), nn.Linear(nc, nc)))

    def forward(self, feats: Sequence[Tensor], num_patches: int = 64, patch_ids: Sequence[Tensor] | None = None,
                *, mlp_indices: Sequence[int] | None = None) -> tuple[list[Tensor], list[Tensor]]:
        """Per layer (B, C, H, W) -> (B * P, nc) samples (or (B, nc, H, W) with ``num_patches=0``) and the ids.

        ``mlp_indices`` names the MLP of each feature map (default ``0, 1, ...``); SRUNIT projects one chosen scale
        ``c`` with ``mlp_indices=[c]``.
        """
        out_feats, out_ids = [], []
        indices = range(len(feats)) if mlp_indices is None else mlp_indices
        for position, (i, feat) in enumerate(zip(indices, feats, strict=True)):
            b, _, h, w = feat.shape
            flat = feat.permute(0, 2, 3, 1).flatten(1, 2)
            if num_patches > 0:
                if patch_ids is not None:
                    ids = torch.as_tensor(patch_ids[position], dtype=torch.long, device=feat.device)
                else:
                    ids = torch.randperm(flat.shape[1])[:min(num_patches, flat.shape[1])].to(feat.device)
                x = flat[:, ids, :].flatten(0, 1)
            else:
                x, ids = flat, torch.empty(0, dtype=torch.long, device=feat.device)
            if self.use_mlp:
                x = getattr(self, f"mlp_{i}")(x)
            x = x.float()  # under fp16 autocast the squared norm of a 256-d sample can overflow (inf/inf: NaN grads)
            # official Normalize sums over dim 1: the feature dim of (N, C), the positions of the (B, HW, C) case
            if self.normalize == "cut":
                # vector_norm: the official sum-of-squares-then-root values, with a finite gradient at a zero row
                # (a ReLU MLP can output one; sqrt's gradient there is NaN, which then poisons the whole step)
                x = x / (torch.linalg.vector_norm(x, dim=1, keepdim=True) + 1e-7)
            else:
                x = x + 1e-12
                x = x / x.pow(2).sum(1, keepdim=True).pow(0.5)
            if num_patches == 0:
                x = x.permute(0, 2, 1).reshape(b, x.shape[-1], h, w)
            out_feats.append(x)
            out_ids.append(ids)
        return out_feats, out_ids


def patch_nce_loss(feat_q: Tensor, feat_k: Tensor, *, batch_size: int, nce_t: float = 0.07,
                   all_negatives_from_minibatch: bool = False) -> Tensor:
    """CUT's PatchNCE loss per query patch.

    Args:
        feat_q: (B * P, D) normalised query samples.
        feat_k: (B * P, D) normalised key samples at the same positions (detached here).
        batch_size: B (negatives come from the same image unless ``all_negatives_from_minibatch``).
        nce_t: temperature.

    Returns:
        (B * P,) cross-entropy of the positive among ``[positive, negatives]`` (negatives' diagonal set to -10).
    """
    n, dim = feat_q.shape
    feat_k = feat_k.detach()
    l_pos = (feat_q * feat_k).sum(1, keepdim=True)
    groups = 1 if all_negatives_from_minibatch else batch_size
    q = feat_q.reshape(groups, -1, dim)
    k = feat_k.reshape(groups, -1, dim)
    p = q.shape[1]
    l_neg = torch.bmm(q, k.transpose(2, 1))
    l_neg = l_neg.masked_fill(torch.eye(p, device=q.device, dtype=torch.bool)[None], -10.0).reshape(-1, p)
    logits = torch.cat((l_pos, l_neg), dim=1) / nce_t
    return F.cross_entropy(logits, torch.zeros(n, dtype=torch.long, device=q.device), reduction="none")


def semantic_robustness_loss(perturbed: Tensor, clean: Tensor, magnitude: Tensor, *, num_layers: int) -> Tensor:
    """SRUNIT's regulariser for one sampled scale: mean over patches of ``||q - k||_2 / magnitude``, divided by
    ``num_layers`` (the official code divides by the number of NCE layers).

    Args:
        perturbed: (N, D) samples of the re-encoded perturbed feature (q).
        clean: (N, D) samples of the clean feature at the same positions (k); neither side is detached.
        magnitude: (N,) or (N, 1) noise magnitude at those positions.
        num_layers: the divisor.

    Returns:
        0-d loss.
    """
    distance = ((perturbed - clean).pow(2).sum(1) + 1e-12).sqrt()
    return (distance / magnitude.reshape(-1)).mean() / num_layers
