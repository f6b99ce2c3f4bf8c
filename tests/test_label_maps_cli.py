"""Label maps (+ instance maps) -> photos through the command line, as a user runs it: ``zoo fit`` of the tiny
pix2pixHD config, ``zoo translate --instance``, ``zoo evaluate`` (segmentation of the translations: pixel accuracy and
mIoU against the input label map), the coloured sample grid, and the ``ALIGNED_INPUTS`` / ``preview`` contract in the
callbacks and metrics.

The Cityscapes tests read downscaled copies of two test label / instance maps of the shared sample
(``../shared/data/cityscapes_pix2pixhd``); they are skipped only when it is absent.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from zoo.cli import main

REPO = Path(__file__).resolve().parents[1]
TINY_PIX2PIXHD = REPO / "configs" / "tiny" / "pix2pixhd.yaml"
CITYSCAPES = REPO.parent / "shared" / "data" / "cityscapes_pix2pixhd"
SIZE = (130, 66)  # (width, height): not a multiple of the tiny generator's 4, so label and instance maps are padded


def _zoo(args: list[str], workdir: Path) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("zoo")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "zoo"]
    env = {**os.environ, "WANDB_MODE": "offline", "ZOO_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run(command + args, cwd=workdir, env=env, capture_output=True, text=True, timeout=600)


def _random_toy_segmenter() -> None:
    """A random segmenter in $ZOO_HOME's cache, where ``miou`` looks first (training the real one takes minutes)."""
    from safetensors.torch import save_file

    from zoo.metrics.semantic import SegmenterConfig, toy_segmenter_path
    from zoo.nets.segmentation import TinySegNet

    config = SegmenterConfig()
    path = toy_segmenter_path(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    net = TinySegNet(num_classes=19, width=config.width)
    save_file({key: value.contiguous() for key, value in net.state_dict().items()}, str(path))


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> tuple[Path, Path]:
    """One ``zoo fit`` of the tiny pix2pixHD config (its default CSV logger) in a fresh folder: (checkpoint, run)."""
    workdir = tmp_path_factory.mktemp("fit")
    fit = _zoo(["fit", "--config", str(TINY_PIX2PIXHD), f"--trainer.default_root_dir={workdir / 'runs'}"], workdir)
    assert fit.returncode == 0, fit.stderr[-3000:]
    checkpoint = workdir / re.search(r"checkpoint\s+(\S+\.ckpt)", fit.stdout).group(1)
    assert checkpoint.is_file()
    return checkpoint, checkpoint.parent.parent


@pytest.fixture(scope="module")
def model(fitted):
    from zoo.hub import load

    return load(fitted[0], map_location="cpu").eval()


@pytest.fixture(scope="module")
def cityscapes(tmp_path_factory) -> Path:
    """Two test label / instance maps of the shared Cityscapes sample, downscaled (NEAREST) to :data:`SIZE`, in the
    official pix2pixHD layout (``test_label``, ``test_inst``; the test photos are not published)."""
    if not (CITYSCAPES / "test_label").is_dir():
        pytest.skip(f"the shared Cityscapes sample {CITYSCAPES} is absent")
    root = tmp_path_factory.mktemp("cityscapes")
    for kind in ("label", "inst"):
        (root / f"test_{kind}").mkdir()
        for path in sorted((CITYSCAPES / f"test_{kind}").glob("*.png"))[:2]:
            with Image.open(path) as image:
                image.resize(SIZE, Image.Resampling.NEAREST).save(root / f"test_{kind}" / path.name)
    return root


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.float64) / 255


# ------------------------------------------------------------------------------------------------------ zoo fit


