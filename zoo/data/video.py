"""Video files: reading frames as tensors and writing them back, on FFmpeg through PyAV.

``zoo translate`` translates ``.mp4`` / ``.avi`` / ``.mov`` files frame by frame with these functions, and
``zoo evaluate --source`` reads them back to measure flicker (:mod:`zoo.metrics.temporal`). Frames are tensors as in
:mod:`zoo.data.io`: RGB, float32 in [0, 1], channels first.

- :func:`read_video_info` reads a file's frame rate (an exact :class:`fractions.Fraction`, e.g. 30000/1001), frame
  count, size, codec and whether it has an audio stream.
- :func:`read_video_frames` decodes the first video stream in display order, ``batch_size`` frames at a time
  ``(T, 3, H, W)``, so memory stays bounded by one batch whatever the length of the video.
- :class:`VideoWriter` encodes frames to a new file, keeping the frame rate exactly (the rate is the time base, one tick
  per frame), so the frame count and the duration survive a round trip.

What the writer produces, by suffix (``codec=`` overrides it):

- ``.mp4`` and ``.mov``: H.264 (libx264) at constant quality ``crf=17`` (visually lossless: the x264 scale runs from
  0 = lossless to 51, its default is 23, and about 17-18 is where differences stop being visible), preset
  ``medium``. Even width and height give the ``yuv420p`` pixel format that every player decodes. 4:2:0 chroma needs
  even sides, so an odd width or height gives ``yuv444p`` (H.264 High 4:4:4, the size kept as it is); FFmpeg, VLC and
  mpv play it, but some browsers and hardware decoders do not, so crop or pad frames to even sides for the widest
  support. Colour conversion is FFmpeg's default (BT.601 matrix, limited range), the same both ways.
- ``.avi``: FFV1, lossless, in RGB (``bgr0``): the frames read back are exactly the 8-bit frames written; files are
  large, and some players (e.g. Windows' own) do not decode FFV1.

Only video is written: an input's audio stream is not copied (:func:`audio_notice` words the message for users).
Outputs are written to a temporary file in the destination folder and renamed onto the final path when the writer
closes without error, so a crash or an exception never leaves a half-written video at the final path.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import av
import numpy as np
import torch
from torch import Tensor

from zoo.utils.manifest import partial_path

__all__ = [
    "DEFAULT_CRF",
    "VIDEO_EXTENSIONS",
    "VideoInfo",
    "VideoWriter",
    "audio_notice",
    "is_video",
    "read_video_frames",
    "read_video_info",
]

#: File suffixes (lower case) that are treated as videos.
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".avi", ".mov")
#: x264 constant-rate factor of ``.mp4`` / ``.mov`` outputs (0 = lossless ... 51; 17 is visually lossless).
DEFAULT_CRF = 17

_CONTAINER_FORMATS = {".mp4": "mp4", ".mov": "mov", ".avi": "avi"}
_FFmpegError: type[Exception] = av.error.FFmpegError


def is_video(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a video file by its suffix (any case; hidden ``.*`` names are not videos)."""
    name = Path(path).name
    return not name.startswith(".") and name.lower().endswith(VIDEO_EXTENSIONS)


