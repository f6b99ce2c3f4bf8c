"""Class statistics of the toy world: ``SceneStatistics``, the ``matched`` / ``unmatched`` presets, their datasets and
DataModules, and the guarantee that the default toy world is unchanged."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import torch

from zoo.data import MaskedDataModule, UnpairedDataModule
from zoo.data import toy_world as tw

NAMES = {c.train_id: c.name for c in tw.CITYSCAPES_CLASSES if c.train_id != 255}
TRAIN_ID = {name: train_id for train_id, name in NAMES.items()}

# sha256 (first 16 hex digits) of labels + instances and of the sim render of make_scene(seed, 32, 48), recorded with
# the toy world as it was before statistics existed. Labels and sim frames involve no transcendental functions, so
# they are bit-exact across platforms (the photo renderer's are compared within one run below instead).
DEFAULT_RENDERS = {
    0: ("55897e8b4c842eac", "9896e7f7371adac8"),
    1: ("3b71a0bbf6d37a4c", "66d6f4e1570838ef"),
    2: ("d1e0e14f43b63659", "d8267ceeba63f991"),
    3: ("0050ccad56737af7", "073721ef8bff529f"),
}


def _sha(*arrays: np.ndarray) -> str:
    return hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in arrays)).hexdigest()[:16]


def _class_frequencies(labels: list[torch.Tensor]) -> dict[str, float]:
    """Share of each train id's pixels among the labelled ones, over (H, W) label maps of train ids."""
    counts = torch.bincount(torch.cat([label.flatten() for label in labels]), minlength=256)[:19].double()
    return {NAMES[i]: float(counts[i] / counts.sum()) for i in range(19)}


@pytest.fixture(scope="module")
def unmatched_frequencies() -> tuple[dict[str, float], dict[str, float]]:
    """Class frequencies of domain A and of domain B of the unmatched toy world over 40 training scenes, at 32 px."""
    data = tw.ToyUnpairedDataset(length=40, size=32, statistics="unmatched")
    scenes_b = [tw.make_scene(tw.datasets._scene_seed(0, "train", i, 1), 32, 32, statistics=data.statistics_b)
                for i in range(len(data))]
    labels_b = [torch.from_numpy(tw.label_to_train_id(scene.labels).astype(np.int64)) for scene in scenes_b]
    return _class_frequencies([data[i]["label_a"] for i in range(len(data))]), _class_frequencies(labels_b)


# --------------------------------------------------------------------------------------------------------------------
# The default is unchanged
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", sorted(DEFAULT_RENDERS))
def test_default_scenes_match_the_recorded_renders(seed: int):
    for statistics in (None, tw.SceneStatistics(), tw.SceneStatistics(vegetation=1)):
        scene = tw.make_scene(seed, 32, 48, statistics=statistics)
        assert (_sha(scene.labels, scene.instances), _sha(tw.render_sim(scene))) == DEFAULT_RENDERS[seed]


def test_default_statistics_draw_identical_scenes_and_photos():
    for seed in range(12):
        plain, explicit = tw.make_scene(seed, 40, 56), tw.make_scene(seed, 40, 56, statistics=tw.SceneStatistics())
        for name in ("labels", "instances", "depth", "surfaces", "surface_table"):
            assert np.array_equal(getattr(plain, name), getattr(explicit, name)), name
        assert np.array_equal(tw.render_photo(plain), tw.render_photo(explicit))


def test_matched_datasets_are_the_default_datasets():
    explicit = (tw.SceneStatistics(), tw.SceneStatistics())
    for factory, kwargs in ((tw.ToyUnpairedDataset, {}), (tw.ToyMaskedDataset, {"classes": ("car", "vegetation")})):
        default = factory(length=3, size=32, split="val", seed=2, **kwargs)
        for statistics in ("matched", explicit):
            other = factory(length=3, size=32, split="val", seed=2, statistics=statistics, **kwargs)
            for i in range(3):
                a, b = default[i], other[i]
                assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    paired = tw.ToyPairedDataset(length=2, size=32, task="sim2photo")
    explicit_paired = tw.ToyPairedDataset(length=2, size=32, task="sim2photo", scene_statistics=tw.SceneStatistics())
    assert all(torch.equal(paired[1][k], explicit_paired[1][k]) for k in paired[1])


def test_default_dataset_items_match_the_recorded_renders():
    # sha256 of the sim frame, labels and masks of two items, recorded before statistics existed.
    item = tw.ToyUnpairedDataset(length=2, size=(32, 48), split="test", seed=5)[1]
    assert _sha(item["real_a"].numpy(), item["label_a"].numpy()) == "5b42b7115ff951c4"
    item = tw.ToyMaskedDataset(length=2, size=32, split="val", seed=1, classes=("vegetation",))[0]
    assert _sha(*(item[k].numpy() for k in ("real_a", "label_a", "mask_a", "mask_b"))) == "e8e07119f9f9ed4b"


# --------------------------------------------------------------------------------------------------------------------
# Class frequencies follow the statistics
# --------------------------------------------------------------------------------------------------------------------


def test_unmatched_domain_a_shows_much_more_vegetation(unmatched_frequencies):
    freq_a, freq_b = unmatched_frequencies
    assert freq_a["vegetation"] > 0.15 and freq_b["vegetation"] < 0.06
    assert freq_a["vegetation"] > 4 * freq_b["vegetation"]
    assert freq_b["building"] > 3 * freq_a["building"]  # what the trees replace: facades
    for name in ("road", "car"):  # the street itself is drawn alike in both domains
        assert freq_a[name] == pytest.approx(freq_b[name], abs=0.05), name


