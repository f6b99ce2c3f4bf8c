"""SRDataModule: HR folders, LR by MATLAB bicubic or from files, crops, phases, errors, resumable loaders, toy world."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from zoo.data import SRDataModule, SRImageDataset, ToySRDataset, imresize

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

SR_BENCHMARKS = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "sr_benchmarks"
needs_benchmarks = pytest.mark.skipif(
    not SR_BENCHMARKS.is_dir(), reason=f"SR benchmark images not found at {SR_BENCHMARKS.resolve()}"
)


def _smooth(h: int, w: int, seed: int, channels: int = 3) -> np.ndarray:
    """A smooth random uint8 image (bicubic-friendly, like photos)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (h // 4 + 1, w // 4 + 1, channels)).astype(np.uint8)
    out = imresize(coarse, output_size=(h, w))
    return out[..., 0] if channels == 1 else out


def _write(folder: Path, count: int, *, h: int = 40, w: int = 52, seed: int = 0, channels: int = 3,
           name: str = "{i:03d}.png") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.fromarray(_smooth(h, w, seed + i, channels)).save(folder / name.format(i=i))


def _uint8(images: torch.Tensor) -> np.ndarray:
    """(C, H, W) in [-1, 1] -> uint8 (H, W, C)."""
    return ((images + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()


@pytest.fixture
def hr_root(tmp_path):
    _write(tmp_path / "train", 5)
    _write(tmp_path / "test", 2, h=38, w=45, seed=40)  # not multiples of 4: modcropped
    return tmp_path


def test_training_crops_and_on_the_fly_lr(hr_root):
    dm = SRDataModule(root=str(hr_root), scale=4, crop_size=16, batch_size=2, seed=1)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["real_a"].shape == (2, 3, 4, 4) and batch["real_b"].shape == (2, 3, 16, 16)
    for key in ("real_a", "real_b"):
        assert batch[key].dtype == torch.float32 and batch[key].min() >= -1 and batch[key].max() <= 1
    for k in range(2):
        hr = _uint8(batch["real_b"][k])
        assert np.array_equal(_uint8(batch["real_a"][k]), imresize(hr, 0.25))  # LR of the uint8 crop
        source = np.array(Image.open(batch["path_b"][k]))
        found = any(np.array_equal(source[y : y + 16, x : x + 16], hr) for y in range(25) for x in range(37))
        assert found, "the HR crop is a crop of its file"
    assert batch["path_a"] == batch["path_b"] and not batch["gray_b"].any()


def test_eval_uses_whole_modcropped_images(hr_root):
    dm = SRDataModule(root=str(hr_root), scale=4)
    dm.setup("test")
    items = [dm.test_dataset[i] for i in range(len(dm.test_dataset))]
    assert len(items) == 2
    for item in items:
        hr = np.array(Image.open(item["path_b"]))[:36, :44]  # MATLAB modcrop keeps the top-left corner
        assert np.array_equal(_uint8(item["real_b"]), hr)
        assert np.array_equal(_uint8(item["real_a"]), imresize(hr, 0.25))
    # validation falls back to the test folder, all of it in order and unchanged between calls
    dm.setup("validate")
    assert [dm.val_dataset[i]["path_b"] for i in range(2)] == [item["path_b"] for item in items]
    assert torch.equal(dm.val_dataset[0]["real_a"], items[0]["real_a"])


def test_fixed_batch_stacks_images_of_different_sizes(tmp_path):
    _write(tmp_path / "val", 1, h=24, w=32, seed=1)
    _write(tmp_path / "val", 1, h=32, w=16, seed=2, name="b.png")
    dm = SRDataModule(root=str(tmp_path), scale=2, val_phase="val")
    batch = dm.fixed_batch(2)
    assert batch["real_a"].shape == (2, 3, 12, 8) and batch["real_b"].shape == (2, 3, 24, 16)
    first = dm.val_dataset[0]  # 24x32 HR cut at its centre to 24x16: LR columns 4..11
    assert torch.equal(batch["real_a"][0], first["real_a"][..., :, 4:12])
    assert torch.equal(batch["real_b"][0], first["real_b"][..., :, 8:24])


def test_lr_files_matched_by_tags_and_crops_on_the_lr_grid(tmp_path):
    folder = tmp_path / "set" / "x2"
    _write(folder, 3, h=24, w=32, name="img_{i:03d}_HR.png")
    for i in range(3):  # LR files whose content differs from bicubic, to see that they are read
        lr = np.full((12, 16, 3), 10 * i, np.uint8)
        lr[..., 1] = np.arange(16, dtype=np.uint8)[None] * 3
        Image.fromarray(lr).save(folder / f"img_{i:03d}_LR.png")
    root = str(tmp_path / "set")
    dm = SRDataModule(root=root, lr_root=root, scale=2, crop_size=8, hr_tag="_HR", lr_tag="_LR",
                      train_phase="x2", batch_size=3, serial_batches=True)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert [Path(p).name for p in batch["path_a"]] == [f"img_{i:03d}_LR.png" for i in range(3)]
    for k in range(3):
        lr, hr = _uint8(batch["real_a"][k]), _uint8(batch["real_b"][k])
        assert lr.shape == (4, 4, 3) and hr.shape == (8, 8, 3)
        assert (lr[..., 0] == 10 * k).all()
        x = int(lr[0, 0, 1]) // 3  # the green ramp tells the LR column; the HR crop must start at 2x it
        full_hr = np.array(Image.open(batch["path_b"][k]))
        assert any(np.array_equal(full_hr[2 * y : 2 * y + 8, 2 * x : 2 * x + 8], hr) for y in range(9))


@needs_benchmarks
def test_set14_official_lr_files_equal_the_on_the_fly_lr():
    root = str(SR_BENCHMARKS / "Set14")
    common = dict(root=root, scale=4, hr_tag="_HR", lr_tag="_LR", test_phase="image_SRF_4")
    made, read = SRDataModule(**common), SRDataModule(**common, lr_root=root)
    made.setup("test")
    read.setup("test")
    assert len(made.test_dataset) == 14
    for i in (0, 2):  # baboon; bridge, a single-channel file
        a, b = made.test_dataset[i], read.test_dataset[i]
        assert torch.equal(a["real_a"], b["real_a"]) and torch.equal(a["real_b"], b["real_b"])
        assert b["path_a"].endswith("_LR.png") and a["real_b"].shape[0] == 3
        assert a["gray_b"] == (i == 2)


def test_flip_rotate_applies_one_transform_to_both(hr_root):
    def item(flip_rotate):
        ds = SRImageDataset(hr_dir=hr_root / "train", scale=2, crop_size=12, flip_rotate=flip_rotate, seed=5)
        return ds[(0, 3)]

    plain = {k: _uint8(v) for k, v in item(False).items() if k.startswith("real")}
    changed = 0
    for epoch in range(6):
        ds = SRImageDataset(hr_dir=hr_root / "train", scale=2, crop_size=12, flip_rotate=True, seed=5)
        augmented = {k: _uint8(v) for k, v in ds[(epoch, 3)].items() if k.startswith("real")}
        base = SRImageDataset(hr_dir=hr_root / "train", scale=2, crop_size=12, seed=5)[(epoch, 3)]
        base = {k: _uint8(v) for k, v in base.items() if k.startswith("real")}
        # the same crop (x, y are drawn first), then one of the 8 flips/rotations of both images
        matches = [
            t for t in _transforms() if all(np.array_equal(t(base[k]), augmented[k]) for k in ("real_a", "real_b"))
        ]
        assert matches, f"epoch {epoch}: LR and HR were not transformed alike"
        changed += not np.array_equal(base["real_b"], augmented["real_b"])
    assert changed and plain["real_b"].shape == (12, 12, 3)


def _transforms():
    out = []
    for h in (False, True):
        for v in (False, True):
            for r in (False, True):
                def t(a, h=h, v=v, r=r):
                    a = a[:, ::-1] if h else a
                    a = a[::-1] if v else a
                    return a.transpose(1, 0, 2) if r else a
                out.append(t)
    return out


def test_grayscale_option(tmp_path):
    _write(tmp_path / "train", 2, h=16, w=16)
    dm = SRDataModule(root=str(tmp_path), scale=2, crop_size=8, channels=1, batch_size=2)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["real_a"].shape == (2, 1, 4, 4) and batch["real_b"].shape == (2, 1, 8, 8)
    for k in range(2):
        assert np.array_equal(_uint8(batch["real_a"][k])[..., 0], imresize(_uint8(batch["real_b"][k])[..., 0], 0.5))


def test_loader_is_seeded_and_resumes_mid_epoch(hr_root):
    def loader(seed=3):
        dm = SRDataModule(root=str(hr_root), scale=4, crop_size=16, batch_size=2, seed=seed)
        dm.setup("fit")
        return dm.train_dataloader()

    first = list(loader())
    assert all(torch.equal(a["real_b"], b["real_b"]) for a, b in zip(first, loader(), strict=True))
    assert not torch.equal(first[0]["real_b"], next(iter(loader(seed=4)))["real_b"])
    original = loader()
    iterator = iter(original)
    next(iterator)
    state = original.state_dict()
    remaining = list(iterator)
    resumed = loader()
    resumed.load_state_dict(state)
    again = list(resumed)
    assert len(again) == len(remaining) == 2
    assert all(torch.equal(a["real_a"], b["real_a"]) for a, b in zip(again, remaining, strict=True))


def test_toy_world_batches_have_the_same_keys():
    dm = SRDataModule(root=None, scale=4, crop_size=32, image_size=24, toy_length=4, batch_size=2, val_size=2)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["real_a"].shape == (2, 3, 8, 8) and batch["real_b"].shape == (2, 3, 32, 32)
    val = next(iter(dm.val_dataloader()))
    assert val["real_b"].shape == (1, 3, 24, 24) and "gray_b" in val
    item = ToySRDataset(length=1, hr_size=16, scale=2, split="test")[0]
    assert np.array_equal(_uint8(item["real_a"]), imresize(_uint8(item["real_b"]), 0.5))  # MATLAB bicubic
    gray = ToySRDataset(length=1, hr_size=16, scale=2, split="test", channels=1)[0]
    assert gray["real_a"].shape == (1, 8, 8) and gray["real_b"].shape == (1, 16, 16)


def test_missing_folders_say_what_to_do(tmp_path):
    dm = SRDataModule(root=str(tmp_path / "DIV2K"))
    with pytest.raises(FileNotFoundError) as error:
        dm.setup("fit")
    message = str(error.value)
    assert str(tmp_path / "DIV2K") in message and "http" in message and "--data.root=null" in message
    _write(tmp_path / "hr" / "train", 1, h=16, w=16)
    with pytest.raises(FileNotFoundError, match="test_phase='x4'"):
        SRDataModule(root=str(tmp_path / "hr"), test_phase="x4").setup("test")
    with pytest.raises(FileNotFoundError, match="same phase folders"):
        SRDataModule(root=str(tmp_path / "hr"), lr_root=str(tmp_path), crop_size=8).setup("fit")
    (tmp_path / "lr" / "train").mkdir(parents=True)
    _write(tmp_path / "lr" / "train", 1, h=8, w=8, name="other.png")
    with pytest.raises(FileNotFoundError, match="no LR image"):
        SRDataModule(root=str(tmp_path / "hr"), lr_root=str(tmp_path / "lr"), crop_size=8).setup("fit")


def test_bad_sizes_are_explained(tmp_path):
    _write(tmp_path / "train", 1, h=16, w=16)
    with pytest.raises(ValueError, match="multiple of scale"):
        SRDataModule(root=str(tmp_path), scale=4, crop_size=18)
    with pytest.raises(ValueError, match="channels"):
        SRDataModule(root=str(tmp_path), channels=2)
    ds = SRImageDataset(hr_dir=tmp_path / "train", scale=4, crop_size=32)
    with pytest.raises(ValueError, match="smaller than the HR crop"):
        ds[0]
    _write(tmp_path / "lr", 1, h=5, w=4)
    ds = SRImageDataset(hr_dir=tmp_path / "train", lr_dir=tmp_path / "lr", scale=4, crop_size=None)
    with pytest.raises(ValueError, match="needs 4x4 at scale 4"):
        ds[0]
