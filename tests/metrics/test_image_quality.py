"""PSNR / SSIM against the authors' MATLAB values and the published bicubic baselines, and the SRMetrics report."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import structural_similarity

from zoo.data import imresize
from zoo.metrics import SRMetrics, psnr, quantize, rgb_to_y, ssim

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
RCAN = SHARED_DATA / "sr_set5_rcan"
BENCHMARKS = SHARED_DATA / "sr_benchmarks"
needs_rcan = pytest.mark.skipif(not RCAN.is_dir(), reason=f"RCAN Set5 files not found at {RCAN.resolve()}")
needs_benchmarks = pytest.mark.skipif(
    not BENCHMARKS.is_dir(), reason=f"SR benchmark images not found at {BENCHMARKS.resolve()}"
)

#: Bicubic x4 PSNR (Y, 4-pixel shave) as published: Set5 in the SRGAN paper's Table 2, Set14 in the EDSR table
#: (SRGAN prints 25.99); both quoted in sr_benchmarks/PROVENANCE.md.
PUBLISHED_BICUBIC_X4 = {"Set5": 28.43, "Set14": 26.00}


def _load(path: Path) -> np.ndarray:
    return np.array(Image.open(path))


def _rcan_results() -> list[tuple[int, str, float, float]]:
    """(scale, name, PSNR, SSIM) of RCAN in the authors' MATLAB evaluation, for the scales whose HR is shipped."""
    text = (RCAN / "PSNR_SSIM_Results_BI_model.txt").read_text()
    method = text.split("Method_2")[0]  # Method_1 is RCAN; RCANplus outputs are not shipped
    rows = re.findall(r"x(\d) \d+ (\w+)_RCAN_x\d\.png: PSNR= ([\d.]+) SSIM= ([\d.]+)", method)
    return [(int(s), name, float(p), float(q)) for s, name, p, q in rows if (RCAN / "HR" / "Set5" / f"x{s}").is_dir()]


@needs_rcan
def test_matches_the_authors_matlab_values_per_image():
    results = _rcan_results()
    assert len(results) == 15, "expected the x2, x3 and x4 rows of the 5 Set5 images"
    for scale, name, want_psnr, want_ssim in results:
        sr = _load(RCAN / "SR" / "BI" / "RCAN" / "Set5" / f"x{scale}" / f"{name}_RCAN_x{scale}.png")
        hr = _load(RCAN / "HR" / "Set5" / f"x{scale}" / f"{name}_HR_x{scale}.png")
        got_psnr = psnr(sr, hr, crop_border=scale, y_channel=True)
        got_ssim = ssim(sr, hr, crop_border=scale, y_channel=True)
        assert abs(got_psnr - want_psnr) < 1e-3, (scale, name, got_psnr, want_psnr)
        assert abs(got_ssim - want_ssim) < 1e-4, (scale, name, got_ssim, want_ssim)


def _bicubic(dataset: str, scale: int) -> dict[str, tuple[float, float]]:
    values = {}
    for hr_path in sorted((BENCHMARKS / dataset / f"image_SRF_{scale}").glob("*_HR.png")):
        hr, lr = _load(hr_path), _load(hr_path.with_name(hr_path.name.replace("_HR", "_LR")))
        up = imresize(lr, scale)
        values[hr_path.name] = (psnr(up, hr, crop_border=scale, y_channel=True),
                                ssim(up, hr, crop_border=scale, y_channel=True))
    return values


@needs_benchmarks
@pytest.mark.parametrize("dataset", sorted(PUBLISHED_BICUBIC_X4))
def test_bicubic_x4_gives_the_published_baseline(dataset):
    values = _bicubic(dataset, 4)
    assert len(values) == {"Set5": 5, "Set14": 14}[dataset]
    mean_psnr = np.mean([p for p, _ in values.values()])
    assert abs(mean_psnr - PUBLISHED_BICUBIC_X4[dataset]) <= 0.01, mean_psnr
    # per image, against the table shipped with the data (4 decimals, MATLAB-verified evaluation)
    with open(BENCHMARKS / "BICUBIC_BASELINE.csv") as f:
        table = {r["file"]: r for r in csv.DictReader(f) if r["set"] == dataset and r["scale"] == "4"}
    for name, (got_psnr, got_ssim) in values.items():
        assert abs(got_psnr - float(table[name]["psnr_y"])) < 1e-3, name
        assert abs(got_ssim - float(table[name]["ssim_y"])) < 1e-4, name


