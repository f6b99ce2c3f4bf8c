"""Paired/unpaired datasets and DataModules: layouts, determinism, errors, resumable loaders, GPU augmentation."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from zoo.data import (
    BatchAugment,
    EpochSampler,
    PairedDataModule,
    PairedImageDataset,
    UnpairedDataModule,
    UnpairedImageDataset,
    ZooDataModule,
)
from zoo.data.datamodule import ToyAdapter

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

DATA_DIR = Path(os.environ.get("ZOO_DATA_DIR", Path(__file__).resolve().parents[2] / ".." / "shared" / "data"))
MMAGIC = DATA_DIR / "mmagic_tiny_translation"

SMALL = dict(load_size=24, crop_size=16)  # tiny images keep these tests fast


def _pixels(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _write_side_by_side(folder: Path, count: int, *, h: int = 20, w: int = 24, identical: bool = False, seed: int = 0):
    """A|B files; with ``identical`` the B half repeats the A half."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        a = _pixels(h, w, seed + i)
        b = a if identical else _pixels(h, w, seed + 100 + i)
        Image.fromarray(np.concatenate([a, b], axis=1)).save(folder / f"{i:03d}.png")


def _write_folder(folder: Path, count: int, *, h: int = 20, w: int = 24, seed: int = 0, suffix: str = ".png"):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.fromarray(_pixels(h, w, seed + i)).save(folder / f"{i:03d}{suffix}")


@pytest.fixture
def paired_root(tmp_path):
    _write_side_by_side(tmp_path / "train", 6)
    _write_side_by_side(tmp_path / "val", 3, seed=50)
    _write_side_by_side(tmp_path / "test", 2, seed=70)
    return tmp_path


@pytest.fixture
def unpaired_root(tmp_path):
    _write_folder(tmp_path / "trainA", 3)
    _write_folder(tmp_path / "trainB", 5, seed=10)
    _write_folder(tmp_path / "testA", 2, seed=20)
    _write_folder(tmp_path / "testB", 2, seed=30)
    return tmp_path


def _batches_equal(first: list[dict], second: list[dict]) -> bool:
    return len(first) == len(second) and all(
        a["path_a"] == b["path_a"] and torch.equal(a["real_a"], b["real_a"]) and torch.equal(a["real_b"], b["real_b"])
        for a, b in zip(first, second, strict=True)
    )


# --------------------------------------------------------------------------------------------------------------------
# PairedImageDataset
# --------------------------------------------------------------------------------------------------------------------


def test_paired_item_layout(paired_root):
    dataset = PairedImageDataset(root=paired_root, **SMALL)
    assert len(dataset) == 6
    item = dataset[0]
    assert set(item) == {"real_a", "real_b", "path_a", "path_b"}
    assert item["real_a"].shape == item["real_b"].shape == (3, 16, 16)
    assert item["path_a"] == item["path_b"] == str(paired_root / "train" / "000.png")
    assert -1 <= item["real_a"].min() and item["real_a"].max() <= 1


def test_paired_halves_share_crop_and_flip(tmp_path):
    _write_side_by_side(tmp_path / "train", 4, identical=True)
    dataset = PairedImageDataset(root=tmp_path, load_size=30, crop_size=16)
    for epoch in range(3):
        for index in range(4):
            item = dataset[(epoch, index)]
            assert torch.equal(item["real_a"], item["real_b"])


def test_paired_split_at_half_width(tmp_path):
    a, b = _pixels(8, 12, 1), _pixels(8, 12, 2)
    (tmp_path / "train").mkdir()
    Image.fromarray(np.concatenate([a, b], axis=1)).save(tmp_path / "train" / "x.png")
    item = PairedImageDataset(root=tmp_path, preprocess="none", no_flip=True)[0]
    assert torch.equal(item["real_a"], torch.from_numpy(a).permute(2, 0, 1).float().div(255).sub(0.5).div(0.5))
    assert torch.equal(item["real_b"], torch.from_numpy(b).permute(2, 0, 1).float().div(255).sub(0.5).div(0.5))


def test_paired_odd_width_mismatch_is_clear(tmp_path):
    (tmp_path / "train").mkdir()
    Image.fromarray(_pixels(8, 21, 0)).save(tmp_path / "train" / "odd.png")  # A: 10 -> 8 columns, B: 11 -> 12
    dataset = PairedImageDataset(root=tmp_path, preprocess="none", no_flip=True)
    with pytest.raises(ValueError, match="odd.png"):
        dataset[0]


