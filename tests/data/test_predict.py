"""Predict loaders: whole images at their stored size, relative paths, batches of consecutive equal-sized items."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from PIL import Image

from zoo.data import (
    MaskedDataModule,
    PairedDataModule,
    SizeGroupedBatchSampler,
    SRDataModule,
    UnpairedDataModule,
)
from zoo.data.imresize import imresize


def _write(path: Path, array: np.ndarray) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return array


def _pixels(rng: np.random.Generator, h: int, w: int, channels: int = 3) -> np.ndarray:
    shape = (h, w, channels) if channels > 1 else (h, w)
    return rng.integers(0, 256, shape, dtype=np.uint8)


def _as_model(array: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, C) or (H, W) -> (C, H, W) in [-1, 1], the normalisation of the test images."""
    tensor = torch.from_numpy(np.array(array)).float() / 255
    tensor = tensor[None] if tensor.ndim == 2 else tensor.permute(2, 0, 1)
    return (tensor - 0.5) / 0.5


def _all_batches(dm) -> list[dict]:
    dm.setup("predict")
    return list(dm.predict_dataloader())


def test_size_grouped_batches_keep_order_and_never_mix_sizes():
    sizes = ["s", "s", "s", "t", "t", "s", "u"]
    batches = list(SizeGroupedBatchSampler(range(len(sizes)), 2, size_of=sizes.__getitem__))
    assert batches == [[0, 1], [2], [3, 4], [5], [6]]
    assert len(SizeGroupedBatchSampler(range(len(sizes)), 2, size_of=sizes.__getitem__)) == 5
    assert list(SizeGroupedBatchSampler(range(7), 2, drop_last=True, size_of=sizes.__getitem__)) == [[0, 1], [3, 4]]


def test_paired_side_by_side_whole_halves_with_relpaths(tmp_path):
    rng = np.random.default_rng(0)
    files = {"a.png": (20, 30), "sub/dir/b.png": (20, 30), "c.png": (12, 17), "d.png": (20, 30)}  # (h, w); odd w
    arrays = {name: _write(tmp_path / "facades" / "test" / name, _pixels(rng, h, w)) for name, (h, w) in files.items()}
    _write(tmp_path / "facades" / "train" / "t.png", _pixels(rng, 8, 16))
    dm = PairedDataModule(root=str(tmp_path / "facades"), direction="BtoA", crop_size=8, load_size=10, val_batch_size=4)
    batches = _all_batches(dm)
    # sorted by path: a, c, d, sub/dir/b; c's size breaks the run
    assert [b["relpath_a"] for b in batches] == [["a.png"], ["c.png"], ["d.png", "sub/dir/b.png"]]
    assert batches[2]["real_a"].shape == (2, 3, 20, 15)
    c = arrays["c.png"]
    item = batches[1]
    assert torch.equal(item["real_b"][0], _as_model(c[:, :8]))  # BtoA: side b is the left half A = [0, int(17/2))
    assert torch.equal(item["real_a"][0], _as_model(c[:, 8:]))  # the right half keeps its 9 columns
    assert item["path_a"][0].endswith("c.png") and item["relpath_b"] == ["c.png"]


def test_paired_folders_grayscale_side(tmp_path):
    rng = np.random.default_rng(1)
    root = tmp_path / "pairs"
    a = _write(root / "testA" / "x" / "p.png", _pixels(rng, 9, 11))
    _write(root / "testB" / "x" / "p.jpg", _pixels(rng, 9, 11))
    _write(root / "trainA" / "q.png", _pixels(rng, 8, 8))
    _write(root / "trainB" / "q.png", _pixels(rng, 8, 8))
    dm = PairedDataModule(root=str(root), layout="folders", input_nc=1, crop_size=4, load_size=4)
    (batch,) = _all_batches(dm)
    assert batch["real_a"].shape == (1, 1, 9, 11) and batch["real_b"].shape == (1, 3, 9, 11)
    assert torch.equal(batch["real_a"][0], _as_model(np.asarray(Image.fromarray(a).convert("L"))))
    assert batch["relpath_a"] == ["x/p.png"] and batch["relpath_b"] == ["x/p.jpg"]


def test_unpaired_whole_items_relative_to_their_domain_folder(tmp_path):
    rng = np.random.default_rng(2)
    root = tmp_path / "h2z"
    a0 = _write(root / "testA" / "a0.png", _pixels(rng, 10, 14))
    _write(root / "testA" / "deep" / "a1.png", _pixels(rng, 10, 14))
    _write(root / "testB" / "b0.png", _pixels(rng, 7, 5, channels=1))
    for domain in "AB":
        _write(root / f"train{domain}" / "t.png", _pixels(rng, 8, 8))
    dm = UnpairedDataModule(root=str(root), crop_size=4, load_size=6, val_batch_size=8)
    batches = _all_batches(dm)
    assert len(batches) == 1 and batches[0]["relpath_a"] == ["a0.png", "deep/a1.png"]
    assert batches[0]["relpath_b"] == ["b0.png", "b0.png"]  # A[i] with B[i % |B|], as the test split
    assert batches[0]["real_a"].shape == (2, 3, 10, 14) and batches[0]["real_b"].shape == (2, 3, 7, 5)
    assert torch.equal(batches[0]["real_a"][0], _as_model(a0))


