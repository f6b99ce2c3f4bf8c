"""MetricsCallback: metrics of the validation translations during training, logged to every logger, synced over DDP.

The FID Inception has random weights saved to a file (no download); the values are meaningless but deterministic, which
is all that comparing the callback with :class:`~zoo.metrics.translation.TranslationMetrics` needs.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from tests.tiny import TinyData, TinyGAN
from zoo.callbacks import MetricsCallback
from zoo.data import UnpairedDataModule
from zoo.methods import CycleGAN
from zoo.metrics.translation import TranslationMetrics, translate_for_metrics
from zoo.nets.fid_inception import FIDInceptionV3
from zoo.trainer import ZooTrainer
from zoo.utils.random_weights import spread_random_state_dict
from zoo.weights import WeightsUnavailableError

REPO = Path(__file__).resolve().parents[2]
#: The published Inception file, which the offline tests never have.
INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"
TINY_CYCLEGAN = {"ngf": 4, "ndf": 4, "generator": "resnet_2blocks", "n_epochs": 1, "n_epochs_decay": 1}


@pytest.fixture(scope="module")
def inception_weights(tmp_path_factory) -> str:
    """A random FID Inception state dict whose features still differ between images: He-scaled convolutions and
    batch norms close to the identity keep the activations alive through the 90-odd layers."""
    state = spread_random_state_dict(FIDInceptionV3())
    path = tmp_path_factory.mktemp("weights") / "random_inception.pth"
    torch.save(state, path)
    return str(path)


def _toy_data(val_size: int) -> UnpairedDataModule:
    return UnpairedDataModule(root=None, image_size=32, toy_length=8, batch_size=1, val_size=val_size,
                              val_batch_size=4)


def _direct_metrics(model, datamodule, inception_weights: str, directions: tuple[str, ...]) -> dict[str, float]:
    """The callback's keys and values, computed with TranslationMetrics on the whole validation set in one process."""
    datamodule.setup("validate")
    metrics = TranslationMetrics("fid,kid", inception_weights=inception_weights)
    model.eval()
    values = {}
    for direction in directions:
        metrics.reset()
        for batch in datamodule.val_dataloader():
            inputs = translate_for_metrics(model, batch, direction=direction, paired=datamodule.paired, seed=0)
            metrics.update(inputs.fake, real=inputs.real, target=inputs.target, labels=inputs.labels)
        values.update({f"metrics/{direction}/{name}": value for name, value in metrics.compute().items()})
    return values


def _csv_rows(path: Path, key: str) -> dict[int, dict[str, str]]:
    """Rows of a Lightning ``metrics.csv`` that have ``key``, by step."""
    with path.open(newline="") as file:
        return {int(row["step"]): row for row in csv.DictReader(file) if row.get(key)}


def _run_zoo_fit(config: str, workdir: Path, **env: str) -> subprocess.CompletedProcess:
    path = workdir / "config.yaml"
    path.write_text(config)
    environment = {**os.environ, "ZOO_OFFLINE": "1", "WANDB_MODE": "offline", "PYTHONWARNINGS": "ignore",
                   "OMP_NUM_THREADS": str(torch.get_num_threads()), **env}  # as many threads as this process
    return subprocess.run([sys.executable, "-m", "zoo", "fit", "--config", str(path)], cwd=REPO, env=environment,
                          capture_output=True, text=True, timeout=300)


def _tiny_trainer(tmp_path, callback: MetricsCallback, *, max_steps: int, logger=False) -> ZooTrainer:
    return ZooTrainer(accelerator="cpu", max_steps=max_steps, default_root_dir=tmp_path, logger=logger,
                      callbacks=[callback], enable_progress_bar=False, enable_model_summary=False,
                      enable_checkpointing=False, enable_image_grid=False, num_sanity_val_steps=0)


def test_zoo_fit_logs_metrics_to_csv_and_tensorboard_every_n_iterations(tmp_path, inception_weights):
    config = f"""\
seed_everything: 0
model:
  class_path: zoo.methods.Pix2Pix
  init_args: {{ngf: 4, ndf: 4, generator: unet_64, n_epochs: 1, n_epochs_decay: 1}}
data:
  class_path: zoo.data.PairedDataModule
  init_args:
    {{root: null, toy_task: label2photo, image_size: 64, toy_length: 8, batch_size: 1, val_size: 2, val_batch_size: 2}}
trainer:
  max_steps: 3
  accelerator: cpu
  enable_model_summary: false
  enable_progress_bar: false
  default_root_dir: {tmp_path}
  logger:
    - class_path: lightning.pytorch.loggers.CSVLogger
      init_args: {{save_dir: {tmp_path}/logs, name: csv, version: 0}}
    - class_path: lightning.pytorch.loggers.TensorBoardLogger
      init_args: {{save_dir: {tmp_path}/logs, name: tensorboard, version: 0}}
  callbacks:
    - class_path: zoo.callbacks.MetricsCallback
      init_args:
        metrics: fid,kid,psnr,ssim
        every_n_iterations: 2
        inception_weights: {inception_weights}
"""
    result = _run_zoo_fit(config, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert output.count("zoo: metrics at iteration 2 on 2 validation images: fid ") == 1
    assert output.count("zoo: metrics at iteration 3 on 2 validation images: fid ") == 1  # when training ends

    rows = _csv_rows(tmp_path / "logs" / "csv" / "version_0" / "metrics.csv", "metrics/fid")
    assert sorted(rows) == [2, 3]
    for row in rows.values():
        values = {key: float(row[f"metrics/{key}"]) for key in ("fid", "kid", "kid_std", "psnr", "ssim")}
        assert all(value == value for value in values.values())  # no NaN
        assert values["fid"] > 0 and 0 < values["psnr"] < 100 and -1 <= values["ssim"] <= 1

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "logs" / "tensorboard" / "version_0")).Reload()
    assert {"metrics/fid", "metrics/kid", "metrics/psnr", "metrics/ssim"} <= set(events.Tags()["scalars"])
    fid = events.Scalars("metrics/fid")
    assert [event.step for event in fid] == [2, 3]
    assert [event.value for event in fid] == pytest.approx([float(rows[2]["metrics/fid"]),
                                                            float(rows[3]["metrics/fid"])], rel=1e-5)


