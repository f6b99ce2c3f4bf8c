"""Building blocks of the exportable inference modules each method gives through
:meth:`~zoo.methods.base.TranslationMethod.export_module` (used by :mod:`zoo.export`).

An inference module is ``translate`` of one method and direction as a plain, traceable ``nn.Module``: images in
[0, 1] in, the translation in [0, 1] out, further inputs (style codes, exemplars, instance maps) explicit. It holds
frozen float32 CPU copies of the networks ``translate`` runs (:func:`frozen_copy`), never the method itself, because
``translate`` is not traceable as written (``torch.inference_mode``, checks that read tensor values, a weight-layout
cache keyed by ``data_ptr``, and TorchScript refusing a ``LightningModule``).
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from zoo.methods._common import to_model_range, to_unit_range

__all__ = ["GeneratorInference", "InferenceModule", "NotExportableError", "frozen_copy"]


class NotExportableError(ValueError):
    """The model (or this option) cannot be exported; the message says why and what to do instead."""


def frozen_copy(net: nn.Module, *, train_mode: bool, what: str) -> nn.Module:
    """A float32 CPU copy of ``net`` in eval mode, without gradients, computing what ``net`` computes in ``translate``.

    ``train_mode`` (``inference_mode="train"``): BatchNorm layers keep no running statistics in the copy, so they
    normalise with the statistics of the batch, as a train-mode forward does; active dropout cannot be reproduced by
    any graph and raises :class:`NotExportableError` (``what`` names the model in the message).
    """
    net = copy.deepcopy(net).float().cpu()  # graphs are traced and verified on the CPU
    if train_mode:
        if any(isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0 for m in net.modules()):
            raise NotExportableError(
                f"{what} translates in train mode (inference_mode='train') with active dropout: its output is random, "
                "so no exported graph can match it; export a model built with inference_mode='eval' (e.g. zoo.load("
                "..., init_args={'inference_mode': 'eval'}))")
        for module in net.modules():
            if isinstance(module, nn.modules.batchnorm._NormBase):
                module.track_running_stats = False
                module.running_mean = None
                module.running_var = None
                module.num_batches_tracked = None
    for param in net.parameters():
        param.requires_grad_(False)
    return net.eval()


class InferenceModule(nn.Module):
    """``translate`` of one method and direction as a plain module: ``forward(images, *inputs) -> output``.

    Attributes:
        input_names: names of the graph inputs, ``("images", ...)``; they are also the ``translate`` keywords.
        static_shapes_only: why the module holds one input size only (None: any size traces).
    """

    input_names: tuple[str, ...] = ("images",)
    static_shapes_only: str | None = None

    def example_extras(self, images: Tensor, *, generator: torch.Generator | None = None) -> tuple[Tensor, ...]:
        """Random valid values of the inputs after ``images`` (same batch and size)."""
        return ()


class GeneratorInference(InferenceModule):
    """One generator on model-space images: (B, C_in, H, W) in [0, 1] -> (B, C_out, H, W) in [0, 1]."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, images: Tensor) -> Tensor:
        return to_unit_range(self.net(to_model_range(images)))
