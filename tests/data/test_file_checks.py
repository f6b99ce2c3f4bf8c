"""Unusable image files are found before the first iteration, all named in one message, and can be left out."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from zoo.data import PairedDataModule, SRDataModule, UnpairedDataModule, file_checks
from zoo.data.file_checks import BadFilesError, check_image_files

REPO = Path(__file__).resolve().parents[2]


def _image(path: Path, size: tuple[int, int] = (16, 16), suffix_format: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(len(str(path))).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format=suffix_format)
    return path


def _truncate(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _bad_files(folder: Path) -> dict[str, Path]:
    """One file of every kind of damage, plus the good ones the tests compare with."""
    flipped = _image(folder / "flipped.png", (32, 32))
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte inside the pixel data: the chunk checksum no longer matches
    flipped.write_bytes(bytes(data))
    text = folder / "text.jpg"
    text.write_bytes(b"this is not an image")
    empty = folder / "empty.png"
    empty.write_bytes(b"")
    return {
        "truncated_jpeg": _truncate(_image(folder / "truncated.jpg", (64, 48))),
        "truncated_png": _truncate(_image(folder / "truncated.png", (64, 48))),
        "flipped_png": flipped,
        "text": text,
        "empty": empty,
    }


def test_every_kind_of_damage_is_found_and_good_files_pass(tmp_path):
    good = [_image(tmp_path / "good.jpg", (40, 30)), _image(tmp_path / "good.png"), _image(tmp_path / "good.bmp")]
    bad = _bad_files(tmp_path)
    problems = check_image_files([*good, *bad.values()])
    assert [problem.path for problem in problems] == list(bad.values())  # in the order given, as given
    reasons = {problem.path.name: problem.reason for problem in problems}
    assert "truncated" in reasons["truncated.jpg"] and "truncated" in reasons["truncated.png"].lower()
    assert "checksum" in reasons["flipped.png"] or "broken" in reasons["flipped.png"]
    assert reasons["text.jpg"] == reasons["empty.png"] == "not an image file Pillow can identify"


def test_too_small_files_are_named_with_the_size_needed(tmp_path):
    small, large = _image(tmp_path / "small.png", (20, 30)), _image(tmp_path / "large.png", (40, 40))
    problems = check_image_files([small, large], min_side={small: 24, large: 24})
    expected = "20x30 pixels, smaller than the 24x24 needed (crop_size)"
    assert [(problem.path, problem.reason) for problem in problems] == [(small, expected)]


def test_results_are_cached_by_size_and_time_so_files_are_read_once(tmp_path, monkeypatch):
    files = [_image(tmp_path / f"{i}.png") for i in range(4)]
    opened: list[Path] = []
    inspect = file_checks._inspect
    monkeypatch.setattr(file_checks, "_inspect", lambda path: opened.append(path) or inspect(path))
    assert check_image_files(files) == []
    assert len(opened) == 4
    opened.clear()
    assert check_image_files(files) == []
    assert opened == []  # all four answered from the cache
    _truncate(files[2])  # a changed file (new size and time) is read again, the others are not
    problems = check_image_files(files)
    assert opened == [files[2].absolute()] and [p.path for p in problems] == [files[2]]
    assert list((Path(os.environ["ZOO_HOME"]) / "file-checks").glob("*.json"))


def _unpaired_root(tmp_path: Path) -> tuple[Path, list[Path]]:
    root = tmp_path / "data"
    for side in "AB":
        for i in range(3):
            _image(root / f"train{side}" / f"{i}.png", (40, 40))
    bad = [_truncate(_image(root / "trainA" / "broken.jpg", (40, 40))), root / "trainB" / "notes.png"]
    bad[1].write_bytes(b"\x89PNG but not really")
    return root, bad


def test_a_datamodule_names_every_bad_file_in_one_message_before_training(tmp_path):
    root, bad = _unpaired_root(tmp_path)
    data = UnpairedDataModule(root=str(root), load_size=16, crop_size=16)
    with pytest.raises(BadFilesError) as error:
        data.setup("fit")
    message = str(error.value)
    assert "\n" not in message and message.startswith("2 of 8 image files cannot be used")
    assert all(str(path) in message for path in bad) and "skip_bad_files" in message
    assert [problem.path for problem in error.value.problems] == bad


def test_skip_bad_files_leaves_them_out_and_lists_them(tmp_path):
    root, bad = _unpaired_root(tmp_path)
    data = UnpairedDataModule(root=str(root), load_size=16, crop_size=16, skip_bad_files=True)
    with pytest.warns(UserWarning, match="Leaving out 2 of 8 image files"):
        data.setup("fit")
    assert [problem.path for problem in data.skipped_files] == bad
    assert len(data.train_dataset) == 3
    used = {data.train_dataset[i][key] for i in range(3) for key in ("path_a", "path_b")}
    assert not used & {str(path) for path in bad}
    loader = data.train_dataloader()
    assert next(iter(loader))["real_a"].shape == (1, 3, 16, 16)


def test_skipping_a_file_of_a_pair_leaves_the_pair_out(tmp_path):
    root = tmp_path / "pairs"
    for name in ("a.png", "b.png", "c.png"):
        _image(root / "train" / name, (32, 16))
    _truncate(root / "train" / "b.png")
    data = PairedDataModule(root=str(root), load_size=16, crop_size=16, skip_bad_files=True)
    with pytest.warns(UserWarning, match="b.png"):
        data.setup("fit")
    assert [Path(pair[0]).name for pair in data.train_dataset.pairs] == ["a.png", "c.png"]


def test_check_files_false_turns_the_check_off(tmp_path):
    root, _ = _unpaired_root(tmp_path)
    data = UnpairedDataModule(root=str(root), load_size=16, crop_size=16, check_files=False)
    data.setup("fit")
    assert len(data.train_dataset) == 4


def test_sr_images_smaller_than_the_crop_are_found_up_front(tmp_path):
    root = tmp_path / "sr"
    _image(root / "train" / "big.png", (48, 48))
    small = _image(root / "train" / "small.png", (20, 40))
    data = SRDataModule(root=str(root), scale=4, crop_size=32)
    with pytest.raises(BadFilesError, match="small.png' \\(20x40 pixels, smaller than the 32x32 needed"):
        data.setup("fit")
    data = SRDataModule(root=str(root), scale=4, crop_size=32, skip_bad_files=True)
    with pytest.warns(UserWarning):
        data.setup("fit")
    assert data.train_dataset.hr_paths == [root / "train" / "big.png"] and data.skipped_files[0].path == small


def test_zoo_fit_stops_in_one_line_before_training_and_skip_bad_files_trains(tmp_path):
    """As a user runs it: the real command, a shipped config, its own logger."""
    root, bad = _unpaired_root(tmp_path)
    zoo = Path(sys.executable).with_name("zoo")
    command = [str(zoo)] if zoo.is_file() else [sys.executable, "-m", "zoo"]
    args = ["fit", "--config", str(REPO / "configs" / "tiny" / "cyclegan.yaml"), f"--data.init_args.root={root}",
            "--data.init_args.load_size=32", "--data.init_args.crop_size=32", "--trainer.max_steps=1"]
    env = {**os.environ, "WANDB_MODE": "offline"}
    env.pop("PYTHONWARNINGS", None)
    env.pop("ZOO_TRACEBACK", None)
    result = subprocess.run(command + args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 2, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("zoo: error: 2 of 8 image files cannot be used") and "skip_bad_files" in last
    assert all(str(path) in last for path in bad) and "Traceback" not in result.stderr
    assert not list(tmp_path.rglob("*.ckpt"))
    result = subprocess.run(command + args + ["--data.init_args.skip_bad_files=true"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Leaving out 2 of 8 image files" in result.stderr
    assert list(tmp_path.rglob("last.ckpt"))
