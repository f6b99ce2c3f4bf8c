"""Which style each translated image gets: one per dataset, per sequence or per image, reproducibly.

A multimodal model (MUNIT, DRIT) draws a style code for every translation, and an exemplar-guided one (LOMIT) takes
the style of an exemplar. Translating a video or a driving sequence with a new style per frame makes it flicker, so
``zoo translate --style-policy`` chooses how often the style changes:

* ``per-dataset``: one style (or exemplar) for every image;
* ``per-sequence``: one per sequence: a video, or a folder of frames;
* ``per-image``: one per image (or video frame).

Each choice depends only on the seed and on the key it is made for (the relative path of the image, of its folder,
or nothing), never on batching or on the order of translation, so a resumed run or one with another batch size gives
the same outputs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Literal, TypeVar

import torch
from torch import Tensor

__all__ = ["STYLE_POLICIES", "StylePolicy", "choose", "key_seed", "style_codes", "style_key"]

StylePolicy = Literal["per-dataset", "per-sequence", "per-image"]
STYLE_POLICIES: tuple[str, ...] = ("per-dataset", "per-sequence", "per-image")
T = TypeVar("T")


def style_key(policy: StylePolicy, *, image: str, sequence: str, frame: int | None = None) -> str:
    """The key a style is drawn for: ``""`` (per-dataset), ``sequence`` (per-sequence), or ``image`` with the frame
    index for a video frame (per-image)."""
    if policy == "per-dataset":
        return ""
    if policy == "per-sequence":
        return f"sequence:{sequence}"
    if policy == "per-image":
        return f"image:{image}" if frame is None else f"image:{image}#{frame}"
    raise ValueError(f"--style-policy must be one of {STYLE_POLICIES}, got {policy!r}")


def key_seed(seed: int, key: str) -> int:
    """A 63-bit seed from ``seed`` and ``key`` (SHA-256, so it is the same in every process and Python run)."""
    digest = hashlib.sha256(f"{seed}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def style_codes(style_dim: int, keys: Sequence[str], *, seed: int, num_styles: int = 1) -> Tensor:
    """N(0, I) style codes for each key: ``(len(keys), num_styles, style_dim)``, equal keys giving equal codes."""
    cache: dict[str, Tensor] = {}
    for key in keys:
        if key not in cache:
            generator = torch.Generator().manual_seed(key_seed(seed, key))
            cache[key] = torch.randn(num_styles, style_dim, generator=generator)
    return torch.stack([cache[key] for key in keys]) if keys else torch.empty(0, num_styles, style_dim)


def choose(options: Sequence[T], *, seed: int, key: str) -> T:
    """One of ``options`` (an exemplar), the same for equal ``seed`` and ``key``."""
    if not options:
        raise ValueError("nothing to choose from")
    return options[key_seed(seed, key) % len(options)]
