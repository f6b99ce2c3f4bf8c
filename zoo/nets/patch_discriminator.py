"""PatchGAN discriminators (pix2pix Sec. 3.2.2): a grid of real/fake logits, one per receptive field.

``n_layers=3`` is the 70x70 PatchGAN used by pix2pix and CycleGAN; ``PixelDiscriminator`` is the
1x1 PixelGAN. Module trees follow the official state-dict layout.
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from zoo.nets.init import InitType, init_weights
from zoo.nets.norm import NormType, get_norm_layer, norm_uses_bias

DiscriminatorType = Literal["basic", "n_layers", "pixel"]

__all__ = ["NLayerDiscriminator", "PixelDiscriminator", "build_discriminator", "DiscriminatorType"]


class NLayerDiscriminator(nn.Module):
    """Stack of 4x4 convs (stride 2, then stride 1) with LeakyReLU 0.2, ending in a 1-channel logit map.

    Args:
        input_nc: input channels (``input_nc + output_nc`` for pix2pix's conditional D).
        ndf: width of the first conv; later widths are ``ndf * min(2**n, 8)``.
        n_layers: number of stride-2 convs (receptive field 16, 34, 70, 142, 286 for 1..5).
        norm: normalisation after every conv except the first and the last.

    Shape:
        (B, input_nc, H, W) -> (B, 1, H', W') raw logits (no sigmoid); 256² input -> 30² for n_layers=3.
    """

    def __init__(self, *, input_nc: int = 3, ndf: int = 64, n_layers: int = 3, norm: NormType = "batch") -> None:
        super().__init__()
        norm_layer = get_norm_layer(norm)
        bias = norm_uses_bias(norm)
        layers: list[nn.Module] = [nn.Conv2d(input_nc, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=2, padding=1, bias=bias), norm_layer(ndf * mult),
                       nn.LeakyReLU(0.2, True)]
        prev, mult = mult, min(2**n_layers, 8)
        layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=1, padding=1, bias=bias), norm_layer(ndf * mult),
                   nn.LeakyReLU(0.2, True), nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class PixelDiscriminator(nn.Module):
    """1x1 PixelGAN: per-pixel real/fake logits.

    The last conv has ``bias=use_bias`` (no bias with batch norm), as in the official network.

    Shape:
        (B, input_nc, H, W) -> (B, 1, H, W) raw logits.
    """

    def __init__(self, *, input_nc: int = 3, ndf: int = 64, norm: NormType = "batch") -> None:
        super().__init__()
        norm_layer = get_norm_layer(norm)
        bias = norm_uses_bias(norm)
        self.net = nn.Sequential(
            nn.Conv2d(input_nc, ndf, 1),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 1, bias=bias),
            norm_layer(ndf * 2),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, 1, bias=bias),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def build_discriminator(*, input_nc: int, ndf: int = 64, netD: DiscriminatorType = "basic", n_layers_D: int = 3,
                        norm: NormType = "batch", init_type: InitType | None = "normal",
                        init_gain: float = 0.02) -> nn.Module:
    """The official ``define_D``: ``basic`` (n_layers 3), ``n_layers`` (``n_layers_D``) or ``pixel``.

    ``init_type=None`` skips the initialisation (e.g. before loading weights).
    """
    if netD == "basic":
        net: nn.Module = NLayerDiscriminator(input_nc=input_nc, ndf=ndf, n_layers=3, norm=norm)
    elif netD == "n_layers":
        net = NLayerDiscriminator(input_nc=input_nc, ndf=ndf, n_layers=n_layers_D, norm=norm)
    elif netD == "pixel":
        net = PixelDiscriminator(input_nc=input_nc, ndf=ndf, norm=norm)
    else:
        raise ValueError(f"discriminator must be 'basic', 'n_layers' or 'pixel'; got {netD!r}")
    if init_type is not None:
        init_weights(net, init_type, init_gain)
    return net
