"""VGG content ("perceptual") loss of SRGAN (Ledig et al., CVPR 2017, Sec. 2.2.1).

``l_VGG/i.j`` is the mean squared distance between the feature maps phi_{i,j} of the SR output and of the HR image,
where phi_{i,j} is the output of the j-th convolution **after its ReLU**, before the i-th max-pooling, of an
ImageNet-pretrained VGG19. The paper's VGG22 is ``relu2_2`` (torchvision ``vgg19().features[8]``) and its final
SRGAN uses VGG54, ``relu5_4`` (``features[35]``). The paper rescales the feature maps by 1/12.75 so that the loss is on
the scale of the pixel MSE, i.e. it multiplies the MSE by 1/12.75^2 (about 0.006): ``feature_scale``. Pre-activation
layers (``conv5_4``, as ESRGAN uses) and every other node of VGG11/13/16/19 (with or without BN) can be chosen too.

Details that follow the port the fixtures come from (Lornatang/SRGAN-PyTorch, ``ContentLoss``): images in [0, 1]
are normalised with the ImageNet mean and std, the per-node loss is ``F.mse_loss`` (mean over B*C*H*W), the losses of
several nodes are summed. The port's loss is accidentally cut off from autograd (it wraps the values in a new tensor);
``detach=True`` reproduces that, the default keeps the gradient as the paper intends.

The VGG is frozen: its parameters never require gradients, BN variants run in eval mode, and it is left out of the
state dict (checkpoints and bundles stay small; the weights come from their file again when needed). Pretrained
weights are read lazily, at the first loss evaluation (or :meth:`VGGContentLoss.load_weights`), so that building a
model for inference never needs the 550 MB file.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.weights import (
    HashMismatchError,
    WeightsFile,
    WeightsUnavailableError,
    file_sha256,
    local_weights_path,
    resolve_weights,
)

__all__ = ["VGGContentLoss", "exclude_frozen_features", "read_vgg_state", "vgg_layer_names", "resolve_vgg_layer",
           "vgg_weights_path", "IMAGENET_MEAN", "IMAGENET_STD"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
VGGArch = Literal["vgg11", "vgg13", "vgg16", "vgg19"]
_CFG_KEYS = {"vgg11": "A", "vgg13": "B", "vgg16": "D", "vgg19": "E"}
#: The paper's names phi_{i,j} (after the activation).
_ALIASES = {"vgg22": "relu2_2", "vgg54": "relu5_4"}


def _cfg(arch: str) -> list:
    from torchvision.models.vgg import cfgs

    if arch not in _CFG_KEYS:
        raise ValueError(f"VGG architecture must be one of {sorted(_CFG_KEYS)}; got {arch!r}")
    return list(cfgs[_CFG_KEYS[arch]])


def _truncated_cfg(arch: str, batch_norm: bool, last: int) -> list:
    """The prefix of ``arch``'s configuration that builds ``features[0 .. last]`` (nothing deeper is allocated)."""
    cfg, index = [], 0
    for v in _cfg(arch):
        if index > last:
            break
        cfg.append(v)
        index += 1 if v == "M" else (3 if batch_norm else 2)
    return cfg


def vgg_layer_names(arch: VGGArch = "vgg19", batch_norm: bool = False) -> dict[str, int]:
    """``{"conv1_1": 0, "relu1_1": 1, ..., "pool5": 36}``: readable names of torchvision's ``features`` indices.

    >>> vgg_layer_names()["relu5_4"], vgg_layer_names()["relu2_2"], vgg_layer_names(batch_norm=True)["relu2_2"]
    (35, 8, 12)
    """
    names: dict[str, int] = {}
    index, block, conv = 0, 1, 0
    for v in _cfg(arch):
        if v == "M":
            names[f"pool{block}"] = index
            index, block, conv = index + 1, block + 1, 0
            continue
        conv += 1
        names[f"conv{block}_{conv}"] = index
        index += 1
        if batch_norm:
            names[f"bn{block}_{conv}"] = index
            index += 1
        names[f"relu{block}_{conv}"] = index
        index += 1
    return names


