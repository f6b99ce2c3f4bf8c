"""Differentiable augmentation of discriminator inputs for data-efficient GAN training.

Zhao et al., "Differentiable Augmentation for Data-Efficient GAN Training" (NeurIPS 2020): with little training data
the discriminator memorises the real images. Augmenting only the reals would teach the generator to produce augmented
images, so the same random transform family ``T`` is applied to *both* the real and the generated images every time
the discriminator sees them, in the discriminator's update (``D(T(x))`` vs ``D(T(G(z)))``) and in the generator's
update (``D(T(G(z)))``). ``T`` must therefore be differentiable with respect to its input, so the generator still
receives gradients through it. Each call draws fresh parameters for every sample; real and fake batches share the
policy (the distribution of transforms), not the individual draws.

The paper's three policies, applied in the order given:

- ``color``: a random brightness offset in [-0.5, 0.5), a saturation factor in [0, 2) (scaling each pixel's deviation
  from its channel mean) and a contrast factor in [0.5, 1.5) (scaling the deviation from the image mean);
- ``translation``: an integer shift of up to 1/8 of the height and width, the uncovered pixels set to zero;
- ``cutout``: a random square of half the image size (its centre anywhere in the image, clipped at the borders)
  set to zero.

Values are not clamped (clamping would cut gradients), so ``color`` may take images outside [-1, 1]; ``translation``
and ``cutout`` only move and zero pixels. Typical use (``policy="color,translation,cutout"``)::

    augment = DiffAugment("color,translation,cutout")
    loss_d = gan_loss(netD(augment(real)), True) + gan_loss(netD(augment(fake.detach())), False)
    loss_g = gan_loss(netD(augment(fake)), True)
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

__all__ = ["DIFF_AUGMENT_POLICIES", "AugmentInputsHook", "DiffAugment", "augment_inputs_of", "diff_augment",
           "parse_policy"]

#: The policies :func:`diff_augment` knows, in the paper's recommended order.
DIFF_AUGMENT_POLICIES = ("color", "translation", "cutout")


def parse_policy(policy: str | Sequence[str] | None) -> tuple[str, ...]:
    """Policy names from ``"color,translation"`` (commas and/or spaces) or a sequence of names.

    Args:
        policy: Names from :data:`DIFF_AUGMENT_POLICIES`; ``""``, ``None`` or ``[]`` mean no augmentation.

    Returns:
        The names in the given order (duplicates kept: a policy given twice is applied twice).

    Raises:
        ValueError: An unknown name (one line, with a suggestion when the name is close to a known one).
        TypeError: ``policy`` is neither a string nor a sequence of strings.
    """
    if policy is None:
        return ()
    if isinstance(policy, str):
        names = policy.replace(",", " ").split()
    elif isinstance(policy, Sequence) and all(isinstance(name, str) for name in policy):
        names = [name.strip() for name in policy if name.strip()]
    else:
        raise TypeError(f"DiffAugment policy must be a string or a list of strings, got {policy!r}.")
    for name in names:
        if name not in DIFF_AUGMENT_POLICIES:
            close = difflib.get_close_matches(name, DIFF_AUGMENT_POLICIES, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ValueError(
                f"unknown DiffAugment policy '{name}'{hint}; choose from {', '.join(DIFF_AUGMENT_POLICIES)}."
            )
    return tuple(names)


def _uniform(images: torch.Tensor, generator: torch.Generator | None, low: float, high: float) -> torch.Tensor:
    """One value per sample, (B, 1, 1, 1), uniform in [low, high), drawn on the generator's device."""
    device = generator.device if generator is not None else images.device
    draw = torch.rand(images.shape[0], 1, 1, 1, generator=generator, device=device, dtype=torch.float32)
    return (draw * (high - low) + low).to(device=images.device, dtype=images.dtype)


def _randint(
    count: int, low: int, high: int, images: torch.Tensor, generator: torch.Generator | None
) -> torch.Tensor:
    """``count`` integers (count,) uniform in [low, high), drawn on the generator's device, on the images' device."""
    device = generator.device if generator is not None else images.device
    return torch.randint(low, high, (count,), generator=generator, device=device).to(images.device)


