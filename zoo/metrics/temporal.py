"""Temporal flicker of frame-by-frame video translation: how much more the outputs change from frame to frame than
the inputs they were translated from.

A method translating a video one frame at a time may change its output between frames where the input hardly
changed (style, texture or colour jumping from frame to frame). :class:`TemporalFlicker` measures it as a ratio:

    flicker = mean_t mean_pixels |y_t - y_{t-1}|  /  mean_t mean_pixels |x_t - x_{t-1}|

over the consecutive frames ``x_t`` of the input sequence and ``y_t`` of the output sequence (values in [0, 1]):

- ``1.0``: the outputs change exactly as much as the inputs (the identity translation scores 1);
- ``> 1``: the translation adds flicker; ``< 1``: it smooths change away (a constant output scores 0).

Conventions:

- Means are per element (over channels and pixels), so the measure is size-independent: outputs larger than the
  inputs (super-resolution) or with another channel count are compared as they are, **not resized**. A 4x upscale
  of the same motion gives about the same mean change; detail an SR method adds and keeps stable costs nothing, and
  detail that shimmers counts as flicker.
- Each frame-to-frame transition has the same weight (the numerator and the denominator are means over all
  transitions of the sequence, not a mean of per-transition ratios, which would explode on near-still transitions).
- A static input (every input transition exactly zero, e.g. a still image repeated) makes the ratio undefined:
  ``flicker`` is then ``1.0`` when the outputs are static too (they change exactly as much as the inputs: not at
  all), and ``inf`` when they change; the raw ``output_change`` still says by how much.
- Sums are accumulated in float64; frames may come in chunks of any length (the last frame of a chunk is carried to
  the next call), so streaming a video gives exactly what one call on all its frames gives.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["TemporalFlicker", "temporal_flicker"]


def _as_sequence(frames: Tensor, name: str) -> Tensor:
    if not isinstance(frames, Tensor) or frames.ndim not in (3, 4):
        shape = tuple(frames.shape) if isinstance(frames, Tensor) else type(frames).__name__
        raise ValueError(f"TemporalFlicker: {name} must be (T, C, H, W) frames or one (C, H, W) frame, got {shape}")
    return frames[None] if frames.ndim == 3 else frames


class TemporalFlicker:
    """Streaming flicker of one output sequence against its input sequence (see the module docstring).

    Feed the frames of one sequence in order, in chunks of any length, with :meth:`update`; read the result with
    :meth:`compute`; call :meth:`reset` before the next sequence. Not a torchmetrics ``Metric``: the carried last
    frames make it a per-sequence, single-process accumulator.

    Example::

        meter = TemporalFlicker()
        for inputs in read_video_frames("in.mp4", batch_size=16):
            meter.update(inputs, model(inputs))
        meter.compute()["flicker"]
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget everything: the next :meth:`update` starts a new sequence."""
        self._last_input: Tensor | None = None
        self._last_output: Tensor | None = None
        self._input_sum = 0.0
        self._output_sum = 0.0
        self.transitions = 0
        self.frames = 0

    def update(self, inputs: Tensor, outputs: Tensor) -> None:
        """Add the next frames of the sequence.

        Args:
            inputs: (T, C, H, W) input frames (or one (C, H, W) frame), values in [0, 1].
            outputs: (T, C', H', W') output frames translated from them, one per input frame, values in [0, 1]; the
                size and channel count may differ from the inputs' (not resized), but stay the same along the
                sequence.

        Raises:
            ValueError: not 3- or 4-dimensional, different frame counts, or a frame size that changes within the
                sequence.
        """
        inputs, outputs = _as_sequence(inputs, "inputs"), _as_sequence(outputs, "outputs")
        if len(inputs) != len(outputs):
            raise ValueError(f"TemporalFlicker: {len(inputs)} input frames but {len(outputs)} output frames; each "
                             f"output frame must be the translation of one input frame")
        if len(inputs) == 0:
            return
        self._input_sum, self._last_input = self._accumulate(inputs.detach(), self._last_input, self._input_sum,
                                                             "input")
        self._output_sum, self._last_output = self._accumulate(outputs.detach(), self._last_output, self._output_sum,
                                                               "output")
        self.transitions += len(inputs) - (1 if self.frames == 0 else 0)
        self.frames += len(inputs)

    @staticmethod
    def _accumulate(frames: Tensor, last: Tensor | None, total: float, side: str) -> tuple[float, Tensor]:
        """``total`` plus the per-element mean absolute change of every transition in ``frames`` (after ``last``),
        and the new last frame."""
        if last is not None:
            if last.shape != frames.shape[1:]:
                raise ValueError(f"TemporalFlicker: {side} frames changed from {tuple(last.shape)} to "
                                 f"{tuple(frames.shape[1:])} within one sequence; call reset() between sequences")
            frames = torch.cat([last.to(frames.device, frames.dtype)[None], frames])
        if len(frames) > 1:
            steps = (frames[1:].double() - frames[:-1].double()).abs().flatten(1).mean(dim=1)
            total += float(steps.sum())
        return total, frames[-1].clone()

    def compute(self) -> dict[str, float]:
        """The flicker of the frames seen since the last :meth:`reset`.

        Returns:
            ``flicker`` (output change / input change; see the module docstring for static inputs),
            ``input_change`` and ``output_change`` (mean absolute frame-to-frame change of the inputs and of the
            outputs, per element, in [0, 1] units), and ``transitions`` (number of frame pairs, frames - 1).

        Raises:
            ValueError: fewer than two frames were seen (no transition to measure).
        """
        if self.transitions == 0:
            raise ValueError(f"TemporalFlicker: flicker needs at least 2 frames of a sequence, got {self.frames}")
        input_change = self._input_sum / self.transitions
        output_change = self._output_sum / self.transitions
        if input_change > 0:
            flicker = output_change / input_change
        else:
            flicker = 1.0 if output_change == 0 else math.inf
        return {"flicker": flicker, "input_change": input_change, "output_change": output_change,
                "transitions": float(self.transitions)}


def temporal_flicker(input_frames: Tensor, output_frames: Tensor) -> dict[str, float]:
    """Flicker of a whole output sequence against its input sequence in one call (:class:`TemporalFlicker`).

    Args:
        input_frames: (T, C, H, W) input frames in [0, 1], T >= 2.
        output_frames: (T, C', H', W') output frames in [0, 1], one per input frame.

    Returns:
        The dict of :meth:`TemporalFlicker.compute`: ``flicker``, ``input_change``, ``output_change``,
        ``transitions``.
    """
    meter = TemporalFlicker()
    meter.update(input_frames, output_frames)
    return meter.compute()
