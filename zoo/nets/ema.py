"""Exponential moving average (EMA) of a generator's weights, kept inside the method.

A method that wants an EMA generator builds it next to the live one and updates it after each generator step::

    self.generator_ema = ExponentialMovingAverage(self.generator, decay=0.999)  # in __init__
    ...
    opt_g.step()
    self.generator_ema.update(self.generator)                                  # in training_step

and runs ``self.generator_ema`` (it forwards to the averaged copy) in ``translate``. Because the average is a
submodule, it is saved in the checkpoint as ``generator_ema.module.*`` plus ``generator_ema.n_averaged``, restored on
resume, moved with the module between devices and broadcast under DDP. Lightning's ``EMAWeightAveraging`` callback is
not used: it averages the whole LightningModule (discriminators included) and copies the average into the live
model at the end of training.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel

__all__ = ["ExponentialMovingAverage", "ema_multi_avg"]


@torch.no_grad()
def ema_multi_avg(averaged: list[Tensor], current: list[Tensor], num_averaged: Tensor, *, decay: float) -> None:
    """In-place EMA step ``averaged = decay * averaged + (1 - decay) * current`` on same-dtype tensor lists.

    A module-level function (bound with :func:`functools.partial`) rather than a closure, so that a module holding
    an :class:`ExponentialMovingAverage` can be pickled, which ``ddp_spawn`` does.

    Args:
        averaged: the averaged tensors, updated in place.
        current: the live model's tensors, same order, device and dtype.
        num_averaged: number of updates so far (unused: the decay is constant).
        decay: weight of the old average, in [0, 1].
    """
    del num_averaged
    if torch.is_floating_point(averaged[0]) or torch.is_complex(averaged[0]):
        torch._foreach_lerp_(averaged, current, 1.0 - decay)
    else:
        # integer buffers such as BatchNorm's num_batches_tracked are counters, not weights: follow the live model
        torch._foreach_copy_(averaged, current)


class ExponentialMovingAverage(AveragedModel):
    """A frozen copy of a network whose weights (and floating-point buffers) track an exponential moving average.

    The first :meth:`update` copies the live weights; each later one applies
    ``w_ema = decay * w_ema + (1 - decay) * w``. Calling the module runs the averaged copy.

    Args:
        model: the network to average (e.g. ``self.generator``); it is deep-copied, not referenced.
        decay: weight of the previous average per update, in [0, 1]; 0.999 averages over roughly the last 1000
            updates.

    Example:
        >>> net = nn.Linear(2, 2)
        >>> ema = ExponentialMovingAverage(net, decay=0.9)
        >>> ema.update(net)
        >>> torch.equal(ema.module.weight, net.weight)
        True
    """

    def __init__(self, model: nn.Module, *, decay: float = 0.999) -> None:
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"EMA decay must be in [0, 1], got {decay}")
        super().__init__(model, multi_avg_fn=partial(ema_multi_avg, decay=decay), use_buffers=True)
        self.decay = decay
        self.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the current weights of ``model`` (the network this average was built from) into the average."""
        self.update_parameters(model)

    def extra_repr(self) -> str:
        return f"decay={self.decay}"
