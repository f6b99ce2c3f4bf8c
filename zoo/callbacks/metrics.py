"""Translation metrics (FID, KID, PSNR, ...) on the validation images now and then during training.

:class:`MetricsCallback` translates the validation images with the model being trained, feeds the translations to
:class:`~zoo.metrics.translation.TranslationMetrics` and sends the values to every logger of the trainer. Like
:class:`~zoo.callbacks.ImageGrid` it relies only on zoo's inference contract (``pl_module.directions`` and
``pl_module.translate``, through :func:`~zoo.metrics.translation.translate_for_metrics`).

In a config::

    trainer:
      callbacks:
        - class_path: zoo.callbacks.MetricsCallback
          init_args: {metrics: [fid, kid], every_n_iterations: 20000, max_images: 1000}
"""

from __future__ import annotations

import time
from typing import Any, Literal

import torch
from lightning.fabric.utilities.apply_func import move_data_to_device
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities.rank_zero import rank_zero_info, rank_zero_warn
from torch.utils.data import DataLoader, Subset

from zoo.callbacks.image_grid import _first_loader
from zoo.metrics.features import ResizeMode
from zoo.metrics.lpips import LPIPSNet
from zoo.metrics.translation import TranslationMetrics, parse_metric_names, translate_for_metrics
from zoo.utils.progress import completed_iterations
from zoo.weights import WeightsUnavailableError

__all__ = ["MetricsCallback"]

#: Metrics that share one feature network (built once for the group); the weights of a group are resolved together.
_FEATURE_NETWORK_GROUPS: tuple[tuple[str, ...], ...] = (("fid", "kid"), ("fd_dinov2",), ("lpips",),
                                                         ("miou", "pixel_accuracy"))


def _group_metric_names(names: tuple[str, ...]) -> list[tuple[str, ...]]:
    """``names`` split by the feature network they need; metrics without one (PSNR, SSIM) form the last group."""
    groups = [tuple(n for n in names if n in group) for group in _FEATURE_NETWORK_GROUPS]
    networkless = tuple(n for n in names if not any(n in group for group in _FEATURE_NETWORK_GROUPS))
    return [group for group in (*groups, networkless) if group]


