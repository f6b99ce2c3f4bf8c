"""LPIPS, the learned perceptual image patch similarity (Zhang et al., CVPR 2018), version 0.1, and the diversity
score built on it.

The distance between two images ``x`` and ``y``:

1. both images go from [0, 1] to [-1, 1] and through the v0.1 scaling layer ``(v - shift) / scale`` with
   ``shift = (-0.030, -0.088, -0.188)`` and ``scale = (0.458, 0.448, 0.450)`` (per RGB channel);
2. a frozen ImageNet backbone gives five feature maps: torchvision AlexNet's ``relu1`` ... ``relu5`` (``features``
   indices 1, 4, 7, 9, 11) or VGG-16's ``relu1_2``, ``relu2_2``, ``relu3_3``, ``relu4_3``, ``relu5_3`` (indices 3,
   8, 15, 22, 29);
3. each feature vector (over channels, at each position) is divided by its Euclidean norm (plus 1e-10);
4. the squared differences of the unit-normalised features are weighted per channel by a learned 1x1 convolution with
   non-negative weights and no bias (``w_l``, one output channel; a dropout precedes it as in the published v0.1
   models, inactive because the network always runs in eval mode);
5. each layer's map is averaged over space and the five averages are summed:
   ``d(x, y) = sum_l mean_hw(w_l . (f_l(x) / |f_l(x)| - f_l(y) / |f_l(y)|)^2)``.

**Inputs are RGB in [0, 1]** (the ``lpips`` package takes [-1, 1]; this module maps [0, 1] onto that range itself).

Weights. The backbone is torchvision's ImageNet AlexNet (``alexnet-owt-7be5be79.pth``) or VGG-16
(``vgg16-397923af.pth``, the record of :mod:`zoo.losses.perceptual`), resolved through :mod:`zoo.weights`: the
folder in ``$ZOO_WEIGHTS_DIR`` and the zoo cache first, a download only when missing and not offline. The linear
layers are the files the LPIPS authors publish (``lpips/weights/v0.1/alex.pth`` and ``vgg.pth`` in their repository
and in the ``lpips`` wheel, keys ``lin0.model.1.weight`` ... ``lin4.model.1.weight``); this network uses the same keys
so those files load as they are. ``backbone_weights=None`` and ``linear_weights=None`` give random weights (tests).

Diversity (:func:`diversity`) is the multimodal-translation score of MUNIT (Huang et al., 2018) and DRIT++ (Lee et
al., 2020): translate each input under several random styles and average the LPIPS distance between outputs of the
same input; see its docstring for the exact protocol.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import torch
from torch import Tensor, nn
from torchmetrics import Metric

from zoo.losses.perceptual import VGG16_TORCHVISION_WEIGHTS
from zoo.weights import WeightsFile, resolve_weights

__all__ = [
    "ALEXNET_TORCHVISION_WEIGHTS",
    "LPIPS",
    "LPIPS_LINEAR_WEIGHTS",
    "LPIPSNet",
    "MeanLPIPS",
    "Translator",
    "convert_lpips_package_state_dict",
    "diversity",
    "lpips_distance",
]

LPIPSNet = Literal["alex", "vgg"]

#: torchvision's ImageNet AlexNet file (the backbone of ``LPIPS(net="alex")``), fetched through :mod:`zoo.weights`.
ALEXNET_TORCHVISION_WEIGHTS = WeightsFile(
    owner=__name__, url="https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    filename="alexnet-owt-7be5be79.pth", license="BSD-3-Clause (torchvision)",
    origin="torchvision.models.alexnet(weights='IMAGENET1K_V1')",
)

_LPIPS_REPOSITORY = "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1"

#: The published LPIPS v0.1 linear layers per backbone (digests of the files shipped in the ``lpips`` 0.1.4 wheel).
LPIPS_LINEAR_WEIGHTS: dict[str, WeightsFile] = {
    "alex": WeightsFile(
        owner=__name__, url=f"{_LPIPS_REPOSITORY}/alex.pth", filename="lpips-v0.1-alex.pth",
        sha256="df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
        license="BSD-2-Clause (PerceptualSimilarity)", origin="Zhang et al., CVPR 2018, LPIPS v0.1 (AlexNet)",
    ),
    "vgg": WeightsFile(
        owner=__name__, url=f"{_LPIPS_REPOSITORY}/vgg.pth", filename="lpips-v0.1-vgg.pth",
        sha256="a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
        license="BSD-2-Clause (PerceptualSimilarity)", origin="Zhang et al., CVPR 2018, LPIPS v0.1 (VGG-16)",
    ),
}

#: Name accepted for ``backbone_weights``: torchvision's ImageNet file, resolved through :mod:`zoo.weights`.
TORCHVISION = "torchvision"
#: Name accepted for ``linear_weights``: the authors' published v0.1 file, resolved through :mod:`zoo.weights`.
PUBLISHED = "published"

#: v0.1 input scaling, applied to [-1, 1] RGB images: ``(v - shift) / scale``.
SCALING_SHIFT = (-0.030, -0.088, -0.188)
SCALING_SCALE = (0.458, 0.448, 0.450)
_NORM_EPS = 1e-10

# torchvision ``features`` layouts: ("conv", out_channels, kernel, stride, padding), ("relu",), ("pool", kernel).
_ALEXNET_LAYERS = (("conv", 64, 11, 4, 2), ("relu",), ("pool", 3), ("conv", 192, 5, 1, 2), ("relu",), ("pool", 3),
                   ("conv", 384, 3, 1, 1), ("relu",), ("conv", 256, 3, 1, 1), ("relu",), ("conv", 256, 3, 1, 1),
                   ("relu",))
_VGG16_WIDTHS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
#: ``features`` indices whose outputs LPIPS compares, and their channel counts.
_TAPS: dict[str, tuple[int, ...]] = {"alex": (1, 4, 7, 9, 11), "vgg": (3, 8, 15, 22, 29)}
_CHANNELS: dict[str, tuple[int, ...]] = {"alex": (64, 192, 384, 256, 256), "vgg": (64, 128, 256, 512, 512)}
_BACKBONE_RECORDS: dict[str, WeightsFile] = {"alex": ALEXNET_TORCHVISION_WEIGHTS, "vgg": VGG16_TORCHVISION_WEIGHTS}

WeightsSource = str | os.PathLike[str] | Mapping[str, Tensor] | None


def _vgg16_layers() -> tuple[tuple, ...]:
    layers: list[tuple] = []
    for width in _VGG16_WIDTHS:
        layers += [("pool", 2)] if width == "M" else [("conv", width, 3, 1, 1), ("relu",)]
    return tuple(layers)


def _build_features(net: str) -> nn.Sequential:
    """torchvision's ``features`` of AlexNet or VGG-16 up to the last LPIPS layer (same indices, non-inplace ReLU)."""
    layers: list[nn.Module] = []
    channels = 3
    for spec in _ALEXNET_LAYERS if net == "alex" else _vgg16_layers():
        if spec[0] == "conv":
            _, width, kernel, stride, padding = spec
            layers.append(nn.Conv2d(channels, width, kernel_size=kernel, stride=stride, padding=padding))
            channels = width
        elif spec[0] == "relu":
            layers.append(nn.ReLU())
        else:
            layers.append(nn.MaxPool2d(kernel_size=spec[1], stride=2))
    return nn.Sequential(*layers)


