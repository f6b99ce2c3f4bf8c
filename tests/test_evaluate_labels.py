"""Semantic consistency of a folder of translations: ``zoo evaluate --fake IMAGES --labels LABELS``.

Most tests segment with a stand-in network given as ``segmenter=``: one that reads the class out of images whose
pixels encode their train id (so its segmentation is perfect), and one that calls everything road. The end-to-end
test runs the real commands on a toy dataset with a random toy-world segmenter put in the cache (training the real one
takes minutes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.test_evaluate import _random_toy_segmenter
from zoo.cli import main
from zoo.data.toy_world import label_to_train_id, write_toy_dataset
from zoo.evaluate import evaluate_folders

SIZE = (32, 64)


def _read(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.array(image)


@pytest.fixture
def dataset(tmp_path) -> Path:
    """A toy dataset (1 street, 2 frames) and, in ``coded/``, images whose three channels are each pixel's train id."""
    root = tmp_path / "sim"
    write_toy_dataset(root, sequences=1, frames=2, size=SIZE)
    for label_file in sorted((root / "labels").rglob("*.png")):
        train_ids = label_to_train_id(_read(label_file))
        coded = root / "coded" / label_file.relative_to(root / "labels")
        coded.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.repeat(train_ids[..., None], 3, axis=-1)).save(coded)
    return root


