"""Object boxes as data: box files, COCO and INIT readers, padding, boxes following the image transform, toy boxes
and the BoxDataModule batch contract."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from PIL import Image

from zoo.data import BoxDataModule
from zoo.data.boxed import BoxSource
from zoo.data.boxes import (
    TOY_CLASSES,
    BoxAnnotation,
    fit_boxes,
    identity_geometry,
    mirror_boxes,
    pad_boxes,
    read_box_file,
    read_coco,
    read_init,
    write_box_file,
)
from zoo.data.transforms import TransformParams, get_transform


def _rectangle_image(width: int, height: int, box: tuple[int, int, int, int]) -> Image.Image:
    """Black image with the pixel box [x0, y0, x1, y1) filled white."""
    array = np.zeros((height, width, 3), np.uint8)
    array[box[1]:box[3], box[0]:box[2]] = 255
    return Image.fromarray(array)


def _white_extent(image: torch.Tensor) -> torch.Tensor | None:
    """Pixel box [x0, y0, x1, y1] of the pixels brighter than mid-grey in (C, H, W) in [-1, 1] (None: none)."""
    rows, cols = torch.nonzero(image.mean(0) > 0, as_tuple=True)
    if rows.numel() == 0:
        return None
    return torch.tensor([cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], dtype=torch.float32)


def _pixels(row: torch.Tensor, width: int, height: int) -> torch.Tensor:
    return row[1:] * torch.tensor([width, height, width, height])


def _check_contract(boxes: torch.Tensor, num_box: int, num_classes: int) -> None:
    assert boxes.dtype == torch.float32 and boxes.shape[-2:] == (num_box, 5)
    padding = boxes[..., 0] == -1
    assert torch.all(boxes[padding] == -1)
    real = boxes[~padding]
    assert torch.all((real[:, 0] >= 0) & (real[:, 0] < num_classes) & (real[:, 0] == real[:, 0].round()))
    assert torch.all((real[:, 1:] >= 0) & (real[:, 1:] <= 1))
    assert torch.all((real[:, 3] > real[:, 1]) & (real[:, 4] > real[:, 2]))


# --------------------------------------------------------------------------------------------------------------------
# Formats
# --------------------------------------------------------------------------------------------------------------------


def test_box_file_round_trip(tmp_path):
    annotation = BoxAnnotation(boxes=[{"label": "car", "bbox": [1, 2, 10, 8]}, {"label": 3, "bbox": [0, 0, 4, 4]}],
                               size=(20, 30))
    write_box_file(tmp_path / "a.json", annotation)
    assert read_box_file(tmp_path / "a.json") == annotation
    with pytest.raises(ValueError, match="size"):
        write_box_file(tmp_path / "b.json", BoxAnnotation())


def test_toy_dataset_box_files_are_zoo_box_files(tmp_path):
    from zoo.data.toy_world import write_toy_dataset

    write_toy_dataset(tmp_path, sequences=1, frames=1, size=(32, 64))
    annotation = read_box_file(tmp_path / "images" / "seq000" / "000000.json")
    assert annotation.size == (32, 64) and annotation.boxes
    boxes = fit_boxes(annotation, identity_geometry(64, 32), classes=TOY_CLASSES, num_box=50)
    assert (boxes[:, 0] >= 0).sum() == len(annotation.boxes)  # every toy class is a known class


def test_toy_classes_are_the_toy_world_instance_classes():
    from zoo.data.toy_world.labels import _INSTANCE_CLASSES, CITYSCAPES_CLASSES

    assert set(TOY_CLASSES) == {c.name for c in CITYSCAPES_CLASSES if c.id in _INSTANCE_CLASSES}


def test_read_coco(tmp_path):
    coco = {
        "images": [{"id": 7, "file_name": "x.jpg", "height": 40, "width": 50},
                   {"id": 8, "file_name": "sub/y.jpg", "height": 10, "width": 10}],
        "annotations": [{"id": 1, "image_id": 7, "category_id": 3, "bbox": [5, 6, 10, 4], "iscrowd": 0},
                        {"id": 2, "image_id": 7, "category_id": 1, "bbox": [0, 0, 2, 2]},
                        {"id": 3, "image_id": 7, "category_id": 1, "bbox": [0, 0, 50, 40], "iscrowd": 1}],
        "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}],
    }
    (tmp_path / "instances.json").write_text(json.dumps(coco))
    annotations = read_coco(tmp_path / "instances.json")
    assert annotations == {
        "x.jpg": BoxAnnotation(boxes=[{"label": "car", "bbox": [5, 6, 15, 10]},
                                      {"label": "person", "bbox": [0, 0, 2, 2]}], size=(40, 50)),
        "sub/y.jpg": BoxAnnotation(size=(10, 10)),
    }
    boxes = fit_boxes(annotations["x.jpg"], identity_geometry(50, 40), classes=("person", "car"), num_box=3)
    assert torch.equal(boxes, torch.tensor([[1, 0.1, 0.15, 0.3, 0.25], [0, 0, 0, 0.04, 0.05], [-1] * 5]))


def test_read_init(tmp_path):
    text = ("# 0\nsunny/a.jpg\n3 720 1280\n0\n2\n1 10 20 30 40\n3 0 0 5.5 6\n\n\n"
            "# 1\nsunny/b.jpg\n3 720 1280\n0\n0\n\n\n")
    (tmp_path / "init.txt").write_text(text)
    assert read_init(tmp_path / "init.txt") == {
        "sunny/a.jpg": BoxAnnotation(boxes=[{"label": 1, "bbox": [10, 20, 30, 40]},
                                            {"label": 3, "bbox": [0, 0, 5.5, 6]}]),
        "sunny/b.jpg": BoxAnnotation(),
    }
    (tmp_path / "bad.txt").write_text("sunny/a.jpg\n")
    with pytest.raises(ValueError, match="line 1"):
        read_init(tmp_path / "bad.txt")
    (tmp_path / "short.txt").write_text("# 0\nsunny/a.jpg\n3 720 1280\n0\n2\n1 10 20 30 40\n")
    with pytest.raises(ValueError, match="ends inside a block"):
        read_init(tmp_path / "short.txt")


def test_box_source_matches_listed_paths(tmp_path):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "trainA.txt").write_text("# 0\n/data/INIT/sunny/x/a.jpg\n-\n0\n1\n0 1 1 3 3\n")
    source = BoxSource(tmp_path, [tmp_path / "trainA"], "init")
    assert source(tmp_path / "trainA" / "x" / "a.jpg").boxes == [{"label": 0, "bbox": [1, 1, 3, 3]}]
    assert source(tmp_path / "trainA" / "a.jpg").boxes  # the listed path may have more leading folders, or fewer
    assert source(tmp_path / "trainA" / "y" / "a.jpg") is None  # another folder: another image
    assert source(tmp_path / "trainA" / "x" / "b.jpg") is None
    (tmp_path / "annotations" / "trainA.txt").write_text("# 0\np/x/a.jpg\n-\n0\n0\n# 1\nq/x/a.jpg\n-\n0\n0\n")
    with pytest.raises(ValueError, match="several annotated paths"):
        BoxSource(tmp_path, [tmp_path / "trainA"], "init")(tmp_path / "trainA" / "x" / "a.jpg")


# --------------------------------------------------------------------------------------------------------------------
# Padding, clipping, mirroring
# --------------------------------------------------------------------------------------------------------------------


def test_pad_boxes_keeps_the_largest_in_order():
    boxes = torch.tensor([[0, 0, 0, 0.1, 0.1], [1, 0, 0, 0.5, 0.5], [2, 0, 0, 0.2, 0.2], [3, 0, 0, 0.5, 0.5]])
    assert torch.equal(pad_boxes(boxes, 2), boxes[[1, 3]])
    assert torch.equal(pad_boxes(boxes, 3), boxes[[1, 2, 3]])
    padded = pad_boxes(boxes, 6)
    assert torch.equal(padded[:4], boxes) and torch.all(padded[4:] == -1)
    empty = pad_boxes(torch.zeros(0, 5), 4)
    assert empty.shape == (4, 5) and empty.dtype == torch.float32 and torch.all(empty == -1)
    assert fit_boxes(None, identity_geometry(8, 8), classes=TOY_CLASSES, num_box=3).eq(-1).all()


def test_fit_boxes_clips_drops_and_scales():
    annotation = BoxAnnotation(boxes=[
        {"label": "car", "bbox": [-5, 2, 10, 8]},  # partly outside: clipped
        {"label": "car", "bbox": [30, 2, 40, 8]},  # outside: dropped
        {"label": "car", "bbox": [4, 4, 4, 9]},  # no width: dropped
        {"label": "tree", "bbox": [0, 0, 5, 5]},  # unknown class: dropped
        {"label": "person", "bbox": [10, 0, 20, 10]},
    ], size=(10, 20))
    boxes = fit_boxes(annotation, identity_geometry(40, 20), classes=("car", "person"), num_box=3)  # stored 2x
    assert torch.allclose(boxes, torch.tensor([[0, 0, 0.2, 0.5, 0.8], [1, 0.5, 0, 1, 1], [-1] * 5]))


def test_mirror_boxes_leaves_padding():
    boxes = torch.tensor([[2, 0.1, 0.2, 0.3, 0.4], [-1] * 5])
    assert torch.allclose(mirror_boxes(boxes), torch.tensor([[2, 0.7, 0.2, 0.9, 0.4], [-1] * 5]))
    assert torch.allclose(mirror_boxes(mirror_boxes(boxes)), boxes)


# --------------------------------------------------------------------------------------------------------------------
# Boxes follow the image transform
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("crop_pos", "flip", "expected"), [
    ((0, 0), False, (5, 6, 15, 20)),
    ((0, 0), True, (32 - 15, 6, 32 - 5, 20)),
    ((10, 4), False, (0, 2, 5, 16)),  # clipped
    ((10, 4), True, (27, 2, 32, 16)),
    ((30, 10), False, None),  # outside the crop: dropped
])
def test_boxes_follow_fixed_crop_and_flip_exactly(crop_pos, flip, expected):
    rectangle = (5, 6, 15, 20)
    image = _rectangle_image(64, 48, rectangle)
    transform = get_transform(preprocess="crop", load_size=64, crop_size=32, no_flip=False,
                              params=TransformParams(crop_pos=crop_pos, flip=flip))
    geometry = transform.geometry(image.size)
    out = transform.apply(image, geometry)
    boxes = fit_boxes(BoxAnnotation([{"label": "car", "bbox": list(rectangle)}]), geometry, classes=TOY_CLASSES,
                      num_box=2)
    assert torch.equal(out, transform(image))
    if expected is None:
        assert _white_extent(out) is None and torch.all(boxes == -1)
        return
    assert torch.equal(_white_extent(out), torch.tensor(expected, dtype=torch.float32))
    assert torch.equal(_pixels(boxes[0], 32, 32), torch.tensor(expected, dtype=torch.float32))


@pytest.mark.parametrize(("preprocess", "size", "tolerance"), [
    ("crop", (64, 48), 0.0),
    ("resize_and_crop", (50, 40), 1.0),
    ("scale_width_and_crop", (50, 70), 1.0),
    ("scale_width", (50, 70), 1.0),
    ("resize", (50, 40), 1.0),
    ("none", (50, 42), 1.0),
])
@pytest.mark.parametrize("seed", range(6))
def test_boxes_follow_random_transforms(preprocess, size, tolerance, seed):
    rng = random.Random(seed)
    x0, y0 = rng.randint(0, size[0] // 2), rng.randint(0, size[1] // 2)
    rectangle = (x0, y0, x0 + rng.randint(6, size[0] // 2), y0 + rng.randint(6, size[1] // 2))
    image = _rectangle_image(*size, rectangle)
    transform = get_transform(preprocess=preprocess, load_size=40, crop_size=32, no_flip=False, rng=random.Random(seed))
    geometry = transform.geometry(image.size)
    out = transform.apply(image, geometry)
    assert torch.equal(out, get_transform(preprocess=preprocess, load_size=40, crop_size=32, no_flip=False,
                                          rng=random.Random(seed))(image))  # same draws as the plain call
    boxes = fit_boxes(BoxAnnotation([{"label": "car", "bbox": list(rectangle)}]), geometry, classes=TOY_CLASSES,
                      num_box=1)
    extent = _white_extent(out)
    if extent is None:  # the crop missed the rectangle
        assert torch.all(boxes == -1)
        return
    height, width = out.shape[-2:]
    assert (_pixels(boxes[0], width, height) - extent).abs().max() <= tolerance


# --------------------------------------------------------------------------------------------------------------------
# Toy world
# --------------------------------------------------------------------------------------------------------------------


def _toy_module(**options) -> BoxDataModule:
    return BoxDataModule(root=None, image_size=48, batch_size=4, toy_length=8, toy_test_length=4, val_size=4,
                         check_files=False, **options)


def test_toy_boxes_are_the_scene_objects():
    """Each toy box is the tight box of an object of its class in the (randomly flipped) training image."""
    from zoo.data.toy_world.labels import CITYSCAPES_CLASSES

    train_id = {c.name: c.train_id for c in CITYSCAPES_CLASSES}
    dm = _toy_module(num_box=40)
    dm.setup("fit")
    for index in range(8):
        item = dm.train_dataset[(0, index)]
        labels = item["label_a"]
        for row in item["box_a"][item["box_a"][:, 0] >= 0]:
            x0, y0, x1, y1 = _pixels(row, 48, 48).round().long().tolist()
            inside = labels[y0:y1, x0:x1] == train_id[TOY_CLASSES[int(row[0])]]
            assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any()


def test_toy_boxes_of_both_domains_come_from_their_scenes():
    from zoo.data.toy_world import make_scene
    from zoo.data.toy_world.datasets import _scene_seed
    from zoo.data.toy_world.raster import frame_boxes

    dm = _toy_module(num_box=40)
    dm.setup("validate")
    for index in range(4):
        item = dm.val_dataset[index]
        for side, stream in (("a", 0), ("b", 1)):
            scene = make_scene(_scene_seed(0, "val", index, stream), 48, 48)
            expected = [[TOY_CLASSES.index(b["label"]), *(torch.tensor(b["bbox"]) / 48).tolist()]
                        for b in frame_boxes(scene)]
            boxes = item[f"box_{side}"]
            assert torch.allclose(boxes[: len(expected)], torch.tensor(expected).reshape(-1, 5))
            assert torch.all(boxes[len(expected):] == -1)


@pytest.mark.parametrize("direction", ["AtoB", "BtoA"])
def test_toy_datamodule_batches(direction):
    dm = _toy_module(num_box=5, direction=direction)
    dm.setup("fit")
    for batch in (next(iter(dm.train_dataloader())), next(iter(dm.val_dataloader()))):
        for side in "ab":
            assert batch[f"real_{side}"].shape == (4, 3, 48, 48)
            assert batch[f"real_{side}"].min() >= -1 and batch[f"real_{side}"].max() <= 1
            _check_contract(batch[f"box_{side}"], 5, len(TOY_CLASSES))
            assert (batch[f"box_{side}"][..., 0] >= 0).any()
    assert dm.hparams["num_box"] == 5 and dm.hparams["direction"] == direction


def test_toy_datamodule_predict_batches_have_boxes():
    dm = _toy_module(num_box=5)
    dm.setup("predict")
    batch = next(iter(dm.predict_dataloader()))
    _check_contract(batch["box_a"], 5, len(TOY_CLASSES))
    _check_contract(batch["box_b"], 5, len(TOY_CLASSES))


def test_geometric_augmentation_is_refused():
    with pytest.raises(ValueError, match="augment"):
        _toy_module(augment=True)


# --------------------------------------------------------------------------------------------------------------------
# Image folders
# --------------------------------------------------------------------------------------------------------------------


def _write_folder(root, box_format: str) -> dict[str, tuple[int, int, int, int]]:
    """trainA / trainB / testA / testB with one white rectangle per image, boxed in ``box_format``."""
    rectangles, coco = {}, {}
    rng = random.Random(0)
    for folder in ("trainA", "trainB", "testA", "testB"):
        (root / folder).mkdir(parents=True)
        images, annotations = [], []
        for k in range(3):
            width, height = 40 + 8 * k, 36
            x0, y0 = rng.randint(0, 20), rng.randint(0, 16)
            rectangle = (x0, y0, x0 + rng.randint(8, 20), y0 + rng.randint(8, 20))
            name = f"{folder}_{k}.png"
            _rectangle_image(width, height, rectangle).save(root / folder / name)
            rectangles[name] = rectangle
            box = {"label": "person", "bbox": list(rectangle)}
            if box_format == "zoo":
                write_box_file(root / folder / f"{folder}_{k}.json", BoxAnnotation([box], size=(height, width)))
            images.append({"id": k, "file_name": name, "height": height, "width": width})
            annotations.append({"id": k, "image_id": k, "category_id": 1, "bbox": [x0, y0, rectangle[2] - x0,
                                                                                      rectangle[3] - y0]})
        coco[folder] = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "person"}]}
    if box_format == "coco":
        (root / "annotations").mkdir()
        for folder, data in coco.items():
            (root / "annotations" / f"instances_{folder}.json").write_text(json.dumps(data))
    return rectangles


@pytest.mark.parametrize("box_format", ["zoo", "coco"])
@pytest.mark.parametrize("direction", ["AtoB", "BtoA"])
def test_folder_boxes_cover_the_drawn_rectangles(tmp_path, box_format, direction):
    rectangles = _write_folder(tmp_path, box_format)
    dm = BoxDataModule(root=str(tmp_path), box_format=box_format, load_size=40, crop_size=32, batch_size=3,
                       num_box=4, direction=direction, val_size=3, check_files=False)
    dm.setup("fit")
    for epoch in range(3):
        for index in range(3):
            item = dm.train_dataset[(epoch, index)]
            for side in "ab":
                assert item[f"path_{side}"].split("/")[-2].endswith("AB"["ab".index(side) ^ (direction == "BtoA")])
                _check_contract(item[f"box_{side}"], 4, len(TOY_CLASSES))
                extent, row = _white_extent(item[f"real_{side}"]), item[f"box_{side}"][0]
                if extent is None:
                    assert row[0] == -1
                else:
                    assert row[0] == TOY_CLASSES.index("person")
                    assert (_pixels(row, 32, 32) - extent).abs().max() <= 1
    batch = next(iter(dm.val_dataloader()))
    assert batch["real_a"].shape == (3, 3, 32, 32) and batch["box_a"].shape == (3, 4, 5)
    dm.setup("predict")
    for batch in dm.predict_dataloader():  # whole images: the boxes only normalised
        for side in "ab":
            height, width = batch[f"real_{side}"].shape[-2:]
            for path, row in zip(batch[f"path_{side}"], batch[f"box_{side}"][:, 0], strict=True):
                expected = torch.tensor(rectangles[path.split("/")[-1]], dtype=torch.float32)
                assert torch.allclose(_pixels(row, width, height), expected, atol=1e-4)


def test_missing_annotations_are_reported(tmp_path):
    _write_folder(tmp_path, "zoo")
    with pytest.raises(FileNotFoundError, match="instances_trainA.json"):
        BoxDataModule(root=str(tmp_path), box_format="coco", check_files=False).setup("fit")
