"""``zoo publish`` (:mod:`zoo.publish`) and ``hf://`` addresses (:mod:`zoo.hf`), without the network.

One real ``zoo fit`` run (one iteration of the tiny CycleGAN, in a subprocess) is published through the command line
(``zoo.cli.main``, without an upload: the command cannot take a fake Hub) and through :func:`zoo.publish.publish` with a
fake Hub API that copies the bundle into a folder laid out
like a Hub repository. That folder then fills a Hugging Face cache built the documented way
(``models--{owner}--{repo}/snapshots/<commit>/...`` plus ``refs/main``), read with ``HF_HUB_OFFLINE`` on, which is how
``hf://`` loading is tested: huggingface_hub serves cached files offline and never opens a connection.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

import zoo.hub
from zoo.cli import main
from zoo.hf import download_hf_bundle, parse_hf_url, resolve_hf_weights
from zoo.publish import DEFAULT_LICENSE, UploadError, publish
from zoo.weights import WeightsUnavailableError, file_sha256

TINY_CYCLEGAN = Path(__file__).resolve().parents[1] / "zoo" / "configs" / "tiny" / "cyclegan.yaml"
NAME = "cyclegan.tiny_test"
REPO_ID = "me/zoo-weights"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _zoo(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """``python -m zoo ARGS`` offline, with its own ZOO_HOME; fails the test with the output on a non-zero exit."""
    env = {**os.environ, "ZOO_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore",
           "ZOO_HOME": str(cwd / "zoo_home")}
    result = subprocess.run([sys.executable, "-m", "zoo", *args], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    """A run folder of ``zoo fit``: one iteration of the tiny CycleGAN, no validation."""
    root = tmp_path_factory.mktemp("fit")
    _zoo(["fit", "--config", str(TINY_CYCLEGAN), "--trainer.max_steps=1", f"--trainer.default_root_dir={root}",
          "--trainer.limit_val_batches=0", "--trainer.enable_progress_bar=false"], cwd=root)
    (last,) = root.glob("*/version_*/checkpoints/last.ckpt")
    return last.parent.parent


class FakeHubApi:
    """Stands in for ``huggingface_hub.HfApi``: "uploads" copy the folder into ``<root>/<repo_id>/<path_in_repo>``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def create_repo(self, repo_id: str, **kwargs: Any) -> str:
        self.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))
        (self.root / repo_id).mkdir(parents=True, exist_ok=True)
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, *, folder_path: str, repo_id: str, path_in_repo: str, **kwargs: Any) -> Any:
        self.calls.append(("upload_folder", {"folder_path": folder_path, "repo_id": repo_id,
                                             "path_in_repo": path_in_repo, **kwargs}))
        shutil.copytree(folder_path, self.root / repo_id / path_in_repo, dirs_exist_ok=True)
        return type("CommitInfo", (), {"oid": COMMIT})()


@pytest.fixture(scope="module")
def uploaded(run_folder, tmp_path_factory) -> tuple[Any, FakeHubApi]:
    """The run published in-process with ``repo_id`` and the fake Hub."""
    root = tmp_path_factory.mktemp("publish")
    api = FakeHubApi(root / "hub")
    result = publish(run_folder, name=NAME, output_dir=root / "bundle", repo_id=REPO_ID, hub_api=api,
                     license="CC-BY-4.0", card_metrics={"a2b/fid": 41.5})
    return result, api


def _same_outputs(first: torch.nn.Module, second: torch.nn.Module) -> None:
    images = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(first.translate(images), second.translate(images), rtol=0, atol=0)


# --------------------------------------------------------------------------------------------------- zoo publish


