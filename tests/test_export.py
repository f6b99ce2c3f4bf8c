"""``zoo.export``: every registered method exports and matches eager ``translate`` (ONNX through onnxruntime,
TorchScript, ExportedProgram), dynamic shapes, the verification failure path, the ONNX translator and ``zoo export``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import zoo
from tests.methods.tiny_configs import build_tiny_model
from zoo.export import (
    ExportReport,
    ExportVerificationError,
    NotExportableError,
    export_model,
    load_onnx_model,
    read_metadata,
)

pytest.importorskip("onnxruntime")

SIZE = 16
#: one of each kind: unimodal, multimodal, super-resolution, label maps
REPRESENTATIVE = ("cyclegan", "munit", "srgan", "pix2pixhd")


def _tiny(name: str, **overrides):
    """The tiny model of ``name`` in eval mode; pix2pix with eval-mode inference (its default keeps dropout on)."""
    torch.manual_seed(0)
    if name == "pix2pix":
        overrides.setdefault("inference_mode", "eval")
    model, _ = build_tiny_model(name, **overrides)
    return model.eval()


def _size(model) -> int:
    return max(SIZE, model.size_multiple)


_ONNX_EXPORTS: dict[str, tuple[torch.nn.Module, ExportReport]] = {}


def _onnx_export(name: str, folder: Path) -> tuple[torch.nn.Module, ExportReport]:
    """The tiny model of ``name`` and its verified ONNX export (made once per test session)."""
    if name not in _ONNX_EXPORTS:
        model = _tiny(name)
        _ONNX_EXPORTS[name] = model, export_model(model, folder / f"{name}.onnx", format="onnx",
                                                  example_size=_size(model))
    return _ONNX_EXPORTS[name]


@pytest.fixture(scope="session")
def onnx_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx")


@pytest.mark.parametrize("name", zoo.list_models())
def test_every_method_exports_to_onnx_and_matches_eager(name: str, onnx_folder: Path) -> None:
    """Verified through onnxruntime on random inputs and a toy-world frame; LOMIT's default train-mode inference
    (BatchNorm on the batch's statistics) included."""
    model, report = _onnx_export(name, onnx_folder)
    assert report.path.is_file() and report.opset is not None
    assert set(report.checks) == {"random", "toy-world"}
    assert report.max_abs_diff <= 1e-4
    meta = read_metadata(report.path)
    assert meta["method"] == name and meta["direction"] == "a2b" and meta["zoo_version"] == zoo.__version__
    assert meta["size_multiple"] == model.size_multiple and meta["scale"] == model.scale
    assert meta["input_names"][0] == "images" and meta["style_dim"] == model.style_dim
    assert ("style" in meta["input_names"]) == (model.style_dim is not None)
    assert ("exemplar" in meta["input_names"]) == model.requires_exemplar


@pytest.mark.parametrize("fmt", ["torchscript", "exported-program"])
@pytest.mark.parametrize("name", REPRESENTATIVE)
def test_representative_methods_export_to_torch_formats(name: str, fmt: str, tmp_path: Path) -> None:
    model = _tiny(name)
    report = export_model(model, tmp_path / f"{name}.{fmt}", format=fmt, example_size=_size(model))
    assert report.max_abs_diff <= 1e-4 and report.opset is None
    assert read_metadata(report.path)["input_channels"] == model.input_channels("a2b")


def test_second_direction_exports(tmp_path: Path) -> None:
    model = _tiny("drit")
    report = export_model(model, tmp_path / "drit_b2a.pt", format="torchscript", direction="b2a", example_size=SIZE)
    assert report.metadata["direction"] == "b2a" and report.max_abs_diff <= 1e-4


@pytest.mark.parametrize(("name", "fmt"), [("cyclegan", "onnx"), ("srgan", "exported-program"),
                                           ("pix2pixhd", "torchscript")])
def test_dynamic_shapes_are_verified_at_a_second_size(name: str, fmt: str, tmp_path: Path) -> None:
    model = _tiny(name)
    report = export_model(model, tmp_path / f"{name}.bin", format=fmt, dynamic_shapes=True)
    second = [key for key in report.checks if key.startswith("random-")]
    assert len(second) == 1 and "batch3" in second[0]
    assert report.max_abs_diff <= 1e-4 and report.metadata["dynamic_shapes"] is True
    if fmt == "onnx":  # and the translator takes any multiple of size_multiple
        images = torch.rand(2, 3, 24, 40)
        got = load_onnx_model(report.path).translate(images)
        torch.testing.assert_close(got, model.translate(images), atol=1e-4, rtol=0)


def test_verification_failure_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import zoo.export as export

    model = _tiny("cyclegan")
    real = export._reference
    monkeypatch.setattr(export, "_reference", lambda *args: real(*args) + 1e-3)  # eager drifts from the graph
    with pytest.raises(ExportVerificationError, match="differs from eager translate by 0.001"):
        export_model(model, tmp_path / "c.onnx", format="onnx", example_size=SIZE)


def test_real_images_are_verified(tmp_path: Path) -> None:
    model = _tiny("cyclegan")
    photo = torch.rand(3, 40, 52)
    report = export_model(model, tmp_path / "c.pt", format="torchscript", example_size=SIZE, real_images=[photo])
    assert "real" in report.checks and report.checks["real"] <= 1e-4


def test_train_mode_dropout_is_not_exportable(tmp_path: Path) -> None:
    model = _tiny("pix2pix", inference_mode="train")
    with pytest.raises(NotExportableError, match="active dropout"):
        export_model(model, tmp_path / "p.onnx", format="onnx", example_size=64)


def test_lomit_with_given_masks_takes_them_as_inputs(tmp_path: Path) -> None:
    model = _tiny("lomit", mask_source="given")
    report = export_model(model, tmp_path / "l.pt", format="torchscript", example_size=SIZE)
    assert report.input_names == ("images", "exemplar", "mask", "exemplar_mask") and report.max_abs_diff <= 1e-4


def test_pix2pixhd_feature_encoder_takes_features(tmp_path: Path) -> None:
    model = _tiny("pix2pixhd", instance_feat=True)
    report = export_model(model, tmp_path / "hd.pt2", format="exported-program", example_size=SIZE)
    assert report.input_names == ("images", "instance", "features") and report.max_abs_diff <= 1e-4


def test_bicubic_dynamic_shapes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(NotExportableError, match="one size only"):
        export_model(_tiny("bicubic"), tmp_path / "b.onnx", format="onnx", dynamic_shapes=True)


@pytest.mark.parametrize("name", ["munit", "lomit", "pix2pixhd", "srgan"])
def test_onnx_translator_equals_translate(name: str, onnx_folder: Path) -> None:
    model, report = _onnx_export(name, onnx_folder)
    size = _size(model)
    translator = load_onnx_model(report.path).to("cpu").eval()
    assert list(translator.parameters()) == [] and translator.directions == ("a2b",)
    assert (translator.size_multiple, translator.scale, translator.style_dim) == (model.size_multiple, model.scale,
                                                                                 model.style_dim)
    assert translator.requires_exemplar == model.requires_exemplar
    assert translator.input_channels("a2b") == model.input_channels("a2b")
    assert translator.output_channels("a2b") == model.output_channels("a2b")
    images = model.example_images(1, size, generator=torch.Generator().manual_seed(3))
    if name == "munit":
        expected, got = model.translate(images, seed=5), translator.translate(images, seed=5)  # same N(0, I) codes
    elif name == "lomit":
        exemplar = torch.rand(1, 3, size, size)
        expected, got = model.translate(images, exemplar=exemplar), translator.translate(images, exemplar=exemplar)
    elif name == "pix2pixhd":
        assert translator.ALIGNED_INPUTS == {"instance": "instance"}
        _, _, instance = model.example_inputs(1, size, generator=torch.Generator().manual_seed(3))
        expected = model.translate(images, instance=instance)
        got = translator.translate(images, instance=instance)
        torch.testing.assert_close(translator.translate(images), model.translate(images), atol=1e-4, rtol=0)
    else:
        expected, got = model.translate(images), translator.translate(images)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="static shapes"):
        translator.translate(model.example_images(1, 2 * size))
    with pytest.raises(ValueError, match="direction"):
        translator.translate(images, direction="b2a")


