"""The weights that ship inside zoo: every method loads by name offline, the files stay small, the models still make
the outputs and the metrics recorded when they were trained, and the training command reproduces a file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

import zoo
from bench.train_zoo_weights import ENTRIES, MAX_FILE_BYTES, MAX_TOTAL_BYTES, measure, regression_outputs
from zoo.registry import default_pretrained, get_pretrained
from zoo.shipped_weights import model_card_markdown, shipped_cards
from zoo.weights import SHIPPED_WEIGHTS_DIR, file_sha256

REPO = Path(__file__).resolve().parents[1]
EXPECTED_DIR = REPO / "tests" / "data" / "shipped_outputs"
SHIPPED = sorted(shipped_cards())
METHODS_WITH_WEIGHTS = [name for name in zoo.list_models() if name != "bicubic"]


def _offline_env(tmp_path: Path) -> dict[str, str]:
    """A fresh install's environment: no network, an empty cache, no weights folder."""
    env = {k: v for k, v in os.environ.items() if k != "ZOO_WEIGHTS_DIR"}
    return {**env, "ZOO_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "ZOO_HOME": str(tmp_path / "zoo_home"),
            "PYTHONPATH": str(REPO)}


def test_every_method_has_shipped_weights_and_the_training_command_knows_them():
    assert sorted(ENTRIES) == SHIPPED, "each entry of bench/train_zoo_weights.py ships, and nothing else does"
    assert sorted({shipped_cards()[name]["method"] for name in SHIPPED}) == sorted(METHODS_WITH_WEIGHTS)


def test_the_card_example_loads_trained_vsait_offline_and_says_which_file(tmp_path):
    """The README's command, on a fresh install without network: the toy-world model, named on stderr."""
    proc = subprocess.run([sys.executable, "-c", "import zoo; m = zoo.load('vsait'); print(m)"], cwd=tmp_path,
                          env=_offline_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "VSAIT(" in proc.stdout
    assert "zoo.load('vsait'): vsait.toy_sim2photo" in proc.stderr and "toy world" in proc.stderr


def test_every_method_name_loads_offline(tmp_path):
    script = ("import sys, zoo\n"
              "for name in sys.argv[1:]:\n"
              "    model = zoo.load(name, verbose=False)\n"
              "    print(name, model.zoo_source, type(model).__name__, model.training)\n")
    proc = subprocess.run([sys.executable, "-c", script, *METHODS_WITH_WEIGHTS], cwd=tmp_path,
                          env=_offline_env(tmp_path), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    loaded = {line.split()[0]: line.split()[1:] for line in proc.stdout.splitlines()}
    assert sorted(loaded) == sorted(METHODS_WITH_WEIGHTS)
    for method, (source, _, training) in loaded.items():
        assert source.startswith(f"{method}.toy_") and training == "False", (method, source, training)


def test_real_data_weights_on_disk_win_over_the_shipped_model(tmp_path, monkeypatch, capsys):
    """A published entry whose file is in $ZOO_WEIGHTS_DIR is preferred; the message says so."""
    from zoo.hub import save_bundle

    entry = get_pretrained("vsait.gta2cityscapes")
    stand_in = zoo.load("vsait.toy_sim2photo")  # any VSAIT bundle stands in for the real-data file
    folder = save_bundle(stand_in, tmp_path / "bundle")
    weights_dir = tmp_path / "weights"
    weights_dir.mkdir()
    (folder / "model.safetensors").rename(weights_dir / entry.file_name)
    monkeypatch.setenv("ZOO_WEIGHTS_DIR", str(weights_dir))
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    assert default_pretrained("vsait")[0] == "vsait.gta2cityscapes"
    model = zoo.load("vsait")
    assert model.zoo_source == "vsait.gta2cityscapes"
    assert "real-data weights found at" in capsys.readouterr().err
    monkeypatch.delenv("ZOO_WEIGHTS_DIR")
    assert default_pretrained("vsait")[0] == "vsait.toy_sim2photo"


def test_shipped_files_are_small_fp16_and_match_their_cards():
    sizes = {}
    for name in SHIPPED:
        card = shipped_cards()[name]
        path = SHIPPED_WEIGHTS_DIR / card["file"]
        sizes[name] = path.stat().st_size
        assert sizes[name] == card["size_bytes"] <= MAX_FILE_BYTES, name
        assert file_sha256(path) == card["sha256"] == get_pretrained(name).sha256
        with safe_open(str(path), framework="pt") as f:
            dtypes = {f.get_slice(key).get_dtype() for key in f.keys()}
        assert "F32" not in dtypes and "F16" in dtypes, f"{name}: floating tensors are stored in fp16 ({dtypes})"
        assert (SHIPPED_WEIGHTS_DIR / f"{name}.md").read_text() == model_card_markdown(card)
        assert (SHIPPED_WEIGHTS_DIR / f"{name}.losses.csv").read_text().startswith("epoch,") or \
            "step" in (SHIPPED_WEIGHTS_DIR / f"{name}.losses.csv").read_text().splitlines()[0]
        assert card["train_seconds"] > 0 and card["iterations"] > 0 and card["license"].startswith("BSD-3-Clause")
        assert (REPO / card["config"]).is_file()
    everything = sorted(SHIPPED_WEIGHTS_DIR.glob("*.safetensors"))  # the models and the metrics' toy segmenter
    assert {p.name for p in everything} == {shipped_cards()[n]["file"] for n in SHIPPED} | {_segmenter_file()}
    assert sum(p.stat().st_size for p in everything) <= MAX_TOTAL_BYTES


def _segmenter_file() -> str:
    from zoo.metrics.semantic import toy_segmenter_path

    return toy_segmenter_path().name


def test_the_metrics_use_the_shipped_toy_segmenter(monkeypatch, tmp_path):
    """The default segmenter is read from the package (never trained on a fresh install), so card numbers match."""
    from zoo.metrics import semantic

    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "empty_home"))
    monkeypatch.setattr(semantic, "train_toy_segmenter", lambda *a, **k: pytest.fail("the segmenter was retrained"))
    net = semantic.toy_segmenter()
    shipped = load_file(str(SHIPPED_WEIGHTS_DIR / _segmenter_file()))
    assert all(torch.equal(net.state_dict()[k], v.float()) for k, v in shipped.items() if v.is_floating_point())


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_still_makes_its_stored_outputs(name):
    """Fixed toy inputs through every shipped model, against the outputs stored when it was trained."""
    expected = load_file(str(EXPECTED_DIR / f"{name}.safetensors"))["outputs"].float()
    model = zoo.load(name)
    actual = regression_outputs(model, name, count=expected.shape[0])
    assert actual.shape == expected.shape
    torch.testing.assert_close(actual, expected, atol=4e-3, rtol=0, msg=f"{name}: outputs moved")


