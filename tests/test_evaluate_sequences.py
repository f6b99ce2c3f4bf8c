"""``zoo evaluate --source IN --fake OUT``: temporal flicker of translated videos and frame sequences.

The translations are made here the way ``zoo translate`` lays them out (``OUT/<rel>.<same suffix>`` for a video,
``OUT/<rel folder>/<stem>.png`` for a frame of a sequence folder), with a stand-in "model" per test: the identity,
per-frame noise (flicker), a constant image.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from zoo.cli import main
from zoo.data.io import read_image, save_image
from zoo.data.video import VideoWriter, is_video, read_video_frames, read_video_info
from zoo.evaluate import evaluate_folders, evaluate_sequences, find_sequences, write_report

Translate = Callable[[torch.Tensor, int], torch.Tensor]


def _clip(frames: int = 8, height: int = 32, width: int = 48, seed: int = 0) -> torch.Tensor:
    """(T, 3, H, W) in [0, 1]: a smooth random texture panning one pixel per frame."""
    coarse = torch.rand(1, 3, height // 8, (width + frames) // 8 + 1, generator=torch.Generator().manual_seed(seed))
    texture = torch.nn.functional.interpolate(coarse, size=(height, width + frames), mode="bilinear")[0]
    return torch.stack([texture[:, :, t:t + width] for t in range(frames)])


def _identity(frames: torch.Tensor, start: int) -> torch.Tensor:
    return frames


def _noisy(frames: torch.Tensor, start: int) -> torch.Tensor:
    """A translation whose style changes every frame: fresh noise per frame index."""
    noise = torch.stack([0.15 * torch.randn(frames.shape[1:], generator=torch.Generator().manual_seed(start + i))
                         for i in range(len(frames))])
    return (frames + noise).clamp(0, 1)


def _source(root: Path) -> Path:
    """A --source folder: an .avi and an .mp4 video (one in a sub-folder), and a sequence folder of 6 JPEG frames
    named without zero padding (frame_2 comes before frame_10)."""
    with VideoWriter(root / "clips" / "walk.avi", fps=25, width=48, height=32) as writer:
        writer.write(_clip(8, seed=0))
    with VideoWriter(root / "pan.mp4", fps=30, width=48, height=32) as writer:
        writer.write(_clip(8, seed=1))
    for index, frame in zip((1, 2, 3, 10, 11, 12), _clip(6, seed=2), strict=True):
        save_image(frame, root / "shots" / "a" / f"frame_{index}.png")
    return root


def _translate(source: Path, out: Path, model: Translate) -> Path:
    """What ``zoo translate --input SOURCE --output OUT`` writes, with ``model`` as the translation."""
    for name, path in find_sequences(source).items():
        if is_video(path):
            info = read_video_info(path)
            with VideoWriter(out / name, fps=info.fps, width=info.width, height=info.height) as writer:
                start = 0
                for frames in read_video_frames(path, batch_size=3):
                    writer.write(model(frames, start))
                    start += len(frames)
        else:
            for index, frame_path in enumerate(sorted(path.iterdir())):
                frame = model(read_image(frame_path, channels=3)[None], index)[0]
                save_image(frame, out / name / f"{frame_path.stem}.png")
    return out


def test_identity_translations_have_flicker_one_and_noisy_ones_more(tmp_path):
    source = _source(tmp_path / "in")
    same = _translate(source, tmp_path / "same", _identity)
    noisy = _translate(source, tmp_path / "noisy", _noisy)

    result = evaluate_sequences(source, same, batch_size=4, device="cpu", progress=False)
    flickery = evaluate_sequences(source, noisy, batch_size=4, device="cpu", progress=False)

    per_sequence = result["per_sequence"]
    assert list(per_sequence) == ["clips/walk.avi", "pan.mp4", "shots/a"]
    assert per_sequence["clips/walk.avi"]["flicker"] == 1.0  # FFV1 is lossless: the very same frames
    assert per_sequence["shots/a"]["flicker"] == 1.0  # PNG frames are the same 8-bit values
    assert per_sequence["pan.mp4"]["flicker"] == pytest.approx(1.0, abs=0.1)  # re-encoded with H.264: close
    assert [values["frames"] for values in per_sequence.values()] == [8, 8, 6]
    mean = sum(values["flicker"] for values in per_sequence.values()) / 3
    assert result["metrics"] == {"folders": {"flicker": pytest.approx(mean)}}
    assert result["sample_counts"]["folders"] == {"sequences": 3, "frames": 22} and result["skipped"] == {}
    assert all(values["flicker"] > 1.5 for values in flickery["per_sequence"].values())
    assert flickery["metrics"]["folders"]["flicker"] > 1.5

    _, md_path = write_report(flickery, tmp_path / "report")
    table = md_path.read_text()
    assert "| direction | flicker |" in table
    assert "| sequence | frames | flicker | input change | output change |" in table
    assert "| shots/a | 6 |" in table and "- flicker: definition:" in table


def test_frames_are_ordered_by_number_in_their_names(tmp_path):
    source = _source(tmp_path / "in")
    out = _translate(source, tmp_path / "out", _identity)
    # swapping two outputs breaks the motion only if frames are read in the natural order (frame_2 before frame_10)
    frame_3, frame_10 = out / "shots" / "a" / "frame_3.png", out / "shots" / "a" / "frame_10.png"
    frame_3.rename(tmp_path / "tmp.png")
    frame_10.rename(frame_3)
    (tmp_path / "tmp.png").rename(frame_10)

    result = evaluate_sequences(source / "shots", out / "shots", device="cpu", progress=False)

    assert list(result["per_sequence"]) == ["a"] and result["per_sequence"]["a"]["flicker"] > 1.2


def test_a_single_video_against_its_translation(tmp_path):
    source = _source(tmp_path / "in") / "pan.mp4"
    out = _translate(source.parent, tmp_path / "out", _noisy)

    by_file = evaluate_sequences(source, out / "pan.mp4", device="cpu", progress=False)
    by_folder = evaluate_sequences(source, out, device="cpu", progress=False)

    assert list(by_file["per_sequence"]) == ["pan.mp4"] and by_file["metrics"]["folders"]["flicker"] > 1.5
    assert by_folder["per_sequence"] == by_file["per_sequence"]


def test_unmatched_sequences_are_skipped_and_no_match_is_an_error(tmp_path):
    source = _source(tmp_path / "in")
    out = _translate(source, tmp_path / "out", _identity)
    (out / "pan.mp4").unlink()

    result = evaluate_sequences(source, out, device="cpu", progress=False)

    assert list(result["per_sequence"]) == ["clips/walk.avi", "shots/a"]
    assert result["skipped"] == {"flicker of 1 sequence": "no translation in --fake (pan.mp4)"}
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=f"no sequence of --source {source} has its translation in --fake {empty}"):
        evaluate_sequences(source, empty, device="cpu", progress=False)


def test_frame_counts_that_differ_are_errors(tmp_path):
    source = _source(tmp_path / "in")
    out = _translate(source, tmp_path / "out", _identity)
    with VideoWriter(out / "pan.mp4", fps=30, width=48, height=32) as writer:
        writer.write(_clip(5, seed=1))
    with pytest.raises(ValueError, match=r"frame counts differ: source .*pan.mp4 has 8 frames, its translation .* 5"):
        evaluate_sequences(source, out, device="cpu", progress=False)

    _translate(source, out, _identity)
    (out / "shots" / "a" / "frame_11.png").unlink()
    with pytest.raises(ValueError, match=r"frame counts differ: .* has 6 frames, .* 5 frames \(no frame_11\.\*"):
        evaluate_sequences(source, out, device="cpu", progress=False)


def test_flicker_next_to_image_metrics_with_real(tmp_path):
    source = _source(tmp_path / "in")
    out = _translate(source, tmp_path / "out", _noisy)
    real = tmp_path / "real"
    for path in (source / "shots" / "a").iterdir():  # the paired "real" images of the PNG outputs
        save_image(read_image(path), real / "shots" / "a" / path.name)

    result = evaluate_folders(real, out, source=source, metrics="psnr", device="cpu", progress=False)

    assert set(result["metrics"]["folders"]) == {"psnr", "flicker"} and result["metrics"]["folders"]["psnr"] > 10
    assert result["settings"]["metrics"] == ["psnr", "flicker"] and "flicker" in result["protocol"]
    assert result["sample_counts"]["folders"]["sequences"] == 3 and result["data"]["source"] == str(source)
    with pytest.raises(ValueError, match="fid compares the translations with real images: give --real"):
        evaluate_folders(None, out, source=source, metrics="fid,flicker")
    with pytest.raises(ValueError, match="flicker compares translated sequences with their inputs: give --source"):
        evaluate_folders(real, out, metrics="flicker")


def test_zoo_evaluate_source_fake_as_a_user_runs_it(tmp_path):
    source = _source(tmp_path / "in")
    out = _translate(source, tmp_path / "out", _noisy)
    env = {**os.environ, "ZOO_OFFLINE": "1", "PYTHONWARNINGS": "ignore"}

    run = subprocess.run([sys.executable, "-m", "zoo", "evaluate", "--source", str(source), "--fake", str(out),
                          "--output", str(tmp_path / "report"), "--no-progress"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)

    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert set(report["metrics"]["folders"]) == {"flicker"} and report["metrics"]["folders"]["flicker"] > 1.5
    assert set(report["per_sequence"]) == {"clips/walk.avi", "pan.mp4", "shots/a"}
    assert all(math.isfinite(values["flicker"]) for values in report["per_sequence"].values())
    assert report["command"].startswith("zoo evaluate --source")
    assert "| folders |" in run.stdout and "| pan.mp4 | 8 |" in run.stdout and "metrics.json" in run.stdout


def test_cli_errors_are_one_line(tmp_path, capsys):
    source = _source(tmp_path / "in")
    with pytest.raises(SystemExit):
        main(["evaluate", "--source", str(source)])
    assert capsys.readouterr().err.startswith("zoo: error: folder mode needs --fake FOLDER")
    with pytest.raises(SystemExit):
        main(["evaluate", "--source", str(source), "--fake", str(tmp_path / "missing"), "--no-progress"])
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and f"--fake {tmp_path / 'missing'}: no such file or folder" in error
    with pytest.raises(SystemExit):
        main(["evaluate", "--source", str(source), "--fake", str(source), "--metrics", "psnr"])
    assert "psnr compares the translations with real images: give --real FOLDER" in capsys.readouterr().err