class _ChannelWeighting(nn.Module):
    """One LPIPS linear layer: dropout then a bias-free 1x1 convolution to one channel, (B, C, h, w) -> (B, 1, h, w).

    The attribute name ``model`` and the dropout at index 0 give the published keys ``model.1.weight``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, kernel_size=1, bias=False))
        with torch.no_grad():  # random but non-negative, as trained LPIPS weights are
            self.model[1].weight.abs_()

    def forward(self, squared_difference: Tensor) -> Tensor:
        return self.model(squared_difference)


def _load_file(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist")
    # The published LPIPS files hold CUDA tensors: map them to the CPU.
    return torch.load(path, map_location="cpu", weights_only=True)


def _check_images(images: Tensor, name: str) -> None:
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"LPIPS needs RGB images of shape (B, 3, H, W); {name} has shape {tuple(images.shape)}")
    if images.numel() and (images.min() < -1e-3 or images.max() > 1 + 1e-3):
        raise ValueError(f"LPIPS takes images in [0, 1]; {name} spans [{images.min().item():.3f}, "
                         f"{images.max().item():.3f}] (map [-1, 1] images with (x + 1) / 2)")


def convert_lpips_package_state_dict(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """A state dict of the ``lpips`` package's ``LPIPS`` module in this module's keys.

    ``net.slice<k>.<i>.*`` (backbone, torchvision ``features`` index ``i``) becomes ``features.<i>.*``;
    ``lin<k>.model.1.weight`` is kept; the ``lins.<k>`` aliases of the linear layers and the constant
    ``scaling_layer`` buffers are dropped (the buffers are checked against :data:`SCALING_SHIFT` and
    :data:`SCALING_SCALE`).
    """
    converted: dict[str, Tensor] = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "net" and len(parts) > 2 and parts[1].startswith("slice"):
            converted[".".join(["features", *parts[2:]])] = value
        elif parts[0].startswith("lin") and parts[0] != "lins":
            converted[key] = value
        elif parts[0] == "scaling_layer":
            expected = SCALING_SHIFT if parts[1] == "shift" else SCALING_SCALE
            if not torch.allclose(value.detach().float().cpu().flatten(), torch.tensor(expected)):
                raise ValueError(f"{key} is {value.flatten().tolist()}, not the v0.1 constants {expected}")
        elif parts[0] != "lins":
            raise ValueError(f"unexpected key {key!r} in an lpips package state dict")
    return converted


def _describe(weights: WeightsSource) -> str:
    if weights is None:
        return "random (untrained; numbers are not comparable)"
    return weights if isinstance(weights, str) else "state dict" if isinstance(weights, Mapping) else str(weights)


class LPIPS(nn.Module):
    """The LPIPS v0.1 network: distances between image pairs.

    Args:
        net: backbone, ``"alex"`` (AlexNet, the default of the authors and of MUNIT/DRIT++) or ``"vgg"`` (VGG-16).
        backbone_weights: ``"torchvision"`` (ImageNet weights resolved through :mod:`zoo.weights`), a file or a
            state dict in torchvision's layout (``features.<i>.weight``), or ``None`` (random; tests).
        linear_weights: ``"published"`` (the authors' v0.1 file resolved through :mod:`zoo.weights`), a file or a
            state dict with the published keys (``lin0.model.1.weight`` ...), or ``None`` (random non-negative).

    Shape:
        ``forward(x, y)``: two (B, 3, H, W) batches in [0, 1] -> (B,) distances (>= 0, 0 for identical images).

    The network is frozen and always in eval mode; gradients flow to the images, so it also serves as a loss.
    """

    def __init__(self, net: LPIPSNet = "alex", *, backbone_weights: WeightsSource = TORCHVISION,
                 linear_weights: WeightsSource = PUBLISHED) -> None:
        super().__init__()
        if net not in _TAPS:
            raise ValueError(f"LPIPS net must be 'alex' or 'vgg', got {net!r}")
        self.net = net
        self.taps = _TAPS[net]
        self.features = _build_features(net)
        for index, channels in enumerate(_CHANNELS[net]):
            self.add_module(f"lin{index}", _ChannelWeighting(channels))
        self.register_buffer("shift", torch.tensor(SCALING_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALING_SCALE).view(1, 3, 1, 1), persistent=False)
        self._weights = {"backbone_weights": _describe(backbone_weights), "linear_weights": _describe(linear_weights)}
        if backbone_weights is not None:
            self.load_backbone_weights(backbone_weights)
        if linear_weights is not None:
            self.load_linear_weights(linear_weights)
        self.requires_grad_(False)
        self.eval()

    @property
    def linear_layers(self) -> tuple[_ChannelWeighting, ...]:
        """The five channel weightings ``lin0`` ... ``lin4``, shallow to deep."""
        return tuple(getattr(self, f"lin{index}") for index in range(len(self.taps)))

    def load_backbone_weights(self, weights: str | os.PathLike[str] | Mapping[str, Tensor]) -> None:
        """Load torchvision's layout (``features.<i>.weight``; classifier keys are ignored); ``"torchvision"``
        resolves the ImageNet file through :mod:`zoo.weights`."""
        if not isinstance(weights, Mapping):
            path = resolve_weights(_BACKBONE_RECORDS[self.net]) if str(weights) == TORCHVISION else weights
            weights = _load_file(path)
        last = self.taps[-1]
        state = {key: value for key, value in weights.items()
                 if key.startswith("features.") and int(key.split(".")[1]) <= last}
        self.features.load_state_dict({key.removeprefix("features."): value for key, value in state.items()})

    def load_linear_weights(self, weights: str | os.PathLike[str] | Mapping[str, Tensor]) -> None:
        """Load the published linear layers (keys ``lin<k>.model.1.weight``, non-negative); ``"published"``
        resolves the authors' v0.1 file through :mod:`zoo.weights`."""
        if not isinstance(weights, Mapping):
            path = resolve_weights(LPIPS_LINEAR_WEIGHTS[self.net]) if str(weights) == PUBLISHED else weights
            weights = _load_file(path)
        expected = {f"lin{index}.model.1.weight" for index in range(len(self.taps))}
        if set(weights) != expected:
            raise ValueError(f"LPIPS ({self.net}) linear weights need the keys {sorted(expected)}, "
                             f"got {sorted(weights)}")
        shapes = {key: tuple(weights[key].shape) for key in sorted(expected)}
        wanted = {f"lin{index}.model.1.weight": (1, channels, 1, 1)
                  for index, channels in enumerate(_CHANNELS[self.net])}
        if shapes != wanted:
            raise ValueError(f"LPIPS ({self.net}) linear weights need the shapes {wanted}, got {shapes} (weights of "
                             "another backbone?)")
        negative = [key for key, value in weights.items() if bool((value < 0).any())]
        if negative:
            raise ValueError(f"LPIPS linear weights must be non-negative; {negative} have negative entries")
        for index, layer in enumerate(self.linear_layers):
            layer.load_state_dict({"model.1.weight": weights[f"lin{index}.model.1.weight"]})

    def protocol(self) -> dict[str, str]:
        """What the distances depend on, for reports."""
        return {"version": "LPIPS v0.1", "net": self.net, **self._weights}

    def train(self, mode: bool = True) -> LPIPS:  # frozen metric: always in eval mode (dropout off)
        return super().train(False)

    def unit_features(self, images: Tensor) -> list[Tensor]:
        """Channel-unit-normalised backbone features of (B, 3, H, W) images in [0, 1]: five (B, C_l, h_l, w_l)."""
        _check_images(images, "images")
        hidden = ((images * 2 - 1) - self.shift) / self.scale
        features: list[Tensor] = []
        for index, layer in enumerate(self.features):
            hidden = layer(hidden)
            if index in self.taps:
                norm = hidden.pow(2).sum(dim=1, keepdim=True).sqrt()
                features.append(hidden / (norm + _NORM_EPS))
        return features

    def distance_from_features(self, features_x: list[Tensor], features_y: list[Tensor]) -> Tensor:
        """(B,) distances from :meth:`unit_features` of two batches (features broadcast over the batch)."""
        total: Tensor | int = 0
        for layer, fx, fy in zip(self.linear_layers, features_x, features_y, strict=True):
            total = total + layer((fx - fy) ** 2).mean(dim=(2, 3))
        assert isinstance(total, Tensor)
        return total.flatten()

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """(B, 3, H, W), (B, 3, H, W) in [0, 1] -> (B,) distances."""
        if x.shape != y.shape:
            raise ValueError(f"LPIPS compares batches of equal shape, got {tuple(x.shape)} and {tuple(y.shape)}")
        features = self.unit_features(torch.cat([x, y]))
        return self.distance_from_features([f[: x.shape[0]] for f in features], [f[x.shape[0]:] for f in features])


_PRETRAINED: dict[str, LPIPS] = {}


def _pretrained_lpips(net: str) -> LPIPS:
    """The pretrained network of ``net`` (torchvision backbone, published linear layers), built once per process."""
    if net not in _PRETRAINED:
        _PRETRAINED[net] = LPIPS(net)  # type: ignore[arg-type]
    return _PRETRAINED[net]


def _as_network(net: LPIPSNet | LPIPS, device: torch.device) -> LPIPS:
    model = net if isinstance(net, LPIPS) else _pretrained_lpips(net)
    return model.to(device)


def lpips_distance(x: Tensor, y: Tensor, net: LPIPSNet | LPIPS = "alex") -> Tensor:
    """LPIPS v0.1 distances between image pairs.

    Args:
        x: (B, 3, H, W) RGB in [0, 1].
        y: (B, 3, H, W) RGB in [0, 1].
        net: ``"alex"`` or ``"vgg"`` (pretrained weights, resolved through :mod:`zoo.weights` on first use and
            kept for the process), or an :class:`LPIPS` network.

    Returns:
        (B,) distances.
    """
    return _as_network(net, x.device)(x, y)


@runtime_checkable
class Translator(Protocol):
    """A model with zoo's ``translate(images, *, seed=...)``: (B, C, H, W) in [0, 1] -> same layout in [0, 1]."""

    def translate(self, images: Tensor, *, seed: int | None = None) -> Tensor: ...


StyleSampler = Callable[[Tensor, int], Tensor]


@torch.no_grad()
def diversity(model_or_fn: Translator | StyleSampler, inputs: Tensor | Iterable[Tensor], *, styles: int = 10,
              seed: int = 0, net: LPIPSNet | LPIPS = "alex") -> float:
    """Mean LPIPS between outputs of the same input under different styles (MUNIT / DRIT++ diversity).

    Protocol: each batch of inputs is translated ``styles`` (K) times; style ``k`` of batch ``i`` (0-based, in the
    order ``inputs`` gives them) is drawn with seed ``seed + i * K + k``, so the score is reproducible and the K
    outputs of an input have distinct styles. For each input the LPIPS distance of every unordered pair of its K
    outputs is computed (K (K - 1) / 2 pairs) and averaged; the score is the mean over inputs (every input has the
    same number of pairs, so it is also the mean over all pairs). MUNIT and DRIT++ report it on 100 test inputs with
    AlexNet LPIPS, sampling 19 pairs of random styles per input; all pairs of K = 10 outputs (45 per input) average
    the same quantity with less variance. Higher is more diverse; a model that ignores the style scores 0.

    Args:
        model_or_fn: a zoo model (its ``translate(images, seed=...)`` is called) or a function
            ``(images, seed) -> outputs`` mapping (B, C, H, W) in [0, 1] to (B, 3, H', W') in [0, 1] with the style
            drawn from ``seed``; for another direction pass e.g.
            ``lambda images, seed: model.translate(images, direction="b2a", seed=seed)``.
        inputs: (N, C, H, W) images in [0, 1], or an iterable of such batches.
        styles: K >= 2 outputs per input.
        seed: base seed of the styles.
        net: ``"alex"`` (pretrained, as the papers) or ``"vgg"``, or an :class:`LPIPS` network.

    Returns:
        The mean pairwise LPIPS distance.
    """
    if styles < 2:
        raise ValueError(f"diversity needs at least 2 styles per input, got {styles}")
    translate: StyleSampler
    if isinstance(model_or_fn, Translator):
        model = model_or_fn
        translate = lambda images, style_seed: model.translate(images, seed=style_seed)  # noqa: E731
    else:
        translate = model_or_fn
    batches = [inputs] if isinstance(inputs, Tensor) else inputs
    total, count = 0.0, 0
    for batch_index, batch in enumerate(batches):
        outputs = [translate(batch, seed + batch_index * styles + k) for k in range(styles)]
        network = _as_network(net, outputs[0].device)
        features = [network.unit_features(output) for output in outputs]
        for first, second in itertools.combinations(range(styles), 2):
            distances = network.distance_from_features(features[first], features[second])
            total += distances.double().sum().item()
            count += distances.numel()
    if count == 0:
        raise ValueError("diversity got no inputs")
    return total / count


class MeanLPIPS(Metric):
    """Mean LPIPS v0.1 distance over all image pairs seen (torchmetrics; sums and counts reduce across processes).

    Args:
        net: ``"alex"`` / ``"vgg"`` (pretrained, resolved through :mod:`zoo.weights`) or an :class:`LPIPS` network.

    ``update(x, y)`` takes two (B, 3, H, W) batches in [0, 1]; ``compute()`` returns the 0-d mean distance.
    """

    is_differentiable = True
    higher_is_better = False
    full_state_update = False

    distance_sum: Tensor
    num_pairs: Tensor

    def __init__(self, net: LPIPSNet | LPIPS = "alex", **kwargs) -> None:
        super().__init__(**kwargs)
        self.network = net if isinstance(net, LPIPS) else LPIPS(net)
        self.add_state("distance_sum", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("num_pairs", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, x: Tensor, y: Tensor) -> None:
        distances = self.network(x, y)
        self.distance_sum += distances.double().sum()
        self.num_pairs += distances.numel()

    def compute(self) -> Tensor:
        return (self.distance_sum / self.num_pairs.clamp_min(1)).float()