def test_y_channel_is_bt601_studio_range():
    black, white = np.zeros((1, 1, 3), np.uint8), np.full((1, 1, 3), 255, np.uint8)
    as_batch = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None].double()  # noqa: E731
    assert rgb_to_y(as_batch(black)).item() == pytest.approx(16.0)
    assert rgb_to_y(as_batch(white)).item() == pytest.approx(235.0)
    red = np.zeros((1, 1, 3), np.uint8)
    red[..., 0] = 255
    assert rgb_to_y(as_batch(red)).item() == pytest.approx(16 + 65.481)


def test_psnr_definition_layouts_and_crop():
    rng = np.random.default_rng(0)
    target = rng.integers(10, 240, (20, 24, 3), dtype=np.uint8)
    pred = target.copy()
    assert psnr(pred, target) == float("inf")
    pred[0, 0, 0] += 5  # one pixel, in the border
    mse = 25 / pred.size
    assert psnr(pred, target) == pytest.approx(10 * np.log10(255**2 / mse))
    assert psnr(pred, target, crop_border=1) == float("inf")
    # Y channel: the error is weighted by 65.481 / 255 on one of H*W values
    mse_y = (5 * 65.481 / 255) ** 2 / (20 * 24)
    assert psnr(pred, target, y_channel=True) == pytest.approx(10 * np.log10(255**2 / mse_y))
    # tensors are channels first; float tensors are [0, 1]; a batch gives one value per image
    chw_pred, chw_target = (torch.from_numpy(a).permute(2, 0, 1) for a in (pred, target))
    assert psnr(chw_pred, chw_target, y_channel=True) == pytest.approx(psnr(pred, target, y_channel=True))
    assert psnr(chw_pred.double() / 255, chw_target.double() / 255) == pytest.approx(psnr(pred, target))
    batch = psnr(torch.stack([chw_pred, chw_target]), torch.stack([chw_target, chw_target]))
    assert batch.shape == (2,) and batch[0] == pytest.approx(psnr(pred, target)) and batch[1] == float("inf")
    # a single-channel image is compared on its grey values, with or without y_channel
    gray_pred, gray_target = pred[..., 0], target[..., 0]
    assert psnr(gray_pred, gray_target, y_channel=True) == pytest.approx(psnr(gray_pred, gray_target))


