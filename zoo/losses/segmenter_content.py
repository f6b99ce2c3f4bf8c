"""A content ("perceptual") loss in the feature space of zoo's toy-world segmenter.

A perceptual loss compares images through the features of a network trained on real data (SRGAN's VGG19 was trained
on ImageNet). Where those weights are not at hand, the same idea works with any network trained on the data at
hand: :class:`SegmenterContentLoss` uses the encoder of :func:`zoo.metrics.semantic.toy_segmenter`, a
:class:`~zoo.nets.segmentation.TinySegNet` trained on the toy world's photo-like renders (trained in about a minute
on first use and cached). Its features respond to the textures and edges that tell the classes apart, so a generator
trained against them is pushed towards those textures instead of the blurred average a pixel MSE favours.

:func:`content_network_choice` resolves ``"auto"``: ImageNet VGG19 when its file is already on disk (nothing is
downloaded to decide), else the toy-world segmenter.

The segmenter is frozen and left out of the state dict (its weights come from zoo's cache), as the VGG of
:class:`~zoo.losses.vgg_content.VGGContentLoss`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.losses.vgg_content import exclude_frozen_features
from zoo.nets.segmentation import TinySegNet

__all__ = ["CONTENT_NETWORKS", "SEGMENTER_LAYERS", "SegmenterContentLoss", "content_network_choice"]

#: Feature networks of the SR content loss: ImageNet VGG, zoo's toy-world segmenter, or the first of them on disk.
CONTENT_NETWORKS = ("vgg", "toy_segmenter", "auto")
#: Encoder stages of the toy-world segmenter (:meth:`TinySegNet.encode`).
SEGMENTER_LAYERS = ("stem", "down1", "down2")


def content_network_choice(content_network: str, vgg_weights: str | None, vgg_arch: str = "vgg19",
                           vgg_batch_norm: bool = False) -> tuple[Literal["vgg", "toy_segmenter"], str]:
    """``(network, why)`` for a ``content_network`` setting; ``"auto"`` takes the VGG when its ImageNet file is on
    disk (``$ZOO_WEIGHTS_DIR``, zoo's cache or torch's hub cache), else the toy-world segmenter."""
    if content_network not in CONTENT_NETWORKS:
        raise ValueError(f"content_network must be one of {CONTENT_NETWORKS}; got {content_network!r}")
    if content_network != "auto":
        return content_network, "chosen in the config"
    if vgg_weights != "imagenet":
        return "vgg", f"vgg_weights={vgg_weights!r} is not the ImageNet file"
    from zoo.losses.vgg_content import vgg_weights_path
    from zoo.weights import WeightsUnavailableError

    try:
        path = vgg_weights_path(vgg_arch, vgg_batch_norm, download=False)  # type: ignore[arg-type]
    except WeightsUnavailableError:
        return "toy_segmenter", f"the ImageNet {vgg_arch} file is not on disk"
    return "vgg", f"ImageNet {vgg_arch} found at {path}"


class SegmenterContentLoss(nn.Module):
    """Frozen toy-world segmenter feature distance ``s^2 * sum_n mean((phi_n(sr) - phi_n(hr))^2)``.

    Args:
        layers: encoder stages compared (:data:`SEGMENTER_LAYERS`).
        feature_scale: factor s on the feature maps.
        input_range: range of the images given to :meth:`forward`: ``unit`` [0, 1] or ``symmetric`` [-1, 1].
        segmenter: a trained :class:`~zoo.nets.segmentation.TinySegNet`; ``None`` loads zoo's toy-world segmenter
            (:func:`zoo.metrics.semantic.toy_segmenter`, trained and cached on first use) at the first evaluation.
        detach: the loss value carries no gradient (as ``VGGContentLoss(detach=True)``).

    Shape:
        ``sr``, ``hr``: (B, 3 or 1, H, W); grayscale is repeated to RGB. Output: 0-d tensor.
    """

    def __init__(self, *, layers: Sequence[str] = SEGMENTER_LAYERS, feature_scale: float = 1.0,
                 input_range: Literal["unit", "symmetric"] = "unit", segmenter: TinySegNet | None = None,
                 detach: bool = False) -> None:
        super().__init__()
        unknown = [layer for layer in layers if layer not in SEGMENTER_LAYERS]
        if not layers or unknown:
            raise ValueError(f"layers must be a non-empty subset of {SEGMENTER_LAYERS}; got {list(layers)}")
        if input_range not in ("unit", "symmetric"):
            raise ValueError(f"input_range must be 'unit' or 'symmetric'; got {input_range!r}")
        from zoo.metrics.semantic import SegmenterConfig

        self.layers, self.feature_scale, self.input_range, self.detach = tuple(layers), float(feature_scale), \
            input_range, detach
        self.features = segmenter if segmenter is not None else TinySegNet(width=SegmenterConfig().width)
        self.features.requires_grad_(False).eval()
        self._weights_pending = segmenter is None
        exclude_frozen_features(self)

    def train(self, mode: bool = True) -> SegmenterContentLoss:
        """The segmenter always runs in eval mode."""
        super().train(mode)
        self.features.eval()
        return self

    def load_weights(self) -> None:
        """Load the toy-world segmenter now (done automatically at the first loss evaluation)."""
        if not self._weights_pending:
            return
        from zoo.metrics.semantic import toy_segmenter

        with torch.enable_grad():  # it may be trained here, also when the loss is first called without gradients
            trained = toy_segmenter()
        with torch.no_grad():
            self.features.load_state_dict(trained.state_dict())
        self._weights_pending = False

    def extract(self, x: Tensor) -> dict[str, Tensor]:
        """Feature maps ``{stage: (B, C, H', W')}`` of images ``x`` in ``input_range``."""
        self.load_weights()
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if self.input_range == "symmetric":
            x = (x + 1) / 2
        features = self.features.encode(x)
        return {layer: features[layer] for layer in self.layers}

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        if sr.shape != hr.shape:
            raise ValueError(f"sr and hr must have the same shape, got {tuple(sr.shape)} and {tuple(hr.shape)}")
        with torch.no_grad():
            target = self.extract(hr)
        with torch.no_grad() if self.detach else contextlib.nullcontext():
            pred = self.extract(sr)
            total = sum(F.mse_loss(pred[n].float(), target[n].float()) for n in self.layers)
        return total * self.feature_scale**2

    def extra_repr(self) -> str:
        return f"layers={list(self.layers)}, feature_scale={self.feature_scale:.6g}, detach={self.detach}"
