"""Checks every registered method must pass, run on its tiny config (``configs/tiny/<method>.yaml``)."""

from __future__ import annotations

import copy

import pytest
import torch

import zoo
from tests.methods.tiny_configs import build_tiny_datamodule, build_tiny_model, tiny_config, trainable_methods
from zoo.hub import save_bundle
from zoo.trainer import ZooTrainer

METHODS = trainable_methods()


def _inputs(model, size: int, direction: str = "a2b", batch: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.rand(batch, model.input_channels(direction), size, size, generator=g)


def _translate(model, images: torch.Tensor, direction: str = "a2b", seed: int | None = None) -> torch.Tensor:
    """``model.translate``; exemplar-guided methods get the batch reversed as exemplars."""
    if model.requires_exemplar:
        return model.translate(images, exemplar=images.flip(0), direction=direction, seed=seed)
    return model.translate(images, direction=direction, seed=seed)


def _step_inputs(model, size: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    return model.example_inputs(2, size, generator=torch.Generator().manual_seed(seed))


def _trainer(tmp_path, **kwargs) -> ZooTrainer:
    defaults = dict(accelerator="cpu", default_root_dir=tmp_path, logger=False, enable_progress_bar=False,
                    enable_model_summary=False, enable_image_grid=False)
    return ZooTrainer(**{**defaults, **kwargs})


def test_every_method_has_a_tiny_config():
    for name in zoo.list_models():
        config = tiny_config(name)
        assert config["model"]["class_path"].endswith(type(zoo.create(name)).__name__)


@pytest.mark.parametrize("name", zoo.list_models())
def test_translate_shapes_range_and_finiteness(name):
    model, size = build_tiny_model(name)
    for direction in model.directions:
        x = _inputs(model, size, direction)
        y = _translate(model, x, direction, seed=0)
        out_size = size * model.scale
        assert y.shape == (2, model.output_channels(direction), out_size, out_size)
        assert torch.isfinite(y).all() and y.min() >= 0 and y.max() <= 1
        if direction == "a2b" and not model.requires_exemplar:
            assert model(x * 2 - 1).shape == y.shape


@pytest.mark.parametrize("name", METHODS)
def test_one_iteration_updates_every_optimized_parameter_and_nothing_else(name):
    model, size = build_tiny_model(name)
    model.train()
    optimizers, _ = model.configure_optimizers()
    optimized = {id(p) for opt in optimizers for group in opt.param_groups for p in group["params"]}
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    frozen = {n: b.detach().clone() for n, b in model.named_buffers()}
    out = model.optimization_step(*_step_inputs(model, size), *optimizers)
    assert out.losses and all(torch.isfinite(v).all() for v in out.losses.values())
    for n, p in model.named_parameters():
        if id(p) in optimized:
            assert not torch.equal(p, before[n]), f"{name}: {n} was not updated"
        else:
            assert torch.equal(p, before[n]), f"{name}: {n} is in no optimizer but changed"
    assert frozen.keys() == {n for n, _ in model.named_buffers()}


@pytest.mark.parametrize("name", METHODS)
def test_fast_dev_run_on_the_embedded_data(name, tmp_path):
    model, _ = build_tiny_model(name)
    trainer = _trainer(tmp_path, fast_dev_run=2)
    trainer.fit(model, datamodule=build_tiny_datamodule(name))
    assert trainer.iterations == 2


@pytest.mark.parametrize("name", METHODS)
def test_checkpoint_and_bundle_round_trips_give_identical_translations(name, tmp_path):
    model, size = build_tiny_model(name)
    trainer = _trainer(tmp_path, max_steps=2, limit_val_batches=0)
    trainer.fit(model, datamodule=build_tiny_datamodule(name))
    ckpt = trainer.run_dir / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()
    x = _inputs(model, size)
    expected = _translate(model, x, seed=1)
    from_ckpt = zoo.load(str(ckpt))
    assert type(from_ckpt) is type(model) and not from_ckpt.training
    torch.testing.assert_close(_translate(from_ckpt, x, seed=1), expected, rtol=0, atol=0)
    bundle = save_bundle(model, tmp_path / "bundle")
    torch.testing.assert_close(_translate(zoo.load(str(bundle)), x, seed=1), expected, rtol=0, atol=0)


@pytest.mark.parametrize("name", METHODS)
def test_seeded_construction_and_training_are_deterministic(name):
    def run():
        torch.manual_seed(0)
        model, size = build_tiny_model(name)
        model.optimization_step(*_step_inputs(model, size), *model.configure_optimizers()[0])
        return model

    first, second = run(), run()
    for (n, p1), p2 in zip(first.state_dict().items(), second.state_dict().values(), strict=True):
        assert torch.equal(p1, p2), f"{name}: {n} differs between identical seeded runs"


@pytest.mark.parametrize("name", METHODS)
def test_ema_generator_is_used_by_translate_and_tracks_training(name):
    model, size = build_tiny_model(name, ema_decay=0.5)
    live = copy.deepcopy(model.generator_for("a2b", use_ema=False).state_dict())
    model.optimization_step(*_step_inputs(model, size), *model.configure_optimizers()[0])
    ema_net, live_net = model.generator_for("a2b"), model.generator_for("a2b", use_ema=False)
    assert ema_net is not live_net
    # first update copies the weights that existed after the step; they must differ from the initial ones
    changed = [k for k, v in ema_net.state_dict().items() if v.is_floating_point() and not torch.equal(v, live[k])]
    assert changed
    assert not any(p.requires_grad for p in ema_net.parameters())
