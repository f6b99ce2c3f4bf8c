"""``zoo.translate.translate_images`` called from Python (no command line), and the padding and tiling it shares with
``predict_step`` (``zoo.utils.tiling.translate_any_size``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.tiny import TinyGAN
from zoo.data.io import read_image
from zoo.translate import UnreadableInputError, translate_images
from zoo.utils.tiling import default_tile, translate_any_size


def _write(path: Path, height: int, width: int, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def test_translate_images_writes_a_file_per_input_mirroring_the_folder(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = TinyGAN()
    _write(tmp_path / "in" / "a.jpg", 10, 14, seed=0)  # not a multiple of the model's 4: padded and cropped back
    _write(tmp_path / "in" / "sub" / "b.png", 8, 8, seed=1)
    _write(tmp_path / "in" / "sub" / "c.png", 8, 8, seed=2)

    report = translate_images(model, tmp_path / "in", tmp_path / "out", device="cpu", progress=False, batch_size=2)

    out = tmp_path / "out"
    assert report.outputs == [out / "a.jpg", out / "sub" / "b.png", out / "sub" / "c.png"]  # each keeps its type
    assert report.frames == 3 and sorted(report.written) == sorted(report.outputs)
    assert _pixels(report.outputs[0]).shape == (10, 14, 3)
    expected = translate_any_size(model, read_image(tmp_path / "in" / "sub" / "b.png")[None])[0]
    difference = _pixels(report.outputs[1]).astype(int) - np.asarray(expected.permute(1, 2, 0) * 255).round()
    assert np.abs(difference).max() <= 1
    again = translate_images(model, tmp_path / "in", tmp_path / "again", device="cpu", progress=False, batch_size=1,
                             image_format="png")
    assert again.outputs == [tmp_path / "again" / name for name in ("a.png", "sub/b.png", "sub/c.png")]
    pairs = zip(report.outputs[1:], again.outputs[1:], strict=True)
    assert all(np.array_equal(_pixels(x), _pixels(y)) for x, y in pairs), "batching does not change the outputs"


def test_translate_images_skips_and_lists_unreadable_inputs(tmp_path: Path) -> None:
    model = TinyGAN()
    _write(tmp_path / "in" / "good.png", 8, 8, seed=0)
    (tmp_path / "in" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")

    report = translate_images(model, tmp_path / "in", tmp_path / "out", device="cpu", progress=False)
    assert report.outputs == [tmp_path / "out" / "good.png"]
    assert list(report.unreadable) == [tmp_path / "in" / "broken.png"]
    manifest = json.loads((tmp_path / "out" / ".zoo_translate.json").read_text())
    assert list(manifest["unreadable"]) == ["broken.png"] and list(manifest["done"]) == ["good.png"]
    with pytest.raises(UnreadableInputError, match="broken.png"):
        translate_images(model, tmp_path / "in", tmp_path / "strict", device="cpu", progress=False, strict=True)


def test_translate_any_size_tiles_only_unconditioned_batches() -> None:
    model = TinyGAN()
    images = torch.rand(1, 3, 12, 20)
    tiled = translate_any_size(model, images, tile=8, tile_overlap=4)
    assert tiled.shape == images.shape
    with pytest.raises(ValueError, match="tile=0"):
        translate_any_size(model, images, tile=8, masks={"mask": torch.ones(1, 1, 12, 20)})
    assert default_tile(model) == 0


def test_unaligned_conditions_are_padded_to_the_size_multiple() -> None:
    class Recorder(torch.nn.Module):
        size_multiple = 8

        def translate(self, images: torch.Tensor, *, direction: str = "a2b", seed: int | None = None,
                      exemplar: torch.Tensor | None = None) -> torch.Tensor:
            self.exemplar_shape = tuple(exemplar.shape)
            return images

    model = Recorder()
    out = translate_any_size(model, torch.rand(1, 3, 10, 10), unaligned={"exemplar": torch.rand(1, 3, 13, 7)})
    assert out.shape == (1, 3, 10, 10)
    assert model.exemplar_shape == (1, 3, 16, 8)