def test_missing_onnxruntime_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ImportError, match=r'pip install "zoo\[export\]"'):
        load_onnx_model(tmp_path / "missing.onnx")


def test_zoo_export_cli(tmp_path: Path) -> None:
    """The real command, as a user runs it, on a bundle."""
    from zoo.hub import save_bundle
    from zoo.methods import CycleGAN

    torch.manual_seed(0)
    bundle = save_bundle(CycleGAN(ngf=4, ndf=4, generator="resnet_2blocks", n_layers_d=1, discriminator="n_layers"),
                         tmp_path / "bundle")
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    output = tmp_path / "x.onnx"
    result = subprocess.run([sys.executable, "-m", "zoo", "export", "--model", str(bundle), "--format", "onnx",
                             "--output", str(output), "--size", "16", "24"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "verify random: max abs diff" in result.stdout and "verify toy-world: max abs diff" in result.stdout
    assert f"wrote {output}" in result.stdout
    meta = read_metadata(output)
    assert meta["method"] == "cyclegan" and meta["example_size"] == [16, 24]
    assert json.loads(json.dumps(meta)) == meta

    # the deployment check: zoo translate runs the exported file with onnxruntime, no training code involved
    import numpy as np
    from PIL import Image

    from zoo.translate import translate_images

    for i in range(3):
        (tmp_path / "frames").mkdir(exist_ok=True)
        pixels = np.random.default_rng(i).integers(0, 256, (16, 24, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / "frames" / f"{i}.png")
    result = subprocess.run([sys.executable, "-m", "zoo", "translate", "--model", str(output), "--input",
                             str(tmp_path / "frames"), "--output", str(tmp_path / "onnx_out"), "--device", "cpu"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    eager = translate_images(str(bundle), tmp_path / "frames", tmp_path / "eager_out", device="cpu", progress=False)
    for path in eager.outputs:
        onnx = np.asarray(Image.open(tmp_path / "onnx_out" / path.name), dtype=int)
        assert np.abs(onnx - np.asarray(Image.open(path), dtype=int)).max() <= 1


@pytest.mark.parametrize(("args", "expected"), [(["--direction", "sideways"], "sideways"),
                                              (["--no-onnxscript"], 'pip install "zoo[export]"')])
def test_zoo_export_cli_errors_are_one_line(args: list[str], expected: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from zoo.cli import main
    from zoo.hub import save_bundle

    bundle = save_bundle(_tiny("cyclegan"), tmp_path / "bundle")
    if args == ["--no-onnxscript"]:
        monkeypatch.setitem(sys.modules, "onnxscript", None)  # as if zoo[export] were not installed
        args = []
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--model", str(bundle), "--format", "onnx", "--output", str(tmp_path / "y.onnx"), *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("zoo: error:") and "\n" not in err and expected in err
