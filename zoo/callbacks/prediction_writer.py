"""Write the outputs of the predict loop (``zoo predict``) as PNG files that mirror the input folder.

Predict batches are dicts with ``real_a`` (B, C, H, W) in [-1, 1] at each file's original size, optionally
``real_b``, and the file names: ``path_a`` / ``path_b`` and ``relpath_a`` / ``relpath_b`` (lists of str; the relative
path below the input folder, e.g. ``sub/img.jpg``). A method's ``predict_step`` returns a dict of outputs in [0, 1]:
``fake_b`` made from ``real_a`` and optionally ``fake_a`` made from ``real_b``, each (B, C, s*H, s*W) for an
upscaling factor s, or (B, K, C, s*H, s*W) for K styles of a multimodal method.

Layout (``output_dir`` = ``out``), following ``zoo translate``:

- one output key: ``out/sub/img.png``; several keys: ``out/fake_b/sub/img.png``, ``out/fake_a/sub/img.png``;
- K styles: ``out/sub/img_style0.png`` ... ``img_style<K-1>.png``;
- no relative path: the file name of ``path_*``; no paths at all: ``<batch>_<index>.png`` (``rank<r>_<batch>_<index>``
  when several processes write).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path, PurePath
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from torch import Tensor

from zoo.data.io import save_image

__all__ = ["PredictionWriter"]


def _source_side(key: str) -> str:
    """``"a"`` or ``"b"``: the input side an output key is made from (``fake_b`` from ``real_a``)."""
    return "b" if key.endswith("_a") else "a"


class PredictionWriter(BasePredictionWriter):
    """Save every output of every predict batch as an 8-bit PNG whose path mirrors the input's.

    Each process (DDP rank) writes the items of its own batches right after the batch (``write_interval="batch"``),
    so memory does not grow with the data set. Before anything of a batch is written, all of the batch's destinations
    are checked: an existing file (unless ``overwrite``) raises :class:`FileExistsError`, and two inputs that map to
    the same file (in this batch or an earlier one of this process) raise :class:`ValueError`. Outputs must have the
    input size times the model's ``scale``; another size raises :class:`ValueError`.

    Args:
        output_dir: folder for the files; ``None``: ``<trainer.log_dir>/predictions`` (the run folder).
        overwrite: replace files that already exist.
        subfolders: put each output key in its own folder (``out/fake_b/...``); ``None`` does so when the first
            batch's prediction has more than one key.

    Attributes:
        written: the files this process wrote in the current predict run, in order.
        output_dir: the folder in use (resolved when the predict loop starts).

    Example (config)::

        trainer:
          callbacks:
            - class_path: zoo.callbacks.PredictionWriter
              init_args: {output_dir: results/horse2zebra}
    """

    def __init__(self, output_dir: str | os.PathLike[str] | None = None, *, overwrite: bool = False,
                 subfolders: bool | None = None) -> None:
        super().__init__(write_interval="batch")
        self._requested_dir = None if output_dir is None else Path(output_dir)
        self.output_dir: Path | None = self._requested_dir
        self.overwrite = overwrite
        self.subfolders = subfolders
        self.written: list[Path] = []
        self._keys: tuple[str, ...] | None = None
        self._nested = False
        self._sources: dict[Path, str] = {}

    # ---------------------------------------------------------------- Lightning hooks

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "predict" or self._requested_dir is not None:
            return
        # trainer.log_dir broadcasts from rank zero, so it is read here, where every rank calls it
        root = trainer.log_dir or trainer.default_root_dir
        self.output_dir = Path(root) / "predictions"

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.output_dir is None:  # predict without setup (e.g. a callback attached by hand)
            self.output_dir = Path(trainer.default_root_dir) / "predictions"
        self.written = []
        self._keys = None
        self._sources = {}

    def write_on_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, prediction: Any,
                           batch_indices: Sequence[int] | None, batch: Any, batch_idx: int,
                           dataloader_idx: int) -> None:
        """Check every destination of the batch, then write its images."""
        outputs = self._outputs(prediction)
        if self._keys is None:
            self._keys = tuple(outputs)
            self._nested = self.subfolders if self.subfolders is not None else len(outputs) > 1
        elif self.subfolders is None and not self._nested and len(outputs) > 1:
            raise ValueError(f"predict batch {batch_idx} returned {sorted(outputs)} but the first batch only "
                             f"{list(self._keys)}; pass PredictionWriter(subfolders=True) to give each key a folder")
        batch = batch if isinstance(batch, dict) else {}
        rank_prefix = f"rank{trainer.global_rank}_" if trainer.world_size > 1 else ""
        scale = int(getattr(pl_module, "scale", 1))

        plan: list[tuple[Tensor, Path, str]] = []
        for key, value in outputs.items():
            side = _source_side(key)
            self._check_size(key, value, batch.get(f"real_{side}"), scale)
            names = self._names(batch, side, value.shape[0], f"{rank_prefix}{batch_idx}_", dataloader_idx)
            folder = self.output_dir / key if self._nested else self.output_dir
            for item, (name, source) in zip(value, names, strict=True):
                styles = item if value.dim() == 5 else item[None]
                suffixes = [".png"] if value.dim() == 4 else [f"_style{k}.png" for k in range(styles.shape[0])]
                for image, suffix in zip(styles, suffixes, strict=True):
                    plan.append((image, folder / (name + suffix), source))
        self._check_destinations(plan)
        for image, destination, _ in plan:
            self.written.append(save_image(image, destination))

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        count = torch.tensor(len(self.written), device=trainer.strategy.root_device)
        total = int(trainer.strategy.reduce(count, reduce_op="sum"))
        if trainer.is_global_zero:
            print(f"zoo: wrote {total} images to {self.output_dir}")

    # ---------------------------------------------------------------- helpers

    @staticmethod
    def _outputs(prediction: Any) -> dict[str, Tensor]:
        if isinstance(prediction, Tensor):
            return {"fake_b": prediction}
        if not isinstance(prediction, dict) or not prediction:
            raise TypeError(f"PredictionWriter: predict_step must return a dict of image tensors such as "
                            f"{{'fake_b': ...}}, got {type(prediction).__name__}")
        for key, value in prediction.items():
            if not isinstance(value, Tensor) or value.dim() not in (4, 5):
                shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
                raise ValueError(f"PredictionWriter: prediction '{key}' must be a (B, C, H, W) or (B, K, C, H, W) "
                                 f"tensor in [0, 1], got {shape}")
        return prediction

    @staticmethod
    def _check_size(key: str, value: Tensor, source: Any, scale: int) -> None:
        if not isinstance(source, Tensor) or source.dim() != 4:
            return
        expected = (source.shape[-2] * scale, source.shape[-1] * scale)
        if tuple(value.shape[-2:]) != expected:
            raise ValueError(f"PredictionWriter: '{key}' is {tuple(value.shape[-2:])} but its input is "
                             f"{tuple(source.shape[-2:])} x scale {scale} = {expected}; predict_step must translate "
                             "at the input size (zoo.methods._common.predict_outputs pads and crops back)")

    @staticmethod
    def _names(batch: dict[str, Any], side: str, size: int, fallback: str,
               dataloader_idx: int) -> list[tuple[str, str]]:
        """(destination stem relative to the output folder, input description) of each item."""
        relpaths, paths = batch.get(f"relpath_{side}"), batch.get(f"path_{side}")
        for field, values in ((f"relpath_{side}", relpaths), (f"path_{side}", paths)):
            if values is not None and len(values) != size:
                raise ValueError(f"PredictionWriter: batch '{field}' has {len(values)} entries for {size} images")
        names = []
        for i in range(size):
            if relpaths is not None:
                relative = PurePath(relpaths[i])
                if relative.is_absolute() or ".." in relative.parts:
                    raise ValueError(f"PredictionWriter: relpath_{side} '{relpaths[i]}' must be relative to the "
                                     "input folder, without '..'")
                names.append((str(relative.with_suffix("")), str(paths[i] if paths is not None else relpaths[i])))
            elif paths is not None:
                names.append((PurePath(paths[i]).stem, str(paths[i])))
            else:
                prefix = f"dataloader{dataloader_idx}_" if dataloader_idx else ""
                names.append((f"{prefix}{fallback}{i}", f"item {i} of batch {fallback.rstrip('_')}"))
        return names

    def _check_destinations(self, plan: list[tuple[Tensor, Path, str]]) -> None:
        sources = dict(self._sources)
        for _, destination, source in plan:
            if destination in sources:
                raise ValueError(f"inputs '{sources[destination]}' and '{source}' would both be written to "
                                 f"'{destination}'; rename one of them")
            if not self.overwrite and destination.exists():
                raise FileExistsError(f"'{destination}' already exists; pass --overwrite to replace it, or choose "
                                      "another output folder")
            sources[destination] = source
        self._sources = sources
