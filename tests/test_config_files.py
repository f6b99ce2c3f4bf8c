"""Configs ship with the package: found from any folder, listed and copied by `zoo configs`, interpolated."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from zoo.cli import main
from zoo.config_files import config_dir, copy_config, list_configs, load_config, resolve_config

REPO = Path(__file__).resolve().parents[1]


def _zoo(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    script = Path(sys.executable).with_name("zoo")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "zoo"]
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONWARNINGS": "ignore"}
    return subprocess.run(command + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_the_shipped_configs_are_the_repository_configs():
    shipped = sorted(p.relative_to(config_dir()) for p in config_dir().rglob("*.yaml"))
    in_repo = sorted(p.relative_to(REPO / "configs") for p in (REPO / "configs").rglob("*.yaml"))
    assert shipped == in_repo and "tiny/cyclegan" in list_configs() and "decent" in list_configs()


def test_a_config_path_missing_here_resolves_to_the_shipped_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    names = ("configs/tiny/cyclegan.yaml", "tiny/cyclegan", "tiny/cyclegan.yaml", "/else/configs/tiny/cyclegan.yaml")
    for name in names:
        assert resolve_config(name) == config_dir() / "tiny" / "cyclegan.yaml"
    local = tmp_path / "configs" / "tiny" / "cyclegan.yaml"
    local.parent.mkdir(parents=True)
    local.write_text("model: {}\n")
    assert resolve_config("configs/tiny/cyclegan.yaml") == Path("configs/tiny/cyclegan.yaml"), "a local file wins"
    with pytest.raises(FileNotFoundError, match="zoo configs"):
        resolve_config("configs/nope.yaml")


def test_zoo_fit_with_a_shipped_config_from_another_folder(tmp_path):
    result = _zoo(["fit", "--config", "configs/tiny/cyclegan.yaml", "--trainer.max_steps=1"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"using the shipped config {config_dir() / 'tiny' / 'cyclegan.yaml'}" in result.stderr
    assert (tmp_path / "runs" / "tiny_cyclegan" / "version_0" / "checkpoints" / "last.ckpt").is_file()


def test_zoo_configs_lists_and_copies(tmp_path, capsys):
    assert main(["configs"]) == 0
    listed = capsys.readouterr().out
    assert all(f"  {name} " in listed for name in list_configs())
    assert main(["configs", "copy", "decent", str(tmp_path / "my.yaml")]) == 0
    assert (tmp_path / "my.yaml").read_text() == (config_dir() / "decent.yaml").read_text()
    assert "zoo fit --config" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["configs", "copy", "decent", str(tmp_path / "my.yaml")])
    assert "--overwrite" in capsys.readouterr().err
    assert copy_config("tiny/decent", tmp_path).name == "decent.yaml"


def test_a_config_states_a_value_once_through_interpolation(capsys):
    """SRGAN's discriminator image_size is the data's crop_size, also after a command-line override."""
    assert yaml.safe_load((config_dir() / "srgan.yaml").read_text())["model"]["init_args"]["image_size"] == (
        "${data.init_args.crop_size}"
    )
    for command in ("fit", "validate"):
        assert main([command, "--config", str(config_dir() / "tiny" / "srgan.yaml"), "--data.init_args.crop_size=24",
                     "--print_config"]) == 0
        printed = yaml.safe_load(capsys.readouterr().out)
        assert printed["model"]["init_args"]["image_size"] == printed["data"]["init_args"]["crop_size"] == 24
    assert load_config("tiny/srgan")["model"]["init_args"]["image_size"] == 32
