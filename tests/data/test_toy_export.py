"""``write_toy_dataset`` and ``zoo toy-dataset``: a labelled toy-world dataset on disk (images, label ids, boxes)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from zoo.cli import main
from zoo.data.toy_world import CITYSCAPES_CLASSES, make_scene, write_toy_dataset
from zoo.data.toy_world.export import frame_boxes, sequence_scene

SIZE = (32, 64)
IDS = {c.id for c in CITYSCAPES_CLASSES}
ID_OF = {c.name: c.id for c in CITYSCAPES_CLASSES}
INSTANCE_NAMES = ("pole", "traffic light", "traffic sign", "person", "car", "truck", "bus")


def _files(root: Path) -> set[Path]:
    return {path for path in root.rglob("*") if path.is_file()}


def _read(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.array(image)


def test_layout_files_and_label_ids(tmp_path):
    written = write_toy_dataset(tmp_path / "sim", sequences=2, frames=3, size=SIZE)
    root = tmp_path / "sim"
    assert written[0] == root / "classes.json" and set(written) == _files(root) and len(written) == 1 + 2 * 3 * 3
    for seq in ("seq000", "seq001"):
        for frame in ("000000", "000001", "000002"):
            image = _read(root / "images" / seq / f"{frame}.png")
            labels = _read(root / "labels" / seq / f"{frame}.png")
            assert image.shape == (*SIZE, 3) and image.dtype == np.uint8
            assert labels.shape == SIZE and labels.dtype == np.uint8  # 8-bit single channel, as *_labelIds.png
            assert set(np.unique(labels).tolist()) <= IDS
            assert {ID_OF["road"], ID_OF["sky"]} <= set(np.unique(labels).tolist())
            assert (root / "images" / seq / f"{frame}.json").is_file()
    classes = json.loads((root / "classes.json").read_text())
    assert classes["label_encoding"] == "label_ids" and len(classes["classes"]) == 34
    road = next(c for c in classes["classes"] if c["name"] == "road")
    assert road == {"name": "road", "id": 7, "train_id": 0, "color": [128, 64, 128]}


def test_boxes_lie_in_the_image_and_cover_exactly_the_labelled_objects(tmp_path):
    write_toy_dataset(tmp_path, sequences=2, frames=2, size=(64, 128))
    names = set()
    for box_file in sorted((tmp_path / "images").rglob("*.json")):
        record = json.loads(box_file.read_text())
        labels = _read(tmp_path / "labels" / box_file.parent.name / f"{box_file.stem}.png")
        height, width = labels.shape
        assert record["size"] == [height, width]
        covered = np.zeros_like(labels, dtype=bool)
        for box in record["boxes"]:
            x0, y0, x1, y1 = box["bbox"]
            assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
            class_id = ID_OF[box["label"]]
            inside = labels[y0:y1, x0:x1] == class_id
            # tight: the object's class touches every edge of its box
            assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any()
            covered[y0:y1, x0:x1] |= inside
            names.add(box["label"])
        # every pixel labelled with an object class lies in a box of that class
        objects = np.isin(labels, [ID_OF[name] for name in INSTANCE_NAMES])
        assert not (objects & ~covered).any()
    assert {"car", "pole"} <= names <= set(INSTANCE_NAMES)


def test_same_seed_writes_identical_bytes_and_another_seed_other_streets(tmp_path):
    first = write_toy_dataset(tmp_path / "a", sequences=1, frames=2, size=SIZE, seed=3)
    again = write_toy_dataset(tmp_path / "b", sequences=1, frames=2, size=SIZE, seed=3)
    other = write_toy_dataset(tmp_path / "c", sequences=1, frames=2, size=SIZE, seed=4)
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in again]
    image = "images/seq000/000000.png"
    assert (tmp_path / "a" / image).read_bytes() != (tmp_path / "c" / image).read_bytes()
    assert len(first) == len(other)


def test_frames_of_a_sequence_follow_a_camera_driving_forward():
    seed = 11
    first = sequence_scene(seed, 0, 64, 128)
    assert np.array_equal(first.labels, make_scene(seed, 64, 128).labels)  # frame 0 is the scene itself
    frames = [sequence_scene(seed, k, 64, 128) for k in range(4)]
    other_street = sequence_scene(seed + 1, 1, 64, 128)
    for previous, current in zip(frames, frames[1:], strict=False):
        change = np.mean(previous.labels != current.labels)
        assert 0 < change < np.mean(current.labels != other_street.labels)
    # the nearest car grows as the camera approaches it
    car_areas = [max((b["bbox"][2] - b["bbox"][0]) * (b["bbox"][3] - b["bbox"][1])
                     for b in frame_boxes(scene) if b["label"] == "car") for scene in frames]
    assert car_areas[-1] > car_areas[0]


def test_photo_domain_renders_photos_of_the_same_labels(tmp_path):
    write_toy_dataset(tmp_path / "sim", sequences=1, frames=1, size=SIZE)
    write_toy_dataset(tmp_path / "photo", sequences=1, frames=1, size=SIZE, domain="photo", boxes=False)
    frame = Path("seq000/000000.png")
    assert np.array_equal(_read(tmp_path / "sim/labels" / frame), _read(tmp_path / "photo/labels" / frame))
    assert not np.array_equal(_read(tmp_path / "sim/images" / frame), _read(tmp_path / "photo/images" / frame))
    assert not (tmp_path / "photo/images/seq000/000000.json").exists()


@pytest.mark.parametrize(("options", "message"), [
    ({"domain": "label"}, "domain must be"),
    ({"size": (2, 64)}, "size must be"),
    ({"frames": 0}, "frames must be"),
    ({"seed": -1}, "seed must be"),
])
def test_bad_arguments_are_named(tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        write_toy_dataset(tmp_path, **options)


def test_cli_writes_the_dataset_and_says_what(tmp_path, capsys):
    assert main(["toy-dataset", str(tmp_path / "sim"), "--sequences", "1", "--frames", "2", "--size", "24", "48",
                 "--domain", "photo", "--seed", "5"]) == 0
    out = capsys.readouterr().out
    assert "2 photo images" in out and "2 label maps" in out and "2 box files" in out and "zoo translate" in out
    assert _read(tmp_path / "sim/images/seq000/000001.png").shape == (24, 48, 3)
    with pytest.raises(SystemExit) as exit_:
        main(["toy-dataset", str(tmp_path / "bad"), "--size", "2", "2"])
    assert exit_.value.code == 2 and "--size must be" in capsys.readouterr().err
