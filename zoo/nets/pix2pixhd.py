"""pix2pixHD's networks (Wang et al., CVPR 2018): input encoding, coarse-to-fine generator, feature encoder and
multi-scale discriminator.

The module trees reproduce the official state-dict layouts, so official files load without renaming:
:class:`GlobalGenerator` ``model.<i>.*``; :class:`LocalEnhancer` ``model.<i>.*`` (the global part),
``model<n>_1.*`` and ``model<n>_2.*``; :class:`FeatureEncoder` ``model.<i>.*``; :class:`MultiscaleDiscriminator`
``scale<s>_layer<j>.<k>.*`` with intermediate features, ``layer<s>.<k>.*`` without. Every convolution carries a bias
(whatever the normalisation), as officially; :func:`init_pix2pixhd_weights` is the official initialisation.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from zoo.nets.few_output_conv import Conv2dFewOutputs
from zoo.nets.norm import get_norm_layer
from zoo.nets.padding import ReflectionPad2d
from zoo.nets.resnet_generator import PaddingType, ResnetBlock

__all__ = [
    "Pix2PixHDNorm",
    "FeatureEncoder",
    "GlobalGenerator",
    "LocalEnhancer",
    "MultiscaleDiscriminator",
    "NLayerDiscriminator",
    "build_pix2pixhd_generator",
    "half_resolution",
    "init_pix2pixhd_weights",
    "instance_edges",
    "instance_mean_features",
    "one_hot_labels",
]

Pix2PixHDNorm = Literal["instance", "batch"]


def half_resolution(x: Tensor) -> Tensor:
    """The official ×0.5 downsampling between scales: ``AvgPool2d(3, 2, 1, count_include_pad=False)``.

    Shape: (B, C, H, W) -> (B, C, ceil(H/2), ceil(W/2)).
    """
    return nn.functional.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)


def one_hot_labels(label_ids: Tensor, label_nc: int) -> Tensor:
    """Integer label map (B, 1, H, W) -> one-hot (B, label_nc, H, W) float32 (the official ``scatter_``)."""
    ids = label_ids.long()
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= label_nc):
        raise ValueError(f"label ids must lie in [0, {label_nc}) (label_nc={label_nc}); got ids from {int(ids.min())} "
                         f"to {int(ids.max())}. Set label_nc to the number of classes of the label maps.")
    one_hot = torch.zeros(ids.shape[0], label_nc, *ids.shape[2:], device=ids.device)
    return one_hot.scatter_(1, ids, 1.0)


def instance_edges(instance_ids: Tensor) -> Tensor:
    """Instance boundary map: 1 where a 4-neighbour has another instance id, else 0.

    Shape: (B, 1, H, W) ids (any dtype) -> (B, 1, H, W) float32 in {0, 1}.
    """
    t = instance_ids
    edge = torch.zeros(t.shape, dtype=torch.bool, device=t.device)
    horizontal = t[..., :, 1:] != t[..., :, :-1]
    vertical = t[..., 1:, :] != t[..., :-1, :]
    edge[..., :, 1:] |= horizontal
    edge[..., :, :-1] |= horizontal
    edge[..., 1:, :] |= vertical
    edge[..., :-1, :] |= vertical
    return edge.float()


def instance_mean_features(features: Tensor, instance_ids: Tensor) -> Tensor:
    """Replace every channel of ``features`` by its mean over the pixels of each instance (per image).

    Gradients flow through the means, as officially. Shapes: features (B, C, H, W), instance_ids (B, 1, H, W) ->
    (B, C, H, W).
    """
    out = []
    for feature, ids in zip(features, instance_ids, strict=True):
        flat = feature.flatten(1)  # (C, H*W)
        _, inverse, counts = torch.unique(ids.flatten(), return_inverse=True, return_counts=True)
        sums = flat.new_zeros(flat.shape[0], counts.numel()).index_add(1, inverse, flat)
        means = sums / counts.to(flat.dtype)
        out.append(means[:, inverse].view_as(feature))
    return torch.stack(out)


def init_pix2pixhd_weights(net: nn.Module, gain: float = 0.02) -> nn.Module:
    """The official ``weights_init``: conv and transposed-conv weights ~ N(0, gain) (biases keep PyTorch's default),
    BatchNorm weights ~ N(1, gain) and biases 0."""
    for module in net.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(module.weight, 0.0, gain)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.normal_(module.weight, 1.0, gain)
            nn.init.zeros_(module.bias)
    return net


def _encoder_decoder(input_nc: int, ngf: int, n_downsampling: int, norm: Pix2PixHDNorm, n_blocks: int,
                     padding_type: PaddingType) -> list[nn.Module]:
    """c7s1-ngf, ``n_downsampling`` stride-2 convs, ``n_blocks`` residual blocks, as many transposed convs (all
    followed by norm and ReLU): the official layer list up to the output conv."""
    norm_layer = get_norm_layer(norm)
    layers: list[nn.Module] = [ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7), norm_layer(ngf), nn.ReLU(True)]
    for i in range(n_downsampling):
        width = ngf * 2**i
        layers += [nn.Conv2d(width, width * 2, 3, stride=2, padding=1), norm_layer(width * 2), nn.ReLU(True)]
    width = ngf * 2**n_downsampling
    layers += [ResnetBlock(width, padding_type=padding_type, norm=norm, bias=True) for _ in range(n_blocks)]
    for i in range(n_downsampling):
        width = ngf * 2 ** (n_downsampling - i)
        layers += [nn.ConvTranspose2d(width, width // 2, 3, stride=2, padding=1, output_padding=1),
                   norm_layer(width // 2), nn.ReLU(True)]
    return layers


def _output_layers(ngf: int, output_nc: int) -> list[nn.Module]:
    return [ReflectionPad2d(3), Conv2dFewOutputs(ngf, output_nc, 7), nn.Tanh()]


class GlobalGenerator(nn.Module):
    """The global generator G1: c7s1-ngf, ``n_downsampling`` stride-2 convs, ``n_blocks`` residual blocks,
    transposed convs back, c7s1-output_nc and tanh; instance norm and ReLU.

    Shape:
        (B, input_nc, H, W) -> (B, output_nc, H, W) in [-1, 1], H and W multiples of ``size_multiple``.
    """

    def __init__(self, input_nc: int, output_nc: int, ngf: int = 64, n_downsampling: int = 4, n_blocks: int = 9,
                 norm: Pix2PixHDNorm = "instance", padding_type: PaddingType = "reflect") -> None:
        super().__init__()
        self.size_multiple = 2**n_downsampling
        self.model = nn.Sequential(*_encoder_decoder(input_nc, ngf, n_downsampling, norm, n_blocks, padding_type),
                                   *_output_layers(ngf, output_nc))

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class LocalEnhancer(nn.Module):
    """The coarse-to-fine generator G = {G1, G2, ...}: the global generator (width ``ngf * 2**n_local_enhancers``,
    without its output layers) runs on the input downsampled ``n_local_enhancers`` times; each enhancer ``n``
    downsamples the input at its own scale once (``model<n>_1``), **adds** the coarser features, then runs residual
    blocks and upsamples (``model<n>_2``); the last one ends with c7s1-output_nc and tanh.

    Shape:
        (B, input_nc, H, W) -> (B, output_nc, H, W) in [-1, 1], H and W multiples of ``size_multiple``.
    """

    def __init__(self, input_nc: int, output_nc: int, ngf: int = 32, n_downsample_global: int = 3,
                 n_blocks_global: int = 9, n_local_enhancers: int = 1, n_blocks_local: int = 3,
                 norm: Pix2PixHDNorm = "instance", padding_type: PaddingType = "reflect") -> None:
        super().__init__()
        if n_local_enhancers < 1:
            raise ValueError(f"n_local_enhancers must be >= 1, got {n_local_enhancers}")
        self.n_local_enhancers = n_local_enhancers
        self.size_multiple = 2 ** (n_downsample_global + n_local_enhancers)
        norm_layer = get_norm_layer(norm)
        self.model = nn.Sequential(*_encoder_decoder(input_nc, ngf * 2**n_local_enhancers, n_downsample_global, norm,
                                                     n_blocks_global, padding_type))
        for n in range(1, n_local_enhancers + 1):
            width = ngf * 2 ** (n_local_enhancers - n)
            downsample = [ReflectionPad2d(3), nn.Conv2d(input_nc, width, 7), norm_layer(width), nn.ReLU(True),
                          nn.Conv2d(width, width * 2, 3, stride=2, padding=1), norm_layer(width * 2), nn.ReLU(True)]
            upsample: list[nn.Module] = [ResnetBlock(width * 2, padding_type=padding_type, norm=norm, bias=True)
                                         for _ in range(n_blocks_local)]
            upsample += [nn.ConvTranspose2d(width * 2, width, 3, stride=2, padding=1, output_padding=1),
                         norm_layer(width), nn.ReLU(True)]
            if n == n_local_enhancers:
                upsample += _output_layers(ngf, output_nc)
            setattr(self, f"model{n}_1", nn.Sequential(*downsample))
            setattr(self, f"model{n}_2", nn.Sequential(*upsample))

    def global_parameter_names(self) -> list[str]:
        """Names of the global generator's parameters (the ones frozen during ``niter_fix_global``)."""
        return [name for name, _ in self.named_parameters() if name.startswith("model.")]

    def forward(self, x: Tensor) -> Tensor:
        inputs = [x]
        for _ in range(self.n_local_enhancers):
            inputs.append(half_resolution(inputs[-1]))
        out = self.model(inputs[-1])
        for n in range(1, self.n_local_enhancers + 1):
            local = getattr(self, f"model{n}_1")(inputs[self.n_local_enhancers - n])
            out = getattr(self, f"model{n}_2")(local + out)
        return out


class FeatureEncoder(nn.Module):
    """The instance-wise feature encoder E: an encoder-decoder (no residual blocks) to ``output_nc`` feature
    channels with tanh, whose output is averaged inside each instance (:func:`instance_mean_features`).

    Shape:
        image (B, input_nc, H, W), instance_ids (B, 1, H, W) -> (B, output_nc, H, W), constant on each instance.
    """

    def __init__(self, input_nc: int, output_nc: int, ngf: int = 16, n_downsampling: int = 4,
                 norm: Pix2PixHDNorm = "instance") -> None:
        super().__init__()
        self.size_multiple = 2**n_downsampling
        self.model = nn.Sequential(*_encoder_decoder(input_nc, ngf, n_downsampling, norm, 0, "reflect"),
                                   *_output_layers(ngf, output_nc))

    def forward(self, image: Tensor, instance_ids: Tensor) -> Tensor:
        return instance_mean_features(self.model(image), instance_ids)


class NLayerDiscriminator(nn.Module):
    """PatchGAN of pix2pixHD: ``n_layers`` stride-2 4x4 convs (LeakyReLU 0.2; norm from the second), one stride-1
    conv, a 1-channel conv (padding 2 everywhere) and, with ``use_sigmoid``, a sigmoid.

    With ``intermediate_features`` the blocks are ``model0`` ... ``model<n_layers+1>`` and :meth:`forward` returns
    every block's output; as officially, the sigmoid is then left out. Otherwise one ``model`` Sequential returns
    ``[scores]``.
    """

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 3, norm: Pix2PixHDNorm = "instance",
                 use_sigmoid: bool = False, intermediate_features: bool = True) -> None:
        super().__init__()
        norm_layer = get_norm_layer(norm)
        pad = math.ceil((4 - 1) / 2)
        blocks: list[list[nn.Module]] = [[nn.Conv2d(input_nc, ndf, 4, stride=2, padding=pad), nn.LeakyReLU(0.2, True)]]
        width = ndf
        for _ in range(1, n_layers):
            previous, width = width, min(width * 2, 512)
            blocks.append([nn.Conv2d(previous, width, 4, stride=2, padding=pad), norm_layer(width),
                           nn.LeakyReLU(0.2, True)])
        previous, width = width, min(width * 2, 512)
        blocks.append([nn.Conv2d(previous, width, 4, stride=1, padding=pad), norm_layer(width),
                       nn.LeakyReLU(0.2, True)])
        blocks.append([nn.Conv2d(width, 1, 4, stride=1, padding=pad)])
        self.intermediate_features = intermediate_features
        self.n_blocks = len(blocks)
        if intermediate_features:  # the official code copies only these blocks: no sigmoid
            for j, block in enumerate(blocks):
                setattr(self, f"model{j}", nn.Sequential(*block))
        else:
            layers = [layer for block in blocks for layer in block]
            self.model = nn.Sequential(*layers, *([nn.Sigmoid()] if use_sigmoid else []))

    def blocks(self) -> list[nn.Module]:
        """The modules applied in turn: one per block with intermediate features, else the single ``model``."""
        if self.intermediate_features:
            return [getattr(self, f"model{j}") for j in range(self.n_blocks)]
        return [self.model]

    def forward(self, x: Tensor) -> list[Tensor]:
        outputs = []
        for block in self.blocks():
            x = block(x)
            outputs.append(x)
        return outputs