def test_the_command_writes_a_bundle_whose_card_and_checksums_match_and_that_loads_like_the_checkpoint(
        run_folder, tmp_path, capsys):
    # In-process: `python -m zoo` already runs as a subprocess for the fit, and a second interpreter costs ~10 s.
    assert main(["publish", str(run_folder), "--name", NAME, "--output", str(tmp_path / "pub"), "--metric",
                 "a2b/fid=12.5"]) == 0
    printed = capsys.readouterr().out
    folder = tmp_path / "pub"
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "SHA256SUMS", "config.json", "model.safetensors",
                                                        "training_config.yaml"]
    digest = file_sha256(folder / "model.safetensors")
    assert digest in printed and str(folder) in printed and "licence is unknown" in printed
    card = (folder / "README.md").read_text()
    assert digest in card and f"{(folder / 'model.safetensors').stat().st_size:,} bytes" in card
    assert "zoo.methods.cyclegan.CycleGAN" in card and DEFAULT_LICENSE in card and "| a2b/fid | 12.50 | given |" in card
    assert "zoo.data.UnpairedDataModule" in card and f'zoo.load("{folder}")' in card
    assert str(run_folder) not in card  # no local paths of the run on a card that may be public
    assert (folder / "training_config.yaml").read_text() == (run_folder / "config.yaml").read_text()
    sums = dict(reversed(line.split("  ")) for line in (folder / "SHA256SUMS").read_text().splitlines())
    assert set(sums) == {"README.md", "config.json", "model.safetensors", "training_config.yaml"}
    assert all(file_sha256(folder / name) == value for name, value in sums.items())
    _same_outputs(zoo.load(str(folder)), zoo.load(str(run_folder / "checkpoints" / "last.ckpt")))


def test_the_upload_goes_to_a_folder_of_the_name_in_the_repository(uploaded):
    result, api = uploaded
    assert [call for call, _ in api.calls] == ["create_repo", "upload_folder"]
    assert api.calls[0][1]["repo_id"] == REPO_ID and api.calls[0][1]["exist_ok"] is True
    assert api.calls[1][1]["path_in_repo"] == NAME and api.calls[1][1]["folder_path"] == str(result.folder)
    remote = api.root / REPO_ID / NAME
    assert file_sha256(remote / "model.safetensors") == result.sha256
    assert result.url == f"hf://{REPO_ID}/{NAME}" and result.commit == COMMIT
    card = (remote / "README.md").read_text()
    assert f'zoo.load("hf://{REPO_ID}/{NAME}")' in card and "CC-BY-4.0" in card
    snippet = result.registry_snippet()
    assert f'url="hf://{REPO_ID}@{COMMIT}/{NAME}/model.safetensors"' in snippet and result.sha256 in snippet


def test_metrics_of_zoo_evaluate_on_the_checkpoint_go_on_the_card_and_those_of_other_weights_do_not(
        run_folder, tmp_path):
    run = shutil.copytree(run_folder, tmp_path / "run")
    checkpoint = run / "checkpoints" / "last.ckpt"
    report = run / "evaluation" / "last" / "metrics.json"
    report.parent.mkdir(parents=True)
    result = {"model": {"weights_sha256": file_sha256(checkpoint)}, "metrics": {"a2b": {"fid": 80.25, "kid": 0.05}},
              "data": {"test_images": 4}, "settings": {"max_images": None, "seed": 0}, "protocol": {}}
    report.write_text(json.dumps(result))
    published = publish(run, name=NAME, output_dir=tmp_path / "a", card_metrics={"a2b/kid": 0.04, "b2a/fid": 90})
    assert published.metrics == {"a2b/fid": 80.25, "a2b/kid": 0.04, "b2a/fid": 90}
    card = published.card.read_text()
    assert "| a2b/fid | 80.25 | zoo evaluate |" in card and "| a2b/kid | 0.0400 | given |" in card
    assert "test images: 4" in card

    report.write_text(json.dumps({**result, "model": {"weights_sha256": "0" * 64}}))
    with pytest.warns(UserWarning, match="left out of the card"):
        other = publish(run, name=NAME, output_dir=tmp_path / "b")
    assert other.metrics == {} and "None recorded" in other.card.read_text()
    with pytest.raises(ValueError, match="measured weights with sha256 0000"):
        publish(run, name=NAME, output_dir=tmp_path / "c", metrics_file=report)


@pytest.mark.parametrize("name, message", [
    ("cyclegan", "must look like <method>.<tag>"),
    ("cyclegan.Horse2Zebra", "must look like <method>.<tag>"),
    ("cyclegan.horse-zebra", "must look like <method>.<tag>"),
    ("nosuchmethod.tag", "not a registered method"),
    ("cut.tiny_test", "holds a cyclegan model"),
])
def test_a_bad_name_is_a_clear_error(run_folder, tmp_path, name, message):
    with pytest.raises(ValueError, match=message):
        publish(run_folder, name=name, output_dir=tmp_path / "out")


