"""``build_generator``: the official ``define_G`` names (``resnet_9blocks``, ``unet_256``, ...) and generalisations."""

from __future__ import annotations

import re

from torch import nn

from zoo.nets.init import InitType, init_weights
from zoo.nets.norm import NormType
from zoo.nets.resnet_generator import PaddingType, ResnetGenerator
from zoo.nets.unet import UnetGenerator

__all__ = ["build_generator", "parse_generator_name"]

_RESNET = re.compile(r"^resnet_(\d+)blocks$")
_UNET = re.compile(r"^unet_(\d+)$")


def parse_generator_name(netG: str) -> tuple[str, int]:
    """``"resnet_9blocks"`` -> ``("resnet", 9)``; ``"unet_256"`` -> ``("unet", 8)`` (number of downsamplings).

    Any ``resnet_<N>blocks`` and any ``unet_<2**k>`` are accepted; the official names are
    resnet_6blocks, resnet_9blocks, unet_128 and unet_256.
    """
    if m := _RESNET.match(netG):
        return "resnet", int(m.group(1))
    if m := _UNET.match(netG):
        size = int(m.group(1))
        if size < 2 or size & (size - 1):
            raise ValueError(f"unet size must be a power of two, got {netG!r}")
        return "unet", size.bit_length() - 1
    raise ValueError(f"generator must look like 'resnet_<N>blocks' or 'unet_<2**k>' (e.g. resnet_9blocks, unet_256); "
                     f"got {netG!r}")


def build_generator(*, input_nc: int, output_nc: int, ngf: int = 64, netG: str = "resnet_9blocks",
                    norm: NormType = "batch", use_dropout: bool = False, padding_type: PaddingType = "reflect",
                    init_type: InitType | None = "normal", init_gain: float = 0.02) -> nn.Module:
    """The official ``define_G``, plus ``padding_type`` (reachable officially only through the class).

    ``init_type=None`` skips the initialisation (e.g. before loading weights).
    """
    kind, n = parse_generator_name(netG)
    if kind == "resnet":
        net: nn.Module = ResnetGenerator(input_nc=input_nc, output_nc=output_nc, ngf=ngf, norm=norm,
                                         use_dropout=use_dropout, n_blocks=n, padding_type=padding_type)
    else:
        net = UnetGenerator(input_nc=input_nc, output_nc=output_nc, num_downs=n, ngf=ngf, norm=norm,
                            use_dropout=use_dropout)
    if init_type is not None:
        init_weights(net, init_type, init_gain)
    return net
