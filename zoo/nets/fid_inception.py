"""The Inception-v3 of the Fréchet Inception Distance: TensorFlow's 2015-12-05 graph as ported to PyTorch.

FID (Heusel et al., 2017) is defined on the 2048-d ``pool3`` features of the Inception-v3 TensorFlow graph
``inception-2015-12-05``. That graph differs from torchvision's Inception-v3 in its weights (1008 classes) and in
its pooling branches:

- ``Mixed_5b``-``Mixed_5d`` (A blocks), ``Mixed_6b``-``Mixed_6e`` (C blocks) and ``Mixed_7b`` (first E block) average
  over the 3x3 window **without counting the zero padding** (TensorFlow's ``SAME`` average pool);
- ``Mixed_7c`` (second E block) **max**-pools in its pool branch instead of average pooling.

Input: RGB images ``(B, 3, H, W)`` with values in [0, 1]. They are resized to 299x299 (``F.interpolate`` bilinear,
``align_corners=False``) and scaled to [-1, 1], as pytorch-fid does by default; the output is ``(B, 2048)``.

Weights: pytorch-fid's port of the TensorFlow graph, ``pt_inception-2015-12-05-6726825d.pth`` (see
:data:`FID_INCEPTION_WEIGHTS`). Its keys follow torchvision's ``Inception3`` module names
(``Conv2d_1a_3x3.conv.weight``, ``Mixed_5b.branch1x1.bn.running_mean``, ..., ``fc.weight``), which this module
reproduces so that the file loads with ``load_state_dict``. ``weights=None`` leaves random weights (tests);
``"pytorch-fid"`` resolves the file through :func:`zoo.weights.resolve_weights` (``$ZOO_WEIGHTS_DIR``, the zoo cache,
then a download unless offline).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.weights import WeightsFile, resolve_weights_argument

__all__ = [
    "FID_INCEPTION_WEIGHTS",
    "FID_INCEPTION_PYTORCH_FID",
    "FIDInceptionV3",
    "resolve_fid_inception_weights",
]

#: pytorch-fid's port of TensorFlow's ``inception-2015-12-05`` graph, fetched through :mod:`zoo.weights`.
FID_INCEPTION_WEIGHTS = WeightsFile(
    owner=__name__,
    url="https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
    filename="pt_inception-2015-12-05-6726825d.pth",
    sha256="6726825d",  # the prefix the publisher gives in the file name (torch.hub's check_hash convention)
    license="Apache-2.0 (TensorFlow inception-2015-12-05 graph, ported by pytorch-fid; trained on ImageNet data)",
    origin="mseitzer/pytorch-fid release fid_weights",
    notes="ImageNet-trained; used to compute FID comparably with the TensorFlow reference implementation.",
)

#: Name accepted by :func:`resolve_fid_inception_weights` (and :class:`FIDInceptionV3`) for the published file.
FID_INCEPTION_PYTORCH_FID = "pytorch-fid"

#: Side of the square the images are resized to.
INPUT_SIZE = 299
#: Number of features returned (``pool3``).
FEATURE_DIM = 2048
#: Number of classes of the TensorFlow graph's classifier (kept so the published file loads unchanged).
NUM_CLASSES = 1008


def resolve_fid_inception_weights(weights: str | os.PathLike[str]) -> Path:
    """A FID Inception weights file: an existing path, or ``"pytorch-fid"`` resolved through
    :func:`zoo.weights.resolve_weights`."""
    return resolve_weights_argument(weights, FID_INCEPTION_PYTORCH_FID, FID_INCEPTION_WEIGHTS)


class ConvBNReLU(nn.Module):
    """Convolution without bias, batch norm (eps 1e-3, as TensorFlow's graph), ReLU; keys ``conv.*`` and ``bn.*``.

    Shapes: ``(B, in_channels, H, W) -> (B, out_channels, H', W')``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 stride: int = 1, padding: int | tuple[int, int] = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


def _average_pool_without_padding(x: Tensor) -> Tensor:
    """3x3 stride-1 average pool whose border windows average only the pixels inside the image (TF ``SAME``)."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class MixedA(nn.Module):
    """Inception A block (``Mixed_5b``-``Mixed_5d``): 1x1, 5x5, double 3x3 and pool branches.

    Shapes: ``(B, in_channels, H, W) -> (B, 224 + pool_features, H, W)``.
    """

    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = ConvBNReLU(in_channels, 64, 1)
        self.branch5x5_1 = ConvBNReLU(in_channels, 48, 1)
        self.branch5x5_2 = ConvBNReLU(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = ConvBNReLU(in_channels, 64, 1)
        self.branch3x3dbl_2 = ConvBNReLU(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBNReLU(96, 96, 3, padding=1)
        self.branch_pool = ConvBNReLU(in_channels, pool_features, 1)

    def forward(self, x: Tensor) -> Tensor:
        branch5x5 = self.branch5x5_2(self.branch5x5_1(x))
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        branch_pool = self.branch_pool(_average_pool_without_padding(x))
        return torch.cat([self.branch1x1(x), branch5x5, branch3x3dbl, branch_pool], dim=1)


class ReductionB(nn.Module):
    """Grid reduction ``Mixed_6a``: strided 3x3, strided double 3x3 and a 3x3/2 max pool.

    Shapes: ``(B, in_channels, H, W) -> (B, 480 + in_channels, (H - 3) // 2 + 1, (W - 3) // 2 + 1)``.
    """

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = ConvBNReLU(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = ConvBNReLU(in_channels, 64, 1)
        self.branch3x3dbl_2 = ConvBNReLU(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = ConvBNReLU(96, 96, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        branch3x3dbl = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), branch3x3dbl, F.max_pool2d(x, kernel_size=3, stride=2)], dim=1)


class MixedC(nn.Module):
    """Inception C block (``Mixed_6b``-``Mixed_6e``): factorised 7x7 branches.

    Shapes: ``(B, in_channels, H, W) -> (B, 768, H, W)``.
    """

    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = ConvBNReLU(in_channels, 192, 1)
        self.branch7x7_1 = ConvBNReLU(in_channels, c7, 1)
        self.branch7x7_2 = ConvBNReLU(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = ConvBNReLU(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = ConvBNReLU(in_channels, c7, 1)
        self.branch7x7dbl_2 = ConvBNReLU(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = ConvBNReLU(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = ConvBNReLU(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = ConvBNReLU(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = ConvBNReLU(in_channels, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        branch7x7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        branch7x7dbl = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            branch7x7dbl = layer(branch7x7dbl)
        branch_pool = self.branch_pool(_average_pool_without_padding(x))
        return torch.cat([self.branch1x1(x), branch7x7, branch7x7dbl, branch_pool], dim=1)


class ReductionD(nn.Module):
    """Grid reduction ``Mixed_7a``: 1x1 + strided 3x3, factorised 7x7 + strided 3x3 and a 3x3/2 max pool.

    Shapes: ``(B, in_channels, H, W) -> (B, 512 + in_channels, (H - 3) // 2 + 1, (W - 3) // 2 + 1)``.
    """

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = ConvBNReLU(in_channels, 192, 1)
        self.branch3x3_2 = ConvBNReLU(192, 320, 3, stride=2)
        self.branch7x7x3_1 = ConvBNReLU(in_channels, 192, 1)
        self.branch7x7x3_2 = ConvBNReLU(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = ConvBNReLU(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = ConvBNReLU(192, 192, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        branch3x3 = self.branch3x3_2(self.branch3x3_1(x))
        branch7x7x3 = self.branch7x7x3_1(x)
        for layer in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            branch7x7x3 = layer(branch7x7x3)
        return torch.cat([branch3x3, branch7x7x3, F.max_pool2d(x, kernel_size=3, stride=2)], dim=1)


class MixedE(nn.Module):
    """Inception E block (``Mixed_7b``, ``Mixed_7c``): expanded 1x3/3x1 branches.

    ``max_pool=True`` gives the graph's ``Mixed_7c``, whose pool branch max-pools; ``Mixed_7b`` average-pools without
    counting the padding.

    Shapes: ``(B, in_channels, H, W) -> (B, 2048, H, W)``.
    """

    def __init__(self, in_channels: int, *, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = ConvBNReLU(in_channels, 320, 1)
        self.branch3x3_1 = ConvBNReLU(in_channels, 384, 1)
        self.branch3x3_2a = ConvBNReLU(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = ConvBNReLU(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = ConvBNReLU(in_channels, 448, 1)
        self.branch3x3dbl_2 = ConvBNReLU(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = ConvBNReLU(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = ConvBNReLU(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = ConvBNReLU(in_channels, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        branch3x3 = self.branch3x3_1(x)
        branch3x3 = torch.cat([self.branch3x3_2a(branch3x3), self.branch3x3_2b(branch3x3)], dim=1)
        branch3x3dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        branch3x3dbl = torch.cat([self.branch3x3dbl_3a(branch3x3dbl), self.branch3x3dbl_3b(branch3x3dbl)], dim=1)
        if self.max_pool:
            pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        else:
            pooled = _average_pool_without_padding(x)
        return torch.cat([self.branch1x1(x), branch3x3, branch3x3dbl, self.branch_pool(pooled)], dim=1)


class FIDInceptionV3(nn.Module):
    """FID's Inception-v3 feature extractor: images in [0, 1] to 2048-d ``pool3`` features.

    Args:
        weights: ``None`` (random init, for tests), a state dict, a file path, or ``"pytorch-fid"`` (the published
            ``pt_inception-2015-12-05-6726825d.pth``, resolved offline-first through :mod:`zoo.weights`).
        resize_input: bilinearly resize inputs to 299x299 (``align_corners=False``) as pytorch-fid does.
        normalize_input: map inputs from [0, 1] to [-1, 1], the range the network was trained on.

    Shapes:
        ``forward``: ``(B, 3, H, W)`` in [0, 1] -> ``(B, 2048)``. Without ``resize_input``, ``H`` and ``W`` must be
        at least 75.

    The network is put in eval mode and its parameters do not require gradients (gradients still flow to the input).
    """

    def __init__(self, weights: str | os.PathLike[str] | dict[str, Tensor] | None = None, *,
                 resize_input: bool = True, normalize_input: bool = True) -> None:
        super().__init__()
        self.resize_input = resize_input
        self.normalize_input = normalize_input
        self.Conv2d_1a_3x3 = ConvBNReLU(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = ConvBNReLU(32, 32, 3)
        self.Conv2d_2b_3x3 = ConvBNReLU(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = ConvBNReLU(64, 80, 1)
        self.Conv2d_4a_3x3 = ConvBNReLU(80, 192, 3)
        self.Mixed_5b = MixedA(192, pool_features=32)
        self.Mixed_5c = MixedA(256, pool_features=64)
        self.Mixed_5d = MixedA(288, pool_features=64)
        self.Mixed_6a = ReductionB(288)
        self.Mixed_6b = MixedC(768, channels_7x7=128)
        self.Mixed_6c = MixedC(768, channels_7x7=160)
        self.Mixed_6d = MixedC(768, channels_7x7=160)
        self.Mixed_6e = MixedC(768, channels_7x7=192)
        self.Mixed_7a = ReductionD(768)
        self.Mixed_7b = MixedE(1280, max_pool=False)
        self.Mixed_7c = MixedE(2048, max_pool=True)
        #: The graph's 1008-way classifier; unused for features, kept so the published file loads unchanged.
        self.fc = nn.Linear(FEATURE_DIM, NUM_CLASSES)
        if weights is not None:
            self.load_weights(weights)
        self.eval()
        self.requires_grad_(False)

    def load_weights(self, weights: str | os.PathLike[str] | dict[str, Tensor]) -> None:
        """Load a state dict, a file, or ``"pytorch-fid"`` (strict: every key of the published file must match)."""
        if not isinstance(weights, dict):
            weights = torch.load(resolve_fid_inception_weights(weights), map_location="cpu", weights_only=True)
        self.load_state_dict(weights)

    def train(self, mode: bool = True) -> FIDInceptionV3:
        """Stays in eval mode: batch norm always uses the stored statistics (``mode`` is ignored)."""
        return super().train(False)

    def preprocess(self, images: Tensor) -> Tensor:
        """Resize to 299x299 and scale from [0, 1] to [-1, 1] (as configured). Shapes: ``(B, 3, H, W) -> (B, 3, 299,
        299)``."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"FIDInceptionV3 expects RGB images of shape (B, 3, H, W); got {tuple(images.shape)}")
        x = images
        if self.resize_input:
            x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        if self.normalize_input:
            x = 2 * x - 1
        return x

    def forward(self, images: Tensor) -> Tensor:
        """``pool3`` features. Shapes: ``(B, 3, H, W)`` in [0, 1] -> ``(B, 2048)``."""
        x = self.preprocess(images)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)
