"""ResNet-based encoder/decoder generator (Johnson et al. 2016) as used by CycleGAN.

The module tree reproduces the official state-dict layout (``model.<index>...``), so official
checkpoints load without renaming: c7s1-ngf, two stride-2 downsampling convs, ``n_blocks`` residual
blocks at 4*ngf, two transposed convs, c7s1-out and tanh.
"""

from __future__ import annotations

from typing import Literal

from torch import Tensor, nn

from zoo.nets.few_output_conv import Conv2dFewOutputs
from zoo.nets.norm import NormType, get_norm_layer, norm_uses_bias
from zoo.nets.padding import ReflectionPad2d, ReplicationPad2d

PaddingType = Literal["reflect", "replicate", "zero"]

__all__ = ["PaddingType", "ResnetBlock", "ResnetGenerator"]


def _padding_layers(padding_type: PaddingType) -> tuple[list[nn.Module], int]:
    """Explicit padding modules (if any) and the conv padding for a 3x3 conv."""
    if padding_type == "reflect":
        return [ReflectionPad2d(1)], 0
    if padding_type == "replicate":
        return [ReplicationPad2d(1)], 0
    if padding_type == "zero":
        return [], 1
    raise ValueError(f"padding_type must be 'reflect', 'replicate' or 'zero'; got {padding_type!r}")


class ResnetBlock(nn.Module):
    """``x + F(x)`` with F = pad, conv3x3, norm, ReLU, [dropout 0.5], pad, conv3x3, norm.

    No activation follows the sum. The indices of the convs inside ``conv_block`` move with the
    padding type and dropout (1/5 by default, 1/6 with dropout, 0/3 with zero padding). The convs carry a bias
    when ``bias`` says so (None: the CycleGAN rule, :func:`~zoo.nets.norm.norm_uses_bias`).

    Shape:
        (B, dim, H, W) -> (B, dim, H, W)
    """

    def __init__(self, dim: int, *, padding_type: PaddingType = "reflect", norm: NormType = "instance",
                 use_dropout: bool = False, bias: bool | None = None) -> None:
        super().__init__()
        norm_layer = get_norm_layer(norm)
        bias = norm_uses_bias(norm) if bias is None else bias
        layers: list[nn.Module] = []
        pads, p = _padding_layers(padding_type)
        layers += pads + [nn.Conv2d(dim, dim, 3, padding=p, bias=bias), norm_layer(dim), nn.ReLU(True)]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        pads, p = _padding_layers(padding_type)
        layers += pads + [nn.Conv2d(dim, dim, 3, padding=p, bias=bias), norm_layer(dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """Encoder, ``n_blocks`` residual blocks, decoder.

    Args:
        input_nc: channels of the input image.
        output_nc: channels of the output image.
        ngf: width of the first conv; the residual blocks run at ``4 * ngf``.
        norm: normalisation after every conv but the last.
        use_dropout: dropout 0.5 inside the residual blocks.
        n_blocks: number of residual blocks (6 for 128² training images, 9 for 256² in the CycleGAN paper).
        padding_type: padding inside the residual blocks; the 7x7 convs always use reflection padding.

    Shape:
        (B, input_nc, H, W) -> (B, output_nc, H, W) in [-1, 1] when H, W are multiples of 4.
    """

    size_multiple = 4

    def __init__(self, *, input_nc: int = 3, output_nc: int = 3, ngf: int = 64, norm: NormType = "batch",
                 use_dropout: bool = False, n_blocks: int = 6, padding_type: PaddingType = "reflect") -> None:
        super().__init__()
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        norm_layer = get_norm_layer(norm)
        bias = norm_uses_bias(norm)
        layers: list[nn.Module] = [
            ReflectionPad2d(3),
            nn.Conv2d(input_nc, ngf, 7, padding=0, bias=bias),
            norm_layer(ngf),
            nn.ReLU(True),
        ]
        for i in range(2):  # downsampling
            mult = 2**i
            layers += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1, bias=bias),
                norm_layer(ngf * mult * 2),
                nn.ReLU(True),
            ]
        for _ in range(n_blocks):
            layers.append(ResnetBlock(ngf * 4, padding_type=padding_type, norm=norm, use_dropout=use_dropout))
        for i in range(2):  # upsampling
            mult = 2 ** (2 - i)
            layers += [
                nn.ConvTranspose2d(ngf * mult, int(ngf * mult / 2), 3, stride=2, padding=1, output_padding=1,
                                   bias=bias),
                norm_layer(int(ngf * mult / 2)),
                nn.ReLU(True),
            ]
        layers += [ReflectionPad2d(3), Conv2dFewOutputs(ngf, output_nc, 7, padding=0), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)
