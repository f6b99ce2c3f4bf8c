"""zoo's Trainer: training length and checkpoint cadence in iterations, and defaults for GANs.

The papers count training length in *iterations*: one batch, whatever number of optimizer steps it takes. Lightning's
``max_steps`` and ``global_step`` count *optimizer steps*, two per iteration for a G + D GAN (and methods may even step
a different number of optimizers from one iteration to the next). :class:`ZooTrainer` therefore takes ``max_steps``
to mean iterations: it gives Lightning ``max_steps=-1`` and stops training itself once that many training batches have
completed, a count that is saved in every checkpoint and restored on resume. :class:`IterationCheckpoint` saves every
``every_n_iterations`` batches likewise.

Defaults (each can be overridden in the ``trainer:`` section of a config):

- ``accelerator="auto"``; ``strategy="auto"``, except that with more than one device (or node) it becomes
  ``"ddp_find_unused_parameters_true"``: a GAN's discriminator step never touches the generator, which plain DDP
  rejects on the first backward.
- a rich progress bar, an :class:`IterationCheckpoint` (``last.ckpt`` plus the latest epoch/iteration checkpoint) and
  an :class:`~zoo.callbacks.ImageGrid` of sample translations, unless the callbacks already contain one of their kind.
- freed CPU memory stays in the process heap for reuse (``keep_freed_memory``), so large tensors do not page-fault
  on every allocation.
- a fresh run folder ``<default_root_dir>/<run_name>/version_<N>`` per run (``default_root_dir`` defaults to
  ``runs``); the checkpoints, the resolved config, the sample grids and the logs all go there.
- logging to Weights & Biases in offline mode (``WANDB_MODE=offline`` unless the environment already sets
  ``WANDB_MODE``): no account and no network; ``wandb sync <run folder>/wandb/offline-run-*`` uploads later.
  ``logger: csv`` or ``logger: tensorboard`` pick the other built-in loggers in the same run folder, any Lightning
  logger can be given with ``class_path``, and ``logger: false`` turns logging off.

In a config (``zoo fit --config ...``)::

    trainer:
      max_steps: 200000          # iterations
      logger: csv
      callbacks:
        - class_path: zoo.callbacks.IterationCheckpoint
          init_args: {every_n_iterations: 10000}
        - class_path: zoo.callbacks.ImageGrid
          init_args: {every_n_iterations: 500, num_images: 8}
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.accelerators import Accelerator
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar, RichProgressBar
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger, WandbLogger
from lightning.pytorch.strategies import Strategy
from lightning.pytorch.utilities.rank_zero import rank_zero_info, rank_zero_only, rank_zero_warn

from zoo.utils.memory import keep_freed_memory as _keep_freed_memory

__all__ = ["ZooTrainer", "IterationCheckpoint", "completed_iterations", "GAN_DDP_STRATEGY", "DEFAULT_ROOT_DIR"]

#: Strategy used when ``strategy="auto"`` resolves to more than one process.
GAN_DDP_STRATEGY = "ddp_find_unused_parameters_true"
#: Parent folder of the run folders when ``default_root_dir`` is not given.
DEFAULT_ROOT_DIR = "runs"

LoggerArg = Logger | Iterable[Logger] | bool | Literal["wandb", "csv", "tensorboard"] | None


def completed_iterations(trainer: Trainer) -> int:
    """Number of training batches completed so far (restored on resume).

    Works for any Trainer: a :class:`ZooTrainer` counts them itself (callbacks see the current batch counted from
    ``on_train_batch_end`` on); for a plain Lightning Trainer this falls back to Lightning's batch progress.
    """
    tracker = getattr(trainer, "_zoo_tracker", None)
    if tracker is not None:
        return tracker.iterations
    return int(trainer.fit_loop.epoch_loop.batch_progress.total.processed)


class _IterationTracker(Callback):
    """Counts completed training batches, stops training at the limit, and remembers the run folder.

    The count is this callback's checkpoint state. ZooTrainer puts it first and Lightning runs checkpoint callbacks
    last, so every other callback sees batch ``n`` counted in ``on_train_batch_end``, and a checkpoint written then
    records ``n``.
    """

    def __init__(self, max_iterations: int | None) -> None:
        self.max_iterations = max_iterations
        self.iterations = 0
        self.log_dir: str | None = None

    def _limit_reached(self) -> bool:
        return self.max_iterations is not None and self.iterations >= self.max_iterations

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        self.log_dir = trainer.log_dir  # a collective call under DDP: made here, on every rank

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._limit_reached():
            rank_zero_info(
                f"zoo: the checkpoint already completed {self.iterations} of {self.max_iterations} "
                "iterations; nothing left to train"
            )
            trainer.should_stop = True

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self.iterations += 1
        if self._limit_reached():
            trainer.should_stop = True

    def state_dict(self) -> dict[str, Any]:
        return {"iterations": self.iterations}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.iterations = int(state_dict["iterations"])


class IterationCheckpoint(ModelCheckpoint):
    """A ``ModelCheckpoint`` whose step cadence counts training iterations (batches), not optimizer steps.

    With ``every_n_iterations`` set, a checkpoint is written after every ``every_n_iterations``-th batch and once more
    when training ends; without it, Lightning's default applies (once per epoch or validation). Either way, when
    training stops after a batch (the iteration limit), the checkpoint is written right after that batch, so that
    resuming from it continues with the next batch of the same epoch. Filenames may use ``{iteration}`` as well as
    Lightning's ``{epoch}`` and ``{step}`` (optimizer steps).

    Args:
        every_n_iterations: save after every this many training batches; ``None`` keeps Lightning's epoch cadence.
        dirpath: folder of the checkpoint files; defaults to ``<run folder>/checkpoints``.
        filename: file name pattern without suffix; defaults to ``"{epoch}-{iteration}"``.
        save_last: also keep ``last.ckpt`` (the file to resume from).
        **kwargs: any other ``lightning.pytorch.callbacks.ModelCheckpoint`` argument (``monitor``, ``save_top_k``, ...).
    """

    def __init__(
        self,
        *,
        every_n_iterations: int | None = None,
        dirpath: str | Path | None = None,
        filename: str | None = "{epoch}-{iteration}",
        save_last: bool | Literal["link"] | None = True,
        **kwargs: Any,
    ) -> None:
        if every_n_iterations is not None:
            if every_n_iterations < 1:
                raise ValueError(f"every_n_iterations must be a positive int or None, got {every_n_iterations}")
            clashing = [k for k in ("every_n_train_steps", "train_time_interval") if kwargs.get(k) is not None]
            if clashing:
                raise ValueError(f"every_n_iterations cannot be combined with {', '.join(clashing)}")
            # an explicit 0 switches off Lightning's own step trigger (and its default once-per-epoch saving)
            kwargs["every_n_train_steps"] = 0
        super().__init__(dirpath=dirpath, filename=filename, save_last=save_last, **kwargs)
        self.every_n_iterations = every_n_iterations
        self._last_batch_epoch: int | None = None
        self._saving_at_train_end = False

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self.dirpath is None:
            # Lightning would pick <save_dir>/<project>/<run id>/checkpoints for wandb; keep everything in the run dir
            self.dirpath = os.path.join(trainer.log_dir, "checkpoints")
        super().setup(trainer, pl_module, stage)

    def _monitor_candidates(self, trainer: Trainer) -> dict[str, torch.Tensor]:
        candidates = super()._monitor_candidates(trainer)
        candidates["iteration"] = torch.tensor(completed_iterations(trainer))
        if self._saving_at_train_end and self._last_batch_epoch is not None:
            # after training Lightning has already counted the stopped epoch as done; name the file after the epoch
            # the last batch belonged to, as a checkpoint written during that epoch would be
            candidates["epoch"] = torch.tensor(self._last_batch_epoch)
        return candidates

    def _save_now(self, trainer: Trainer) -> None:
        if self._should_skip_saving_checkpoint(trainer):
            return
        candidates = self._monitor_candidates(trainer)
        if self.monitor is not None and self.monitor not in candidates:
            return  # the monitored metric is logged only by validation; Lightning saves at validation end then
        self._save_topk_checkpoint(trainer, candidates)
        self._save_last_checkpoint(trainer, candidates)

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        self._last_batch_epoch = trainer.current_epoch
        due = bool(self.every_n_iterations) and completed_iterations(trainer) % self.every_n_iterations == 0
        # When training stops after this batch (iteration limit, max_time), save now rather than at the epoch's end:
        # Lightning counts a stopped epoch as finished, so a later checkpoint would resume at the next epoch's start
        # instead of at the next batch.
        if due or trainer.should_stop:
            self._save_now(trainer)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        super().on_train_end(trainer, pl_module)
        if self.every_n_iterations:
            self._saving_at_train_end = True
            try:
                self._save_now(trainer)
            finally:
                self._saving_at_train_end = False


class _ProgressBar(RichProgressBar):
    """Rich progress bar that shows completed/total iterations and no epoch total when only iterations bound it."""

    def _get_train_description(self, current_epoch: int) -> str:
        description = f"Epoch {current_epoch}"
        if self.trainer.max_epochs is not None and self.trainer.max_epochs > 0:
            description += f"/{self.trainer.max_epochs - 1}"
        return f"{description:{len(self.validation_description)}}"

    def get_metrics(self, trainer: Trainer, pl_module: LightningModule) -> dict[str, int | str | float | dict]:
        metrics = super().get_metrics(trainer, pl_module)
        limit = getattr(trainer, "max_iterations", None)
        metrics["iter"] = f"{completed_iterations(trainer)}/{limit}" if limit else completed_iterations(trainer)
        return metrics


def _num_processes(accelerator: str | Accelerator, devices: list[int] | str | int, num_nodes: int) -> int:
    """How many training processes Lightning will start for these arguments (before it builds anything)."""
    if num_nodes > 1:
        return num_nodes
    if isinstance(devices, (list, tuple)):
        return len(devices)
    if isinstance(devices, str) and devices not in ("auto", "-1"):
        parts = [p for p in devices.split(",") if p.strip()]
        return len(parts) if len(parts) > 1 or devices.endswith(",") else int(devices)
    if isinstance(devices, int) and devices > 0:
        return devices
    # "auto" or -1: Lightning takes every visible GPU when it runs on GPUs, and one process on CPU
    name = accelerator if isinstance(accelerator, str) else type(accelerator).__name__.lower()
    if any(key in name for key in ("auto", "gpu", "cuda")) and torch.cuda.is_available():
        return torch.cuda.device_count()
    return 1


def _new_run_dir(root: Path, name: str) -> tuple[Path, int]:
    """``root/name/version_<N>`` with the next free N; created on global rank 0 only (other ranks get rank 0's path
    through ``trainer.log_dir``, which Lightning broadcasts)."""
    parent = root / name
    while True:
        existing = [int(p.name.split("_", 1)[1]) for p in parent.glob("version_*") if p.name.split("_", 1)[1].isdigit()]
        version = max(existing, default=-1) + 1
        run_dir = parent / f"version_{version}"
        if rank_zero_only.rank != 0:
            return run_dir, version
        parent.mkdir(parents=True, exist_ok=True)
        try:
            run_dir.mkdir()  # atomic: two runs started together cannot both get this version
        except FileExistsError:
            continue
        return run_dir, version


class ZooTrainer(Trainer):
    """A Lightning Trainer that counts training length in iterations and knows GAN defaults.

    Every argument of ``lightning.pytorch.Trainer`` is accepted; the ones below differ.

    Args:
        max_steps: number of training iterations (batches), as the papers count them; -1 for no limit. Lightning's
            own ``max_steps`` (optimizer steps) is not used.
        max_epochs: epoch limit; with ``max_steps`` set and no ``max_epochs`` the iterations alone decide.
        accelerator: ``"auto"`` picks a GPU when there is one.
        strategy: ``"auto"`` becomes ``"ddp_find_unused_parameters_true"`` with more than one device.
        devices: devices per node.
        num_nodes: number of nodes.
        logger: ``None``/``True``/``"wandb"`` for offline Weights & Biases, ``"csv"``, ``"tensorboard"``, ``False``
            for none, or Lightning logger objects (which keep their own folders).
        callbacks: extra callbacks; an ``IterationCheckpoint``, ``ImageGrid`` and ``RichProgressBar`` are added unless
            one of their kind is given or switched off.
        default_root_dir: parent of the run folders (``runs``).
        run_name: folder under ``default_root_dir`` grouping the runs of one experiment; ``zoo fit`` sets it to the
            method's registered name.
        enable_checkpointing: add the default :class:`IterationCheckpoint`.
        enable_progress_bar: add the default rich progress bar.
        enable_image_grid: add the default :class:`~zoo.callbacks.ImageGrid`.
        fast_dev_run: run this many batches (``True``: 1) of each loop, without logs or checkpoints.
        keep_freed_memory: keep freed CPU memory in the process heap for reuse instead of returning large blocks to
            the system (:func:`zoo.utils.memory.keep_freed_memory`; glibc only, process-wide). Large tensors then
            stop page-faulting on every allocation, which makes CPU training iterations 15-25% faster; the process
            keeps its peak heap size.
        **kwargs: any other ``lightning.pytorch.Trainer`` argument (``precision``, ``val_check_interval``, ...).
    """

    def __init__(
        self,
        *,
        max_steps: int = -1,
        max_epochs: int | None = None,
        accelerator: str | Accelerator = "auto",
        strategy: str | Strategy = "auto",
        devices: list[int] | str | int = "auto",
        num_nodes: int = 1,
        logger: LoggerArg = None,
        callbacks: list[Callback] | Callback | None = None,
        default_root_dir: str | Path | None = None,
        run_name: str | None = None,
        enable_checkpointing: bool | None = None,
        enable_progress_bar: bool | None = None,
        enable_image_grid: bool = True,
        fast_dev_run: int | bool = False,
        keep_freed_memory: bool = True,
        **kwargs: Any,
    ) -> None:
        from zoo.callbacks.image_grid import ImageGrid  # the callbacks package imports this module

        if keep_freed_memory:
            _keep_freed_memory()

        if max_steps < -1:
            raise ValueError(f"trainer.max_steps must be -1 (no limit) or a number of iterations >= 0, got {max_steps}")
        max_iterations = None if max_steps == -1 else max_steps
        if max_iterations is not None and max_epochs is None:
            max_epochs = -1  # otherwise Lightning would stop after its default of 1000 epochs

        if strategy == "auto" and _num_processes(accelerator, devices, num_nodes) > 1:
            strategy = GAN_DDP_STRATEGY

        root = Path(default_root_dir if default_root_dir is not None else DEFAULT_ROOT_DIR)
        self.run_name = run_name or "zoo"
        logger, run_dir = self._build_logger(logger, root, self.run_name, managed=not fast_dev_run)

        callbacks = [callbacks] if isinstance(callbacks, Callback) else list(callbacks or [])
        self._zoo_tracker = _IterationTracker(max_iterations)
        callbacks.insert(0, self._zoo_tracker)  # first, so every other callback sees the batch counted
        if enable_image_grid and not any(isinstance(c, ImageGrid) for c in callbacks):
            callbacks.append(ImageGrid())
        if enable_checkpointing is not False and not any(isinstance(c, ModelCheckpoint) for c in callbacks):
            callbacks.append(IterationCheckpoint())
        if enable_progress_bar is not False and not any(isinstance(c, ProgressBar) for c in callbacks):
            callbacks.append(_ProgressBar())

        super().__init__(
            max_steps=-1,
            max_epochs=max_epochs,
            accelerator=accelerator,
            strategy=strategy,
            devices=devices,
            num_nodes=num_nodes,
            logger=logger,
            callbacks=callbacks,
            default_root_dir=run_dir if run_dir is not None else root,
            enable_checkpointing=enable_checkpointing,
            enable_progress_bar=enable_progress_bar,
            fast_dev_run=fast_dev_run,
            **kwargs,
        )
        if self.fast_dev_run:
            # Lightning bounds fast_dev_run by optimizer steps as well, which would halve the batches of a GAN;
            # limit_train_batches and max_epochs=1 (set by Lightning) already bound it in batches
            self.fit_loop.epoch_loop.max_steps = -1

    @staticmethod
    def _build_logger(logger: LoggerArg, root: Path, name: str, *, managed: bool) -> tuple[Any, Path | None]:
        """The logger(s) to hand to Lightning, and the run folder when zoo chooses it (``None`` otherwise)."""
        user_built = logger is not None and not isinstance(logger, (str, bool))
        if not managed or user_built:
            return logger, None  # fast_dev_run (Lightning disables logging) or loggers that keep their own folders
        run_dir, version = _new_run_dir(root, name)
        if logger is False:
            return False, run_dir
        kind = "wandb" if logger in (None, True) else logger
        if kind == "wandb":
            try:
                import wandb  # noqa: F401
            except ImportError:
                rank_zero_warn("zoo: wandb is not installed; logging to CSV instead")
                kind = "csv"
        if kind == "wandb":
            os.environ.setdefault("WANDB_MODE", "offline")
            os.environ.setdefault("WANDB_SILENT", "true")
            project = os.environ.get("WANDB_PROJECT", "zoo")
            return WandbLogger(save_dir=str(run_dir), project=project, name=f"{name}-version_{version}"), run_dir
        if kind == "csv":
            return CSVLogger(save_dir=str(root), name=name, version=version), run_dir
        if kind == "tensorboard":
            return TensorBoardLogger(save_dir=str(root), name=name, version=version), run_dir
        raise ValueError(f"trainer.logger must be 'wandb', 'csv', 'tensorboard', a bool or a Logger, got {logger!r}")

    @property
    def iterations(self) -> int:
        """Training iterations (batches) completed so far, including those before a resume."""
        return self._zoo_tracker.iterations

    @property
    def max_iterations(self) -> int | None:
        """The iteration limit given as ``max_steps``; ``None`` when unlimited."""
        return self._zoo_tracker.max_iterations

    @property
    def run_dir(self) -> Path | None:
        """This run's folder (``trainer.log_dir`` as seen when training was set up); ``None`` before that."""
        return Path(self._zoo_tracker.log_dir) if self._zoo_tracker.log_dir else None
