"""MaskedDataModule: toy world, a CelebA-layout folder, domain folders, masks from files and label maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from zoo.data import MaskedDataModule
from zoo.data.masked import read_celeba_attributes

NAMES = ["5_o_Clock_Shadow", "Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Smiling"]
# file, then values in NAMES order; img3 has no hair colour and is filtered out by default
ROWS = [
    ("000001.jpg", [-1, 1, -1, -1, 1, 1]),
    ("000002.jpg", [-1, -1, 1, -1, -1, -1]),
    ("000003.jpg", [1, -1, -1, -1, 1, 1]),
    ("000004.jpg", [-1, -1, -1, 1, -1, 1]),
    ("000005.jpg", [-1, 1, -1, -1, 1, -1]),
    ("000006.jpg", [-1, -1, 1, -1, -1, 1]),
    ("000007.jpg", [-1, -1, -1, 1, 1, -1]),
]


def _celeba(tmp_path, *, masks: bool = False):
    root = tmp_path / "celeba"
    (root / "images").mkdir(parents=True)
    rng = np.random.default_rng(0)
    lines = [str(len(ROWS)), " ".join(NAMES)]
    for name, values in ROWS:
        array = rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)
        array[:, :89] = 255  # bright left half: shows where a flip moved the image
        Image.fromarray(array).save(root / "images" / name)
        lines.append(f"{name} " + " ".join(f"{v:2d}" for v in values))
        if masks:
            (root / "masks" / "images").mkdir(parents=True, exist_ok=True)
            mask = np.zeros((218, 178), np.uint8)
            mask[:, :89] = 255
            Image.fromarray(mask).save(root / "masks" / "images" / name.replace(".jpg", ".png"))
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    return root


def test_toy_world_items_carry_domain_attributes_masks_and_fixed_validation_pairs():
    dm = MaskedDataModule(root=None, image_size=32, toy_length=4, toy_test_length=2, batch_size=2, val_size=2,
                          toy_classes=["car"])
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["real_a"].shape == batch["real_b"].shape == (2, 3, 32, 32)
    assert batch["mask_a"].shape == batch["mask_b"].shape == (2, 1, 32, 32)
    assert set(batch["mask_a"].unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(batch["attr_a"], torch.tensor([[1.0, 0.0]] * 2))
    assert torch.equal(batch["attr_b"], torch.tensor([[0.0, 1.0]] * 2))
    assert "label_a" not in batch and dm.num_attributes == 2
    first, second = dm.fixed_batch(), dm.fixed_batch()
    assert torch.equal(first["real_b"], second["real_b"]) and torch.equal(first["mask_a"], second["mask_a"])


def test_toy_masks_receive_the_flip_of_their_image():
    from zoo.data.toy_world import ToyMaskedDataset

    dm = MaskedDataModule(root=None, image_size=32, toy_length=6, batch_size=1, seed=3)
    dm.setup("fit")
    plain = ToyMaskedDataset(length=6, size=32, classes=("car",), split="train", seed=3)
    flipped = {"a": 0, "b": 0}
    for i in range(6):
        item, ref = dm.train_dataset[i], plain[i]
        for side in "ab":
            same = torch.equal(item[f"real_{side}"], ref[f"real_{side}"])
            expected_mask = ref[f"mask_{side}"] if same else ref[f"mask_{side}"].flip(-1)
            if not same:
                assert torch.equal(item[f"real_{side}"], ref[f"real_{side}"].flip(-1))
                flipped[side] += 1
            assert torch.equal(item[f"mask_{side}"], expected_mask)
    assert flipped["a"] and flipped["b"]


def test_celeba_layout_with_paper_defaults(tmp_path):
    root = _celeba(tmp_path)
    dm = MaskedDataModule(root=str(root), image_size=32, test_rows=3, batch_size=2, val_size=None)
    dm.setup("fit")
    train, val = dm.train_dataset, dm.val_dataset
    # rows 0, 1 (row + 1 < 3) are the test split; row 2 (no hair colour) is filtered out
    assert [r.path.name for r in val.inputs] == ["000001.jpg", "000002.jpg"]
    assert [r.path.name for r in train.inputs] == ["000004.jpg", "000005.jpg", "000006.jpg", "000007.jpg"]
    assert train.inputs[0].attrs == (0.0, 0.0, 1.0, 1.0)  # Black, Blond, Brown, Smiling
    item = train[0]
    assert item["real_a"].shape == (3, 32, 32) and -1 <= item["real_a"].min() and item["real_a"].max() <= 1
    assert item["path_b"] != item["path_a"] and "000003" not in item["path_b"]
    assert torch.equal(item["attr_a"], torch.tensor([0.0, 0.0, 1.0, 1.0]))
    assert "mask_a" not in item
    # validation pairs are fixed; training exemplars and flips change with the epoch
    assert val[0]["path_b"].endswith("000002.jpg") and val[1]["path_b"].endswith("000001.jpg")
    assert torch.equal(val[0]["real_b"], val[0]["real_b"])
    draws = {train[(epoch, 0)]["path_b"] for epoch in range(8)}
    assert len(draws) > 1
    loader = dm.train_dataloader()
    assert loader.drop_last and len(list(loader)) == 2
    dm_all = MaskedDataModule(root=str(root), image_size=32, test_rows=3, filter_attrs=[], val_size=None)
    dm_all.setup("fit")
    assert len(dm_all.train_dataset) == 5
    assert dm.num_attributes == 4


def test_celeba_masks_get_the_geometry_of_their_image(tmp_path):
    root = _celeba(tmp_path, masks=True)
    dm = MaskedDataModule(root=str(root), image_size=32, crop_size=178, test_rows=2, mask_dir="masks", batch_size=1)
    dm.setup("fit")
    seen_flip = False
    for epoch in range(6):
        item = dm.train_dataset[(epoch, 0)]
        for side in "ab":
            bright = item[f"real_{side}"].min(0).values > 0.99  # the white half survives crop and resize
            mask = item[f"mask_{side}"][0].bool()
            assert set(item[f"mask_{side}"].unique().tolist()) <= {0.0, 1.0}
            # agree up to the JPEG-blurred boundary columns; a misaligned flip would disagree on half the image
            assert (mask ^ bright).float().mean() < 0.1 and 0.4 < mask.float().mean() < 0.6
            seen_flip |= bool(mask[:, -1].all())
    assert seen_flip


def test_domain_folders_with_label_map_masks(tmp_path):
    root = tmp_path / "sim2real"
    for phase, domain in (("train", "A"), ("train", "B"), ("test", "A"), ("test", "B")):
        images, labels = root / f"{phase}{domain}", root / "labels" / f"{phase}{domain}"
        images.mkdir(parents=True)
        labels.mkdir(parents=True)
        for k in range(2):
            Image.fromarray(np.full((40, 40, 3), 60 * k, np.uint8)).save(images / f"f{k}.jpg")
            label = np.full((40, 40), 7, np.uint8)  # road
            label[10:20, 10:30] = 26  # car
            label[30:, :] = 27  # truck
            Image.fromarray(label).save(labels / f"f{k}.png")
    dm = MaskedDataModule(root=str(root), layout="domains", image_size=40, crop_size=None, mask_dir="labels",
                          mask_ids=[26, 27], batch_size=2, no_flip=True)
    dm.setup("fit")
    item = dm.train_dataset[0]
    assert torch.equal(item["attr_a"], torch.tensor([1.0, 0.0])) and torch.equal(item["attr_b"], torch.tensor([0, 1.0]))
    assert "trainB" in item["path_b"]
    expected = torch.zeros(1, 40, 40)
    expected[:, 10:20, 10:30] = 1
    expected[:, 30:] = 1
    assert torch.equal(item["mask_a"], expected) and torch.equal(item["mask_b"], expected)
    assert "testA" in dm.val_dataset[0]["path_a"]


def test_clear_errors(tmp_path):
    root = _celeba(tmp_path)
    with pytest.raises(FileNotFoundError, match="No mask for image"):
        MaskedDataModule(root=str(root), mask_dir=str(tmp_path), test_rows=3).setup("fit")
    with pytest.raises(ValueError, match="not in"):
        read_celeba_attributes(root / "list_attr_celeba.txt", ["Bald"], filter_attrs=None)
    with pytest.raises(FileNotFoundError, match="attribute file"):
        MaskedDataModule(root=str(root), attr_file="missing.txt").setup("fit")
    with pytest.raises(FileNotFoundError, match="trainA"):
        MaskedDataModule(root=str(root), layout="domains").setup("fit")
