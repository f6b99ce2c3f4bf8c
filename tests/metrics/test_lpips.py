"""LPIPS v0.1 against the authors' ``lpips`` package: same weights, same distances; the published linear-layer files
load as they are; the distance is a semi-metric on images; diversity and the torchmetrics form behave."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor

from zoo.metrics.lpips import (
    ALEXNET_TORCHVISION_WEIGHTS,
    LPIPS,
    LPIPS_LINEAR_WEIGHTS,
    MeanLPIPS,
    convert_lpips_package_state_dict,
    diversity,
    lpips_distance,
)

lpips = pytest.importorskip("lpips")

NETS = ("alex", "vgg")
TOLERANCE = 1e-5


def _published_file(net: str) -> Path:
    """The v0.1 linear-layer file the ``lpips`` wheel ships."""
    return Path(lpips.__file__).parent / "weights" / "v0.1" / f"{net}.pth"


def _images(seed: int, batch: int = 2, size: int = 64) -> Tensor:
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module", params=NETS)
def pair(request) -> tuple[LPIPS, torch.nn.Module]:
    """(zoo's network, the package's network) with the package's random backbone and published linear layers."""
    torch.manual_seed(0)
    with pytest.warns(UserWarning):  # torchvision warns about the package's ``pretrained=False``
        reference = lpips.LPIPS(net=request.param, pretrained=True, pnet_rand=True, verbose=False).eval()
    ours = LPIPS(request.param, backbone_weights=None, linear_weights=None)
    ours.load_state_dict(convert_lpips_package_state_dict(reference.state_dict()), strict=True)
    return ours, reference


def test_distances_match_the_lpips_package(pair):
    ours, reference = pair
    x, y = _images(1), _images(2)
    with torch.no_grad():
        expected = reference(x * 2 - 1, y * 2 - 1).flatten()  # the package takes [-1, 1]
        got = ours(x, y)
    assert got.shape == (2,)
    difference = (got - expected).abs().max().item()
    print(f"{ours.net}: zoo {got.tolist()} lpips {expected.tolist()} max |diff| {difference:.2e}")
    assert difference <= TOLERANCE
    assert expected.min() > 0


def test_gradients_reach_the_images(pair):
    ours, _ = pair
    x = _images(3).requires_grad_()
    ours(x, _images(4)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in ours.parameters())


@pytest.mark.parametrize("net", NETS)
def test_published_linear_files_load_directly(net):
    published = torch.load(_published_file(net), map_location="cpu", weights_only=True)
    model = LPIPS(net, backbone_weights=None, linear_weights=None)
    linear_keys = {key for key in model.state_dict() if key.startswith("lin")}
    assert linear_keys == set(published)
    model.load_state_dict(published, strict=False)
    from_path = LPIPS(net, backbone_weights=None, linear_weights=_published_file(net))
    for key, value in published.items():
        assert torch.equal(from_path.state_dict()[key], value)
        assert torch.equal(model.state_dict()[key], value)


def test_published_records_carry_the_wheel_digests():
    from zoo.weights import file_sha256

    for net in NETS:
        assert LPIPS_LINEAR_WEIGHTS[net].sha256 == file_sha256(_published_file(net))
    assert ALEXNET_TORCHVISION_WEIGHTS.owner == "zoo.metrics.lpips"


def test_negative_or_mismatched_linear_weights_are_refused():
    published = torch.load(_published_file("alex"), map_location="cpu", weights_only=True)
    model = LPIPS("alex", backbone_weights=None, linear_weights=None)
    with pytest.raises(ValueError, match="non-negative"):
        model.load_linear_weights({**published, "lin0.model.1.weight": -published["lin0.model.1.weight"]})
    with pytest.raises(ValueError, match="another backbone"):
        model.load_linear_weights(torch.load(_published_file("vgg"), map_location="cpu", weights_only=True))
    with pytest.raises(ValueError, match="keys"):
        model.load_linear_weights({"lin0.model.1.weight": published["lin0.model.1.weight"]})
    with pytest.raises(ValueError, match="alex' or 'vgg"):
        LPIPS("squeeze", backbone_weights=None, linear_weights=None)  # type: ignore[arg-type]