def test_paired_direction_swaps(paired_root):
    a_to_b = PairedImageDataset(root=paired_root, direction="AtoB", **SMALL)[(2, 1)]
    b_to_a = PairedImageDataset(root=paired_root, direction="BtoA", **SMALL)[(2, 1)]
    assert torch.equal(a_to_b["real_a"], b_to_a["real_b"]) and torch.equal(a_to_b["real_b"], b_to_a["real_a"])


@pytest.mark.parametrize("direction", ["AtoB", "BtoA"])
def test_paired_grayscale_side(paired_root, direction):
    item = PairedImageDataset(root=paired_root, direction=direction, input_nc=1, output_nc=3, **SMALL)[0]
    assert item["real_a"].shape[0] == 1 and item["real_b"].shape[0] == 3


def test_paired_folders_layout(tmp_path):
    _write_folder(tmp_path / "trainA", 3, suffix=".png")
    _write_folder(tmp_path / "trainB", 3, seed=5, suffix=".jpg")
    dataset = PairedImageDataset(root=tmp_path, layout="folders", **SMALL)
    item = dataset[2]
    assert Path(item["path_a"]).name == "002.png" and Path(item["path_b"]).name == "002.jpg"


def test_paired_folders_unmatched(tmp_path):
    _write_folder(tmp_path / "trainA", 3)
    _write_folder(tmp_path / "trainB", 2)
    (tmp_path / "trainB" / "extra.png").write_bytes((tmp_path / "trainB" / "000.png").read_bytes())
    with pytest.raises(ValueError, match="only in A, e.g.: 002") as info:
        PairedImageDataset(root=tmp_path, layout="folders", **SMALL)
    assert "only in B, e.g.: extra" in str(info.value)


def test_paired_empty_phase_folder(tmp_path):
    (tmp_path / "train").mkdir()
    with pytest.raises(FileNotFoundError, match="No images found"):
        PairedImageDataset(root=tmp_path, **SMALL)


def test_paired_bad_options(paired_root):
    with pytest.raises(ValueError, match="input_nc"):
        PairedImageDataset(root=paired_root, input_nc=2)
    with pytest.raises(ValueError, match="direction"):
        PairedImageDataset(root=paired_root, direction="AtoC")
    with pytest.raises(ValueError, match="load_size"):
        PairedImageDataset(root=paired_root, load_size=10, crop_size=16)


def test_determinism_per_seed_epoch_index(paired_root):
    first = PairedImageDataset(root=paired_root, seed=4, **SMALL)
    second = PairedImageDataset(root=paired_root, seed=4, **SMALL)
    for key in [(0, 0), (1, 0), (3, 5)]:
        assert torch.equal(first[key]["real_a"], second[key]["real_a"])
    second.set_epoch(3)
    assert torch.equal(second[5]["real_a"], first[(3, 5)]["real_a"])
    by_epoch = [torch.cat([first[(epoch, i)]["real_a"] for i in range(6)]) for epoch in range(3)]
    assert not torch.equal(by_epoch[0], by_epoch[1]) and not torch.equal(by_epoch[1], by_epoch[2])
    other_seed = PairedImageDataset(root=paired_root, seed=5, **SMALL)
    assert not torch.equal(torch.cat([other_seed[(0, i)]["real_a"] for i in range(6)]), by_epoch[0])


# --------------------------------------------------------------------------------------------------------------------
# UnpairedImageDataset
# --------------------------------------------------------------------------------------------------------------------


def test_unpaired_length_and_pairing(unpaired_root):
    dataset = UnpairedImageDataset(root=unpaired_root, **SMALL)
    assert len(dataset) == 5
    names_a = [Path(dataset[i]["path_a"]).name for i in range(5)]
    assert names_a == ["000.png", "001.png", "002.png", "000.png", "001.png"]  # A[i % |A|]
    partners = {Path(dataset[(epoch, 0)]["path_b"]).name for epoch in range(12)}
    assert len(partners) > 1  # random partner, redrawn every epoch
    serial = UnpairedImageDataset(root=unpaired_root, serial_batches=True, **SMALL)
    assert [Path(serial[(e, 4)]["path_b"]).name for e in range(3)] == ["004.png"] * 3


