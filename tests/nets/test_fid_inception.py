"""zoo's FID Inception-v3 against pytorch-fid's: same state-dict keys (so the published file loads) and the same
2048-d features for one shared random state dict. pytorch-fid's weights download is replaced by that state dict."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from zoo.nets import fid_inception
from zoo.nets.fid_inception import FID_INCEPTION_WEIGHTS, FIDInceptionV3, resolve_fid_inception_weights
from zoo.utils.random_weights import spread_random_state_dict
from zoo.weights import HashMismatchError, file_sha256

pytorch_fid_inception = pytest.importorskip("pytorch_fid.inception")



@pytest.fixture(scope="module")
def shared_weights_models() -> tuple[FIDInceptionV3, torch.nn.Module, set[str]]:
    """zoo's network and pytorch-fid's ``InceptionV3([3], use_fid_inception=True)`` with the same random weights."""
    state = spread_random_state_dict(FIDInceptionV3())
    ours = FIDInceptionV3(state)
    with pytest.MonkeyPatch.context() as patch:
        downloads = []
        patch.setattr(pytorch_fid_inception, "load_state_dict_from_url",
                      lambda url, *args, **kwargs: downloads.append(url) or state)
        theirs = pytorch_fid_inception.InceptionV3([3], use_fid_inception=True).eval()
        fid_model_keys = set(pytorch_fid_inception.fid_inception_v3().state_dict())
    assert downloads and downloads[0] == FID_INCEPTION_WEIGHTS.url
    return ours, theirs, fid_model_keys


def test_state_dict_keys_and_shapes_match_the_published_layout(shared_weights_models):
    _, _, fid_model_keys = shared_weights_models
    fresh = FIDInceptionV3()
    assert set(fresh.state_dict()) == fid_model_keys
    published_like = {key: value.clone() for key, value in fresh.state_dict().items()}
    fresh.load_state_dict(published_like, strict=True)
    assert fresh.fc.weight.shape == (1008, 2048)


@pytest.mark.parametrize("size", [(64, 80), (299, 299)])
def test_features_agree_with_pytorch_fid(shared_weights_models, size):
    ours, theirs, _ = shared_weights_models
    images = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(size[0]))
    with torch.no_grad():
        expected = theirs(images)[0].flatten(1)
        got = ours(images)
    assert got.shape == (2, 2048)
    difference = (got - expected).abs().max().item()
    assert difference <= 1e-5, f"max abs difference {difference:.3g}"
    assert expected.abs().max() > 1e-2  # the features are not trivially zero


def test_the_network_stays_frozen_in_eval_mode():
    model = FIDInceptionV3()
    model.train()
    assert not model.training and not any(module.training for module in model.modules())
    assert not any(parameter.requires_grad for parameter in model.parameters())


def test_bad_inputs_and_missing_files_raise_clear_errors(tmp_path):
    model = FIDInceptionV3()
    with pytest.raises(ValueError, match=r"expects RGB images of shape \(B, 3, H, W\); got \(2, 1, 32, 32\)"):
        model(torch.rand(2, 1, 32, 32))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_fid_inception_weights(tmp_path / "missing.pth")


def test_the_published_file_is_resolved_through_zoo_weights(tmp_path, monkeypatch):
    state = spread_random_state_dict(FIDInceptionV3(), seed=2)
    path = tmp_path / FID_INCEPTION_WEIGHTS.file_name
    torch.save(state, path)
    monkeypatch.setenv("ZOO_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    with pytest.raises(HashMismatchError, match=FID_INCEPTION_WEIGHTS.sha256):  # not the published file
        FIDInceptionV3("pytorch-fid")
    stand_in = dataclasses.replace(FID_INCEPTION_WEIGHTS, sha256=file_sha256(path)[:8])
    monkeypatch.setattr(fid_inception, "FID_INCEPTION_WEIGHTS", stand_in)
    model = FIDInceptionV3("pytorch-fid")
    assert torch.equal(model.Mixed_7c.branch_pool.conv.weight, state["Mixed_7c.branch_pool.conv.weight"])