def test_the_sample_grid_shows_label_maps_in_colour(fitted):
    _, run_dir = fitted
    grids = sorted((run_dir / "images").glob("a2b_iter*.png"))
    assert grids, "ImageGrid wrote no grid"
    grid = _pixels(grids[-1])
    inputs = grid[2: grid.shape[0] // 2 - 1]  # the top row: the label maps as pl_module.preview draws them
    # ids / 255 drawn as gray would be near-black (ids <= 33) and without colour
    assert inputs.mean() > 0.2
    assert (inputs.max(-1) - inputs.min(-1)).mean() > 0.1


# ------------------------------------------------------------------------------------------------ zoo translate


def test_translate_cityscapes_label_maps_with_instance_maps(fitted, cityscapes, tmp_path):
    checkpoint, _ = fitted
    out = tmp_path / "out"
    result = _zoo(["translate", "--model", str(checkpoint), "--input", str(cityscapes / "test_label"), "--instance",
                   str(cityscapes / "test_inst"), "--output", str(out), "--device", "cpu", "--no-progress"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "translated 2 images" in result.stdout
    for label in sorted((cityscapes / "test_label").glob("*.png")):
        with Image.open(out / label.name) as image:
            assert image.size == SIZE and image.mode == "RGB"


def test_instance_maps_are_read_as_ids_and_their_edges_change_the_output(model, cityscapes, tmp_path):
    from zoo.translate import read_instance_map, translate_images

    label = sorted((cityscapes / "test_label").glob("*.png"))[0]
    instance = sorted((cityscapes / "test_inst").glob("*.png"))[0]
    ids = read_instance_map(instance)
    with Image.open(instance) as image:
        stored = np.asarray(image).astype(np.int64)
    assert ids.shape == (1, SIZE[1], SIZE[0]) and ids.dtype == torch.float32
    assert torch.equal(ids[0].long(), torch.from_numpy(stored)) and ids.max() > 1000  # Cityscapes: label * 1000 + k

    def translate(instance_map: Path | None, name: str) -> np.ndarray:
        out = tmp_path / name
        translate_images(model, label, out, instance=instance_map, device="cpu", progress=False)
        return _pixels(out / label.name)

    relabelled = tmp_path / "relabelled.png"  # other ids, the same boundaries
    Image.fromarray((stored + 7).astype(np.uint16)).save(relabelled)  # 16-bit, as Cityscapes stores them
    split = tmp_path / "split.png"  # every region cut in two by a vertical line: new edges
    halves = stored.copy()
    halves[:, SIZE[0] // 2:] += 1
    Image.fromarray(halves.astype(np.uint16)).save(split)

    real = translate(instance, "real")
    assert np.array_equal(real, translate(relabelled, "relabelled"))  # only the instance boundaries matter
    different = np.abs(real - translate(split, "split")).max(-1) > 0
    assert different.any()
    assert different[:, SIZE[0] // 2 - 8: SIZE[0] // 2 + 8].any()  # around the new edge
    assert not np.array_equal(real, translate(None, "class_boundaries"))  # without: the label map's class edges


def test_label_maps_are_read_exactly(tmp_path):
    from zoo.methods.pix2pixhd import label_ids
    from zoo.translate import _read_with_channels

    ids = np.arange(35, dtype=np.uint8).repeat(3).reshape(5, 21)
    Image.fromarray(ids, mode="L").save(tmp_path / "labels.png")
    image = _read_with_channels(tmp_path / "labels.png", 1)
    assert image.shape == (1, 5, 21)
    assert torch.equal(image[0], torch.from_numpy(ids).float() / 255)
    assert torch.equal(label_ids(image[None])[0, 0], torch.from_numpy(ids).long())


def test_translate_errors_name_the_flag_and_the_missing_file(model, cityscapes, tmp_path, capsys):
    from zoo.translate import translate_images

    labels = cityscapes / "test_label"
    with pytest.raises(FileNotFoundError, match="frankfurt_000000_000576_gtFine_instanceIds.png"):
        translate_images(model, labels, tmp_path / "out", instance=tmp_path, device="cpu", progress=False)
    assert not (tmp_path / "out").exists()

    small = tmp_path / "small"
    small.mkdir()
    for path in (cityscapes / "test_inst").glob("*.png"):
        with Image.open(path) as image:
            image.resize((64, 32), Image.Resampling.NEAREST).save(small / path.name)
    with pytest.raises(ValueError, match="instance map .* is 64x32, its input .* 130x66"):
        translate_images(model, labels, tmp_path / "out", instance=small, device="cpu", progress=False)

    rgb = tmp_path / "rgb.png"
    Image.new("RGB", SIZE).save(rgb)
    with pytest.raises(ValueError, match="single-channel integer ids"):
        translate_images(model, labels, tmp_path / "out", instance=rgb, device="cpu", progress=False)

    from tests.methods.tiny_configs import build_tiny_model

    pix2pix, _ = build_tiny_model("pix2pix")
    with pytest.raises(ValueError, match="--instance is not supported by Pix2Pix"):
        translate_images(pix2pix, labels, tmp_path / "out", instance=cityscapes / "test_inst", device="cpu",
                         progress=False)

    # the command line prints them as one line
    with pytest.raises(SystemExit) as exit_info:
        main(["translate", "--model", str(tmp_path / "none.ckpt"), "--input", str(labels), "--instance",
              str(tmp_path / "missing"), "--output", str(tmp_path / "out"), "--no-progress"])
    assert exit_info.value.code == 2
    assert re.search(r"zoo: error: --instance '.*missing' does not exist", capsys.readouterr().err)


# ------------------------------------------------------------------------------------------------- zoo evaluate


def test_evaluate_cityscapes_label_maps_pixel_accuracy_and_miou(fitted, cityscapes, tmp_path):
    checkpoint, _ = fitted
    _random_toy_segmenter()
    config = tmp_path / "cityscapes.yaml"
    config.write_text(f"data:\n  class_path: zoo.data.LabelMapDataModule\n  init_args:\n    root: {cityscapes}\n"
                      f"    load_size: 128\n")
    result = _zoo(["evaluate", "--model", str(checkpoint), "--config", str(config), "--metrics",
                   "miou,pixel_accuracy", "--device", "cpu", "--output", str(tmp_path / "report"), "--no-progress"],
                  tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "report" / "metrics.json").read_text())
    values = report["metrics"]["a2b"]
    assert set(values) == {"miou", "pixel_accuracy"}
    assert all(0 <= value <= 1 for value in values.values())
    assert report["sample_counts"]["a2b"]["labelled"] == 2 and report["data"]["test_images"] == 2
    assert "| direction | miou | pixel_accuracy |" in (tmp_path / "report" / "metrics.md").read_text()


def test_evaluate_with_the_paper_metrics_skips_fid_without_photos(model, cityscapes, tmp_path):
    from zoo.evaluate import evaluate_model

    _random_toy_segmenter()
    data = {"data": {"class_path": "zoo.data.LabelMapDataModule",
                     "init_args": {"root": str(cityscapes), "load_size": 128}}}
    result = evaluate_model(model, data, device="cpu", progress=False)  # Pix2PixHD.PAPER_METRICS
    values = result["metrics"]["a2b"]
    assert set(values) == {"miou", "pixel_accuracy"} and all(0 <= v <= 1 for v in values.values())
    assert "real images of the target domain" in result["skipped"]["fid"] and "kid" in result["skipped"]
    with pytest.raises(ValueError, match="--metrics fid needs real images of the target domain"):
        evaluate_model(model, data, metrics="fid", device="cpu", progress=False)


def test_evaluate_feeds_the_instance_maps_to_translate(model, fitted):
    from zoo.evaluate import evaluate_model

    _random_toy_segmenter()
    seen: list[dict[str, Any]] = []
    translate = model.translate

    def spy(images, **kwargs):
        seen.append(kwargs)
        return translate(images, **kwargs)

    model.translate = spy
    try:
        result = evaluate_model(model, fitted[1] / "config.yaml", metrics="miou,pixel_accuracy", max_images=2,
                                batch_size=2, device="cpu", progress=False)
    finally:
        del model.translate
    assert seen and all(kwargs["instance"].shape[1] == 1 for kwargs in seen)
    assert all(kwargs["instance"].max() > 1 for kwargs in seen)  # ids, not [0, 1]
    values = result["metrics"]["a2b"]
    assert set(values) == {"miou", "pixel_accuracy"} and all(0 <= v <= 1 for v in values.values())


# ---------------------------------------------------------------------------------------------- the metrics


def _painted(labels: torch.Tensor) -> torch.Tensor:
    """Images whose red channel holds the class id (id / 255), for :func:`_reading_segmenter`."""
    return (labels.clamp(0, 254).float() / 255)[:, None].expand(-1, 3, -1, -1).contiguous()


def _reading_segmenter(images: torch.Tensor) -> torch.Tensor:
    """Logits of the class painted in the red channel: a segmenter that reads every pixel right."""
    ids = torch.round(images[:, 0] * 255).long().clamp(0, 18)
    return torch.nn.functional.one_hot(ids, 19).permute(0, 3, 1, 2).float()


def test_pixel_accuracy_and_miou_of_a_perfect_and_a_constructed_segmentation():
    from torchmetrics.classification import MulticlassAccuracy, MulticlassJaccardIndex

    from zoo.metrics.translation import METRIC_NAMES, TranslationMetrics

    assert "pixel_accuracy" in METRIC_NAMES
    labels = torch.tensor([[[0, 0, 1, 1], [2, 2, 255, 1]]])
    perfect = TranslationMetrics(["miou", "pixel_accuracy"], segmenter=_reading_segmenter)
    perfect.update(_painted(labels), labels=labels)
    assert perfect.compute() == {"miou": 1.0, "pixel_accuracy": 1.0}

    predicted = torch.tensor([[[0, 1, 1, 1], [2, 0, 7, 1]]])  # 5 of the 7 scored pixels right
    meter = TranslationMetrics(["pixel_accuracy", "miou"], segmenter=_reading_segmenter)
    meter.update(_painted(predicted), labels=labels)
    values = meter.compute()
    assert values["pixel_accuracy"] == pytest.approx(5 / 7)
    # IoU: class 0 1/3, class 1 3/4, class 2 1/2 (class 7: predicted on an ignored pixel only, so not counted)
    assert values["miou"] == pytest.approx((1 / 3 + 3 / 4 + 1 / 2) / 3)
    accuracy = MulticlassAccuracy(19, average="micro", ignore_index=255)
    jaccard = MulticlassJaccardIndex(19, average="macro", ignore_index=255)
    assert values["pixel_accuracy"] == pytest.approx(float(accuracy(predicted, labels)))
    assert values["miou"] == pytest.approx(float(jaccard(predicted, labels)))
    assert math.isfinite(values["miou"]) and 0 <= values["pixel_accuracy"] <= 1

    only = TranslationMetrics(["pixel_accuracy"], segmenter=_reading_segmenter)
    only.update(_painted(predicted), labels=labels)
    assert set(only.compute()) == {"pixel_accuracy"} and only.per_class_iou() == {}
    assert TranslationMetrics(["pixel_accuracy"], segmenter=_reading_segmenter).missing() == {
        "pixel_accuracy": "class labels of the source images"}


class _Recorder(torch.nn.Module):
    """A one-direction model that records the keywords of ``translate`` (ALIGNED_INPUTS of pix2pixHD or none)."""

    directions = ("a2b",)
    size_multiple = 1
    device = torch.device("cpu")

    def __init__(self, aligned: dict[str, str]) -> None:
        super().__init__()
        self.ALIGNED_INPUTS = aligned
        self.calls: list[dict[str, Any]] = []

    def translate(self, images, *, direction="a2b", seed=None, **kwargs):
        self.calls.append(kwargs)
        return images.expand(-1, 3, -1, -1)

    def preview(self, images, direction="a2b"):
        return torch.cat([images, 1 - images, images], 1)


def test_translate_for_metrics_passes_the_aligned_inputs_only_to_models_that_take_them():
    from zoo.metrics.translation import translate_for_metrics

    batch = {"real_a": torch.zeros(2, 1, 4, 4), "instance": torch.full((2, 1, 4, 4), 26001.0),
             "label": torch.zeros(2, 4, 4, dtype=torch.long)}
    with_instance = _Recorder({"instance": "instance"})
    inputs = translate_for_metrics(with_instance, batch, paired=True)
    assert torch.equal(with_instance.calls[0]["instance"], batch["instance"])
    assert inputs.real is None and inputs.target is None and inputs.labels is batch["label"]  # no photos

    other = _Recorder({})
    translate_for_metrics(other, {**batch, "real_b": torch.zeros(2, 3, 4, 4)})
    assert other.calls == [{}]


def test_image_grid_keeps_the_aligned_inputs_and_draws_the_preview():
    from zoo.callbacks.image_grid import ImageGrid, _preview

    batch = {"real_a": torch.zeros(3, 1, 4, 4), "instance": torch.full((3, 1, 4, 4), 26001.0),
             "path_a": ["x"] * 3, "other": torch.ones(3)}
    grid = ImageGrid(num_images=2)
    grid._keep(batch, _Recorder({"instance": "instance"}))
    assert set(grid._batch) == {"real_a", "instance"} and grid._batch["instance"].shape[0] == 2
    conditions = grid._conditions(_Recorder({"instance": "instance"}), "a2b")
    assert torch.equal(conditions["masks"]["instance"], batch["instance"][:2])

    grid._keep(batch, _Recorder({}))
    assert set(grid._batch) == {"real_a"}
    assert grid._conditions(_Recorder({}), "a2b") == {"masks": {}}
    assert _preview(_Recorder({}), torch.zeros(1, 1, 2, 2), "a2b").shape == (1, 3, 2, 2)
    assert _preview(object(), torch.zeros(1, 1, 2, 2), "a2b").shape == (1, 1, 2, 2)
