"""Segmentation networks of the semantic-consistency metric: TinySegNet and timm backbones (random weights)."""

from __future__ import annotations

import pytest
import torch

from zoo.nets.segmentation import TimmSegNet, TinySegNet, build_segmenter

BACKBONES = ["resnet18", "mobilenetv3_small_050"]


@pytest.mark.parametrize("backbone", BACKBONES)
@pytest.mark.parametrize("size", [(32, 32), (30, 45)])
def test_timm_segnet_logits_match_the_input_size(backbone, size):
    net = TimmSegNet(backbone, num_classes=5, decoder_channels=8).eval()
    with torch.no_grad():
        logits = net(torch.rand(2, 3, *size))
    assert logits.shape == (2, 5, *size) and torch.isfinite(logits).all()


@pytest.mark.parametrize("backbone", BACKBONES)
def test_gradient_reaches_the_images_and_every_weight(backbone):
    net = TimmSegNet(backbone, num_classes=3, decoder_channels=8).train()
    images = torch.rand(2, 3, 32, 32, requires_grad=True)
    loss = torch.nn.functional.cross_entropy(net(images), torch.randint(0, 3, (2, 32, 32)))
    loss.backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    assert all(p.grad is not None for p in net.parameters())  # every weight is in the graph
    # (timm zero-initialises the last norm of residual blocks, so some backbone gradients start out exactly zero)
    for module in (net.lateral, net.refine, net.head):
        assert all(p.grad.abs().sum() > 0 for p in module.parameters())


@pytest.mark.parametrize("out_indices", [None, (1, 2, 3)])
def test_decoder_channels_come_from_timm_feature_info(out_indices):
    net = TimmSegNet("mobilenetv3_small_050", num_classes=4, decoder_channels=8, out_indices=out_indices)
    info = net.encoder.feature_info
    assert net.feature_channels == info.channels() and net.feature_strides == info.reduction()
    assert [conv.in_channels for conv in net.lateral] == info.channels()
    with torch.no_grad():
        features = net.encoder(torch.rand(1, 3, 64, 64))
    assert [f.shape[1] for f in features] == info.channels()
    assert [64 // f.shape[-1] for f in features] == info.reduction()
    if out_indices is not None:
        assert len(net.lateral) == len(out_indices)


def test_backbone_weights_come_from_a_local_file(tmp_path):
    import timm
    from safetensors.torch import save_file

    with torch.random.fork_rng():
        torch.manual_seed(3)
        source = timm.create_model("mobilenetv3_small_050", pretrained=False)  # a full model, classifier included
    path = tmp_path / "backbone.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    loaded = TimmSegNet("mobilenetv3_small_050", num_classes=4, weights=path)
    assert torch.equal(loaded.encoder.state_dict()["conv_stem.weight"], source.state_dict()["conv_stem.weight"])
    fresh = TimmSegNet("mobilenetv3_small_050", num_classes=4)
    assert not torch.equal(fresh.encoder.state_dict()["conv_stem.weight"], source.state_dict()["conv_stem.weight"])
    with pytest.raises(FileNotFoundError, match="weights file not found"):
        TimmSegNet("mobilenetv3_small_050", weights=tmp_path / "missing.pth")


def test_inputs_are_standardised_with_the_backbone_statistics():
    net = TimmSegNet("resnet18", num_classes=2, decoder_channels=4)
    assert torch.allclose(net.mean.flatten(), torch.tensor(net.encoder.pretrained_cfg["mean"]))
    assert "mean" not in net.state_dict() and "std" not in net.state_dict()  # statistics are not weights


def test_build_segmenter_and_errors():
    assert type(build_segmenter(num_classes=5, width=4)) is TinySegNet
    timm_net = build_segmenter("resnet18", num_classes=5, width=8)
    assert isinstance(timm_net, TimmSegNet) and timm_net.head.in_channels == 8
    with pytest.raises(ValueError, match="not a timm model"):
        build_segmenter("resnet_18")
    with pytest.raises(ValueError, match="only apply to a timm backbone"):
        build_segmenter("tinysegnet", weights="w.pth")
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        timm_net(torch.rand(3, 16, 16))
