"""LOMIT-specific behaviour: highway AdaIN, tied style heads, schedule, mask-guided modes, inference, checkpoints."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch

from zoo.methods import LOMIT
from zoo.nets.lomit import Generator, content_sigma, downsample_mask, highway_adain

TINY = dict(c_dim=2, image_size=32, g_conv_dim=4, g_repeat_num=2, style_dim=4, mlp_dim=8, d_conv_dim=4,
            d_repeat_num=3, n_critic=1)


def _model(**overrides) -> LOMIT:
    torch.manual_seed(0)
    return LOMIT(**{**TINY, **overrides})


def _inputs(model: LOMIT, seed: int = 0):
    return model.example_inputs(2, 32, generator=torch.Generator().manual_seed(seed))


def _step(model: LOMIT, inputs, **kwargs):
    optimizers, _ = model.configure_optimizers()
    return model.optimization_step(*inputs, *optimizers, **kwargs)


# ------------------------------------------------------------------------------------------------ highway AdaIN


def test_highway_adain_gates_foreground_and_background_styles_per_pixel():
    torch.manual_seed(0)
    c = torch.randn(2, 3, 4, 4)
    fg, bg = torch.randn(2, 6), torch.randn(2, 6)
    all_fg = highway_adain(c, torch.ones(2, 1, 4, 4), fg, bg)
    all_bg = highway_adain(c, torch.zeros(2, 1, 4, 4), fg, bg)
    normalised = (c - c.mean((2, 3), keepdim=True)) / (content_sigma(c) + 1e-5)
    torch.testing.assert_close(all_fg, torch.exp(0.5 * fg[:, 3:, None, None]) * normalised + fg[:, :3, None, None])
    torch.testing.assert_close(all_bg, torch.exp(0.5 * bg[:, 3:, None, None]) * normalised + bg[:, :3, None, None])
    half = torch.zeros(2, 1, 4, 4)
    half[..., :2] = 1
    mixed = highway_adain(c, half, fg, bg)
    torch.testing.assert_close(mixed[..., :2], all_fg[..., :2])
    torch.testing.assert_close(mixed[..., 2:], all_bg[..., 2:])


def test_sigma_modes_reference_quirk_and_textbook_per_channel_std():
    c = torch.randn(1, 2, 5, 6)
    ref = content_sigma(c, "reference")
    torch.testing.assert_close(ref, c.std(dim=3).std(dim=2)[..., None, None])
    assert not torch.allclose(ref, c.std(dim=(2, 3), keepdim=True))
    torch.testing.assert_close(content_sigma(c, "per_channel"), c.var(dim=(2, 3), unbiased=False, keepdim=True).sqrt())
    out = highway_adain(c, torch.ones(1, 1, 5, 6), torch.zeros(1, 4), torch.zeros(1, 4), sigma_mode="per_channel")
    torch.testing.assert_close(out.std(dim=(2, 3), unbiased=False), torch.ones(1, 2), atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="sigma_mode"):
        content_sigma(c, "bogus")


def test_style_heads_are_shared_by_default_and_separate_when_untied():
    tied = Generator(4, 2, 4, 8).s_encoder
    assert tied.foreground[0].conv.weight is tied.background[0].conv.weight
    untied = Generator(4, 2, 4, 8, tie_style_branches=False).s_encoder
    assert untied.foreground[0].conv.weight is not untied.background[0].conv.weight
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(untied) - count(tied) == count(tied.foreground)


def test_official_initialisation():
    model = _model(g_conv_dim=16)
    conv = model.generator.c_encoder.main[1].conv
    fan_in = conv.weight[0].numel()
    assert abs(conv.weight.std().item() - math.sqrt(2 / fan_in)) < 0.2 * math.sqrt(2 / fan_in)
    assert abs(model.discriminator.main[1].conv.weight.std().item() - 0.02) < 0.004
    assert all(not b.any() for n, b in model.named_parameters() if n.endswith("conv.bias") or n.endswith("fc.bias"))


# ------------------------------------------------------------------------------------------------ schedule


def test_generator_steps_every_n_critic_iterations_and_lr_decays_as_the_official_step_lr():
    model = _model(n_critic=2)
    inputs = _inputs(model)
    optimizers, _ = model.configure_optimizers()
    g_before = [p.detach().clone() for p in model.generator.parameters()]
    out = model.optimization_step(*inputs, *optimizers, iteration=1)
    assert "g_total" not in out.losses and "d_total" in out.losses
    assert all(torch.equal(a, b) for a, b in zip(g_before, model.generator.parameters(), strict=True))
    out = model.optimization_step(*inputs, *optimizers, iteration=2)
    assert "g_total" in out.losses
    assert not all(torch.equal(a, b) for a, b in zip(g_before, model.generator.parameters(), strict=True))

    model = _model(num_iters_decay=10, step_size=3, gamma=0.5, g_lr=1e-3)
    # the official loop steps StepLR after every iteration i > 10: iteration 11 still runs at the base rate
    assert [model.lr_at(i, 1e-3) for i in (0, 10, 11, 13, 14, 17)] == [1e-3, 1e-3, 1e-3, 1e-3, 5e-4, 2.5e-4]
    optimizers, _ = model.configure_optimizers()
    model.optimization_step(*inputs, *optimizers, iteration=14)
    assert optimizers[0].param_groups[0]["lr"] == pytest.approx(5e-4)
    assert _model(lr_policy="constant").lr_at(10**6, 1e-4) == 1e-4


def test_counter_without_trainer_follows_the_schedule():
    model = _model(n_critic=3)
    inputs = _inputs(model)
    optimizers, _ = model.configure_optimizers()
    steps = ["g_total" in model.optimization_step(*inputs, *optimizers).losses for _ in range(4)]
    assert steps == [True, False, False, True]


def test_iterations_equal_the_authors_call_sequence():
    """zoo's batched calls, reused D-step codes and replayed running statistics update the networks as the authors'
    ``update_D`` / ``update_G`` calls do (their call-by-call re-creation in ``bench/official_loops.py``, which the
    speed benchmark times), over D-only and G iterations."""
    spec = importlib.util.spec_from_file_location("official_loops", Path(__file__).parents[2] / "bench"
                                                  / "official_loops.py")
    official_loops = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(official_loops)
    model = _model(n_critic=2, lambda_mask_smooth=0.5, lambda_style_reg=0.25, channels_last=False).double()
    model.train()
    reference = official_loops.OfficialLOMITLoop(model)
    optimizers, _ = model.configure_optimizers()
    for iteration in range(3):
        inputs = [x.double() for x in _inputs(model, seed=iteration)]
        torch.manual_seed(iteration)  # the same gradient-penalty weights on both sides
        model.optimization_step(*inputs, *optimizers, iteration=iteration)
        torch.manual_seed(iteration)
        reference.step(*inputs)
    for net, official in ((model.generator, reference.G), (model.discriminator, reference.D)):
        for (name, value), expected in zip(net.state_dict().items(), official.state_dict().values(), strict=True):
            torch.testing.assert_close(value, expected, rtol=1e-7, atol=1e-9, msg=name)


def test_every_loss_term_of_the_reference_is_produced_and_weighted():
    model = _model(lambda_style_reg=0.5, lambda_mask_smooth=0.25)
    out = _step(model, _inputs(model))
    expected = {"g_fake", "g_cls", "g_x_rec", "g_x_cyc", "g_c", "g_s_f", "g_s_b", "g_style_reg", "g_mask_min",
                "g_mask_sim", "g_mask_smooth", "g_total", "d_total"}
    assert expected <= set(out.losses)
    assert {f"d_{t}_{s}" for t in ("real", "fake", "cls", "gp") for s in "ab"} <= set(out.losses)
    g_terms = [v for k, v in out.losses.items() if k.startswith("g_") and k != "g_total"]
    torch.testing.assert_close(out.losses["g_total"], sum(g_terms))
    assert out.losses["g_style_reg"] <= 0  # -0.5 * L1(s_fa, s_fb)


# ------------------------------------------------------------------------------------------------ mask-guided modes


def test_given_masks_build_no_mask_network_and_use_no_mask_losses():
    model = _model(mask_source="given")
    assert model.generator.mask is None
    assert not any(n.startswith("generator.mask.") for n in model.state_dict())
    out = _step(model, _inputs(model))
    assert not any(k.startswith("g_mask") for k in out.losses)
    with pytest.raises(ValueError, match="mask_a and mask_b"):
        a, b, la, lb, _, _ = _inputs(model)
        _step(model, (a, b, la, lb, None, None))


def test_given_masks_gate_hadain_on_the_content_grid_by_area_average():
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., :2, :6] = 1
    grid = downsample_mask(mask)
    assert grid.shape == (1, 1, 2, 2)
    torch.testing.assert_close(grid[0, 0], torch.tensor([[0.5, 0.25], [0.0, 0.0]]))


def test_paste_outside_mask_leaves_every_pixel_outside_the_mask_exactly_unchanged():
    model = _model(mask_source="given", paste_outside_mask=True)
    g = torch.Generator().manual_seed(3)
    images, exemplar = torch.rand(2, 3, 32, 32, generator=g), torch.rand(1, 3, 32, 32, generator=g)
    mask = torch.zeros(2, 1, 32, 32)
    mask[0, :, 4:20, 6:30] = 1
    mask[1, :, 10:14, 0:9] = 1
    out = model.translate(images, exemplar=exemplar, mask=mask, exemplar_mask=torch.ones(1, 1, 32, 32))
    outside = (mask == 0).expand_as(images)
    assert torch.equal(out[outside], images[outside])
    assert not torch.equal(out[~outside], images[~outside])
    plain = _model(mask_source="given").translate(images, exemplar=exemplar, mask=mask)
    assert not torch.equal(plain[outside], images[outside])  # without pasting the decoder touches everything


def test_given_plus_learned_supervises_the_mask_network_and_translates_with_or_without_masks():
    model = _model(mask_source="given+learned")
    assert model.generator.mask is not None
    inputs = _inputs(model)
    mask_params = [p.detach().clone() for p in model.generator.mask.parameters()]
    out = _step(model, inputs)
    assert "g_mask_sup" in out.losses and "g_mask_sim" not in out.losses
    assert not all(torch.equal(a, b) for a, b in zip(mask_params, model.generator.mask.parameters(), strict=True))
    images = (inputs[0] + 1) / 2
    with_masks = model.translate(images, exemplar=images.flip(0), mask=inputs[4], exemplar_mask=inputs[5])
    without = model.translate(images, exemplar=images.flip(0))
    assert with_masks.shape == without.shape == images.shape and not torch.equal(with_masks, without)


def test_learned_model_accepts_user_masks_at_inference():
    model = _model()
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 8:24, 8:24] = 1
    predicted = model.translate(images, exemplar=images.flip(0))
    given = model.translate(images, exemplar=images.flip(0), mask=mask)
    assert not torch.equal(predicted, given)


# ------------------------------------------------------------------------------------------------ inference API


def test_translate_broadcasts_the_exemplar_accepts_other_sizes_and_checks_masks():
    model = _model()
    g = torch.Generator().manual_seed(1)
    images = torch.rand(3, 3, 32, 32, generator=g)
    exemplar = torch.rand(1, 3, 48, 40, generator=g)
    out = model.translate(images, exemplar=exemplar, seed=0)
    assert out.shape == images.shape and 0 <= out.min() and out.max() <= 1
    torch.testing.assert_close(out, model.translate(images, exemplar=exemplar.expand(3, -1, -1, -1)))
    assert torch.equal(model.translate(images, exemplar=exemplar, direction="b2a"), out)
    with pytest.raises(ValueError, match="has size"):
        model.translate(images, exemplar=exemplar, mask=torch.ones(1, 1, 16, 16))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        model.translate(images, exemplar=exemplar, mask=torch.full((1, 1, 32, 32), 2.0))
    with pytest.raises(ValueError, match="multiples of 4"):
        model.translate(images[..., :30], exemplar=exemplar)
    with pytest.raises(ValueError, match="exemplar batch"):
        model.translate(images, exemplar=exemplar.expand(2, -1, -1, -1))


def test_translate_leaves_running_statistics_untouched_in_both_inference_modes():
    for mode in ("train", "eval"):
        model = _model(inference_mode=mode)
        buffers = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
        images = torch.rand(2, 3, 32, 32)
        out = model.translate(images, exemplar=images)
        assert out.shape == images.shape
        assert all(torch.equal(v, model.state_dict()[k]) for k, v in buffers.items())


def test_requires_exemplar_and_example_inputs_contract():
    model = _model(mask_source="given")
    assert LOMIT.requires_exemplar is True
    real_a, real_b, attr_a, attr_b, mask_a, mask_b = _inputs(model)
    assert real_a.shape == real_b.shape == (2, 3, 32, 32) and real_a.min() >= -1 and real_a.max() <= 1
    assert attr_a.shape == attr_b.shape == (2, 2)
    assert mask_a.shape == (2, 1, 32, 32) and set(mask_a.unique().tolist()) <= {0.0, 1.0} and mask_a.any()


# ------------------------------------------------------------------------------------------------ official checkpoints


def test_official_checkpoints_load_into_every_mode():
    official = _model()
    state_g = {f"module.{k}": v for k, v in official.official_state_dict("G").items()}  # a DataParallel file
    state_d = official.official_state_dict("D")
    for overrides in ({}, {"mask_source": "given"}, {"tie_style_branches": False}, {"ema_decay": 0.9}):
        model = _model(**overrides)
        model.load_official_weights(state_g, net="G")
        model.load_official_weights(state_d, net="D")
        converted = model.convert_official_state_dict(state_g, net="G")
        assert all(k.startswith("generator.") for k in converted)
        for key, value in model.official_state_dict("G").items():
            assert torch.equal(value, official.official_state_dict("G")[key]), key
        images = torch.rand(1, 3, 32, 32)
        if "mask_source" not in overrides:
            torch.testing.assert_close(model.translate(images, exemplar=images.flip(-1)),
                                       official.translate(images, exemplar=images.flip(-1)))
    with pytest.raises(ValueError, match="net must be one of"):
        official.convert_official_state_dict(state_d, net="X")


def test_init_args_from_official_config():
    config = {"C_DIM": 4, "IMG_SIZE": 128, "N_CRITIC": 5, "LAMBDA_MASK_SIM": 1.0, "LAMBDA_STYLE_REG": 0.01,
              "INIT": "kaiming", "G": {"FIRST_DIM": 64, "N_RES_BLOCKS": 8, "STYLE_DIM": 8, "MLP_DIM": 256},
              "D": {"FIRST_DIM": 64, "N_RES_BLOCKS": 6}, "GPU1": 0}
    args = LOMIT.init_args_from_official(config)
    assert args == {"c_dim": 4, "image_size": 128, "n_critic": 5, "lambda_mask_sim": 1.0, "lambda_style_reg": 0.01,
                    "init": "kaiming", "g_conv_dim": 64, "g_repeat_num": 8, "style_dim": 8, "mlp_dim": 256,
                    "d_conv_dim": 64, "d_repeat_num": 6}


def test_paper_default_sizes():
    model = LOMIT()
    count = lambda m: sum(p.numel() for p in m.parameters()) / 1e6  # noqa: E731
    assert count(model.generator) == pytest.approx(18.12, abs=0.01)  # the facts sheet: 18.12 M
    assert count(model.discriminator) == pytest.approx(44.75, abs=0.01)
    src, cls = model.discriminator(torch.zeros(1, 3, 128, 128))
    assert src.shape == (1, 1, 2, 2) and cls.shape == (1, 4)


def test_predict_masks_returns_the_co_segmentation_masks_at_image_resolution():
    model = _model()
    images, exemplar = torch.rand(2, 3, 32, 32), torch.rand(1, 3, 16, 24)
    mask, exemplar_mask = model.predict_masks(images, exemplar=exemplar)
    assert mask.shape == (2, 1, 32, 32) and exemplar_mask.shape == (2, 1, 16, 24)
    assert 0 <= mask.min() and mask.max() <= 1
    with pytest.raises(ValueError, match="no mask network"):
        _model(mask_source="given").predict_masks(images, exemplar=exemplar)