class MultiscaleDiscriminator(nn.Module):
    """``num_D`` PatchGANs judging the input at full, half, quarter ... resolution (:func:`half_resolution`).

    Returns a list over scales, full resolution first, of each PatchGAN's outputs: every block's output with
    ``intermediate_features`` (the last one is the score map), else ``[scores]``. The submodules keep the official
    names, where scale ``s`` judges resolution ``num_D - 1 - s`` (``scale<num_D-1>_*`` sees the full image).

    Shape:
        (B, input_nc, H, W) -> [[(B, C_j, H_ij, W_ij) for each block j] for each scale i].
    """

    def __init__(self, input_nc: int, ndf: int = 64, n_layers: int = 3, norm: Pix2PixHDNorm = "instance",
                 use_sigmoid: bool = False, num_D: int = 3, intermediate_features: bool = True) -> None:
        super().__init__()
        self.num_D, self.n_layers, self.intermediate_features = num_D, n_layers, intermediate_features
        for s in range(num_D):
            net = NLayerDiscriminator(input_nc, ndf, n_layers, norm, use_sigmoid, intermediate_features)
            if intermediate_features:
                for j in range(n_layers + 2):
                    setattr(self, f"scale{s}_layer{j}", getattr(net, f"model{j}"))
            else:
                setattr(self, f"layer{s}", net.model)

    def _blocks(self, s: int) -> list[nn.Module]:
        if self.intermediate_features:
            return [getattr(self, f"scale{s}_layer{j}") for j in range(self.n_layers + 2)]
        return [getattr(self, f"layer{s}")]

    def forward(self, x: Tensor) -> list[list[Tensor]]:
        results = []
        for i in range(self.num_D):
            outputs, h = [], x
            for block in self._blocks(self.num_D - 1 - i):
                h = block(h)
                outputs.append(h)
            results.append(outputs)
            if i != self.num_D - 1:
                x = half_resolution(x)
        return results


def build_pix2pixhd_generator(input_nc: int, output_nc: int, *, ngf: int, netG: Literal["global", "local"],
                              n_downsample_global: int, n_blocks_global: int, n_local_enhancers: int,
                              n_blocks_local: int, norm: Pix2PixHDNorm,
                              padding_type: PaddingType = "reflect") -> nn.Module:
    """The official ``define_G`` for ``global`` and ``local``, with the official initialisation."""
    if netG == "global":
        net: nn.Module = GlobalGenerator(input_nc, output_nc, ngf, n_downsample_global, n_blocks_global, norm,
                                         padding_type)
    elif netG == "local":
        net = LocalEnhancer(input_nc, output_nc, ngf, n_downsample_global, n_blocks_global, n_local_enhancers,
                            n_blocks_local, norm, padding_type)
    else:
        raise ValueError(f"netG must be 'global' or 'local', got {netG!r}")
    return init_pix2pixhd_weights(net)
