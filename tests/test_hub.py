"""Tests for zoo.hub: downloads, sha256 checks, local folders, offline behaviour, bundles, checkpoints and load().

Everything runs on local files (``file://`` URLs) under ``tmp_path``; ``ZOO_HOME`` is redirected so the real cache is
never touched. A tiny method ``_hubtest`` is registered per test and removed afterwards.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import lightning as L
import pytest
import torch
from safetensors import safe_open
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import zoo
from zoo import hub, weights
from zoo.registry import METHODS, PRETRAINED, PretrainedEntry, register_method, register_pretrained

METHOD = "_hubtest"


class HubNet(L.LightningModule):
    """Tiny image-to-image module: (B, C, H, W) in [-1, 1] -> (B, C, H, W) in [-1, 1]; ``tied`` aliases ``out``."""

    def __init__(self, *, channels: int = 3, width: int = 4) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.conv = nn.Conv2d(channels, width, 3, padding=1)
        self.out = nn.Conv2d(width, channels, 1)
        self.tied = self.out  # the same parameters under two state-dict names
        self.official_nets: list[str] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.tied(torch.relu(self.conv(x))))

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        (x,) = batch
        return (self(x) - x).abs().mean()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def load_official_weights(self, state_dict: dict[str, torch.Tensor], net: str = "G") -> None:
        """Official layout: ``model.0.*`` is ``conv``, ``model.2.*`` is ``out``."""
        self.official_nets.append(net)
        renamed = {}
        for key, value in state_dict.items():
            index, param = key.removeprefix("model.").split(".")
            for name in {"0": ["conv"], "2": ["out", "tied"]}[index]:
                renamed[f"{name}.{param}"] = value
        self.load_state_dict(renamed, strict=True)


def official_state_dict(model: HubNet) -> dict[str, torch.Tensor]:
    """``model``'s weights in the official key layout that ``load_official_weights`` converts."""
    return {
        "model.0.weight": model.conv.weight.detach().clone(),
        "model.0.bias": model.conv.bias.detach().clone(),
        "model.2.weight": model.out.weight.detach().clone(),
        "model.2.bias": model.out.bias.detach().clone(),
    }


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private ``ZOO_HOME``, downloads allowed, no ``ZOO_WEIGHTS_DIR``, and ``_hubtest`` registered."""
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    for var in ("ZOO_WEIGHTS_DIR", "ZOO_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    register_method(METHOD)(HubNet)
    yield tmp_path
    METHODS.pop(METHOD, None)
    for name in [n for n in PRETRAINED if n.startswith(METHOD + ".")]:
        PRETRAINED.pop(name)


@pytest.fixture
def images() -> torch.Tensor:
    return torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1


def make_model(seed: int = 0, **kwargs: int) -> HubNet:
    torch.manual_seed(seed)
    return HubNet(**kwargs)


def outputs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model(x)


def bundle_file(tmp_path: Path, model: HubNet, name: str = "weights.safetensors") -> Path:
    """A published-style single bundle file (a bundle's model.safetensors under another name)."""
    folder = hub.save_bundle(model, tmp_path / "published_bundle")
    path = tmp_path / "server" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((folder / hub.BUNDLE_WEIGHTS).read_bytes())
    return path


def flip_last_byte(path: Path) -> None:
    """Flip one bit in the last byte, which lies in tensor data (safetensors puts data after the header)."""
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))


def register_file(name: str, path: Path, *, sha256: str | None, **kwargs: object) -> PretrainedEntry:
    entry = PretrainedEntry(method=METHOD, url=path.as_uri(), sha256=sha256, **kwargs)
    return register_pretrained(f"{METHOD}.{name}", entry)


# ---------------------------------------------------------------------------------------------------------- locations


def test_zoo_home_follows_env_and_defaults_to_user_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "h"))
    assert hub.zoo_home() == tmp_path / "h"
    assert hub.weights_cache_dir() == tmp_path / "h" / "weights"
    monkeypatch.delenv("ZOO_HOME")
    assert hub.zoo_home() == Path.home() / ".cache" / "zoo"


# ----------------------------------------------------------------------------------------------------------- download


