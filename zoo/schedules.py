"""Learning-rate policies of pix2pix/CycleGAN with the official epoch-boundary semantics.

The official ``get_scheduler`` policies are counted in epochs:

* ``linear``: constant for ``n_epochs``, then linear decay over ``n_epochs_decay`` with denominator
  ``n_epochs_decay + 1`` (never exactly 0 with the current loop).
* ``step``: x0.1 every ``lr_decay_iters`` epochs (an epoch count despite the name).
* ``plateau``: ReduceLROnPlateau(min, factor 0.2, threshold 0.01, patience 5) driven by a metric the
  official models never change from 0, i.e. a blind step decay; zoo keeps that by default.
* ``cosine``: CosineAnnealingLR with ``T_max = n_epochs`` and ``eta_min = 0`` (periodic afterwards).

``step_at="epoch_end"`` reproduces the current official loop (scheduler stepped after each epoch);
``step_at="epoch_start"`` the pre-2025 loop the published models were trained with (stepped before
each epoch, so decay starts one epoch earlier and the last epoch runs at lr 0).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import CosineAnnealingLR, LambdaLR, LRScheduler, ReduceLROnPlateau, StepLR

LRPolicy = Literal["linear", "step", "plateau", "cosine"]
StepAt = Literal["epoch_end", "epoch_start"]

__all__ = ["LRPolicy", "StepAt", "linear_decay_factor", "build_scheduler", "step_scheduler", "lr_per_epoch"]


def linear_decay_factor(e: int, *, n_epochs: int, n_epochs_decay: int, epoch_count: int = 1) -> float:
    """Multiplier of the base lr after ``e`` scheduler steps (the official ``lambda_rule``)."""
    return 1.0 - max(0, e + epoch_count - n_epochs) / float(n_epochs_decay + 1)


class _LinearDecay:
    """Picklable lr lambda (a closure would break ``ddp_spawn`` and checkpoint pickling)."""

    def __init__(self, n_epochs: int, n_epochs_decay: int, epoch_count: int) -> None:
        self.n_epochs, self.n_epochs_decay, self.epoch_count = n_epochs, n_epochs_decay, epoch_count

    def __call__(self, e: int) -> float:
        return linear_decay_factor(e, n_epochs=self.n_epochs, n_epochs_decay=self.n_epochs_decay,
                                   epoch_count=self.epoch_count)


def build_scheduler(optimizer: Optimizer, *, policy: LRPolicy = "linear", n_epochs: int = 100,
                    n_epochs_decay: int = 100, epoch_count: int = 1,
                    lr_decay_iters: int = 50) -> LRScheduler | ReduceLROnPlateau:
    """The official scheduler for ``policy`` (see the module docstring)."""
    if policy == "linear":
        return LambdaLR(optimizer, lr_lambda=_LinearDecay(n_epochs, n_epochs_decay, epoch_count))
    if policy == "step":
        return StepLR(optimizer, step_size=lr_decay_iters, gamma=0.1)
    if policy == "plateau":
        return ReduceLROnPlateau(optimizer, mode="min", factor=0.2, threshold=0.01, patience=5)
    if policy == "cosine":
        return CosineAnnealingLR(optimizer, T_max=n_epochs, eta_min=0)
    raise ValueError(f"lr_policy must be 'linear', 'step', 'plateau' or 'cosine'; got {policy!r}")


def step_scheduler(scheduler: LRScheduler | ReduceLROnPlateau, metric: float = 0.0) -> None:
    """Advance one epoch; ``plateau`` gets ``metric`` (0, as in the official models, unless a metric is given)."""
    if isinstance(scheduler, ReduceLROnPlateau):
        scheduler.step(metric)
    else:
        scheduler.step()


def lr_per_epoch(*, base_lr: float, policy: LRPolicy = "linear", n_epochs: int = 100, n_epochs_decay: int = 100,
                 epoch_count: int = 1, lr_decay_iters: int = 50, step_at: StepAt = "epoch_end") -> list[float]:
    """Learning rate in force during each training epoch ``epoch_count .. n_epochs + n_epochs_decay``.

    Uses the same scheduler and stepping order as the methods' training loop.
    """
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([param], lr=base_lr)
    scheduler = build_scheduler(optimizer, policy=policy, n_epochs=n_epochs, n_epochs_decay=n_epochs_decay,
                                epoch_count=epoch_count, lr_decay_iters=lr_decay_iters)
    lrs = []
    for _ in range(epoch_count, n_epochs + n_epochs_decay + 1):
        if step_at == "epoch_start":
            step_scheduler(scheduler)
        lrs.append(optimizer.param_groups[0]["lr"])
        if step_at == "epoch_end":
            step_scheduler(scheduler)
    return lrs
