"""``predict_step`` of every method translates inputs whose size is not a multiple of ``size_multiple``."""

from __future__ import annotations

import pytest
import torch

import zoo
from tests.methods.tiny_configs import build_tiny_model
from zoo.methods._common import predict_outputs
from zoo.methods._template import TemplateTranslator


def _odd_size(model, tiny_size: int = 32) -> tuple[int, int]:
    """A (H, W) near the tiny config's side that is a multiple of neither ``size_multiple`` (when > 1) nor 2."""
    base = max(int(getattr(model, "size_multiple", 1)), tiny_size)
    return base + 3, base + 5


def _batch(model, size: tuple[int, int], *, with_b: bool) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    batch = {"real_a": model.example_images(2, size, generator=g) * 2 - 1}
    if with_b:
        channels = model.output_channels("a2b")
        batch["real_b"] = torch.rand(2, channels, size[0] + 2, size[1] - 1, generator=g) * 2 - 1
    return batch


def _check(model, batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor]) -> None:
    scale = int(getattr(model, "scale", 1))
    h, w = batch["real_a"].shape[-2:]
    assert out["fake_b"].shape == (2, model.output_channels("a2b"), h * scale, w * scale)
    assert torch.isfinite(out["fake_b"]).all() and 0 <= out["fake_b"].min() and out["fake_b"].max() <= 1
    if "fake_a" in out:
        hb, wb = batch["real_b"].shape[-2:]
        assert out["fake_a"].shape == (2, model.output_channels("b2a"), hb * scale, wb * scale)


@pytest.mark.parametrize("name", zoo.list_models())
def test_predict_step_keeps_any_input_size(name):
    model, tiny_size = build_tiny_model(name)
    model.eval()
    size = _odd_size(model, tiny_size)
    with_b = model.requires_exemplar or "b2a" in model.directions
    batch = _batch(model, size, with_b=with_b)
    if getattr(model, "size_multiple", 1) > 1:
        with pytest.raises(ValueError):
            (model.translate(batch["real_a"], exemplar=batch["real_b"]) if model.requires_exemplar
             else model.translate((batch["real_a"] + 1) / 2))
    out = model.predict_step(batch, 0)
    expected = {"fake_b", "fake_a"} if "b2a" in model.directions and not model.requires_exemplar else {"fake_b"}
    assert set(out) == expected
    _check(model, batch, out)
    # real_b is optional for two-direction methods: only fake_b then
    if "b2a" in model.directions and not model.requires_exemplar:
        assert set(model.predict_step({"real_a": batch["real_a"]}, 0)) == {"fake_b"}


def test_lomit_predict_step_pads_masks_and_exemplar():
    model, tiny_size = build_tiny_model("lomit")
    model.eval()
    size = _odd_size(model, tiny_size)
    batch = _batch(model, size, with_b=True)
    batch["mask_a"] = (torch.rand(2, 1, *size) > 0.5).float()
    batch["mask_b"] = (torch.rand(2, 1, *batch["real_b"].shape[-2:]) > 0.5).float()
    out = model.predict_step(batch, 0)
    _check(model, batch, out)
    with pytest.raises(KeyError, match="real_b"):
        model.predict_step({"real_a": batch["real_a"]}, 0)


def test_template_predict_step_keeps_any_input_size():
    model = TemplateTranslator(ngf=4, ndf=4, generator="resnet_1blocks").eval()
    batch = _batch(model, _odd_size(model), with_b=False)
    _check(model, batch, model.predict_step(batch, 0))


def test_predict_outputs_names_a_missing_input():
    model = TemplateTranslator(ngf=4, ndf=4, generator="resnet_1blocks").eval()
    with pytest.raises(KeyError, match="real_a"):
        predict_outputs(model, {"real_b": torch.zeros(1, 3, 8, 8)})
