"""Image listing, decoding (modes, 16-bit, broken files) and writing."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from zoo.data.io import IMG_EXTENSIONS, ImageReadError, list_images, load_image, read_image, save_image


def _rgb(h: int = 6, w: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _write_png16(path: Path, array: np.ndarray) -> None:
    """Write a 16-bit grayscale (H, W) or RGB (H, W, 3) PNG by hand (Pillow cannot write 16-bit colour)."""
    color_type = 0 if array.ndim == 2 else 2
    h, w = array.shape[:2]
    raw = b"".join(b"\x00" + array[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )


# --------------------------------------------------------------------------------------------------------------------
# list_images
# --------------------------------------------------------------------------------------------------------------------


def test_list_images_sorted_filtered(tmp_path):
    for name in ["b.png", "a.JPG", "c.txt", ".hidden.png", "d.tiff"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "e.png").write_bytes(b"x")
    assert [p.name for p in list_images(tmp_path)] == ["a.JPG", "b.png", "d.tiff"]
    recursive = list_images(tmp_path, recursive=True)
    assert [p.relative_to(tmp_path).as_posix() for p in recursive] == ["a.JPG", "b.png", "d.tiff", "sub/e.png"]


def test_list_images_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist") as info:
        list_images(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(info.value)


def test_list_images_file_instead_of_folder(tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(b"x")
    with pytest.raises(NotADirectoryError, match="is a file"):
        list_images(path)


def test_list_images_empty_folder_names_extensions(tmp_path):
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(FileNotFoundError) as info:
        list_images(tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message
    assert all(ext in message for ext in IMG_EXTENSIONS)


# --------------------------------------------------------------------------------------------------------------------
# load_image / read_image
# --------------------------------------------------------------------------------------------------------------------


def test_load_rgb_and_luma(tmp_path):
    pixels = _rgb()
    Image.fromarray(pixels).save(tmp_path / "x.png")
    rgb = load_image(tmp_path / "x.png")
    assert rgb.mode == "RGB" and np.array_equal(np.asarray(rgb), pixels)
    gray = load_image(tmp_path / "x.png", channels=1)
    assert gray.mode == "L"
    assert np.array_equal(np.asarray(gray), np.asarray(Image.fromarray(pixels).convert("L")))


def test_load_grayscale_replicated(tmp_path):
    pixels = _rgb()[..., 0]
    Image.fromarray(pixels).save(tmp_path / "g.png")
    rgb = np.asarray(load_image(tmp_path / "g.png"))
    assert rgb.shape == (*pixels.shape, 3)
    assert all(np.array_equal(rgb[..., c], pixels) for c in range(3))
    tensor = read_image(tmp_path / "g.png")
    assert tensor.shape == (1, *pixels.shape)
    assert read_image(tmp_path / "g.png", channels=3).shape == (3, *pixels.shape)


def test_load_rgba_drops_alpha(tmp_path):
    pixels = _rgb()
    alpha = np.zeros(pixels.shape[:2], dtype=np.uint8)  # fully transparent: colours must still be kept
    Image.fromarray(np.dstack([pixels, alpha])).save(tmp_path / "a.png")
    assert np.array_equal(np.asarray(load_image(tmp_path / "a.png")), pixels)
    tensor = read_image(tmp_path / "a.png")
    assert tensor.shape == (3, *pixels.shape[:2])
    assert torch.equal(tensor, torch.from_numpy(pixels).permute(2, 0, 1).float() / 255)


def test_load_palette(tmp_path):
    pixels = _rgb()
    palette_image = Image.fromarray(pixels).quantize(colors=16)
    palette_image.save(tmp_path / "p.png")
    expected = np.asarray(palette_image.convert("RGB"))
    assert np.array_equal(np.asarray(load_image(tmp_path / "p.png")), expected)
    palette_image.info["transparency"] = 0
    palette_image.save(tmp_path / "pt.png", transparency=0)
    assert np.array_equal(np.asarray(load_image(tmp_path / "pt.png")), expected)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_load_16bit_grayscale_scaled_not_clipped(tmp_path, suffix):
    values = np.array([[0, 257, 1000, 32768], [40000, 65000, 65535, 128]], dtype=np.uint16)
    path = tmp_path / f"g16{suffix}"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I;16")
    eight_bit = np.asarray(load_image(path, channels=1))
    assert np.array_equal(eight_bit, np.round(values / 257.0).astype(np.uint8))
    assert eight_bit[0, 3] == 128  # half of the 16-bit range is half of the 8-bit range (clipping would give 255)
    precise = read_image(path)
    assert precise.shape == (1, 2, 4)
    torch.testing.assert_close(precise[0], torch.from_numpy(values.astype(np.float64) / 65535).float())


def test_read_16bit_rgb_png(tmp_path):
    values = np.random.default_rng(1).integers(0, 65536, (3, 4, 3)).astype(np.uint16)
    _write_png16(tmp_path / "c16.png", values)
    tensor = read_image(tmp_path / "c16.png")
    assert tensor.shape == (3, 3, 4)
    # Pillow keeps 8 bits of 16-bit colour: each value must be within one 8-bit level of the 16-bit one.
    assert (tensor - torch.from_numpy(values / 65535.0).permute(2, 0, 1).float()).abs().max() <= 1 / 255


def test_read_luma_matches_pil(tmp_path):
    pixels = _rgb(seed=3)
    Image.fromarray(pixels).save(tmp_path / "x.png")
    expected = np.asarray(Image.fromarray(pixels).convert("L"), dtype=np.float32) / 255
    assert torch.equal(read_image(tmp_path / "x.png", channels=1)[0], torch.from_numpy(expected))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        load_image(tmp_path / "nope.png")


def test_unreadable_file_names_it(tmp_path):
    path = tmp_path / "junk.png"
    path.write_bytes(b"this is not an image")
    with pytest.raises(ImageReadError, match="junk.png"):
        load_image(path)
    with pytest.raises(ImageReadError, match="junk.png"):
        read_image(path)


def test_truncated_png_is_an_error(tmp_path):
    Image.fromarray(_rgb(64, 64)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="cut.png"):
        load_image(tmp_path / "cut.png")


def test_wrong_channel_request(tmp_path):
    Image.fromarray(_rgb()).save(tmp_path / "x.png")
    with pytest.raises(ValueError, match="channels"):
        load_image(tmp_path / "x.png", channels=4)
    with pytest.raises(ValueError, match="channels"):
        read_image(tmp_path / "x.png", channels=2)


# --------------------------------------------------------------------------------------------------------------------
# save_image
# --------------------------------------------------------------------------------------------------------------------


def test_save_round_trip_rounds(tmp_path):
    levels = torch.randint(0, 256, (3, 5, 7)).float()
    noisy = (levels + torch.empty_like(levels).uniform_(-0.49, 0.49)) / 255  # rounding must recover the levels
    path = save_image(noisy, tmp_path / "deep" / "x.png")
    assert path.exists()
    assert torch.equal(read_image(path), levels / 255)


def test_save_grayscale_and_clamps(tmp_path):
    image = torch.tensor([[[-0.5, 0.0, 0.5, 1.5]]])
    save_image(image, tmp_path / "g.png")
    assert Image.open(tmp_path / "g.png").mode == "L"
    assert np.asarray(Image.open(tmp_path / "g.png")).tolist() == [[0, 0, 128, 255]]


@pytest.mark.parametrize("shape", [(2, 4, 4), (4, 4, 4), (1, 3, 4, 4), (4, 4)])
def test_save_wrong_shape(tmp_path, shape):
    with pytest.raises(ValueError, match="x.png"):
        save_image(torch.zeros(shape), tmp_path / "x.png")


def test_save_non_finite(tmp_path):
    with pytest.raises(ValueError, match="NaN"):
        save_image(torch.full((3, 2, 2), float("nan")), tmp_path / "x.png")
