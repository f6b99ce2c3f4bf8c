"""Every weight file is verified: bundle digests in ``config.json``, ``zoo list --pretrained`` verification
statuses, and ``zoo download --verify``."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from PIL import Image

import zoo
from zoo import hub, weights
from zoo.cli import main
from zoo.methods import CycleGAN
from zoo.registry import PRETRAINED, list_pretrained


def _bundle(tmp_path: Path) -> Path:
    return hub.save_bundle(CycleGAN(ngf=2, ndf=2, generator="resnet_2blocks"), tmp_path / "bundle")


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))


def test_save_bundle_records_the_weights_digest(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path)
    config = json.loads((bundle / hub.BUNDLE_CONFIG).read_text())
    assert config["weights_sha256"] == hub.file_sha256(bundle / hub.BUNDLE_WEIGHTS)
    assert isinstance(zoo.load(bundle), CycleGAN)


def test_flipped_byte_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = _bundle(tmp_path)
    weights = bundle / hub.BUNDLE_WEIGHTS
    expected = json.loads((bundle / hub.BUNDLE_CONFIG).read_text())["weights_sha256"]
    _flip_last_byte(weights)
    actual = hub.file_sha256(weights)
    for load in (zoo.load, hub.load_bundle):
        with pytest.raises(hub.WeightsDigestError) as info:
            load(bundle)
        message = str(info.value)
        assert "\n" not in message and expected in message and actual in message and str(weights) in message
    assert isinstance(info.value, ValueError) and isinstance(info.value, hub.HashMismatchError)

    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(inputs / "a.png")
    with pytest.raises(SystemExit) as exit_info:
        main(["translate", "--model", str(bundle), "--input", str(inputs), "--output", str(tmp_path / "out"),
              "--no-progress"])
    assert exit_info.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("zoo: error:")
    assert expected in lines[0] and actual in lines[0]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_check_hash_false_skips_the_bundle_digest(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path)
    config_file = bundle / hub.BUNDLE_CONFIG
    config = json.loads(config_file.read_text())
    config_file.write_text(json.dumps({**config, "weights_sha256": "0" * 64}))
    with pytest.raises(hub.WeightsDigestError):
        zoo.load(bundle)
    assert isinstance(zoo.load(bundle, check_hash=False), CycleGAN)


def test_bundle_without_digest_still_loads(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path)
    config_file = bundle / hub.BUNDLE_CONFIG
    config = json.loads(config_file.read_text())
    del config["weights_sha256"]
    config_file.write_text(json.dumps(config))
    assert isinstance(zoo.load(bundle), CycleGAN)
    assert isinstance(hub.load_bundle(bundle / hub.BUNDLE_WEIGHTS), CycleGAN)


def _three_entries(monkeypatch: pytest.MonkeyPatch) -> tuple[str, str, str]:
    """Three existing entries: one given a registered digest, one pinned in the cache, one with neither."""
    digested, pinned, plain = [n for n in list_pretrained() if hub.cached_weights_path(n) is not None][:3]
    monkeypatch.setitem(PRETRAINED, digested, dataclasses.replace(PRETRAINED[digested], sha256="a" * 64))
    path = hub.cached_weights_path(pinned)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"pinned weights")
    weights.write_pin(path, hub.file_sha256(path))
    return digested, pinned, plain


def test_list_pretrained_shows_verification_status(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    digested, pinned, plain = _three_entries(monkeypatch)
    assert main(["list", "--pretrained"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "verification" in lines[1]
    rows = {line.split()[0]: line for line in lines[2:] if line.strip()}
    assert re.search(r"\ssha256\s", rows[digested])
    assert "pinned, unverified" in rows[pinned]
    assert re.search(r"\sunverified(\s|$)", rows[plain]) and "pinned" not in rows[plain]
    assert hub.verification_status(plain) == "unverified"


def test_download_verify_reports_ok_and_mismatch(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    digested, pinned, plain = _three_entries(monkeypatch)
    good = hub.cached_weights_path(digested)
    good.write_bytes(b"registered weights")
    monkeypatch.setitem(PRETRAINED, digested,
                        dataclasses.replace(PRETRAINED[digested], sha256=hub.file_sha256(good)))

    assert main(["download", "--verify"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines() if line.strip()}
    assert rows == {digested: "ok", pinned: "pinned-unverified"}

    assert main(["download", "--verify", plain]) == 0
    assert capsys.readouterr().out.split()[1] == "missing"

    hub.cached_weights_path(pinned).write_bytes(b"replaced weights")
    with pytest.raises(SystemExit) as exit_info:
        main(["download", "--verify"])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    rows = {line.split()[0]: line.split()[1] for line in captured.out.splitlines() if line.strip()}
    assert rows == {digested: "ok", pinned: "MISMATCH"}
    errors = [line for line in captured.err.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("zoo: error:") and pinned in errors[0]


def test_download_verify_unknown_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["download", "--verify", "cyclegan.no_such_weights"])
    assert exit_info.value.code == 2
    assert "cyclegan.no_such_weights" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- published prefixes


def test_digest_matches_full_digests_and_published_prefixes():
    digest = "6726825d" + "0" * 56
    assert weights.digest_matches(digest, digest) and weights.digest_matches(digest, digest.upper())
    assert weights.digest_matches(digest, "6726825D") and weights.digest_matches(digest, digest[:20])
    assert not weights.digest_matches(digest, "6726825e")
    assert not weights.digest_matches(digest, "1" + digest[1:])
    for too_short in ("6726825", "", "abc"):
        with pytest.raises(ValueError, match="at least 8 hex digits"):
            weights.digest_matches(digest, too_short)


def test_verify_file_with_a_prefix(tmp_path: Path) -> None:
    path = tmp_path / "weights.pth"
    path.write_bytes(b"published weights")
    actual = weights.file_sha256(path)
    weights.verify_file(path, actual[:8], pin_if_unknown=False)
    weights.verify_file(path, actual[:8].upper(), pin_if_unknown=False)
    wrong = ("0" if actual[0] != "0" else "1") + actual[1:8]
    with pytest.raises(weights.HashMismatchError) as info:
        weights.verify_file(path, wrong, pin_if_unknown=False)
    assert wrong in str(info.value) and actual in str(info.value)
    with pytest.raises(ValueError, match="at least 8 hex digits"):
        weights.verify_file(path, actual[:7], pin_if_unknown=False)
    assert not weights.pin_path(path).exists()


def test_download_and_resolve_with_a_prefix_digest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "published" / "net-1234abcd.pth"
    source.parent.mkdir()
    source.write_bytes(b"the published file")
    prefix = weights.file_sha256(source)[:8]
    got = weights.download(source.as_uri(), tmp_path / "copy.pth", sha256=prefix, progress=False)
    assert got.read_bytes() == source.read_bytes()
    with pytest.raises(weights.HashMismatchError, match="Nothing was written"):
        weights.download(source.as_uri(), tmp_path / "bad.pth", sha256="0" * 8 if prefix != "0" * 8 else "1" * 8,
                         progress=False)
    assert not (tmp_path / "bad.pth").exists()

    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ZOO_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    record = weights.WeightsFile(owner="tests", url=source.as_uri(), sha256=prefix)
    path = weights.resolve_weights(record, progress=False)
    assert path == tmp_path / "home" / "weights" / source.name and path.read_bytes() == source.read_bytes()
    assert not weights.pin_path(path).exists()  # a registered digest, even a prefix, needs no pin
    assert weights.resolve_weights(record, progress=False) == path  # the cached copy passes the prefix check


def test_verify_cached_accepts_a_prefix_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    name = next(n for n in list_pretrained() if hub.cached_weights_path(n) is not None)
    path = hub.cached_weights_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"weights with a published prefix")
    prefix = hub.file_sha256(path)[:8]
    monkeypatch.setitem(PRETRAINED, name, dataclasses.replace(PRETRAINED[name], sha256=prefix))
    assert weights.verify_cached([name]) == [(name, path, "ok")]
    path.write_bytes(b"replaced")
    assert weights.verify_cached([name]) == [(name, path, "MISMATCH")]
