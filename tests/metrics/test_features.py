"""zoo's FID/KID and FD-DINOv2 feature extractors against the reference implementations.

Each resize protocol of :class:`InceptionFeatures` is compared with the package that defines it, on one shared random
state dict: ``legacy-tensorflow`` with torch-fidelity, ``clean`` with clean-fid's resizer and scaling,
``legacy-pytorch`` with pytorch-fid. :class:`DINOv2Features` is compared with an independently written timm +
torchvision pipeline on a tiny ViT. Weights that cannot be found offline raise an error that says what to do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import Tensor

from zoo.metrics.features import (
    DINOV2_WEIGHTS,
    DINOv2Features,
    InceptionFeatures,
    resize_clean,
    resize_legacy_tensorflow,
    resize_pil_bicubic,
    to_uint8,
)
from zoo.nets.fid_inception import FID_INCEPTION_WEIGHTS, FIDInceptionV3
from zoo.utils.random_weights import spread_random_state_dict
from zoo.weights import WeightsUnavailableError, file_sha256

tensorflow_compat = pytest.importorskip("torch_fidelity.interpolate_compat_tensorflow")
torch_fidelity_inception = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")
clean_fid_resize = pytest.importorskip("cleanfid.resize")
pytorch_fid_inception = pytest.importorskip("pytorch_fid.inception")
timm = pytest.importorskip("timm")
safetensors_torch = pytest.importorskip("safetensors.torch")

#: A tiny DINOv2-style ViT (patch 14, register-free) that builds and runs in well under a second.
TINY_VIT = {"arch": "vit_small_patch14_dinov2", "depth": 2, "embed_dim": 48, "num_heads": 2}
TINY_SIZE = 56  # a 4 x 4 patch grid
#: Float32 round-off through the Inception network: features are O(1), so 1e-5 relative is a few ulps per layer.
INCEPTION_RTOL = 1e-5


def uint8_images(seed: int, height: int, width: int, batch: int = 2) -> Tensor:
    """Smooth random images with edges (upsampled noise plus a bright square), as uint8 ``(B, 3, H, W)``."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(batch, 3, max(height // 8, 2), max(width // 8, 2), generator=generator)
    images = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)
    images[:, :, height // 4: height // 2, width // 4: width // 2] = 1.0
    return to_uint8(images)



@pytest.fixture(scope="module")
def inception_state() -> dict[str, Tensor]:
    return spread_random_state_dict(FIDInceptionV3())


@pytest.fixture(scope="module")
def inception_file(inception_state, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("inception") / "random-inception.pth"
    torch.save(inception_state, path)
    return path


def assert_close_features(got: Tensor, expected: Tensor, rtol: float = INCEPTION_RTOL) -> None:
    assert got.shape == expected.shape
    difference = (got - expected).abs().max().item()
    scale = expected.abs().max().item()
    assert difference <= rtol * scale, f"max |difference| {difference:.3g} at feature scale {scale:.3g}"
    assert expected.std(dim=0).mean() > 1e-3 * scale, "features do not depend on the image: the check is vacuous"


# ------------------------------------------------------------------------------------------------------- resizes


@pytest.mark.parametrize(("height", "width", "size"), [(64, 80, 299), (517, 300, 299), (33, 31, 17), (7, 9, 5)])
def test_tensorflow_resize_is_bit_equal_to_torch_fidelity(height, width, size):
    images = uint8_images(height, height, width).to(torch.float32)
    expected = tensorflow_compat.interpolate_bilinear_2d_like_tensorflow1x(images, size=(size, size),
                                                                           align_corners=False)
    got = resize_legacy_tensorflow(images, size)
    assert got.dtype == torch.float32 and torch.equal(got, expected)
    assert torch.equal(resize_legacy_tensorflow(images.to(torch.uint8), size), expected)


@pytest.mark.parametrize(("height", "width"), [(256, 256), (517, 300), (31, 45)])
def test_clean_resize_equals_clean_fid(height, width):
    images = uint8_images(width, height, width, batch=3)
    resizer = clean_fid_resize.make_resizer("PIL", False, "bicubic", (299, 299))
    expected = np.stack([resizer(image) for image in images.permute(0, 2, 3, 1).numpy()])  # clean-fid takes HWC
    got = resize_clean(images)
    assert got.shape == (3, 3, 299, 299) and got.dtype == torch.float32
    assert np.array_equal(got.permute(0, 2, 3, 1).numpy(), expected)
    assert got.min() >= 0 and got.max() <= 255 and not torch.equal(got, got.round())  # clipped, not re-quantised


# ------------------------------------------------------------------------------------------- Inception protocols


def test_legacy_tensorflow_features_equal_torch_fidelity(inception_state, inception_file):
    theirs = torch_fidelity_inception.FeatureExtractorInceptionV3(
        "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(inception_file))
    ours = InceptionFeatures(inception_state, resize="legacy-tensorflow")
    images = torch.cat([uint8_images(1, 120, 90), uint8_images(2, 120, 90) // 3])
    with torch.no_grad():
        expected, = theirs(images)
        got = ours(images)
    assert_close_features(got, expected)


def test_legacy_pytorch_features_equal_pytorch_fid(inception_state, monkeypatch):
    monkeypatch.setattr(pytorch_fid_inception, "load_state_dict_from_url", lambda *args, **kwargs: inception_state)
    theirs = pytorch_fid_inception.InceptionV3([3]).eval()
    ours = InceptionFeatures(inception_state, resize="legacy-pytorch")
    images = torch.rand(3, 3, 70, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = theirs(to_uint8(images).to(torch.float32) / 255)[0].flatten(1)  # images read back from PNG files
        got = ours(images)
    assert_close_features(got, expected)


def test_clean_features_are_the_network_on_clean_fid_inputs(inception_state):
    ours = InceptionFeatures(inception_state, resize="clean")
    network = FIDInceptionV3(inception_state, resize_input=False, normalize_input=False)
    images = torch.cat([uint8_images(4, 128, 160), uint8_images(5, 128, 160) // 2])
    resizer = clean_fid_resize.make_resizer("PIL", False, "bicubic", (299, 299))
    resized = torch.from_numpy(np.stack([resizer(image) for image in images.permute(0, 2, 3, 1).numpy()]))
    with torch.no_grad():
        expected = network((resized.permute(0, 3, 1, 2) - 128) / 128)  # clean-fid's scaling for its Inception
        got = ours(images)
    assert_close_features(got, expected)


def test_float_inputs_are_quantised_like_png_files(inception_state):
    images = torch.rand(2, 3, 40, 40, generator=torch.Generator().manual_seed(6))
    for resize in ("clean", "legacy-tensorflow", "legacy-pytorch"):
        model = InceptionFeatures(inception_state, resize=resize)
        with torch.no_grad():
            assert torch.equal(model.preprocess(images), model.preprocess(to_uint8(images)))
    exact = InceptionFeatures(inception_state, resize="legacy-pytorch", quantize=False)
    on_grid = to_uint8(images).to(torch.float32) / 255
    assert torch.allclose(exact.preprocess(on_grid), exact.preprocess(to_uint8(images)), atol=1e-6)
    assert not torch.allclose(exact.preprocess(images), exact.preprocess(on_grid), atol=1e-4)
    with pytest.raises(ValueError, match="keep quantize=True"):
        InceptionFeatures(inception_state, resize="clean", quantize=False).preprocess(images)


def test_to_uint8_rounds_and_clips():
    values = torch.tensor([-0.5, 0.0, 0.49 / 255, 0.51 / 255, 0.5, 1.0, 2.0]).view(1, 1, 1, -1)
    assert to_uint8(values).flatten().tolist() == [0, 0, 0, 1, 128, 255, 255]
    as_bytes = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    assert to_uint8(as_bytes) is as_bytes
    with pytest.raises(TypeError, match="float in \\[0, 1\\] or uint8"):
        to_uint8(as_bytes.to(torch.int32))


def test_protocols_name_what_the_numbers_depend_on(inception_state, inception_file):
    from_file = InceptionFeatures(inception_file, resize="legacy-tensorflow").protocol()
    assert from_file["weights"] == str(inception_file) and from_file["weights_sha256"] == file_sha256(inception_file)
    assert from_file["resize"] == "legacy-tensorflow" and from_file["input_size"] == 299
    assert from_file["input_scaling"] == "(x - 128) / 128 on [0, 255]" and from_file["quantize"].startswith("uint8")
    legacy = InceptionFeatures(inception_state, resize="legacy-pytorch", quantize=False).protocol()
    assert legacy["input_scaling"] == "x / 255 * 2 - 1" and legacy["quantize"].startswith("none")
    assert legacy["weights"] == "state dict" and legacy["weights_sha256"] is None
    assert "random" in InceptionFeatures(None).protocol()["weights"]
    dino = DINOv2Features(None, image_size=TINY_SIZE, **TINY_VIT).protocol()
    assert dino["network"] == "DINOv2 vit_small_patch14_dinov2 (timm), CLS token, 48-d"
    assert dino["resize"] == "PIL bicubic on uint8" and dino["quantize"].startswith("uint8")
    assert dino["input_size"] == TINY_SIZE and dino["input_scaling"] == "ImageNet mean/std"
    assert "random" in dino["weights"] and dino["weights_sha256"] is None


def test_bad_inputs_raise_clear_errors(inception_state):
    inception = InceptionFeatures(inception_state)
    dino = DINOv2Features(None, image_size=TINY_SIZE, **TINY_VIT)
    for model in (inception, dino):
        for shape in ((2, 1, 32, 32), (3, 32, 32), (2, 4, 32, 32)):
            with pytest.raises(ValueError, match=r"expects RGB images of shape \(B, 3, H, W\)"):
                model(torch.rand(shape))
    with pytest.raises(ValueError, match="resize must be one of clean, legacy-tensorflow, legacy-pytorch"):
        InceptionFeatures(inception_state, resize="bilinear")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="uint8"):
        resize_clean(torch.rand(1, 3, 8, 8))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        InceptionFeatures("no/such/file.pth")


# ------------------------------------------------------------------------------------------------------- DINOv2


IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def reference_dinov2_features(model: torch.nn.Module, images: Tensor, size: int) -> Tensor:
    """FD-DINOv2 as Stein et al. compute it, written with torchvision: each 8-bit image as a PIL image through
    ``Resize((size, size), BICUBIC)``, ``ToTensor`` and ImageNet's ``Normalize``; then the CLS token of timm's
    final-normed tokens."""
    from torchvision import transforms

    transform = transforms.Compose([
        transforms.Resize((size, size), interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.ToTensor(),
        transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])
    inputs = torch.stack([transform(Image.fromarray(image.permute(1, 2, 0).numpy())) for image in images])
    with torch.no_grad():
        return model.forward_features(inputs)[:, 0]


def tiny_vit(image_size: int, seed: int) -> torch.nn.Module:
    """A tiny DINOv2-style timm ViT whose CLS token depends on the image. timm's initialisation leaves it nearly
    constant (layer scales of 1e-5, weights of std 0.02), so the layer scales are set to 1, every weight matrix is
    redrawn with variance 1 / fan-in and the class token and position embedding with std 0.5."""
    torch.manual_seed(seed)
    model = timm.create_model(TINY_VIT["arch"], pretrained=False, num_classes=0, img_size=image_size,
                              **{k: v for k, v in TINY_VIT.items() if k != "arch"})
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith(".gamma"):
                parameter.fill_(1.0)
            elif parameter.ndim >= 2 and name not in ("cls_token", "pos_embed"):
                parameter.normal_(std=parameter[0].numel() ** -0.5)
        model.pos_embed.normal_(std=0.5)
        model.cls_token.normal_(std=0.5)
    return model.eval()


def tiny_dinov2(**options) -> DINOv2Features:
    model = DINOv2Features(None, image_size=TINY_SIZE, **TINY_VIT, **options)
    model.network.load_state_dict(tiny_vit(TINY_SIZE, seed=0).state_dict())
    return model


def test_dinov2_features_equal_an_independent_timm_pipeline():
    ours = tiny_dinov2()
    images = torch.cat([uint8_images(7, 96, 80), uint8_images(8, 96, 80) // 2])
    expected = reference_dinov2_features(ours.network, images, TINY_SIZE)
    with torch.no_grad():
        got = ours(images)
        from_float = ours(images.to(torch.float32) / 255)
        without_quantize = tiny_dinov2(quantize=False)(images)
    assert got.shape == (4, 48) and ours.feature_dim == 48
    assert_close_features(got, expected, rtol=1e-6)  # the same operations on the same inputs
    assert torch.equal(from_float, got) and torch.equal(without_quantize, got)  # uint8 inputs stay 8-bit


def test_dinov2_float_inputs_without_quantisation_use_the_float_filter():
    from torchvision.transforms import v2

    ours = tiny_dinov2(quantize=False)
    images = torch.rand(2, 3, 90, 70, generator=torch.Generator().manual_seed(11))
    transform = v2.Compose([
        v2.Resize((TINY_SIZE, TINY_SIZE), interpolation=v2.InterpolationMode.BICUBIC, antialias=True),
        v2.Lambda(lambda x: x.clamp(0, 1)),
        v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
    ])
    with torch.no_grad():
        expected = ours.network.forward_features(transform(images))[:, 0]
        got = ours(images)
    assert_close_features(got, expected, rtol=1e-6)
    assert ours.protocol()["resize"] == "bicubic (antialiased, float)"


def test_pil_resize_keeps_8_bit_rounding_between_passes():
    """PIL rounds and clips after its horizontal pass; a float filter does not, which moves pixels near sharp edges
    by several grey levels: the reason FD-DINOv2 resizes with PIL."""
    images = uint8_images(9, 200, 150, batch=3)
    got = resize_pil_bicubic(images, TINY_SIZE)
    expected = torch.stack([torch.from_numpy(np.array(Image.fromarray(image.permute(1, 2, 0).numpy()).resize(
        (TINY_SIZE, TINY_SIZE), Image.Resampling.BICUBIC))).permute(2, 0, 1) for image in images])
    assert got.dtype == torch.uint8 and torch.equal(got, expected)
    in_float = torch.nn.functional.interpolate(images / 255, size=(TINY_SIZE, TINY_SIZE), mode="bicubic",
                                               antialias=True).clamp(0, 1) * 255
    assert (in_float - got).abs().max() > 1.5
    with pytest.raises(TypeError, match="uint8"):
        resize_pil_bicubic(images / 255, TINY_SIZE)


def test_dinov2_weights_load_from_a_safetensors_file(tmp_path):
    source = tiny_vit(TINY_SIZE, seed=1)
    path = tmp_path / "tiny.safetensors"
    safetensors_torch.save_file(source.state_dict(), str(path))
    loaded = DINOv2Features(path, image_size=TINY_SIZE, **TINY_VIT)
    images = uint8_images(10, 64, 64)
    with torch.no_grad():
        inputs = loaded.preprocess(images)
        assert torch.equal(loaded.network(inputs), source(inputs))
        assert_close_features(loaded(images), reference_dinov2_features(source, images, TINY_SIZE), rtol=1e-6)
    assert loaded.protocol()["weights_sha256"] == file_sha256(path)

    other_grid = tiny_vit(84, seed=2)  # 6 x 6 patches, resampled by timm to the 4 x 4 of image_size=56
    safetensors_torch.save_file(other_grid.state_dict(), str(path))
    resampled = DINOv2Features(path, image_size=TINY_SIZE, **TINY_VIT)
    expected_pos = timm.layers.resample_abs_pos_embed(other_grid.pos_embed, new_size=[4, 4], num_prefix_tokens=1)
    assert resampled.network.pos_embed.shape == (1, 17, 48)
    assert torch.allclose(resampled.network.pos_embed, expected_pos, atol=1e-6)
    assert torch.equal(resampled.network.blocks[1].mlp.fc2.weight, other_grid.blocks[1].mlp.fc2.weight)


# -------------------------------------------------------------------------------------------- missing weights


@pytest.mark.parametrize(("build", "record"), [
    (lambda: InceptionFeatures("pytorch-fid"), FID_INCEPTION_WEIGHTS),
    (lambda: DINOv2Features("timm"), DINOV2_WEIGHTS),
])
def test_missing_weights_offline_say_what_to_download_and_where(build, record, tmp_path, monkeypatch):
    weights_dir = tmp_path / "weights"
    weights_dir.mkdir()
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ZOO_WEIGHTS_DIR", str(weights_dir))
    with pytest.raises(WeightsUnavailableError) as info:
        build()
    message = str(info.value)
    assert record.file_name in message and record.url in message
    assert str(weights_dir / record.file_name) in message
    assert str(tmp_path / "home" / "weights" / record.file_name) in message
    assert not any(weights_dir.iterdir()) and not (tmp_path / "home").exists()


def test_channels_last_layout_changes_only_float_round_off(inception_state) -> None:
    images = torch.rand(2, 3, 64, 80, generator=torch.Generator().manual_seed(5))
    fast = InceptionFeatures(inception_state, resize="legacy-pytorch")
    plain = InceptionFeatures(inception_state, resize="legacy-pytorch", channels_last=False)
    assert fast.network.Conv2d_1a_3x3.conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert plain.network.Conv2d_1a_3x3.conv.weight.is_contiguous()
    with torch.no_grad():
        assert_close_features(fast(images), plain(images), rtol=1e-6)
