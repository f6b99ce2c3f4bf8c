"""``zoo translate`` on whole datasets: annotations beside their images, resumption, style policies, precision."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
import torch
from PIL import Image

from tests.methods.tiny_configs import build_tiny_model
from zoo.data.dataset_files import plan_dataset
from zoo.hub import save_bundle
from zoo.translate import translate_images
from zoo.utils.manifest import MANIFEST_NAME
from zoo.utils.style_policy import style_codes, style_key


def _image(path: Path, height: int = 12, width: int = 16, seed: int = 0, mode: str = "RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shape = (height, width, 3) if mode == "RGB" else (height, width)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(path)
    return path


def _text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image)


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


@pytest.fixture
def dataset(tmp_path) -> Path:
    """A synthetic driving set: frames in two sequence folders with boxes beside them, label and instance maps in
    parallel folders, Cityscapes-style names in a second split, and a dataset-level class list."""
    root = tmp_path / "sim"
    for seq, seed in (("seq_a", 0), ("seq_b", 10)):
        for i in range(3):
            _image(root / "images" / seq / f"{i:04d}.png", seed=seed + i)
            _text(root / "images" / seq / f"{i:04d}.json", json.dumps({"boxes": [[i, 1, 5, 6]]}))
            _image(root / "labels" / seq / f"{i:04d}.png", seed=seed + i, mode="L")
            _image(root / "images" / seq / f"{i:04d}_instanceIds.png", seed=seed + i, mode="L")
    _image(root / "leftImg8bit" / "val" / "x" / "x_000001_leftImg8bit.png", seed=20)
    _image(root / "gtFine" / "val" / "x" / "x_000001_gtFine_labelIds.png", seed=20, mode="L")
    _text(root / "gtFine" / "val" / "x" / "x_000001_gtFine_polygons.json", "{}")
    _text(root / "classes.txt", "road\ncar\n")
    return root


@pytest.fixture(scope="module")
def cyclegan() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_tiny_model("cyclegan")[0]


def test_plan_matches_annotations_to_their_images(dataset):
    plan = plan_dataset(dataset)
    sources = {s.relative.as_posix(): s for s in plan.sources}
    assert sorted(sources) == [*(f"images/{seq}/{i:04d}.png" for seq in ("seq_a", "seq_b") for i in range(3)),
                               "leftImg8bit/val/x/x_000001_leftImg8bit.png"]
    frame = sources["images/seq_b/0001.png"]
    assert frame.sequence == "images/seq_b"
    assert sorted(a.as_posix() for a in frame.annotations) == [
        "images/seq_b/0001.json", "images/seq_b/0001_instanceIds.png", "labels/seq_b/0001.png"]
    city = sources["leftImg8bit/val/x/x_000001_leftImg8bit.png"]
    assert sorted(a.as_posix() for a in city.annotations) == [
        "gtFine/val/x/x_000001_gtFine_labelIds.png", "gtFine/val/x/x_000001_gtFine_polygons.json"]
    assert plan.unattached == [PurePosixPath("classes.txt")]
    only = plan_dataset(dataset, images=["leftImg8bit/**"])
    assert [s.relative.as_posix() for s in only.sources] == ["leftImg8bit/val/x/x_000001_leftImg8bit.png"]


def test_translated_dataset_is_a_drop_in_replacement(dataset, tmp_path):
    """The real command on a dataset: every image translated, every other file copied byte for byte."""
    torch.manual_seed(0)
    bundle = save_bundle(build_tiny_model("cyclegan")[0], tmp_path / "bundle")
    out = tmp_path / "real"
    result = subprocess.run([sys.executable, "-m", "zoo", "translate", "--model", str(bundle), "--input", str(dataset),
                             "--output", str(out), "--device", "cpu", "--batch-size", "2"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "translated 7 images" in result.stdout and "images/s" in result.stdout
    assert _files(out) == sorted([*_files(dataset), MANIFEST_NAME])
    plan = plan_dataset(dataset)
    for source in plan.sources:
        translated = _pixels(out / source.relative)
        assert translated.shape == _pixels(source.path).shape and not np.array_equal(translated, _pixels(source.path))
        for annotation in source.annotations:
            assert (out / annotation).read_bytes() == (dataset / annotation).read_bytes()
    assert (out / "classes.txt").read_text() == "road\ncar\n"
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert len(manifest["done"]) == 7 and not manifest["unreadable"]


def test_annotations_can_be_hard_linked_and_globs_chosen(dataset, cyclegan, tmp_path):
    report = translate_images(cyclegan, dataset, tmp_path / "out", device="cpu", progress=False, link_annotations=True,
                              images=["leftImg8bit/**"], annotations=["gtFine/**"])
    assert [p.relative_to(tmp_path / "out").as_posix() for p in report.outputs] == [
        "leftImg8bit/val/x/x_000001_leftImg8bit.png"]
    label = "gtFine/val/x/x_000001_gtFine_labelIds.png"
    assert os.path.samefile(tmp_path / "out" / label, dataset / label)
    # the frames under images/ were not asked for: they are copied unchanged, not translated
    assert (tmp_path / "out" / "images/seq_a/0000.png").read_bytes() == (dataset / "images/seq_a/0000.png").read_bytes()


def test_an_unreadable_image_is_skipped_without_its_annotations(dataset, cyclegan, tmp_path):
    (dataset / "images" / "seq_a" / "0001.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    report = translate_images(cyclegan, dataset, tmp_path / "out", device="cpu", progress=False)
    assert list(report.unreadable) == [dataset / "images" / "seq_a" / "0001.png"]
    assert not (tmp_path / "out" / "images/seq_a/0001.json").exists(), "no label without its image"
    assert not (tmp_path / "out" / "labels/seq_a/0001.png").exists()
    assert (tmp_path / "out" / "labels/seq_a/0002.png").exists()
    manifest = json.loads((tmp_path / "out" / MANIFEST_NAME).read_text())
    assert list(manifest["unreadable"]) == ["images/seq_a/0001.png"] and len(manifest["done"]) == 6


class _Crash(Exception):
    pass


def test_resume_after_a_crash_finishes_the_rest_and_equals_one_run(dataset, cyclegan, tmp_path, monkeypatch):
    whole = translate_images(cyclegan, dataset, tmp_path / "whole", device="cpu", progress=False, batch_size=2)

    calls = {"n": 0}
    translate = type(cyclegan).translate

    def crash_on_third_batch(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise _Crash
        return translate(self, *args, **kwargs)

    monkeypatch.setattr(type(cyclegan), "translate", crash_on_third_batch)
    with pytest.raises(_Crash):
        translate_images(cyclegan, dataset, tmp_path / "out", device="cpu", progress=False, batch_size=2)
    monkeypatch.setattr(type(cyclegan), "translate", translate)
    done = json.loads((tmp_path / "out" / MANIFEST_NAME).read_text())["done"]
    assert len(done) == 4, "the two finished batches are recorded"
    assert not [p for p in (tmp_path / "out").rglob("*") if ".zoo-partial" in p.name]

    resumed = translate_images(cyclegan, dataset, tmp_path / "out", device="cpu", progress=False, batch_size=2)
    assert len(resumed.resumed) == 4 and resumed.frames == 3
    assert resumed.outputs == [tmp_path / "out" / p.relative_to(tmp_path / "whole") for p in whole.outputs]
    for a, b in zip(whole.outputs, resumed.outputs, strict=True):
        assert np.array_equal(_pixels(a), _pixels(b))
    assert _files(tmp_path / "out") == _files(tmp_path / "whole")

    # a finished output that went missing or was cut short is translated again; other settings are refused
    (tmp_path / "out" / "images/seq_a/0000.png").unlink()
    again = translate_images(cyclegan, dataset, tmp_path / "out", device="cpu", progress=False)
    assert again.frames == 1 and len(again.resumed) == 6
    with pytest.raises(ValueError, match="other settings.*--overwrite"):
        translate_images(cyclegan, dataset, tmp_path / "out", device="cpu", progress=False, direction="b2a")
    assert translate_images(cyclegan, dataset, tmp_path / "out", device="cpu", progress=False, direction="b2a",
                            overwrite=True).frames == 7


def test_a_killed_command_leaves_no_partial_file_and_resumes(tmp_path):
    """SIGKILL the real command mid-run: every file under an output's name is whole; the rerun finishes the rest."""
    torch.manual_seed(0)
    bundle = save_bundle(build_tiny_model("cyclegan")[0], tmp_path / "bundle")
    for i in range(150):
        _image(tmp_path / "in" / f"{i:04d}.png", 64, 64, seed=i)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "zoo", "translate", "--model", str(bundle), "--input", str(tmp_path / "in"),
               "--output", str(out), "--device", "cpu", "--batch-size", "1", "--num-workers", "0", "--no-progress"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out / MANIFEST_NAME).exists():
        time.sleep(0.05)
    time.sleep(0.3)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    # a hidden .NAME.<hex>.zoo-partial.png the kill interrupted stays until the rerun deletes it (pathlib's glob lists
    # hidden files): only the outputs under their own names must be whole
    finished = [p for p in out.glob("*.png") if ".zoo-partial" not in p.name]
    assert 0 < len(finished) < 150, "the kill must land mid-run"
    for path in finished:
        assert _pixels(path).shape == (64, 64, 3)  # decodes whole

    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "already translated" in result.stdout
    assert len(list(out.glob("*.png"))) == 150
    assert not [p for p in out.iterdir() if ".zoo-partial" in p.name]


