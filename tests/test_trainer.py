"""ZooTrainer: training length and checkpoints in iterations, run folders, loggers, strategy defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger, WandbLogger
from lightning.pytorch.strategies import DDPStrategy, SingleDeviceStrategy

from tests.tiny import TinyData, TinyGAN
from zoo.callbacks import ImageGrid, IterationCheckpoint
from zoo.trainer import GAN_DDP_STRATEGY, ZooTrainer, completed_iterations


def _trainer(tmp_path: Path, **kwargs) -> ZooTrainer:
    defaults = dict(
        accelerator="cpu",
        default_root_dir=tmp_path,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_image_grid=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )
    return ZooTrainer(**{**defaults, **kwargs})


@pytest.mark.parametrize("g_every", [1, 2])
def test_max_steps_counts_iterations_not_optimizer_steps(tmp_path, g_every):
    model = TinyGAN(g_every=g_every)
    trainer = _trainer(tmp_path, max_steps=3, enable_checkpointing=False)
    trainer.fit(model, datamodule=TinyData(length=16))  # 8 batches per epoch
    assert model.batches_seen == 3
    assert trainer.iterations == completed_iterations(trainer) == 3
    assert trainer.max_iterations == 3
    optimizer_steps = 3 + sum(1 for i in range(3) if i % g_every == 0)  # D every iteration, G every g_every-th
    assert trainer.global_step == optimizer_steps


def test_max_steps_spans_epochs(tmp_path):
    model = TinyGAN()
    trainer = _trainer(tmp_path, max_steps=5, enable_checkpointing=False)
    trainer.fit(model, datamodule=TinyData(length=4))  # 2 batches per epoch
    assert model.batches_seen == 5
    assert trainer.current_epoch >= 2


def test_fast_dev_run_runs_the_requested_batches(tmp_path):
    model = TinyGAN()
    trainer = _trainer(tmp_path, fast_dev_run=3)
    trainer.fit(model, datamodule=TinyData(length=16))
    assert model.batches_seen == 3


def test_resume_continues_the_iteration_count(tmp_path):
    data = TinyData(length=16)
    first = _trainer(tmp_path, max_steps=2)
    first.fit(TinyGAN(), datamodule=data)
    ckpt = first.checkpoint_callback.last_model_path
    assert Path(ckpt).is_file()
    assert torch.load(ckpt, weights_only=True)["callbacks"]["_IterationTracker"]["iterations"] == 2

    resumed_model = TinyGAN()
    second = _trainer(tmp_path, max_steps=5)
    second.fit(resumed_model, datamodule=TinyData(length=16), ckpt_path=ckpt)
    assert resumed_model.batches_seen == 3
    assert second.iterations == 5

    finished_model = TinyGAN()
    third = _trainer(tmp_path, max_steps=5)
    third.fit(finished_model, datamodule=TinyData(length=16), ckpt_path=second.checkpoint_callback.last_model_path)
    assert finished_model.batches_seen == 0


def test_stopping_and_resuming_equals_training_straight_through(tmp_path):
    torch.manual_seed(0)
    straight = TinyGAN()
    initial = {k: v.clone() for k, v in straight.state_dict().items()}
    _trainer(tmp_path / "a", max_steps=6, enable_checkpointing=False).fit(straight, datamodule=TinyData(length=8))

    first = TinyGAN()
    first.load_state_dict(initial)
    stopped = _trainer(tmp_path / "b", max_steps=3)  # stops in the middle of the first 4-batch epoch
    stopped.fit(first, datamodule=TinyData(length=8))
    resumed = TinyGAN()
    _trainer(tmp_path / "c", max_steps=6).fit(
        resumed, datamodule=TinyData(length=8), ckpt_path=stopped.checkpoint_callback.last_model_path
    )
    assert resumed.batches_seen == 3
    for name, value in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], value, msg=name)


def test_iteration_checkpoint_every_n_iterations(tmp_path):
    ckpt_dir = tmp_path / "ckpts"
    callback = IterationCheckpoint(every_n_iterations=2, dirpath=ckpt_dir, save_top_k=-1)
    trainer = _trainer(tmp_path, max_steps=5, callbacks=[callback])
    trainer.fit(TinyGAN(), datamodule=TinyData(length=32))
    names = sorted(p.name for p in ckpt_dir.glob("*.ckpt"))
    # every second iteration (global_step would say 4, 8), plus the end of training
    assert names == ["epoch=0-iteration=2.ckpt", "epoch=0-iteration=4.ckpt", "epoch=0-iteration=5.ckpt", "last.ckpt"]
    iterations = torch.load(ckpt_dir / "epoch=0-iteration=4.ckpt", weights_only=True)["callbacks"]
    assert iterations["_IterationTracker"]["iterations"] == 4


def test_iteration_checkpoint_rejects_mixed_triggers():
    with pytest.raises(ValueError, match="every_n_train_steps"):
        IterationCheckpoint(every_n_iterations=2, every_n_train_steps=3)
    with pytest.raises(ValueError, match="every_n_iterations"):
        IterationCheckpoint(every_n_iterations=0)


def test_default_checkpoint_goes_to_the_run_folder(tmp_path):
    trainer = _trainer(tmp_path, max_steps=2, logger="csv", run_name="tiny")
    trainer.fit(TinyGAN(), datamodule=TinyData())
    run_dir = tmp_path / "tiny" / "version_0"
    assert trainer.run_dir == run_dir
    assert Path(trainer.checkpoint_callback.last_model_path) == run_dir / "checkpoints" / "last.ckpt"
    assert (run_dir / "checkpoints" / "epoch=0-iteration=2.ckpt").is_file()


def test_each_trainer_gets_a_fresh_versioned_run_folder(tmp_path):
    first = _trainer(tmp_path, logger="csv", run_name="exp")
    second = _trainer(tmp_path, logger="csv", run_name="exp")
    assert isinstance(first.logger, CSVLogger) and isinstance(second.logger, CSVLogger)
    assert Path(first.logger.log_dir) == tmp_path / "exp" / "version_0"
    assert Path(second.logger.log_dir) == tmp_path / "exp" / "version_1"


def test_tensorboard_logger_shortcut(tmp_path):
    trainer = _trainer(tmp_path, logger="tensorboard", run_name="exp")
    assert isinstance(trainer.logger, TensorBoardLogger)
    assert Path(trainer.logger.log_dir) == tmp_path / "exp" / "version_0"


def test_default_logger_is_offline_wandb_in_the_run_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    trainer = _trainer(tmp_path, logger=None, run_name="exp")
    assert isinstance(trainer.logger, WandbLogger)
    assert Path(trainer.logger.save_dir) == tmp_path / "exp" / "version_0"
    import os

    assert os.environ["WANDB_MODE"] == "offline"


def test_default_logger_keeps_a_user_wandb_mode(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    _trainer(tmp_path, logger=True)
    import os

    assert os.environ["WANDB_MODE"] == "disabled"


def test_user_logger_objects_are_kept(tmp_path):
    logger = CSVLogger(save_dir=tmp_path / "mine", name="x")
    trainer = _trainer(tmp_path, logger=logger)
    assert trainer.logger is logger
    assert not (tmp_path / "zoo").exists()  # zoo made no run folder of its own


def test_default_callbacks_are_added_unless_given(tmp_path):
    trainer = _trainer(tmp_path, enable_image_grid=True, enable_progress_bar=True)
    kinds = [type(c).__name__ for c in trainer.callbacks]
    assert "ImageGrid" in kinds and "IterationCheckpoint" in kinds and "_ProgressBar" in kinds
    grid = ImageGrid(every_n_iterations=7)
    trainer = _trainer(tmp_path, callbacks=[grid], enable_image_grid=True)
    assert [c for c in trainer.callbacks if isinstance(c, ImageGrid)] == [grid]
    trainer = _trainer(tmp_path, enable_checkpointing=False)
    assert trainer.checkpoint_callback is None


def test_strategy_auto_uses_unused_parameter_search_with_several_devices(tmp_path):
    trainer = _trainer(tmp_path, devices=2)
    assert isinstance(trainer.strategy, DDPStrategy)
    assert trainer.strategy._ddp_kwargs.get("find_unused_parameters") is True
    assert GAN_DDP_STRATEGY == "ddp_find_unused_parameters_true"
    assert isinstance(_trainer(tmp_path, devices=1).strategy, SingleDeviceStrategy)


def test_invalid_max_steps_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="max_steps"):
        _trainer(tmp_path, max_steps=-5)


@pytest.mark.parametrize("keep", [True, False])
def test_keep_freed_memory_is_applied_unless_switched_off(tmp_path, monkeypatch, keep):
    calls = []
    monkeypatch.setattr("zoo.trainer._keep_freed_memory", lambda: calls.append(True) or True)
    _trainer(tmp_path, keep_freed_memory=keep)
    assert calls == ([True] if keep else [])
