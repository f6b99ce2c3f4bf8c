"""``zoo translate`` for multimodal (styles, references), exemplar-guided (exemplars, masks) and upscaling models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tests.methods.tiny_configs import build_tiny_model
from zoo.cli import main
from zoo.hub import save_bundle
from zoo.translate import translate_images


def _write(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


@pytest.fixture
def photos(tmp_path) -> Path:
    rng = np.random.default_rng(0)
    _write(tmp_path / "in" / "a.png", rng.integers(0, 256, (30, 26, 3), dtype=np.uint8))
    _write(tmp_path / "in" / "b.png", rng.integers(0, 256, (30, 26, 3), dtype=np.uint8))
    return tmp_path / "in"


def _bundle(name: str, tmp_path: Path) -> Path:
    torch.manual_seed(0)
    model, _ = build_tiny_model(name)
    return save_bundle(model, tmp_path / f"{name}_bundle")


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image).astype(np.int16)


@pytest.mark.parametrize("name", ["munit", "drit"])
def test_num_styles_writes_one_file_per_style_and_is_deterministic(name, photos, tmp_path):
    bundle = _bundle(name, tmp_path)
    args = ["translate", "--model", str(bundle), "--input", str(photos), "--device", "cpu", "--no-progress",
            "--num-styles", "3"]
    assert main([*args, "--output", str(tmp_path / "first")]) == 0
    assert main([*args, "--output", str(tmp_path / "second")]) == 0
    names = sorted(p.name for p in (tmp_path / "first").glob("*.png"))
    assert names == [f"{stem}_style{k}.png" for stem in ("a", "b") for k in range(3)]
    for file in names:
        assert np.array_equal(_pixels(tmp_path / "first" / file), _pixels(tmp_path / "second" / file))
        assert _pixels(tmp_path / "first" / file).shape == (30, 26, 3)


@pytest.mark.parametrize("name", ["munit", "drit"])
def test_reference_image_sets_the_style(name, photos, tmp_path):
    from zoo.data.io import read_image
    from zoo.hub import load
    from zoo.utils import translate_any_size

    bundle = _bundle(name, tmp_path)
    rng = np.random.default_rng(1)
    references = [_write(tmp_path / "ref1.png", rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)),
                  _write(tmp_path / "ref2.png", np.tile(np.linspace(0, 255, 36, dtype=np.uint8)[None, :, None],
                                                         (40, 1, 3)))]
    model = load(str(bundle))
    outputs = []
    for ref in references:
        written = translate_images(bundle, photos / "a.png", tmp_path / ref.stem, reference=ref, device="cpu",
                                   progress=False).outputs
        again = translate_images(bundle, photos / "a.png", tmp_path / f"{ref.stem}_again", reference=ref, seed=5,
                                 device="cpu", progress=False).outputs
        assert np.array_equal(_pixels(again[0]), _pixels(written[0])), "a reference leaves nothing to chance"
        expected = translate_any_size(model, read_image(photos / "a.png")[None], reference=read_image(ref)[None])
        expected = (expected[0] * 255).round().to(torch.int16).permute(1, 2, 0).numpy()
        assert np.abs(_pixels(written[0]) - expected).max() <= 1
        outputs.append(_pixels(written[0]))
    if name == "munit":  # DRIT's official N(0, 0.02) init leaves an untrained attribute encoder nearly constant
        assert not np.array_equal(*outputs), "a different reference must give a different style"


def test_style_options_on_a_unimodal_model_fail_clearly(photos, tmp_path, capsys):
    bundle = _bundle("cyclegan", tmp_path)
    with pytest.raises(SystemExit):
        main(["translate", "--model", str(bundle), "--input", str(photos), "--output", str(tmp_path / "o"),
              "--num-styles", "2", "--no-progress"])
    assert "--num-styles is not supported by CycleGAN" in capsys.readouterr().err


def test_reference_and_num_styles_together_fail_clearly(photos, tmp_path):
    bundle = _bundle("munit", tmp_path)
    _write(tmp_path / "ref.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="--reference gives one style"):
        translate_images(bundle, photos, tmp_path / "o", reference=tmp_path / "ref.png", num_styles=2,
                         progress=False)


def test_upscaling_model_is_tiled_without_seams(tmp_path):
    from zoo.methods.bicubic import Bicubic

    rng = np.random.default_rng(2)
    image = _write(tmp_path / "in" / "big.png", rng.integers(0, 256, (45, 70, 3), dtype=np.uint8))
    model = Bicubic(scale=2)
    whole = translate_images(model, image, tmp_path / "whole", tile=0, progress=False, device="cpu").outputs
    tiled = translate_images(model, image, tmp_path / "tiled", tile=16, tile_overlap=8, progress=False,
                             device="cpu").outputs
    assert _pixels(whole[0]).shape == (90, 140, 3)
    assert np.array_equal(_pixels(whole[0]), _pixels(tiled[0]))
