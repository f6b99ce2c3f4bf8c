"""PSNR and SSIM as the super-resolution literature computes them (MATLAB ``Evaluate_PSNR_SSIM.m`` conventions).

The protocol of SRCNN / VDSR / EDSR / RCAN / SRGAN tables, which these functions follow with
``crop_border=scale, y_channel=True``:

- Y channel of ITU-R BT.601 in studio range, MATLAB ``rgb2ycbcr(im2double(img)) * 255``:
  ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`` on 8-bit values, kept as float (not rounded), so Y spans
  [16, 235]. A single-channel image is compared on its grey values as they are.
- ``crop_border`` pixels are removed from every side before measuring (the "shave" of ``scale`` pixels).
- PSNR: ``10 log10(255^2 / MSE)`` in float64; identical images give ``inf``.
- SSIM: Wang et al.'s ``ssim_index``: 11x11 Gaussian window with sigma 1.5 (normalised), K1 = 0.01, K2 = 0.03,
  L = 255, 'valid' filtering (no padding), no downsampling, mean of the SSIM map. Without ``y_channel`` a colour
  image's SSIM is the mean over its channels.

Inputs (``pred`` and ``target`` of the same shape and kind):

- numpy arrays ``(H, W)`` or ``(H, W, C)`` (channels last);
- torch tensors ``(H, W)``, ``(C, H, W)`` or a batch ``(B, C, H, W)`` (channels first), on any device.

uint8 values are grey levels 0..255. Float values are taken as [0, 1] and multiplied by 255 **without rounding**;
the published protocol quantises outputs to 8 bits first (:class:`zoo.metrics.SRMetrics` does this). ``C`` is 1 or 3.
A single image gives a Python float; a batch tensor gives a float64 tensor (B,) on the input's device. Everything is
computed in float64, with numpy for CPU inputs and with torch on the tensors' device otherwise.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["psnr", "rgb_to_y", "ssim", "to_luma_or_gray"]

_Y_WEIGHTS = (65.481, 128.553, 24.966)
_SSIM_SIZE = 11
_SSIM_SIGMA = 1.5
_K1, _K2, _PEAK = 0.01, 0.03, 255.0


Array = np.ndarray | torch.Tensor


def _as_batch(image: Array, name: str) -> tuple[Array, bool]:
    """float64 (B, C, H, W) in grey levels 0..255, and whether the input was one image.

    CPU inputs become numpy arrays (single-threaded elementwise work: fast and immune to thread-pool contention);
    tensors on an accelerator stay there as torch tensors.
    """
    if isinstance(image, np.ndarray):
        if image.ndim not in (2, 3):
            raise ValueError(f"{name}: a numpy image must be (H, W) or (H, W, C), got shape {image.shape}.")
        single = True
        array: Array = image[None, None] if image.ndim == 2 else image.transpose(2, 0, 1)[None]
        dtype = image.dtype
        floating = np.issubdtype(dtype, np.floating)
    elif isinstance(image, torch.Tensor):
        if image.ndim not in (2, 3, 4):
            raise ValueError(f"{name}: a tensor must be (H, W), (C, H, W) or (B, C, H, W), got {tuple(image.shape)}.")
        single = image.ndim < 4
        array = image.detach()
        while array.ndim < 4:
            array = array.unsqueeze(0)
        dtype = image.dtype
        floating = image.is_floating_point()
        if array.device.type == "cpu":
            array = (array.float() if array.dtype in (torch.float16, torch.bfloat16) else array).numpy()
    else:
        raise TypeError(f"{name}: expected a numpy array or a torch tensor, got {type(image).__name__}.")
    if dtype not in (np.uint8, torch.uint8) and not floating:
        raise TypeError(f"{name}: expected uint8 (0..255) or float ([0, 1]) values, got dtype {dtype}.")
    if isinstance(array, np.ndarray):
        array = array.astype(np.float64) * (255.0 if floating else 1.0)
    else:
        array = array.to(torch.float64) * (255.0 if floating else 1.0)
    if array.shape[1] not in (1, 3):
        raise ValueError(
            f"{name}: images must have 1 or 3 channels, got {array.shape[1]} (shape {tuple(image.shape)})."
        )
    return array, single


def rgb_to_y(image: Array) -> Array:
    """BT.601 studio-range luma (MATLAB ``rgb2ycbcr``): (B, 3, H, W) grey levels -> (B, 1, H, W) in [16, 235]."""
    r, g, b = image[:, 0], image[:, 1], image[:, 2]
    return (16.0 + (_Y_WEIGHTS[0] * r + _Y_WEIGHTS[1] * g + _Y_WEIGHTS[2] * b) / 255.0)[:, None]


def to_luma_or_gray(image: Array) -> Array:
    """The channel the SR protocol measures: Y of a 3-channel image, the grey values of a 1-channel one."""
    return rgb_to_y(image) if image.shape[1] == 3 else image


def _prepare(pred: Array, target: Array, *, crop_border: int, y_channel: bool,
             name: str) -> tuple[Array, Array, bool, torch.device | None]:
    a, single = _as_batch(pred, f"{name} pred")
    b, _ = _as_batch(target, f"{name} target")
    if a.shape != b.shape:
        raise ValueError(f"{name}: pred and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}.")
    if isinstance(a, np.ndarray) != isinstance(b, np.ndarray):  # one on an accelerator: measure there
        device = a.device if isinstance(a, torch.Tensor) else b.device
        a, b = torch.as_tensor(a, device=device), torch.as_tensor(b, device=device)
    elif isinstance(a, torch.Tensor):
        b = b.to(a.device)
    if isinstance(crop_border, bool) or not isinstance(crop_border, int) or crop_border < 0:
        raise ValueError(f"{name}: crop_border must be an int >= 0, got {crop_border!r}.")
    if crop_border:
        h, w = a.shape[-2:]
        if h <= 2 * crop_border or w <= 2 * crop_border:
            raise ValueError(f"{name}: crop_border={crop_border} leaves nothing of a {h}x{w} image.")
        a = a[..., crop_border:-crop_border, crop_border:-crop_border]
        b = b[..., crop_border:-crop_border, crop_border:-crop_border]
    if y_channel:
        a, b = to_luma_or_gray(a), to_luma_or_gray(b)
    # batch results come back as tensors on the device the inputs were on
    device = None if single else (a.device if isinstance(a, torch.Tensor) else torch.device("cpu"))
    return a, b, single, device


def _result(values: Array, single: bool, device: torch.device | None) -> float | torch.Tensor:
    if single:
        return float(values[0])
    return torch.as_tensor(values, dtype=torch.float64, device=device)


def psnr(
    pred: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor, *, crop_border: int = 0, y_channel: bool = False
) -> float | torch.Tensor:
    """Peak signal-to-noise ratio in dB (peak 255), as the SR literature's MATLAB evaluation.

    Args:
        pred: Restored image(s), see the module docstring for layouts and value ranges.
        target: Ground truth, same shape.
        crop_border: Pixels removed from every side first (the scale factor in SR papers).
        y_channel: Measure on BT.601 studio-range Y (3-channel images; 1-channel images use their grey values).

    Returns:
        A float for one image (``inf`` when identical), a float64 tensor (B,) for a batch.
    """
    a, b, single, device = _prepare(pred, target, crop_border=crop_border, y_channel=y_channel, name="psnr")
    mse = ((a - b) ** 2).mean(axis=(1, 2, 3))
    if isinstance(mse, np.ndarray):
        with np.errstate(divide="ignore"):
            values = 10.0 * np.log10(_PEAK**2 / mse)  # mse == 0 gives +inf
    else:
        values = 10.0 * torch.log10(_PEAK**2 / mse)
    return _result(values, single, device)


def _gaussian_1d() -> list[float]:
    """MATLAB ``fspecial('gaussian', 11, 1.5)`` is the outer product of this normalised 1-D window."""
    x = torch.arange(_SSIM_SIZE, dtype=torch.float64) - (_SSIM_SIZE - 1) / 2
    g = torch.exp(-(x * x) / (2 * _SSIM_SIGMA**2))
    return (g / g.sum()).tolist()


_GAUSSIAN = _gaussian_1d()


def _filter_valid(image: Array) -> Array:
    """2-D Gaussian filtering with 'valid' borders of (N, 1, H, W), as two separable passes of shifted sums (much
    faster than a float64 convolution on the CPU)."""
    h, w = image.shape[-2:]
    rows = sum(_GAUSSIAN[k] * image[..., k : h - _SSIM_SIZE + 1 + k, :] for k in range(_SSIM_SIZE))
    return sum(_GAUSSIAN[k] * rows[..., k : w - _SSIM_SIZE + 1 + k] for k in range(_SSIM_SIZE))


def ssim(
    pred: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor, *, crop_border: int = 0, y_channel: bool = False
) -> float | torch.Tensor:
    """Structural similarity (Wang et al. 2004, ``ssim_index``), as the SR literature's MATLAB evaluation.

    Args:
        pred: Restored image(s), see the module docstring for layouts and value ranges.
        target: Ground truth, same shape.
        crop_border: Pixels removed from every side first.
        y_channel: Measure on BT.601 studio-range Y (1-channel images use their grey values); otherwise the mean of
            the per-channel SSIM.

    Returns:
        A float for one image, a float64 tensor (B,) for a batch.
    """
    a, b, single, device = _prepare(pred, target, crop_border=crop_border, y_channel=y_channel, name="ssim")
    batch, channels, h, w = a.shape
    if h < _SSIM_SIZE or w < _SSIM_SIZE:
        raise ValueError(f"ssim: images must be at least {_SSIM_SIZE}x{_SSIM_SIZE} after cropping, got {h}x{w}.")
    a = a.reshape(batch * channels, 1, h, w)
    b = b.reshape(batch * channels, 1, h, w)
    c1, c2 = (_K1 * _PEAK) ** 2, (_K2 * _PEAK) ** 2
    mu_a, mu_b = _filter_valid(a), _filter_valid(b)
    mu_a2, mu_b2, mu_ab = mu_a * mu_a, mu_b * mu_b, mu_a * mu_b
    var_a = _filter_valid(a * a) - mu_a2
    var_b = _filter_valid(b * b) - mu_b2
    cov = _filter_valid(a * b) - mu_ab
    ssim_map = ((2 * mu_ab + c1) * (2 * cov + c2)) / ((mu_a2 + mu_b2 + c1) * (var_a + var_b + c2))
    values = ssim_map.mean(axis=(1, 2, 3)).reshape(batch, channels).mean(axis=1)
    return _result(values, single, device)

