"""Random weights that keep a deep network's outputs image-dependent, for checks and benchmarks without the files.

The default initialisation of a deep batch-normalised network (the FID Inception: about 90 layers, running
statistics 0 and 1) gives features that barely change from image to image, which makes comparisons of two
implementations vacuous. :func:`spread_random_state_dict` redraws every float tensor around the values a trained
network has: He-scaled weights, small biases and running means, batch-norm scales near 1, positive running variances.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["spread_random_state_dict"]


def spread_random_state_dict(model: nn.Module, seed: int = 0) -> dict[str, Tensor]:
    """``model``'s state dict with every float tensor redrawn (integer buffers are copied).

    Weights with a fan-in (``ndim >= 2``) ~ N(0, 2 / fan_in); biases and running means ~ N(0, 0.1²); batch-norm
    weights ~ U(0.8, 1.2); running variances ~ U(0.5, 1.5). Deterministic for a given ``seed``.
    """
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in model.state_dict().items():
        if not value.is_floating_point():
            state[key] = value.clone()
        elif key.endswith("running_var"):
            state[key] = 0.5 + torch.rand(value.shape, generator=generator)
        elif key.endswith(("running_mean", "bias")):
            state[key] = 0.1 * torch.randn(value.shape, generator=generator)
        elif key.endswith(("bn.weight", "norm.weight")) or value.ndim < 2:
            state[key] = 0.8 + 0.4 * torch.rand(value.shape, generator=generator)
        else:
            state[key] = torch.randn(value.shape, generator=generator) * (2.0 / value[0].numel()) ** 0.5
    return state