def test_unpaired_independent_crops(tmp_path):
    for side in "AB":
        _write_folder(tmp_path / f"train{side}", 1, h=40, w=40)  # the same picture in both domains
    dataset = UnpairedImageDataset(root=tmp_path, preprocess="crop", crop_size=16)
    differs = [not torch.equal(dataset[(e, 0)]["real_a"], dataset[(e, 0)]["real_b"]) for e in range(5)]
    assert any(differs)


def test_unpaired_crop_only_after_epoch_stops_the_resize_jitter(tmp_path):
    """CUT/DECENT: in the decay epochs images are resized straight to the crop size: every crop is the whole image."""
    for side in "AB":
        _write_folder(tmp_path / f"train{side}", 1, h=40, w=40)
    dataset = UnpairedImageDataset(root=tmp_path, load_size=32, crop_size=16, no_flip=True, crop_only_after_epoch=2)
    whole = UnpairedImageDataset(root=tmp_path, load_size=16, crop_size=16, no_flip=True)[(0, 0)]["real_a"]
    early = [dataset[(epoch, 0)]["real_a"] for epoch in range(2)]  # epochs 1 and 2 (0-based 0 and 1): jitter
    late = [dataset[(epoch, 0)]["real_a"] for epoch in range(2, 5)]
    assert all(x.shape == (3, 16, 16) for x in early + late)
    assert not any(torch.equal(x, whole) for x in early)
    assert all(torch.equal(x, whole) for x in late)


def test_unpaired_direction_and_grayscale(unpaired_root):
    forward = UnpairedImageDataset(root=unpaired_root, serial_batches=True, no_flip=True, preprocess="none")
    backward = UnpairedImageDataset(
        root=unpaired_root, serial_batches=True, no_flip=True, preprocess="none", direction="BtoA", input_nc=1
    )
    assert Path(backward[1]["path_a"]).parent.name == "trainB"
    assert backward[1]["real_a"].shape[0] == 1 and backward[1]["real_b"].shape[0] == 3
    assert torch.equal(backward[1]["real_b"], forward[1]["real_a"])


def test_unpaired_missing_domain_folder(tmp_path):
    _write_folder(tmp_path / "trainA", 2)
    with pytest.raises(FileNotFoundError, match="trainB"):
        UnpairedImageDataset(root=tmp_path, **SMALL)


# --------------------------------------------------------------------------------------------------------------------
# DataModules on folders
# --------------------------------------------------------------------------------------------------------------------


def test_paired_datamodule_loaders(paired_root):
    dm = PairedDataModule(root=str(paired_root), batch_size=2, val_size=2, **SMALL)
    assert isinstance(dm, ZooDataModule)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["real_a"].shape == (2, 3, 16, 16) and len(batch["path_a"]) == 2
    val = list(dm.val_dataloader())
    assert sum(len(b["path_a"]) for b in val) == 2
    assert all(Path(p).parent.name == "val" for b in val for p in b["path_a"])
    assert _batches_equal(val, list(dm.val_dataloader()))  # fixed
    fixed = dm.fixed_batch(2)
    assert torch.equal(fixed["real_a"], torch.cat([b["real_a"] for b in val]))


def test_val_is_unflipped_and_resized_to_crop(paired_root):
    dm = PairedDataModule(root=str(paired_root), val_size=None, **SMALL)
    dm.setup("validate")
    item = dm.val_dataset[0]
    reference = PairedImageDataset(root=paired_root, phase="val", load_size=16, crop_size=16, no_flip=True)[0]
    assert torch.equal(item["real_a"], reference["real_a"])


def test_val_falls_back_to_test(tmp_path):
    _write_side_by_side(tmp_path / "train", 2)
    _write_side_by_side(tmp_path / "test", 2, seed=9)
    dm = PairedDataModule(root=str(tmp_path), **SMALL)
    dm.setup("fit")
    assert Path(dm.val_dataset[0]["path_a"]).parent.name == "test"
    dm.setup("test")
    assert len(list(dm.test_dataloader())) == 2


