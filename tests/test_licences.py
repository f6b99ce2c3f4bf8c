"""Every registered set of weights states a licence, and the notices cover every registered method."""

from __future__ import annotations

import fnmatch
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

import zoo
from zoo.registry import (
    PRETRAINED_LICENSES,
    PretrainedEntry,
    get_pretrained,
    list_pretrained,
    pretrained_license,
    register_pretrained,
)

REPO = Path(__file__).resolve().parents[1]


def test_every_registered_entry_has_a_licence_from_the_table():
    names = list_pretrained()
    assert names
    for name in names:
        licence = get_pretrained(name).license
        assert licence.strip(), f"{name} has an empty licence"
        if name.split(".", 1)[0] in zoo.list_models():
            assert licence == pretrained_license(name, default=""), f"{name}: no PRETRAINED_LICENSES row"
    unused = [p for p, _ in PRETRAINED_LICENSES if not any(fnmatch.fnmatchcase(n, p) for n in names)]
    assert not unused, f"PRETRAINED_LICENSES rows that match no registered weights: {unused}"


def test_an_empty_licence_is_refused(monkeypatch):
    from zoo import registry

    monkeypatch.setattr(registry, "PRETRAINED", dict(registry.PRETRAINED))
    with pytest.raises(ValueError, match="empty licence"):
        register_pretrained("nomethod.x", PretrainedEntry(method="nomethod", license=" "))


def test_zoo_list_pretrained_shows_a_licence_for_every_entry():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "zoo", "list", "--pretrained"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = {line.split()[0]: line for line in result.stdout.splitlines()[2:] if line.strip()}
    assert "licence" in result.stdout.splitlines()[1]
    assert sorted(lines) == list_pretrained()
    for name, line in lines.items():
        assert get_pretrained(name).license in line, line


def test_notices_name_every_registered_method_and_pretrained_family():
    notices = (REPO / "THIRD_PARTY_NOTICES.md").read_text()
    for name in zoo.list_models():
        assert f"`{name}`" in notices, f"THIRD_PARTY_NOTICES.md does not name the method {name!r}"
    for name in list_pretrained():
        if get_pretrained(name).shipped:  # trained by zoo on its own toy world: zoo's, under its licence
            continue
        method = name.split(".", 1)[0]
        assert f"`{method}." in notices, f"THIRD_PARTY_NOTICES.md does not cover {name!r}"
    assert "zoo/pretrained" in notices, "THIRD_PARTY_NOTICES.md should say whose the shipped weights are"


def test_the_wheel_ships_the_licence_files():
    assert (REPO / "LICENSE").read_text().startswith("BSD 3-Clause License")
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert config["project"]["license"] == {"text": "BSD-3-Clause"}
    files = config["tool"]["setuptools"]["license-files"]
    assert "LICENSE" in files and all((REPO / f).is_file() for f in files)
