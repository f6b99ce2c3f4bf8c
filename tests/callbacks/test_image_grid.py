"""ImageGrid: a fixed batch, translate() only, PNG files, and images sent to the loggers that take them."""

from __future__ import annotations

import torch
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger, WandbLogger
from PIL import Image

from tests.tiny import TinyData, TinyGAN
from zoo.callbacks import ImageGrid, make_translation_grid
from zoo.trainer import ZooTrainer


def _fit(
    tmp_path, grid: ImageGrid, *, max_steps: int = 4, logger=False, datamodule=None, **kwargs
) -> tuple[TinyGAN, ZooTrainer]:
    model = TinyGAN()
    model.forward = None  # the callback must get by with translate() alone
    trainer = ZooTrainer(
        accelerator="cpu",
        max_steps=max_steps,
        default_root_dir=tmp_path,
        logger=logger,
        callbacks=[grid],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
        **kwargs,
    )
    trainer.fit(model, datamodule=datamodule or TinyData(length=16, val_length=3))
    return model, trainer


def test_grids_are_written_every_n_iterations_for_each_direction(tmp_path):
    grid = ImageGrid(every_n_iterations=2, num_images=2, at_validation_end=False)
    model, trainer = _fit(tmp_path, grid, max_steps=4, limit_val_batches=0)
    names = sorted(p.name for p in (trainer.run_dir / "images").iterdir())
    assert names == ["a2b_iter0000002.png", "a2b_iter0000004.png", "b2a_iter0000002.png", "b2a_iter0000004.png"]
    assert grid.written and all(p.parent == trainer.run_dir / "images" for p in grid.written)
    with Image.open(trainer.run_dir / "images" / "a2b_iter0000004.png") as png:
        # two 8x8 tiles per row, two rows (input, output), 2 px padding
        assert png.size == (2 * 8 + 3 * 2, 2 * 8 + 3 * 2)
    assert model.training  # translate() switched to eval; the callback switched back


def test_fixed_batch_is_the_first_validation_images(tmp_path):
    data = TinyData(length=16, val_length=3)
    grid = ImageGrid(every_n_iterations=None, num_images=2)
    _fit(tmp_path, grid, max_steps=2, datamodule=data)
    expected = data.fixed_batch(2)
    torch.testing.assert_close(grid._batch["real_a"], expected["real_a"])
    torch.testing.assert_close(grid._batch["real_b"], expected["real_b"])


def test_fixed_images_are_used_even_with_validation_switched_off(tmp_path):
    data = TinyData(length=16, val_length=3, batch_size=2)
    grid = ImageGrid(every_n_iterations=None, num_images=3)
    _fit(tmp_path, grid, max_steps=2, datamodule=data, limit_val_batches=0)
    torch.testing.assert_close(grid._batch["real_a"], data.fixed_batch(3)["real_a"])


def test_first_training_batch_without_validation(tmp_path):
    data = TinyData(length=16, batch_size=2)
    data.fixed_batch = None  # a DataModule without fixed validation images
    grid = ImageGrid(every_n_iterations=None, num_images=4)
    _fit(tmp_path, grid, max_steps=2, datamodule=data, limit_val_batches=0)
    first_train_batch = next(iter(data.train_dataloader()))
    assert grid._batch["real_a"].shape == (2, 3, 8, 8)
    torch.testing.assert_close(grid._batch["real_a"], first_train_batch["real_a"])
    assert len(grid.written) == 2  # at the end of training, one per direction


def test_csv_logger_gets_png_files_only(tmp_path):
    grid = ImageGrid(every_n_iterations=None)
    _, trainer = _fit(tmp_path, grid, max_steps=2, logger="csv")
    assert isinstance(trainer.logger, CSVLogger)
    # validation end and training end fall on the same iteration: one grid per direction, not two
    assert sorted(p.name for p in grid.written) == ["a2b_iter0000002.png", "b2a_iter0000002.png"]
    assert all(p.is_file() for p in grid.written)