@pytest.mark.parametrize("name", ["munit", "drit"])
def test_style_policies_are_deterministic_and_change_style_where_they_say(name, dataset, tmp_path):
    torch.manual_seed(0)
    model = build_tiny_model(name)[0]
    frames = [f"images/{seq}/{i:04d}.png" for seq in ("seq_a", "seq_b") for i in range(3)]

    def run(policy: str, folder: str, batch_size: int) -> dict[str, np.ndarray]:
        translate_images(model, dataset, tmp_path / folder, device="cpu", progress=False, style_policy=policy,
                         batch_size=batch_size, seed=3, images=["images/**"])
        return {f: _pixels(tmp_path / folder / f) for f in frames}

    for policy in ("per-dataset", "per-sequence", "per-image"):
        first, second = run(policy, f"{policy}-1", 1), run(policy, f"{policy}-4", 4)
        for f in frames:  # batched convolutions may round differently, by one level at most
            assert np.abs(first[f].astype(int) - second[f].astype(int)).max() <= 1, "batching changed the styles"
    # the codes each image got: the policy's key decides, and translate with that code gives the file
    from zoo.data.io import read_image
    from zoo.utils.tiling import translate_any_size

    for policy in ("per-dataset", "per-sequence", "per-image"):
        keys = [style_key(policy, image=f, sequence=str(PurePosixPath(f).parent)) for f in frames]  # type: ignore
        codes = style_codes(model.style_dim, keys, seed=3)[:, 0]
        images = torch.stack([read_image(dataset / f) for f in frames])
        expected = translate_any_size(model, images, style=codes)
        got = torch.stack([torch.from_numpy(_pixels(tmp_path / f"{policy}-1" / f)).permute(2, 0, 1) for f in frames])
        assert (got.float() - (expected * 255).round()).abs().max() <= 1
        distinct = {tuple(code.tolist()) for code in codes}
        assert len(distinct) == {"per-dataset": 1, "per-sequence": 2, "per-image": 6}[policy]