def test_matched_domains_have_similar_frequencies():
    data = tw.ToyUnpairedDataset(length=40, size=32)
    scenes_b = [tw.make_scene(tw.datasets._scene_seed(0, "train", i, 1), 32, 32) for i in range(40)]
    freq_a = _class_frequencies([data[i]["label_a"] for i in range(40)])
    freq_b = _class_frequencies([torch.from_numpy(tw.label_to_train_id(s.labels).astype(np.int64)) for s in scenes_b])
    for name in ("road", "building", "vegetation", "sky"):
        assert freq_a[name] == pytest.approx(freq_b[name], abs=0.06), name


def test_vegetation_grows_with_the_multiplier():
    shares = []
    for vegetation in (0.5, 1.0, 3.0):
        statistics = tw.SceneStatistics(vegetation=vegetation)
        labels = [torch.from_numpy(tw.label_to_train_id(tw.make_scene(seed, 32, 32, statistics=statistics).labels)
                                   .astype(np.int64)) for seed in range(30)]
        shares.append(_class_frequencies(labels)["vegetation"])
    assert shares[0] < shares[1] < shares[2]


def test_explicit_statistics_pair_and_paired_dataset():
    lush, sparse = tw.SceneStatistics(vegetation=4.0), tw.SceneStatistics(vegetation=0.5)
    data = tw.ToyUnpairedDataset(length=2, size=32, split="val", statistics=(lush, sparse))
    assert (data.statistics_a, data.statistics_b) == (lush, sparse)
    # The paired dataset with A's statistics shows the scenes of the unpaired dataset's real_a / label_a.
    paired = tw.ToyPairedDataset(length=2, size=32, task="sim2photo", split="val", scene_statistics=lush)
    for i in range(2):
        assert torch.equal(paired[i]["real_a"], data[i]["real_a"])
        assert torch.equal(paired[i]["label"], data[i]["label_a"])
    assert not torch.equal(paired[0]["label"], tw.ToyPairedDataset(length=1, size=32, split="val")[0]["label"])


def test_unmatched_preset_is_lush_a_and_sparse_b():
    lush, sparse = tw.domain_statistics("unmatched")
    assert lush.vegetation > 1.0 > sparse.vegetation
    assert tw.domain_statistics("matched") == (tw.SceneStatistics(), tw.SceneStatistics())
    assert tw.SceneStatistics().is_default and not lush.is_default


def test_strong_statistics_stay_fast():
    statistics = tw.SceneStatistics(vegetation=10.0)
    for seed in range(3):
        scene = tw.make_scene(seed, 64, 64, statistics=statistics)
        assert (scene.labels == tw.CITYSCAPES_CLASSES[21].id).mean() > 0.05  # id 21: vegetation


# --------------------------------------------------------------------------------------------------------------------
# DataModules pass the option through
# --------------------------------------------------------------------------------------------------------------------


def test_unpaired_datamodule_passes_the_statistics_through():
    dm = UnpairedDataModule(root=None, image_size=32, toy_length=2, val_size=2, toy_statistics="unmatched")
    assert dm.toy_statistics == "unmatched" and dm.hparams.toy_statistics == "unmatched"
    served = dm._toy_dataset("val")
    expected = tw.ToyUnpairedDataset(length=2, size=32, split="val", statistics="unmatched")
    for i in range(2):
        assert torch.equal(served[i]["real_a"], expected[i]["real_a"])
        assert torch.equal(served[i]["real_b"], expected[i]["real_b"])
    assert UnpairedDataModule(root=None).toy_statistics == "matched"


def test_masked_datamodule_passes_the_statistics_through():
    dm = MaskedDataModule(root=None, image_size=32, toy_length=2, val_size=1, toy_statistics="unmatched")
    served = dm._toy_dataset("val")
    expected = tw.ToyMaskedDataset(length=1, size=32, split="val", statistics="unmatched")
    assert torch.equal(served[0]["real_a"], expected[0]["real_a"])
    assert torch.equal(served[0]["mask_b"], expected[0]["mask_b"])


# --------------------------------------------------------------------------------------------------------------------
# Bad values
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("vegetation", [0.0, -1.0, 10.5, math.nan, math.inf, True, "2"])
def test_scene_statistics_reject_bad_values(vegetation):
    with pytest.raises(ValueError, match="vegetation"):
        tw.SceneStatistics(vegetation=vegetation)


@pytest.mark.parametrize("statistics", ["lush", None, (tw.SceneStatistics(),), [1.0, 2.0]])
def test_datasets_reject_bad_statistics(statistics):
    with pytest.raises(ValueError, match="statistics"):
        tw.ToyUnpairedDataset(length=1, statistics=statistics)
    with pytest.raises(ValueError, match="statistics"):
        tw.ToyMaskedDataset(length=1, statistics=statistics)


def test_bad_scene_statistics_are_rejected():
    with pytest.raises(ValueError, match="scene_statistics"):
        tw.ToyPairedDataset(length=1, scene_statistics="unmatched")
    with pytest.raises(TypeError, match="statistics"):
        tw.make_scene(0, 16, 16, statistics="unmatched")
    for factory in (UnpairedDataModule, MaskedDataModule):
        with pytest.raises(ValueError, match="toy_statistics"):
            factory(root=None, toy_statistics="lush")
