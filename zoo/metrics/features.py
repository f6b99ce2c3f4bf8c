"""Feature extractors of the distribution metrics, each with its measurement protocol made explicit.

FID numbers differ between implementations by more than the gaps papers report, because of how images reach the
network: the resize filter, whether values are quantised to 8 bits first, and the input scaling (Parmar et al.,
CVPR 2022, "On Aliased Resizing and Surprising Subtleties in GAN Evaluation"). zoo therefore names the protocol and
records it with every number (:meth:`InceptionFeatures.protocol`).

Resize modes for the FID Inception (images are first quantised to uint8, as if written to PNG files):

- ``"clean"``: clean-fid's default. Each channel is resized as a float32 image with PIL's bicubic filter (which
  antialiases when shrinking), clipped to [0, 255] and not re-quantised; the network sees ``(x - 128) / 128``.
- ``"legacy-tensorflow"``: TensorFlow 1.x bilinear resize (``align_corners=False``, no half-pixel centres) and
  ``(x - 128) / 128``, as the original TTUR FID code and torch-fidelity compute it.
- ``"legacy-pytorch"``: ``F.interpolate(..., mode="bilinear", align_corners=False)`` on ``x / 255`` and ``2x - 1``, as
  pytorch-fid computes it (CycleGAN, CUT and DECENT report FID this way).

:class:`DINOv2Features` gives FD-DINOv2 (Stein et al., NeurIPS 2023, "Exposing flaws of generative model evaluation
metrics"): the CLS token of DINOv2 ViT-L/14 through timm, on 224x224 bicubic resizes normalised with ImageNet's mean
and standard deviation. As in Stein et al.'s code (torchvision's ``Resize`` on PIL images), the 8-bit images are
resized by PIL (:func:`resize_pil_bicubic`), which rounds and clips to 8 bits after each of its two passes.

:class:`PooledFeatures` turns any network into a feature extractor (a layer's output, averaged over space): the
Fréchet distance in the features of a segmenter trained on the target domain is a domain-specific FD, which also
works where the Inception weights are not at hand (zoo's notebooks use the toy-world segmenter's).

Every extractor maps RGB images ``(B, 3, H, W)`` (float in [0, 1], or uint8) to features ``(B, D)``; its networks
are frozen and in eval mode. Weights are resolved offline-first through :mod:`zoo.weights`; ``weights=None`` leaves
random weights of the real architecture (tests, plumbing checks).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from zoo.nets.fid_inception import FID_INCEPTION_PYTORCH_FID, FID_INCEPTION_WEIGHTS, INPUT_SIZE, FIDInceptionV3
from zoo.weights import WeightsFile, file_sha256, resolve_weights_argument

__all__ = [
    "DINOV2_WEIGHTS",
    "DINOv2Features",
    "InceptionFeatures",
    "PooledFeatures",
    "ResizeMode",
    "resize_clean",
    "resize_legacy_tensorflow",
    "resize_pil_bicubic",
    "to_uint8",
]

ResizeMode = Literal["clean", "legacy-tensorflow", "legacy-pytorch"]
RESIZE_MODES: tuple[str, ...] = get_args(ResizeMode)

#: timm's DINOv2 ViT-L/14 (LVD-142M), the feature network of FD-DINOv2.
DINOV2_WEIGHTS = WeightsFile(
    owner=__name__,
    url="https://huggingface.co/timm/vit_large_patch14_dinov2.lvd142m/resolve/main/model.safetensors",
    filename="vit_large_patch14_dinov2.lvd142m.safetensors",
    license="Apache-2.0 (DINOv2, Meta AI)",
    origin="facebookresearch/dinov2 ViT-L/14, as published by timm (vit_large_patch14_dinov2.lvd142m)",
    notes="Feature network of FD-DINOv2.",
)
DINOV2_ARCH = "vit_large_patch14_dinov2"
DINOV2_INPUT_SIZE = 224
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def to_uint8(images: Tensor) -> Tensor:
    """Quantise images to 8 bits as writing a PNG file would. Shapes: ``(B, 3, H, W)`` float in [0, 1] (or uint8,
    returned unchanged) -> ``(B, 3, H, W)`` uint8."""
    if images.dtype == torch.uint8:
        return images
    if not images.is_floating_point():
        raise TypeError(f"images must be float in [0, 1] or uint8; got {images.dtype}")
    return (images.detach().clamp(0, 1) * 255).round().to(torch.uint8)


def _check_rgb(images: Tensor, name: str) -> None:
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"{name} expects RGB images of shape (B, 3, H, W); got {tuple(images.shape)}")


def _tf1_source_indices(in_size: int, out_size: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """TensorFlow 1.x ``resize_bilinear`` (``align_corners=False``, no half-pixel centres) sampling along one axis:
    output ``i`` reads input ``i * in/out``, interpolating between its floor and the next index (clamped)."""
    scale = torch.tensor(in_size, dtype=torch.float32) / out_size  # float32 arithmetic, as TensorFlow's kernel
    position = torch.arange(out_size, dtype=torch.float32, device=device) * scale.to(device)
    low = position.floor().long().clamp(max=in_size - 1)
    high = (low + 1).clamp(max=in_size - 1)
    return low, high, position - low


def resize_legacy_tensorflow(images: Tensor, size: int = INPUT_SIZE) -> Tensor:
    """TensorFlow 1.x bilinear resize to ``size`` x ``size``. Shapes: ``(B, C, H, W)`` -> ``(B, C, size, size)``
    float32 (values keep their range)."""
    x = images.to(torch.float32)
    rows_low, rows_high, row_weight = _tf1_source_indices(x.shape[-2], size, x.device)
    cols_low, cols_high, col_weight = _tf1_source_indices(x.shape[-1], size, x.device)
    left, right = x[..., cols_low], x[..., cols_high]  # along rows first, then columns, as TensorFlow's kernel
    x = left + (right - left) * col_weight
    top, bottom = x[..., rows_low, :], x[..., rows_high, :]
    return top + (bottom - top) * row_weight[:, None]


def _for_each_image(resize_one: Callable[[int], None], count: int) -> None:
    """Run ``resize_one(i)`` for ``i < count`` on up to ``torch.get_num_threads()`` threads (PIL releases the GIL
    while resizing)."""
    workers = min(count, torch.get_num_threads())
    if workers <= 1:
        for index in range(count):
            resize_one(index)
        return
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(resize_one, range(count)))


def resize_clean(images: Tensor, size: int = INPUT_SIZE) -> Tensor:
    """clean-fid's resize: each channel as a float32 PIL image, bicubic (antialiased when shrinking), clipped to
    [0, 255]. Shapes: ``(B, C, H, W)`` uint8 -> ``(B, C, size, size)`` float32 in [0, 255]."""
    if images.dtype != torch.uint8:
        raise TypeError(f"resize_clean expects uint8 images; got {images.dtype}")
    planes = images.cpu().numpy()
    out = np.empty((*planes.shape[:2], size, size), dtype=np.float32)

    def resize_one(index: int) -> None:
        for channel, plane in enumerate(planes[index]):
            resized = Image.fromarray(plane.astype(np.float32), mode="F").resize(
                (size, size), resample=Image.Resampling.BICUBIC)
            out[index, channel] = np.asarray(resized)

    _for_each_image(resize_one, planes.shape[0])
    return torch.from_numpy(out.clip(0, 255)).to(images.device)


def resize_pil_bicubic(images: Tensor, size: int) -> Tensor:
    """PIL's bicubic resize of 8-bit RGB images (antialiased when shrinking; rounded and clipped to 8 bits after
    each pass), as torchvision's ``Resize(..., BICUBIC)`` does to PIL images. Shapes: ``(B, 3, H, W)`` uint8 ->
    ``(B, 3, size, size)`` uint8."""
    if images.dtype != torch.uint8:
        raise TypeError(f"resize_pil_bicubic expects uint8 images; got {images.dtype}")
    pixels = images.permute(0, 2, 3, 1).cpu().numpy()
    out = np.empty((pixels.shape[0], size, size, pixels.shape[3]), dtype=np.uint8)

    def resize_one(index: int) -> None:
        out[index] = np.asarray(Image.fromarray(pixels[index]).resize((size, size), resample=Image.Resampling.BICUBIC))

    _for_each_image(resize_one, pixels.shape[0])
    return torch.from_numpy(out).permute(0, 3, 1, 2).to(images.device)


def _weights_description(weights: Any, path: Path | None, published: str) -> dict[str, str | None]:
    if path is not None:
        return {"weights": published if str(weights) == published else str(path), "weights_sha256": file_sha256(path)}
    return {"weights": "random (untrained; numbers are not comparable)" if weights is None else "state dict",
            "weights_sha256": None}


class InceptionFeatures(nn.Module):
    """FID/KID features: the FID Inception-v3 (``pool3``, 2048-d) behind a named resize protocol.

    Args:
        weights: ``"pytorch-fid"`` (the published ``pt_inception-2015-12-05-6726825d.pth``, resolved offline-first
            and checked against its sha256 prefix), a file path, a state dict, or ``None`` (random weights).
        resize: ``"clean"``, ``"legacy-tensorflow"`` or ``"legacy-pytorch"`` (see the module docstring).
        quantize: round float inputs to uint8 first, as if the images were written to PNG files and read back
            (uint8 inputs are used as they are).
        channels_last: run the network in channels-last layout (about 1.4x faster on CPUs with oneDNN; the features
            differ from the contiguous layout's by float32 round-off only, below 1e-6 relative).

    Shapes:
        ``forward``: ``(B, 3, H, W)`` float in [0, 1] or uint8 -> ``(B, 2048)`` float32.
    """

    feature_dim = 2048

    def __init__(self, weights: str | os.PathLike[str] | dict[str, Tensor] | None = FID_INCEPTION_PYTORCH_FID, *,
                 resize: ResizeMode = "clean", quantize: bool = True, channels_last: bool = True) -> None:
        super().__init__()
        if resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {', '.join(RESIZE_MODES)}; got {resize!r}")
        self.resize, self.quantize = resize, quantize
        path = None if weights is None or isinstance(weights, dict) else resolve_weights_argument(
            weights, FID_INCEPTION_PYTORCH_FID, FID_INCEPTION_WEIGHTS)
        self.network = FIDInceptionV3(path if path is not None else weights, resize_input=False,
                                      normalize_input=False)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.network.to(memory_format=self.memory_format)
        self._weights = _weights_description(weights, path, FID_INCEPTION_PYTORCH_FID)

    def train(self, mode: bool = True) -> InceptionFeatures:  # a frozen metric network: always in eval mode
        return super().train(False)

    def preprocess(self, images: Tensor) -> Tensor:
        """Quantise, resize and scale as the protocol says. Shapes: ``(B, 3, H, W)`` -> ``(B, 3, 299, 299)``."""
        _check_rgb(images, type(self).__name__)
        if self.quantize or images.dtype == torch.uint8:
            x = to_uint8(images)
            if self.resize == "clean":
                return (resize_clean(x) - 128) / 128
            x = x.to(torch.float32)
        else:
            if self.resize == "clean":
                raise ValueError("resize='clean' works on uint8 images: keep quantize=True")
            x = images.to(torch.float32) * 255
        if self.resize == "legacy-tensorflow":
            return (resize_legacy_tensorflow(x) - 128) / 128
        x = F.interpolate(x / 255, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        return 2 * x - 1

    def forward(self, images: Tensor) -> Tensor:
        """``pool3`` features. Shapes: ``(B, 3, H, W)`` -> ``(B, 2048)``."""
        return self.network(self.preprocess(images).contiguous(memory_format=self.memory_format))

    def protocol(self) -> dict[str, Any]:
        """What the numbers depend on, for reports: network, weights (and sha256), resize, input handling."""
        scaling = "x / 255 * 2 - 1" if self.resize == "legacy-pytorch" else "(x - 128) / 128 on [0, 255]"
        return {"network": "FID Inception-v3 (TensorFlow inception-2015-12-05, pool3, 2048-d)", **self._weights,
                "resize": self.resize, "input_size": INPUT_SIZE,
                "quantize": "uint8 (as PNG files)" if self.quantize else "none (float inputs)",
                "input_scaling": scaling}


class DINOv2Features(nn.Module):
    """FD-DINOv2 features: the CLS token of a DINOv2 ViT (timm) on bicubic resizes, ImageNet-normalised.

    Args:
        weights: ``"timm"`` (the published ``vit_large_patch14_dinov2.lvd142m`` safetensors, resolved offline-first
            through :mod:`zoo.weights`), a file path (timm's layout), or ``None`` (random weights).
        arch: timm model name; ``vit_large_patch14_dinov2`` (1024-d) is the FD-DINOv2 network.
        image_size: side of the square the images are resized to (224 in Stein et al.).
        quantize: round float inputs to uint8 first, as if the images were written to PNG files.
        **timm_kwargs: passed to ``timm.create_model`` (e.g. ``depth``/``embed_dim`` for small test networks).

    Shapes:
        ``forward``: ``(B, 3, H, W)`` float in [0, 1] or uint8 -> ``(B, D)`` float32 (``D`` = the ViT's width).
    """

    def __init__(self, weights: str | os.PathLike[str] | None = "timm", *, arch: str = DINOV2_ARCH,
                 image_size: int = DINOV2_INPUT_SIZE, quantize: bool = True, **timm_kwargs: Any) -> None:
        super().__init__()
        import timm

        path = None if weights is None else resolve_weights_argument(weights, "timm", DINOV2_WEIGHTS)
        overlay = {} if path is None else {"pretrained_cfg_overlay": {"file": str(path)}}
        # pretrained=True with a local file: timm loads it and resamples the position embedding to image_size
        self.network = timm.create_model(arch, pretrained=path is not None, num_classes=0, img_size=image_size,
                                         **overlay, **timm_kwargs)
        self.arch, self.image_size, self.quantize = arch, image_size, quantize
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self._weights = _weights_description(weights, path, "timm")
        self.eval()
        self.requires_grad_(False)

    @property
    def feature_dim(self) -> int:
        return int(self.network.num_features)

    def train(self, mode: bool = True) -> DINOv2Features:  # a frozen metric network: always in eval mode
        return super().train(False)

    def preprocess(self, images: Tensor) -> Tensor:
        """Quantise, resize (bicubic, antialiased) and normalise. Shapes: ``(B, 3, H, W)`` -> ``(B, 3, S, S)``.

        8-bit images (uint8 inputs, or float inputs with ``quantize``) are resized by PIL as Stein et al. do; float
        inputs without ``quantize`` by ``F.interpolate``'s antialiased bicubic filter (the same filter, kept in
        float and clipped to [0, 1])."""
        _check_rgb(images, type(self).__name__)
        if self.quantize or images.dtype == torch.uint8:
            x = resize_pil_bicubic(to_uint8(images), self.image_size).to(torch.float32) / 255
        else:
            x = F.interpolate(images.to(torch.float32), size=(self.image_size, self.image_size), mode="bicubic",
                              align_corners=False, antialias=True).clamp(0, 1)
        return (x - self.mean) / self.std

    def forward(self, images: Tensor) -> Tensor:
        """CLS-token features after the final norm. Shapes: ``(B, 3, H, W)`` -> ``(B, D)``."""
        return self.network(self.preprocess(images))

    def protocol(self) -> dict[str, Any]:
        """What the numbers depend on, for reports."""
        return {"network": f"DINOv2 {self.arch} (timm), CLS token, {self.feature_dim}-d", **self._weights,
                "resize": "PIL bicubic on uint8" if self.quantize else "bicubic (antialiased, float)",
                "input_size": self.image_size,
                "quantize": "uint8 (as PNG files)" if self.quantize else "none (float inputs)",
                "input_scaling": "ImageNet mean/std"}


class PooledFeatures(nn.Module):
    """Features of any network: the output of one of its layers, averaged over the spatial dimensions.

    Args:
        network: a module taking images ``(B, 3, H, W)`` in [0, 1] (e.g. a segmenter trained on the target domain).
        layer: dotted name of the submodule whose output is taken (``dict(network.named_modules())`` keys); a list or
            tuple output uses its last element.
        quantize: round float inputs to uint8 first, as if the images were written to PNG files.

    Shapes:
        ``forward``: ``(B, 3, H, W)`` in [0, 1] -> ``(B, C)`` (``C`` = channels of the layer's output).
    """

    def __init__(self, network: nn.Module, layer: str, *, quantize: bool = True) -> None:
        super().__init__()
        modules = dict(network.named_modules())
        if layer not in modules:
            raise ValueError(f"{type(network).__name__} has no submodule {layer!r}; choose one of "
                             f"{', '.join(name for name in modules if name)}")
        self.network, self.layer, self.quantize = network, layer, quantize
        self._tapped = modules[layer]
        network.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> PooledFeatures:  # a frozen metric network: always in eval mode
        return super().train(False)

    def forward(self, images: Tensor) -> Tensor:
        """Spatially averaged layer output. Shapes: ``(B, 3, H, W)`` -> ``(B, C)``."""
        _check_rgb(images, type(self).__name__)
        quantized = self.quantize or images.dtype == torch.uint8
        x = to_uint8(images).to(torch.float32) / 255 if quantized else images.to(torch.float32)
        captured: list[Tensor] = []

        def keep(_module: nn.Module, _inputs: Any, output: Any) -> None:
            captured.append(output[-1] if isinstance(output, (list, tuple)) else output)

        handle = self._tapped.register_forward_hook(keep)
        try:
            self.network(x)
        finally:
            handle.remove()
        feature = captured[-1]
        return feature.flatten(2).mean(-1) if feature.ndim > 2 else feature

    def protocol(self) -> dict[str, Any]:
        """What the numbers depend on, for reports."""
        return {"network": f"{type(self.network).__name__}.{self.layer}, spatial mean", "weights": "given module",
                "quantize": "uint8 (as PNG files)" if self.quantize else "none (float inputs)"}