def test_missing_root_explains_layout(tmp_path):
    dm = PairedDataModule(root=str(tmp_path / "facades"))
    with pytest.raises(FileNotFoundError) as info:
        dm.setup("fit")
    message = str(info.value)
    assert "facades" in message and "train" in message and "--data.root=null" in message and "pix2pix" in message
    um = UnpairedDataModule(root=str(tmp_path / "horse2zebra"))
    with pytest.raises(FileNotFoundError) as info:
        um.setup("fit")
    message = str(info.value)
    assert "trainA" in message and "trainB" in message and "--data.root=null" in message and "cyclegan" in message


def test_unpaired_datamodule(unpaired_root):
    dm = UnpairedDataModule(root=str(unpaired_root), batch_size=2, **SMALL)
    dm.setup("fit")
    batches = list(dm.train_dataloader())
    assert [len(b["path_a"]) for b in batches] == [2, 2, 1]
    val = dm.fixed_batch()
    assert [Path(p).name for p in val["path_a"]] == [Path(p).name for p in val["path_b"]]  # A[i] with B[i]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_loader_state_round_trip_mid_epoch(paired_root, num_workers):
    def loader():
        dm = PairedDataModule(root=str(paired_root), batch_size=2, num_workers=num_workers, seed=3, **SMALL)
        dm.setup("fit")
        return dm.train_dataloader()

    original = loader()
    original.sampler.set_epoch(2)
    iterator = iter(original)
    next(iterator)
    state = original.state_dict()
    remaining = list(iterator)
    assert len(remaining) == 2

    resumed = loader()
    resumed.load_state_dict(state)  # the epoch comes back with the state; no set_epoch needed
    assert _batches_equal(list(resumed), remaining)


def test_epochs_reshuffle_and_workers_agree(paired_root):
    def epoch_batches(num_workers, epoch):
        dm = PairedDataModule(root=str(paired_root), batch_size=2, num_workers=num_workers, seed=1, **SMALL)
        dm.setup("fit")
        loader = dm.train_dataloader()
        loader.sampler.set_epoch(epoch)
        return list(loader)

    assert _batches_equal(epoch_batches(0, 1), epoch_batches(2, 1))
    assert not _batches_equal(epoch_batches(0, 0), epoch_batches(0, 1))


def test_epoch_sampler_ranks_partition():
    data = list(range(10))
    ranks = [list(EpochSampler(data, seed=2, num_replicas=2, rank=r)) for r in range(2)]
    assert {i for part in ranks for _, i in part} == set(data)
    assert all(epoch == 0 for part in ranks for epoch, _ in part)
    serial = EpochSampler(data, shuffle=False)
    serial.set_epoch(4)
    assert list(serial) == [(4, i) for i in data]


def test_lightning_resume_mid_epoch_gives_same_batches(paired_root, tmp_path):
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint

    class Recorder(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(()))
            self.seen: list[tuple] = []

        def training_step(self, batch, batch_idx):
            self.seen.append((self.current_epoch, tuple(batch["path_a"]), batch["real_a"].sum().item()))
            return self.weight * batch["real_a"].mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.0)

    def datamodule():
        return PairedDataModule(root=str(paired_root), batch_size=2, seed=7, **SMALL)

    options = dict(
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        max_epochs=2,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = Recorder()
        L.Trainer(enable_checkpointing=False, **options).fit(full, datamodule=datamodule())
        checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=4, save_top_k=-1)
        L.Trainer(max_steps=4, callbacks=[checkpoint], **options).fit(Recorder(), datamodule=datamodule())
        resumed = Recorder()
        path = next((tmp_path / "ckpt").glob("*.ckpt"))
        L.Trainer(enable_checkpointing=False, **options).fit(resumed, datamodule=datamodule(), ckpt_path=path)
    assert len(full.seen) == 6
    assert resumed.seen == full.seen[4:]  # epoch 1, second batch onwards: same files, same crops


# --------------------------------------------------------------------------------------------------------------------
# Embedded toy world
# --------------------------------------------------------------------------------------------------------------------


def test_toy_paired_datamodule():
    pytest.importorskip("zoo.data.toy_world", reason="the embedded toy world is not available")
    dm = PairedDataModule(root=None, image_size=32, toy_length=4, batch_size=2, val_size=2)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["real_a"].shape == (2, 3, 32, 32) and batch["real_b"].shape == (2, 3, 32, 32)
    assert batch["real_a"].min() >= -1 and batch["real_a"].max() <= 1
    assert torch.equal(dm.fixed_batch()["real_a"], dm.fixed_batch()["real_a"])
    assert len(dm.train_dataset) == 4


