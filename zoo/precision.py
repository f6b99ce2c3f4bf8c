"""fp16 mixed precision for GANs: one gradient scaler per optimizer.

Lightning's ``16-mixed`` keeps one :class:`torch.amp.GradScaler` for all optimizers and updates it after every
step, so an overflow in the discriminator's gradients halves the generator's loss scale too (and the other way
round). :class:`PerOptimizerMixedPrecision` gives each optimizer its own scaler, as ``torch.amp``'s recipe for
several losses and optimizers prescribes:

* a loss is scaled by the scaler of the optimizer(s) its gradients are for, named by the method when it calls
  :func:`zoo.methods._common.backward` (``backward(self, loss, opt_d)``); optimizers stepped after one backward (CUT's
  generator and MLP heads) share the scaler of the first one named;
* each optimizer step unscales that optimizer's gradients and is skipped when they hold inf or NaN (counted in
  :attr:`PerOptimizerMixedPrecision.skipped_steps` and logged by every method as ``amp/skipped_steps``); the scaler's
  scale is updated once its optimizers have stepped, before it scales the next loss;
* the scalers' states are saved in checkpoints, so a resumed run continues with the same scales.

:class:`~zoo.trainer.ZooTrainer` uses it whenever ``precision`` is ``16-mixed``. bf16 needs no scaling.
"""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch.plugins.precision import MixedPrecision
from torch import Tensor

__all__ = ["PerOptimizerMixedPrecision", "amp_scaling_of"]

#: Scaler of the losses whose backward names no optimizer (they step with it too).
SHARED = -1


class PerOptimizerMixedPrecision(MixedPrecision):
    """``16-mixed`` autocast with one :class:`torch.amp.GradScaler` per optimizer.

    Args:
        device: ``"cuda"`` or ``"cpu"`` (autocast device type).
        init_scale: initial loss scale of every scaler.
        growth_interval: steps without overflow before a scaler doubles its scale.
    """

    def __init__(self, device: str = "cuda", *, init_scale: float = 2.0**16, growth_interval: int = 2000) -> None:
        super().__init__("16-mixed", device, scaler=torch.amp.GradScaler(device, enabled=False))
        self._scaler_args = {"init_scale": init_scale, "growth_interval": growth_interval}
        self.scalers: dict[int, torch.amp.GradScaler] = {}
        self.skipped_steps: dict[int, int] = {}
        self._scaler_of: dict[int, int] = {}  # optimizer index -> index of the scaler its gradients were scaled by
        self._stepped: set[int] = set()  # scalers whose optimizers stepped since their last update
        self._unscaled: set[int] = set()  # optimizers unscaled for clipping, before their step
        self._targets: tuple[int, ...] | None = None
        self._recent_owner = SHARED

    # ---------------------------------------------------------------- which scaler

    @staticmethod
    def _index(module: Any, optimizer: Any) -> int:
        optimizer = getattr(optimizer, "optimizer", optimizer)  # a LightningOptimizer wraps the torch one
        for index, candidate in enumerate(module.trainer.optimizers):
            if candidate is optimizer:
                return index
        raise ValueError("the optimizer is not one of the Trainer's optimizers")

    def _scaler(self, index: int) -> torch.amp.GradScaler:
        if index not in self.scalers:
            self.scalers[index] = torch.amp.GradScaler(self.device, **self._scaler_args)
            self.skipped_steps.setdefault(index, 0)
        return self.scalers[index]

    def backward_for(self, module: Any, optimizers: tuple[Any, ...]) -> None:
        """Name the optimizers the next backward's gradients are for (called by ``zoo.methods._common.backward``)."""
        self._targets = tuple(self._index(module, o) for o in optimizers) or None

    def unscale_gradients(self, module: Any, optimizer: Any) -> None:
        """Divide ``optimizer``'s gradients by their loss scale now (before clipping them); its step then skips it."""
        index = self._index(module, optimizer)
        if index not in self._unscaled:
            self._scaler(self._scaler_of.get(index, self._recent_owner)).unscale_(getattr(optimizer, "optimizer",
                                                                                          optimizer))
            self._unscaled.add(index)

    # ---------------------------------------------------------------- Lightning's hooks

    def pre_backward(self, tensor: Tensor, module: Any) -> Tensor:  # type: ignore[override]
        targets, self._targets = self._targets or (SHARED,), None
        owner = self._recent_owner = targets[0]
        scaler = self._scaler(owner)
        if owner in self._stepped:  # its optimizers stepped since the last loss it scaled: new scale first
            scaler.update()
            self._stepped.discard(owner)
        for index in targets:
            self._scaler_of[index] = owner
        return super(MixedPrecision, self).pre_backward(scaler.scale(tensor), module)

    def optimizer_step(self, optimizer: Any, model: Any, closure: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        index = self._index(model, optimizer)
        if model.automatic_optimization:
            self._targets = (index,)
        closure()
        owner = self._scaler_of.pop(index, self._recent_owner)
        scaler = self._scaler(owner)
        if index not in self._unscaled:
            scaler.unscale_(optimizer)
        self._unscaled.discard(index)
        self._after_closure(model, optimizer)
        found_inf = sum(v.item() for v in scaler._found_inf_per_device(optimizer).values())
        output = scaler.step(optimizer, **kwargs)  # skipped when the gradients hold inf or NaN
        if found_inf:
            self.skipped_steps[index] = self.skipped_steps.get(index, 0) + 1
        self._stepped.add(owner)
        return output

    # ---------------------------------------------------------------- checkpoints

    def state_dict(self) -> dict[str, Any]:
        for owner in sorted(self._stepped):  # the update a resumed run would otherwise miss
            self.scalers[owner].update()
        self._stepped.clear()
        return {"scalers": {i: s.state_dict() for i, s in self.scalers.items()},
                "skipped_steps": dict(self.skipped_steps)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if "scalers" not in state_dict:  # a checkpoint of Lightning's single scaler: every optimizer starts from it
            if state_dict:
                self._scaler_args = {**self._scaler_args, "init_scale": float(state_dict.get("scale", 2.0**16))}
            state_dict = {"scalers": {}}
        self.scalers.clear()
        self.skipped_steps = {int(k): int(v) for k, v in state_dict.get("skipped_steps", {}).items()}
        for index, state in state_dict["scalers"].items():
            self._scaler(int(index)).load_state_dict(state)


def amp_scaling_of(model: Any) -> PerOptimizerMixedPrecision | None:
    """The per-optimizer scaling plugin of ``model``'s Trainer, or None (no Trainer, or no fp16 scaling)."""
    trainer = getattr(model, "_trainer", None)
    plugin = getattr(getattr(trainer, "strategy", None), "precision_plugin", None)
    return plugin if isinstance(plugin, PerOptimizerMixedPrecision) else None
