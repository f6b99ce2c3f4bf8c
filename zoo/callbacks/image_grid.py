"""Sample translations of a fixed batch, written as PNG grids and sent to image-capable loggers.

The callback depends only on the inference contract of zoo's methods: ``pl_module.directions`` and
``pl_module.translate(images, direction=..., seed=...)`` on [0, 1] images (exemplar-guided methods also get the other
domain's images as ``exemplar`` and the batch's masks; methods with ``ALIGNED_INPUTS``, such as pix2pixHD's instance
maps, get those batch entries), and ``pl_module.preview(images, direction)`` to draw the inputs (label maps in
colour). It never calls ``forward`` or touches the networks, so every method gets sample grids for free.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.rank_zero import rank_zero_warn
from torch import Tensor

from zoo.utils.progress import completed_iterations
from zoo.utils.tiling import pad_to_multiple, translate_any_size

__all__ = ["ImageGrid", "make_translation_grid"]


def _to_rgb(images: Tensor) -> Tensor:
    if images.shape[1] == 3:
        return images
    if images.shape[1] == 1:
        return images.expand(-1, 3, -1, -1)
    return images[:, :3]  # more than three channels: show the first three


def make_translation_grid(inputs: Tensor, outputs: Tensor, *, padding: int = 2) -> Tensor:
    """One image with the inputs in the top row and their translations in the row below.

    Grayscale images are shown as RGB; inputs are resized (nearest) to the output size when a model changes the
    resolution (super-resolution).

    Args:
        inputs: batch in [0, 1].
        outputs: its translations in [0, 1].
        padding: pixels of white between the tiles.

    Returns:
        The grid in [0, 1], float32 on the CPU.

    Shape:
        - inputs: ``(N, C_in, H, W)``
        - outputs: ``(N, C_out, H', W')``
        - output: ``(3, 2 * H' + 3 * padding, N * W' + (N + 1) * padding)``
    """
    from torchvision.utils import make_grid

    inputs = _to_rgb(inputs.detach().float().cpu())
    outputs = _to_rgb(outputs.detach().float().cpu())
    if inputs.shape[-2:] != outputs.shape[-2:]:
        inputs = F.interpolate(inputs, size=outputs.shape[-2:], mode="nearest")
    tiles = torch.cat([inputs, outputs]).clamp(0, 1)
    return make_grid(tiles, nrow=inputs.shape[0], padding=padding, pad_value=1.0)


def _aligned_inputs(pl_module: Any) -> dict[str, str]:
    """``pl_module.ALIGNED_INPUTS`` (``translate`` keyword -> batch key), empty for modules without any."""
    return dict(getattr(pl_module, "ALIGNED_INPUTS", None) or {})


def _preview(pl_module: Any, inputs: Tensor, direction: str) -> Tensor:
    """The inputs as ``pl_module.preview`` draws them (label maps in colour); the inputs themselves without one."""
    preview = getattr(pl_module, "preview", None)
    if not callable(preview):
        return inputs
    with torch.no_grad():
        return preview(inputs, direction)


def _first_loader(loaders: Any) -> Any:
    if isinstance(loaders, (list, tuple)):
        return loaders[0] if loaders else None
    if isinstance(loaders, dict):
        return next(iter(loaders.values()), None)
    return loaders


class ImageGrid(Callback):
    """Translate a fixed batch now and then; save the grids under ``<run folder>/images/`` and log them.

    The batch is taken once, on global rank zero: the first ``num_images`` validation images (a zoo DataModule's
    ``fixed_batch``), else the first validation batch, else the first training batch when there is no validation
    data. Each direction in ``pl_module.directions`` gives one grid (inputs on top, outputs
    below), written as ``images/<direction>_iter<iteration>.png`` and sent to each attached logger that takes images
    (Weights & Biases ``log_image``, TensorBoard ``add_image``; other loggers, such as CSV, only get the PNG files).
    Modules without ``translate`` and ``directions`` are skipped with a warning.

    Args:
        every_n_iterations: render after every this many training batches; ``None`` or 0 for never.
        at_validation_end: render after each validation run during training.
        at_train_end: render once more when training ends.
        num_images: at most this many images of the batch are shown.
        seed: passed to ``translate`` so stochastic methods show the same samples every time.
        dirname: folder under the run folder for the PNG files.
    """

    def __init__(
        self,
        *,
        every_n_iterations: int | None = 1000,
        at_validation_end: bool = True,
        at_train_end: bool = True,
        num_images: int = 4,
        seed: int = 0,
        dirname: str = "images",
    ) -> None:
        if num_images < 1:
            raise ValueError(f"ImageGrid: num_images must be >= 1, got {num_images}")
        self.every_n_iterations = every_n_iterations
        self.at_validation_end = at_validation_end
        self.at_train_end = at_train_end
        self.num_images = num_images
        self.seed = seed
        self.dirname = dirname
        self.image_dir: Path | None = None
        self._batch: dict[str, Tensor] | None = None
        self._last_iteration: int | None = None
        self._warned = False
        #: paths of the PNG files written so far
        self.written: list[Path] = []

    # --------------------------------------------------------------------------------------------- the fixed batch

    def _keep(self, batch: Any, pl_module: LightningModule | None = None) -> None:
        if not isinstance(batch, dict):
            return
        aligned = set(_aligned_inputs(pl_module).values())
        self._batch = {
            key: value[: self.num_images].detach().to("cpu", copy=True)
            for key, value in batch.items()
            if isinstance(value, Tensor) and (key.startswith(("real_", "mask_")) or key in aligned)
        }

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage == "fit":
            self.image_dir = Path(trainer.log_dir or trainer.default_root_dir) / self.dirname  # collective: all ranks

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._batch is not None or not trainer.is_global_zero:
            return
        fixed_batch = getattr(trainer.datamodule, "fixed_batch", None)  # zoo DataModules: the first val images
        if callable(fixed_batch):  # fixed images are wanted even when validation is switched off
            try:
                self._keep(fixed_batch(self.num_images), pl_module)
            except (NotImplementedError, ValueError, OSError, KeyError, IndexError):
                pass  # no validation split: fall back to the loaders
            if self._batch:
                return
        loader = _first_loader(trainer.val_dataloaders)
        if loader is not None and trainer.limit_val_batches != 0:
            try:
                self._keep(next(iter(loader)), pl_module)
            except StopIteration:
                pass

    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        if self._batch is None and trainer.is_global_zero:
            self._keep(batch, pl_module)

    # ------------------------------------------------------------------------------------------------- when to draw

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self.every_n_iterations and completed_iterations(trainer) % self.every_n_iterations == 0:
            self.render(trainer, pl_module)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.at_validation_end and trainer.state.fn == TrainerFn.FITTING and not trainer.sanity_checking:
            self.render(trainer, pl_module)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.at_train_end:
            self.render(trainer, pl_module)

    # ---------------------------------------------------------------------------------------------------- drawing

    def _warn_once(self, message: str) -> None:
        if not self._warned:
            rank_zero_warn(f"ImageGrid: {message}")
            self._warned = True

    def render(self, trainer: Trainer, pl_module: LightningModule) -> list[Path]:
        """Translate the fixed batch in every direction now; returns the PNG files written (none off rank zero)."""
        if not trainer.is_global_zero or trainer.fast_dev_run or self._batch is None or self.image_dir is None:
            return []
        iteration = completed_iterations(trainer)
        if iteration == self._last_iteration:
            return []
        directions = getattr(pl_module, "directions", None)
        if not directions or not callable(getattr(pl_module, "translate", None)):
            self._warn_once(f"{type(pl_module).__name__} has no `translate`/`directions`; no sample grids")
            return []
        self._last_iteration = iteration
        # the logging step Lightning uses for scalars (batches), so images and curves share one axis
        step = int(trainer.fit_loop.epoch_loop._batches_that_stepped)
        written = []
        was_training = pl_module.training
        # the dtype the model runs in (float64 under precision="64-true"), as Lightning converts its own batches
        self._batch = trainer.precision_plugin.convert_input(self._batch)
        try:
            for direction in directions:
                source = f"real_{direction.split('2', 1)[0]}"
                if source not in self._batch:
                    self._warn_once(f"the batch has no {source!r} for direction {direction!r}")
                    continue
                inputs = ((self._batch[source].to(pl_module.device) + 1) / 2).clamp(0, 1)
                conditions = self._conditions(pl_module, direction)
                if conditions is None:
                    continue
                masks = conditions.pop("masks")
                outputs = translate_any_size(pl_module, inputs, direction=direction, seed=self.seed, masks=masks,
                                             **conditions)
                grid = make_translation_grid(_preview(pl_module, inputs, direction), outputs)
                written.append(self._save(grid, direction, iteration))
                self._log(trainer, f"samples/{direction}", grid, step)
        finally:
            pl_module.train(was_training)
        self.written.extend(written)
        return written

    def _conditions(self, pl_module: LightningModule, direction: str) -> dict[str, Any] | None:
        """The aligned inputs of ``pl_module.ALIGNED_INPUTS`` the batch has (as ``masks``: padded like the images);
        for exemplar-guided methods (``requires_exemplar``) also the other domain's images of the batch as exemplars,
        and the batch's masks (``mask_a`` / ``mask_b``) when it has them. None when the batch lacks what is needed."""
        assert self._batch is not None
        conditions: dict[str, Any] = {"masks": {
            keyword: self._batch[key].to(pl_module.device)
            for keyword, key in _aligned_inputs(pl_module).items() if key in self._batch
        }}
        if not getattr(pl_module, "requires_exemplar", False):
            return conditions
        source, target = direction.split("2", 1)
        if f"real_{target}" not in self._batch:
            self._warn_once(f"the batch has no 'real_{target}' to use as exemplars for direction {direction!r}")
            return None
        multiple = int(getattr(pl_module, "size_multiple", 1))
        exemplar = ((self._batch[f"real_{target}"].to(pl_module.device) + 1) / 2).clamp(0, 1)
        conditions["exemplar"] = pad_to_multiple(exemplar, multiple)[0]
        if f"mask_{source}" in self._batch:
            conditions["masks"]["mask"] = self._batch[f"mask_{source}"].to(pl_module.device).float()
        if f"mask_{target}" in self._batch:
            conditions["exemplar_mask"] = pad_to_multiple(self._batch[f"mask_{target}"].to(pl_module.device).float(),
                                                          multiple)[0]
        return conditions

    def _save(self, grid: Tensor, direction: str, iteration: int) -> Path:
        from torchvision.utils import save_image

        assert self.image_dir is not None
        self.image_dir.mkdir(parents=True, exist_ok=True)
        path = self.image_dir / f"{direction}_iter{iteration:07d}.png"
        save_image(grid, path)
        return path

    def _log(self, trainer: Trainer, key: str, grid: Tensor, step: int) -> None:
        for logger in trainer.loggers:
            try:
                if isinstance(logger, WandbLogger):
                    logger.log_image(key=key, images=[grid], step=step)
                elif isinstance(logger, TensorBoardLogger):
                    logger.experiment.add_image(key, grid, global_step=step)
            except Exception as error:  # a logging hiccup must not end a long training run
                rank_zero_warn(f"ImageGrid: could not log {key!r} to {type(logger).__name__}: {error}")
