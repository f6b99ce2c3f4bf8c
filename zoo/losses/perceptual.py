"""MUNIT's domain-invariant perceptual loss: instance-normalised VGG-16 ``relu5_3`` features, mean squared error.

As officially (NVlabs/MUNIT ``trainer.compute_vgg_loss`` and ``utils.vgg_preprocess``): both images go from [-1, 1]
RGB to Caffe's BGR [0, 255] minus the channel means (103.939, 116.779, 123.680); the VGG-16 has **no pooling between
conv4_3 and conv5_1** (features at 1/8 resolution); both feature maps are instance-normalised (no affine, eps 1e-5)
and compared with a mean squared error.

Weights: the official run used a Caffe VGG-16 converted from Lua (``vgg16.t7`` -> ``vgg16.weight``, keys
``conv1_1.weight`` ...); such a file loads here and implies Caffe preprocessing. torchvision's VGG-16 file
(``vgg16-397923af.pth``, keys ``features.<i>.weight``) also loads and implies ImageNet preprocessing (RGB in [0, 1]
normalised by the ImageNet mean/std), which is what those weights were trained on. Nothing is downloaded unless a
registered file is asked for through :func:`resolve_vgg16_weights` (looked up in ``$ZOO_WEIGHTS_DIR`` and the zoo
cache first). ``weights=None`` gives a randomly initialised network (tests).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.weights import WeightsFile, resolve_weights

__all__ = [
    "VGGPreprocess",
    "VGG16_TORCHVISION",
    "VGG16Features",
    "vgg_preprocess",
    "perceptual_loss",
    "PerceptualLoss",
    "resolve_vgg16_weights",
]

VGGPreprocess = Literal["caffe", "imagenet", "auto"]

#: The ``features`` indices of torchvision's VGG-16 that are kept (index 23, pool4, is skipped; 30, pool5, unused).
_KEPT = tuple(i for i in range(30) if i != 23)
_VGG16_CONFIG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
_OFFICIAL_NAMES = ("conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3", "conv4_1", "conv4_2",
                   "conv4_3", "conv5_1", "conv5_2", "conv5_3")
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.680)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


#: torchvision's ImageNet VGG-16 file (the weights of the perceptual loss), fetched through :mod:`zoo.weights`.
VGG16_TORCHVISION_WEIGHTS = WeightsFile(
    owner=__name__, url="https://download.pytorch.org/models/vgg16-397923af.pth", filename="vgg16-397923af.pth",
    license="BSD-3-Clause (torchvision)", origin="torchvision.models.vgg16(weights='IMAGENET1K_V1')",
)

#: Name accepted by :func:`resolve_vgg16_weights` for torchvision's ImageNet VGG-16 file.
VGG16_TORCHVISION = "torchvision"


def resolve_vgg16_weights(weights: str | os.PathLike[str]) -> Path:
    """A VGG-16 weights file: an existing path, or ``"torchvision"`` resolved through
    :func:`zoo.weights.resolve_weights` (``$ZOO_WEIGHTS_DIR``, then the zoo cache, then a download unless offline)."""
    if str(weights) == VGG16_TORCHVISION:
        return resolve_weights(VGG16_TORCHVISION_WEIGHTS)
    path = Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"VGG-16 weights file {path} does not exist (give a path to the official "
                                "vgg16.weight or torchvision's vgg16-397923af.pth, or 'torchvision')")
    return path


class VGG16Features(nn.Module):
    """VGG-16 convolutions up to ``relu5_3`` without pool4 (torchvision ``features`` layout and indices, 23 removed).

    Args:
        weights: ``None`` (random init), a state dict, or a file (official ``vgg16.weight`` or torchvision layout).

    Shape:
        (B, 3, H, W) -> (B, 512, H / 8, W / 8).
    """

    def __init__(self, weights: str | os.PathLike[str] | dict[str, Tensor] | None = None) -> None:
        super().__init__()
        layers: list[nn.Module] = []  # torchvision's VGG-16 ``features`` (configuration "D"), without the classifier
        channels = 3
        for width in _VGG16_CONFIG:
            if width == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(channels, int(width), kernel_size=3, padding=1), nn.ReLU()]
                channels = int(width)
        self.features = nn.Sequential(OrderedDict((str(i), layers[i]) for i in _KEPT))
        self.layout: Literal["official", "torchvision", "random"] = "random"
        if weights is not None:
            self.load_weights(weights)
        self.requires_grad_(False)
        self.eval()

    def load_weights(self, weights: str | os.PathLike[str] | dict[str, Tensor]) -> None:
        """Load the official Caffe-converted layout (``conv1_1.weight``...) or torchvision's (``features.0.weight``)."""
        if not isinstance(weights, dict):
            weights = torch.load(resolve_vgg16_weights(weights), map_location="cpu", weights_only=True)
        if "conv1_1.weight" in weights:
            state = {}
            for index, name in zip(_CONV_INDICES, _OFFICIAL_NAMES, strict=True):
                state[f"features.{index}.weight"] = weights[f"{name}.weight"]
                state[f"features.{index}.bias"] = weights[f"{name}.bias"]
            self.layout = "official"
        elif "features.0.weight" in weights:
            state = {k: v for k, v in weights.items() if k.startswith("features.") and int(k.split(".")[1]) < 30}
            self.layout = "torchvision"
        else:
            raise ValueError("unrecognised VGG-16 weights: expected keys 'conv1_1.weight' (official vgg16.weight) or "
                             f"'features.0.weight' (torchvision); got {sorted(weights)[:4]}...")
        self.load_state_dict(state, strict=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)