def test_toy_unpaired_datamodule():
    pytest.importorskip("zoo.data.toy_world", reason="the embedded toy world is not available")
    dm = UnpairedDataModule(root=None, image_size=32, toy_length=4, batch_size=2, val_size=2, input_nc=1)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["real_a"].shape == (2, 1, 32, 32) and batch["real_b"].shape == (2, 3, 32, 32)
    assert _batches_equal_tensors(list(dm.val_dataloader()), list(dm.val_dataloader()))


class _FakeToy(torch.utils.data.Dataset):
    """Toy-world stand-in whose items show at a glance whether they were flipped."""

    def __len__(self) -> int:
        return 16

    def __getitem__(self, index: int) -> dict:
        ramp = torch.linspace(-1, 1, 8).expand(3, 4, 8).clone()
        return {
            "real_a": ramp,
            "real_b": ramp.clone(),
            "label": torch.arange(8).expand(4, 8).clone(),
            "label_a": torch.arange(8).expand(4, 8).clone(),
        }


@pytest.mark.parametrize("same_flip", [True, False])
def test_toy_adapter_flips_labels_with_images(same_flip):
    dataset = ToyAdapter(_FakeToy(), seed=0, same_flip=same_flip, channels={"real_a": 1}, swap=True)
    flipped_b = []
    for index in range(16):
        item = dataset[index]
        assert item["real_a"].shape == (1, 4, 8) and item["real_b"].shape == (3, 4, 8)
        a_flipped = bool(item["real_a"][0, 0, 0] > 0)
        assert a_flipped == bool(item["label"][0, 0] == 7)  # the bare label follows side a
        flipped_b.append(bool(item["real_b"][0, 0, 0] > 0))
        assert flipped_b[-1] == bool(item["label_b"][0, 0] == 7)  # swap renamed label_a to label_b: it follows side b
        if same_flip:
            assert flipped_b[-1] == a_flipped
    assert 0 < sum(flipped_b) < 16
    assert ToyAdapter(_FakeToy(), no_flip=True)[3]["real_a"][0, 0, 0] < 0


def _batches_equal_tensors(first: list[dict], second: list[dict]) -> bool:
    return len(first) == len(second) and all(
        torch.equal(a["real_a"], b["real_a"]) and torch.equal(a["real_b"], b["real_b"])
        for a, b in zip(first, second, strict=True)
    )


# --------------------------------------------------------------------------------------------------------------------
# Real images (shared fixtures; never copied into the repository)
# --------------------------------------------------------------------------------------------------------------------


@pytest.mark.skipif(not MMAGIC.is_dir(), reason=f"shared data not found at {MMAGIC} (set ZOO_DATA_DIR)")
def test_real_paired_facades():
    dm = PairedDataModule(root=str(MMAGIC / "paired"), val_size=2)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["real_a"].shape == (1, 3, 256, 256) and batch["real_b"].shape == (1, 3, 256, 256)
    assert not torch.equal(batch["real_a"], batch["real_b"])
    val = dm.fixed_batch()
    assert all(Path(p).parent.name == "test" for p in val["path_a"])  # no val/ folder: falls back to test/


@pytest.mark.skipif(not MMAGIC.is_dir(), reason=f"shared data not found at {MMAGIC} (set ZOO_DATA_DIR)")
def test_real_unpaired_horse2zebra():
    dm = UnpairedDataModule(root=str(MMAGIC / "unpaired"), load_size=143, crop_size=128)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["real_a"].shape == (1, 3, 128, 128)
    assert Path(batch["path_a"][0]).parent.name == "trainA" and Path(batch["path_b"][0]).parent.name == "trainB"


# --------------------------------------------------------------------------------------------------------------------
# GPU batch augmentation (runs on the CPU here)
# --------------------------------------------------------------------------------------------------------------------


