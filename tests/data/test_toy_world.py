"""Tests of the embedded toy driving world: layouts, label helpers, renderings and the four datasets."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from zoo.data import toy_world as tw
from zoo.data.toy_world.datasets import _SPLITS, _scene_seed

REQUIRED = ("road", "sidewalk", "building", "vegetation", "sky", "car", "person", "pole", "traffic sign")
ID = {c.name: c.id for c in tw.CITYSCAPES_CLASSES}
TRAIN_ID = {c.id: c.train_id for c in tw.CITYSCAPES_CLASSES}


@pytest.fixture(scope="module")
def scenes() -> list[tw.Scene]:
    return [tw.make_scene(seed, 96, 96) for seed in range(8)]


# --------------------------------------------------------------------------------------------------------------------
# Cityscapes definition and helpers
# --------------------------------------------------------------------------------------------------------------------


def test_cityscapes_classes_cover_ids_and_train_ids():
    classes = tw.CITYSCAPES_CLASSES
    assert [c.id for c in classes] == list(range(34))
    assert len({c.name for c in classes}) == 34
    train_ids = sorted(c.train_id for c in classes if c.train_id != 255)
    assert train_ids == list(range(19))
    assert all(len(c.color) == 3 and all(0 <= v <= 255 for v in c.color) for c in classes)
    # A few entries of the public dataset definition.
    by_name = {c.name: c for c in classes}
    assert (by_name["road"].id, by_name["road"].train_id, by_name["road"].color) == (7, 0, (128, 64, 128))
    assert (by_name["car"].id, by_name["car"].train_id, by_name["car"].color) == (26, 13, (0, 0, 142))
    assert (by_name["sky"].id, by_name["sky"].train_id, by_name["sky"].color) == (23, 10, (70, 130, 180))
    with pytest.raises(dataclasses.FrozenInstanceError):
        classes[0].name = "changed"


def test_label_to_train_id_numpy_and_torch():
    ids = np.arange(34, dtype=np.uint8).reshape(2, 17)
    expected = np.array([TRAIN_ID[i] for i in range(34)]).reshape(2, 17)
    out = tw.label_to_train_id(ids)
    assert out.dtype == np.uint8 and out.shape == ids.shape
    np.testing.assert_array_equal(out, expected)
    out_t = tw.label_to_train_id(torch.from_numpy(ids.astype(np.int64)))
    assert out_t.dtype == torch.int64
    np.testing.assert_array_equal(out_t.numpy(), expected)


@pytest.mark.parametrize("bad", [np.array([[34]]), np.array([[-1]]), torch.tensor([[40]])])
def test_label_to_train_id_rejects_unknown_ids(bad):
    with pytest.raises(ValueError, match="Cityscapes"):
        tw.label_to_train_id(bad)


def test_label_to_train_id_rejects_floats():
    with pytest.raises(TypeError, match="integer"):
        tw.label_to_train_id(np.zeros((2, 2), np.float32))


def test_colorize_uses_cityscapes_colours():
    ids = np.arange(34).reshape(2, 17)
    rgb = tw.colorize(ids)
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 17, 3)
    for c in tw.CITYSCAPES_CLASSES:
        assert tuple(rgb.reshape(-1, 3)[c.id]) == c.color
    train = np.array([[0, 13, 255]])
    rgb_train = tw.colorize(torch.from_numpy(train), train_ids=True)
    assert tuple(rgb_train[0, 0]) == (128, 64, 128)
    assert tuple(rgb_train[0, 1]) == (0, 0, 142)
    assert tuple(rgb_train[0, 2]) == (0, 0, 0)
    with pytest.raises(ValueError):
        tw.colorize(np.array([[34]]))
    with pytest.raises(ValueError):
        tw.colorize(np.array([[19]]), train_ids=True)


# --------------------------------------------------------------------------------------------------------------------
# Scenes
# --------------------------------------------------------------------------------------------------------------------


def test_make_scene_is_deterministic():
    a, b = tw.make_scene(5, 48, 64), tw.make_scene(5, 48, 64)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.instances, b.instances)
    assert a.instance_classes == b.instance_classes
    np.testing.assert_array_equal(tw.render_sim(a), tw.render_sim(b))
    np.testing.assert_array_equal(tw.render_photo(a), tw.render_photo(b))
    np.testing.assert_array_equal(tw.render_photo(a, seed=11), tw.render_photo(b, seed=11))
    np.testing.assert_array_equal(tw.render_photo(a), tw.render_photo(a, seed=5))  # default: the scene's seed


def test_different_seeds_give_different_layouts(scenes):
    for i in range(len(scenes)):
        for j in range(i + 1, len(scenes)):
            assert (scenes[i].labels != scenes[j].labels).mean() > 0.05


def test_photo_seed_changes_appearance_not_layout():
    scene = tw.make_scene(3, 48, 48)
    a, b = tw.render_photo(scene, seed=1), tw.render_photo(scene, seed=2)
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 3


@pytest.mark.parametrize("size", [(4, 4), (17, 33), (48, 96), (97, 40)])
def test_any_resolution(size):
    scene = tw.make_scene(2, *size)
    assert scene.labels.shape == size and scene.labels.dtype == np.uint8
    assert scene.instances.shape == size and scene.instances.dtype == np.int32
    assert scene.depth.shape == size and scene.depth.dtype == np.float32
    for image in (tw.render_sim(scene), tw.render_photo(scene), tw.colorize(scene.labels)):
        assert image.shape == (*size, 3) and image.dtype == np.uint8


def test_layout_is_shared_across_resolutions():
    for seed in range(3):
        small, large = tw.make_scene(seed, 48, 64), tw.make_scene(seed, 96, 128)
        agree = (large.labels[::2, ::2] == small.labels).mean()  # nearest-neighbour downscale up to sub-pixel shifts
        assert agree > 0.85


def test_wide_images_show_more_street_without_stretching():
    # Square pixels: a 64 x 128 image holds the 64 x 64 one (up to a sub-pixel shift), with more on both sides.
    for seed in range(3):
        square, wide = tw.make_scene(seed, 64, 64), tw.make_scene(seed, 64, 128)
        offset = round(square.layout.camera.vanish_x * 64)
        assert (wide.labels[:, offset:offset + 64] == square.labels).mean() > 0.9


def test_labels_are_valid_and_required_classes_appear(scenes):
    seen: set[int] = set()
    for scene in scenes:
        values = np.unique(scene.labels)
        assert values.max() < 34
        seen |= set(values.tolist())
        assert ID["road"] in values and ID["sky"] in values
    missing = [name for name in REQUIRED if ID[name] not in seen]
    assert not missing


def test_instances_are_consistent_with_labels(scenes):
    for scene in scenes:
        ids = np.unique(scene.instances)
        n = len(scene.instance_classes)
        assert n > 0
        assert sorted(scene.instance_classes) == list(range(1, n + 1))
        assert set(ids.tolist()) == set(range(n + 1)) or set(ids.tolist()) == set(range(1, n + 1))
        for k, cls in scene.instance_classes.items():
            assert np.all(scene.labels[scene.instances == k] == cls)
        stuff = np.isin(scene.labels, [ID[n] for n in ("road", "sidewalk", "building", "vegetation", "sky")])
        assert np.all(scene.instances[stuff] == 0)
        masks = tw.instance_masks(scene)
        assert masks.shape == (n, *scene.labels.shape) and masks.dtype == bool
        assert masks.any(axis=(1, 2)).all()  # every listed instance is visible
        np.testing.assert_array_equal(masks.sum(0), scene.instances > 0)


def test_cars_and_people_are_separate_instances(scenes):
    counts = [sum(c == ID["car"] for c in s.instance_classes.values()) for s in scenes]
    assert max(counts) >= 2
    assert any(ID["person"] in s.instance_classes.values() for s in scenes)


def test_instance_mask_matches_labels(scenes):
    scene = scenes[0]
    np.testing.assert_array_equal(tw.instance_mask(scene), scene.labels == ID["car"])
    both = tw.instance_mask(scene, ("car", "person"))
    np.testing.assert_array_equal(both, np.isin(scene.labels, [ID["car"], ID["person"]]))
    np.testing.assert_array_equal(tw.instance_mask(scene, "road"), scene.labels == ID["road"])
    with pytest.raises(ValueError, match="carr"):
        tw.instance_mask(scene, ("carr",))


def test_people_sizes_follow_the_perspective(scenes):
    # A person of height h standing on the road, seen by a camera at height c, spans h / c times the rows between
    # the horizon and their feet. People here are 1.55-1.95 m tall and cameras 1.35-1.75 m high; the median is used
    # because people partly hidden behind cars look shorter or taller.
    ratios = []
    for scene in scenes:
        horizon = scene.layout.camera.horizon * scene.height
        for k, cls in scene.instance_classes.items():
            if cls == ID["person"]:
                rows = np.flatnonzero((scene.instances == k).any(1))
                if rows[-1] + 1 - horizon > 4:
                    ratios.append((rows[-1] - rows[0] + 1) / (rows[-1] + 1 - horizon))
    assert len(ratios) >= 5
    assert 0.8 < np.median(ratios) < 1.5


# --------------------------------------------------------------------------------------------------------------------
# Renderings
# --------------------------------------------------------------------------------------------------------------------


def test_sim_photo_and_label_colours_differ(scenes):
    for scene in scenes[:3]:
        sim, photo, label = tw.render_sim(scene), tw.render_photo(scene), tw.colorize(scene.labels)
        assert np.abs(sim.astype(int) - photo.astype(int)).mean() > 10
        assert np.abs(sim.astype(int) - label.astype(int)).mean() > 10


def test_sim_is_flat_and_photo_is_textured(scenes):
    scene = scenes[1]
    main_road_surface = np.bincount(scene.surfaces[scene.labels == ID["road"]]).argmax()  # asphalt, not markings
    road = scene.surfaces == main_road_surface
    sim, photo = tw.render_sim(scene)[road], tw.render_photo(scene)[road]
    assert road.sum() > 100
    assert len(np.unique(sim, axis=0)) == 1  # one flat colour per surface
    assert photo.astype(float).std(0).mean() > 2.0  # asphalt texture, shading and noise


def test_renderers_reject_non_scenes():
    with pytest.raises(TypeError, match="Scene"):
        tw.render_photo(np.zeros((4, 4)))
    with pytest.raises(TypeError, match="Scene"):
        tw.render_sim("scene")


@pytest.mark.parametrize(("args", "match"), [((-1, 8, 8), "seed"), ((1.5, 8, 8), "seed"), ((True, 8, 8), "seed"),
                                            ((0, 3, 8), "height"), ((0, 8, "8"), "width")])
def test_make_scene_rejects_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        tw.make_scene(*args)


def test_generation_is_fast():
    tw.make_scene(0, 64, 64)  # warm-up
    start = time.perf_counter()
    for seed in range(10):
        scene = tw.make_scene(seed, 64, 64)
        tw.render_sim(scene)
        tw.render_photo(scene)
    per_item = (time.perf_counter() - start) / 10
    assert per_item < 0.05, f"{per_item * 1000:.1f} ms per 64x64 scene and renders"


# --------------------------------------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------------------------------------


def _check_image(x: torch.Tensor, shape: tuple[int, ...]) -> None:
    assert x.dtype == torch.float32 and tuple(x.shape) == shape
    assert x.min() >= -1.0 and x.max() <= 1.0


def test_paired_dataset_items():
    ds = tw.ToyPairedDataset(length=3, size=(32, 48))
    assert len(ds) == 3
    item = ds[1]
    _check_image(item["real_a"], (3, 32, 48))
    _check_image(item["real_b"], (3, 32, 48))
    assert item["label"].dtype == torch.int64 and tuple(item["label"].shape) == (32, 48)
    assert set(item["label"].unique().tolist()) <= set(range(19)) | {255}
    # real_a is the colourised label map of the scene whose train ids are in `label`.
    scene = tw.make_scene(_scene_seed(0, "train", 1), 32, 48)
    np.testing.assert_array_equal(item["label"].numpy(), tw.label_to_train_id(scene.labels))
    expected_a = torch.from_numpy(tw.colorize(scene.labels)).permute(2, 0, 1).float() / 127.5 - 1
    torch.testing.assert_close(item["real_a"], expected_a)
    sim = tw.ToyPairedDataset(length=3, size=(32, 48), task="sim2photo")[1]
    torch.testing.assert_close(sim["real_b"], item["real_b"])  # same scene, same photo
    assert (sim["real_a"] - item["real_a"]).abs().mean() > 0.05


def test_items_are_pure_functions_of_seed_split_and_index():
    ds = tw.ToyPairedDataset(length=4, size=24, seed=3)
    forward = [ds[i] for i in range(4)]
    backward = [ds[i] for i in reversed(range(4))][::-1]
    again = tw.ToyPairedDataset(length=4, size=24, seed=3)
    for a, b, c in zip(forward, backward, (again[i] for i in range(4)), strict=True):
        for key in a:
            assert torch.equal(a[key], b[key]) and torch.equal(a[key], c[key])
    other = tw.ToyPairedDataset(length=4, size=24, seed=4)[0]
    assert not torch.equal(other["label"], forward[0]["label"])
    assert torch.equal(ds[-1]["label"], forward[3]["label"])


def test_loader_workers_give_identical_batches():
    ds = tw.ToyUnpairedDataset(length=4, size=16)
    direct = [ds[i] for i in range(4)]
    loaded = [b for batch in DataLoader(ds, batch_size=2, num_workers=2) for b in zip(*batch.values(), strict=True)]
    for item, values in zip(direct, loaded, strict=True):
        for key, value in zip(item, values, strict=True):
            assert torch.equal(item[key], value)


def test_splits_use_disjoint_scenes():
    seeds = {split: {_scene_seed(0, split, i, s) for i in range(500) for s in range(2)} for split in _SPLITS}
    assert not seeds["train"] & seeds["val"] and not seeds["train"] & seeds["test"] and not seeds["val"] & seeds["test"]
    train = tw.ToyPairedDataset(length=2, size=32, split="train")[0]["label"]
    val = tw.ToyPairedDataset(length=2, size=32, split="val")[0]["label"]
    test = tw.ToyPairedDataset(length=2, size=32, split="test")[0]["label"]
    assert not torch.equal(train, val) and not torch.equal(val, test) and not torch.equal(train, test)


@pytest.mark.parametrize(("domain_a", "domain_b"), [("sim", "photo"), ("label", "photo"), ("photo", "sim")])
def test_unpaired_dataset_items(domain_a, domain_b):
    item = tw.ToyUnpairedDataset(length=2, size=32, domain_a=domain_a, domain_b=domain_b)[0]
    _check_image(item["real_a"], (3, 32, 32))
    _check_image(item["real_b"], (3, 32, 32))
    assert item["label_a"].dtype == torch.int64 and tuple(item["label_a"].shape) == (32, 32)


def test_unpaired_layouts_differ():
    ds = tw.ToyUnpairedDataset(length=6, size=32, domain_a="label", domain_b="label")
    for i in range(len(ds)):
        item = ds[i]
        assert (item["real_a"] - item["real_b"]).abs().amax(0).gt(0).float().mean() > 0.05


def test_masked_dataset_items():
    ds = tw.ToyMaskedDataset(length=4, size=40, classes=("car", "person"))
    any_a = any_b = False
    for i in range(len(ds)):
        item = ds[i]
        _check_image(item["real_a"], (3, 40, 40))
        _check_image(item["real_b"], (3, 40, 40))
        for key in ("mask_a", "mask_b"):
            assert item[key].dtype == torch.float32 and tuple(item[key].shape) == (1, 40, 40)
            assert set(item[key].unique().tolist()) <= {0.0, 1.0}
        # Car and person train ids are 13 and 11.
        np.testing.assert_array_equal(item["mask_a"][0].bool().numpy(), np.isin(item["label_a"].numpy(), [11, 13]))
        scene_b = tw.make_scene(_scene_seed(0, "train", i, 1), 40, 40)
        np.testing.assert_array_equal(item["mask_b"][0].bool().numpy(), tw.instance_mask(scene_b, ("car", "person")))
        any_a |= bool(item["mask_a"].any())
        any_b |= bool(item["mask_b"].any())
    assert any_a and any_b


def test_sr_dataset_items():
    ds = tw.ToySRDataset(length=2, hr_size=48, scale=4)
    item = ds[0]
    hr, lr = (item["real_b"] + 1) / 2, (item["real_a"] + 1) / 2
    assert hr.dtype == torch.float32 and tuple(hr.shape) == (3, 48, 48)
    assert tuple(lr.shape) == (3, 12, 12)
    assert hr.min() >= 0.0 and hr.max() <= 1.0 and lr.min() >= 0.0 and lr.max() <= 1.0
    pooled = torch.nn.functional.avg_pool2d(hr[None], 4)[0]
    assert (lr - pooled).abs().mean() < 0.05  # a downscale of the same photo


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: tw.ToyPairedDataset(split="training"), "split"),
        (lambda: tw.ToyPairedDataset(task="photo2label"), "task"),
        (lambda: tw.ToyPairedDataset(length=0), "length"),
        (lambda: tw.ToyPairedDataset(size=(32,)), "size"),
        (lambda: tw.ToyPairedDataset(seed=-2), "seed"),
        (lambda: tw.ToyUnpairedDataset(domain_b="depth"), "domain_b"),
        (lambda: tw.ToyMaskedDataset(classes=("cars",)), "cars"),
        (lambda: tw.ToySRDataset(hr_size=90, scale=4), "hr_size"),
    ],
)
def test_datasets_reject_bad_arguments(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def test_dataset_index_out_of_range():
    ds = tw.ToySRDataset(length=2, hr_size=16, scale=2)
    with pytest.raises(IndexError, match="ToySRDataset"):
        ds[2]
