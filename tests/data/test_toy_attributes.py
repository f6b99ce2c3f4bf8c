"""Toy-world attributes for any ``selected_attrs``, toy masks from ``mask_ids``, and toy-world argument errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from zoo.data import MaskedDataModule, SRDataModule
from zoo.data.toy_world import ToyMaskedDataset, instance_mask, make_scene, scene_attributes

CELEBA = ["Black_Hair", "Blond_Hair", "Brown_Hair", "Smiling"]


def test_scene_attributes_any_names_deterministic_and_varying():
    scenes = [make_scene(seed, 16, 16) for seed in range(24)]
    names = [*CELEBA, "overcast", "sunny", "crosswalk", "wide_road", "cars", "Traffic Sign", "people"]
    table = np.stack([scene_attributes(scene, names) for scene in scenes])
    assert table.shape == (24, len(names)) and table.dtype == np.float32 and set(np.unique(table)) <= {0.0, 1.0}
    assert np.array_equal(table, np.stack([scene_attributes(make_scene(s, 16, 16), names) for s in range(24)]))
    for column in range(4):  # unknown names: a per-scene coin, so labels vary across images
        assert 0 < table[:, column].sum() < 24, names[column]
    assert not np.array_equal(table[:, 0], table[:, 1])  # each name has its own coin
    assert np.array_equal(table[:, 4], 1 - table[:, 5])  # overcast / sunny
    assert 0 < table[:, 6].sum() < 24 and 0 < table[:, 7].sum() < 24  # layout properties vary too
    for scene, row in zip(scenes, table, strict=True):
        assert row[8] == instance_mask(scene, "car").any()
        assert row[9] == instance_mask(scene, "traffic sign").any() and row[10] == instance_mask(scene, "person").any()
        assert row[7] == (scene.layout.n_lanes >= 3)
    with pytest.raises(ValueError, match="non-empty strings"):
        scene_attributes(scenes[0], [""])


def test_toy_masked_dataset_attributes_follow_each_scene():
    dataset = ToyMaskedDataset(length=2, size=16, attributes=["overcast", "Smiling"])
    item = dataset[1]
    assert item["attr_a"].shape == item["attr_b"].shape == (2,) and item["attr_a"].dtype == torch.float32
    assert "attr_a" not in ToyMaskedDataset(length=2, size=16)[0]


def test_masked_toy_world_serves_selected_attrs():
    dm = MaskedDataModule(root=None, selected_attrs=CELEBA, image_size=16, toy_length=16, toy_test_length=2,
                          batch_size=16, val_size=2)
    assert dm.num_attributes == 4
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["attr_a"].shape == batch["attr_b"].shape == (16, 4) and batch["attr_a"].dtype == torch.float32
    assert 0 < batch["attr_a"].sum() < batch["attr_a"].numel()  # not constant
    again = dm.train_dataset[(5, 3)]
    assert torch.equal(again["attr_a"], dm.train_dataset[(0, 3)]["attr_a"])  # a property of the scene, not the draw
    # no explicit selected_attrs (the toy configs): the domain ids, as before
    plain = MaskedDataModule(root=None, image_size=16, toy_length=2, batch_size=1)
    assert plain.num_attributes == 2
    domains = MaskedDataModule(root=None, layout="domains", selected_attrs=CELEBA, image_size=16, toy_length=2)
    assert domains.num_attributes == 2


def test_masked_toy_world_masks_from_mask_ids():
    dm = MaskedDataModule(root=None, mask_ids=[26, 24], image_size=16, toy_length=2, batch_size=1, no_flip=True)
    assert dm.toy_classes == ["car", "person"]
    dm.setup("fit")
    item = dm.train_dataset[0]
    expected = ToyMaskedDataset(length=2, size=16, classes=("car", "person"))[0]["mask_a"]
    assert torch.equal(item["mask_a"], expected)
    with pytest.raises(ValueError, match="toy_classes or mask_ids, not both"):
        MaskedDataModule(root=None, mask_ids=[26], toy_classes=["car"])
    with pytest.raises(ValueError, match="mask_ids \\[99\\].*toy_classes"):
        MaskedDataModule(root=None, mask_ids=[99])


def test_sr_toy_world_ignores_file_options_and_explains_bad_sizes():
    dm = SRDataModule(root=None, lr_root="no/such/folder", hr_tag="_HR", lr_tag="_LR", test_phase="image_SRF_4",
                      scale=4, crop_size=16, toy_test_length=1)
    dm.setup("test")
    assert dm.test_dataset[0]["real_a"].shape == (3, 4, 4)
    with pytest.raises(ValueError, match="not a multiple of scale=5; set image_size"):
        SRDataModule(root=None, scale=5, crop_size=None)
