"""Every shipped config parses; the paper configs point at their datasets and say how to get them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.parity.manifest import cases
from zoo.cli import main

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").rglob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(p.parents[1] if p.parent.name == "tiny"
                                                                             else p.parent)))
def test_config_resolves(path, capsys):
    assert main(["fit", "--config", str(path), "--print_config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["model"]["class_path"].startswith("zoo.methods.")
    assert printed["data"]["class_path"].startswith("zoo.data.")


@pytest.mark.parametrize("name, folder", [("pix2pix", "datasets/facades"), ("cyclegan", "datasets/horse2zebra")])
def test_paper_config_without_its_dataset_says_what_to_do(name, folder, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    config = Path(__file__).resolve().parents[1] / "configs" / f"{name}.yaml"
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--config", str(config), "--trainer.logger=false"])
    assert exit_info.value.code == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert folder in line and "http" in line and "--data.root=null" in line


def test_the_cli_never_replaces_a_methods_optimizers(capsys):
    config = Path(__file__).resolve().parents[1] / "configs" / "tiny" / "cyclegan.yaml"
    with pytest.raises(SystemExit):
        main(["fit", "--config", str(config), "--optimizer=SGD", "--print_config"])
    assert "optimizer" in capsys.readouterr().err


def test_a_method_without_oracle_fixtures_is_skipped_with_a_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_REFERENCE_DIR", str(tmp_path))
    (param,) = cases("pix2pix_cyclegan")
    (mark,) = param.marks
    assert mark.name == "skip" and "MANIFEST.json" in mark.kwargs["reason"]
