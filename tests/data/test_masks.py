"""read_mask: one rule for binary masks, 0/255, palette, multi-channel and 16-bit files; the dataset agrees with it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from zoo.data import MaskedDataModule, read_mask

SHAPE = np.zeros((6, 8), bool)
SHAPE[1:4, 2:7] = True
EXPECTED = torch.from_numpy(SHAPE).float()[None]


def _save(path, array, mode=None):
    image = Image.fromarray(array)
    if mode is not None:
        image = image.convert(mode)
    image.save(path)
    return path


def _palette(path, indices: np.ndarray, *, transparency: bool = False):
    image = Image.new("P", (indices.shape[1], indices.shape[0]))
    # Scrambled colours: the reader must use the indices, not the colours (index 0 is not black here).
    image.putpalette([v for i in range(256) for v in ((i * 37 + 90) % 256, (i * 91) % 256, (i * 13) % 256)])
    image.putdata(list(indices.astype(np.uint8).ravel()))
    image.save(path, **({"transparency": 0} if transparency else {}))
    assert Image.open(path).mode == "P"
    return path


@pytest.mark.parametrize("foreground", [1, 255])
def test_binary_bytes_and_0_255_masks(tmp_path, foreground):
    path = _save(tmp_path / "m.png", SHAPE.astype(np.uint8) * foreground)
    mask = read_mask(path)
    assert mask.shape == (1, 6, 8) and mask.dtype == torch.float32
    assert torch.equal(mask, EXPECTED)


def test_one_bit_and_lossy_masks(tmp_path):
    assert torch.equal(read_mask(_save(tmp_path / "bit.png", SHAPE, "1")), EXPECTED)
    noisy = SHAPE.astype(np.float64) * 230 + np.random.default_rng(0).integers(0, 20, SHAPE.shape)
    assert torch.equal(read_mask(_save(tmp_path / "noisy.png", noisy.astype(np.uint8))), EXPECTED)


def test_empty_mask_is_all_background(tmp_path):
    assert torch.equal(read_mask(_save(tmp_path / "z.png", np.zeros((6, 8), np.uint8))), torch.zeros(1, 6, 8))


def test_palette_index_is_the_label(tmp_path):
    labels = np.zeros((6, 8), np.uint8)
    labels[1:4, 2:7] = 15  # VOC person
    labels[5, :] = 255  # VOC void border
    path = _palette(tmp_path / "voc.png", labels)
    assert torch.equal(read_mask(path, ids=[15]), EXPECTED)
    # without ids every nonzero index is foreground
    assert torch.equal(read_mask(path), torch.from_numpy(labels != 0).float()[None])
    # palette colours are irrelevant: only the indices count
    assert torch.equal(read_mask(_palette(tmp_path / "two.png", SHAPE.astype(np.uint8))), EXPECTED)


def test_palette_transparency_is_ignored(tmp_path):
    path = _palette(tmp_path / "t.png", SHAPE.astype(np.uint8) * 26, transparency=True)
    assert torch.equal(read_mask(path, ids=[26]), EXPECTED)


def test_grayscale_label_map_with_ids(tmp_path):
    labels = np.full((6, 8), 7, np.uint8)  # road
    labels[1:4, 2:5] = 26  # car
    labels[1:4, 5:7] = 27  # truck
    path = _save(tmp_path / "x_labelIds.png", labels)
    assert torch.equal(read_mask(path, ids=[26, 27]), EXPECTED)
    assert read_mask(path, ids=(26,)).sum() == 9


def test_sixteen_bit_masks_and_label_maps(tmp_path):
    full = _save(tmp_path / "full.png", SHAPE.astype(np.uint16) * 65535)
    small = _save(tmp_path / "small.png", SHAPE.astype(np.uint16) * 255)  # 8-bit values in a 16-bit file
    assert Image.open(full).mode.startswith("I")
    assert torch.equal(read_mask(full), EXPECTED) and torch.equal(read_mask(small), EXPECTED)
    labels = np.where(SHAPE, 1000, 3).astype(np.uint16)  # ids above 255 survive
    assert torch.equal(read_mask(_save(tmp_path / "ids16.png", labels), ids=[1000]), EXPECTED)


def test_multi_channel_rules(tmp_path):
    gray = SHAPE.astype(np.uint8) * 255
    rgb = _save(tmp_path / "rgb.png", np.stack([gray] * 3, -1))
    rgba = np.concatenate([np.stack([gray] * 3, -1), np.zeros((6, 8, 1), np.uint8)], -1)  # fully transparent
    rgba_path = _save(tmp_path / "rgba.png", rgba)
    red = np.zeros((6, 8, 3), np.uint8)
    red[..., 0] = gray
    red_path = _save(tmp_path / "red.png", red)
    la = _save(tmp_path / "la.png", np.stack([gray, np.zeros_like(gray)], -1))
    for path in (rgb, rgba_path, red_path, la):
        assert torch.equal(read_mask(path), EXPECTED), path.name  # alpha ignored, brightest channel
    # equal channels are a grayscale label map saved as RGB
    labels = np.where(SHAPE, 26, 7).astype(np.uint8)
    assert torch.equal(read_mask(_save(tmp_path / "ids_rgb.png", np.stack([labels] * 3, -1)), ids=[26]), EXPECTED)
    with pytest.raises(ValueError, match="colour image.*single-channel or palette label map"):
        read_mask(red_path, ids=[26])


def test_clear_one_line_errors(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    path = _save(tmp_path / "m.png", SHAPE.astype(np.uint8))
    cases = [
        (tmp_path / "missing.png", None, FileNotFoundError, "missing.png"),
        (bad, None, ValueError, "bad.png.*PNG"),
        (path, [], ValueError, "ids is empty"),
        (path, ["car"], ValueError, "integer labels"),
    ]
    for file, ids, error, match in cases:
        with pytest.raises(error, match=match) as caught:
            read_mask(file, ids)
        assert "\n" not in str(caught.value) and str(file) in str(caught.value)


@pytest.mark.parametrize("kind", ["binary01", "palette", "gray_ids", "sixteen"])
def test_dataset_masks_equal_read_mask(tmp_path, kind):
    """The MaskedDataModule's masks are exactly read_mask's, at every geometry (whole for predict, no-op resize)."""
    root = tmp_path / "data"
    rng = np.random.default_rng(1)
    ids = None
    for phase in ("train", "test"):
        for domain in "AB":
            (root / f"{phase}{domain}").mkdir(parents=True)
            (root / "masks" / f"{phase}{domain}").mkdir(parents=True)
            for k in range(2):
                Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).save(root / f"{phase}{domain}" /
                                                                                      f"f{k}.png")
                shape = np.roll(SHAPE, k, axis=1)
                target = root / "masks" / f"{phase}{domain}" / f"f{k}.png"
                if kind == "binary01":
                    _save(target, shape.astype(np.uint8))
                elif kind == "palette":
                    _palette(target, np.where(shape, 26, 7))
                    ids = [26]
                elif kind == "gray_ids":
                    _save(target, np.where(shape, 24, 0).astype(np.uint8))
                    ids = [24]
                else:
                    _save(target, shape.astype(np.uint16) * 40000)
    dm = MaskedDataModule(root=str(root), layout="domains", image_size=6, crop_size=None, mask_dir="masks",
                          mask_ids=ids, no_flip=True, batch_size=1)
    dm.setup("fit")
    dm.setup("predict")
    for dataset in (dm.train_dataset, dm.predict_dataset):
        for index in range(len(dataset)):
            item = dataset[index]
            for side in "ab":
                mask_file = root / "masks" / Path(item[f"path_{side}"]).relative_to(root)
                assert torch.equal(item[f"mask_{side}"], read_mask(mask_file, ids)), (mask_file, side)
                assert item[f"mask_{side}"].sum() > 0
