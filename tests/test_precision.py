"""``16-mixed`` with one gradient scaler per optimizer (:mod:`zoo.precision`), on CPU (fp16 autocast runs here)."""

from __future__ import annotations

import math

import torch
from lightning.pytorch import Callback

from tests.methods.tiny_configs import build_tiny_datamodule, build_tiny_model
from zoo.precision import PerOptimizerMixedPrecision, amp_scaling_of
from zoo.trainer import ZooTrainer

INIT_SCALE = 2.0**16


class _PoisonDiscriminatorGradient(Callback):
    """After the backward of pix2pix's discriminator loss in iteration ``at`` (its first backward of that iteration),
    put an inf into one discriminator gradient: that step must be skipped, and only the discriminator's scale drop."""

    def __init__(self, at: int) -> None:
        self.at, self.backwards = at, 0

    def on_after_backward(self, trainer, pl_module) -> None:
        if self.backwards == 2 * self.at:
            param = next(pl_module.discriminator.parameters())
            param.grad[(0,) * param.grad.dim()] = math.inf
        self.backwards += 1


def _fit(tmp_path, callbacks, max_steps=3):
    model, _ = build_tiny_model("pix2pix")
    trainer = ZooTrainer(max_steps=max_steps, accelerator="cpu", precision="16-mixed", logger="csv",
                         default_root_dir=tmp_path, enable_progress_bar=False, enable_image_grid=False,
                         limit_val_batches=0, callbacks=callbacks)
    trainer.fit(model, datamodule=build_tiny_datamodule("pix2pix"))
    return model, trainer


def test_16_mixed_uses_one_scaler_per_optimizer_and_a_forced_overflow_skips_only_that_step(tmp_path):
    _, clean = _fit(tmp_path / "clean", [])
    _, poisoned = _fit(tmp_path / "poisoned", [_PoisonDiscriminatorGradient(at=1)])
    clean, scaling = clean.strategy.precision_plugin, poisoned.strategy.precision_plugin
    assert isinstance(scaling, PerOptimizerMixedPrecision)
    generator, discriminator = 0, 1  # pix2pix's configure_optimizers order
    assert sorted(scaling.scalers) == [generator, discriminator]
    # one more skipped discriminator step, and a halved discriminator scale; the generator's scaler is untouched
    # (its early steps may overflow too while its scale settles from 2**16, the same in both runs)
    assert scaling.skipped_steps[discriminator] == clean.skipped_steps[discriminator] + 1
    assert scaling.skipped_steps[generator] == clean.skipped_steps[generator]
    assert scaling.scalers[discriminator].get_scale() == clean.scalers[discriminator].get_scale() / 2
    assert scaling.scalers[generator].get_scale() == clean.scalers[generator].get_scale()
    metrics = next(iter(sorted((tmp_path / "poisoned").rglob("metrics.csv")))).read_text()
    header, *rows = metrics.strip().splitlines()
    column = header.split(",").index("amp/skipped_steps")
    logged = [float(r.split(",")[column]) for r in rows if r.split(",")[column]]
    assert logged and logged[-1] == sum(scaling.skipped_steps.values()), logged


def test_the_skipped_step_leaves_the_discriminator_unchanged(tmp_path):
    snapshots = []

    class Snapshot(Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            snapshots.append([p.detach().clone() for p in pl_module.discriminator.parameters()])

    poison = _PoisonDiscriminatorGradient(at=1)
    _fit(tmp_path, [poison, Snapshot()])
    before_iteration_1, after_iteration_1, after_iteration_2 = snapshots
    assert all(torch.equal(a, b) for a, b in zip(before_iteration_1, after_iteration_1, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(after_iteration_1, after_iteration_2, strict=True))


def test_scaler_states_go_into_checkpoints_and_come_back(tmp_path):
    _, trainer = _fit(tmp_path, [_PoisonDiscriminatorGradient(at=1)], max_steps=2)
    state = trainer.strategy.precision_plugin.state_dict()
    assert set(state["scalers"]) == {0, 1} and state["skipped_steps"][1] >= 1
    fresh = PerOptimizerMixedPrecision("cpu")
    fresh.load_state_dict(state)
    for index, scaler in trainer.strategy.precision_plugin.scalers.items():
        assert fresh._scaler(index).get_scale() == scaler.get_scale() < INIT_SCALE
    assert fresh.skipped_steps == state["skipped_steps"]
    checkpoint = torch.load(next(tmp_path.rglob("last.ckpt")), map_location="cpu", weights_only=False)
    saved = checkpoint[PerOptimizerMixedPrecision.__qualname__]
    assert saved["skipped_steps"] == state["skipped_steps"] and set(saved["scalers"]) == {0, 1}


def test_a_loss_backpropagated_for_two_optimizers_is_scaled_and_unscaled_by_one_scaler(tmp_path):
    """CUT: one backward for the generator and the MLP heads (optimizers 0 and 2); the heads step with the
    generator's scaler, so only the generator's and the discriminator's scalers exist; skipped steps (tiny widths
    overflow fp16 while the scale settles) keep every parameter finite."""
    model, _ = build_tiny_model("cut")
    trainer = ZooTrainer(max_steps=2, accelerator="cpu", precision="16-mixed", logger=False,
                         default_root_dir=tmp_path, enable_progress_bar=False, enable_image_grid=False,
                         enable_checkpointing=False, limit_val_batches=0)
    trainer.fit(model, datamodule=build_tiny_datamodule("cut"))
    scaling = trainer.strategy.precision_plugin
    assert len(trainer.optimizers) == 3 and sorted(scaling.scalers) == [0, 1]
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_no_plugin_outside_16_mixed(tmp_path):
    model, _ = build_tiny_model("pix2pix")
    assert amp_scaling_of(model) is None
    trainer = ZooTrainer(max_steps=1, accelerator="cpu", precision="bf16-mixed", logger=False,
                         default_root_dir=tmp_path, enable_progress_bar=False)
    assert not isinstance(trainer.strategy.precision_plugin, PerOptimizerMixedPrecision)
