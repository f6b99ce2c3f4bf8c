"""Files name only zoo's own classes, and their sizes are checked before anything is allocated.

A module that writes ``MARKER`` when imported stands for code a crafted bundle or checkpoint would run; it sits in the
working folder (and on ``sys.path``), and the marker must never appear.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from torch import nn

import zoo
from zoo import hub
from zoo.cli import main
from zoo.methods import CycleGAN

ROOT = Path(__file__).resolve().parents[1]
TINY_CYCLEGAN = ROOT / "zoo" / "configs" / "tiny" / "cyclegan.yaml"


@pytest.fixture
def evil(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder holding ``evil_pkg`` (importing it writes ``MARKER``), on ``sys.path`` and the cwd."""
    package = tmp_path / "evil_pkg"
    package.mkdir()
    (package / "__init__.py").write_text(
        f"open({str(tmp_path / 'MARKER')!r}, 'w').write('imported')\n"
        "import torch\n\n\nclass Model(torch.nn.Linear):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    sys.modules.pop("evil_pkg", None)


def _evil_bundle(folder: Path, class_path: str) -> Path:
    """A bundle naming ``class_path``, with the weights of a 2 -> 3 linear layer."""
    folder.mkdir(parents=True, exist_ok=True)
    save_file(nn.Linear(2, 3).state_dict(), str(folder / hub.BUNDLE_WEIGHTS))
    config = {"method": None, "class_path": class_path, "init_args": {"in_features": 2, "out_features": 3}}
    (folder / hub.BUNDLE_CONFIG).write_text(json.dumps(config))
    return folder


def _evil_ckpt(path: Path, class_path: str) -> Path:
    """A Lightning-style checkpoint whose ``hyper_parameters['_class_path']`` is ``class_path``."""
    torch.save(
        {
            "state_dict": nn.Linear(2, 3).state_dict(),
            "pytorch-lightning_version": "2.4.0",
            "hyper_parameters": {"_class_path": class_path, "in_features": 2, "out_features": 3},
        },
        path,
    )
    return path


def _one_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


@pytest.mark.parametrize("class_path", ["evil_pkg.Model", "this.Nothing", "torch.nn.Linear"])
def test_load_refuses_unregistered_class_without_importing(evil: Path, class_path: str) -> None:
    bundle = _evil_bundle(evil / "bundle", class_path)
    ckpt = _evil_ckpt(evil / "evil.ckpt", class_path)
    for source in (bundle, bundle / hub.BUNDLE_WEIGHTS, ckpt):
        with pytest.raises(hub.UntrustedClassError) as info:
            zoo.load(source)
        message = str(info.value)
        assert "\n" not in message and class_path in message and "trust_code=True" in message
    assert not (evil / "MARKER").exists()
    assert "evil_pkg" not in sys.modules


def test_bundle_with_its_own_init_is_not_imported(evil: Path) -> None:
    """A bundle folder that is itself a package naming its own class: refused, and not imported even when trusted."""
    bundle = _evil_bundle(evil / "mybundle", "mybundle.Model")
    (bundle / "__init__.py").write_text(f"open({str(evil / 'MARKER')!r}, 'w').write('imported')\n")
    with pytest.raises(hub.UntrustedClassError, match="mybundle.Model"):
        zoo.load("mybundle")
    with pytest.raises(ImportError, match="mybundle"):
        zoo.load("mybundle", trust_code=True)  # the working folder is never searched
    assert not (evil / "MARKER").exists()
    sys.modules.pop("mybundle", None)


def test_trust_code_never_searches_the_working_folder(evil: Path) -> None:
    with pytest.raises(ImportError, match="evil_pkg"):
        zoo.load(_evil_ckpt(evil / "evil.ckpt", "evil_pkg.Model"), trust_code=True)
    assert not (evil / "MARKER").exists()


def test_trust_code_allows_an_external_module_class(tmp_path: Path) -> None:
    bundle = _evil_bundle(tmp_path / "linear", "torch.nn.Linear")
    with pytest.raises(hub.UntrustedClassError):
        zoo.load(bundle)
    model = zoo.load(bundle, trust_code=True)
    assert isinstance(model, nn.Linear) and model.out_features == 3
    ckpt = _evil_ckpt(tmp_path / "linear.ckpt", "torch.nn.Linear")
    assert isinstance(zoo.load(ckpt, trust_code=True), nn.Linear)


def test_registered_classes_by_full_and_short_name(tmp_path: Path) -> None:
    model = CycleGAN(ngf=2, ndf=2, generator="resnet_2blocks")
    bundle = hub.save_bundle(model, tmp_path / "bundle")
    config = json.loads((bundle / hub.BUNDLE_CONFIG).read_text())
    config["method"] = None
    for class_path in ("zoo.methods.cyclegan.CycleGAN", "CycleGAN"):
        (bundle / hub.BUNDLE_CONFIG).write_text(json.dumps({**config, "class_path": class_path}))
        assert isinstance(zoo.load(bundle), CycleGAN)


def _image(folder: Path) -> Path:
    folder.mkdir()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(folder / "a.png")
    return folder


def test_translate_refuses_in_one_line(evil: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = _evil_ckpt(evil / "evil.ckpt", "evil_pkg.Model")
    inputs = _image(evil / "in")
    for extra in ([], ["--trust-code"]):
        with pytest.raises(SystemExit) as info:
            main(["translate", "--model", str(ckpt), "--input", str(inputs), "--output", str(evil / "out"), *extra])
        assert info.value.code == 2
        line = _one_line(capsys.readouterr().err)
        assert line.startswith("zoo: error:") and "evil_pkg.Model" in line
        if not extra:
            assert "--trust-code" in line
    assert not (evil / "MARKER").exists()


def test_installed_zoo_translate_refuses(evil: Path) -> None:
    ckpt = _evil_ckpt(evil / "evil.ckpt", "evil_pkg.Model")
    inputs = _image(evil / "in")
    executable = shutil.which("zoo") or str(Path(sys.executable).with_name("zoo"))
    result = subprocess.run(
        [executable, "translate", "--model", ckpt.name, "--input", "in", "--output", "out"],
        cwd=evil, env={**os.environ, "PYTHONPATH": str(evil)}, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2, result.stderr
    line = _one_line(result.stderr)
    assert "evil_pkg.Model" in line and "--trust-code" in line
    assert not (evil / "MARKER").exists() and inputs.is_dir()


@pytest.mark.parametrize("class_path", ["evil_pkg.Model", "torch.nn.Linear"])
def test_fit_ckpt_path_refuses_before_importing(
    evil: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, class_path: str
) -> None:
    monkeypatch.setattr(sys, "argv", ["zoo"])  # Lightning warns when sys.argv holds other arguments than args
    ckpt = _evil_ckpt(evil / "evil.ckpt", class_path)
    with pytest.raises(SystemExit) as info:
        main(["fit", "--config", str(TINY_CYCLEGAN), "--ckpt_path", str(ckpt), "--trainer.logger=false"])
    assert info.value.code == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("zoo: error:") and class_path in line
    assert not (evil / "MARKER").exists()


# ------------------------------------------------------------------------------------------------------------ sizes


@pytest.fixture
def tiny_bundle(tmp_path: Path) -> Path:
    return hub.save_bundle(CycleGAN(ngf=2, ndf=2, generator="resnet_2blocks"), tmp_path / "bundle")


def _edit(bundle: Path, **init_args: object) -> None:
    config = json.loads((bundle / hub.BUNDLE_CONFIG).read_text())
    config["init_args"].update(init_args)
    (bundle / hub.BUNDLE_CONFIG).write_text(json.dumps(config))


def test_huge_width_is_refused_without_allocating(tiny_bundle: Path) -> None:
    _edit(tiny_bundle, ngf=100000)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    start = time.perf_counter()
    with pytest.raises(hub.ModelTooLargeError) as info:
        zoo.load(tiny_bundle)
    elapsed = time.perf_counter() - start
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    assert elapsed < 1.0 and grown_mib < 200
    message = str(info.value)
    assert "\n" not in message and "500,000,000" in message and "max_parameters" in message
    assert "ZOO_MAX_PARAMETERS" in message


def test_parameter_limit_can_be_set(tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(zoo.load(tiny_bundle), CycleGAN)
    with pytest.raises(hub.ModelTooLargeError, match="above the limit of 10"):
        zoo.load(tiny_bundle, max_parameters=10)
    monkeypatch.setenv("ZOO_MAX_PARAMETERS", "10")
    with pytest.raises(hub.ModelTooLargeError):
        zoo.load(tiny_bundle)
    assert isinstance(zoo.load(tiny_bundle, max_parameters=10**9), CycleGAN)  # the argument wins over the env


@pytest.mark.parametrize(
    ("init_args", "match"),
    [
        ({"ngf": "64"}, "ngf='64'.*not a int"),
        ({"ngf": True}, "ngf=True"),
        ({"ngf": -4}, "ngf=-4.*must be positive"),
        ({"n_layers_d": -1}, "n_layers_d=-1.*must not be negative"),
        ({"norm": "mystery"}, "norm='mystery'"),
        ({"use_dropout": 1}, "use_dropout=1"),
    ],
)
def test_badly_typed_arguments_are_refused(tiny_bundle: Path, init_args: dict[str, object], match: str) -> None:
    _edit(tiny_bundle, **init_args)
    with pytest.raises(ValueError, match=match):
        zoo.load(tiny_bundle)


def test_every_method_is_counted_on_meta(tmp_path: Path) -> None:
    """Every registered method can be sized without allocating (so the limit applies to all of them)."""
    from zoo.registry import METHODS

    for name, cls in METHODS.items():
        if name.startswith("_"):
            continue
        count = hub._count_parameters(cls, {}, tmp_path)
        assert count is not None and count < hub.DEFAULT_MAX_PARAMETERS, name
