"""Helpers shared by the method files: value ranges, seeded inference, official checkpoint keys, freezing."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

__all__ = [
    "StepOutput",
    "to_memory_format",
    "capture_rng_state",
    "restore_rng_state",
    "adam",
    "check_images",
    "to_model_range",
    "to_unit_range",
    "set_requires_grad",
    "seeded",
    "preserved_norm_buffers",
    "run_generator",
    "convert_official_network_state",
    "official_init_args",
]

_NORM_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def to_model_range(images: Tensor) -> Tensor:
    """[0, 1] -> [-1, 1]."""
    return images * 2 - 1


def to_unit_range(images: Tensor) -> Tensor:
    """[-1, 1] -> [0, 1], clamped."""
    return ((images + 1) / 2).clamp(0, 1)


def set_requires_grad(nets: Iterable[nn.Module], requires_grad: bool) -> None:
    """Freeze or unfreeze every parameter of ``nets`` (the official ``set_requires_grad``)."""
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(requires_grad)


@contextlib.contextmanager
def seeded(seed: int | None, device: torch.device) -> Iterator[None]:
    """Run the block with torch's RNG seeded (CPU and ``device``), leaving the global RNG state untouched."""
    if seed is None:
        yield
        return
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, device_type=device.type if devices else "cuda"):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def preserved_norm_buffers(net: nn.Module) -> Iterator[None]:
    """Restore BatchNorm running statistics after the block (train-mode inference must not change the model)."""
    saved = {name: buf.clone() for name, buf in net.named_buffers() if name.rsplit(".", 1)[-1] in _NORM_BUFFERS}
    try:
        yield
    finally:
        buffers = dict(net.named_buffers())
        for name, value in saved.items():
            buffers[name].copy_(value)


def run_generator(net: nn.Module, images: Tensor, *, train_mode: bool, seed: int | None) -> Tensor:
    """Translate ``images`` (B, C, H, W) in [0, 1] with ``net`` and return (B, C', H, W) in [0, 1].

    ``train_mode=True`` runs the network as the official test script does by default (dropout active,
    BatchNorm on the statistics of the test batch) without letting it change any running buffer.
    The previous train/eval mode of ``net`` is restored.
    """
    was_training = net.training
    net.train(train_mode)
    try:
        with torch.inference_mode(), seeded(seed, images.device), preserved_norm_buffers(net):
            return to_unit_range(net(to_model_range(images)))
    finally:
        net.train(was_training)


def convert_official_network_state(state_dict: dict[str, Tensor], *, norm: str) -> dict[str, Tensor]:
    """Official per-network state dict -> zoo's (same module paths) with the official loader's fix-ups.

    * a ``module.`` prefix (DataParallel-era files) is stripped;
    * with instance norm, ``running_mean``/``running_var``/``num_batches_tracked`` entries (written
      by the mid-2018 code and found in some published CycleGAN files) are dropped: they are never used;
    * with batch norm, a missing ``num_batches_tracked`` (files from PyTorch <= 0.3) is filled with 0.
    """
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        key = key.removeprefix("module.")
        if key.endswith("._metadata") or key == "_metadata":
            continue
        if norm == "instance" and key.rsplit(".", 1)[-1] in _NORM_BUFFERS:
            continue
        out[key] = value
    if norm in ("batch", "syncbatch"):
        for key in list(out):
            if key.endswith(".running_mean"):
                tracked = key[: -len("running_mean")] + "num_batches_tracked"
                out.setdefault(tracked, torch.tensor(0, dtype=torch.long))
    return out


def official_init_args(opt: dict, mapping: dict[str, str]) -> dict:
    """Rename the official option names present in ``opt`` to zoo constructor arguments."""
    args = {}
    for official, ours in mapping.items():
        if official in opt:
            args[ours] = opt[official]
    if "no_dropout" in opt:
        args["use_dropout"] = not opt["no_dropout"]
    return args


@dataclass
class StepOutput:
    """What one training iteration produced: (weighted) loss terms and the images computed on the way."""

    losses: dict[str, Tensor] = field(default_factory=dict)
    images: dict[str, Tensor] = field(default_factory=dict)


def check_images(images: Tensor, channels: int, multiple: int) -> None:
    """Raise a clear ``ValueError`` unless ``images`` is (B, channels, H, W) with H, W multiples of ``multiple``."""
    if images.dim() != 4:
        raise ValueError(f"expected images of shape (B, C, H, W), got {tuple(images.shape)}")
    if images.shape[1] != channels:
        raise ValueError(f"expected {channels} input channels, got {images.shape[1]} (shape {tuple(images.shape)})")
    h, w = images.shape[-2:]
    if h % multiple or w % multiple:
        raise ValueError(f"image sides must be multiples of {multiple}, got {h}x{w}; pad first "
                         "(zoo.utils.tiling.pad_to_multiple) or use `zoo translate`, which pads and crops back")


def adam(params: Iterable[nn.Parameter], *, lr: float, betas: tuple[float, float], eps: float = 1e-8,
         weight_decay: float = 0.0) -> torch.optim.Adam:
    """Adam with the fused (single-kernel) implementation: same update rule, far fewer kernel launches.

    The fused kernels exist for CPU and CUDA parameters; anything else falls back to the default implementation.
    """
    params = list(params)
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
    return torch.optim.Adam(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, fused=fused or None)


def capture_rng_state() -> dict[str, Any]:
    """torch (CPU and current CUDA device) and Python ``random`` states, for bit-exact resumption (dropout, noise)."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def restore_rng_state(state: dict[str, Any] | None) -> None:
    """Inverse of :func:`capture_rng_state`; missing entries are left alone."""
    if not state:
        return
    if "torch" in state:
        torch.set_rng_state(state["torch"].cpu())
    if "python" in state:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"].cpu())


def to_memory_format(images: Tensor, channels_last: bool) -> Tensor:
    """(B, C, H, W) in the channels-last layout when asked (a no-op otherwise)."""
    return images.contiguous(memory_format=torch.channels_last) if channels_last else images