def test_values_equal_translation_metrics_on_the_same_validation_data(tmp_path, inception_weights):
    callback = MetricsCallback(metrics="fid,kid", every_n_iterations=2, directions=["a2b"],
                               inception_weights=inception_weights)
    # trained in the layout the values are computed in afterwards: channels-last convolutions differ in the last
    # bits, which FID over two images turns into differences of 1e-4
    model, data = CycleGAN(**TINY_CYCLEGAN, channels_last=False), _toy_data(val_size=2)
    trainer = _tiny_trainer(tmp_path, callback, max_steps=2, logger="csv")
    trainer.fit(model, datamodule=data)

    assert model.training  # the callback put the model back in train mode
    assert list(callback.history) == [2]  # training ended at iteration 2, already measured
    logged = callback.history[2]
    # a model with two directions: one key per direction, even when only one is measured
    assert sorted(logged) == ["metrics/a2b/fid", "metrics/a2b/kid", "metrics/a2b/kid_std"]
    assert logged["metrics/a2b/fid"] > 0
    assert logged == pytest.approx(_direct_metrics(model, data, inception_weights, ("a2b",)), rel=1e-6)
    row = _csv_rows(trainer.run_dir / "metrics.csv", "metrics/a2b/fid")[2]
    assert float(row["metrics/a2b/kid"]) == pytest.approx(logged["metrics/a2b/kid"], rel=1e-6)


def test_missing_weights_offline_warn_once_and_training_goes_on(tmp_path):
    callback = MetricsCallback(metrics="fid,kid,psnr", every_n_iterations=1)  # the published Inception, not on disk
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer = _tiny_trainer(tmp_path, callback, max_steps=3)
        trainer.fit(TinyGAN(), datamodule=TinyData(length=8, val_length=2))
    messages = [str(w.message) for w in caught if "MetricsCallback" in str(w.message)]
    assert len(messages) == 1, messages
    assert "fid, kid" in messages[0] and INCEPTION_FILE in messages[0] and "https://" in messages[0]
    assert trainer.iterations == 3
    assert list(callback.history) == [1, 2, 3]
    assert all(sorted(values) == ["metrics/a2b/psnr", "metrics/b2a/psnr"] for values in callback.history.values())


def test_missing_weights_with_on_missing_weights_error_stop_before_training(tmp_path):
    callback = MetricsCallback(metrics="kid", on_missing_weights="error")
    trainer = _tiny_trainer(tmp_path, callback, max_steps=2)
    with pytest.raises(WeightsUnavailableError, match=f"(?s)kid: .*{INCEPTION_FILE}.*on_missing_weights='warn'"):
        trainer.fit(TinyGAN(), datamodule=TinyData(length=8, val_length=2))
    assert trainer.iterations == 0


@pytest.mark.ddp
def test_two_ddp_processes_log_the_values_of_one_process_over_the_same_images(tmp_path, inception_weights):
    """Three validation images on two processes (two and one): the gathered states give the one-process values."""
    config = f"""\
seed_everything: 0
model:
  class_path: zoo.methods.CycleGAN
  init_args: {TINY_CYCLEGAN}
data:
  class_path: zoo.data.UnpairedDataModule
  init_args: {{root: null, image_size: 32, toy_length: 8, batch_size: 1, val_size: 3, val_batch_size: 4}}
trainer:
  max_steps: 2
  accelerator: cpu
  devices: 2
  logger: csv
  enable_model_summary: false
  enable_progress_bar: false
  enable_image_grid: false
  default_root_dir: {tmp_path}
  run_name: ddp
  callbacks:
    - class_path: zoo.callbacks.MetricsCallback
      init_args:
        {{metrics: [fid, kid], every_n_iterations: 2, directions: [a2b], inception_weights: {inception_weights}}}
"""
    result = _run_zoo_fit(config, tmp_path, OMP_NUM_THREADS="1")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (result.stdout + result.stderr).count("zoo: metrics at iteration 2 on 3 validation images") == 1
    run_dir = tmp_path / "ddp" / "version_0"
    rows = _csv_rows(run_dir / "metrics.csv", "metrics/a2b/fid")
    assert sorted(rows) == [2]  # one row: only rank zero writes

    model = CycleGAN.load_from_checkpoint(run_dir / "checkpoints" / "last.ckpt", map_location="cpu")
    expected = _direct_metrics(model, _toy_data(val_size=3), inception_weights, ("a2b",))
    logged = {key: float(rows[2][key]) for key in expected}
    # the shards run in batches of two and one, the reference in one batch of three: float32 rounding differs
    assert logged == pytest.approx(expected, rel=1e-4, abs=1e-5)
