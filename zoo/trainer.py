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
- ``keep_freed_memory=False``: a Trainer built from Python changes nothing process-wide. The ``zoo`` command turns it
  on (freed CPU memory stays in the process heap, so large tensors do not page-fault on every allocation).
- one folder per run, ``<default_root_dir>/<run_name>/version_<N>`` (``default_root_dir`` defaults to ``runs``); the
  checkpoints, the resolved config, the sample grids and the logs all go there. ``run_folder`` continues an existing
  run in its own folder and logger run (``zoo fit --ckpt_path`` sets it); under SLURM a requeued job finds its run
  folder (and Lightning its ``hpc_ckpt``) by the job id. A run that fails before its first iteration removes the
  folder it created.
- hyperparameters are logged as two namespaces, ``model/...`` and ``data/...``: a model and a DataModule may both
  have an argument of the same name (``image_size``) with different values.
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

import functools
import json
import os
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import torch
from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.accelerators import Accelerator, CPUAccelerator
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar, RichProgressBar
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger, WandbLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.strategies import Strategy
from lightning.pytorch.utilities.rank_zero import rank_zero_info, rank_zero_only, rank_zero_warn

from zoo.precision import PerOptimizerMixedPrecision
from zoo.utils.checkpoint_io import with_atomic_checkpoint_io
from zoo.utils.memory import keep_freed_memory as _keep_freed_memory
from zoo.utils.progress import completed_iterations

__all__ = [
    "ZooTrainer",
    "IterationCheckpoint",
    "completed_iterations",
    "find_run_folder",
    "GAN_DDP_STRATEGY",
    "DEFAULT_ROOT_DIR",
    "RUN_FILE",
]

#: Strategy used when ``strategy="auto"`` resolves to more than one process.
GAN_DDP_STRATEGY = "ddp_find_unused_parameters_true"
#: Parent folder of the run folders when ``default_root_dir`` is not given.
DEFAULT_ROOT_DIR = "runs"
#: File in every run folder that zoo creates: marks it as a run folder and records what resuming needs.
RUN_FILE = "run.json"

LoggerArg = Logger | Iterable[Logger] | bool | Literal["wandb", "csv", "tensorboard"] | None


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

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved_dir, saved_last = state_dict.get("dirpath"), state_dict.get("last_model_path")
        if (
            self.dirpath is not None
            and saved_dir is not None
            and saved_dir != self.dirpath
            and saved_last
            and os.path.isfile(os.path.join(self.dirpath, os.path.basename(saved_last)))
        ):
            # The folder holds this checkpoint's files, reached by another path (relative to another working folder,
            # or moved): the same run continued. Keep the record of its files, so that the run replaces its
            # last.ckpt instead of writing last-v1.ckpt beside it.
            def moved(path: Any) -> Any:
                return os.path.join(self.dirpath, os.path.basename(path)) if isinstance(path, str) and path else path

            state_dict = {
                **state_dict,
                "dirpath": self.dirpath,
                "last_model_path": moved(state_dict.get("last_model_path")),
                "best_model_path": moved(state_dict.get("best_model_path")),
                "kth_best_model_path": moved(state_dict.get("kth_best_model_path")),
                "best_k_models": {moved(k): v for k, v in (state_dict.get("best_k_models") or {}).items()},
            }
        super().load_state_dict(state_dict)

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