class MetricsCallback(Callback):
    """Compute translation metrics on the validation set every ``every_n_iterations`` and log them.

    Each time, the model (in eval mode, without gradients; its train mode is restored afterwards) translates the first
    ``max_images`` items of the trainer's validation data (the first validation loader) in each direction, and
    :class:`~zoo.metrics.translation.TranslationMetrics` compares the translations with the other side of the same
    items: the real images of the target domain for FID/KID/FD-DINOv2 and, when the DataModule is paired (paired and
    super-resolution data), the aligned targets for LPIPS/PSNR/SSIM. The values go to every logger of the trainer
    (Weights & Biases, TensorBoard, CSV) as ``metrics/<name>`` (``metrics/<direction>/<name>`` for models with two
    directions), with the iteration as step, and global rank zero prints one summary line.

    The validation data is what the DataModule serves: zoo's DataModules keep only ``val_size`` images (8 by
    default), too few for a meaningful FID; set ``val_size: null`` for the whole validation split and bound the cost
    with ``max_images`` (the trainer's ``limit_val_batches`` does not apply, except that 0 switches the metrics off).

    Under DDP each process translates every ``world_size``-th item (no item twice) and the metric states are gathered
    when the values are computed, so the numbers are those of one process over the same images; every process needs at
    least one item. Stochastic methods draw their styles with ``seed`` in every batch, so repeated evaluations of one
    model agree.

    Feature networks are built, and their weights resolved, when fitting starts (fail fast): a network whose weights
    are not available (offline, no file) either raises then (``on_missing_weights="error"``) or, by default, gives one
    warning naming the file, where it comes from and where to put it, and its metrics are left out while training goes
    on. Nothing is computed under ``fast_dev_run``, or by ``validate``/``test``/``predict``.

    Args:
        metrics: names from :data:`~zoo.metrics.translation.METRIC_NAMES`, comma-separated or as a list.
        every_n_iterations: compute after every this many training iterations (batches); ``None`` or 0 for never.
        at_train_end: compute once more when training ends, unless the last iteration was just measured.
        directions: directions to measure (default: all of ``pl_module.directions``).
        max_images: use at most this many validation items (the first ones); ``None`` for all.
        seed: seed of ``translate`` (multimodal styles).
        resize: resize protocol of the FID Inception (``"clean"``, ``"legacy-tensorflow"``, ``"legacy-pytorch"``).
        inception_weights: FID/KID Inception weights: ``"pytorch-fid"`` (the published file), a file path, or
            ``None`` (random weights: plumbing checks only, the numbers mean nothing).
        dinov2_weights: FD-DINOv2 weights: ``"timm"`` (the published file), a file path, or ``None`` (random).
        lpips_net: LPIPS backbone, ``"alex"`` or ``"vgg"``.
        kid_subset_size: images per KID subset (capped at the images available).
        crop_border: pixels removed at each border before PSNR/SSIM (super-resolution papers: the scale).
        y_channel: PSNR/SSIM on the BT.601 luma channel (super-resolution papers) instead of RGB.
        on_missing_weights: ``"warn"`` (leave those metrics out) or ``"error"`` (stop before training).
    """

    def __init__(
        self,
        *,
        metrics: str | list[str] = "fid,kid",
        every_n_iterations: int | None = 5000,
        at_train_end: bool = True,
        directions: list[str] | None = None,
        max_images: int | None = None,
        seed: int = 0,
        resize: ResizeMode = "clean",
        inception_weights: str | None = "pytorch-fid",
        dinov2_weights: str | None = "timm",
        lpips_net: LPIPSNet = "alex",
        kid_subset_size: int = 1000,
        crop_border: int = 0,
        y_channel: bool = False,
        on_missing_weights: Literal["warn", "error"] = "warn",
    ) -> None:
        if every_n_iterations is not None and every_n_iterations < 0:
            raise ValueError(f"MetricsCallback: every_n_iterations must be >= 0 or None, got {every_n_iterations}")
        if max_images is not None and max_images < 1:
            raise ValueError(f"MetricsCallback: max_images must be >= 1 or None, got {max_images}")
        if on_missing_weights not in ("warn", "error"):
            raise ValueError(f"MetricsCallback: on_missing_weights must be 'warn' or 'error', got "
                             f"{on_missing_weights!r}")
        self.metric_names = parse_metric_names(metrics)
        self.every_n_iterations = every_n_iterations
        self.at_train_end = at_train_end
        self.directions = tuple(directions) if directions else None
        self.max_images = max_images
        self.seed = seed
        self.on_missing_weights = on_missing_weights
        self.metric_options: dict[str, Any] = {
            "resize": resize, "inception_weights": inception_weights, "dinov2_weights": dinov2_weights,
            "lpips_net": lpips_net, "kid_subset_size": kid_subset_size, "crop_border": crop_border,
            "y_channel": y_channel,
        }
        self._metric_groups: list[TranslationMetrics] = []
        self._loader: DataLoader | None = None
        self._num_images = 0
        self._last_iteration: int | None = None
        self._warned: set[str] = set()
        #: ``{iteration: {key: value}}`` of every computation so far (the same on every process)
        self.history: dict[int, dict[str, float]] = {}

    # ------------------------------------------------------------------------------------------ feature networks

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "fit" or trainer.fast_dev_run or self._metric_groups:
            return
        unavailable: dict[tuple[str, ...], str] = {}
        for names in _group_metric_names(self.metric_names):
            try:
                metrics: TranslationMetrics | None = TranslationMetrics(names, **self.metric_options)
            except FileNotFoundError as error:  # zoo.weights' WeightsUnavailableError, or a missing file path
                metrics, unavailable[names] = None, str(error)
            # every process must hold the same metrics, or the states they gather would not match
            if trainer.strategy.reduce_boolean_decision(metrics is not None, all=True):
                assert metrics is not None
                self._metric_groups.append(metrics)
            else:
                unavailable.setdefault(names, "the weights are missing on another process")
        if not unavailable:
            return
        listed = "; ".join(f"{', '.join(names)}: {reason}" for names, reason in unavailable.items())
        if self.on_missing_weights == "error":
            raise WeightsUnavailableError(
                f"MetricsCallback: the feature network weights of {listed}\n(on_missing_weights='warn' trains "
                "without these metrics)"
            )
        rank_zero_warn(f"MetricsCallback: training without {listed}")

    # ---------------------------------------------------------------------------------------------- when to measure

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self.every_n_iterations and completed_iterations(trainer) % self.every_n_iterations == 0:
            self.measure(trainer, pl_module)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.at_train_end and completed_iterations(trainer) > 0:
            self.measure(trainer, pl_module)

    @property
    def state_key(self) -> str:  # several MetricsCallbacks (say FID rarely, PSNR often) keep apart in checkpoints
        return self._generate_state_key(metrics=self.metric_names, every_n_iterations=self.every_n_iterations,
                                        directions=self.directions)

    def state_dict(self) -> dict[str, Any]:
        return {"last_iteration": self._last_iteration}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._last_iteration = state_dict.get("last_iteration")

    # ---------------------------------------------------------------------------------------------------- measuring

    def _warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            rank_zero_warn(f"MetricsCallback: {message}")

    def _validation_loader(self, trainer: Trainer) -> DataLoader | None:
        """This process's share of the first ``max_images`` validation items, in the validation loader's batches."""
        if self._loader is not None:
            return self._loader
        loaders = trainer.val_dataloaders
        if loaders is None:  # validation has not run yet: ask where Lightning would get the loaders from
            source = trainer.fit_loop.epoch_loop.val_loop._data_source
            loaders = source.dataloader() if source.is_defined() else None
        loader = _first_loader(loaders)
        dataset = getattr(loader, "dataset", None)
        if loader is None or dataset is None or trainer.limit_val_batches == 0:
            self._warn_once("no validation data; no metrics")
            return None
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            self._warn_once("the validation data is not a map-style dataset (no len/indexing); no metrics")
            return None
        count = len(dataset) if self.max_images is None else min(len(dataset), self.max_images)
        if count < trainer.world_size:
            self._warn_once(f"{count} validation items for {trainer.world_size} processes; no metrics")
            return None
        share = Subset(dataset, range(trainer.global_rank, count, trainer.world_size))
        self._loader = DataLoader(share, batch_size=loader.batch_size or 1, shuffle=False,
                                  collate_fn=loader.collate_fn, num_workers=loader.num_workers,
                                  pin_memory=loader.pin_memory)
        self._num_images = count
        return self._loader

    def measure(self, trainer: Trainer, pl_module: LightningModule) -> dict[str, float]:
        """Compute the metrics on the validation images now and log them; returns ``{key: value}`` (the same on every
        process; empty when nothing was measured)."""
        iteration = completed_iterations(trainer)
        if trainer.fast_dev_run or not self._metric_groups or iteration == self._last_iteration:
            return {}
        model_directions = tuple(getattr(pl_module, "directions", ()))
        if not model_directions or not callable(getattr(pl_module, "translate", None)):
            self._warn_once(f"{type(pl_module).__name__} has no `translate`/`directions`; no metrics")
            return {}
        loader = self._validation_loader(trainer)
        if loader is None:
            return {}
        self._last_iteration = iteration
        paired = bool(getattr(trainer.datamodule, "paired", False))
        started = time.perf_counter()
        values: dict[str, float] = {}
        was_training = pl_module.training
        pl_module.eval()
        try:
            for direction in self.directions or model_directions:
                prefix = "metrics/" if len(model_directions) == 1 else f"metrics/{direction}/"
                for name, value in self._measure_direction(trainer, pl_module, loader, direction, paired).items():
                    values[prefix + name] = value
        finally:
            pl_module.train(was_training)
        self.history[iteration] = values
        if values and trainer.is_global_zero:
            self._log(trainer, values, iteration)
            summary = ", ".join(f"{key.removeprefix('metrics/')} {value:.4g}" for key, value in values.items())
            rank_zero_info(f"zoo: metrics at iteration {iteration} on {self._num_images} validation images: "
                           f"{summary} ({time.perf_counter() - started:.1f} s)")
        return values

    def _measure_direction(self, trainer: Trainer, pl_module: LightningModule, loader: DataLoader, direction: str,
                           paired: bool) -> dict[str, float]:
        for metrics in self._metric_groups:
            metrics.reset()
            metrics.to(pl_module.device)
        with torch.no_grad():
            for batch in loader:
                batch = trainer.precision_plugin.convert_input(move_data_to_device(batch, pl_module.device))
                inputs = translate_for_metrics(pl_module, batch, direction=direction, paired=paired, seed=self.seed)
                for metrics in self._metric_groups:
                    metrics.update(inputs.fake, real=inputs.real, target=inputs.target, labels=inputs.labels)
        values: dict[str, float] = {}
        for metrics in self._metric_groups:
            for name, need in metrics.missing().items():
                self._warn_once(f"no {name} for {direction}: the validation data has no {need}")
            values.update(metrics.compute())
            metrics.reset()  # frees the gathered features until the next time
        return values

    def _log(self, trainer: Trainer, values: dict[str, float], iteration: int) -> None:
        for logger in trainer.loggers:
            try:
                logger.log_metrics(values, step=iteration)
                logger.save()
            except Exception as error:  # a logging hiccup must not end a long training run
                rank_zero_warn(f"MetricsCallback: could not log to {type(logger).__name__}: {error}")
