"""Semantic-consistency score: the toy-world segmenter reads images, and the score tells kept from destroyed
semantics. Thresholds come from the toy world itself: the mIoU of a predictor that only knows the typical layout
(:func:`position_prior`, computed from the training labels) is the floor a segmenter that reads images must beat."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassJaccardIndex

from zoo.metrics.semantic import (
    SegmenterConfig,
    SemanticConsistency,
    mean_iou,
    position_prior,
    toy_eval_set,
    toy_segmenter,
    toy_segmenter_path,
    train_toy_segmenter,
)
from zoo.nets.segmentation import TinySegNet

SIZE = 32
# Cheaper than the default recipe (width 16, 400 iterations) so the module trains in seconds; still far above the
# layout floor.
CONFIG = SegmenterConfig(image_size=SIZE, width=8, num_images=128, iterations=300, batch_size=8)


@pytest.fixture(scope="module")
def segmenter() -> TinySegNet:
    return train_toy_segmenter(CONFIG)


@pytest.fixture(scope="module")
def data() -> dict[str, torch.Tensor]:
    return toy_eval_set(48, SIZE)


def _one_hot_logits(classes: torch.Tensor) -> torch.Tensor:
    return F.one_hot(classes, 19).permute(0, 3, 1, 2).float()


@pytest.fixture(scope="module")
def layout_floor(data) -> float:
    """mIoU on the test scenes of the per-pixel majority class of the segmenter's training labels."""
    from zoo.metrics.semantic import _toy_photos

    prior = position_prior(_toy_photos(CONFIG)[1])
    metric = SemanticConsistency(lambda x: _one_hot_logits(prior.expand(x.shape[0], -1, -1)))
    return metric.score(data["photo"], data["labels"])


def test_tiny_segnet_shapes_and_padding():
    net = TinySegNet(num_classes=5, width=4).eval()
    assert net(torch.rand(2, 3, 30, 33)).shape == (2, 5, 30, 33)
    with pytest.raises(ValueError, match="B, 3, H, W"):
        net(torch.rand(3, 30, 33))


def test_mean_iou_matches_torchmetrics():
    generator = torch.Generator().manual_seed(0)
    target = torch.randint(0, 6, (3, 16, 16), generator=generator)
    target[:, :2] = 255
    pred = torch.where(torch.rand(3, 16, 16, generator=generator) < 0.6, target.clamp(max=5),
                       torch.randint(0, 19, (3, 16, 16), generator=generator))
    metric = SemanticConsistency(lambda x: _one_hot_logits(pred), image_size=None)
    ours = metric.score(torch.rand(3, 3, 16, 16), target)
    reference = MulticlassJaccardIndex(num_classes=19, ignore_index=255)
    reference.update(pred, target)
    assert ours == pytest.approx(float(reference.compute()), abs=1e-6)
    assert mean_iou(metric.confusion) == pytest.approx(ours)


def test_segmenter_reads_photos(segmenter, data, layout_floor):
    photo = SemanticConsistency(segmenter, image_size=SIZE).score(data["photo"], data["labels"])
    # A segmenter that reads images must clearly beat the best image-blind predictor of the same scenes.
    assert photo > layout_floor * 1.4, (photo, layout_floor)


def test_identity_high_and_destroyed_semantics_low(segmenter, data, layout_floor):
    metric = SemanticConsistency(segmenter, image_size=SIZE)
    photos, labels = data["photo"], data["labels"]
    identity = metric.score_translation(lambda x: x, photos, labels, batch_size=16)
    assert identity == pytest.approx(metric.score(photos, labels))
    # Upside-down images: sky where the labels say road. Worse than knowing nothing about the image.
    flipped = metric.score_translation(lambda x: x.flip(-2), photos, labels)
    assert flipped < layout_floor < identity
    # Each image scored against another scene's labels: only the shared layout is left, so the score falls to
    # the layout floor, far below the identity score.
    shuffled = metric.score(photos.roll(1, dims=0), labels)
    assert shuffled < (identity + layout_floor) / 2, (shuffled, identity, layout_floor)


