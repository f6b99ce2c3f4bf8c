"""PooledFeatures: any network's layer as a feature extractor for the distribution metrics."""

from __future__ import annotations

import pytest
import torch

from zoo.metrics import FrechetDistance, PooledFeatures
from zoo.metrics.features import to_uint8
from zoo.nets.segmentation import TinySegNet


@pytest.fixture(scope="module")
def segmenter() -> TinySegNet:
    torch.manual_seed(0)
    return TinySegNet(width=4)


def test_features_are_the_spatial_mean_of_the_layer_output(segmenter: TinySegNet) -> None:
    images = torch.rand(3, 3, 20, 24)
    features = PooledFeatures(segmenter, "down2")(images)
    x = (to_uint8(images).float() / 255 - 0.5) / 0.25  # TinySegNet's own standardisation
    expected = segmenter.down2(segmenter.down1(segmenter.stem(x))).mean((2, 3))
    assert features.shape == (3, 16)
    torch.testing.assert_close(features, expected)


def test_float_inputs_are_quantised_like_png_files_unless_told_not_to(segmenter: TinySegNet) -> None:
    images = torch.rand(2, 3, 16, 16)
    nudged = images + 0.4 / 255 * (images < 0.99)  # same 8-bit values after rounding, for most pixels
    same_bits = to_uint8(images) == to_uint8(nudged)
    nudged = torch.where(same_bits, nudged, images)
    quantised = PooledFeatures(segmenter, "down2")
    torch.testing.assert_close(quantised(images), quantised(nudged))
    raw = PooledFeatures(segmenter, "down2", quantize=False)
    assert not torch.equal(raw(images), raw(nudged))


def test_unknown_layer_names_the_choices(segmenter: TinySegNet) -> None:
    with pytest.raises(ValueError, match="no submodule 'encoder'.*down2"):
        PooledFeatures(segmenter, "encoder")


def test_frechet_distance_in_segmenter_features_separates_domains(segmenter: TinySegNet) -> None:
    torch.manual_seed(1)
    extractor = PooledFeatures(segmenter, "down2")
    dark, bright = torch.rand(16, 3, 16, 16) * 0.3, 0.7 + torch.rand(16, 3, 16, 16) * 0.3
    distance = FrechetDistance(extractor)
    distance.update(dark[:8], real=True)
    distance.update(dark[8:], real=False)
    within = float(distance.compute())
    distance.reset()
    distance.update(dark[:8], real=True)
    distance.update(bright[8:], real=False)
    assert float(distance.compute()) > 10 * within
    assert extractor.protocol()["network"] == "TinySegNet.down2, spatial mean"


def test_uint8_inputs_are_read_as_8_bit_grey_levels(segmenter: TinySegNet) -> None:
    images = torch.rand(2, 3, 16, 16)
    for quantize in (True, False):
        extractor = PooledFeatures(segmenter, "down2", quantize=quantize)
        torch.testing.assert_close(extractor(to_uint8(images)), extractor(to_uint8(images).float() / 255))
