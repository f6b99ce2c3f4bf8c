"""Every error a user can cause ends with one ``zoo: error:`` line that names the cause and the fix (exit status 2);
``ZOO_TRACEBACK=1`` shows the traceback instead."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from zoo.cli import main

REPO = Path(__file__).resolve().parents[1]
TINY_CYCLEGAN = REPO / "configs" / "tiny" / "cyclegan.yaml"
TINY_PIX2PIX = REPO / "configs" / "tiny" / "pix2pix.yaml"


def _error_line(capsys, *args: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith("zoo: error: "), err[-5:]
    return err[-1]


def _image(path: Path, size: int = 16) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path)


def test_an_out_of_range_optimizer_setting_names_its_key(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    line = _error_line(capsys, "fit", "--config", str(TINY_CYCLEGAN), "--model.init_args.lr=-0.1")
    assert "model.init_args.lr=-0.1" in line and "learning rate" in line


def test_unmatched_paired_files_are_one_line_naming_the_files(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for name in ("x.png", "y.png"):
        _image(tmp_path / "data" / "trainA" / name)
    _image(tmp_path / "data" / "trainB" / "x.png")
    _image(tmp_path / "data" / "trainB" / "z.png")
    line = _error_line(capsys, "fit", "--config", str(TINY_PIX2PIX), f"--data.init_args.root={tmp_path / 'data'}",
                       "--data.init_args.layout=folders")
    assert "y" in line and "z" in line


def test_an_unavailable_accelerator_says_what_to_pass(tmp_path, monkeypatch, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the error needs one without")
    monkeypatch.chdir(tmp_path)
    line = _error_line(capsys, "fit", "--config", str(TINY_CYCLEGAN), "--trainer.accelerator=gpu")
    assert "--trainer.accelerator=auto" in line
    assert not (tmp_path / "runs").exists(), "a run that never started must leave no folder"


def test_a_precision_that_needs_a_missing_package_is_one_line(tmp_path, monkeypatch, capsys):
    pytest.importorskip("lightning")
    try:
        import transformer_engine  # noqa: F401

        pytest.skip("transformer_engine is installed here")
    except ImportError:
        pass
    monkeypatch.chdir(tmp_path)
    line = _error_line(capsys, "fit", "--config", str(TINY_CYCLEGAN), "--trainer.precision=transformer-engine")
    assert "transformer_engine" in line and "install" in line


def test_a_truncated_checkpoint_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    good = tmp_path / "model.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1000)}}, good)
    bad = tmp_path / "truncated.ckpt"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    for command in ("fit", "test"):
        line = _error_line(capsys, command, "--config", str(TINY_CYCLEGAN), "--ckpt_path", str(bad))
        assert "truncated.ckpt" in line and "not a readable checkpoint" in line
    line = _error_line(capsys, "test", "--config", str(TINY_CYCLEGAN), "--ckpt_path", str(tmp_path / "missing.ckpt"))
    assert "missing.ckpt: no such file" in line


def test_a_nan_loss_is_one_line_with_the_guard_message(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    line = _error_line(capsys, "fit", "--config", str(TINY_CYCLEGAN), "--model.init_args.lr=1e30",
                       "--trainer.max_steps=6")
    assert "became nan" in line or "became inf" in line
    assert "Lower the learning rate" in line


def test_a_yaml_syntax_error_names_the_file_and_line(tmp_path, capsys):
    config = tmp_path / "broken.yaml"
    config.write_text("model:\n  class_path: CycleGAN\n  init_args: {ngf: 4\ndata: {}\n")
    line = _error_line(capsys, "fit", "--config", str(config))
    assert f"{config}:4:" in line and "invalid YAML" in line


def test_a_missing_config_is_one_line(tmp_path, capsys):
    line = _error_line(capsys, "fit", "--config", str(tmp_path / "nope.yaml"))
    assert "nope.yaml" in line and "zoo configs" in line


def test_translate_refuses_a_pickled_object_in_one_line(tmp_path, capsys):
    bad = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": argparse.Namespace(x=1)}, bad)
    _image(tmp_path / "in" / "a.png")
    line = _error_line(capsys, "translate", "--model", str(bad), "--input", str(tmp_path / "in"), "--output",
                       str(tmp_path / "out"))
    assert "evil.ckpt" in line and "refusing" in line


def test_a_subprocess_run_ends_with_the_line_and_zoo_traceback_shows_the_traceback(tmp_path):
    zoo = Path(sys.executable).with_name("zoo")
    command = [str(zoo)] if zoo.is_file() else [sys.executable, "-m", "zoo"]
    args = ["fit", "--config", str(TINY_CYCLEGAN), "--model.init_args.lr=-0.1"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("ZOO_TRACEBACK", None)
    result = subprocess.run(command + args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("zoo: error: model.init_args.lr=-0.1")
    assert "Traceback" not in result.stderr
    result = subprocess.run(command + args, cwd=tmp_path, env={**env, "ZOO_TRACEBACK": "1"}, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode != 0 and "Traceback" in result.stderr and "Invalid learning rate" in result.stderr


def test_images_too_small_for_the_network_are_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    line = _error_line(capsys, "fit", "--config", str(REPO / "configs" / "tiny" / "drit.yaml"),
                       "--data.init_args.image_size=8")
    assert "too small" in line and "crop_size" in line


def test_images_too_small_for_instance_norm_are_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    line = _error_line(capsys, "fit", "--config", str(TINY_CYCLEGAN), "--data.init_args.image_size=4",
                       "--trainer.max_steps=1")
    assert "too small" in line and "Expected more than 1 spatial element" in line


def test_out_of_memory_in_translate_suggests_tiles(tmp_path, monkeypatch, capsys):
    def allocate(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:121] data. DefaultCPUAllocator: can't allocate memory: "
                           "you tried to allocate 5120000000 bytes. Error code 12 (Cannot allocate memory)")

    monkeypatch.setattr("zoo.translate.translate_images", allocate)
    _image(tmp_path / "big.png")
    line = _error_line(capsys, "translate", "--model", "cyclegan.horse2zebra", "--input", str(tmp_path / "big.png"),
                       "--output", str(tmp_path / "out"))
    assert "out of memory" in line and "--tile 256" in line


def _tiny_bundle(tmp_path: Path) -> Path:
    from zoo.hub import save_bundle
    from zoo.methods import CycleGAN

    model = CycleGAN(ngf=2, ndf=2, generator="resnet_2blocks", n_layers_d=1, discriminator="n_layers")
    return save_bundle(model, tmp_path / "bundle")


def test_a_corrupt_input_is_skipped_and_named_and_strict_stops_on_it(tmp_path, capsys):
    bundle = _tiny_bundle(tmp_path)
    for name in ("a.png", "b.png", "c.png"):
        _image(tmp_path / "in" / name)
    good = (tmp_path / "in" / "b.png").read_bytes()
    (tmp_path / "in" / "b.png").write_bytes(good[: len(good) // 2])  # truncated
    args = ["translate", "--model", str(bundle), "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"),
            "--no-progress"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert any(line.startswith("zoo: skipped unreadable") and "b.png" in line for line in captured.err.splitlines())
    assert "1 unreadable" in captured.out
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["a.png", "c.png"]

    line = _error_line(capsys, *args[:-2], str(tmp_path / "strict"), "--no-progress", "--strict")
    assert "b.png" in line and "--strict" in line


def test_missing_weights_keep_every_line_of_their_message():
    from zoo.errors import describe_run_error
    from zoo.weights import WeightsUnavailableError

    error = WeightsUnavailableError("weights x.pth for y are not on disk and downloads are off.\n"
                                    "Download https://example.org/x.pth and put it at one of:\n  /a/x.pth\n  /b/x.pth")
    message = describe_run_error(error)
    assert "\n" not in message
    for part in ("x.pth for y", "https://example.org/x.pth", "/a/x.pth", "/b/x.pth"):
        assert part in message
