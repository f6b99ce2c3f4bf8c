"""DiffAugment: differentiable color / translation / cutout policies for discriminator inputs."""

from __future__ import annotations

import pytest
import torch

from zoo.nets.diff_augment import DIFF_AUGMENT_POLICIES, DiffAugment, diff_augment, parse_policy


def _images(batch: int = 4, channels: int = 3, size: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, channels, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("policy", ["color", "translation", "cutout", "color,translation,cutout"])
def test_gradient_reaches_the_input(policy):
    images = _images().requires_grad_()
    out = diff_augment(images, policy, _seeded(0))
    (out * torch.randn_like(out)).sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    assert torch.isfinite(images.grad).all()


def test_gradient_is_the_transposed_translation():
    images = _images(batch=2).requires_grad_()
    out = diff_augment(images, "translation", _seeded(1))
    out.sum().backward()
    # every input pixel lands in at most one output pixel: its gradient is 1 when it stays in view, else 0
    assert set(images.grad.unique().tolist()) <= {0.0, 1.0}
    assert images.grad.sum() == (out != 0).sum()  # one input pixel per output pixel in view


@pytest.mark.parametrize("policy", ["", [], " , ", None])
def test_empty_policy_is_the_identity(policy):
    images = _images()
    assert diff_augment(images, policy) is images
    assert DiffAugment(policy)(images) is images


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ("colour", r"^unknown DiffAugment policy 'colour' \(did you mean 'color'\?\); choose from color, translation"),
        ("color,flip", r"^unknown DiffAugment policy 'flip'; choose from color, translation, cutout\.$"),
        (["translation", "cutot"], r"^unknown DiffAugment policy 'cutot' \(did you mean 'cutout'\?\)"),
    ],
)
def test_bad_policy_is_one_clear_line(policy, message):
    with pytest.raises(ValueError, match=message) as error:
        DiffAugment(policy)
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match=message):
        diff_augment(_images(), policy)


def test_policy_parsing_forms():
    assert parse_policy("color,translation,cutout") == DIFF_AUGMENT_POLICIES
    assert parse_policy("color translation") == parse_policy(["color", "translation"]) == ("color", "translation")
    assert parse_policy("cutout, color") == ("cutout", "color")  # the given order is the order applied
    with pytest.raises(TypeError, match="string or a list of strings"):
        parse_policy(3)  # type: ignore[arg-type]


def test_non_image_input_is_refused():
    with pytest.raises(ValueError, match=r"expects floating-point images \(B, C, H, W\), got \(3, 16, 16\)"):
        diff_augment(_images()[0], "color")
    with pytest.raises(ValueError, match="torch.int64"):
        diff_augment(torch.zeros(1, 3, 8, 8, dtype=torch.long), "color")


@pytest.mark.parametrize("policy", DIFF_AUGMENT_POLICIES)
def test_each_sample_gets_its_own_draw(policy):
    images = _images(batch=1).expand(8, -1, -1, -1).contiguous()
    out = diff_augment(images, policy, _seeded(3))
    distinct = {tuple(sample.flatten().tolist()) for sample in out}
    assert len(distinct) > 1


@pytest.mark.parametrize("policy", DIFF_AUGMENT_POLICIES)
def test_seeded_generator_repeats_and_fresh_calls_differ(policy):
    images = _images()
    first, again = diff_augment(images, policy, _seeded(5)), diff_augment(images, policy, _seeded(5))
    assert torch.equal(first, again)
    generator = _seeded(5)
    assert not torch.equal(diff_augment(images, policy, generator), diff_augment(images, policy, generator))


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [(16, 16), (12, 20)])
def test_output_shapes_dtypes_and_ranges(channels, size):
    images = torch.rand(6, channels, *size, generator=_seeded(7)) * 2 - 1
    for policy in (*DIFF_AUGMENT_POLICIES, "color,translation,cutout"):
        out = diff_augment(images, policy, _seeded(8))
        assert out.shape == images.shape and out.dtype == images.dtype
        assert torch.isfinite(out).all()
    for policy in ("translation", "cutout"):  # only moves pixels and zeroes them: values stay in [-1, 1]
        out = diff_augment(images, policy, _seeded(9))
        assert out.min() >= -1 and out.max() <= 1
        values = set(images.flatten().tolist()) | {0.0}
        assert set(out.flatten().tolist()) <= values



def test_color_shifts_flat_images_by_the_brightness_range_only():
    # a flat image has no deviation from its means: saturation and contrast keep it, brightness moves it by [-0.5, 0.5)
    levels = torch.linspace(-1, 1, 16).view(16, 1, 1, 1)
    out = diff_augment(levels.expand(16, 3, 8, 8).contiguous(), "color", _seeded(10))
    offsets = out - levels
    torch.testing.assert_close(offsets, offsets[:, :1, :1, :1].expand_as(offsets))
    assert offsets.min() >= -0.5 and offsets.max() < 0.5 and offsets.flatten(1)[:, 0].unique().numel() == 16


def test_translation_moves_by_at_most_an_eighth_and_zero_fills():
    images = torch.ones(32, 1, 16, 16)
    out = diff_augment(images, "translation", _seeded(11))
    zero_rows = (out[:, 0] == 0).all(dim=2).sum(dim=1)  # rows uncovered by a vertical shift
    zero_cols = (out[:, 0] == 0).all(dim=1).sum(dim=1)
    assert zero_rows.max() <= 2 and zero_cols.max() <= 2  # 16 / 8
    assert (zero_rows + zero_cols).sum() > 0


def test_cutout_zeroes_at_most_a_half_size_square():
    images = torch.ones(32, 1, 16, 16)
    out = diff_augment(images, "cutout", _seeded(12))
    zeroed = (out == 0).flatten(1).sum(dim=1)
    assert zeroed.max() <= 8 * 8 and zeroed.min() > 0  # clipped at the borders, never empty
    assert (zeroed == 64).any()


def test_generator_on_another_device_than_the_images_is_fine():
    images = _images().to(torch.float64)
    out = diff_augment(images, "color,translation,cutout", _seeded(0))
    assert out.dtype == torch.float64


def test_module_wraps_the_function():
    module = DiffAugment("color, cutout")
    assert module.policy == ("color", "cutout") and not list(module.parameters())
    assert "policy=color,cutout" in repr(module)
    images = _images()
    torch.testing.assert_close(module(images, _seeded(2)), diff_augment(images, "color,cutout", _seeded(2)))
    module.eval()
    assert not torch.equal(module(images, _seeded(2)), images)  # augments in eval mode too