def test_download_file_url_with_progress(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = env / "src.bin"
    src.write_bytes(bytes(range(256)) * 4096)
    dst = env / "nested" / "dst.bin"
    result = hub.download(src.as_uri(), dst, sha256=hub.file_sha256(src), progress=True)
    assert result == dst
    assert dst.read_bytes() == src.read_bytes()
    err = capsys.readouterr().err
    assert "Downloading" in err and "dst.bin" in err
    assert sorted(p.name for p in dst.parent.iterdir()) == ["dst.bin"]  # no temporary file left


def test_download_sha_mismatch_leaves_no_file(env: Path) -> None:
    src = env / "src.bin"
    src.write_bytes(b"some weights")
    dst = env / "out" / "dst.bin"
    wrong = "0" * 64
    with pytest.raises(hub.HashMismatchError) as info:
        hub.download(src.as_uri(), dst, sha256=wrong, progress=False)
    assert wrong in str(info.value) and hub.file_sha256(src) in str(info.value)
    assert list(dst.parent.iterdir()) == []


def test_download_failure_is_immediate_and_clear(env: Path) -> None:
    url = (env / "missing.bin").as_uri()
    start = time.monotonic()
    with pytest.raises(hub.DownloadError, match="missing.bin"):
        hub.download(url, env / "out" / "x.bin", progress=False)
    assert time.monotonic() - start < 2.0
    assert list((env / "out").iterdir()) == []


# ---------------------------------------------------------------------------------------------- resolve and hashing


def test_registered_weights_are_downloaded_once_into_the_cache(env: Path, images: torch.Tensor) -> None:
    model = make_model()
    src = bundle_file(env, model)
    register_file("tiny", src, sha256=hub.file_sha256(src))
    path = hub.resolve_weights(f"{METHOD}.tiny")
    assert path == hub.weights_cache_dir() / src.name
    src.unlink()  # the second call must be served from the cache
    assert hub.resolve_weights(f"{METHOD}.tiny") == path
    torch.testing.assert_close(outputs(hub.load(f"{METHOD}.tiny"), images), outputs(model.eval(), images))


def test_flipped_byte_in_cached_file_is_caught_on_next_load(env: Path, images: torch.Tensor) -> None:
    src = bundle_file(env, make_model())
    expected = hub.file_sha256(src)
    register_file("tiny", src, sha256=expected)
    good = outputs(hub.load(f"{METHOD}.tiny"), images)
    cached = hub.weights_cache_dir() / src.name
    flip_last_byte(cached)
    with pytest.raises(hub.HashMismatchError) as info:
        hub.load(f"{METHOD}.tiny")
    assert expected in str(info.value) and hub.file_sha256(cached) in str(info.value)
    # The same corruption without the check loads silently with different weights: the check is what catches it.
    assert not torch.equal(outputs(hub.load(f"{METHOD}.tiny", check_hash=False), images), good)


def test_unknown_sha256_is_pinned_at_download_and_checked_afterwards(env: Path) -> None:
    src = bundle_file(env, make_model())
    register_file("unhashed", src, sha256=None)
    path = hub.resolve_weights(f"{METHOD}.unhashed")
    pin = path.with_name(path.name + ".sha256")
    assert pin.read_text().split()[0] == hub.file_sha256(src)
    assert hub.resolve_weights(f"{METHOD}.unhashed") == path
    flip_last_byte(path)
    with pytest.raises(hub.HashMismatchError, match="pinned"):
        hub.resolve_weights(f"{METHOD}.unhashed")


def test_local_weights_dir_wins_over_the_network(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = bundle_file(env, make_model())
    local = env / "local"
    local.mkdir()
    (local / src.name).write_bytes(src.read_bytes())
    monkeypatch.setenv("ZOO_WEIGHTS_DIR", str(local))
    # The URL does not exist: any download attempt would fail.
    entry = PretrainedEntry(method=METHOD, url=(env / "nowhere" / src.name).as_uri(), sha256=hub.file_sha256(src))
    register_pretrained(f"{METHOD}.local", entry)
    assert hub.resolve_weights(f"{METHOD}.local") == local / src.name
    assert isinstance(hub.load(f"{METHOD}.local"), HubNet)
    assert not (hub.weights_cache_dir() / src.name).exists()


def test_weights_dir_argument_wins_over_env_folder(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = bundle_file(env, make_model())
    first, second = env / "first", env / "second"
    for folder in (first, second):
        folder.mkdir()
        (folder / src.name).write_bytes(src.read_bytes())
    monkeypatch.setenv("ZOO_WEIGHTS_DIR", str(second))
    register_file("tiny", src, sha256=hub.file_sha256(src))
    assert hub.resolve_weights(f"{METHOD}.tiny", weights_dir=first) == first / src.name
    assert hub.resolve_weights(f"{METHOD}.tiny") == second / src.name


def test_local_file_with_wrong_content_is_rejected(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = bundle_file(env, make_model())
    local = env / "local"
    local.mkdir()
    (local / src.name).write_bytes(b"not the weights")
    monkeypatch.setenv("ZOO_WEIGHTS_DIR", str(local))
    register_file("tiny", src, sha256=hub.file_sha256(src))
    with pytest.raises(hub.HashMismatchError, match=str(local / src.name)):
        hub.resolve_weights(f"{METHOD}.tiny")


@pytest.mark.parametrize("variable", ["ZOO_OFFLINE", "HF_HUB_OFFLINE"])
def test_offline_miss_names_file_and_folders_and_fails_at_once(
    env: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    src = bundle_file(env, make_model(), name="offline_weights.safetensors")
    register_file("tiny", src, sha256=hub.file_sha256(src))  # downloadable, were it not for the offline switch
    monkeypatch.setenv(variable, "1")
    extra = env / "mine"
    start = time.monotonic()
    with pytest.raises(hub.WeightsUnavailableError) as info:
        hub.load(f"{METHOD}.tiny", weights_dir=extra)
    assert time.monotonic() - start < 1.0
    message = str(info.value)
    assert "offline_weights.safetensors" in message
    assert str(extra) in message and str(hub.weights_cache_dir()) in message and "ZOO_WEIGHTS_DIR" in message
    assert src.as_uri() in message
    assert not hub.weights_cache_dir().exists() or not any(hub.weights_cache_dir().iterdir())


def test_failed_download_names_file_folders_and_url(env: Path) -> None:
    url = (env / "gone" / "lost.safetensors").as_uri()
    register_pretrained(f"{METHOD}.lost", PretrainedEntry(method=METHOD, url=url, sha256="0" * 64))
    with pytest.raises(hub.WeightsUnavailableError) as info:
        hub.load(f"{METHOD}.lost")
    message = str(info.value)
    assert "lost.safetensors" in message and url in message and str(hub.weights_cache_dir()) in message


def test_entry_without_url_says_no_published_weights(env: Path) -> None:
    register_pretrained(f"{METHOD}.future", PretrainedEntry(method=METHOD))
    with pytest.raises(hub.WeightsUnavailableError, match="no published weights.*zoo fit --config"):
        hub.load(f"{METHOD}.future")


def test_file_of_a_module_resolves_says_nothing_of_training_and_builds_no_model(env: Path) -> None:
    owner = f"zoo.nets.{METHOD}"
    name = f"{owner}.features"
    with pytest.raises(hub.WeightsUnavailableError, match="no published weights") as info:
        hub.resolve_weights(weights.WeightsFile(owner=owner, filename="features.bin"))
    assert "zoo fit" not in str(info.value) and owner in str(info.value)
    src = env / "server" / "features.bin"
    src.parent.mkdir(parents=True)
    src.write_bytes(b"feature extractor weights")
    weights.register_weights(name, weights.WeightsFile(owner=owner, url=src.as_uri(), sha256=hub.file_sha256(src)))
    try:
        assert hub.resolve_weights(name) == hub.weights_cache_dir() / "features.bin"
        assert hub.verification_status(name) == "sha256"
        assert name in weights.list_weights() and name not in zoo.list_pretrained()
        with pytest.raises(ValueError, match="not the weights of a method"):
            hub.load(name)
    finally:
        weights.WEIGHTS.pop(name)


def test_download_weights_returns_and_prints_the_path(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = bundle_file(env, make_model())
    register_file("tiny", src, sha256=hub.file_sha256(src))
    path = hub.download_weights(f"{METHOD}.tiny")
    assert path.is_file() and path.parent == hub.weights_cache_dir()
    assert str(path) in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------------------ bundles


def test_bundle_round_trip_gives_identical_outputs(env: Path, images: torch.Tensor) -> None:
    model = make_model(width=5).eval()
    folder = hub.save_bundle(model, env / "bundle")
    config = json.loads((folder / "config.json").read_text())
    assert config["method"] == METHOD
    assert config["class_path"] == f"{HubNet.__module__}.HubNet"
    assert config["init_args"] == {"channels": 3, "width": 5}
    assert "zoo_version" in config
    with safe_open(str(folder / "model.safetensors"), framework="pt") as f:
        assert json.loads(f.metadata()["zoo_config"])["init_args"] == config["init_args"]
        assert "tied.weight" not in f.keys()  # the alias is stored once
    expected = outputs(model, images)
    for source in (folder, folder / "model.safetensors"):
        loaded = hub.load(source)
        assert isinstance(loaded, HubNet) and not loaded.training
        assert loaded.tied is loaded.out
        torch.testing.assert_close(outputs(loaded, images), expected, rtol=0, atol=0)
    torch.testing.assert_close(outputs(hub.load_bundle(folder), images), expected, rtol=0, atol=0)


def test_bundle_safetensors_file_alone_carries_its_configuration(env: Path, images: torch.Tensor) -> None:
    model = make_model(width=6).eval()
    lone = bundle_file(env, model, name="renamed.safetensors")
    loaded = hub.load_bundle(lone)
    assert loaded.hparams.width == 6
    torch.testing.assert_close(outputs(loaded, images), outputs(model, images), rtol=0, atol=0)


def test_save_bundle_rejects_hyperparameters_that_are_not_json(env: Path) -> None:
    model = make_model()
    model.hparams["transform"] = object()
    with pytest.raises(TypeError, match="'transform'"):
        hub.save_bundle(model, env / "bad")


# -------------------------------------------------------------------------------------------------------- checkpoints


def fit_one_step(model: HubNet, trainer_root: Path) -> L.Trainer:
    trainer = L.Trainer(
        max_steps=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=trainer_root,
    )
    trainer.fit(model, DataLoader(TensorDataset(torch.rand(2, 3, 8, 8) * 2 - 1), batch_size=2))
    return trainer


def test_ckpt_from_lightning_cli_round_trip(env: Path, images: torch.Tensor, monkeypatch: pytest.MonkeyPatch) -> None:
    from lightning.pytorch.cli import LightningCLI

    monkeypatch.setattr(sys, "argv", ["zoo"])  # LightningCLI warns when pytest's own arguments are present
    cli = LightningCLI(
        HubNet,
        subclass_mode_model=True,
        run=False,
        save_config_callback=None,
        seed_everything_default=0,
        args=[
            f"--model={HubNet.__module__}.HubNet",
            "--model.init_args.width=3",
            "--trainer.max_steps=1",
            "--trainer.accelerator=cpu",
            "--trainer.logger=false",
            "--trainer.enable_checkpointing=false",
            "--trainer.enable_progress_bar=false",
            "--trainer.enable_model_summary=false",
            f"--trainer.default_root_dir={env}",
        ],
    )
    cli.trainer.fit(cli.model, DataLoader(TensorDataset(torch.rand(2, 3, 8, 8) * 2 - 1), batch_size=2))
    ckpt = env / "cli.ckpt"
    cli.trainer.save_checkpoint(ckpt)
    assert torch.load(ckpt, weights_only=True)["hyper_parameters"]["_class_path"].endswith("HubNet")
    loaded = hub.load(ckpt)
    assert isinstance(loaded, HubNet) and not loaded.training and loaded.hparams.width == 3
    torch.testing.assert_close(outputs(loaded, images), outputs(cli.model.eval(), images), rtol=0, atol=0)


def test_ckpt_class_from_method_hyperparameter_or_argument(env: Path, images: torch.Tensor) -> None:
    model = make_model(width=2)
    trainer = fit_one_step(model, env)
    plain = env / "plain.ckpt"
    trainer.save_checkpoint(plain)
    with pytest.raises(ValueError, match="method="):
        hub.load(plain)
    expected = outputs(model.eval(), images)
    torch.testing.assert_close(outputs(hub.load(plain, method=METHOD), images), expected, rtol=0, atol=0)

    ckpt = torch.load(plain, weights_only=True)
    ckpt["hyper_parameters"]["method"] = METHOD
    tagged = env / "tagged.ckpt"
    torch.save(ckpt, tagged)
    loaded = hub.load(tagged)
    assert loaded.hparams.width == 2
    torch.testing.assert_close(outputs(loaded, images), expected, rtol=0, atol=0)


CALLS: list[str] = []


def record_call(value: str) -> str:
    CALLS.append(value)
    return value


class Payload:
    """Unpickling this object calls ``record_call``: a harmless stand-in for arbitrary code in a weights file."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return record_call, ("executed",)


def test_ckpt_with_pickled_object_is_refused_without_running_it(env: Path) -> None:
    path = env / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {}, "pytorch-lightning_version": "2.6", "x": Payload()}, path)
    CALLS.clear()
    with pytest.raises(pickle.UnpicklingError, match="refusing to load .*evil.ckpt"):
        hub.load(path)
    with pytest.raises(pickle.UnpicklingError):
        hub.load(path, method=METHOD, net="G")
    assert CALLS == []
    torch.load(path, weights_only=False)  # the payload is live: a plain unpickle would run it
    assert CALLS == ["executed"]


# ----------------------------------------------------------------------------------------------------- official files


def test_official_entry_loads_through_load_official_weights(env: Path, images: torch.Tensor) -> None:
    source = make_model(seed=1, width=3).eval()
    path = env / "server" / "official_G.pth"
    path.parent.mkdir()
    torch.save(official_state_dict(source), path)
    register_file("official", path, sha256=hub.file_sha256(path), init_args={"width": 3}, format="official",
                  official_net="G_A")
    loaded = hub.load(f"{METHOD}.official")
    assert loaded.official_nets == ["G_A"] and not loaded.training
    torch.testing.assert_close(outputs(loaded, images), outputs(source, images), rtol=0, atol=0)


def test_official_checkpoint_path_with_method_and_net(env: Path, images: torch.Tensor) -> None:
    source = make_model(seed=2).eval()
    path = env / "latest_net_G.pth"
    torch.save(official_state_dict(source), path)
    with pytest.raises(ValueError, match="method= and net="):
        hub.load(path)
    loaded = hub.load(path, method=METHOD, net="G")
    assert loaded.official_nets == ["G"]
    torch.testing.assert_close(outputs(loaded, images), outputs(source, images), rtol=0, atol=0)


# -------------------------------------------------------------------------------------------------- names and create


def test_bare_method_name_points_to_create_and_tags(env: Path) -> None:
    register_pretrained(f"{METHOD}.tiny", PretrainedEntry(method=METHOD))
    with pytest.raises(ValueError, match=rf"zoo.create\('{METHOD}'\).*{METHOD}.tiny"):
        hub.load(METHOD)


def test_unknown_name_lists_close_matches(env: Path) -> None:
    register_pretrained(f"{METHOD}.tiny", PretrainedEntry(method=METHOD))
    with pytest.raises(hub.UnknownModelError, match=f"{METHOD}.tiny"):
        hub.load(f"{METHOD}.tyni")
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        hub.load(env / "missing.ckpt")


def test_create_builds_random_models_from_methods_and_entries(env: Path) -> None:
    register_pretrained(f"{METHOD}.wide", PretrainedEntry(method=METHOD, init_args={"width": 7}))
    assert hub.create(METHOD).conv.out_channels == 4
    assert hub.create(METHOD, width=2).conv.out_channels == 2
    assert hub.create(f"{METHOD}.wide").conv.out_channels == 7
    assert hub.create(f"{METHOD}.wide", width=9).conv.out_channels == 9
    with pytest.raises(hub.UnknownModelError):
        hub.create("_no_such_method")


# ----------------------------------------------------------------------------------------------------- weight records


def test_method_weights_are_owned_by_their_method() -> None:
    entry = PretrainedEntry(method=METHOD, url="file:///tmp/w.safetensors")
    assert isinstance(entry, weights.WeightsFile) and entry.owner == METHOD
    with pytest.raises(ValueError, match="cannot be owned"):
        PretrainedEntry(method=METHOD, owner="zoo.losses.perceptual")
    with pytest.raises(TypeError, match="register_weights"):
        register_pretrained(f"{METHOD}.plain", weights.WeightsFile(owner=METHOD))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"'zoo\.nets\.x\.<tag>'"):
        weights.register_weights("other.tag", weights.WeightsFile(owner="zoo.nets.x"))


def test_files_of_networks_and_losses_name_their_module_as_owner() -> None:
    from zoo.losses.perceptual import VGG16_TORCHVISION_WEIGHTS

    assert VGG16_TORCHVISION_WEIGHTS.owner == "zoo.losses.perceptual"
    assert not isinstance(VGG16_TORCHVISION_WEIGHTS, PretrainedEntry)


def test_hub_names_are_those_of_the_weights_module() -> None:
    for name in ("resolve_weights", "file_sha256", "verify_cached", "download_weights", "verification_status",
                 "zoo_home", "download", "cached_weights_path", "HashMismatchError", "WeightsUnavailableError"):
        assert getattr(hub, name) is getattr(weights, name), name


def test_registry_lookups_import_the_methods_in_a_fresh_interpreter() -> None:
    code = ("import sys; from zoo.registry import list_models, list_pretrained; "
            "assert 'zoo.methods' not in sys.modules; "
            "assert 'cyclegan' in list_models() and 'cyclegan.horse2zebra' in list_pretrained(); "
            "from zoo.losses.perceptual import resolve_vgg16_weights")
    repo = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
