"""One run, one folder: resuming continues the run folder and the logger run; failed starts leave nothing behind;
hyperparameters of the model and the DataModule never collide; library use has no process-wide side effects."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from zoo.cli import main
from zoo.trainer import RUN_FILE, ZooTrainer

REPO = Path(__file__).resolve().parents[1]
TINY_CYCLEGAN = REPO / "configs" / "tiny" / "cyclegan.yaml"  # logger: csv


def _fit(*args: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["fit", *args]) == 0
    return out.getvalue()


def _runs(root: Path) -> list[Path]:
    return sorted(root.rglob("version_*"))


def test_resume_continues_the_run_folder_and_appends_to_the_csv_log(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _fit("--config", str(TINY_CYCLEGAN), "--trainer.max_steps=2")
    (run,) = _runs(tmp_path / "runs")
    first_rows = list(csv.DictReader((run / "metrics.csv").open()))

    printed = _fit("--config", str(run / "config.yaml"), "--ckpt_path", "last", "--trainer.max_steps=4")
    assert _runs(tmp_path / "runs") == [run], "resuming must not open a new run folder"
    assert f"run folder {Path('runs') / run.relative_to(tmp_path / 'runs')}" in printed
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert rows[: len(first_rows)] == first_rows and len(rows) > len(first_rows)
    assert sorted(p.name for p in (run / "checkpoints").glob("last*.ckpt")) == ["last.ckpt"]
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["callbacks"]["_IterationTracker"]["iterations"] == 4
    # the changed config (max_steps) is kept beside the first one, which is not overwritten
    assert "max_steps: 2" in (run / "config.yaml").read_text()
    assert "max_steps: 4" in (run / "config_1.yaml").read_text()


def test_the_printed_resume_command_continues_the_same_wandb_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "wandb.yaml"
    config.write_text(TINY_CYCLEGAN.read_text().replace("  logger: csv\n", ""))  # the default logger: W&B offline
    printed = _fit("--config", str(config), "--trainer.max_steps=1")
    resume = next(line.split("resume", 1)[1].split() for line in printed.splitlines() if "resume " in line)
    assert resume[:2] == ["zoo", "fit"]
    (run,) = _runs(tmp_path / "runs")
    run_id = json.loads((run / RUN_FILE).read_text())["wandb_id"]

    _fit(*resume[2:], "--trainer.max_steps=2")
    assert _runs(tmp_path / "runs") == [run]
    offline_runs = sorted((run / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 2 and all(p.name.endswith(f"-{run_id}") for p in offline_runs)


class _Tiny(L.LightningModule):
    def __init__(self, image_size: int = 32, lr: float = 0.1) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.layer = torch.nn.Linear(2, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


class _TinyData(L.LightningDataModule):
    def __init__(self, image_size: int = 16) -> None:
        super().__init__()
        self.save_hyperparameters()

    def train_dataloader(self):
        return DataLoader(TensorDataset(torch.randn(4, 2)), batch_size=2)


@pytest.mark.parametrize("logger", ["csv", "tensorboard", "wandb"])
def test_a_model_and_a_datamodule_may_share_a_hyperparameter_name(tmp_path, logger):
    trainer = ZooTrainer(accelerator="cpu", max_steps=1, default_root_dir=tmp_path, logger=logger,
                         enable_progress_bar=False, enable_model_summary=False, enable_image_grid=False)
    trainer.fit(_Tiny(image_size=32), datamodule=_TinyData(image_size=16))
    assert trainer.iterations == 1
    if logger == "csv":
        import yaml

        hparams = yaml.safe_load((trainer.run_dir / "hparams.yaml").read_text())
        assert hparams["model"]["image_size"] == 32 and hparams["data"]["image_size"] == 16


def test_a_run_that_fails_before_its_first_iteration_leaves_no_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(TINY_CYCLEGAN), "--model.init_args.lr=-0.1"])
    assert exit_info.value.code == 2
    assert not (tmp_path / "runs").exists()
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("zoo: error: model.init_args.lr=-0.1") and "learning rate" in line


def test_a_failed_start_keeps_an_earlier_run_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _fit("--config", str(TINY_CYCLEGAN), "--trainer.max_steps=1")
    (run,) = _runs(tmp_path / "runs")
    if torch.cuda.is_available():
        pytest.skip("the failure used here is a missing GPU")
    with pytest.raises(SystemExit):
        main(["fit", "--config", str(run / "config.yaml"), "--ckpt_path", "last", "--trainer.accelerator=gpu"])
    assert _runs(tmp_path / "runs") == [run] and (run / "checkpoints" / "last.ckpt").is_file()


def test_a_requeued_slurm_job_finds_its_run_folder_and_hpc_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    first = ZooTrainer(accelerator="cpu", default_root_dir=tmp_path, run_name="job", logger="csv")
    run = first._created_run_dir
    assert json.loads((run / RUN_FILE).read_text())["slurm_job_id"] == "4242"
    (run / "hpc_ckpt_1.ckpt").write_bytes(b"")
    requeued = ZooTrainer(accelerator="cpu", default_root_dir=tmp_path, run_name="job", logger="csv")
    assert requeued.default_root_dir == str(run) and requeued._created_run_dir is None
    assert requeued._checkpoint_connector._hpc_resume_path == str(run / "hpc_ckpt_1.ckpt")
    monkeypatch.setenv("SLURM_JOB_ID", "4243")  # another job: a new folder
    other = ZooTrainer(accelerator="cpu", default_root_dir=tmp_path, run_name="job", logger="csv")
    assert other._created_run_dir != run


def test_ckpt_path_last_without_a_run_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        main(["fit", "--config", str(TINY_CYCLEGAN), "--ckpt_path", "last"])
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("zoo: error: --ckpt_path last: no run under") and "last.ckpt" in line


def test_keep_freed_memory_is_off_from_python_and_on_in_the_zoo_command(tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr("zoo.trainer._keep_freed_memory", lambda: calls.append(True) or True)
    ZooTrainer(accelerator="cpu", default_root_dir=tmp_path, logger=False)
    assert calls == []
    assert main(["fit", "--config", str(TINY_CYCLEGAN), "--print_config"]) == 0
    assert "keep_freed_memory: true" in capsys.readouterr().out