def test_torchvision_backbone_layout_loads():
    import torchvision

    reference = torchvision.models.alexnet(weights=None)
    model = LPIPS("alex", backbone_weights=reference.state_dict(), linear_weights=None)
    assert torch.equal(model.features[10].weight, reference.features[10].weight)


@pytest.mark.parametrize("net", NETS)
def test_semi_metric_properties(net):
    model = LPIPS(net, backbone_weights=None, linear_weights=None)
    x, y = _images(5), _images(6)
    assert lpips_distance(x, x, model).abs().max().item() == 0
    forward, backward = lpips_distance(x, y, model), lpips_distance(y, x, model)
    assert torch.allclose(forward, backward, atol=1e-7)
    assert forward.min() > 0


def test_inputs_outside_zero_one_are_refused():
    model = LPIPS("alex", backbone_weights=None, linear_weights=None)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        model(_images(0) * 2 - 1, _images(1))
    with pytest.raises(ValueError, match="B, 3, H, W"):
        model(_images(0)[:, :1], _images(1)[:, :1])


@pytest.fixture(scope="module")
def alex() -> LPIPS:
    return LPIPS("alex", backbone_weights=None, linear_weights=None)


def _styled(images: Tensor, seed: int) -> Tensor:
    """A toy multimodal translator: a per-seed colour shift of each image."""
    shift = torch.rand(images.shape[0], 3, 1, 1, generator=torch.Generator().manual_seed(seed))
    return (images * 0.5 + shift * 0.5).clamp(0, 1)


def test_diversity_is_zero_when_the_style_is_ignored(alex):
    inputs = _images(7, batch=3)
    assert diversity(lambda images, seed: images.flip(-1), inputs, styles=3, net=alex) == 0


def test_diversity_is_the_mean_over_all_pairs(alex):
    inputs = _images(8, batch=2)
    score = diversity(_styled, [inputs[:1], inputs[1:]], styles=3, seed=10, net=alex)
    assert score > 0
    # batch i, style k uses seed 10 + 3 i + k; pairs (0, 1), (0, 2), (1, 2) of each input
    expected = []
    for batch_index, batch in enumerate((inputs[:1], inputs[1:])):
        outputs = [_styled(batch, 10 + 3 * batch_index + k) for k in range(3)]
        expected += [alex(outputs[a], outputs[b]) for a, b in ((0, 1), (0, 2), (1, 2))]
    assert score == pytest.approx(torch.cat(expected).mean().item(), abs=1e-6)
    assert diversity(_styled, [inputs[:1], inputs[1:]], styles=3, seed=10, net=alex) == score


def test_diversity_calls_translate_with_seeds(alex):
    class Model:
        seeds: list[int] = []

        def translate(self, images: Tensor, *, seed: int | None = None) -> Tensor:
            assert seed is not None
            self.seeds.append(seed)
            return _styled(images, seed)

    model = Model()
    assert diversity(model, _images(9, batch=2), styles=2, seed=4, net=alex) > 0
    assert model.seeds == [4, 5]
    with pytest.raises(ValueError, match="at least 2"):
        diversity(model, _images(9), styles=1, net=alex)


def test_metric_matches_the_function_and_merges(alex):
    batches = [(_images(10 + i), _images(20 + i)) for i in range(3)]
    expected = torch.cat([lpips_distance(x, y, alex) for x, y in batches]).mean()

    whole = MeanLPIPS(alex)
    for x, y in batches:
        whole.update(x, y)
    assert whole.compute().item() == pytest.approx(expected.item(), abs=1e-6)

    first, second = MeanLPIPS(alex), MeanLPIPS(alex)
    first.update(*batches[0])
    for x, y in batches[1:]:
        second.update(x, y)
    first.merge_state(second)
    assert first.compute().item() == pytest.approx(expected.item(), abs=1e-6)
    assert first.num_pairs.item() == 6
    assert whole._reductions["distance_sum"] is not None  # DDP-reduced states (sum)
