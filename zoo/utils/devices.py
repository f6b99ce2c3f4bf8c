"""Device choice and deterministic inference, shared by ``zoo translate``, ``zoo evaluate`` and ``zoo export``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["deterministic_backends", "resolve_device"]


def resolve_device(device: str | torch.device) -> torch.device:
    """``auto``: CUDA, then MPS, then CPU; anything else is parsed as a torch device.

    Raises:
        ValueError: an unknown device name (the message names the ``--device`` flag).
    """
    if isinstance(device, torch.device):
        return device
    if device != "auto":
        try:
            return torch.device(device)
        except RuntimeError as error:
            raise ValueError(f"--device: {error}") from None
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@contextlib.contextmanager
def deterministic_backends() -> Iterator[None]:
    """cuDNN's deterministic algorithms (no benchmarking) inside the block, so equal calls write equal files."""
    saved = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved
