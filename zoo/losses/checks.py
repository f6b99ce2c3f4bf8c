"""Guards used inside training steps."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["check_finite"]


def check_finite(losses: dict[str, Tensor], *, iteration: int, epoch: int | None = None) -> None:
    """Raise ``FloatingPointError`` naming the first non-finite loss term and the iteration.

    One host synchronisation for the whole dict (a single stacked ``isfinite``).
    """
    if not losses:
        return
    values = torch.stack([v.detach().float().reshape(()) for v in losses.values()])
    if bool(torch.isfinite(values).all()):
        return
    for name, value in losses.items():
        if not torch.isfinite(value.detach()).all():
            where = f"iteration {iteration}" + (f" (epoch {epoch})" if epoch is not None else "")
            raise FloatingPointError(
                f"loss term {name!r} became {value.detach().float().item()} at {where}; training stopped. "
                "Lower the learning rate, check the inputs for NaNs, or try precision=32-true."
            )