def _aug_batch(seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(4, 3, 24, 24, generator=generator) * 2 - 1
    mask = (torch.rand(4, 1, 24, 24, generator=generator) > 0.5).float()
    return {"real_a": image, "real_b": image.clone(), "mask_a": mask, "path_a": ["p"] * 4}


def test_augment_paired_geometry_identical_and_masks_binary():
    augment = BatchAugment(flip_p=0.5, degrees=15, translate=0.1, scale=(0.8, 1.2), jitter_keys=())
    batch = _aug_batch()
    out = augment(batch, seed=3)
    assert torch.equal(out["real_a"], out["real_b"])
    assert not torch.equal(out["real_a"], batch["real_a"])
    assert set(out["mask_a"].unique().tolist()) <= {0.0, 1.0}
    assert out["path_a"] == batch["path_a"]


def test_augment_masks_follow_image_geometry():
    mask = (torch.rand(4, 1, 24, 24, generator=torch.Generator().manual_seed(1)) > 0.5).float()
    batch = {"real_a": mask.expand(-1, 3, -1, -1) * 2 - 1, "mask_a": mask}
    out = BatchAugment(degrees=20, translate=0.1, jitter_keys=())(batch, seed=2)
    agreement = ((out["real_a"][:, :1] > 0).float() == out["mask_a"]).float().mean()
    assert agreement > 0.9  # only pixels on edges differ (bilinear image vs nearest mask)


def test_augment_label_maps_keep_class_ids():
    labels = torch.randint(0, 5, (2, 24, 24))
    labels[:, :, :12] = 255
    batch = {"real_a": torch.rand(2, 3, 24, 24) * 2 - 1, "label": labels}
    out = BatchAugment(degrees=20, jitter_keys=())(batch, seed=0)
    assert out["label"].dtype == torch.int64 and out["label"].shape == (2, 24, 24)
    assert set(out["label"].unique().tolist()) <= set(labels.unique().tolist())
    assert not torch.equal(out["label"], labels)


def test_augment_seeded_and_leaves_global_rng():
    augment = BatchAugment(degrees=10)
    state = torch.random.get_rng_state()
    first, second = augment(_aug_batch(), seed=5), augment(_aug_batch(), seed=5)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert torch.equal(first["real_a"], second["real_a"]) and torch.equal(first["real_b"], second["real_b"])


def test_augment_photometric_per_image_only():
    augment = BatchAugment(translate=0.0, scale=(1.0, 1.0), jitter_p=1.0, brightness=0.3, contrast=0.3)
    batch = _aug_batch()
    out = augment(batch, seed=1)
    assert not torch.equal(out["real_a"], out["real_b"])  # independent draws per image
    assert torch.equal(out["mask_a"], batch["mask_a"])  # masks are never jittered
    assert out["real_a"].min() >= -1 and out["real_a"].max() <= 1


def test_augment_unpaired_independent_geometry():
    out = BatchAugment(paired=False, degrees=20, jitter_keys=())(_aug_batch(), seed=4)
    assert not torch.equal(out["real_a"], out["real_b"])


def test_augment_runs_in_lightning_training_only(paired_root):
    import lightning as L

    class Recorder(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(()))
            self.train_batches: list[torch.Tensor] = []
            self.val_batches: list[torch.Tensor] = []

        def training_step(self, batch, batch_idx):
            self.train_batches.append(batch["real_a"].clone())
            return self.weight * batch["real_a"].mean()

        def validation_step(self, batch, batch_idx):
            self.val_batches.append(batch["real_a"].clone())

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.0)

    def run(augment):
        dm = PairedDataModule(root=str(paired_root), batch_size=2, val_size=2, seed=1, augment=augment, **SMALL)
        model = Recorder()
        trainer = L.Trainer(
            accelerator="cpu",
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            enable_checkpointing=False,
            max_steps=2,
            num_sanity_val_steps=0,
            val_check_interval=2,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer.fit(model, datamodule=dm)
        return model

    plain, augmented, again = run(False), run(True), run(True)
    assert len(augmented.train_batches) == 2 and len(augmented.val_batches) == 1
    assert all(not torch.equal(a, p) for a, p in zip(augmented.train_batches, plain.train_batches, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(augmented.train_batches, again.train_batches, strict=True))
    assert torch.equal(augmented.val_batches[0], plain.val_batches[0])  # validation is never augmented


def test_augment_only_when_training(paired_root):
    dm = PairedDataModule(root=str(paired_root), augment=True, **SMALL)
    assert isinstance(dm.batch_augment, BatchAugment)
    batch = _aug_batch()
    assert dm.on_after_batch_transfer(batch, 0) is batch  # no trainer attached: untouched
    assert PairedDataModule(root=str(paired_root)).batch_augment is None  # off by default