def test_user_model_and_data_and_resizing():
    # A user "model" that is right everywhere on user data of another size, with its own class count.
    labels = torch.zeros(2, 20, 24, dtype=torch.int64)
    labels[:, 10:] = 2
    labels[:, :, :3] = 255
    images = torch.rand(2, 3, 20, 24)
    calls = []

    def oracle(x: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(x.shape))
        out = torch.zeros(x.shape[0], 3, *x.shape[-2:])
        out[:, 0, : x.shape[-2] // 2] = 1
        out[:, 2, x.shape[-2] // 2:] = 1
        return out

    metric = SemanticConsistency(oracle, num_classes=3, batch_size=1)
    assert metric.score(images, labels) == pytest.approx(1.0)
    assert calls == [(1, 3, 20, 24), (1, 3, 20, 24)]
    assert metric.report(class_names={0: "a", 2: "b"}) == {"mIoU": 1.0, "a": 1.0, "b": 1.0}
    resized = SemanticConsistency(oracle, num_classes=3, image_size=40)
    assert resized.score(images, labels) == pytest.approx(1.0)
    # Translations of another size are resized to the labels; batches can come from any iterable.
    upscale = lambda x: F.interpolate(x, scale_factor=2.0)  # noqa: E731
    assert resized.score_translation(upscale, [(images, labels)]) == pytest.approx(1.0)
    # A model (object with .translate) is used through translate(..., **kwargs).
    model = type("M", (), {"translate": lambda self, x, direction: x})()
    assert metric.score_translation(model, images, labels, direction="a2b") == pytest.approx(1.0)


def test_errors_name_the_problem():
    metric = SemanticConsistency(lambda x: torch.zeros(x.shape[0], 19, 4, 4), image_size=None)
    with pytest.raises(RuntimeError, match="no labelled pixel"):
        metric.compute()
    # Logits of another size are resized to the labels; another class count is an error.
    metric.update(torch.rand(1, 3, 8, 8), torch.zeros(1, 8, 8, dtype=torch.int64))
    assert metric.compute() == pytest.approx(1.0)
    wrong = SemanticConsistency(lambda x: torch.zeros(x.shape[0], 5, *x.shape[-2:]))
    with pytest.raises(ValueError, match=r"\(B, 19, H, W\)"):
        wrong.update(torch.rand(1, 3, 8, 8), torch.zeros(1, 8, 8, dtype=torch.int64))
    ok = SemanticConsistency(lambda x: torch.zeros(x.shape[0], 19, *x.shape[-2:]))
    with pytest.raises(ValueError, match="label values"):
        ok.update(torch.rand(1, 3, 8, 8), torch.full((1, 8, 8), 30))
    with pytest.raises(TypeError, match="integer"):
        ok.update(torch.rand(1, 3, 8, 8), torch.zeros(1, 8, 8))
    with pytest.raises(TypeError, match="callable"):
        SemanticConsistency(segmenter=3)
    with pytest.raises(ValueError, match="image_size"):
        SegmenterConfig(image_size=4)


def test_toy_segmenter_is_deterministic_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_HOME", str(tmp_path))
    config = SegmenterConfig(image_size=16, width=4, num_images=4, iterations=3, batch_size=2)
    path = toy_segmenter_path(config)
    assert path.parent == tmp_path / "segmenters" and not path.exists()
    first = toy_segmenter(config)
    assert path.is_file() and first.config == config
    again = train_toy_segmenter(config)
    cached = toy_segmenter(config)
    for key, value in first.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key
        assert torch.equal(value, cached.state_dict()[key]), key
    assert toy_segmenter_path(SegmenterConfig(image_size=16, width=4, num_images=4, iterations=4)) != path
    # The default metric finds the cached segmenter of its settings instead of training.
    metric = SemanticConsistency(segmenter_config=config)
    assert metric.image_size == (16, 16)
    path.write_bytes(b"broken")
    with pytest.raises(RuntimeError, match="delete the file"):
        toy_segmenter(config)