def test_ssim_is_wang_et_al_with_a_gaussian_window():
    rng = np.random.default_rng(1)
    target = rng.integers(0, 256, (40, 48), dtype=np.uint8)
    pred = np.clip(target.astype(int) + rng.integers(-20, 21, target.shape), 0, 255).astype(np.uint8)
    expected = structural_similarity(pred.astype(np.float64), target.astype(np.float64), data_range=255,
                                     gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    assert ssim(pred, target) == pytest.approx(expected, abs=1e-10)
    assert ssim(target, target) == pytest.approx(1.0)
    # colour without y_channel: mean of the per-channel values
    rgb_pred, rgb_target = np.stack([pred, target, pred], -1), np.stack([target, target, target], -1)
    assert ssim(rgb_pred, rgb_target) == pytest.approx((2 * expected + 1) / 3)


def test_accelerator_code_path_matches_the_numpy_one():
    # tensors on an accelerator are measured with torch ops; run that code on the CPU here
    from zoo.metrics.image_quality import _filter_valid

    image = np.random.default_rng(3).random((2, 1, 20, 17)) * 255
    np.testing.assert_allclose(_filter_valid(torch.from_numpy(image)).numpy(), _filter_valid(image), rtol=1e-12)
    assert np.allclose(rgb_to_y(torch.from_numpy(image).expand(-1, 3, -1, -1)).numpy(),
                       rgb_to_y(np.repeat(image, 3, axis=1)))


@pytest.mark.parametrize(
    ("pred", "target", "kwargs", "match"),
    [
        (np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9, 3), np.uint8), {}, "shapes differ"),
        (np.zeros((8, 8, 4), np.uint8), np.zeros((8, 8, 4), np.uint8), {}, "1 or 3 channels"),
        (np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.uint8), {"crop_border": 4}, "leaves nothing"),
        (np.zeros((8, 8), np.int16), np.zeros((8, 8), np.int16), {}, "uint8"),
    ],
)
def test_bad_inputs_are_explained(pred, target, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        psnr(pred, target, **kwargs)


# ------------------------------------------------------------------------------------------------------ SRMetrics


def _random_pair(seed: int, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(2, 3, size, size, generator=g) * 2 - 1
    pred = (target + 0.1 * torch.randn(target.shape, generator=g)).clamp(-1, 1)
    return pred, target


def test_sr_metrics_quantize_measure_and_report(capsys):
    pred, target = _random_pair(0)
    metrics = SRMetrics(4)
    assert metrics.crop_border == 4 and metrics.y_channel
    records = metrics.update(pred, target, ["a/one.png", "b/two.png"])
    pred_u8, target_u8 = quantize(pred), quantize(target)
    assert pred_u8.dtype == torch.uint8
    assert torch.equal(quantize(torch.tensor([-1.0, 1.0, 0.0])), torch.tensor([0, 255, 128], dtype=torch.uint8))
    for k, record in enumerate(records):
        assert record["psnr"] == pytest.approx(psnr(pred_u8[k], target_u8[k], crop_border=4, y_channel=True))
        assert record["ssim"] == pytest.approx(ssim(pred_u8[k], target_u8[k], crop_border=4, y_channel=True))
    # the same images in [0, 1] give the same values
    unit = SRMetrics(4, value_range=(0.0, 1.0))
    unit.update((pred + 1) / 2, (target + 1) / 2, ["a/one.png", "b/two.png"])
    assert unit.compute()["psnr"] == pytest.approx(metrics.compute()["psnr"])
    mean = metrics.compute()
    assert mean["count"] == 2 and mean["psnr"] == pytest.approx((records[0]["psnr"] + records[1]["psnr"]) / 2)
    table = metrics.table()
    assert "one.png" in table and "two.png" in table and f"{mean['psnr']:.4f}" in table.splitlines()[-1]
    assert metrics.finish(None) == mean
    printed = capsys.readouterr().out
    assert "x4" in printed and "mean" in printed and len(metrics) == 0


def test_sr_metrics_gray_files_are_compared_on_grey_values():
    g = torch.Generator().manual_seed(2)
    gray_target = torch.rand(1, 1, 24, 24, generator=g) * 2 - 1
    gray_pred = (gray_target + 0.05 * torch.randn(gray_target.shape, generator=g)).clamp(-1, 1)
    single = SRMetrics(2)
    single.update(gray_pred, gray_target, ["x"])
    replicated = SRMetrics(2)
    replicated.update(gray_pred.expand(-1, 3, -1, -1), gray_target.expand(-1, 3, -1, -1), ["x"], gray=[True])
    as_colour = SRMetrics(2)
    as_colour.update(gray_pred.expand(-1, 3, -1, -1), gray_target.expand(-1, 3, -1, -1), ["x"])
    assert replicated.compute()["psnr"] == pytest.approx(single.compute()["psnr"], abs=1e-9)
    # Y of replicated grey is 16 + 219/255 * grey: 20 log10(255 / 219) dB higher
    shift = as_colour.compute()["psnr"] - single.compute()["psnr"]
    assert shift == pytest.approx(20 * np.log10(255 / 219), abs=1e-6)


def test_sr_metrics_sync_gathers_ranks_and_drops_padding_duplicates(monkeypatch):
    metrics = SRMetrics(2)
    pred, target = _random_pair(3)
    metrics.update(pred, target, ["img_b", "img_a"])
    other_rank = [{"name": "img_c", "psnr": 30.0, "ssim": 0.9}, {"name": "img_a", "psnr": 0.0, "ssim": 0.0}]
    dist = torch.distributed
    monkeypatch.setattr(dist, "is_available", lambda: True)
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    monkeypatch.setattr(dist, "get_rank", lambda: 0)

    def all_gather_object(output, obj):
        output[0], output[1] = list(obj), other_rank

    monkeypatch.setattr(dist, "all_gather_object", all_gather_object)
    mine = {r["name"]: r for r in metrics.records}
    metrics.sync()
    assert [r["name"] for r in metrics.records] == ["img_a", "img_b", "img_c"]
    assert metrics.records[0] == mine["img_a"]  # the first copy of a padded duplicate is kept
    assert metrics.compute()["count"] == 3


def test_sr_metrics_errors():
    with pytest.raises(ValueError, match="scale"):
        SRMetrics(0)
    with pytest.raises(ValueError, match="value_range"):
        SRMetrics(2, value_range=(1.0, 0.0))
    metrics = SRMetrics(2)
    with pytest.raises(RuntimeError, match="no image"):
        metrics.compute()
    pred, target = _random_pair(4)
    with pytest.raises(ValueError, match="names"):
        metrics.update(pred, target, ["only one"])
    with pytest.raises(ValueError, match="one shape"):
        metrics.update(pred, target[..., :-1])