def _decoding_segmenter(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) coded images in [0, 1] -> (B, 19, H, W) one-hot logits of the train id they encode."""
    ids = (images[:, 0] * 255).round().long()
    ids[ids > 18] = 0  # ignored pixels: any class
    return torch.nn.functional.one_hot(ids, 19).permute(0, 3, 1, 2).float()


def _road_segmenter(images: torch.Tensor) -> torch.Tensor:
    """Calls every pixel road (train id 0)."""
    logits = torch.zeros(images.shape[0], 19, *images.shape[-2:])
    logits[:, 0] = 1.0
    return logits


def _labels(root: Path) -> np.ndarray:
    return np.stack([label_to_train_id(_read(p)) for p in sorted((root / "labels").rglob("*.png"))])


def test_a_perfect_segmentation_scores_one(dataset):
    result = evaluate_folders(None, dataset / "coded", labels=dataset / "labels", metrics="miou,pixel_accuracy",
                              segmenter=_decoding_segmenter, device="cpu", progress=False)
    assert result["metrics"]["folders"] == {"miou": pytest.approx(1.0), "pixel_accuracy": pytest.approx(1.0)}
    per_class = result["per_class_iou"]["folders"]
    assert {"road", "sky", "car"} <= set(per_class) and all(v == pytest.approx(1.0) for v in per_class.values())
    assert result["data"]["label_maps"] == 2 and result["settings"]["label_encoding"] == "label_ids"
    assert result["sample_counts"]["folders"]["labelled"] == 2


def test_label_ids_map_to_train_ids_and_ignore_the_rest(dataset):
    truth = _labels(dataset)
    valid = truth != 255
    road_share = float(((truth == 0) & valid).sum() / valid.sum())
    result = evaluate_folders(None, dataset / "images", labels=dataset / "labels", segmenter=_road_segmenter,
                              device="cpu", progress=False)  # default metrics with labels only: miou, pixel_accuracy
    values = result["metrics"]["folders"]
    assert set(values) == {"miou", "pixel_accuracy"}
    assert values["pixel_accuracy"] == pytest.approx(road_share) and 0 < road_share < 1
    assert values["miou"] < road_share
    # the same maps stored as train ids give the same numbers
    train_dir = dataset / "train_ids"
    for label_file in sorted((dataset / "labels").rglob("*.png")):
        target = train_dir / label_file.relative_to(dataset / "labels")
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(label_to_train_id(_read(label_file))).save(target)
    again = evaluate_folders(None, dataset / "images", labels=train_dir, label_encoding="train_ids",
                             segmenter=_road_segmenter, device="cpu", progress=False)
    assert again["metrics"]["folders"] == pytest.approx(values)


def test_label_maps_match_by_relative_path_with_any_suffix(dataset, tmp_path):
    fake = tmp_path / "fake"
    for coded in sorted((dataset / "coded").rglob("*.png")):
        target = (fake / coded.relative_to(dataset / "coded")).with_suffix(".bmp")  # lossless, another suffix
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.open(coded).save(target)
    result = evaluate_folders(None, fake, labels=dataset / "labels", metrics="pixel_accuracy",
                              segmenter=_decoding_segmenter, device="cpu", progress=False)
    assert result["metrics"]["folders"] == {"pixel_accuracy": pytest.approx(1.0)}


def test_clear_errors(dataset):
    options = {"segmenter": _road_segmenter, "device": "cpu", "progress": False}
    with pytest.raises(ValueError, match="give --labels FOLDER"):
        evaluate_folders(None, dataset / "images", metrics="miou", **options)
    with pytest.raises(ValueError, match="--label-encoding must be one of"):
        evaluate_folders(None, dataset / "images", labels=dataset / "labels", label_encoding="colors", **options)
    with pytest.raises(ValueError, match="fid compares the translations with real images"):
        evaluate_folders(None, dataset / "images", labels=dataset / "labels", metrics="fid,miou", **options)

    missing = dataset / "labels" / "seq000" / "000001.png"
    kept = missing.read_bytes()
    missing.unlink()
    with pytest.raises(ValueError, match=r"no label map .*000001\.png \(expected .*labels/seq000/000001\.png\)"):
        evaluate_folders(None, dataset / "images", labels=dataset / "labels", **options)
    Image.fromarray(_read(dataset / "labels" / "seq000" / "000000.png")[:16]).save(missing)
    with pytest.raises(ValueError, match=r"is \(32, 64\) \(H, W\), its label map .*000001\.png \(16, 64\)"):
        evaluate_folders(None, dataset / "images", labels=dataset / "labels", **options)
    Image.open(dataset / "images" / "seq000" / "000001.png").save(missing)  # an RGB image, not a label map
    with pytest.raises(ValueError, match="3 channels; label maps are single-channel"):
        evaluate_folders(None, dataset / "images", labels=dataset / "labels", **options)
    missing.write_bytes(kept)
    with pytest.raises(ValueError, match="values outside 0-18 and 255"):
        evaluate_folders(None, dataset / "images", labels=dataset / "labels", label_encoding="train_ids", **options)


def test_cli_error_names_the_missing_label_map(dataset, tmp_path, capsys):
    (dataset / "labels" / "seq000" / "000000.png").unlink()
    with pytest.raises(SystemExit) as exit_:
        main(["evaluate", "--fake", str(dataset / "images"), "--labels", str(dataset / "labels"), "--metrics",
              "miou", "--output", str(tmp_path / "report"), "--no-progress"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "zoo: error:" in err and "000000.png" in err and "expected" in err


def _zoo(args: list[str], workdir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "ZOO_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "zoo", *args], cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=120)


def test_toy_dataset_then_evaluate_as_a_user_runs_them(tmp_path):
    _random_toy_segmenter()  # in this test's $ZOO_HOME, which the commands inherit
    made = _zoo(["toy-dataset", "SIM", "--sequences", "1", "--frames", "2"], tmp_path)
    assert made.returncode == 0, made.stderr[-2000:]
    assert "2 sim images" in made.stdout and (tmp_path / "SIM/labels/seq000/000001.png").is_file()
    # the untranslated sim images: the segmenter's score before translation, the baseline of sim -> real
    measured = _zoo(["evaluate", "--fake", "SIM/images", "--labels", "SIM/labels", "--metrics",
                     "miou,pixel_accuracy", "--output", "report", "--no-progress"], tmp_path)
    assert measured.returncode == 0, measured.stderr[-2000:]
    report = json.loads((tmp_path / "report" / "metrics.json").read_text())
    values = report["metrics"]["folders"]
    assert set(values) == {"miou", "pixel_accuracy"} and all(0 <= v <= 1 for v in values.values())
    assert report["data"]["labels"] == "SIM/labels" and report["sample_counts"]["folders"]["labelled"] == 2
    assert "| folders |" in measured.stdout and (tmp_path / "report" / "metrics.md").is_file()

    # the README's sim -> real recipe: translate the labelled set (labels copied beside), then measure it the same way
    from tests.methods.tiny_configs import build_tiny_model
    from zoo.hub import save_bundle

    torch.manual_seed(0)
    save_bundle(build_tiny_model("cyclegan")[0], tmp_path / "model")
    translated = _zoo(["translate", "--model", "model", "--input", "SIM", "--output", "SIM2REAL", "--device", "cpu"],
                      tmp_path)
    assert translated.returncode == 0, translated.stderr[-2000:]
    assert (tmp_path / "SIM2REAL/labels/seq000/000001.png").read_bytes() == (
        tmp_path / "SIM/labels/seq000/000001.png").read_bytes()
    measured = _zoo(["evaluate", "--fake", "SIM2REAL/images", "--labels", "SIM2REAL/labels", "--metrics",
                     "miou,pixel_accuracy", "--output", "report2", "--no-progress"], tmp_path)
    assert measured.returncode == 0, measured.stderr[-2000:]
    after = json.loads((tmp_path / "report2" / "metrics.json").read_text())["metrics"]["folders"]
    assert all(0 <= v <= 1 for v in after.values()) and after != values  # the translation changed what is segmented
