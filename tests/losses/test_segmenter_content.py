"""The perceptual loss in the feature space of zoo's toy-world segmenter, and SR models that use it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import zoo
from zoo.losses import segmenter_content
from zoo.losses.segmenter_content import SEGMENTER_LAYERS, SegmenterContentLoss, content_network_choice
from zoo.nets.segmentation import TinySegNet


def _segmenter() -> TinySegNet:
    torch.manual_seed(0)
    return TinySegNet(width=4).eval()


def test_loss_is_the_mean_squared_feature_distance_of_the_encoder_stages():
    net = _segmenter()
    loss = SegmenterContentLoss(segmenter=net, feature_scale=0.5)
    sr, hr = torch.rand(2, 3, 20, 24), torch.rand(2, 3, 20, 24)
    a, b = net.encode(sr), net.encode(hr)
    expected = sum(F.mse_loss(a[n], b[n]) for n in SEGMENTER_LAYERS) * 0.25
    torch.testing.assert_close(loss(sr, hr), expected)
    assert float(loss(hr, hr)) == 0.0
    symmetric = SegmenterContentLoss(segmenter=net, feature_scale=0.5, input_range="symmetric")
    torch.testing.assert_close(symmetric(sr * 2 - 1, hr * 2 - 1), expected)


def test_gradient_reaches_the_image_not_the_segmenter_and_the_state_dict_stays_without_it():
    loss = SegmenterContentLoss(segmenter=_segmenter(), layers=("down1",))
    sr = torch.rand(1, 3, 16, 16, requires_grad=True)
    loss(sr, torch.rand(1, 3, 16, 16)).backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in loss.features.parameters())
    assert loss.state_dict() == {} and not loss.features.training
    detached = SegmenterContentLoss(segmenter=_segmenter(), detach=True)
    assert not detached(torch.rand(1, 3, 16, 16, requires_grad=True), torch.rand(1, 3, 16, 16)).requires_grad


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="subset"):
        SegmenterContentLoss(layers=("up1",))
    with pytest.raises(ValueError, match="content_network"):
        content_network_choice("inception", "imagenet")


def test_auto_takes_the_vgg_only_when_its_imagenet_file_is_on_disk(monkeypatch, tmp_path):
    assert content_network_choice("auto", "imagenet")[0] == "toy_segmenter"  # a fresh ZOO_HOME, offline
    assert content_network_choice("auto", None)[0] == "vgg"  # a random VGG was asked for
    assert content_network_choice("toy_segmenter", "imagenet") == ("toy_segmenter", "chosen in the config")
    fake = tmp_path / "vgg19-dcbb9e9d.pth"
    fake.write_bytes(b"x")

    def found(arch, batch_norm, *, download=True):
        assert download is False, "choosing must never download"
        return fake

    monkeypatch.setattr("zoo.losses.vgg_content.vgg_weights_path", found)
    network, why = content_network_choice("auto", "imagenet")
    assert network == "vgg" and str(fake) in why


def test_srgan_trains_with_the_segmenter_content_loss(monkeypatch):
    """``content_network="toy_segmenter"`` loads zoo's toy-world segmenter at the first step (stubbed here by a
    small random one) and the content term moves the generator."""
    monkeypatch.setattr("zoo.metrics.semantic.toy_segmenter", lambda: TinySegNet(width=16))
    model = zoo.create("srgan", scale=2, channels=8, num_rcb=1, d_channels=4, image_size=16,
                       content_network="toy_segmenter")
    assert isinstance(model.content_loss, SegmenterContentLoss) and model.content_network_used == "toy_segmenter"
    sr = model.generator(torch.rand(2, 3, 8, 8))
    terms = model.generator_losses(sr, torch.rand(2, 3, 16, 16) * 2 - 1)
    assert terms["g_content"] > 0 and terms["g_content"].requires_grad
    assert not model.content_loss._weights_pending
    assert not any(key.startswith("content_loss.") for key in model.state_dict())
    assert segmenter_content.CONTENT_NETWORKS == ("vgg", "toy_segmenter", "auto")