def test_tensorboard_logger_receives_the_grids(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    grid = ImageGrid(every_n_iterations=None)
    _, trainer = _fit(tmp_path, grid, max_steps=2, logger="tensorboard")
    assert isinstance(trainer.logger, TensorBoardLogger)
    trainer.logger.experiment.flush()
    events = EventAccumulator(trainer.logger.log_dir, size_guidance={"images": 0})
    events.Reload()
    assert {"samples/a2b", "samples/b2a"} <= set(events.Tags()["images"])


class _RecordingWandb(WandbLogger):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.images: list[tuple[str, int | None, tuple]] = []

    def log_image(self, key, images, step=None, **kwargs):
        self.images.append((key, step, tuple(images[0].shape)))
        super().log_image(key, images, step=step, **kwargs)


def test_wandb_logger_receives_the_grids(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")  # the real log_image code path, without a wandb service
    logger = _RecordingWandb(save_dir=str(tmp_path))
    grid = ImageGrid(every_n_iterations=2, at_validation_end=False, at_train_end=False, num_images=3)
    data = TinyData(length=16, batch_size=2)
    data.fixed_batch = None  # the grid then shows the first training batch
    _fit(tmp_path, grid, max_steps=2, logger=logger, limit_val_batches=0, datamodule=data)
    assert [(key, step) for key, step, _ in logger.images] == [("samples/a2b", 1), ("samples/b2a", 1)]
    assert logger.images[0][2] == (3, 2 * 8 + 3 * 2, 2 * 8 + 3 * 2)  # 2 images: the batch size
    import wandb

    wandb.finish()
    wandb.teardown()  # drop the process-wide "disabled" setup so later tests get a real offline run


def test_modules_without_translate_are_skipped(tmp_path):
    import lightning as L

    class NoTranslate(TinyGAN):
        translate = None

    grid = ImageGrid(every_n_iterations=1)
    trainer = ZooTrainer(
        accelerator="cpu",
        max_steps=2,
        default_root_dir=tmp_path,
        logger=False,
        callbacks=[grid],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        limit_val_batches=0,
    )
    model: L.LightningModule = NoTranslate()
    trainer.fit(model, datamodule=TinyData())
    assert grid.written == []


def test_translation_grid_layout():
    inputs = torch.rand(3, 1, 4, 6)  # grayscale, shown as RGB
    outputs = torch.rand(3, 3, 8, 12)  # a x2 super-resolution output: inputs are enlarged to match
    grid = make_translation_grid(inputs, outputs, padding=1)
    assert grid.shape == (3, 2 * 8 + 3, 3 * 12 + 4)
    top_left = grid[:, 1:9, 1:13]
    enlarged = torch.nn.functional.interpolate(inputs[:1], size=(8, 12), mode="nearest")[0].expand(3, -1, -1)
    torch.testing.assert_close(top_left, enlarged)
    torch.testing.assert_close(grid[:, 10:18, 1:13], outputs[0])


def test_exemplar_guided_methods_get_the_other_domain_as_exemplars_and_the_masks(tmp_path):
    from tests.methods.tiny_configs import build_tiny_datamodule, build_tiny_model

    model, _ = build_tiny_model("lomit", mask_source="given", paste_outside_mask=True)
    calls = []
    translate = model.translate

    def recording_translate(images, **kwargs):
        calls.append(kwargs)
        return translate(images, **kwargs)

    model.translate = recording_translate
    grid = ImageGrid(every_n_iterations=2, num_images=2, at_validation_end=False)
    trainer = ZooTrainer(accelerator="cpu", max_steps=2, default_root_dir=tmp_path, logger=False, callbacks=[grid],
                         enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                         limit_val_batches=0)
    trainer.fit(model, datamodule=build_tiny_datamodule("lomit"))
    assert sorted(p.name for p in grid.written) == ["a2b_iter0000002.png", "b2a_iter0000002.png"]
    assert [c["direction"] for c in calls] == ["a2b", "b2a"]
    assert all({"exemplar", "mask", "exemplar_mask"} <= c.keys() for c in calls), [sorted(c) for c in calls]
    assert calls[0]["exemplar"].shape[0] == calls[0]["mask"].shape[0] == 2
