"""Checkpoints survive full disks, failed writes and ``kill -9``."""

from __future__ import annotations

import errno
import io
import random
import signal
import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from zoo.trainer import IterationCheckpoint, ZooTrainer
from zoo.utils import checkpoint_io
from zoo.utils.checkpoint_io import AtomicCheckpointIO, atomic_torch_save

FREE = 123_456_789


def _failing_serialiser(after_calls: int = 0):
    """A serialiser that works ``after_calls`` times, then writes part of the data and fails as a full disk does."""
    calls = {"n": 0}

    def serialise(obj: Any, file: Any) -> None:
        calls["n"] += 1
        if calls["n"] <= after_calls:
            torch.save(obj, file)
            return
        buffer = io.BytesIO()
        torch.save(obj, buffer)
        file.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    return serialise


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if ".tmp" in p.name)


def test_failed_write_keeps_existing_checkpoints(tmp_path, monkeypatch):
    io_plugin = AtomicCheckpointIO()
    last, older = tmp_path / "last.ckpt", tmp_path / "epoch=0-iteration=1.ckpt"
    io_plugin.save_checkpoint({"step": 1, "w": torch.arange(1000.0)}, last)
    io_plugin.save_checkpoint({"step": 1, "w": torch.arange(1000.0)}, older)
    before = {p: p.read_bytes() for p in (last, older)}

    monkeypatch.setattr(checkpoint_io, "_serialise", _failing_serialiser())
    usage = namedtuple("Usage", "total used free")(0, 0, FREE)
    monkeypatch.setattr(checkpoint_io.shutil, "disk_usage", lambda _: usage)
    new_state = {"step": 2, "w": torch.arange(5000.0)}
    expected_size = len(_serialised(new_state))
    for target in (last, tmp_path / "epoch=0-iteration=2.ckpt"):
        with pytest.raises(OSError) as failure:
            io_plugin.save_checkpoint(new_state, target)
        message = str(failure.value)
        assert "\n" not in message and failure.value.errno == errno.ENOSPC
        assert str(target) in message and "default_root_dir" in message
        assert f"{expected_size} bytes" in message and f"{FREE} bytes" in message

    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch=0-iteration=1.ckpt", "last.ckpt"]
    for path, content in before.items():
        assert path.read_bytes() == content
        assert torch.load(path, weights_only=True)["step"] == 1


def _serialised(obj: Any) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def test_atomic_torch_save_writes_and_replaces(tmp_path):
    target = tmp_path / "sub" / "weights.pt"
    atomic_torch_save({"a": torch.ones(3)}, target)
    atomic_torch_save({"a": torch.zeros(3)}, target)
    assert torch.equal(torch.load(target, weights_only=True)["a"], torch.zeros(3))
    assert _leftovers(tmp_path) == []


def test_unserialisable_object_raises_oserror_and_keeps_the_file(tmp_path):
    target = tmp_path / "last.ckpt"
    atomic_torch_save({"step": 1}, target)
    with pytest.raises(OSError, match="last.ckpt"):
        atomic_torch_save({"step": 2, "bad": lambda: None}, target)
    assert torch.load(target, weights_only=True) == {"step": 1}
    assert _leftovers(tmp_path) == []


def test_stale_temporaries_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".last.ckpt.tmp-{int(dead.stdout)}-0123abcd"
    stale.write_bytes(b"partial")
    atomic_torch_save({"step": 1}, tmp_path / "last.ckpt")
    assert not stale.exists()


def test_remove_checkpoint(tmp_path):
    target = tmp_path / "x.ckpt"
    AtomicCheckpointIO().save_checkpoint({"step": 1}, target)
    AtomicCheckpointIO().remove_checkpoint(target)
    assert not target.exists()


class _Tiny(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 1)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self.layer(batch[0]).pow(2).mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _tiny_trainer(tmp_path: Path, **kwargs: Any) -> ZooTrainer:
    return ZooTrainer(default_root_dir=tmp_path, logger=False, enable_progress_bar=False, enable_model_summary=False,
                      enable_image_grid=False, **kwargs)


def test_zoo_trainer_uses_atomic_checkpoint_io_by_default(tmp_path):
    assert isinstance(_tiny_trainer(tmp_path).strategy.checkpoint_io, AtomicCheckpointIO)
    own = TorchCheckpointIO()
    assert _tiny_trainer(tmp_path, plugins=[own]).strategy.checkpoint_io is own
    ddp = _tiny_trainer(tmp_path, accelerator="cpu", devices=2, strategy="ddp")
    assert isinstance(ddp.strategy.checkpoint_io, AtomicCheckpointIO)


def test_training_stops_on_a_failed_save_and_keeps_earlier_checkpoints(tmp_path, monkeypatch):
    ckpt_dir = tmp_path / "ckpts"
    # every iteration saves epoch=...ckpt then last.ckpt: the 3rd save is iteration 2's epoch=... file
    monkeypatch.setattr(checkpoint_io, "_serialise", _failing_serialiser(after_calls=2))
    trainer = _tiny_trainer(tmp_path, max_steps=5,
                            callbacks=[IterationCheckpoint(every_n_iterations=1, dirpath=ckpt_dir)])
    data = DataLoader(TensorDataset(torch.randn(16, 4)), batch_size=2)
    with pytest.raises(OSError, match="No space left on device"):
        trainer.fit(_Tiny(), train_dataloaders=data)

    assert sorted(p.name for p in ckpt_dir.iterdir()) == ["epoch=0-iteration=1.ckpt", "last.ckpt"]
    for path in ckpt_dir.iterdir():
        state = torch.load(path, weights_only=True)
        assert state["callbacks"]["_IterationTracker"]["iterations"] == 1
    assert _leftovers(tmp_path) == []


_CHILD = """
import sys, time, torch
from zoo.utils.checkpoint_io import AtomicCheckpointIO
io_plugin, path = AtomicCheckpointIO(), sys.argv[1]
weights = torch.empty(50_000_000)  # 200 MB
for step in range(1_000_000):
    weights.fill_(step)
    start = time.perf_counter()
    io_plugin.save_checkpoint({"step": step, "weights": weights}, path)
    if step == 0:
        print("ready", time.perf_counter() - start, flush=True)
"""


def test_kill_9_during_a_write_leaves_a_complete_checkpoint(tmp_path):
    target = tmp_path / "last.ckpt"
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(target)], stdout=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()
        assert line.startswith("ready"), line
        save_seconds = float(line.split()[1])
        time.sleep(random.uniform(0.0, min(3 * save_seconds, 4.0)))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    state = torch.load(target, weights_only=True)
    assert state["weights"].numel() == 50_000_000
    assert bool((state["weights"] == state["step"]).all())