@pytest.mark.parametrize("name", SHIPPED)
def test_recorded_metrics_hold(name):
    """The card's numbers, measured again with the card's protocol, are where the card says (the shipped segmenter
    makes the semantic scores the same on every machine; CPU kernels move them in the last digits)."""
    card = shipped_cards()[name]
    measured = measure(zoo.load(name), ENTRIES[name], images=50)
    assert set(measured) == set(card["metrics"])
    for metric, value in measured.items():
        assert value == pytest.approx(card["metrics"][metric], abs=0.1 if "psnr" in metric else 0.02), (name, metric)


def test_training_command_writes_a_loadable_shipped_entry(tmp_path):
    """``bench/train_zoo_weights.py`` as the cards say it was run, cut to two iterations."""
    out, work, expected = tmp_path / "pretrained", tmp_path / "runs", tmp_path / "expected"
    proc = subprocess.run([sys.executable, "bench/train_zoo_weights.py", "--name", "srresnet.toy_x4", "--max-steps",
                           "2", "--output", str(out), "--work-dir", str(work), "--expected", str(expected),
                           "--images", "4"], cwd=REPO, env=_offline_env(tmp_path), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    card = json.loads((out / "srresnet.toy_x4.json").read_text())
    assert card["iterations"] == 2 and card["sha256"] == file_sha256(out / "srresnet.toy_x4.safetensors")
    assert set(card["metrics"]) >= {"psnr", "ssim", "bicubic_psnr"}
    model = zoo.load(out / "srresnet.toy_x4.safetensors")
    stored = load_file(str(expected / "srresnet.toy_x4.safetensors"))["outputs"]
    assert stored.dtype == torch.float16 and stored.shape[0] == 2 and model.zoo_source.endswith(".safetensors")


def test_zoo_translate_with_a_method_name_uses_the_shipped_model(tmp_path):
    """``zoo translate --model vsait`` as the README shows it: the shipped weights, offline."""
    from PIL import Image

    from zoo.data import toy_world

    inputs = tmp_path / "sim"
    inputs.mkdir()
    for seed in range(2):
        Image.fromarray(toy_world.render_sim(toy_world.make_scene(seed, 64, 64))).save(inputs / f"frame_{seed}.png")
    proc = subprocess.run([sys.executable, "-m", "zoo", "translate", "--model", "vsait", "--input", str(inputs),
                           "--output", str(tmp_path / "out")], cwd=tmp_path, env=_offline_env(tmp_path),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "vsait.toy_sim2photo" in proc.stderr
    outputs = sorted((tmp_path / "out").glob("*.png"))
    assert [p.name for p in outputs] == ["frame_0.png", "frame_1.png"]
    assert Image.open(outputs[0]).size == (64, 64)