def test_exemplar_folder_is_chosen_per_sequence(tmp_path):
    torch.manual_seed(0)
    model = build_tiny_model("lomit")[0]
    for seq in ("s1", "s2", "s3"):
        for i in range(2):
            _image(tmp_path / "frames" / seq / f"{i}.png", 32, 32, seed=i)
    for i in range(4):
        _image(tmp_path / "exemplars" / f"e{i}.png", 32, 32, seed=100 + i)
    options = dict(device="cpu", progress=False, exemplar=tmp_path / "exemplars", style_policy="per-sequence")
    # LOMIT's official inference normalises with batch statistics (inference_mode "train"): equal calls, equal files
    report = translate_images(model, tmp_path / "frames", tmp_path / "out", batch_size=1, **options)
    again = translate_images(model, tmp_path / "frames", tmp_path / "again", batch_size=1, **options)
    for a, b in zip(report.outputs, again.outputs, strict=True):
        assert np.array_equal(_pixels(a), _pixels(b))
    outputs = {seq: _pixels(tmp_path / "out" / seq / "0.png") for seq in ("s1", "s2", "s3")}
    assert len({o.tobytes() for o in outputs.values()}) > 1, "sequences draw their own exemplars"
    with pytest.raises(ValueError, match="--style-policy"):
        translate_images(build_tiny_model("cyclegan")[0], tmp_path / "frames", tmp_path / "x", device="cpu",
                         progress=False, style_policy="per-image")


