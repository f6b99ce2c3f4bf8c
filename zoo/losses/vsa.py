"""Vector-symbolic pieces of VSAIT: the random-projection hypervector encoder, the VSA operations and the losses.

VSAIT (Theiss et al., ECCV 2022) maps the taps of a frozen feature extractor to ``D``-dimensional hypervectors with a
fixed random Gaussian projection (the official ``models/lsh.py::LSHCat``): per output cell, the value of channel
``d`` is the cosine similarity between the concatenation of every tap's patch and the concatenation of the ``d``-th
random direction of every tap. Values are real in [-1, 1] (not bipolar). The operations on them (official
``models/iit.py`` and ``losses/da_loss.py``): binding and unbinding are the element-wise product, similarity is the
cosine along the channel axis; bundling (the element-wise sum) appears in the paper only.

The projections are not learned. :class:`HypervectorEncoder` regenerates them from a seed when first needed instead
of saving them (the official checkpoints carry ~512 MB of them at ``D = 4096``); projections loaded from an official
checkpoint are used as they are and from then on travel with the state dict.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "HypervectorEncoder",
    "ProjectionTap",
    "NormalizedPatchProjection",
    "bind",
    "unbind",
    "bundle",
    "similarity",
    "vsa_loss",
    "gan_list_loss",
    "GAN_LOSS_NAMES",
    "VSAGanLoss",
]

#: zoo names of the official GAN losses (``loss_hinge_gan``, ``loss_ls_gan``, ``loss_bce_gan``).
GAN_LOSS_NAMES = {"hinge": "loss_hinge_gan", "lsgan": "loss_ls_gan", "bce": "loss_bce_gan"}
VSAGanLoss = Literal["hinge", "lsgan", "bce"]

# ----------------------------------------------------------------------------------------------- VSA operations


def bind(a: Tensor, b: Tensor) -> Tensor:
    """Binding: element-wise product of hypervectors (B, D, h, w) x (B, D, h, w) -> (B, D, h, w)."""
    return a * b


def unbind(bound: Tensor, key: Tensor) -> Tensor:
    """Unbinding with the same product (self-inverse only for bipolar vectors; approximate for real ones)."""
    return bound * key


def bundle(*vectors: Tensor) -> Tensor:
    """Bundling: element-wise sum (paper only; the official code never bundles)."""
    out = vectors[0]
    for v in vectors[1:]:
        out = out + v
    return out


def similarity(a: Tensor, b: Tensor) -> Tensor:
    """Cosine similarity along the channel axis: (B, D, h, w) x (B, D, h, w) -> (B, h, w), eps 1e-8."""
    return torch.cosine_similarity(a, b, dim=1)


def vsa_loss(output: Tensor, target: Tensor) -> Tensor:
    """Official ``loss_vsa``: ``mean_{b,i,j}(1 - cos(output, target.detach()))`` over the channel axis, in float32.

    Args:
        output: (B, D, h, w) hypervectors (VSAIT: ``hv(G(x)) * sg(M(hv(x)))``).
        target: (B, D, h, w) hypervectors (VSAIT: ``hv(x)``); never receives a gradient.

    Returns:
        0-d loss in [0, 2].
    """
    return torch.mean(1.0 - similarity(output.float(), target.detach().float()))


def _weights(weight: float | Sequence[float], n: int) -> list[float]:
    """The official ``_weight_list``: a scalar repeated, a short list cycled, to ``n`` entries."""
    weight = list(weight) if isinstance(weight, (list, tuple)) else [weight]
    if len(weight) < n:
        weight = (weight * n)[:n]
    return weight


def gan_list_loss(outputs: Sequence[Tensor], labels: Sequence[float], mode: str, *,
                  weight: float | Sequence[float] = 1.0, label_smoothing: float = 0.0) -> Tensor:
    """The official GAN losses of ``losses/da_loss.py::GANLoss`` over a list of discriminator outputs, in float32.

    Each output gets its own term, averaged over the list (``zip`` truncates ``labels`` to the outputs, as
    officially). ``hinge``: with every label 1 (generator side) ``-mean(o)``; otherwise ``mean(relu(1 - o))`` for
    label 1 and ``mean(relu(1 + o))`` for label 0; label smoothing does not apply. ``lsgan``: ``mean((o - l')^2)``;
    ``bce``: BCE with logits against ``l'``, where ``l' = (1 - a) l + a / 2``.

    Args:
        outputs: discriminator outputs (any shapes).
        labels: 1.0 (real) / 0.0 (fake) per output.
        mode: ``hinge``, ``lsgan`` or ``bce`` (or the official function names).
        weight: scalar or per-output weights inside the average (official list-valued loss coefficients).
        label_smoothing: ``a`` above.

    Returns:
        0-d loss.
    """
    mode = {v: k for k, v in GAN_LOSS_NAMES.items()}.get(mode, mode)
    if mode not in GAN_LOSS_NAMES:
        raise ValueError(f"unknown VSAIT GAN loss {mode!r}; expected one of {sorted(GAN_LOSS_NAMES)}")
    pairs = list(zip(outputs, labels, strict=False))
    weights = _weights(weight, len(pairs))
    adversarial = all(label for label in labels)
    total: Tensor | float = 0.0
    for (out, label), w in zip(pairs, weights, strict=False):
        out = out.float()
        if mode == "hinge":
            if adversarial:
                term = -out.mean()
            elif label == 1:
                term = -torch.minimum(out - 1.0, torch.zeros_like(out)).mean()
            else:
                term = -torch.minimum(-out - 1.0, torch.zeros_like(out)).mean()
        else:
            target = torch.full_like(out, (1.0 - label_smoothing) * label + label_smoothing / 2.0)
            term = F.mse_loss(out, target) if mode == "lsgan" else F.binary_cross_entropy_with_logits(out, target)
        total = total + term * w
    if not isinstance(total, Tensor):
        raise ValueError("gan_list_loss needs at least one discriminator output")
    return total / max(len(pairs), 1)


# -------------------------------------------------------------------------------------------- the projections


def _per_tap(value: Any, i: int) -> Any:
    """The official ``parse_dict_var``: a list gives one value per tap, anything else is shared."""
    return value[i] if isinstance(value, (list, tuple)) else value


class ProjectionTap(nn.Module):
    """The random projection of one tap (official ``LSH(concatenate=True)``): three buffers, no parameters.

    Buffers (official names): ``weight`` (D, C, k, k) ~ N(0, 1) (not normalised), ``ssq_weight`` (1, D, 1, 1) the sum
    of squares of each projection row, ``_ssq_conv`` (1, 1, k, k) ones. They are non-persistent: regenerated from the
    encoder's seed (see :class:`HypervectorEncoder`) unless loaded from a state dict that holds them.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int], *,
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                 dilation: int | tuple[int, int] = 1) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = tuple(F._pair(kernel_size))
        self.conv_kwargs = {"stride": stride, "padding": padding, "dilation": dilation}
        self._patchwise = (tuple(F._pair(stride)) == self.kernel_size and tuple(F._pair(padding)) == (0, 0)
                           and tuple(F._pair(dilation)) == (1, 1))
        self.register_buffer("weight", torch.empty(0), persistent=False)
        self.register_buffer("ssq_weight", torch.empty(0), persistent=False)
        self.register_buffer("_ssq_conv", torch.empty(0), persistent=False)
        self.imported = False

    _BUFFERS = ("weight", "ssq_weight", "_ssq_conv")

    @property
    def ready(self) -> bool:
        return self.weight.numel() > 0

    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if self.imported:  # imported projections cannot be regenerated: keep them with the weights
            for name in self._BUFFERS:
                value = getattr(self, name)
                destination[prefix + name] = value if keep_vars else value.detach()

    def _load_from_state_dict(self, state_dict: dict, prefix: str, local_metadata: dict, strict: bool,
                              missing_keys: list, unexpected_keys: list, error_msgs: list) -> None:
        keys = [prefix + name for name in self._BUFFERS]
        if keys[0] in state_dict:
            try:
                with torch.no_grad():
                    self.fill(state_dict[keys[0]], state_dict.get(keys[1]), state_dict.get(keys[2]))
                self.imported = True
            except ValueError as err:
                error_msgs.append(f"{keys[0]}: {err}")
        rest = {k: v for k, v in state_dict.items() if k not in keys}
        super()._load_from_state_dict(rest, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def fill(self, weight: Tensor, ssq_weight: Tensor | None = None, ssq_conv: Tensor | None = None) -> None:
        """Install a projection (D, C, k, k); the derived buffers are computed when not given."""
        expected = (self.out_channels, self.in_channels, *self.kernel_size)
        if tuple(weight.shape) != expected:
            raise ValueError(f"projection of shape {tuple(weight.shape)} does not fit this tap {expected}")
        device = self.weight.device
        self.weight = weight.to(device=device, dtype=torch.float32)
        self.ssq_weight = (ssq_weight if ssq_weight is not None else torch.sum(self.weight ** 2, dim=[1, 2, 3]).view(
            1, -1, 1, 1)).to(device=device, dtype=torch.float32)
        self._ssq_conv = (ssq_conv if ssq_conv is not None else torch.ones(1, 1, *self.kernel_size)).to(
            device=device, dtype=torch.float32)

    def project(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(B, C, H, W) -> numerator (B, D, h, w) and patch sum of squares (B, 1, h, w), both float32."""
        kh, kw = self.kernel_size
        if self._patchwise:
            # non-overlapping patches (the official setting): one matmul, ~3x faster than the strided conv on CPU
            b, c, height, width = x.shape
            h, w = height // kh, width // kw
            patches = x[:, :, : h * kh, : w * kw].reshape(b, c, h, kh, w, kw).permute(0, 2, 4, 1, 3, 5)
            weight = self.weight.to(x.dtype).view(self.out_channels, -1)
            num = (patches.reshape(b * h * w, c * kh * kw) @ weight.t()).view(b, h, w, -1).permute(0, 3, 1, 2).float()
        else:
            num = F.conv2d(x, self.weight.to(x.dtype), **self.conv_kwargs).float()
        with torch.autocast(x.device.type, enabled=False):
            ssq = F.conv2d(torch.sum(x.float() ** 2, dim=1, keepdim=True), self._ssq_conv, **self.conv_kwargs)
        return num, ssq


class HypervectorEncoder(nn.ModuleList):
    """Random-projection hypervectors of a list of feature maps (official ``models/lsh.py::LSHCat``).

    For taps ``f_l`` (B, C_l, H_l, W_l) with projections ``W_l`` (D, C_l, k_l, k_l)::

        num_l = conv2d(f_l, W_l)                    ssq_l = conv2d(sum_c f_l^2, ones(k_l, k_l))
        hv    = sum_l num_l / (sqrt(sum_l ssq_l) * sqrt(sum_l |W_l|^2) + 1e-5)

    where taps after the first are resized to the first tap's grid with nearest interpolation (the official grid
    alignment). Channels of ``hv`` are cosine similarities, in [-1, 1].

    The projections are drawn with ``torch.randn`` from a CPU generator seeded with ``seed``, tap after tap, the
    first time they are needed (so inference-only loads never allocate them) and are kept out of the state dict;
    projections found in a loaded state dict (an official checkpoint) replace them and are saved from then on.

    Args:
        in_channels: channels of each tap.
        out_channels: hypervector dimension ``D`` (4096 officially).
        kernel_size: patch size per tap (list) or shared (int).
        stride: conv stride per tap or shared.
        padding: conv padding per tap or shared.
        dilation: conv dilation per tap or shared.
        seed: seed the projections are drawn from.
    """

    def __init__(self, in_channels: Sequence[int] | int, out_channels: int, kernel_size: Sequence[int] | int, *,
                 stride: Sequence[int] | int = 1, padding: Sequence[int] | int = 0,
                 dilation: Sequence[int] | int = 1, seed: int = 0) -> None:
        super().__init__()
        in_channels = [in_channels] if isinstance(in_channels, int) else list(in_channels)
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.seed = seed
        for i, ch in enumerate(in_channels):
            self.append(ProjectionTap(ch, out_channels, _per_tap(kernel_size, i), stride=_per_tap(stride, i),
                                      padding=_per_tap(padding, i), dilation=_per_tap(dilation, i)))

    # ------------------------------------------------------------------ projections

    @torch.no_grad()
    def materialize(self) -> None:
        """Draw the projections from ``seed`` if they are not there yet (memory: D * sum_l C_l k_l^2 floats)."""
        if all(tap.ready for tap in self):
            return
        generator = torch.Generator().manual_seed(self.seed)
        for tap in self:
            tap.fill(torch.randn(tap.out_channels, tap.in_channels, *tap.kernel_size, generator=generator))

    @property
    def imported(self) -> bool:
        """Whether the projections came from a state dict (then they are saved with it)."""
        return any(tap.imported for tap in self)

    def release(self) -> None:
        """Free regenerable projections (they are drawn again on the next use)."""
        if not self.imported:
            for tap in self:
                for name in ("weight", "ssq_weight", "_ssq_conv"):
                    setattr(tap, name, torch.empty(0, device=tap.weight.device))

    # ------------------------------------------------------------------ forward

    def forward(self, features: Sequence[Tensor] | Tensor) -> Tensor:
        """Taps [(B, C_l, H_l, W_l)] -> hypervectors (B, D, h_0, w_0) in [-1, 1], float32."""
        self.materialize()
        features = list(features) if isinstance(features, (list, tuple)) else [features] * len(self)
        if len(features) != len(self):
            raise ValueError(f"expected {len(self)} feature maps (one per tap), got {len(features)}")
        num = ssq = None
        w_ssq: Tensor | float = 0.0
        for tap, x in zip(self, features, strict=False):
            w_ssq = w_ssq + tap.ssq_weight
            n, s = tap.project(x)
            if num is None:
                num, ssq = n, s
            else:
                if n.shape[2:] != num.shape[2:]:
                    n = F.interpolate(n, size=num.shape[2:], mode="nearest")
                    s = F.interpolate(s, size=num.shape[2:], mode="nearest")
                num, ssq = num + n, ssq + s
        return num / (ssq.sqrt() * w_ssq.sqrt() + 1e-5)


class NormalizedPatchProjection(nn.Module):
    """The official single-input ``LSH(concatenate=False)`` (not used by VSAIT's model; kept for completeness).

    Unfold the input into patches, L2-normalise each patch, fold back (overlapping patches are summed), then
    convolve with row-normalised random directions ``weight`` (D, C, k, k) (a persistent buffer, as officially).

    Args:
        in_channels: input channels ``C``.
        out_channels: output channels ``D``.
        kernel_size: patch size ``k``.
        seed: seed the directions are drawn from.
        **conv_kwargs: ``stride``, ``padding``, ``dilation`` of the unfold/fold and the convolution.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, seed: int = 0,
                 **conv_kwargs: Any) -> None:
        super().__init__()
        self.kernel_size = tuple(F._pair(kernel_size))
        self.conv_kwargs = conv_kwargs
        w = torch.randn(out_channels, in_channels, *self.kernel_size, generator=torch.Generator().manual_seed(seed))
        self.register_buffer("weight", F.normalize(w, dim=[1, 2, 3]))

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, D, h, w)."""
        h, w = x.shape[2:]
        patches = F.normalize(F.unfold(x, self.kernel_size, **self.conv_kwargs), dim=1)
        x = F.fold(patches, (h, w), self.kernel_size, **self.conv_kwargs)
        return F.conv2d(x, self.weight, **self.conv_kwargs)
