"""Every registered method trains under 2-process DDP on CPU, under bf16-mixed, and resumes exactly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.methods.tiny_configs import CONFIG_DIR, build_tiny_datamodule, build_tiny_model, trainable_methods
from zoo.trainer import ZooTrainer

METHODS = trainable_methods()
#: One method of each training pattern runs under DDP in the default suite (two-generator GAN with image pools,
#: multimodal encoders, contrastive patch sampling, masked exemplars, label maps with feature matching, SR); the
#: others share those code paths through ``TranslationMethod`` and run with ``-m slow``.
DDP_DEFAULT = {"cyclegan", "munit", "cut", "lomit", "pix2pixhd", "srgan"}
DDP_PARAMS = [name if name in DDP_DEFAULT else pytest.param(name, marks=pytest.mark.slow) for name in METHODS]
REPO = Path(__file__).resolve().parents[2]


def _trainer(tmp_path, **kwargs) -> ZooTrainer:
    defaults = dict(accelerator="cpu", default_root_dir=tmp_path, logger=False, enable_progress_bar=False,
                    enable_model_summary=False, enable_image_grid=False, limit_val_batches=0)
    return ZooTrainer(**{**defaults, **kwargs})


@pytest.mark.parametrize("name", METHODS)
def test_bf16_mixed_training(name, tmp_path):
    model, _ = build_tiny_model(name)
    trainer = _trainer(tmp_path, max_steps=2, precision="bf16-mixed")
    trainer.fit(model, datamodule=build_tiny_datamodule(name))
    assert trainer.iterations == 2
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert all(p.dtype == torch.float32 for p in model.parameters()), "bf16-mixed keeps float32 master weights"


@pytest.mark.ddp
@pytest.mark.parametrize("name", DDP_PARAMS)
def test_two_process_ddp_on_cpu(name, tmp_path):
    """``zoo fit`` with devices=2 (gloo): ranks agree on the weights after training."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "zoo", "fit", "--config", str(CONFIG_DIR / f"{name}.yaml"),
           "--trainer.devices=2", "--trainer.max_steps=2", f"--trainer.default_root_dir={tmp_path}",
           "--trainer.logger=false", "--trainer.enable_progress_bar=false", "--trainer.limit_val_batches=0"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ckpts = list(Path(tmp_path).rglob("last.ckpt"))
    assert len(ckpts) == 1, f"expected one run with one last.ckpt, found {ckpts}"
    state = torch.load(ckpts[0], map_location="cpu", weights_only=True)
    assert state["global_step"] == 2 * type(build_tiny_model(name)[0]).optimizer_steps_per_iteration
    assert "ddp" in (proc.stdout + proc.stderr).lower() or "distributed" in (proc.stdout + proc.stderr).lower()


@pytest.mark.parametrize("name", METHODS)
def test_resume_mid_epoch_is_exact(name, tmp_path):
    """N iterations straight == N/2, stop, resume from the checkpoint, N/2 more (weights, pools, RNG, data order)."""
    overrides = {"pool_size": 2} if name == "cyclegan" else {}  # a small pool exercises its RNG and history

    def run(max_steps: int, root: Path, ckpt_path: str | None = None):
        torch.manual_seed(0)
        model, _ = build_tiny_model(name, **overrides)
        trainer = _trainer(root, max_steps=max_steps)
        trainer.fit(model, datamodule=build_tiny_datamodule(name), ckpt_path=ckpt_path)
        return model, trainer

    straight, _ = run(6, tmp_path / "straight")
    _, first_half = run(3, tmp_path / "half")
    ckpt = first_half.run_dir / "checkpoints" / "last.ckpt"
    resumed, trainer = run(6, tmp_path / "resumed", ckpt_path=str(ckpt))
    assert trainer.iterations == 6
    for (key, expected), actual in zip(straight.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(expected, actual), f"{name}: {key} differs after resuming"
    if name == "cyclegan":
        assert len(straight.pool_fake_b.images) == len(resumed.pool_fake_b.images) == 2
        for a, b in zip(straight.pool_fake_b.images, resumed.pool_fake_b.images, strict=True):
            assert torch.equal(a, b)
