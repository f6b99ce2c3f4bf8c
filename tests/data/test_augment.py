"""GPU batch augmentation from a list of kornia transforms (runs on the CPU here), and its config forms."""

from __future__ import annotations

import re
from pathlib import Path

import kornia.augmentation as K
import pytest
import torch

from zoo.cli import main
from zoo.data import MaskedDataModule, PairedDataModule, UnpairedDataModule
from zoo.data.augment import BatchAugment, KorniaBatchAugment, build_batch_augment


def _mask(seed: int = 0, batch: int = 4, size: int = 24) -> torch.Tensor:
    """Blocky binary mask (B, 1, H, W): 6x6 cells, so nearest and bilinear resampling mostly agree."""
    cells = torch.rand(batch, 1, size // 6, size // 6, generator=torch.Generator().manual_seed(seed)) > 0.5
    return cells.float().repeat_interleave(6, dim=2).repeat_interleave(6, dim=3)


def _batch_from_mask(mask: torch.Tensor) -> dict:
    """Paired batch whose images (B, 3, H, W) in [-1, 1] are the mask itself, so alignment can be read back."""
    image = mask.expand(-1, 3, -1, -1) * 2 - 1
    return {"real_a": image.clone(), "real_b": image.clone(), "mask_a": mask, "path_a": ["p"] * len(mask)}


def _agreement(image: torch.Tensor, mask: torch.Tensor) -> float:
    return ((image[:, :1] > 0).float() == mask).float().mean().item()


GEOMETRY = [K.RandomAffine(degrees=25, translate=(0.1, 0.1), scale=(0.8, 1.2), p=1.0), K.RandomHorizontalFlip(p=0.5)]


def test_paired_batch_stays_aligned_and_masks_stay_binary():
    augment = KorniaBatchAugment([*GEOMETRY, K.ColorJiggle(brightness=0.1, contrast=0.1, p=1.0)])
    batch = _batch_from_mask(_mask())
    out = augment(batch, seed=3)
    assert set(out["mask_a"].unique().tolist()) <= {0.0, 1.0}
    assert not torch.equal(out["mask_a"], batch["mask_a"])  # the geometry did move things
    for key in ("real_a", "real_b"):  # both images follow the mask's geometry
        assert _agreement(out[key], out["mask_a"]) > 0.9
        assert out[key].shape == batch[key].shape and out[key].min() >= -1 and out[key].max() <= 1
    assert not torch.equal(out["real_a"], out["real_b"])  # photometric draws are per image
    assert out["path_a"] == batch["path_a"]


def test_geometry_only_keeps_paired_images_identical():
    batch = _batch_from_mask(_mask(1))
    batch["real_b"] = torch.rand(4, 3, 24, 24) * 2 - 1
    batch["real_a"] = batch["real_b"].clone()
    out = KorniaBatchAugment(GEOMETRY)(batch, seed=0)
    assert torch.equal(out["real_a"], out["real_b"])
    assert not torch.equal(out["real_a"], batch["real_a"])


def test_label_maps_keep_class_ids():
    labels = torch.randint(0, 5, (2, 24, 24))
    labels[:, :, :12] = 255
    batch = {"real_a": torch.rand(2, 3, 24, 24) * 2 - 1, "label": labels}
    out = KorniaBatchAugment([K.RandomAffine(degrees=20, p=1.0)])(batch, seed=0)
    assert out["label"].dtype == torch.int64 and out["label"].shape == (2, 24, 24)
    assert set(out["label"].unique().tolist()) <= set(labels.unique().tolist())
    assert not torch.equal(out["label"], labels)


def test_photometric_only_on_images_including_grayscale():
    batch = _batch_from_mask(_mask(2))
    batch["real_a"] = torch.rand(4, 1, 24, 24) * 2 - 1  # a 1-channel side: colour-only jitter is a no-op on it
    colour = K.ColorJiggle(brightness=0.3, contrast=0.3, saturation=0.5, hue=0.2, p=1.0)
    out = KorniaBatchAugment([colour, K.RandomGaussianBlur((3, 3), (0.5, 1.0), p=1.0)])(batch, seed=1)
    assert torch.equal(out["mask_a"], batch["mask_a"])  # masks never get photometric transforms
    assert out["real_a"].shape == (4, 1, 24, 24) and out["real_b"].shape == (4, 3, 24, 24)
    for key in ("real_a", "real_b"):
        assert not torch.equal(out[key], batch[key])
        assert out[key].min() >= -1 and out[key].max() <= 1
    hue_only = KorniaBatchAugment([K.ColorJiggle(saturation=0.5, hue=0.3, p=1.0)])({"real_a": batch["real_a"]}, seed=1)
    torch.testing.assert_close(hue_only["real_a"], batch["real_a"])


def test_jitter_keys_choose_the_images():
    batch = _batch_from_mask(_mask(3))
    out = KorniaBatchAugment([K.ColorJiggle(brightness=0.3, p=1.0)], jitter_keys=("real_b",))(batch, seed=0)
    assert torch.equal(out["real_a"], batch["real_a"]) and not torch.equal(out["real_b"], batch["real_b"])


def test_seeded_per_step_and_leaves_global_rng():
    augment = KorniaBatchAugment([*GEOMETRY, K.ColorJiggle(brightness=0.2, p=1.0)])
    state = torch.random.get_rng_state()
    first, again = augment(_batch_from_mask(_mask()), seed=5), augment(_batch_from_mask(_mask()), seed=5)
    other = augment(_batch_from_mask(_mask()), seed=6)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(first[k], again[k]) for k in ("real_a", "real_b", "mask_a"))
    assert not torch.equal(first["real_a"], other["real_a"])


