"""``zoo evaluate``: a fitted checkpoint on its config's test split, folders of images, and the errors a user meets.

Feature networks get random weights (no download): an Inception state dict saved to a file, scaled so that its
features vary with the image (FID is then non-trivial), LPIPS built with random weights, and a random toy-world
segmenter put in the cache so ``miou`` does not train one.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.methods.tiny_configs import build_tiny_datamodule, build_tiny_model
from zoo.cli import main
from zoo.data.io import save_image
from zoo.evaluate import evaluate_folders, evaluate_model, write_report
from zoo.metrics.lpips import LPIPS
from zoo.nets.fid_inception import FID_INCEPTION_WEIGHTS, FIDInceptionV3
from zoo.utils.random_weights import spread_random_state_dict
from zoo.weights import file_sha256

REPO = Path(__file__).resolve().parents[1]
TINY_CYCLEGAN = REPO / "configs" / "tiny" / "cyclegan.yaml"


def _zoo(args: list[str], workdir: Path) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("zoo")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "zoo"]
    env = {**os.environ, "WANDB_MODE": "offline", "ZOO_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run(command + args, cwd=workdir, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def inception_weights(tmp_path_factory) -> Path:
    """A random FID Inception state dict with He-scaled convolutions and unit batch norms (features that differ from
    image to image, unlike the near-constant ones of the default initialisation)."""
    state = spread_random_state_dict(FIDInceptionV3())
    path = tmp_path_factory.mktemp("weights") / "random_inception.pth"
    torch.save(state, path)
    return path


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


def _image_folder(folder: Path, count: int, *, seed: int, size: int = 32) -> Path:
    generator = torch.Generator().manual_seed(seed)
    for index in range(count):
        save_image(torch.rand(3, size, size, generator=generator), folder / f"img_{index}.png")
    return folder


def test_zoo_evaluate_a_fitted_checkpoint_writes_metrics_json_and_md(tmp_path, inception_weights):
    fit = _zoo(["fit", "--config", str(TINY_CYCLEGAN), "--trainer.max_steps=1"], tmp_path)
    assert fit.returncode == 0, fit.stderr[-3000:]
    checkpoint = tmp_path / re.search(r"checkpoint\s+(\S+\.ckpt)", fit.stdout).group(1)
    run_dir = checkpoint.parent.parent
    _random_toy_segmenter()

    result = _zoo(["evaluate", "--model", str(checkpoint), "--config", str(TINY_CYCLEGAN), "--metrics", "fid,kid,miou",
                   "--directions", "a2b", "--inception-weights", str(inception_weights), "--max-images", "2",
                   "--batch-size", "2", "--no-progress"], tmp_path)

    assert result.returncode == 0, result.stderr[-3000:]
    output = run_dir / "evaluation" / "last"
    assert f"{output / 'metrics.json'}" in result.stdout
    report = json.loads((output / "metrics.json").read_text())
    metrics = report["metrics"]
    assert set(metrics) == {"a2b"} and set(metrics["a2b"]) == {"fid", "kid", "kid_std", "miou"}
    assert all(math.isfinite(value) for value in metrics["a2b"].values())
    assert metrics["a2b"]["fid"] > 0 and 0 <= metrics["a2b"]["miou"] <= 1
    inception = report["protocol"]["inception"]
    assert inception["weights_sha256"] == file_sha256(inception_weights) and inception["resize"] == "clean"
    assert report["sample_counts"]["a2b"] == {"real": 2, "fake": 2, "pairs": 0, "labelled": 2}
    assert report["model"]["weights_sha256"] == file_sha256(checkpoint)
    assert report["settings"]["seed"] == 0 and report["command"].startswith("zoo evaluate --model")
    table = (output / "metrics.md").read_text()
    assert "| direction | fid | kid | miou |" in table
    assert re.search(r"\| a2b \| [\d.]+ \| [\d.]+ ± [\d.]+ \| [\d.]+ \|", table)
    per_class = report["per_class_iou"]["a2b"]
    assert per_class and all(0 <= value <= 1 for value in per_class.values())

    # the user's own segmenter, saved as TorchScript, instead of the toy-world one
    from zoo.nets.segmentation import TinySegNet

    torch.manual_seed(1)
    segmenter = tmp_path / "my_segmenter.pt"
    traced = torch.jit.trace(TinySegNet(num_classes=19, width=4).eval(), torch.rand(2, 3, 32, 32))
    torch.jit.save(traced, str(segmenter))
    own = _zoo(["evaluate", "--model", str(checkpoint), "--config", str(TINY_CYCLEGAN), "--metrics", "miou",
                "--directions", "a2b", "--segmenter", str(segmenter), "--max-images", "2", "--batch-size", "2",
                "--output", str(tmp_path / "own"), "--no-progress"], tmp_path)
    assert own.returncode == 0, own.stderr[-3000:]
    own_report = json.loads((tmp_path / "own" / "metrics.json").read_text())
    assert own_report["settings"]["segmenter"] == {"file": str(segmenter), "sha256": file_sha256(segmenter)}
    assert 0 <= own_report["metrics"]["a2b"]["miou"] <= 1
    assert report["protocol"]["miou"]["segmenter"] == "TinySegNet"
    assert own_report["protocol"]["miou"]["segmenter"] == "RecursiveScriptModule"  # the file's network was used
    assert file_sha256(inception_weights) in table and "| a2b |" in result.stdout


def test_folders_of_the_same_images_have_zero_fid(tmp_path, inception_weights, capsys):
    real = _image_folder(tmp_path / "real", 2, seed=0)
    copy = _image_folder(tmp_path / "copy", 2, seed=0)

    assert main(["evaluate", "--real", str(real), "--fake", str(copy), "--metrics", "fid,kid", "--no-progress",
                 "--inception-weights", str(inception_weights), "--output", str(tmp_path / "report")]) == 0

    report = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert abs(report["metrics"]["folders"]["fid"]) < 1e-2
    # the unbiased MMD^2 of two identical sets is never positive (Cauchy-Schwarz on the kernel features)
    assert report["metrics"]["folders"]["kid"] <= 0
    assert report["sample_counts"]["folders"]["real"] == 2 and report["sample_counts"]["folders"]["fake"] == 2
    assert "| folders |" in capsys.readouterr().out


def test_paired_folder_metrics_match_files_by_relative_name(tmp_path):
    real = _image_folder(tmp_path / "real" / "sub", 3, seed=0).parent
    fake = tmp_path / "fake"
    for path in sorted(real.rglob("*.png")):
        from zoo.data.io import read_image

        noisy = (read_image(path) + 0.05 * torch.randn(3, 32, 32, generator=torch.Generator().manual_seed(1)))
        save_image(noisy.clamp(0, 1), fake / path.relative_to(real))
    network = LPIPS(backbone_weights=None, linear_weights=None)

    result = evaluate_folders(real, fake, metrics="lpips,psnr,ssim", lpips_net=network, device="cpu",
                              progress=False)

    values = result["metrics"]["folders"]
    assert 15 < values["psnr"] < 40 and 0 < values["ssim"] < 1 and values["lpips"] > 0
    assert result["sample_counts"]["folders"]["pairs"] == 3
    assert result["protocol"]["lpips"]["backbone_weights"].startswith("random")
    _, md_path = write_report(result, tmp_path / "report")
    assert "| direction | lpips | psnr | ssim |" in md_path.read_text()

    (fake / "sub" / "img_0.png").rename(fake / "sub" / "other.png")
    with pytest.raises(ValueError, match="2 have no match") as error:
        evaluate_folders(real, fake, metrics="psnr", device="cpu", progress=False)
    assert str(real / "sub" / "img_0.png") in str(error.value) and str(fake / "sub" / "other.png") in str(error.value)


def test_missing_weights_offline_name_the_file_and_url_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    monkeypatch.delenv("ZOO_WEIGHTS_DIR", raising=False)
    real = _image_folder(tmp_path / "real", 2, seed=0)

    with pytest.raises(SystemExit) as exit_:
        main(["evaluate", "--real", str(real), "--fake", str(real), "--no-progress"])

    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("zoo: error:")
    assert FID_INCEPTION_WEIGHTS.file_name in lines[0] and FID_INCEPTION_WEIGHTS.url in lines[0]
    assert "ZOO_WEIGHTS_DIR" in lines[0]


def test_unknown_metric_is_one_line(tmp_path, capsys):
    real = _image_folder(tmp_path / "real", 2, seed=0)
    with pytest.raises(SystemExit):
        main(["evaluate", "--real", str(real), "--fake", str(real), "--metrics", "fid,sharpness"])
    assert re.fullmatch(r"zoo: error: unknown metric 'sharpness'; choose from fid, .*\n", capsys.readouterr().err)


def test_diversity_of_a_tiny_munit_and_its_refusal_for_unimodal_methods():
    munit, _ = build_tiny_model("munit")
    network = LPIPS(backbone_weights=None, linear_weights=None)

    result = evaluate_model(munit, build_tiny_datamodule("munit"), metrics="diversity", directions="a2b", num_styles=3,
                            max_images=2, lpips_net=network, device="cpu", progress=False)

    assert result["metrics"]["a2b"]["diversity"] > 0 and math.isfinite(result["metrics"]["a2b"]["diversity"])
    assert result["sample_counts"]["a2b"]["diversity_inputs"] == 2
    assert result["protocol"]["diversity"]["styles_per_input"] == 3
    cyclegan, _ = build_tiny_model("cyclegan")
    with pytest.raises(ValueError, match="multimodal"):
        evaluate_model(cyclegan, build_tiny_datamodule("cyclegan"), metrics="fid,diversity", device="cpu")


def test_a_named_metric_the_data_cannot_feed_is_an_error():
    cyclegan, _ = build_tiny_model("cyclegan")
    with pytest.raises(ValueError, match="psnr needs aligned target images"):
        evaluate_model(cyclegan, build_tiny_datamodule("cyclegan"), metrics="psnr", device="cpu", progress=False)


def test_metrics_the_data_cannot_feed_in_one_direction_are_noted(tmp_path):
    _random_toy_segmenter()
    cyclegan, _ = build_tiny_model("cyclegan")

    result = evaluate_model(cyclegan, TINY_CYCLEGAN, metrics="miou", max_images=2, device="cpu", progress=False)

    assert set(result["metrics"]["a2b"]) == {"miou"} and result["metrics"]["b2a"] == {}
    assert "class labels" in result["skipped"]["miou"] and "(in b2a)" in result["skipped"]["miou"]
    _, md_path = write_report(result, tmp_path)
    assert re.search(r"\| b2a \| – \|", md_path.read_text()) and "- skipped miou:" in md_path.read_text()