def vgg_preprocess(images: Tensor, mode: Literal["caffe", "imagenet"] = "caffe") -> Tensor:
    """[-1, 1] RGB (B, 3, H, W) -> the VGG input: ``caffe`` (official): BGR in [0, 255] minus the BGR means;
    ``imagenet``: RGB in [0, 1] normalised by the ImageNet mean and std."""
    if images.shape[1] != 3:
        raise ValueError(f"the VGG perceptual loss needs 3-channel images, got shape {tuple(images.shape)}")
    if mode == "caffe":
        mean = images.new_tensor(_CAFFE_MEAN_BGR).view(1, 3, 1, 1)
        return (images.flip(1) + 1) * 255 * 0.5 - mean
    if mode == "imagenet":
        mean = images.new_tensor(_IMAGENET_MEAN).view(1, 3, 1, 1)
        std = images.new_tensor(_IMAGENET_STD).view(1, 3, 1, 1)
        return ((images + 1) * 0.5 - mean) / std
    raise ValueError(f"VGG preprocessing must be 'caffe' or 'imagenet', got {mode!r}")


def perceptual_loss(vgg: nn.Module, images: Tensor, target: Tensor, *,
                    preprocess: Literal["caffe", "imagenet"] = "caffe") -> Tensor:
    """``mean((IN(vgg(pre(images))) - IN(vgg(pre(target))))^2)`` with affine-free instance norm (eps 1e-5).

    Args:
        vgg: feature network, e.g. :class:`VGG16Features`.
        images: (B, 3, H, W) in [-1, 1] (gradients flow into them).
        target: (B, 3, H, W) in [-1, 1].
        preprocess: see :func:`vgg_preprocess`.

    Returns:
        0-d tensor (float32 or float64).
    """
    if images.shape[0] == target.shape[0] and images.shape[1:] == target.shape[1:]:
        features = vgg(vgg_preprocess(torch.cat([images, target]), preprocess))
        feat_img, feat_tgt = features.chunk(2)
    else:
        feat_img, feat_tgt = vgg(vgg_preprocess(images, preprocess)), vgg(vgg_preprocess(target, preprocess))
    feat_img = F.instance_norm(feat_img if feat_img.dtype == torch.float64 else feat_img.float(), eps=1e-5)
    feat_tgt = F.instance_norm(feat_tgt if feat_tgt.dtype == torch.float64 else feat_tgt.float(), eps=1e-5)
    return torch.mean((feat_img - feat_tgt) ** 2)


class PerceptualLoss(nn.Module):
    """Module form of :func:`perceptual_loss` owning a frozen :class:`VGG16Features`.

    Args:
        weights: ``None`` (random VGG, for tests), a state dict, a file path, or ``"torchvision"``.
        preprocess: ``caffe`` (official), ``imagenet``, or ``auto``: ``imagenet`` for torchvision weights,
            ``caffe`` otherwise.
    """

    def __init__(self, weights: str | os.PathLike[str] | dict[str, Tensor] | None = None, *,
                 preprocess: VGGPreprocess = "auto") -> None:
        super().__init__()
        if preprocess not in ("caffe", "imagenet", "auto"):
            raise ValueError(f"preprocess must be 'caffe', 'imagenet' or 'auto', got {preprocess!r}")
        self.vgg = VGG16Features(weights)
        self.preprocess: Literal["caffe", "imagenet"] = (
            ("imagenet" if self.vgg.layout == "torchvision" else "caffe") if preprocess == "auto" else preprocess)

    def train(self, mode: bool = True) -> PerceptualLoss:  # the VGG stays in eval mode
        super().train(mode)
        self.vgg.eval()
        return self

    def forward(self, images: Tensor, target: Tensor) -> Tensor:
        return perceptual_loss(self.vgg, images, target, preprocess=self.preprocess)
