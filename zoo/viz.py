"""Figures for notebooks and reports: image rows with titles, crop zooms, mask overlays, loss curves and bar charts.

Every function returns a matplotlib ``Figure``, already closed in pyplot, so Jupyter shows it once when it is the
cell's last value (or pass it to ``display``; ``fig.savefig`` saves it); matplotlib is imported when a function is
called (``pip install zoo[notebooks]``). Images are tensors ``(B, 3, H, W)`` or ``(3, H, W)`` in [0, 1], as
``model.translate`` returns them.

    >>> from zoo.viz import image_rows
    >>> fig = image_rows({"input": images, "translated": model.translate(images)})   # doctest: +SKIP
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

__all__ = ["bar_chart", "crop_zoom", "image_rows", "loss_curves", "overlay_mask", "read_loss_log"]


def _pyplot() -> Any:
    try:
        import matplotlib

        if not os.environ.get("MPLBACKEND") and "ipykernel" not in __import__("sys").modules:
            matplotlib.use("Agg")  # no display outside Jupyter
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - depends on the installation
        raise ImportError("zoo.viz draws with matplotlib: pip install 'zoo[notebooks]' (or matplotlib)") from err
    return plt


def _finish(fig: Any, title: str | None) -> Any:
    """Title, tight layout, and closed in pyplot (so that Jupyter's inline backend does not draw it a second time)."""
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    _pyplot().close(fig)
    return fig


def _as_batch(images: Tensor) -> Tensor:
    images = images.detach().float().cpu()
    if images.dim() == 3:
        images = images[None]
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be (B, 1|3, H, W) or (1|3, H, W); got {tuple(images.shape)}")
    return images.clamp(0, 1)


def _to_numpy(image: Tensor) -> Any:
    array = image.permute(1, 2, 0).numpy()
    return array[..., 0] if array.shape[-1] == 1 else array


def image_rows(rows: Mapping[str, Tensor], *, column_titles: Sequence[str] | None = None, title: str | None = None,
               size: float = 1.6) -> Any:
    """A grid with one titled row per entry of ``rows`` (``{"input": (B, 3, H, W), "output": ...}``), one column
    per image of the batch; rows may have different resolutions (each image fills its cell).

    Args:
        rows: row title -> images in [0, 1]; every row has the same batch size B.
        column_titles: B titles above the first row (e.g. the style of each column).
        title: the figure's title.
        size: inches per cell side.
    """
    plt = _pyplot()
    batches = {name: _as_batch(images) for name, images in rows.items()}
    counts = {b.shape[0] for b in batches.values()}
    if len(counts) != 1:
        raise ValueError(f"every row needs the same number of images; got {sorted(counts)}")
    columns = counts.pop()
    if column_titles is not None and len(column_titles) != columns:
        raise ValueError(f"{len(column_titles)} column titles for {columns} columns")
    fig, axes = plt.subplots(len(batches), columns, figsize=(size * columns, size * len(batches)), squeeze=False)
    for r, (name, batch) in enumerate(batches.items()):
        for c in range(columns):
            ax = axes[r][c]
            ax.imshow(_to_numpy(batch[c]), cmap="gray" if batch.shape[1] == 1 else None, vmin=0, vmax=1,
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name, fontsize=9)
            if r == 0 and column_titles is not None:
                ax.set_title(column_titles[c], fontsize=9)
    return _finish(fig, title)


def crop_zoom(images: Mapping[str, Tensor], box: tuple[int, int, int, int], *, title: str | None = None,
              size: float = 2.4) -> Any:
    """Each image whole (top row, the crop outlined) and its crop ``box = (top, left, height, width)`` enlarged
    (bottom row), side by side: to compare fine texture. ``images``: title -> ``(3, H, W)`` (or a batch of one);
    images of another resolution than the first are cropped at the same relative place."""
    plt = _pyplot()
    from matplotlib.patches import Rectangle

    first = _as_batch(next(iter(images.values())))[0]
    top, left, height, width = box
    fig, axes = plt.subplots(2, len(images), figsize=(size * len(images), size * 2), squeeze=False)
    for c, (name, image) in enumerate(images.items()):
        image = _as_batch(image)[0]
        sy, sx = image.shape[1] / first.shape[1], image.shape[2] / first.shape[2]
        y0, x0, h, w = round(top * sy), round(left * sx), round(height * sy), round(width * sx)
        axes[0][c].imshow(_to_numpy(image), interpolation="nearest")
        axes[0][c].add_patch(Rectangle((x0 - 0.5, y0 - 0.5), w, h, fill=False, edgecolor="yellow", linewidth=1.5))
        axes[0][c].set_title(name, fontsize=9)
        axes[1][c].imshow(_to_numpy(image[:, y0:y0 + h, x0:x0 + w]), interpolation="nearest")
        for ax in (axes[0][c], axes[1][c]):
            ax.set_xticks([])
            ax.set_yticks([])
    axes[1][0].set_ylabel("crop, enlarged", fontsize=9)
    return _finish(fig, title)


def overlay_mask(images: Tensor, masks: Tensor, *, color: tuple[float, float, float] = (1.0, 0.2, 0.1),
                 opacity: float = 0.5) -> Tensor:
    """Images ``(B, 3, H, W)`` with ``masks`` ``(B, 1, H, W)`` or ``(B, H, W)`` in [0, 1] tinted in ``color``."""
    images = _as_batch(images)
    masks = masks.detach().float().cpu()
    if masks.dim() == 3:
        masks = masks[:, None]
    tint = torch.tensor(color).view(1, 3, 1, 1)
    alpha = opacity * masks.clamp(0, 1)
    return images * (1 - alpha) + tint * alpha


def read_loss_log(path: str | os.PathLike[str]) -> dict[str, list[tuple[int, float]]]:
    """The loss columns of a CSV training log (``zoo fit``'s CSV logger, or a shipped ``<name>.losses.csv``):
    ``{"train/g_total": [(step, value), ...], ...}``, rows without a value skipped."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    curves: dict[str, list[tuple[int, float]]] = {}
    for row in rows:
        for key, value in row.items():
            if key.startswith("train/") and value not in ("", None):
                curves.setdefault(key, []).append((int(float(row.get("step") or 0)), float(value)))
    return curves


def loss_curves(log: str | os.PathLike[str] | Mapping[str, Sequence[tuple[int, float]]], *,
                keys: Sequence[str] | None = None, title: str | None = None, log_scale: bool = False) -> Any:
    """Loss curves of a training log (a CSV file, see :func:`read_loss_log`, or its curves): one line per loss,
    generator terms and discriminator terms in two panels when both are there."""
    plt = _pyplot()
    curves = read_loss_log(log) if isinstance(log, (str, Path, os.PathLike)) else dict(log)
    names = [k for k in (keys or sorted(curves)) if k in curves and not k.endswith("/lr")]
    if not names:
        raise ValueError(f"no loss columns to draw; the log has {sorted(curves)}")
    panels = [[n for n in names if "/d_" not in n and "/dis" not in n], [n for n in names if "/d_" in n or "/dis" in n]]
    panels = [p for p in panels if p]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.2), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        for name in panel:
            steps, values = zip(*curves[name], strict=True)
            ax.plot(steps, values, label=name.removeprefix("train/"))
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("loss")
        if log_scale:
            ax.set_yscale("log")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    return _finish(fig, title)


def bar_chart(values: Mapping[str, float] | Mapping[str, Mapping[str, float]], *, title: str | None = None,
              ylabel: str = "", higher_is_better: bool = True, figsize: tuple[float, float] | None = None) -> Any:
    """Bars of ``{label: value}``, or grouped bars of ``{series: {label: value}}`` (e.g. per-class IoU of several
    models), with the values printed on single-series bars; ``figsize`` in inches (default: from the bar count, at
    most 10 inches wide)."""
    plt = _pyplot()
    series = values if values and isinstance(next(iter(values.values())), Mapping) else {"": values}
    labels = list(dict.fromkeys(label for s in series.values() for label in s))  # type: ignore[union-attr]
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=figsize or (min(10.0, max(4.0, 0.35 * len(labels) * len(series) + 1.5)), 3.2))
    for i, (name, data) in enumerate(series.items()):
        xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(labels))]
        heights = [float(data.get(label, float("nan"))) for label in labels]  # type: ignore[union-attr]
        bars = ax.bar(xs, heights, width, label=name or None)
        if len(series) == 1:
            ax.bar_label(bars, fmt="%.3g", fontsize=8)
    ax.set_xticks(range(len(labels)), labels, rotation=45 if len(labels) > 6 else 0, ha="right" if len(labels) > 6
                  else "center", fontsize=8)
    ax.set_ylabel(ylabel + (" (higher is better)" if higher_is_better and ylabel else ""))
    if len(series) > 1:
        ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    if title:
        ax.set_title(title, fontsize=11)
    return _finish(fig, None)
