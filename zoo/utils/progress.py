"""Training progress counted in iterations (completed training batches), readable from any Trainer.

Kept apart from :mod:`zoo.trainer` so that callbacks can read the count without importing the trainer (which imports
the callbacks).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lightning.pytorch import Trainer

__all__ = ["ITERATION_TRACKER_ATTRIBUTE", "completed_iterations"]

#: Attribute of a :class:`~zoo.trainer.ZooTrainer` holding its iteration tracker (an object with ``iterations``).
ITERATION_TRACKER_ATTRIBUTE = "_zoo_tracker"


def completed_iterations(trainer: Trainer) -> int:
    """Number of training batches completed so far (restored on resume).

    Works for any Trainer: a :class:`~zoo.trainer.ZooTrainer` counts them itself (callbacks see the current batch
    counted from ``on_train_batch_end`` on); for a plain Lightning Trainer this falls back to Lightning's batch
    progress.
    """
    tracker = getattr(trainer, ITERATION_TRACKER_ATTRIBUTE, None)
    if tracker is not None:
        return tracker.iterations
    return int(trainer.fit_loop.epoch_loop.batch_progress.total.processed)
