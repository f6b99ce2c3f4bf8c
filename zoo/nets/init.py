"""Weight initialisation of the pix2pix/CycleGAN family (``init_type`` / ``init_gain``)."""

from __future__ import annotations

from typing import Literal

from torch import nn

InitType = Literal["normal", "xavier", "kaiming", "orthogonal"]

__all__ = ["InitType", "init_weights"]


def init_weights(net: nn.Module, init_type: InitType = "normal", init_gain: float = 0.02) -> nn.Module:
    """Initialise ``net`` in place and return it.

    Every module whose class name contains ``Conv`` or ``Linear`` gets its weight from the chosen
    scheme (``normal``: N(0, gain); ``xavier``: xavier-normal with gain; ``kaiming``: kaiming-normal,
    fan-in, gain ignored; ``orthogonal``: orthogonal with gain) and a zero bias. ``BatchNorm2d``
    layers get gamma ~ N(1, gain) and beta = 0. ``SyncBatchNorm`` keeps PyTorch's 1/0 because the
    official class-name match does not recognise it.
    """
    if init_type not in ("normal", "xavier", "kaiming", "orthogonal"):
        raise ValueError(f"init_type must be normal, xavier, kaiming or orthogonal; got {init_type!r}")

    def init_module(m: nn.Module) -> None:
        name = type(m).__name__
        if hasattr(m, "weight") and ("Conv" in name or "Linear" in name):
            if init_type == "normal":
                nn.init.normal_(m.weight, 0.0, init_gain)
            elif init_type == "xavier":
                nn.init.xavier_normal_(m.weight, gain=init_gain)
            elif init_type == "kaiming":
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            else:
                nn.init.orthogonal_(m.weight, gain=init_gain)
            if getattr(m, "bias", None) is not None:
                nn.init.constant_(m.bias, 0.0)
        elif "BatchNorm2d" in name and getattr(m, "weight", None) is not None:
            nn.init.normal_(m.weight, 1.0, init_gain)
            nn.init.constant_(m.bias, 0.0)

    net.apply(init_module)
    return net
