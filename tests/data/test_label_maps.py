"""Label-map datasets and DataModule (pix2pixHD): layouts, official preprocessing, alignment, errors, toy world."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from zoo.data import LabelMapDataModule, LabelMapDataset
from zoo.data.label_maps import preprocess_label_map_image
from zoo.data.toy_world import ToyLabelMapDataset, cityscapes_instance_ids, label_to_train_id, make_scene
from zoo.data.transforms import get_params, item_rng

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

DATA_DIR = Path(os.environ.get("ZOO_DATA_DIR", Path(__file__).resolve().parents[2] / ".." / "shared" / "data"))
CITYSCAPES = DATA_DIR / "cityscapes_pix2pixhd"

needs_cityscapes = pytest.mark.skipif(
    not (CITYSCAPES / "train_label").is_dir(),
    reason=f"the pix2pixHD Cityscapes sample '{CITYSCAPES}' is absent (shared data folder not mounted)",
)

THING_IDS = tuple(range(24, 34))


def _ids(real_a: torch.Tensor) -> torch.Tensor:
    """Label ids as the model recovers them."""
    return torch.round((real_a + 1) / 2 * 255).long()


def _file_ids(path: Path) -> set[int]:
    with Image.open(path) as image:
        return set(np.unique(np.asarray(image)).tolist())


def _check_instance_matches_label(instance: torch.Tensor, ids: torch.Tensor) -> None:
    """Cityscapes convention: an instance id is the label id (stuff) or label * 1000 + k (things)."""
    inst = instance.long()
    owner = torch.where(inst >= 1000, inst // 1000, inst)
    assert torch.equal(owner, ids)


def _flip_epoch(dataset: LabelMapDataset, index: int, size: tuple[int, int], *, flip: bool) -> int:
    """An epoch whose draw for item ``index`` flips (or not)."""
    for epoch in range(100):
        params = get_params(preprocess=dataset.resize_or_crop, load_size=dataset.load_size,
                            crop_size=dataset.fine_size, size=size, rng=item_rng(dataset.seed, epoch, index))
        if params.flip == flip:
            return epoch
    raise AssertionError("no epoch with the wanted flip")


# --------------------------------------------------------------------------------------------------------------------
# The official pix2pixHD sample (datasets/cityscapes)
# --------------------------------------------------------------------------------------------------------------------


@needs_cityscapes
def test_cityscapes_sample_items_scale_width():
    dataset = LabelMapDataset(root=CITYSCAPES, phase="train", load_size=256, fine_size=128, no_flip=True)
    assert len(dataset) == 8 and dataset.has_photos
    item = dataset[0]
    assert set(item) == {"real_a", "instance", "real_b", "label", "path_a", "path_b"}
    # official scale_width: 2048x1024 -> width 256, height int(256 * 1024 / 2048)
    assert item["real_a"].shape == (1, 128, 256) and item["real_a"].dtype == torch.float32
    assert item["instance"].shape == (1, 128, 256) and item["instance"].dtype == torch.float32
    assert item["real_b"].shape == (3, 128, 256) and item["real_b"].dtype == torch.float32
    assert item["label"].shape == (128, 256) and item["label"].dtype == torch.int64
    for key in ("real_a", "real_b"):
        assert item[key].min() >= -1 and item[key].max() <= 1
    ids = _ids(item["real_a"])
    assert torch.allclose(ids.float() / 255 * 2 - 1, item["real_a"])  # exact ids, nothing blended
    assert ids.min() >= 0 and ids.max() <= 33
    instance = item["instance"]
    assert torch.equal(instance, instance.round())
    assert (instance >= 1000).any()  # car / person instances such as 26001
    _check_instance_matches_label(instance, ids)
    assert torch.equal(item["label"], label_to_train_id(ids[0]))
    assert set(item["label"].unique().tolist()) <= set(range(19)) | {255}
    # NEAREST keeps the id sets within those of the files
    assert set(ids.unique().tolist()) <= _file_ids(Path(item["path_a"]))
    instance_file = CITYSCAPES / "train_inst" / Path(item["path_a"]).name.replace("labelIds", "instanceIds")
    assert set(instance.long().unique().tolist()) <= _file_ids(instance_file)


@needs_cityscapes
def test_cityscapes_sample_crop_and_flip_stay_aligned():
    index = 1
    base = LabelMapDataset(root=CITYSCAPES, resize_or_crop="scale_width", load_size=256, fine_size=64, no_flip=True)
    cropped = LabelMapDataset(root=CITYSCAPES, resize_or_crop="scale_width_and_crop", load_size=256, fine_size=64)
    epoch = _flip_epoch(cropped, index, (2048, 1024), flip=True)
    params = get_params(preprocess="scale_width_and_crop", load_size=256, crop_size=64, size=(2048, 1024),
                        rng=item_rng(cropped.seed, epoch, index))
    whole, item = base[(epoch, index)], cropped[(epoch, index)]
    x, y = params.crop_pos
    for key in ("real_a", "instance", "real_b", "label"):
        assert item[key].shape[-2:] == (64, 64)
        expected = whole[key][..., y:y + 64, x:x + 64].flip(-1)
        assert torch.equal(item[key], expected), key
    _check_instance_matches_label(item["instance"], _ids(item["real_a"]))
    # an unflipped epoch of the same item is the same crop, unflipped
    plain_epoch = _flip_epoch(cropped, index, (2048, 1024), flip=False)
    plain_params = get_params(preprocess="scale_width_and_crop", load_size=256, crop_size=64, size=(2048, 1024),
                              rng=item_rng(cropped.seed, plain_epoch, index))
    x, y = plain_params.crop_pos
    assert torch.equal(cropped[(plain_epoch, index)]["real_b"], whole["real_b"][..., y:y + 64, x:x + 64])


@needs_cityscapes
def test_cityscapes_sample_resize_and_crop_and_determinism():
    dataset = LabelMapDataset(root=CITYSCAPES, resize_or_crop="resize_and_crop", load_size=80, fine_size=48)
    item = dataset[(3, 2)]
    assert item["real_a"].shape == (1, 48, 48) and item["real_b"].shape == (3, 48, 48)
    again = dataset[(3, 2)]
    for key in ("real_a", "instance", "real_b", "label"):
        assert torch.equal(item[key], again[key])
    other_epochs = [dataset[(epoch, 2)]["real_b"] for epoch in range(4, 8)]
    assert any(not torch.equal(item["real_b"], other) for other in other_epochs)


@needs_cityscapes
def test_cityscapes_sample_predict_without_photos():
    dm = LabelMapDataModule(root=str(CITYSCAPES), load_size=256, fine_size=128, val_batch_size=2, val_size=2)
    dm.setup("predict")
    batch = next(iter(dm.predict_dataloader()))
    assert "real_b" not in batch and "path_b" not in batch
    assert batch["real_a"].shape == (2, 1, 1024, 2048)  # whole, at the stored size
    assert batch["instance"].shape == (2, 1, 1024, 2048)
    assert batch["relpath_a"] == sorted(path.name for path in (CITYSCAPES / "test_label").iterdir())[:2]
    ids = _ids(batch["real_a"])
    assert ids.max() <= 33
    _check_instance_matches_label(batch["instance"], ids)
    # the test split has no photos, so validation falls back to the training photos
    dm.setup("validate")
    val_item = dm.val_dataset[0]
    assert val_item["real_b"].shape == (3, 128, 256) and "train_img" in val_item["path_b"]


# --------------------------------------------------------------------------------------------------------------------
# Synthetic trees: the cityscapes layout, `none`, errors
# --------------------------------------------------------------------------------------------------------------------


def _synthetic_maps(h: int, w: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Label ids (uint8) and Cityscapes instance ids (uint16) of random blocks."""
    rng = np.random.default_rng(seed)
    labels = rng.choice([7, 8, 11, 23, 24, 26], size=(h // 2, w // 2)).repeat(2, 0).repeat(2, 1).astype(np.uint8)
    instances = labels.astype(np.uint16)
    things = np.isin(labels, (24, 26))
    instances[things] = labels[things].astype(np.uint16) * 1000 + rng.integers(0, 3, int(things.sum()))
    return labels, instances


def _write_item(label_path: Path, inst_path: Path | None, photo_path: Path | None, *, h: int, w: int, seed: int):
    labels, instances = _synthetic_maps(h, w, seed)
    for path in (label_path, inst_path, photo_path):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(labels).save(label_path)
    if inst_path is not None:
        Image.fromarray(instances).save(inst_path)  # 16-bit, mode I;16
    if photo_path is not None:  # the photo shows the label ids, so alignment is visible
        Image.fromarray(np.repeat(labels[..., None], 3, axis=2)).save(photo_path)


def _cityscapes_tree(root: Path, *, h: int = 24, w: int = 40) -> Path:
    for split, cities in (("train", ("aachen", "bochum")), ("val", ("frankfurt",))):
        for c, city in enumerate(cities):
            for k in range(2):
                name = f"{city}_{k:06d}_000019"
                gt = root / "gtFine" / split / city
                _write_item(gt / f"{name}_gtFine_labelIds.png", gt / f"{name}_gtFine_instanceIds.png",
                            root / "leftImg8bit" / split / city / f"{name}_leftImg8bit.png", h=h, w=w,
                            seed=100 * c + k + (50 if split == "val" else 0))
                Image.new("RGB", (w, h)).save(gt / f"{name}_gtFine_color.png")  # not a label-id map: ignored
    return root


def _pix2pixhd_tree(root: Path, *, count: int = 3, h: int = 30, w: int = 50, photos: bool = True) -> Path:
    for k in range(count):
        name = f"city_{k:06d}_000019"
        _write_item(root / "train_label" / f"{name}_gtFine_labelIds.png",
                    root / "train_inst" / f"{name}_gtFine_instanceIds.png",
                    root / "train_img" / f"{name}_leftImg8bit.png" if photos else None, h=h, w=w, seed=k)
    return root


def test_cityscapes_layout(tmp_path):
    root = _cityscapes_tree(tmp_path / "cityscapes")
    dataset = LabelMapDataset(root=root, layout="cityscapes", phase="train", resize_or_crop="none", size_multiple=4,
                              no_flip=True)
    assert len(dataset) == 4
    assert [Path(f.label).parent.name for f in dataset.files] == ["aachen", "aachen", "bochum", "bochum"]
    for index in range(len(dataset)):
        item = dataset[index]
        assert item["real_a"].shape == (1, 24, 40) and item["real_b"].shape == (3, 24, 40)
        ids = _ids(item["real_a"])
        assert torch.equal(ids[0], _ids(item["real_b"])[0])  # the photo of this very label map
        _check_instance_matches_label(item["instance"], ids)
        assert Path(item["path_b"]).name == Path(item["path_a"]).name.replace("gtFine_labelIds", "leftImg8bit")
    dm = LabelMapDataModule(root=str(root), layout="cityscapes", resize_or_crop="scale_width", load_size=20,
                            batch_size=2, val_size=None)
    dm.setup("fit")
    assert dm.val_dataset.phase == "val" and len(dm.val_dataset) == 2
    batch = next(iter(dm.train_dataloader()))
    assert batch["real_a"].shape == (2, 1, 12, 20) and batch["instance"].shape == (2, 1, 12, 20)


def test_none_rounds_to_multiples_and_label_nc_zero(tmp_path):
    root = _pix2pixhd_tree(tmp_path / "hd", count=2, h=30, w=50)
    dataset = LabelMapDataset(root=root, resize_or_crop="none", size_multiple=16)
    item = dataset[0]
    # round(30 / 16) * 16 = 32, round(50 / 16) * 16 = 48
    assert item["real_a"].shape == (1, 32, 48) and item["real_b"].shape == (3, 32, 48)
    assert set(_ids(item["real_a"]).unique().tolist()) <= _file_ids(Path(item["path_a"]))
    rgb = LabelMapDataset(root=root, label_nc=0, instances=False, resize_or_crop="none", size_multiple=16)[0]
    assert rgb["real_a"].shape == (3, 32, 48) and "label" not in rgb and "instance" not in rgb


def test_preprocess_label_map_image_official_sizes():
    image = Image.new("L", (2048, 1024))
    params = get_params(preprocess="scale_width", load_size=256, crop_size=128, size=image.size,
                        rng=item_rng(0, 0, 0))
    common = dict(params=params, flip=False, resample=Image.Resampling.NEAREST)
    out = preprocess_label_map_image(image, resize_or_crop="scale_width", load_size=256, fine_size=128, **common)
    assert out.size == (256, 128)
    out = preprocess_label_map_image(image, resize_or_crop="scale_width_and_crop", load_size=256, fine_size=100,
                                     **common)
    assert out.size == (100, 100)
    out = preprocess_label_map_image(image, resize_or_crop="crop", load_size=256, fine_size=64, **common)
    assert out.size == (64, 64)


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="train_label.*Expected the official pix2pixHD layout"):
        LabelMapDataset(root=tmp_path)
    root = _pix2pixhd_tree(tmp_path / "no_photos", photos=False)
    with pytest.raises(FileNotFoundError, match="train_img.*training needs a photo"):
        LabelMapDataset(root=root)
    assert "real_b" not in LabelMapDataset(root=root, require_photos=False, load_size=32)[0]

    root = _pix2pixhd_tree(tmp_path / "missing_photo")
    (root / "train_img" / "city_000001_000019_leftImg8bit.png").unlink()
    with pytest.raises(ValueError, match=r"1 of 3 label map\(s\).*have no photo.*city_000001_000019"):
        LabelMapDataset(root=root)

    root = _pix2pixhd_tree(tmp_path / "missing_instance")
    (root / "train_inst" / "city_000002_000019_gtFine_instanceIds.png").unlink()
    with pytest.raises(ValueError, match="have no instance map.*city_000002_000019.*instances"):
        LabelMapDataset(root=root)
    assert "instance" not in LabelMapDataset(root=root, instances=False, load_size=32)[0]

    root = _pix2pixhd_tree(tmp_path / "no_inst_folder")
    for path in (root / "train_inst").iterdir():
        path.unlink()
    (root / "train_inst").rmdir()
    with pytest.raises(FileNotFoundError, match="Instance map folder.*train_inst.*instances: false"):
        LabelMapDataset(root=root)

    with pytest.raises(ValueError, match="ids must be 0..9"):
        LabelMapDataset(root=_pix2pixhd_tree(tmp_path / "ids"), label_nc=10)[0]
    with pytest.raises(ValueError, match="resize_or_crop"):
        LabelMapDataset(root=_pix2pixhd_tree(tmp_path / "rc"), resize_or_crop="resize")
    with pytest.raises(ValueError, match="layout"):
        LabelMapDataModule(root=str(tmp_path), layout="folders")

    dm = LabelMapDataModule(root=str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError, match="absent.*does not exist.*Expected"):
        dm.setup("fit")
    dm = LabelMapDataModule(root=str(tmp_path), layout="cityscapes")
    with pytest.raises(FileNotFoundError, match="gtFine.*Expected the Cityscapes layout"):
        dm.setup("fit")


# --------------------------------------------------------------------------------------------------------------------
# Toy world
# --------------------------------------------------------------------------------------------------------------------


def test_toy_label_map_items():
    dataset = ToyLabelMapDataset(length=4, size=(32, 64), split="train", seed=3)
    item = dataset[1]
    assert set(item) == {"real_a", "instance", "real_b", "label"}
    assert item["real_a"].shape == (1, 32, 64) and item["instance"].shape == (1, 32, 64)
    assert item["real_b"].shape == (3, 32, 64) and item["label"].shape == (32, 64)
    ids = _ids(item["real_a"])
    assert ids.max() <= 33 and torch.allclose(ids.float() / 255 * 2 - 1, item["real_a"])
    _check_instance_matches_label(item["instance"], ids)
    assert torch.equal(item["label"], label_to_train_id(ids[0]))
    # determinism, and splits that differ
    again = dataset[1]
    assert all(torch.equal(item[key], again[key]) for key in item)
    for split in ("val", "test"):
        other = ToyLabelMapDataset(length=4, size=(32, 64), split=split, seed=3)[1]
        assert not torch.equal(item["real_b"], other["real_b"])
    colour = ToyLabelMapDataset(length=1, size=16, label_format="color", instances=False)[0]
    assert colour["real_a"].shape == (3, 16, 16) and "instance" not in colour


def test_toy_instances_are_distinct_per_object():
    for seed in range(30):
        scene = make_scene(seed, 48, 96)
        cars = [k for k, c in scene.instance_classes.items() if c == 26 and (scene.instances == k).any()]
        if len(cars) >= 2:
            break
    else:
        pytest.fail("no toy scene with two cars")
    ids = cityscapes_instance_ids(scene)
    car_ids = [set(np.unique(ids[scene.instances == k]).tolist()) for k in cars]
    assert all(len(s) == 1 for s in car_ids)
    values = [s.pop() for s in car_ids]
    assert len(set(values)) == len(values) and all(v // 1000 == 26 for v in values)
    # one id per object instance of every thing class: the map from object to id is injective
    things = np.isin(scene.labels, THING_IDS)
    pairs = set(zip(scene.instances[things].tolist(), ids[things].tolist(), strict=True))
    assert len({obj for obj, _ in pairs}) == len({value for _, value in pairs}) == len(pairs)
    stuff = ~things
    assert np.array_equal(ids[stuff], scene.labels[stuff].astype(np.int32))


def test_toy_datamodule_round_trip():
    dm = LabelMapDataModule(image_size=[32, 48], batch_size=2, toy_length=6, toy_test_length=3, val_size=2, seed=1)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["real_a"].shape == (2, 1, 32, 48) and batch["instance"].shape == (2, 1, 32, 48)
    assert batch["real_b"].shape == (2, 3, 32, 48) and batch["label"].shape == (2, 32, 48)
    ids = _ids(batch["real_a"])
    _check_instance_matches_label(batch["instance"], ids)
    assert torch.equal(batch["label"], label_to_train_id(ids[:, 0]))
    # training flips move label, instance and photo together
    train = dm.train_dataset
    unflipped = train.dataset[0]
    flips = [train[(epoch, 0)] for epoch in range(8)]
    flipped = [item for item in flips if not torch.equal(item["real_b"], unflipped["real_b"])]
    assert flipped, "no flipped item in 8 epochs"
    for key in ("real_a", "instance", "real_b", "label"):
        assert torch.equal(flipped[0][key], unflipped[key].flip(-1))
    val = dm.val_dataloader()
    assert next(iter(val))["real_a"].shape == (2, 1, 32, 48)
    dm.setup("predict")
    predict = next(iter(dm.predict_dataloader()))
    assert predict["relpath_a"] == ["toy_00000.png", "toy_00001.png"]
    assert predict["instance"].shape == (2, 1, 32, 48)
    assert LabelMapDataModule().image_size == (512, 1024)  # scale_width to load_size 1024, 2:1
    with pytest.raises(ValueError, match="label_nc"):
        LabelMapDataModule(label_nc=20)
    with pytest.raises(ValueError, match="augment"):
        LabelMapDataModule(augment=True)
