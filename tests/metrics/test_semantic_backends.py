"""Semantic-consistency score on torchmetrics (IoU semantics kept), and the selectable segmenter backbone."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict

import pytest
import torch
import torch.nn.functional as F
from torchmetrics.functional.classification import multiclass_jaccard_index

from zoo.metrics.semantic import (
    SegmenterConfig,
    SemanticConsistency,
    mean_iou,
    per_class_iou,
    toy_segmenter,
    toy_segmenter_path,
    train_toy_segmenter,
)
from zoo.nets.segmentation import TimmSegNet, TinySegNet


def _reference_iou(confusion: torch.Tensor) -> list[float]:
    """Per-class IoU written out: tp / (row + column - tp), NaN when the class never occurs."""
    result = []
    for c in range(confusion.shape[0]):
        tp = confusion[c, c].item()
        union = confusion[c, :].sum().item() + confusion[:, c].sum().item() - tp
        result.append(tp / union if union else math.nan)
    return result


def _oracle(pred: torch.Tensor, num_classes: int):
    return lambda x: F.one_hot(pred, num_classes).permute(0, 3, 1, 2).float()


def test_absent_classes_are_nan_and_left_out_of_the_mean():
    confusion = torch.tensor([[3, 1, 0, 0], [0, 2, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0]])
    iou = per_class_iou(confusion)
    assert iou.dtype == torch.float32 and iou.shape == (4,)
    torch.testing.assert_close(iou, torch.tensor(_reference_iou(confusion)), equal_nan=True)
    assert torch.isnan(iou[2]) and iou[3] == 0  # absent everywhere: NaN; labelled but never predicted: 0
    assert mean_iou(confusion) == pytest.approx((0.75 + 0.5 + 0.0) / 3)
    assert math.isnan(mean_iou(torch.zeros(4, 4, dtype=torch.int64)))


def test_metric_matches_torchmetrics_and_the_written_out_formula():
    generator = torch.Generator().manual_seed(1)
    target = torch.randint(0, 7, (3, 16, 16), generator=generator)
    target[:, :3] = 255
    pred = torch.where(torch.rand(3, 16, 16, generator=generator) < 0.5, target.clamp(max=6),
                       torch.randint(0, 9, (3, 16, 16), generator=generator))
    metric = SemanticConsistency(_oracle(pred, 10), num_classes=10, image_size=None)
    score = metric.score(torch.rand(3, 3, 16, 16), target)
    expected = multiclass_jaccard_index(pred, target, 10, average="macro", ignore_index=255)
    assert score == pytest.approx(float(expected), abs=1e-6)
    per_class = metric.per_class()
    reference = multiclass_jaccard_index(pred, target, 10, average=None, ignore_index=255, zero_division=math.nan)
    torch.testing.assert_close(per_class, reference, equal_nan=True)
    torch.testing.assert_close(per_class, torch.tensor(_reference_iou(metric.confusion)), equal_nan=True)
    assert torch.isnan(per_class[9])  # class 9 never labelled nor predicted
    keep = target != 255  # rows = labels, columns = predictions, ignored pixels left out
    assert metric.confusion.sum() == keep.sum() and metric.confusion[3].sum() == (target == 3).sum()
    assert metric.report(class_names={i: f"c{i}" for i in range(10)}).keys() >= {"mIoU", "c0"}
    assert "c9" not in metric.report(class_names={i: f"c{i}" for i in range(10)})


def test_updates_accumulate_pixels_and_reset_forgets():
    target = torch.zeros(2, 8, 8, dtype=torch.int64)
    target[1] = 1
    pred = torch.zeros(2, 8, 8, dtype=torch.int64)  # right on the first image, wrong on the second
    metric = SemanticConsistency(lambda x: _oracle(pred[: x.shape[0]], 3)(x), num_classes=3, image_size=None)
    metric.update(torch.rand(1, 3, 8, 8), target[:1])
    assert metric.compute() == pytest.approx(1.0)
    metric.update(torch.rand(1, 3, 8, 8), target[1:])
    assert metric.compute() == pytest.approx(0.25)  # class 0: 64 / 128, class 1: 0 / 64
    metric.reset()
    assert int(metric.confusion.sum()) == 0
    with pytest.raises(RuntimeError, match="no labelled pixel"):
        metric.compute()


def test_ignore_index_inside_the_class_range_is_not_scored():
    target = torch.tensor([[[0, 1, 1, 2]]])
    pred = torch.tensor([[[1, 1, 0, 2]]])
    metric = SemanticConsistency(_oracle(pred, 3), num_classes=3, ignore_index=0, image_size=None)
    score = metric.score(torch.rand(1, 3, 1, 4), target)
    iou = metric.per_class()
    assert torch.isnan(iou[0]) and iou[1] == pytest.approx(0.5) and iou[2] == 1.0  # pixel 0 left out
    assert score == pytest.approx((0.5 + 1.0) / 2)
    assert score == pytest.approx(float(multiclass_jaccard_index(pred, target, 3, ignore_index=0)))


def test_every_pixel_scored_without_ignore_index():
    target = torch.tensor([[[0, 1, 1, 2]]])
    pred = torch.tensor([[[0, 1, 0, 2]]])
    metric = SemanticConsistency(_oracle(pred, 3), num_classes=3, ignore_index=None, image_size=None)
    assert metric.score(torch.rand(1, 3, 1, 4), target) == pytest.approx((0.5 + 0.5 + 1.0) / 3)
    with pytest.raises(ValueError, match=r"label values must be 0\.\.2; got \[255\]"):
        metric.update(torch.rand(1, 3, 1, 4), torch.tensor([[[0, 1, 255, 2]]]))


# -- the segmenter's backbone ----------------------------------------------------------------------------------------


def test_default_backbone_keeps_its_cache_key():
    config = SegmenterConfig()
    assert config.backbone == "tinysegnet" and config.backbone_weights is None
    settings = {k: v for k, v in asdict(config).items() if k not in ("backbone", "backbone_weights")}
    key_before_backbones = hashlib.sha256(json.dumps({**settings, "recipe": 1}, sort_keys=True).encode())
    assert config.key() == key_before_backbones.hexdigest()[:16]
    assert SegmenterConfig(backbone="resnet18").key() != config.key()


def test_backbone_settings_are_checked():
    with pytest.raises(ValueError, match="tinysegnet' or a timm model name; got 'resnet_18'"):
        SegmenterConfig(backbone="resnet_18")
    with pytest.raises(ValueError, match="only apply to a timm backbone"):
        SegmenterConfig(backbone_weights="w.safetensors")
    with pytest.raises(FileNotFoundError, match="backbone_weights file not found"):
        SegmenterConfig(backbone="resnet18", backbone_weights="/no/such/file.safetensors")


def test_weights_file_content_enters_the_key(tmp_path):
    first, second = tmp_path / "a.pth", tmp_path / "b.pth"
    first.write_bytes(b"one")
    second.write_bytes(b"two")
    keys = {SegmenterConfig(backbone="resnet18", backbone_weights=str(path)).key() for path in (first, second)}
    assert len(keys) == 2


def test_timm_backbone_trains_caches_and_scores(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_HOME", str(tmp_path))
    config = SegmenterConfig(image_size=32, width=8, num_images=4, iterations=2, batch_size=2,
                             backbone="mobilenetv3_small_050")
    trained = toy_segmenter(config)
    assert isinstance(trained, TimmSegNet) and not trained.training and trained.config == config
    assert toy_segmenter_path(config).is_file()
    cached = toy_segmenter(config)
    for key, value in trained.state_dict().items():
        assert torch.equal(value, cached.state_dict()[key]), key
    again = train_toy_segmenter(config)  # deterministic
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in trained.state_dict().items())
    metric = SemanticConsistency(segmenter_config=config)
    labels = torch.zeros(2, 32, 32, dtype=torch.int64)
    assert 0.0 <= metric.score(torch.rand(2, 3, 32, 32), labels) <= 1.0
    assert isinstance(train_toy_segmenter(config.__class__(image_size=16, width=4, num_images=2, iterations=1,
                                                           batch_size=2)), TinySegNet)