def resolve_vgg_layer(layer: str, arch: VGGArch = "vgg19", batch_norm: bool = False) -> int:
    """Index in ``features`` of ``layer``: ``"vgg54"``/``"vgg22"`` (paper), ``"relu5_4"``, ``"conv5_4"``, ``"pool4"``
    or the port's node name ``"features.35"``."""
    names = vgg_layer_names(arch, batch_norm)
    key = _ALIASES.get(layer.lower(), layer.lower())
    match = re.fullmatch(r"features\.(\d+)", key)
    if match:
        index = int(match.group(1))
        if index >= len(names):
            raise ValueError(f"{layer!r}: {arch}{'_bn' if batch_norm else ''}.features has {len(names)} layers")
        return index
    if key not in names:
        raise ValueError(f"unknown VGG layer {layer!r}; use vgg22, vgg54, features.<k> or one of {list(names)}")
    return names[key]


def vgg_weights_path(arch: VGGArch = "vgg19", batch_norm: bool = False, *,
                     weights_dir: str | os.PathLike[str] | None = None, download: bool = True) -> Path:
    """Local path of torchvision's ImageNet weights of ``arch`` (e.g. ``vgg19-dcbb9e9d.pth``).

    Looked for in ``weights_dir``, ``$ZOO_WEIGHTS_DIR``, zoo's cache and torch's hub cache
    (``~/.cache/torch/hub/checkpoints``), then downloaded into zoo's cache unless offline (``ZOO_OFFLINE=1`` or
    ``HF_HUB_OFFLINE=1``: a clear error says where to put the file). The file's sha256 must start with the 8 hex
    digits in its name, as torchvision publishes them. ``download=False`` only looks: a missing file raises
    :class:`~zoo.weights.WeightsUnavailableError`.
    """
    import torchvision.models as tvm

    enum = getattr(tvm, f"{arch.upper()}{'_BN' if batch_norm else ''}_Weights")
    url = enum.IMAGENET1K_V1.url
    filename = url.rsplit("/", 1)[-1]
    search = weights_dir
    hub_file = Path(torch.hub.get_dir()) / "checkpoints" / filename
    if search is None and hub_file.is_file():
        search = hub_file.parent
    record = WeightsFile(owner=__name__, url=url, filename=filename, license="torchvision (BSD-3-Clause)",
                         origin=f"torchvision.models.{enum.__name__}.IMAGENET1K_V1")
    if download:
        path = resolve_weights(record, weights_dir=search, check_hash=False)
    else:
        path = local_weights_path(record, weights_dir=search, shipped=False)
        if path is None:
            raise WeightsUnavailableError(f"{filename} ({arch} ImageNet weights) is not on disk")
    prefix = filename.rsplit("-", 1)[-1].split(".")[0]
    digest = file_sha256(path)
    if not digest.startswith(prefix):
        raise HashMismatchError(f"{path}: sha256 {digest} does not start with {prefix} (from the file name); the file "
                                "is corrupt or not torchvision's. Delete it and fetch it again.")
    return path