def _read_run_file(run_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((run_dir / RUN_FILE).read_text())
    except (OSError, ValueError):
        return {}


def _write_run_file(run_dir: Path, record: dict[str, Any]) -> None:
    temporary = run_dir / f".{RUN_FILE}.tmp"
    temporary.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(temporary, run_dir / RUN_FILE)


def find_run_folder(checkpoint: str | Path) -> Path | None:
    """The run folder a checkpoint belongs to (``<run>/checkpoints/<file>.ckpt`` with ``<run>/run.json``), else None."""
    run_dir = Path(checkpoint).parent.parent
    return run_dir if (run_dir / RUN_FILE).is_file() else None


def latest_run_folder(root: str | Path, name: str) -> Path | None:
    """The highest ``version_<N>`` under ``root/name`` that holds ``checkpoints/last.ckpt``, else None."""
    folders = Path(root, name).glob("version_*")
    candidates = [p for p in folders if p.name[8:].isdigit() and (p / "checkpoints" / "last.ckpt").is_file()]
    return max(candidates, key=lambda p: int(p.name[8:]), default=None)


def _slurm_run_dir(root: Path, name: str) -> Path | None:
    """The run folder an earlier start of this SLURM job created (a requeued job keeps its ``SLURM_JOB_ID``)."""
    job_id = os.environ.get("SLURM_JOB_ID")
    if not job_id:
        return None
    for run_dir in sorted((root / name).glob("version_*")):
        if _read_run_file(run_dir).get("slurm_job_id") == job_id:
            return run_dir
    return None


def _new_run_dir(root: Path, name: str) -> Path:
    """``root/name/version_<N>`` with the next free N, created with its run file on global rank 0 only (other ranks
    get rank 0's path through ``trainer.log_dir``, which Lightning broadcasts)."""
    parent = root / name
    while True:
        existing = [int(p.name[8:]) for p in parent.glob("version_*") if p.name[8:].isdigit()]
        run_dir = parent / f"version_{max(existing, default=-1) + 1}"
        if rank_zero_only.rank != 0:
            return run_dir
        parent.mkdir(parents=True, exist_ok=True)
        try:
            run_dir.mkdir()  # atomic: two runs started together cannot both get this version
        except FileExistsError:
            continue
        record = {"slurm_job_id": os.environ["SLURM_JOB_ID"]} if os.environ.get("SLURM_JOB_ID") else {}
        _write_run_file(run_dir, record)
        return run_dir


class _AppendingExperimentWriter(ExperimentWriter):
    """Lightning's CSV writer, except that an existing ``metrics.csv`` is continued instead of deleted (resume)."""

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                header = file.readline().strip()
            self.metrics_keys = sorted(header.split(",")) if header else []


class _AppendingCSVLogger(CSVLogger):
    """``CSVLogger`` that appends to the metrics of an earlier start of the same run."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingExperimentWriter(log_dir=self.log_dir)
        return self._experiment


class _NamespacedHyperparameters(Callback):
    """Logs the model's and the DataModule's hyperparameters under ``model/`` and ``data/``.

    Lightning merges both into one flat namespace and refuses to start when a key has two values (a model's
    ``image_size`` is the HR crop, a DataModule's the validation image side); namespaces keep both, and no key can
    collide.
    """

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        datamodule = trainer.datamodule
        hparams: dict[str, Any] = {}
        if pl_module._log_hyperparams:
            hparams["model"] = dict(pl_module.hparams_initial)
            pl_module._log_hyperparams = False  # Lightning logs nothing itself then; zoo logs the namespaces below
        if datamodule is not None and datamodule._log_hyperparams:
            hparams["data"] = dict(datamodule.hparams_initial)
            datamodule._log_hyperparams = False
        if stage != "fit" or not hparams:
            return
        for logger in trainer.loggers:
            logger.log_hyperparams(hparams)


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
        run_folder: continue this existing run folder (its checkpoints, config and logger run) instead of starting
            ``version_<N+1>``; ``zoo fit --ckpt_path`` sets it to the checkpoint's run folder.
        enable_checkpointing: add the default :class:`IterationCheckpoint`.
        enable_progress_bar: add the default rich progress bar.
        enable_image_grid: add the default :class:`~zoo.callbacks.ImageGrid`.
        fast_dev_run: run this many batches (``True``: 1) of each loop, without logs or checkpoints.
        keep_freed_memory: keep freed CPU memory in the process heap for reuse instead of returning large blocks to
            the system (:func:`zoo.utils.memory.keep_freed_memory`; glibc only). Large tensors then stop page-faulting
            on every allocation, which makes CPU training iterations 15-25% faster, but the setting is process-wide
            and the process keeps its peak heap size: off by default here, on by default in the ``zoo`` command
            (``trainer.keep_freed_memory: false`` in a config switches it off there).
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
        run_folder: str | Path | None = None,
        enable_checkpointing: bool | None = None,
        enable_progress_bar: bool | None = None,
        enable_image_grid: bool = True,
        fast_dev_run: int | bool = False,
        keep_freed_memory: bool = False,
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
        self._created_run_dir: Path | None = None
        self._created_parents: list[Path] = []
        logger, run_dir = self._build_logger(logger, root, self.run_name, managed=not fast_dev_run,
                                             run_folder=Path(run_folder) if run_folder is not None else None)

        callbacks = [callbacks] if isinstance(callbacks, Callback) else list(callbacks or [])
        self._zoo_tracker = _IterationTracker(max_iterations)
        callbacks.insert(0, self._zoo_tracker)  # first, so every other callback sees the batch counted
        callbacks.insert(1, _NamespacedHyperparameters())
        if enable_image_grid and not any(isinstance(c, ImageGrid) for c in callbacks):
            callbacks.append(ImageGrid())
        if enable_checkpointing is not False and not any(isinstance(c, ModelCheckpoint) for c in callbacks):
            callbacks.append(IterationCheckpoint())
        if enable_progress_bar is not False and not any(isinstance(c, ProgressBar) for c in callbacks):
            callbacks.append(_ProgressBar())
        kwargs["plugins"] = with_atomic_checkpoint_io(kwargs.get("plugins"), strategy)
        if str(kwargs.get("precision")) in ("16-mixed", "16"):  # GANs: one gradient scaler per optimizer
            kwargs.pop("precision")
            kwargs["plugins"] = [*kwargs["plugins"], PerOptimizerMixedPrecision(_autocast_device(accelerator))]

        try:
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
        except BaseException:
            self._remove_run_dir_if_nothing_ran()  # e.g. an accelerator that is not available: leave no folder
            raise
        if self.fast_dev_run:
            # Lightning bounds fast_dev_run by optimizer steps as well, which would halve the batches of a GAN;
            # limit_train_batches and max_epochs=1 (set by Lightning) already bound it in batches
            self.fit_loop.epoch_loop.max_steps = -1

    def _build_logger(
        self, logger: LoggerArg, root: Path, name: str, *, managed: bool, run_folder: Path | None
    ) -> tuple[Any, Path | None]:
        """The logger(s) to hand to Lightning, and the run folder when zoo chooses it (``None`` otherwise)."""
        user_built = logger is not None and not isinstance(logger, (str, bool))
        if not managed or user_built:
            return logger, None  # fast_dev_run (Lightning disables logging) or loggers that keep their own folders
        if run_folder is not None and not run_folder.is_dir():
            raise FileNotFoundError(f"trainer.run_folder '{run_folder}' does not exist")
        run_dir = run_folder or _slurm_run_dir(root, name)
        if run_dir is None:
            self._created_parents = [p for p in (root / name, root) if not p.exists()]
            run_dir = _new_run_dir(root, name)
            self._created_run_dir = run_dir
        if logger is False:
            return False, run_dir
        kind = "wandb" if logger in (None, True) else logger
        if kind == "wandb":
            try:
                import wandb  # noqa: F401
            except ImportError:
                rank_zero_warn("zoo: wandb is not installed; logging to CSV instead")
                kind = "csv"
        # the loggers' own folder is the run folder itself: save_dir/name/version = run_dir
        save_dir, folder_name, version = str(run_dir.parent.parent), run_dir.parent.name, run_dir.name
        if version.startswith("version_") and version[8:].isdigit():
            version = int(version[8:])  # the same folder; shown as a number by the progress bar
        if kind == "wandb":
            os.environ.setdefault("WANDB_MODE", "offline")
            os.environ.setdefault("WANDB_SILENT", "true")
            return self._wandb_logger(run_dir, f"{name}-{run_dir.name}"), run_dir
        if kind == "csv":
            return _AppendingCSVLogger(save_dir=save_dir, name=folder_name, version=version), run_dir
        if kind == "tensorboard":
            return TensorBoardLogger(save_dir=save_dir, name=folder_name, version=version), run_dir
        raise ValueError(f"trainer.logger must be 'wandb', 'csv', 'tensorboard', a bool or a Logger, got {logger!r}")

    @staticmethod
    def _wandb_logger(run_dir: Path, display_name: str) -> WandbLogger:
        """A W&B logger whose run id is stored in the run folder, so every start of the run logs to one W&B run."""
        record = _read_run_file(run_dir) if rank_zero_only.rank == 0 else {}
        run_id = record.get("wandb_id")
        if run_id is None and rank_zero_only.rank == 0:
            run_id = uuid.uuid4().hex[:8]  # W&B's own ids: 8 lower-case letters and digits
            _write_run_file(run_dir, {**record, "wandb_id": run_id})
        project = os.environ.get("WANDB_PROJECT", "zoo")
        return WandbLogger(save_dir=str(run_dir), project=project, name=display_name, id=run_id, resume="allow")

    def _remove_run_dir_if_nothing_ran(self) -> None:
        """Delete the run folder this Trainer created when it failed before completing an iteration or a checkpoint."""
        run_dir = self._created_run_dir
        if run_dir is None or rank_zero_only.rank != 0 or self.iterations > 0 or not run_dir.is_dir():
            return
        if any(run_dir.rglob("*.ckpt")):
            return
        for logger in getattr(self, "_loggers", []):  # none yet when Lightning's own constructor failed
            if isinstance(logger, WandbLogger) and logger._experiment is not None:
                logger._experiment.finish(exit_code=1)  # stop writing into the folder first
        shutil.rmtree(run_dir, ignore_errors=True)
        for parent in self._created_parents:  # the folders made for this run, if nothing else was put in them
            if parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()

    def _remove_run_dir_on_failure(method: Any) -> Any:  # noqa: N805 (decorator used in the class body)
        @functools.wraps(method)  # keeps the signature: LightningCLI builds its fit/validate/... options from it
        def run(self: ZooTrainer, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except BaseException:
                self._remove_run_dir_if_nothing_ran()
                raise

        return run

    fit = _remove_run_dir_on_failure(Trainer.fit)
    validate = _remove_run_dir_on_failure(Trainer.validate)
    test = _remove_run_dir_on_failure(Trainer.test)
    predict = _remove_run_dir_on_failure(Trainer.predict)
    del _remove_run_dir_on_failure

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


def _autocast_device(accelerator: str | Accelerator) -> str:
    """``"cuda"`` or ``"cpu"``: where ``accelerator`` runs (``auto``: CUDA when available), for autocast."""
    if isinstance(accelerator, Accelerator):
        return "cpu" if isinstance(accelerator, CPUAccelerator) else "cuda"
    if accelerator == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return "cpu" if accelerator == "cpu" else "cuda"
