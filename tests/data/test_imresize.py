"""MATLAB-compatible bicubic resize: the official benchmark LR files, kernel facts, layouts and dtypes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from zoo.data import imresize
from zoo.data.imresize import contributions, cubic, output_size_for

SR_BENCHMARKS = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "sr_benchmarks"
needs_benchmarks = pytest.mark.skipif(
    not SR_BENCHMARKS.is_dir(), reason=f"SR benchmark images not found at {SR_BENCHMARKS.resolve()}"
)


def _pairs(dataset: str, scale: int) -> list[tuple[Path, Path]]:
    folder = SR_BENCHMARKS / dataset / f"image_SRF_{scale}"
    hr_files = sorted(folder.glob("*_HR.png"))
    assert hr_files, f"no HR files in {folder}"
    return [(hr, hr.with_name(hr.name.replace("_HR.png", "_LR.png"))) for hr in hr_files]


@needs_benchmarks
@pytest.mark.parametrize("dataset", ["Set5", "Set14"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_reproduces_every_official_lr_file_bit_exactly(dataset, scale):
    for hr_path, lr_path in _pairs(dataset, scale):
        hr, lr = np.asarray(Image.open(hr_path)), np.asarray(Image.open(lr_path))
        out = imresize(hr, 1 / scale)
        assert out.dtype == np.uint8 and out.shape == lr.shape, hr_path.name
        assert np.array_equal(out, lr), f"{hr_path.name}: {np.count_nonzero(out != lr)} pixels differ"


@needs_benchmarks
def test_torch_path_and_mirror_borders_on_an_official_file():
    hr_path, lr_path = _pairs("Set5", 4)[2]
    hr, lr = np.array(Image.open(hr_path)), np.array(Image.open(lr_path))
    batch = torch.from_numpy(hr).permute(2, 0, 1)[None]  # (1, 3, H, W) uint8
    out = imresize(batch, 0.25)
    assert out.dtype == torch.uint8 and torch.equal(out[0].permute(1, 2, 0), torch.from_numpy(lr))
    # float [0, 1] images with 8-bit rounding per pass give the same result
    unit = imresize(batch.float() / 255, 0.25, quantize=255)
    assert torch.equal((unit * 255).round().to(torch.uint8), out)
    # MATLAB's source mirrors at the borders; the published files were made with clamped (replicated) borders
    mirrored = imresize(hr, 0.25, border="symmetric").astype(int)
    diff = np.abs(mirrored - lr)
    assert diff[4:-4, 4:-4].max() == 0 and diff.max() > 2


def test_cubic_kernel_values():
    x = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, -0.5, -1.5])
    np.testing.assert_allclose(cubic(x), [1.0, 0.5625, 0.0, -0.0625, 0.0, 0.0, 0.5625, -0.0625], atol=1e-15)


def test_contributions_upscale_and_downscale():
    indices, weights = contributions(10, 40, 4.0)
    assert weights.shape[1] == 4  # plain 4-tap kernel when enlarging (the zero column is dropped)
    np.testing.assert_allclose(weights.sum(1), 1.0, atol=1e-12)
    # output pixel 1 sits at input coordinate 1/4 + 0.5 * (1 - 1/4) = 0.625 (1-based): taps -1, 0, 1, 2 at distances
    # 1.625, 0.625, -0.375, -1.375, where -1 and 0 are clamped to the first pixel
    np.testing.assert_allclose(weights[0], cubic(np.array([1.625, 0.625, -0.375, -1.375])), atol=1e-12)
    assert indices.min() == 0 and indices.max() == 9
    indices, weights = contributions(40, 10, 0.25)
    assert weights.shape[1] == 16  # antialiasing: the kernel spans 4 / 0.25 input pixels
    np.testing.assert_allclose(weights.sum(1), 1.0, atol=1e-12)
    _, plain = contributions(40, 10, 0.25, antialias=False)
    assert plain.shape[1] == 4


def test_layouts_dtypes_and_sizes():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (24, 36, 3), dtype=np.uint8)
    out = imresize(rgb, 0.5)
    assert out.shape == (12, 18, 3) and out.dtype == np.uint8
    for c in range(3):  # channels are independent; a 2-D grey image works as well
        assert np.array_equal(imresize(rgb[..., c], 0.5), out[..., c])
    chw = torch.from_numpy(rgb).permute(2, 0, 1).contiguous()
    assert torch.equal(imresize(chw, 0.5), torch.from_numpy(out).permute(2, 0, 1))
    # float: no rounding, same dtype; a constant image stays constant
    flat = np.full((8, 8), 0.3, dtype=np.float32)
    up = imresize(flat, 3)
    assert up.dtype == np.float32 and up.shape == (24, 24) and np.allclose(up, 0.3, atol=1e-6)
    assert imresize(torch.rand(2, 3, 8, 10, dtype=torch.float64), 2).shape == (2, 3, 16, 20)
    # explicit output size; MATLAB's ceil(255 / 3) is 85 despite float noise
    assert imresize(rgb, output_size=(10, 20)).shape == (10, 20, 3)
    assert output_size_for(255, 1 / 3) == 85 and output_size_for(10, 0.25) == 3


def test_accelerator_code_path_matches_the_numpy_one():
    # tensors on an accelerator are resized with torch ops; run that code on the CPU here
    from zoo.data.imresize import _pass_numpy, _pass_torch

    image = np.random.default_rng(2).random((2, 3, 9, 11))
    indices, weights = contributions(9, 36, 4.0)
    expected = _pass_numpy(image, 2, indices, weights)
    np.testing.assert_allclose(_pass_torch(torch.from_numpy(image), 2, indices, weights).numpy(), expected, rtol=1e-12)


def test_uint8_is_the_float_resize_with_rounding_after_each_pass():
    rng = np.random.default_rng(1)
    small = rng.integers(40, 216, (16, 16), dtype=np.uint8)  # no clipping in either pass
    rows = np.floor(imresize(small.astype(np.float64), output_size=(64, 16)) + 0.5)
    both = np.floor(imresize(rows, output_size=(64, 64)) + 0.5)
    assert np.array_equal(imresize(small, 4), np.clip(both, 0, 255).astype(np.uint8))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: imresize(np.zeros((4, 4), np.uint8)), ValueError, "exactly one"),
        (lambda: imresize(np.zeros((4, 4), np.uint8), 2, output_size=(8, 8)), ValueError, "exactly one"),
        (lambda: imresize(np.zeros((4, 4), np.uint8), -1), ValueError, "positive"),
        (lambda: imresize(np.zeros((4, 4), np.int32), 2), TypeError, "uint8 or float"),
        (lambda: imresize(np.zeros((2, 4, 4, 3), np.uint8), 2), ValueError, "numpy image"),
        (lambda: imresize([[1, 2]], 2), TypeError, "numpy array or a torch tensor"),
        (lambda: imresize(np.zeros((4, 4), np.uint8), 2, quantize=255), ValueError, "float inputs"),
        (lambda: imresize(np.zeros((4, 4), np.uint8), 2, border="wrap"), ValueError, "border"),
    ],
)
def test_bad_arguments_are_explained(call, error, match):
    with pytest.raises(error, match=match):
        call()