def test_unpaired_sides_get_their_own_geometry():
    batch = _batch_from_mask(_mask(4))
    batch["mask_b"] = batch["mask_a"].clone()
    out = KorniaBatchAugment([K.RandomAffine(degrees=30, p=1.0)], paired=False)(batch, seed=4)
    assert not torch.equal(out["real_a"], out["real_b"])
    assert _agreement(out["real_a"], out["mask_a"]) > 0.9 and _agreement(out["real_b"], out["mask_b"]) > 0.9


def test_non_kornia_entries_are_refused_in_one_line():
    with pytest.raises(TypeError, match=r"^augment: torch.nn.modules.linear.Identity is not a kornia 2D augmentation"):
        KorniaBatchAugment([torch.nn.Identity()])


def test_build_batch_augment_maps_each_setting():
    assert build_batch_augment(False, paired=True) is None
    assert build_batch_augment(None, paired=True) is None
    assert build_batch_augment([], paired=True) is None
    default = build_batch_augment(True, paired=False)
    assert type(default) is BatchAugment and default.paired is False
    listed = build_batch_augment([K.RandomAffine(degrees=10)], paired=True)
    assert isinstance(listed, KorniaBatchAugment) and listed.paired is True


def test_every_datamodule_accepts_a_transform_list():
    transforms = [K.RandomAffine(degrees=10), K.ColorJiggle(brightness=0.1)]
    for datamodule_class, paired in ((PairedDataModule, True), (UnpairedDataModule, False), (MaskedDataModule, False)):
        datamodule = datamodule_class(augment=transforms)
        assert isinstance(datamodule.batch_augment, KorniaBatchAugment)
        assert datamodule.batch_augment.paired is paired


# -- config forms: YAML list and dotted overrides through the zoo command ------------------------------------------

CONFIG = """\
model:
  class_path: CycleGAN
  init_args: {ngf: 4, ndf: 4, generator: resnet_2blocks, n_layers_d: 1, discriminator: n_layers}
data:
  class_path: UnpairedDataModule
  init_args:
    load_size: 16
    crop_size: 16
    toy_length: 4
    augment:
      - class_path: kornia.augmentation.RandomAffine
        init_args: {degrees: 10}
      - class_path: kornia.augmentation.ColorJiggle
        init_args: {brightness: 0.2, contrast: 0.1}
trainer:
  accelerator: cpu
  logger: false
"""


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("augment") / "augment.yaml"
    path.write_text(CONFIG)
    return path


def _printed_data(capsys, args: list[str]) -> str:
    assert main(["fit", *args, "--print_config"]) == 0
    printed = capsys.readouterr().out
    start = printed.index("\ndata:") + 1
    end = re.search(r"\n\S", printed[start:])  # the next top-level key
    return printed[start : start + end.start()] if end else printed[start:]


def test_yaml_transform_list_parses_and_round_trips(config, tmp_path, capsys):
    data = _printed_data(capsys, ["--config", str(config)])
    assert "- class_path: kornia.augmentation.RandomAffine" in data and "degrees: 10.0" in data
    assert "- class_path: kornia.augmentation.ColorJiggle" in data and "brightness: 0.2" in data
    saved = tmp_path / "saved.yaml"  # the printed (and saved-with-the-run) config parses again
    assert main(["fit", "--config", str(config), "--print_config"]) == 0
    saved.write_text(capsys.readouterr().out)
    assert _printed_data(capsys, ["--config", str(saved)]) == data


def test_dotted_overrides_append_edit_or_switch_the_list(config, capsys):
    appended = _printed_data(
        capsys,
        [
            "--config",
            str(config),
            "--data.init_args.augment+=kornia.augmentation.RandomHorizontalFlip",
            "--data.init_args.augment.init_args.p=0.25",
        ],
    )
    flip = appended[appended.index("kornia.augmentation.RandomHorizontalFlip") :]
    assert "p: 0.25" in flip and appended.count("- class_path: kornia.augmentation.") == 3
    as_json = '[{"class_path": "kornia.augmentation.RandomVerticalFlip"}]'
    replaced = _printed_data(capsys, ["--config", str(config), f"--data.init_args.augment={as_json}"])
    assert replaced.count("- class_path: kornia.augmentation.") == 1 and "RandomVerticalFlip" in replaced
    assert "augment: true" in _printed_data(capsys, ["--config", str(config), "--data.init_args.augment=true"])


def test_cli_builds_the_configured_transforms(config, tmp_path):
    from zoo.cli import ZooCLI

    cli = ZooCLI(args=["--config", str(config), f"--trainer.default_root_dir={tmp_path}"], run=False)
    augment = cli.datamodule.batch_augment
    assert isinstance(augment, KorniaBatchAugment) and augment.paired is False
    assert [type(t).__name__ for t in augment.geometric] == ["RandomAffine"]
    assert [type(t).__name__ for t in augment.intensity] == ["ColorJiggle"]
    assert cli.datamodule.hparams["augment"][0]["class_path"] == "kornia.augmentation.RandomAffine"  # no pickles


def test_transform_objects_given_in_python_are_recorded_as_plain_values(tmp_path):
    data = UnpairedDataModule(augment=[K.RandomHorizontalFlip(p=0.25)])
    assert data.hparams["augment"] == [repr(K.RandomHorizontalFlip(p=0.25))]
    assert isinstance(data.batch_augment, KorniaBatchAugment)  # the objects themselves still run
    torch.save({"datamodule_hyper_parameters": dict(data.hparams)}, tmp_path / "hparams.pt")
    loaded = torch.load(tmp_path / "hparams.pt", weights_only=True)
    assert loaded["datamodule_hyper_parameters"]["augment"] == data.hparams["augment"]
