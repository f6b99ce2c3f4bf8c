"""Video files: write -> read round trips (frame count, size, exact frame rate, content), atomic writes, audio streams
and broken files. Clips are tiny (8 frames of 32x48) so every test runs in well under a second."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from zoo.data.video import (
    VIDEO_EXTENSIONS,
    VideoInfo,
    VideoWriter,
    audio_notice,
    is_video,
    read_video_frames,
    read_video_info,
)


def _clip(frames: int = 8, height: int = 32, width: int = 48) -> torch.Tensor:
    """(T, 3, H, W) in [0, 1]: a smooth gradient drifting over time with a mild colour ripple (camera-like content,
    not noise that no lossy codec keeps)."""
    t = torch.arange(frames, dtype=torch.float32).view(-1, 1, 1, 1)
    c = torch.arange(3, dtype=torch.float32).view(1, 3, 1, 1)
    y = torch.arange(height, dtype=torch.float32).view(1, 1, -1, 1)
    x = torch.arange(width, dtype=torch.float32).view(1, 1, 1, -1)
    return (0.5 + 0.3 * torch.sin(2 * math.pi * (x / (2 * width) + y / (2 * height) + t / 16))
            + 0.1 * torch.cos(2 * math.pi * (x / width + c / 3)))


def _write(path: Path, frames: torch.Tensor, fps: Fraction | int = 25, chunk: int = 3) -> Path:
    with VideoWriter(path, fps=fps, width=frames.shape[-1], height=frames.shape[-2]) as writer:
        for start in range(0, len(frames), chunk):
            writer.write(frames[start:start + chunk])
    return path


def _read_all(path: Path, batch_size: int = 3) -> torch.Tensor:
    return torch.cat(list(read_video_frames(path, batch_size=batch_size)))


@pytest.mark.parametrize(
    ("name", "fps", "size", "codec", "pixel_format"),
    [
        ("clip.mp4", Fraction(30000, 1001), (32, 48), "h264", "yuv420p"),
        ("clip.mov", Fraction(24000, 1001), (32, 48), "h264", "yuv420p"),
        ("clip.avi", Fraction(25), (32, 48), "ffv1", "bgr0"),
        ("odd.mp4", Fraction(30), (33, 47), "h264", "yuv444p"),  # 4:2:0 needs even sides: 4:4:4 keeps the odd size
        ("odd.avi", Fraction(15, 2), (33, 47), "ffv1", "bgr0"),
    ],
)
def test_round_trip_keeps_frame_count_size_fps_and_content(tmp_path, name, fps, size, codec, pixel_format):
    frames = _clip(8, *size)
    path = _write(tmp_path / name, frames, fps=fps)

    info = read_video_info(path)
    assert info == VideoInfo(fps=fps, frame_count=8, width=size[1], height=size[0], has_audio=False, codec=codec)
    assert isinstance(info.fps, Fraction) and info.duration == pytest.approx(float(8 / fps))
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.pix_fmt == pixel_format
    batches = list(read_video_frames(path, batch_size=3))
    assert [tuple(batch.shape) for batch in batches] == [(3, 3, *size), (3, 3, *size), (2, 3, *size)]
    assert all(batch.dtype == torch.float32 and 0 <= batch.min() and batch.max() <= 1 for batch in batches)
    decoded = torch.cat(batches)
    error = (decoded - frames).abs()
    if codec == "ffv1":  # lossless: exactly the 8-bit frames that were written
        assert torch.equal(decoded, frames.mul(255).round().div(255))
    else:  # H.264 at crf 17: a couple of 8-bit levels on average, chroma subsampling dominating at this tiny size
        assert error.mean() < 0.015 and error.max() < 0.1
    assert not list(tmp_path.glob(".*partial*")), "the temporary file is renamed, not left behind"


def test_float_and_string_frame_rates_are_kept_exactly(tmp_path):
    frames = _clip(4)
    assert read_video_info(_write(tmp_path / "ntsc.mp4", frames, fps=30000 / 1001)).fps == Fraction(30000, 1001)
    assert read_video_info(_write(tmp_path / "pal.avi", frames, fps="25/1")).fps == 25
    with pytest.raises(ValueError, match="fps must be positive"):
        VideoWriter(tmp_path / "zero.mp4", fps=0, width=48, height=32)


def test_single_frames_and_grayscale_frames_are_written(tmp_path):
    path = tmp_path / "gray.avi"
    gray = _clip(2)[:, :1]
    with VideoWriter(path, fps=10, width=48, height=32) as writer:
        writer.write(gray[0])  # (1, H, W): one grayscale frame
        writer.write(gray[1:].expand(-1, 3, -1, -1))
    decoded = _read_all(path)
    assert decoded.shape == (2, 3, 32, 48)
    assert torch.equal(decoded, gray.expand(-1, 3, -1, -1).mul(255).round().div(255))


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_an_exception_inside_the_with_block_leaves_no_file(tmp_path, suffix):
    path = tmp_path / "out" / f"clip{suffix}"
    with pytest.raises(RuntimeError, match="model failed"):
        with VideoWriter(path, fps=25, width=48, height=32) as writer:
            writer.write(_clip(3))
            assert not path.exists(), "nothing at the final path while writing"
            # PyAV creates the file when the first packet is muxed: FFV1 (intra-only) has muxed its frames already,
            # x264 may still hold them in its look-ahead; whatever is there is the hidden temporary file
            partial = list(path.parent.iterdir())
            assert all(p.name.startswith(".clip.") and p.name.endswith(f".zoo-partial{suffix}") for p in partial)
            if suffix == ".avi":
                assert len(partial) == 1
            raise RuntimeError("model failed")
    assert not path.exists() and list(path.parent.iterdir()) == []


def test_a_failed_write_keeps_the_previous_file_untouched(tmp_path):
    path = _write(tmp_path / "clip.avi", _clip(8))
    before = path.read_bytes()
    with pytest.raises(ValueError, match=r"expected frames \(T, 3, 32, 48\)"):
        with VideoWriter(path, fps=25, width=48, height=32) as writer:
            writer.write(_clip(2))
            writer.write(torch.rand(1, 3, 32, 40))
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["clip.avi"]


def test_writer_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="unknown video suffix"):
        VideoWriter(tmp_path / "clip.mkv", fps=25, width=48, height=32)
    with pytest.raises(ValueError, match="no frame was written"):
        with VideoWriter(tmp_path / "empty.mp4", fps=25, width=48, height=32):
            pass
    with pytest.raises(ValueError, match="NaN or infinite"):
        with VideoWriter(tmp_path / "nan.mp4", fps=25, width=48, height=32) as writer:
            writer.write(torch.full((3, 32, 48), float("nan")))
    assert list(tmp_path.iterdir()) == []


def test_frame_count_is_counted_by_decoding_when_the_container_does_not_record_it(tmp_path):
    path = tmp_path / "fragmented.mp4"  # a fragmented MP4 (as streamed) has an empty index: no frame count in it
    with av.open(str(path), mode="w", options={"movflags": "frag_keyframe+empty_moov"}) as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 48, 32, "yuv420p"
        for index, array in enumerate(_clip(7).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with av.open(str(path)) as container:
        assert container.streams.video[0].frames == 0

    assert read_video_info(path).frame_count == 7 == len(_read_all(path))


def _video_with_audio(path: Path) -> Path:
    """An MP4 with 8 H.264 frames and an AAC audio stream, made with PyAV."""
    with av.open(str(path), mode="w") as container:
        video = container.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 48, 32, "yuv420p"
        audio = container.add_stream("aac", rate=48000)
        for index, array in enumerate(_clip(8).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")
            frame.pts = index
            container.mux(video.encode(frame))
        for index in range(8):
            tone = np.sin(np.arange(1024, dtype=np.float32) / 10)[None].repeat(2, axis=0)
            samples = av.AudioFrame.from_ndarray(tone, format="fltp", layout="stereo")
            samples.sample_rate, samples.pts = 48000, index * 1024
            container.mux(audio.encode(samples))
        container.mux(video.encode(None))
        container.mux(audio.encode(None))
    return path


def test_a_video_with_audio_is_read_and_the_notice_says_audio_is_dropped(tmp_path):
    path = _video_with_audio(tmp_path / "talk.mp4")

    info = read_video_info(path)

    assert info.has_audio and info.frame_count == 8 and info.fps == 25 and (info.width, info.height) == (48, 32)
    assert _read_all(path).shape == (8, 3, 32, 48)
    assert audio_notice(info, path) == "talk.mp4 has an audio stream; zoo writes video only (audio dropped)"
    silent = _write(tmp_path / "silent.mp4", _clip(2))
    assert audio_notice(read_video_info(silent), silent) is None


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_corrupt_file_raises_a_value_error_naming_it(tmp_path, damage):
    path = tmp_path / "broken.mp4"
    if damage == "garbage":
        path.write_bytes(b"this is not a video" * 100)
    else:  # an MP4 cut in half loses its index (the moov box is written last)
        data = _write(tmp_path / "whole.mp4", _clip(8)).read_bytes()
        path.write_bytes(data[: len(data) // 2])

    with pytest.raises(ValueError, match=f"Cannot read video '{path}'"):
        read_video_info(path)
    with pytest.raises(ValueError, match=f"Cannot read video '{path}'"):
        next(read_video_frames(path))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_video_info(tmp_path / "missing.mp4")
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        next(read_video_frames(path, batch_size=0))


def test_is_video_by_suffix():
    assert VIDEO_EXTENSIONS == (".mp4", ".avi", ".mov")
    assert is_video("a/b.MP4") and is_video(Path("x.mov")) and is_video("x.avi")
    assert not is_video("x.png") and not is_video("x.mkv") and not is_video("._x.mp4")