# --------------------------------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`read_video_info` reads from a video file.

    Attributes:
        fps: frame rate of the first video stream, exact (``Fraction(30000, 1001)`` for NTSC's 29.97).
        frame_count: number of frames; from the container when it records it, else counted by decoding.
        width, height: frame size in pixels.
        has_audio: whether the file holds at least one audio stream.
        codec: FFmpeg name of the video codec (``h264``, ``ffv1``, ``mpeg4``, ...).
    """

    fps: Fraction
    frame_count: int
    width: int
    height: int
    has_audio: bool
    codec: str

    @property
    def duration(self) -> float:
        """Length in seconds, ``frame_count / fps``."""
        return float(self.frame_count / self.fps) if self.fps else 0.0


def _open_input(path: Path) -> Any:
    """The opened container of a video file, every failure as one error naming the file."""
    if not path.exists():
        raise FileNotFoundError(f"Video file '{path}' does not exist.")
    if path.is_dir():
        raise IsADirectoryError(f"'{path}' is a folder, but a video file was expected.")
    try:
        container = av.open(str(path), mode="r")
    except _FFmpegError as error:
        raise ValueError(f"Cannot read video '{path}': not a video file FFmpeg can open ({error}).") from error
    if not container.streams.video:
        container.close()
        raise ValueError(f"Cannot read video '{path}': the file has no video stream.")
    return container


def _frame_rate(stream: Any, path: Path) -> Fraction:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate or rate <= 0:
        raise ValueError(f"Cannot read video '{path}': the video stream has no frame rate.")
    return Fraction(rate.numerator, rate.denominator)


def read_video_info(path: str | os.PathLike[str]) -> VideoInfo:
    """Frame rate, frame count, size, codec and audio presence of a video file (its first video stream).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file cannot be opened or decoded as a video, or has no video stream.
    """
    path = Path(path)
    container = _open_input(path)
    try:
        stream = container.streams.video[0]
        fps = _frame_rate(stream, path)
        frame_count = int(stream.frames or 0)
        if frame_count <= 0:  # not recorded by this container (e.g. some AVI / streamed MP4): count by decoding
            frame_count = sum(1 for _ in _decode(container, stream, path))
        return VideoInfo(fps=fps, frame_count=frame_count, width=int(stream.codec_context.width),
                         height=int(stream.codec_context.height), has_audio=bool(container.streams.audio),
                         codec=str(stream.codec_context.name))
    finally:
        container.close()


def _decode(container: Any, stream: Any, path: Path) -> Iterator[Any]:
    index = 0
    try:
        for frame in container.decode(stream):
            yield frame
            index += 1
    except _FFmpegError as error:
        raise ValueError(f"Cannot read video '{path}': decoding failed after {index} frames ({error}).") from error


def read_video_frames(path: str | os.PathLike[str], *, batch_size: int = 1) -> Iterator[Tensor]:
    """Decode the frames of a video file (its first video stream) in display order.

    Frames that change size mid-stream are scaled to the size of the stream's first frame.

    Args:
        path: video file.
        batch_size: frames per yielded batch; only the last batch may hold fewer. At most one batch of decoded frames
            is held in memory.

    Yields:
        Tensors of shape (T, 3, H, W), dtype float32, RGB values in [0, 1], with 1 <= T <= ``batch_size``.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: ``batch_size`` < 1, or the file cannot be opened or decoded (corrupt, truncated, not a video);
            the message names the file.
    """
    if batch_size < 1:
        raise ValueError(f"read_video_frames: batch_size must be >= 1, got {batch_size} (for '{path}').")
    path = Path(path)
    container = _open_input(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        size: tuple[int, int] | None = None
        pending: list[np.ndarray] = []
        for frame in _decode(container, stream, path):
            if size is None:
                size = (frame.width, frame.height)
            array = frame.to_ndarray(format="rgb24", width=size[0], height=size[1])
            pending.append(array)
            if len(pending) == batch_size:
                yield _to_tensor(pending)
                pending = []
        if pending:
            yield _to_tensor(pending)
    finally:
        container.close()


def _to_tensor(arrays: list[np.ndarray]) -> Tensor:
    """(T, 3, H, W) float32 in [0, 1] from T (H, W, 3) uint8 arrays."""
    stacked = torch.from_numpy(np.stack(arrays))
    return stacked.permute(0, 3, 1, 2).to(torch.float32).div_(255.0)


def audio_notice(info: VideoInfo, path: str | os.PathLike[str]) -> str | None:
    """The message telling a user that an input's audio is not carried over, or ``None`` when it has no audio.

    ``zoo translate`` prints it once per input video: ``"input.mp4 has an audio stream; zoo writes video only (audio
    dropped)"``.
    """
    if not info.has_audio:
        return None
    return f"{Path(path).name} has an audio stream; zoo writes video only (audio dropped)"


# --------------------------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------------------------


def _as_fraction(fps: Fraction | int | float | str) -> Fraction:
    """Exact frame rate: fractions and integers as they are, ``"30000/1001"`` parsed, floats to the nearest fraction
    with denominator <= 1001 (29.97002997 -> 30000/1001, 25.0 -> 25)."""
    if isinstance(fps, float):
        rate = Fraction(fps).limit_denominator(1001)
    else:
        try:
            rate = Fraction(fps)
        except (TypeError, ValueError, ZeroDivisionError) as error:
            raise ValueError(f"fps must be a positive number or fraction, got {fps!r}") from error
    if rate <= 0:
        raise ValueError(f"fps must be positive, got {fps!r}")
    return rate


def _default_encoding(suffix: str, width: int, height: int, crf: int) -> tuple[str, str, dict[str, str]]:
    """(codec, pixel format, codec options) of a container suffix."""
    if suffix == ".avi":
        return "ffv1", "bgr0", {}
    pixel_format = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
    return "libx264", pixel_format, {"crf": str(crf), "preset": "medium"}


class VideoWriter:
    """Write frames to a video file, atomically: a context manager over a PyAV output container.

    Example::

        info = read_video_info("in.mp4")
        with VideoWriter("out.mp4", fps=info.fps, width=info.width, height=info.height) as writer:
            for frames in read_video_frames("in.mp4", batch_size=8):
                writer.write(model(frames))

    Frames go to a hidden temporary file next to ``path`` (:func:`zoo.utils.manifest.partial_path`); :meth:`close` (and
    leaving the ``with`` block normally) flushes the encoder and renames it onto ``path``, replacing an existing
    file. :meth:`abort` (and leaving the block with an exception) deletes it, so ``path`` never holds a half-written
    video. Missing parent folders are created.

    Args:
        path: output file; its suffix (``.mp4``, ``.mov``, ``.avi``) picks the container and the default codec (see
            the module docstring).
        fps: frame rate, kept exactly: a :class:`~fractions.Fraction` (``VideoInfo.fps``), an int, a ``"num/den"``
            string or a float (rounded to the nearest fraction with denominator <= 1001).
        width, height: frame size in pixels; every written frame must have it.
        crf: x264 constant-rate factor for H.264 outputs (0 = lossless; default :data:`DEFAULT_CRF` = 17).
        codec: FFmpeg encoder name overriding the suffix's default (e.g. ``"mpeg4"``, ``"ffv1"``).
        pixel_format: encoder pixel format overriding the default (e.g. ``"yuv420p"`` with ``codec="mpeg4"``).
        options: extra encoder options (strings), e.g. ``{"preset": "veryslow"}``.

    Raises:
        ValueError: unknown suffix, non-positive size or frame rate, or an encoder FFmpeg lacks.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fps: Fraction | int | float | str,
        width: int,
        height: int,
        crf: int = DEFAULT_CRF,
        codec: str | None = None,
        pixel_format: str | None = None,
        options: dict[str, str] | None = None,
    ) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in _CONTAINER_FORMATS:
            raise ValueError(f"VideoWriter('{self.path}'): unknown video suffix; use one of "
                             f"{', '.join(VIDEO_EXTENSIONS)}.")
        if width < 1 or height < 1:
            raise ValueError(f"VideoWriter('{self.path}'): width and height must be >= 1, got {width}x{height}.")
        self.fps = _as_fraction(fps)
        self.width, self.height = int(width), int(height)
        default_codec, default_format, default_options = _default_encoding(suffix, self.width, self.height, crf)
        if codec is not None and codec != default_codec:
            default_options = {}
        self.codec = codec or default_codec
        self.pixel_format = pixel_format or (default_format if codec in (None, default_codec) else None)
        self.frames_written = 0
        self._closed = False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._temporary = partial_path(self.path)  # removed by the next zoo translate if this process is killed
        try:
            self._container = av.open(str(self._temporary), mode="w", format=_CONTAINER_FORMATS[suffix])
        except _FFmpegError as error:
            self._temporary.unlink(missing_ok=True)
            raise ValueError(f"VideoWriter('{self.path}'): cannot create the file ({error}).") from error
        try:
            self._stream = self._container.add_stream(self.codec, rate=self.fps,
                                                      options={**default_options, **(options or {})})
            self._stream.width, self._stream.height = self.width, self.height
            if self.pixel_format is not None:
                self._stream.pix_fmt = self.pixel_format
            self._stream.codec_context.time_base = 1 / self.fps
        except (_FFmpegError, ValueError, TypeError) as error:
            self.abort()
            raise ValueError(f"VideoWriter('{self.path}'): cannot set up encoder '{self.codec}' ({error}).") from error

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()

    def write(self, frames: Tensor) -> None:
        """Encode frames, appended after those written before.

        Args:
            frames: (T, C, H, W) or one frame (C, H, W), C = 3 (RGB) or 1 (grayscale, written as grey RGB), values
                in [0, 1] (clamped, then rounded to 8 bits), on any device; H and W must be the writer's size.

        Raises:
            ValueError: wrong shape or size, non-finite values, or a writer already closed.
        """
        if self._closed:
            raise ValueError(f"VideoWriter('{self.path}'): write() after close().")
        if not isinstance(frames, Tensor) or frames.ndim not in (3, 4):
            shape = tuple(frames.shape) if isinstance(frames, Tensor) else type(frames).__name__
            raise ValueError(f"VideoWriter('{self.path}'): expected a (T, 3, H, W) or (3, H, W) tensor, got {shape}.")
        if frames.ndim == 3:
            frames = frames[None]
        if frames.shape[1] not in (1, 3) or tuple(frames.shape[2:]) != (self.height, self.width):
            raise ValueError(f"VideoWriter('{self.path}'): expected frames (T, 3, {self.height}, {self.width}), got "
                             f"{tuple(frames.shape)}.")
        frames = frames.detach().to("cpu", torch.float32)
        if not torch.isfinite(frames).all():
            raise ValueError(f"VideoWriter('{self.path}'): the frames contain NaN or infinite values.")
        pixels = frames.clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8).expand(-1, 3, -1, -1)
        arrays = pixels.permute(0, 2, 3, 1).contiguous().numpy()
        try:
            for array in arrays:
                frame = av.VideoFrame.from_ndarray(array, format="rgb24")
                frame.pts = self.frames_written
                frame.time_base = 1 / self.fps
                self._container.mux(self._stream.encode(frame))
                self.frames_written += 1
        except _FFmpegError as error:
            raise ValueError(f"VideoWriter('{self.path}'): encoding failed at frame {self.frames_written} "
                             f"({error}).") from error

    def close(self) -> Path:
        """Flush the encoder, finish the file and move it onto :attr:`path` (calling it again does nothing).

        Returns:
            The written path.

        Raises:
            ValueError: no frame was written, or FFmpeg failed to finish the file (nothing is left at ``path`` then,
                and the temporary file is removed).
        """
        if self._closed:
            return self.path
        if self.frames_written == 0:
            self.abort()
            raise ValueError(f"VideoWriter('{self.path}'): no frame was written; nothing saved.")
        try:
            self._container.mux(self._stream.encode(None))
            self._container.close()
            self._closed = True
            os.replace(self._temporary, self.path)
        except BaseException as error:
            self.abort()
            if isinstance(error, _FFmpegError):
                raise ValueError(f"VideoWriter('{self.path}'): cannot finish the file ({error}).") from error
            raise
        return self.path

    def abort(self) -> None:
        """Stop writing and delete the temporary file; nothing is written at :attr:`path`."""
        if not self._closed:
            self._closed = True
            try:
                self._container.close()
            except _FFmpegError:
                pass
        self._temporary.unlink(missing_ok=True)