def test_masked_whole_images_and_masks(tmp_path):
    rng = np.random.default_rng(3)
    root = tmp_path / "sim2real"
    sizes = {"testA": (9, 13), "testB": (11, 6), "trainA": (8, 8), "trainB": (8, 8)}
    for folder, (h, w) in sizes.items():
        for k in range(2):
            _write(root / folder / "s" / f"f{k}.png", _pixels(rng, h, w))
            label = np.zeros((h, w), np.uint8)
            label[: h // 2, k:] = 26
            _write(root / "labels" / folder / "s" / f"f{k}.png", label)
    dm = MaskedDataModule(root=str(root), layout="domains", image_size=32, crop_size=4, mask_dir="labels",
                          mask_ids=[26], val_batch_size=2)
    (batch,) = _all_batches(dm)
    assert batch["real_a"].shape == (2, 3, 9, 13) and batch["real_b"].shape == (2, 3, 11, 6)
    assert batch["mask_a"].shape == (2, 1, 9, 13) and batch["mask_b"].shape == (2, 1, 11, 6)
    assert batch["mask_a"][1, 0, :4, 1:].all() and batch["mask_a"][1].sum() == 4 * 12
    assert batch["relpath_a"] == ["s/f0.png", "s/f1.png"] and {*batch["relpath_b"]} <= {"s/f0.png", "s/f1.png"}
    assert torch.equal(batch["attr_a"], torch.tensor([[1.0, 0.0]] * 2))
    # the exemplar pairing is the test split's
    test_item = dm.test_dataset[0]
    assert test_item["path_b"] == batch["path_b"][0]


def test_sr_whole_items_with_lr_files_and_on_the_fly(tmp_path):
    rng = np.random.default_rng(4)
    root = tmp_path / "set"
    hr = {"x/one_HR.png": _pixels(rng, 17, 18), "two_HR.png": _pixels(rng, 8, 12)}
    for name, array in hr.items():
        _write(root / "test" / name, array)
        h, w = array.shape[0] // 4 * 4, array.shape[1] // 4 * 4
        _write(root / "test" / name.replace("_HR", "_LR"), imresize(np.ascontiguousarray(array[:h, :w]), 1 / 4))
    dm = SRDataModule(root=str(root), scale=4, crop_size=4, hr_tag="_HR", lr_tag="_LR", lr_root=str(root),
                      train_phase="test")
    first, second = _all_batches(dm)
    assert first["relpath_a"] == ["two_LR.png"] and first["relpath_b"] == ["two_HR.png"]
    assert second["relpath_a"] == ["x/one_LR.png"] and second["real_a"].shape == (1, 3, 4, 4)
    assert second["real_b"].shape == (1, 3, 16, 16)  # HR cut to a multiple of the scale
    on_the_fly = SRDataModule(root=str(root), scale=4, crop_size=4, hr_tag="_HR", train_phase="test")
    batches = _all_batches(on_the_fly)
    assert [b["relpath_a"][0] for b in batches] == ["two_HR.png", "x/one_HR.png"]
    assert batches[0]["real_a"].shape == (1, 3, 2, 3)


@pytest.mark.parametrize("factory", [
    lambda: PairedDataModule(root=None, image_size=16, toy_test_length=3, val_batch_size=2, input_nc=1),
    lambda: UnpairedDataModule(root=None, image_size=16, toy_test_length=3, val_batch_size=2),
    lambda: MaskedDataModule(root=None, image_size=16, toy_test_length=3, val_batch_size=2),
    lambda: SRDataModule(root=None, scale=2, crop_size=8, image_size=16, toy_test_length=3, val_batch_size=2),
])
def test_toy_world_predict_items_are_named(factory):
    dm = factory()
    batches = _all_batches(dm)
    assert [b["relpath_a"] for b in batches] == [["toy_00000.png", "toy_00001.png"], ["toy_00002.png"]]
    assert batches[0]["path_b"] == batches[0]["relpath_b"] == ["toy_00000.png", "toy_00001.png"]
    test = dm.test_dataset[2]
    assert torch.equal(batches[1]["real_a"][0], test["real_a"]) and torch.equal(batches[1]["real_b"][0], test["real_b"])


class _Names(L.LightningModule):
    def predict_step(self, batch, batch_idx):
        return list(zip(batch["relpath_a"], [tuple(batch["real_a"].shape[-2:])] * len(batch["relpath_a"]), strict=True))


def test_lightning_predict_uses_the_size_grouped_batches(tmp_path):
    rng = np.random.default_rng(5)
    root = tmp_path / "u"
    for name, (h, w) in {"a.png": (6, 6), "b.png": (6, 6), "c.png": (5, 7), "d.png": (6, 6)}.items():
        _write(root / "testA" / name, _pixels(rng, h, w))
    _write(root / "testB" / "z.png", _pixels(rng, 4, 4))
    for domain in "AB":
        _write(root / f"train{domain}" / "t.png", _pixels(rng, 8, 8))
    dm = UnpairedDataModule(root=str(root), crop_size=4, load_size=4, val_batch_size=3)
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=str(tmp_path))
    outputs = trainer.predict(_Names(), datamodule=dm)
    assert outputs == [[("a.png", (6, 6)), ("b.png", (6, 6))], [("c.png", (5, 7))], [("d.png", (6, 6))]]