def test_bf16_precision_is_close_to_float32(dataset, cyclegan, tmp_path):
    full = translate_images(cyclegan, dataset, tmp_path / "fp32", device="cpu", progress=False)
    half = translate_images(cyclegan, dataset, tmp_path / "bf16", device="cpu", progress=False, precision="bf16")
    for a, b in zip(full.outputs, half.outputs, strict=True):
        assert np.abs(_pixels(a).astype(int) - _pixels(b).astype(int)).mean() < 4
    with pytest.raises(ValueError, match="--precision"):
        translate_images(cyclegan, dataset, tmp_path / "x", device="cpu", progress=False, precision="int8")


def test_workers_give_the_same_files_as_the_main_process(dataset, cyclegan, tmp_path):
    inline = translate_images(cyclegan, dataset, tmp_path / "inline", device="cpu", progress=False, num_workers=0,
                              batch_size=1)
    workers = translate_images(cyclegan, dataset, tmp_path / "workers", device="cpu", progress=False, num_workers=2,
                               batch_size=1)
    assert all(np.array_equal(_pixels(a), _pixels(b)) for a, b in zip(inline.outputs, workers.outputs, strict=True))


def test_videos_keep_frame_rate_count_and_size_and_audio_is_dropped_with_a_notice(tmp_path):
    """The real command on a folder of videos: same type, frame rate, frame count and size; annotations beside."""
    from fractions import Fraction

    from tests.data.test_video import _video_with_audio
    from zoo.data.video import VideoWriter, read_video_info

    torch.manual_seed(0)
    bundle = save_bundle(build_tiny_model("cyclegan")[0], tmp_path / "bundle")
    clips = tmp_path / "clips"
    for name, fps in (("drive.mp4", Fraction(30000, 1001)), ("drive2.avi", Fraction(25))):
        with VideoWriter(clips / "town" / name, fps=fps, width=32, height=24) as writer:
            writer.write(torch.rand(7, 3, 24, 32, generator=torch.Generator().manual_seed(0)))
    _text(clips / "town" / "drive.json", "{}")
    _video_with_audio(clips / "talk.mov")
    result = subprocess.run([sys.executable, "-m", "zoo", "translate", "--model", str(bundle), "--input", str(clips),
                             "--output", str(tmp_path / "out"), "--device", "cpu"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "talk.mov has an audio stream; zoo writes video only (audio dropped)" in result.stderr
    for name in ("town/drive.mp4", "town/drive2.avi", "talk.mov"):
        source, translated = read_video_info(clips / name), read_video_info(tmp_path / "out" / name)
        assert (translated.fps, translated.frame_count, translated.width, translated.height) == (
            source.fps, source.frame_count, source.width, source.height)
        assert not translated.has_audio
    assert (tmp_path / "out" / "town" / "drive.json").read_text() == "{}"
    assert "translated 22 images" in result.stdout  # 7 + 7 + 8 frames


def test_per_sequence_styles_do_not_flicker_where_per_image_styles_do(tmp_path):
    """A multimodal model on a still video: one style per video (the default) gives a still output (flicker 1, the
    measure's value for a still input and output); one style per frame makes it flicker."""
    from zoo.data.video import VideoWriter
    from zoo.evaluate import evaluate_sequences

    torch.manual_seed(0)
    model = build_tiny_model("munit")[0]
    still = torch.rand(3, 24, 32, generator=torch.Generator().manual_seed(1))
    with VideoWriter(tmp_path / "in" / "still.avi", fps=10, width=32, height=24) as writer:  # lossless
        writer.write(still.expand(6, -1, -1, -1))
    flicker = {}
    for policy in (None, "per-image"):
        out = tmp_path / str(policy)
        translate_images(model, tmp_path / "in", out, device="cpu", progress=False, style_policy=policy)
        flicker[policy] = evaluate_sequences(tmp_path / "in", out, device="cpu", progress=False)
    assert flicker[None]["metrics"]["folders"]["flicker"] == 1.0
    assert flicker["per-image"]["metrics"]["folders"]["flicker"] > 1.0


def test_boxes_give_an_instance_aware_model_its_instance_tokens(tmp_path):
    """``zoo translate --boxes`` on a ``zoo toy-dataset`` folder (box files beside the frames): each frame's boxes are
    read, normalised and used, as ``translate(boxes=...)`` uses them; without ``--boxes`` the no-box inference."""
    from zoo.data.toy_world import write_toy_dataset
    from zoo.translate import read_boxes

    data = tmp_path / "toy"
    write_toy_dataset(data, sequences=1, frames=2, size=(64, 64))
    torch.manual_seed(0)
    model = build_tiny_model("instaformer")[0].eval()
    bundle = save_bundle(model, tmp_path / "bundle")
    outputs = {}
    for name, extra in (("with", ["--boxes", str(data / "images")]), ("without", [])):
        outputs[name] = tmp_path / name
        result = subprocess.run([sys.executable, "-m", "zoo", "translate", "--model", str(bundle), "--input",
                                 str(data / "images"), "--output", str(outputs[name]), "--device", "cpu",
                                 "--image-format", "png", *extra], capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
    frames = sorted((data / "images").rglob("*.png"))
    assert len(frames) == 2
    for frame in frames:
        relative = frame.relative_to(data / "images")
        boxes = read_boxes(frame.with_suffix(".json"), (64, 64), model.hparams.num_box)
        assert (boxes[:, 0] >= 0).any(), "the toy frame should show objects"
        image = torch.from_numpy(_pixels(frame)).permute(2, 0, 1)[None].float() / 255
        style = style_codes(model.style_dim, [style_key("per-image", image=relative.as_posix(), sequence="")],
                            seed=0)[:, 0]  # the command's per-image style code
        expected = model.translate(image, style=style, boxes=boxes[None])
        got = torch.from_numpy(_pixels(outputs["with"] / relative)).permute(2, 0, 1)[None].float() / 255
        assert (got - expected).abs().max() <= 1 / 255 + 1e-6
        assert not np.array_equal(_pixels(outputs["with"] / relative), _pixels(outputs["without"] / relative))
    with pytest.raises(FileNotFoundError, match="no box file"):
        translate_images(bundle, data / "images", tmp_path / "missing", boxes=tmp_path, device="cpu", progress=False)
    with pytest.raises(ValueError, match="--boxes is not supported by CycleGAN"):
        translate_images(build_tiny_model("cyclegan")[0], data / "images", tmp_path / "cyclegan", boxes=data / "images",
                         device="cpu", progress=False)
