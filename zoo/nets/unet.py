"""U-Net generator with skip connections (pix2pix, Isola et al. 2017, Sec. 3.2.1).

Built recursively from :class:`UnetSkipConnectionBlock`; the module tree reproduces the official
state-dict layout (``model.model.1.model.3...``) so official checkpoints load unchanged.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from zoo.nets.norm import NormType, get_norm_layer, norm_uses_bias

__all__ = ["UnetSkipConnectionBlock", "UnetGenerator"]


class UnetSkipConnectionBlock(nn.Module):
    """One U-Net level: down-conv, the inner levels, up-conv; non-outermost levels return ``cat([x, y])``.

    Args:
        outer_nc: channels entering (and, for the skip, leaving) this level.
        inner_nc: channels after the down-conv.
        input_nc: input channels when they differ from ``outer_nc`` (outermost level only).
        submodule: the next inner level.
        outermost: first level (no norm, tanh output, no concatenation).
        innermost: bottleneck level (no submodule, no norm after the down-conv).
        norm: normalisation type.
        use_dropout: dropout 0.5 after the up-conv norm (intermediate levels only).

    Shape:
        (B, input_nc, H, W) -> (B, outer_nc + input_nc, H, W), or (B, outer_nc, H, W) when outermost.
    """

    def __init__(self, outer_nc: int, inner_nc: int, *, input_nc: int | None = None,
                 submodule: nn.Module | None = None, outermost: bool = False, innermost: bool = False,
                 norm: NormType = "batch", use_dropout: bool = False) -> None:
        super().__init__()
        self.outermost = outermost
        norm_layer = get_norm_layer(norm)
        bias = norm_uses_bias(norm)
        input_nc = outer_nc if input_nc is None else input_nc
        # The official blocks use in-place activations; ReLU(LeakyReLU(x)) == ReLU(x) makes the
        # out-of-place version numerically identical while keeping the skip tensor intact.
        down_conv = nn.Conv2d(input_nc, inner_nc, 4, stride=2, padding=1, bias=bias)
        if outermost:
            up_conv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2, padding=1)
            layers = [down_conv, submodule, nn.ReLU(), up_conv, nn.Tanh()]
        elif innermost:
            up_conv = nn.ConvTranspose2d(inner_nc, outer_nc, 4, stride=2, padding=1, bias=bias)
            layers = [nn.LeakyReLU(0.2), down_conv, nn.ReLU(), up_conv, norm_layer(outer_nc)]
        else:
            up_conv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2, padding=1, bias=bias)
            layers = [nn.LeakyReLU(0.2), down_conv, norm_layer(inner_nc), submodule, nn.ReLU(), up_conv,
                      norm_layer(outer_nc)]
            if use_dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """U-Net with ``num_downs`` stride-2 levels (``unet_256``: 8, ``unet_128``: 7).

    Args:
        input_nc: input channels.
        output_nc: output channels.
        num_downs: number of downsamplings; input sides must be multiples of ``2 ** num_downs``.
        ngf: width of the outermost level; inner levels cap at ``8 * ngf``.
        norm: normalisation type.
        use_dropout: dropout in the ``num_downs - 5`` innermost 8*ngf levels (pix2pix's noise source).

    Shape:
        (B, input_nc, H, W) -> (B, output_nc, H, W) in [-1, 1], H and W multiples of ``2 ** num_downs``.
    """

    def __init__(self, *, input_nc: int = 3, output_nc: int = 3, num_downs: int = 8, ngf: int = 64,
                 norm: NormType = "batch", use_dropout: bool = False) -> None:
        super().__init__()
        # Four fixed outer levels plus the bottleneck always exist, so fewer than 5 still builds 5 levels.
        self.size_multiple = 2 ** max(num_downs, 5)
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, innermost=True, norm=norm)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, submodule=block, norm=norm, use_dropout=use_dropout)
        block = UnetSkipConnectionBlock(ngf * 4, ngf * 8, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf * 2, ngf * 4, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf, ngf * 2, submodule=block, norm=norm)
        self.model = UnetSkipConnectionBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True,
                                             norm=norm)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)