def test_a_folder_with_other_files_is_refused_so_that_nothing_unrelated_is_uploaded(run_folder, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("private")
    with pytest.raises(ValueError, match=r"notes\.txt"):
        publish(run_folder, name=NAME, output_dir=tmp_path / "out")


def test_offline_without_an_api_the_upload_is_refused_after_the_bundle_is_written(run_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    with pytest.raises(UploadError, match="uploads are off") as caught:
        publish(run_folder, name=NAME, output_dir=tmp_path / "out", repo_id=REPO_ID)
    assert str(tmp_path / "out") in str(caught.value) and f"hf upload {REPO_ID}" in str(caught.value)
    assert (tmp_path / "out" / "model.safetensors").is_file() and (tmp_path / "out" / "SHA256SUMS").is_file()


def test_a_published_bundle_folder_can_be_published_again(uploaded, tmp_path):
    result, _ = uploaded
    again = publish(result.folder, name=NAME, output_dir=tmp_path / "again")
    assert (again.folder / "training_config.yaml").is_file()
    _same_outputs(zoo.load(str(again.folder)), zoo.load(str(result.folder)))


# --------------------------------------------------------------------------------------------------------- hf://


@pytest.fixture
def hf_cache(uploaded, tmp_path, monkeypatch) -> Path:
    """A Hugging Face cache holding the fake Hub's repository at commit COMMIT (``refs/main``), read offline."""
    import huggingface_hub.constants

    _, api = uploaded
    cache = tmp_path / "hf_cache"
    storage = cache / "models--me--zoo-weights"
    shutil.copytree(api.root / REPO_ID, storage / "snapshots" / COMMIT)
    (storage / "refs").mkdir()
    (storage / "refs" / "main").write_text(COMMIT)
    # huggingface_hub reads both variables when it is imported: patch the values it uses, and the environment.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def test_an_hf_bundle_address_gives_a_cached_folder_that_loads(uploaded, hf_cache):
    result, _ = uploaded
    folder = download_hf_bundle(f"hf://{REPO_ID}/{NAME}")
    assert folder == hf_cache.resolve() / "models--me--zoo-weights" / "snapshots" / COMMIT / NAME
    _same_outputs(zoo.hub.load(folder), zoo.load(str(result.folder)))
    assert download_hf_bundle(f"hf://{REPO_ID}@{COMMIT}/{NAME}") == folder


def test_an_hf_weights_address_gives_the_cached_file(uploaded, hf_cache):
    result, _ = uploaded
    path = resolve_hf_weights(f"hf://{REPO_ID}/{NAME}/model.safetensors", filename=f"{NAME}.safetensors")
    assert path.name == "model.safetensors" and file_sha256(path) == result.sha256


@pytest.mark.parametrize("url", [f"hf://me/other-repo/{NAME}/model.safetensors",
                                 f"hf://{REPO_ID}/{NAME}/missing.safetensors",
                                 f"hf://{REPO_ID}@v2/{NAME}/model.safetensors"])
def test_weights_missing_offline_are_unavailable_with_what_to_do(hf_cache, url):
    with pytest.raises(WeightsUnavailableError, match="not in the Hugging Face cache") as caught:
        resolve_hf_weights(url, filename="tiny.safetensors")
    assert "tiny.safetensors" in str(caught.value) and "hf download" in str(caught.value)


@pytest.mark.parametrize("url, message", [
    ("https://huggingface.co/me/repo", "not an hf:// address"),
    ("hf://me", "does not name a repository"),
    ("hf://me/", "does not name a repository"),
    ("hf://-me/repo/file", "not a valid Hugging Face name"),
    ("hf://me/re--po/file", "not a valid Hugging Face name"),
    ("hf://me/repo@/file", "revision after '@' is empty"),
    ("hf://me/repo/../secret", "must be relative"),
    ("hf://me/repo/a//b", "must be relative"),
    ("hf://me/repo/file?x=1", "no query"),
])
def test_a_malformed_address_is_a_value_error(url, message):
    with pytest.raises(ValueError, match=message):
        parse_hf_url(url)


def test_addresses_split_into_repository_revision_and_path():
    assert parse_hf_url("hf://me/repo/a/b.safetensors") == ("me/repo", None, "a/b.safetensors")
    assert parse_hf_url("hf://me/repo@refs%2Fpr%2F1/a/") == ("me/repo", "refs/pr/1", "a")
    assert parse_hf_url("hf://me/repo") == ("me/repo", None, "")
    with pytest.raises(ValueError, match="names a repository, not a file"):
        resolve_hf_weights("hf://me/repo", filename="x")


def test_zoo_hf_imports_no_models():
    code = "import sys, zoo.hf; print(sorted(m for m in sys.modules if m.startswith(('zoo.hub', 'zoo.registry', " \
           "'zoo.methods', 'huggingface_hub'))))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