def _upcast(x: Tensor) -> Tensor:
    """Reductions in at least float32 (autocast may hand bf16/fp16 features); float64 stays float64."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


class VGGContentLoss(nn.Module):
    """Frozen VGG feature distance ``sum_n w_n * s^2 * mean((phi_n(sr) - phi_n(hr))^2)``.

    Args:
        layers: feature nodes (``vgg54`` = ``relu5_4`` = ``features.35``, ``vgg22`` = ``relu2_2``, pre-activation
            ``conv5_4``, ...); the network is truncated after the deepest one.
        arch: ``vgg19`` (paper) or vgg11/13/16.
        batch_norm: the BN variant of ``arch``.
        weights: ``"imagenet"`` (torchvision's ImageNet weights, see :func:`vgg_weights_path`), a path to a state dict
            with ``features.<k>.*`` keys (optionally under ``"state_dict"``), or ``None`` for a random VGG (tests).
        feature_scale: factor s applied to the feature maps (paper: 1/12.75; the port: 1).
        layer_weights: weight w_n per layer (default 1 each).
        input_range: range of the images given to :meth:`forward`: ``unit`` [0, 1] or ``symmetric`` [-1, 1].
        mean: normalisation mean of the [0, 1] RGB input (ImageNet).
        std: normalisation std (ImageNet).
        detach: the port's behaviour: the loss value carries no gradient (and is computed without a graph).

    Shape:
        ``sr``, ``hr``: (B, 3 or 1, H, W); grayscale is repeated to RGB. Output: 0-d tensor.
    """

    def __init__(self, *, layers: Sequence[str] = ("vgg54",), arch: VGGArch = "vgg19", batch_norm: bool = False,
                 weights: str | os.PathLike[str] | None = "imagenet", feature_scale: float = 1 / 12.75,
                 layer_weights: Sequence[float] | None = None,
                 input_range: Literal["unit", "symmetric"] = "unit", mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD, detach: bool = False) -> None:
        super().__init__()
        from torchvision.models.vgg import make_layers

        if not layers:
            raise ValueError("VGGContentLoss needs at least one layer")
        if input_range not in ("unit", "symmetric"):
            raise ValueError(f"input_range must be 'unit' or 'symmetric'; got {input_range!r}")
        self.indices = [resolve_vgg_layer(name, arch, batch_norm) for name in layers]
        self.nodes = [f"features.{i}" for i in self.indices]
        if len(set(self.nodes)) != len(self.nodes):
            raise ValueError(f"duplicate VGG layers in {list(layers)}")
        self.layer_weights = list(layer_weights) if layer_weights is not None else [1.0] * len(self.nodes)
        if len(self.layer_weights) != len(self.nodes):
            raise ValueError(f"{len(self.layer_weights)} layer_weights for {len(self.nodes)} layers")
        self.arch, self.batch_norm, self.feature_scale = arch, batch_norm, float(feature_scale)
        self.input_range, self.detach = input_range, detach
        self.features = make_layers(_truncated_cfg(arch, batch_norm, max(self.indices)), batch_norm)
        self.features = self.features[: max(self.indices) + 1]
        for i, m in enumerate(self.features):
            if isinstance(m, nn.Conv2d):  # torchvision's VGG initialisation (random weights: tests only)
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            if isinstance(m, nn.ReLU) and i - 1 in self.indices:
                m.inplace = False  # an in-place ReLU would overwrite a requested pre-activation map
        self.features.requires_grad_(False)
        # float64, cast to the input's dtype at use: float64 runs normalise with the exact constants
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float64).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float64).view(1, -1, 1, 1), persistent=False)
        self.weights = None if weights is None else os.fspath(weights)
        self._weights_pending = weights is not None
        exclude_frozen_features(self)
        if batch_norm:
            self.train(False)

    def train(self, mode: bool = True) -> VGGContentLoss:
        """BN variants always run in eval mode (running statistics); the plain VGG computes the same in both modes."""
        return super().train(mode and not self.batch_norm)

    @torch.no_grad()
    def load_weights(self) -> None:
        """Read the pretrained VGG weights now (done automatically at the first loss evaluation)."""
        if not self._weights_pending:
            return
        path, state = read_vgg_state(self.weights, self.arch, self.batch_norm)
        state = {k.removeprefix("module.").removeprefix("_orig_mod."): v for k, v in state.items()}
        own = self.features.state_dict()
        missing = [k for k in own if f"features.{k}" not in state]
        if missing:
            raise KeyError(f"{path} lacks VGG weights {['features.' + k for k in missing][:4]}... for "
                           f"{self.arch}{'_bn' if self.batch_norm else ''}")
        self.features.load_state_dict({k: state[f"features.{k}"] for k in own}, strict=True)
        self._weights_pending = False

    def _prepare(self, x: Tensor) -> Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        elif x.shape[1] != 3:
            raise ValueError(f"VGG content loss needs RGB or grayscale images, got shape {tuple(x.shape)}")
        if self.input_range == "symmetric":
            x = (x + 1) / 2
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def extract(self, x: Tensor) -> dict[str, Tensor]:
        """Feature maps ``{"features.k": (B, C_k, H_k, W_k)}`` of images ``x`` in ``input_range``."""
        self.load_weights()
        x = self._prepare(x)
        out: dict[str, Tensor] = {}
        wanted = set(self.indices)
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in wanted:
                out[f"features.{i}"] = x
        return out

    def layer_losses(self, sr: Tensor, hr: Tensor) -> dict[str, Tensor]:
        """Unweighted, unscaled per-node MSE ``{"features.k": 0-d}`` (the port's ``ContentLoss`` values)."""
        if sr.shape != hr.shape:
            raise ValueError(f"sr and hr must have the same shape, got {tuple(sr.shape)} and {tuple(hr.shape)}")
        with torch.no_grad():  # the target needs no graph
            target = self.extract(hr)
        with torch.no_grad() if self.detach else contextlib.nullcontext():
            pred = self.extract(sr)
            return {n: F.mse_loss(_upcast(pred[n]), _upcast(target[n])) for n in self.nodes}

    def forward(self, sr: Tensor, hr: Tensor) -> Tensor:
        losses = self.layer_losses(sr, hr)
        total = sum(w * losses[n] for w, n in zip(self.layer_weights, self.nodes, strict=True))
        return total * self.feature_scale**2

    def extra_repr(self) -> str:
        return (f"arch={self.arch}{'_bn' if self.batch_norm else ''}, nodes={self.nodes}, "
                f"feature_scale={self.feature_scale:.6g}, weights={self.weights!r}, detach={self.detach}")


def read_vgg_state(weights: str | os.PathLike[str], arch: VGGArch = "vgg19", batch_norm: bool = False
                   ) -> tuple[Path, dict[str, Tensor]]:
    """The VGG state dict named by a ``vgg_weights`` setting: ``"imagenet"`` (torchvision's file of ``arch``, see
    :func:`vgg_weights_path`) or a path (tensors only, ``weights_only``; a ``"state_dict"`` entry is unwrapped)."""
    if weights == "imagenet":
        path = vgg_weights_path(arch, batch_norm)
    else:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"VGG weights file {path} does not exist (vgg_weights: 'imagenet', a path, "
                                    "or null for random weights)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    return path, state


def exclude_frozen_features(module: nn.Module) -> None:
    """Leave ``module.features`` (a frozen pretrained network, whose weights come from their own file) out of
    ``module``'s state dict, and keep the current ``features`` when a state dict is loaded."""
    module.register_state_dict_post_hook(_drop_vgg_from_state_dict)
    module.register_load_state_dict_pre_hook(_keep_vgg_on_load)


def _drop_vgg_from_state_dict(module: nn.Module, state_dict: dict, prefix: str, local_metadata: dict) -> None:
    for key in [k for k in state_dict if k.startswith(prefix + "features.")]:
        del state_dict[key]


def _keep_vgg_on_load(module: nn.Module, state_dict: dict, prefix: str, local_metadata: dict, strict: bool,
                      missing_keys: list, unexpected_keys: list, error_msgs: list) -> None:
    # state dicts never carry the frozen VGG (see _drop_vgg_from_state_dict): keep the current weights
    for name, tensor in module.features.state_dict(keep_vars=True).items():
        state_dict.setdefault(f"{prefix}features.{name}", tensor.detach())
