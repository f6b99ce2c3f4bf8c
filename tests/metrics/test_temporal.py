"""Temporal flicker: identity outputs score 1, constant outputs 0, per-frame noise more than 1; streaming in chunks
equals one call; super-resolution outputs are compared without resizing; static inputs and bad shapes."""

from __future__ import annotations

import math

import pytest
import torch

from zoo.metrics.temporal import TemporalFlicker, temporal_flicker


def _moving(frames: int = 12, height: int = 16, width: int = 24, seed: int = 0) -> torch.Tensor:
    """(T, 3, H, W) in [0, 1]: a smooth random texture (bilinear from a coarse grid) panning one pixel per frame."""
    coarse = torch.rand(1, 3, height // 4, (width + frames) // 4 + 1, generator=torch.Generator().manual_seed(seed))
    texture = torch.nn.functional.interpolate(coarse, size=(height, width + frames), mode="bilinear")[0]
    return torch.stack([texture[:, :, t:t + width] for t in range(frames)])


def test_identity_outputs_have_flicker_one():
    frames = _moving()
    result = temporal_flicker(frames, frames.clone())
    assert result["flicker"] == pytest.approx(1.0, abs=1e-12)
    assert result["input_change"] == result["output_change"] > 0.01
    assert result["transitions"] == 11


def test_constant_outputs_have_flicker_zero():
    frames = _moving()
    result = temporal_flicker(frames, torch.full_like(frames, 0.3))
    assert result["flicker"] == 0.0 and result["output_change"] == 0.0 and result["input_change"] > 0


def test_added_per_frame_noise_is_flicker_above_one():
    frames = _moving()
    noise = 0.1 * torch.randn(frames.shape, generator=torch.Generator().manual_seed(1))
    result = temporal_flicker(frames, (frames + noise).clamp(0, 1))
    assert result["flicker"] > 1.5
    # the same noise in every frame (a fixed style) adds no flicker
    steady = temporal_flicker(frames, (frames + noise[:1]).clamp(0, 1))
    assert steady["flicker"] < result["flicker"] and steady["flicker"] == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize("chunks", [[1] * 12, [5, 7], [2, 3, 1, 6], [0, 12]])
def test_streaming_in_chunks_equals_one_call(chunks):
    inputs = _moving()
    outputs = (inputs + 0.05 * torch.randn(inputs.shape, generator=torch.Generator().manual_seed(2))).clamp(0, 1)
    whole = temporal_flicker(inputs, outputs)

    meter = TemporalFlicker()
    start = 0
    for size in chunks:
        meter.update(inputs[start:start + size], outputs[start:start + size])
        start += size
    streamed = meter.compute()

    assert streamed.keys() == whole.keys() and streamed["transitions"] == whole["transitions"] == 11
    for key in whole:
        assert streamed[key] == pytest.approx(whole[key], rel=1e-12)


def test_single_frames_are_accepted_and_reset_starts_a_new_sequence():
    inputs = _moving(4)
    meter = TemporalFlicker()
    for frame in inputs:
        meter.update(frame, frame)  # (C, H, W) frames one at a time
    assert meter.compute()["flicker"] == pytest.approx(1.0) and meter.frames == 4

    meter.reset()
    meter.update(inputs[:1], inputs[:1])
    with pytest.raises(ValueError, match="at least 2 frames"):
        meter.compute()
    # a new sequence of another size after reset is fine
    meter.reset()
    meter.update(torch.rand(3, 3, 8, 8), torch.rand(3, 3, 8, 8))
    assert meter.compute()["transitions"] == 2  # 3 frames, 2 transitions


def test_larger_outputs_are_compared_per_pixel_without_resizing():
    frames = _moving()
    upscaled = frames.repeat_interleave(4, dim=2).repeat_interleave(4, dim=3)  # 4x nearest-neighbour "SR"
    assert temporal_flicker(frames, upscaled)["flicker"] == pytest.approx(1.0, abs=1e-12)
    gray = frames.mean(dim=1, keepdim=True)  # another channel count is measured as it is
    assert 0 < temporal_flicker(frames, gray)["flicker"] <= 1.0


def test_static_inputs():
    still = _moving(1).expand(6, -1, -1, -1)
    assert temporal_flicker(still, still)["flicker"] == 1.0  # static outputs change as much as the input: not at all
    moving = temporal_flicker(still, _moving(6, seed=3))
    assert math.isinf(moving["flicker"]) and moving["output_change"] > 0 and moving["input_change"] == 0


def test_bad_shapes_are_errors():
    meter = TemporalFlicker()
    with pytest.raises(ValueError, match="3 input frames but 2 output frames"):
        meter.update(torch.rand(3, 3, 8, 8), torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match=r"inputs must be \(T, C, H, W\)"):
        meter.update(torch.rand(8, 8), torch.rand(8, 8))
    meter.update(torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match="changed from .* within one sequence"):
        meter.update(torch.rand(2, 3, 8, 9), torch.rand(2, 3, 8, 9))