def _color(images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Random brightness, saturation and contrast per sample; (B, C, H, W) -> (B, C, H, W)."""
    images = images + _uniform(images, generator, -0.5, 0.5)
    pixel_mean = images.mean(dim=1, keepdim=True)
    images = (images - pixel_mean) * _uniform(images, generator, 0.0, 2.0) + pixel_mean
    image_mean = images.mean(dim=(1, 2, 3), keepdim=True)
    return (images - image_mean) * _uniform(images, generator, 0.5, 1.5) + image_mean


def _translation(images: torch.Tensor, generator: torch.Generator | None, ratio: float = 0.125) -> torch.Tensor:
    """Shift every sample by its own integer offset up to ``ratio`` of H and W, zeros where nothing moved in.

    (B, C, H, W) -> (B, C, H, W); a gather, so the gradient reaches every pixel that stays in view.
    """
    batch, channels, height, width = images.shape
    max_dy, max_dx = int(height * ratio + 0.5), int(width * ratio + 0.5)
    shift_y = _randint(batch, -max_dy, max_dy + 1, images, generator).view(batch, 1, 1)
    shift_x = _randint(batch, -max_dx, max_dx + 1, images, generator).view(batch, 1, 1)
    source_rows = torch.arange(height, device=images.device).view(1, height, 1) - shift_y  # (B, H, 1)
    source_cols = torch.arange(width, device=images.device).view(1, 1, width) - shift_x  # (B, 1, W)
    in_view = (source_rows >= 0) & (source_rows < height) & (source_cols >= 0) & (source_cols < width)  # (B, H, W)
    flat_index = source_rows.clamp(0, height - 1) * width + source_cols.clamp(0, width - 1)  # (B, H, W)
    flat_index = flat_index.view(batch, 1, height * width).expand(batch, channels, height * width)
    moved = images.reshape(batch, channels, height * width).gather(2, flat_index).view_as(images)
    return moved * in_view.unsqueeze(1).to(images.dtype)


def _cutout(images: torch.Tensor, generator: torch.Generator | None, ratio: float = 0.5) -> torch.Tensor:
    """Zero a random rectangle of ``ratio`` of H by ``ratio`` of W per sample (clipped at the borders).

    (B, C, H, W) -> (B, C, H, W).
    """
    batch, _, height, width = images.shape
    cut_h, cut_w = int(height * ratio + 0.5), int(width * ratio + 0.5)
    top = _randint(batch, 0, height, images, generator).view(batch, 1, 1) - cut_h // 2
    left = _randint(batch, 0, width, images, generator).view(batch, 1, 1) - cut_w // 2
    rows = torch.arange(height, device=images.device).view(1, height, 1)
    cols = torch.arange(width, device=images.device).view(1, 1, width)
    inside = (rows >= top) & (rows < top + cut_h) & (cols >= left) & (cols < left + cut_w)  # (B, H, W)
    return images * (~inside).unsqueeze(1).to(images.dtype)


_POLICY_FUNCTIONS: dict[str, Callable[[torch.Tensor, torch.Generator | None], torch.Tensor]] = {
    "color": _color,
    "translation": _translation,
    "cutout": _cutout,
}


def diff_augment(
    images: torch.Tensor, policy: str | Sequence[str], generator: torch.Generator | None = None
) -> torch.Tensor:
    """Differentiable augmentation of a batch of discriminator inputs (see the module docstring).

    Args:
        images: (B, C, H, W) floating-point images (zoo's range is [-1, 1]; any range works).
        policy: ``"color,translation,cutout"`` or ``["color", "translation"]``; applied in the given order. Empty
            (``""`` / ``[]``): ``images`` is returned as it is.
        generator: Source of the random draws (its device may differ from the images'); None: the global RNG.

    Returns:
        (B, C, H, W) augmented images, differentiable with respect to ``images``; every sample has its own draws.

    Raises:
        ValueError: An unknown policy name, or ``images`` is not a 4-D floating-point batch.
    """
    names = parse_policy(policy)
    if images.ndim != 4 or not images.is_floating_point():
        raise ValueError(
            f"diff_augment expects floating-point images (B, C, H, W), got {tuple(images.shape)} {images.dtype}."
        )
    for name in names:
        images = _POLICY_FUNCTIONS[name](images, generator)
    return images


class DiffAugment(nn.Module):
    """:func:`diff_augment` as a module, to put in front of a discriminator (no parameters, no state).

    It augments in training and evaluation mode alike (the paper applies it whenever the discriminator is called in
    training); call the discriminator without it where plain inputs are wanted.

    Args:
        policy: ``"color,translation,cutout"`` or a list of names from :data:`DIFF_AUGMENT_POLICIES`; empty: identity.

    Raises:
        ValueError: An unknown policy name (checked here, at construction).
    """

    def __init__(self, policy: str | Sequence[str] = "color,translation,cutout") -> None:
        super().__init__()
        self.policy = parse_policy(policy)

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment (B, C, H, W) images; returns (B, C, H, W) (see :func:`diff_augment`)."""
        return diff_augment(images, self.policy, generator)

    def extra_repr(self) -> str:
        return f"policy={','.join(self.policy) or '(none)'}"


class AugmentInputsHook:
    """Forward pre-hook that DiffAugments the first input of a network while it is in training mode.

    Installed by :func:`augment_inputs_of`; a plain picklable object (``ddp_spawn`` pickles the model).

    Args:
        policy: As :func:`diff_augment`.
    """

    def __init__(self, policy: str | Sequence[str]) -> None:
        self.policy = parse_policy(policy)

    def __call__(self, module: nn.Module, args: tuple) -> tuple | None:
        if not module.training or not self.policy:
            return None
        return (diff_augment(args[0], self.policy), *args[1:])


def augment_inputs_of(network: nn.Module, policy: str | Sequence[str]) -> RemovableHandle:
    """DiffAugment every input (B, C, H, W) of ``network`` while it is in training mode: real and fake images alike,
    in the discriminator and the generator steps, differentiably (the paper's recipe). Evaluation mode and the state
    dict are untouched.

    Returns:
        The hook's handle (``handle.remove()`` undoes it).
    """
    return network.register_forward_pre_hook(AugmentInputsHook(policy))
