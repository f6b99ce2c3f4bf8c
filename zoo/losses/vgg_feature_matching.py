"""pix2pixHD's perceptual loss: L1 between VGG-19 features of the output and of the target image.

``sum_k w_k * L1(phi_k(x), phi_k(y))`` over ``relu1_1``, ``relu2_1``, ``relu3_1``, ``relu4_1`` and ``relu5_1`` (the
outputs of torchvision's ``vgg19().features[:2]``, ``[:7]``, ``[:12]``, ``[:21]``, ``[:30]``) with weights 1/32, 1/16,
1/8, 1/4 and 1; the target's features carry no gradient. As in the official code the images are fed as they are, in
[-1, 1], **without** ImageNet normalisation.

The VGG-19 is frozen and left out of the state dict (checkpoints and bundles stay small). Its ImageNet weights are
torchvision's file (:func:`zoo.losses.vgg_content.vgg_weights_path`: ``$ZOO_WEIGHTS_DIR``, zoo's or torch's cache,
else downloaded unless offline), read at the first loss evaluation; ``weights=None`` keeps random weights (tests).
``width_div`` narrows every convolution (tests with small random VGGs).
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.losses.vgg_content import exclude_frozen_features, read_vgg_state

__all__ = ["VGGFeatureMatchingLoss", "VGG19_SLICE_ENDS", "VGG19_SLICE_WEIGHTS"]

#: ``features`` index ranges of the five slices: [0, 2), [2, 7), [7, 12), [12, 21), [21, 30).
VGG19_SLICE_ENDS = (2, 7, 12, 21, 30)
VGG19_SLICE_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)
_VGG19_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")


class VGGFeatureMatchingLoss(nn.Module):
    """Frozen VGG-19 feature L1 of pix2pixHD.

    Args:
        weights: ``"imagenet"`` (torchvision's file), a path to a state dict with ``features.<k>.*`` keys (or the
            official ``slice<n>.<k>.*`` ones), or None for random weights.
        width_div: divide every convolution's width by this (1: the real VGG-19).

    Shape:
        ``x``, ``y``: (B, 3, H, W) in [-1, 1]. Output: 0-d float32 tensor.
    """

    def __init__(self, weights: str | os.PathLike[str] | None = "imagenet", *, width_div: int = 1) -> None:
        super().__init__()
        from torchvision.models.vgg import make_layers

        config = [c if c == "M" else c // width_div for c in _VGG19_CONFIG]
        self.features = make_layers(config, batch_norm=False)[: VGG19_SLICE_ENDS[-1]]
        for module in self.features:
            if isinstance(module, nn.Conv2d):  # torchvision's initialisation (random weights: tests only)
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)
        self.features.requires_grad_(False)
        self.weights = None if weights is None else os.fspath(weights)
        self._weights_pending = weights is not None
        exclude_frozen_features(self)

    @torch.no_grad()
    def load_weights(self, state: dict[str, Tensor] | None = None) -> None:
        """Read the VGG weights (done automatically at the first loss evaluation), or load ``state``: a state dict
        with torchvision's ``features.<k>`` keys, the official ``slice<n>.<k>`` ones, or this module's."""
        if state is None:
            if not self._weights_pending:
                return
            _, state = read_vgg_state(self.weights, "vgg19")
        renamed = {}
        for key, value in state.items():
            parts = key.removeprefix("module.").split(".")
            if parts[0].startswith("slice"):  # official Vgg19: slice<n>.<features index>.<param>
                parts = parts[1:]
            elif parts[0] == "features":
                parts = parts[1:]
            renamed[".".join(parts)] = value
        own = self.features.state_dict()
        missing = [k for k in own if k not in renamed]
        if missing:
            raise KeyError(f"VGG-19 weights lack {missing[:4]}")
        self.features.load_state_dict({k: renamed[k] for k in own}, strict=True)
        self._weights_pending = False

    def slices(self, x: Tensor) -> list[Tensor]:
        """The five feature maps ``relu1_1`` ... ``relu5_1`` of ``x`` (B, 3, H, W)."""
        self.load_weights()
        outputs, start = [], 0
        for end in VGG19_SLICE_ENDS:
            for layer in self.features[start:end]:
                x = layer(x)
            outputs.append(x)
            start = end
        return outputs

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        with torch.no_grad():
            targets = self.slices(y)
        total = x.new_zeros((), dtype=torch.float32)
        for weight, feature, target in zip(VGG19_SLICE_WEIGHTS, self.slices(x), targets, strict=True):
            total = total + weight * F.l1_loss(feature.float(), target.float())
        return total

