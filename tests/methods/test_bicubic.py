"""Bicubic baseline: MATLAB-exact upscaling, the SR test protocol, and ``zoo test`` on Set5 x4 (28.43 dB)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException

import zoo
from zoo.cli import main
from zoo.data import imresize
from zoo.methods import Bicubic
from zoo.registry import get_method

REPO = Path(__file__).resolve().parents[2]
SR_BENCHMARKS = REPO / ".." / "shared" / "data" / "sr_benchmarks"

#: Bicubic x4 on Set5, PSNR on Y with a 4-pixel shave (SRGAN paper, Table 2).
PUBLISHED_SET5_X4_PSNR = 28.43


def test_registered_as_a_non_trainable_sr_method():
    assert get_method("bicubic") is Bicubic and Bicubic.trainable is False
    model = zoo.create("bicubic", scale=3)
    assert model.scale == 3 and model.directions == ("a2b",) and model.size_multiple == 1
    assert model.input_channels() == model.output_channels() == 3


def test_translate_is_matlab_imresize_of_the_8_bit_image():
    g = torch.Generator().manual_seed(0)
    lr = torch.randint(0, 256, (2, 3, 6, 7), generator=g, dtype=torch.uint8)
    model = Bicubic(scale=4)
    out = model.translate(lr.float() / 255, seed=0)
    assert out.shape == (2, 3, 24, 28) and out.min() >= 0 and out.max() <= 1
    assert torch.equal((out * 255).round().to(torch.uint8), imresize(lr, 4))
    # model space [-1, 1] gives the same images
    assert torch.allclose((model(lr.float() / 127.5 - 1) + 1) / 2, out, atol=1e-6)
    # without 8-bit rounding: a float resize, clipped to [0, 1]
    smooth = Bicubic(scale=2, quantize=False).translate(torch.full((1, 3, 4, 4), 0.25))
    assert torch.allclose(smooth, torch.full((1, 3, 8, 8), 0.25))


def test_bad_inputs_and_training_are_refused():
    model = Bicubic(scale=2)
    with pytest.raises(ValueError, match="input channels"):
        model.translate(torch.rand(1, 1, 4, 4))
    with pytest.raises(ValueError, match="direction"):
        model.translate(torch.rand(1, 3, 4, 4), direction="b2a")
    with pytest.raises(ValueError, match="scale"):
        Bicubic(scale=0)
    with pytest.raises(MisconfigurationException, match="nothing to train"):
        model.training_step({}, 0)


def test_test_loop_on_the_toy_world_reports_every_image(tmp_path, capsys):
    code = main(["test", "--config", str(REPO / "configs" / "tiny" / "bicubic.yaml"),
                 f"--trainer.default_root_dir={tmp_path}", "--trainer.enable_progress_bar=false"])
    assert code in (0, None)
    out = capsys.readouterr().out
    assert "test x4 (Y channel, 4-pixel border removed):" in out
    assert len(re.findall(r"^image_\d+ +PSNR", out, flags=re.M)) == 2 and "(2 images)" in out


@pytest.mark.skipif(not SR_BENCHMARKS.is_dir(), reason=f"SR benchmark images not found at {SR_BENCHMARKS.resolve()}")
def test_zoo_test_on_set5_prints_the_published_psnr(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(REPO)  # the config names the data relative to the repository
    code = main(["test", "--config", "configs/bicubic.yaml", f"--trainer.default_root_dir={tmp_path}",
                 "--trainer.enable_progress_bar=false"])
    assert code in (0, None)
    out = capsys.readouterr().out
    rows = re.findall(r"^(img_\d+_SRF_4_HR\.png) +PSNR +([\d.]+) dB +SSIM ([\d.]+)", out, flags=re.M)
    assert [name for name, _, _ in rows] == [f"img_00{k}_SRF_4_HR.png" for k in range(1, 6)]
    mean = re.search(r"^mean +PSNR +([\d.]+) dB +SSIM ([\d.]+) +\(5 images\)", out, flags=re.M)
    assert mean, out
    assert abs(float(mean.group(1)) - PUBLISHED_SET5_X4_PSNR) <= 0.01
    assert float(mean.group(1)) == pytest.approx(np.mean([float(p) for _, p, _ in rows]), abs=1e-4)
