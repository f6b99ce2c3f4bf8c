"""SRUNIT-specific behaviour: the discriminator-only epochs, the semantic-robustness regulariser (v1 / v2), noise on
D's inputs, FastCUT mode (broken officially), option checks and the official options."""

from __future__ import annotations

import copy
import json
import warnings
from typing import Any

import pytest
import torch
from torch import Tensor

from tests.methods.tiny_configs import build_tiny_datamodule
from tests.parity.manifest import reference_dir
from zoo.methods.srunit import SRUNIT
from zoo.trainer import ZooTrainer

TINY: dict[str, Any] = dict(ngf=4, ndf=4, netG="resnet_6blocks", num_patches=16, netf_nc=16, channels_last=False)
SIZE = 32
#: a regulariser strong enough for its effect to be far above float32 noise
STRONG_REG: dict[str, Any] = dict(reg=0.5, reg_noise=0.05, inact_epochs=0)


def _model(**overrides: Any) -> SRUNIT:
    torch.manual_seed(0)
    model = SRUNIT(**{**TINY, **overrides})
    model.train()
    return model


def _inputs(batch: int = 1, seed: int = 1) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, 3, SIZE, SIZE, generator=g) * 2 - 1,
            torch.rand(batch, 3, SIZE, SIZE, generator=g) * 2 - 1)


def _states(model: SRUNIT) -> dict[str, dict[str, Tensor]]:
    return {name: copy.deepcopy(net.state_dict()) for name, net in
            (("G", model.generator), ("D", model.discriminator), ("F", model.patch_sampler))}


def _changed(model: SRUNIT, before: dict[str, dict[str, Tensor]]) -> dict[str, bool]:
    after = _states(model)
    return {name: any(not torch.equal(v, before[name][k]) for k, v in after[name].items()) for name in before}


def _sampler_grads_after_one_step(model: SRUNIT, draws: dict[str, Any]) -> dict[str, Tensor]:
    """Gradients the patch sampler received in one step (lr = 0, so they are all the step leaves behind)."""
    torch.manual_seed(11)  # the same patch positions for every model of a comparison
    model.optimization_step(*_inputs(), *model.configure_optimizers()[0], draws=draws, epoch=1)
    return {name: p.grad.clone() for name, p in model.patch_sampler.named_parameters() if p.grad is not None}


# ------------------------------------------------------------------------------------------------ inactive epochs


def test_inactive_epochs_train_only_the_discriminator():
    model = _model(reg=0.01, inact_epochs=3)
    before = _states(model)
    out = model.optimization_step(*_inputs(), *model.configure_optimizers()[0], epoch=3)
    assert _changed(model, before) == {"G": False, "D": True, "F": False}
    # the G objective is still reported (as the official code computes it), without the regulariser
    assert {"d_fake", "d_real", "g_gan", "g_total"} <= set(out.losses) and "g_reg" not in out.losses


def test_after_the_inactive_epochs_the_generator_trains_with_the_regulariser():
    model = _model(reg=0.01, inact_epochs=3)
    before = _states(model)
    out = model.optimization_step(*_inputs(), *model.configure_optimizers()[0], epoch=4)
    assert _changed(model, before) == {"G": True, "D": True, "F": True}
    assert torch.isfinite(out.losses["g_reg"]) and out.losses["g_reg"] > 0


def test_train_generator_when_inactive_trains_g_and_f_without_the_regulariser():
    model = _model(reg=0.01, inact_epochs=3, train_generator_when_inactive=True)
    before = _states(model)
    out = model.optimization_step(*_inputs(), *model.configure_optimizers()[0], epoch=3)
    assert _changed(model, before) == {"G": True, "D": True, "F": True}
    assert "g_reg" not in out.losses and torch.isfinite(out.losses["g_total"])


def test_training_start_warns_about_the_discriminator_only_epochs(tmp_path):
    model = _model(reg=0.01, inact_epochs=100)
    trainer = ZooTrainer(accelerator="cpu", default_root_dir=tmp_path, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, enable_image_grid=False, enable_checkpointing=False, max_steps=1)
    with pytest.warns(UserWarning, match="trains only the discriminator until epoch 100"):
        trainer.fit(model, datamodule=build_tiny_datamodule("srunit"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning once the generator trains in those epochs
        _model(reg=0.01, inact_epochs=100, train_generator_when_inactive=True).on_train_start()


# ------------------------------------------------------------------------------------------------ regulariser


@pytest.mark.parametrize("reg_type", ["v1", "v2"])
def test_only_v2_sends_the_regulariser_gradient_to_the_patch_sampler(reg_type):
    draws = {"reg_choice": 2}
    without = _sampler_grads_after_one_step(_model(**{**STRONG_REG, "reg": 0.0}, lr=0.0), draws)
    with_reg = _sampler_grads_after_one_step(_model(**STRONG_REG, reg_type=reg_type, lr=0.0), draws)
    assert with_reg.keys() == without.keys()
    if reg_type == "v1":
        for name, grad in with_reg.items():
            torch.testing.assert_close(grad, without[name], msg=lambda m, name=name: f"{name}: {m}")
    else:  # the chosen scale's MLP (index 2) gets the regulariser's gradient on top of the NCE one
        chosen = [name for name in with_reg if name.startswith("mlp_2.")]
        assert chosen and all(not torch.allclose(with_reg[n], without[n]) for n in chosen)


def test_v1_still_sends_the_regulariser_gradient_to_the_generator():
    draws = {"reg_choice": 2}
    grads = []
    for reg in (0.0, STRONG_REG["reg"]):
        model = _model(**{**STRONG_REG, "reg": reg}, reg_type="v1", lr=0.0)
        torch.manual_seed(11)
        model.optimization_step(*_inputs(), *model.configure_optimizers()[0], draws=draws, epoch=1)
        grads.append(torch.cat([p.grad.flatten() for p in model.generator.parameters() if p.grad is not None]))
    assert not torch.allclose(grads[0], grads[1])


def test_regulariser_scale_is_drawn_from_reg_layers():
    model = _model(**STRONG_REG, reg_layers=[1, 3])
    real_a = _inputs()[0]
    with torch.no_grad():
        keys = model.generator(real_a, model.nce_layers, encode_only=True)
        chosen = {int(model.regularizer(real_a, keys, {}, epoch=1)[1]["reg_choice"]) for _ in range(12)}
    assert chosen == {1, 3}


# ------------------------------------------------------------------------------------------------ D noise


def test_discriminator_input_noise_is_added_with_its_scale():
    noisy, plain = _model(d_noise=0.1), _model(d_noise=0.0)  # same seed: same weights
    x = _inputs()[0]
    with torch.no_grad():
        torch.manual_seed(3)
        out = noisy.discriminator(x)
        torch.manual_seed(3)
        expected = plain.discriminator(x + 0.1 * torch.randn(x.shape))
        assert not torch.equal(noisy.discriminator(x), noisy.discriminator(x))  # stochastic
    torch.testing.assert_close(out, expected)


def test_zero_discriminator_noise_draws_nothing():
    model = _model(d_noise=0.0)
    x = _inputs()[0]
    state = torch.get_rng_state()
    with torch.no_grad():
        first, second = model.discriminator(x), model.discriminator(x)
    assert torch.equal(torch.get_rng_state(), state) and torch.equal(first, second)


# ------------------------------------------------------------------------------------------------ FastCUT mode


@pytest.mark.parametrize("flip", [True, False])
def test_fastcut_mode_trains_every_network_with_finite_losses(flip):
    """The official code trains D on an empty real batch here (NaN); zoo keeps the real B batch."""
    model = _model(mode="fastcut", **STRONG_REG)
    real_a, real_b = _inputs()
    reference, before = copy.deepcopy(model), _states(model)
    out = model.optimization_step(real_a, real_b, *model.configure_optimizers()[0], draws={"flip": flip}, epoch=1)
    assert model.hparams.nce_idt is False and "idt_b" not in out.images
    assert {"g_nce", "g_reg", "d_real"} <= set(out.losses)
    assert all(torch.isfinite(v).all() for v in out.losses.values())
    with torch.no_grad():  # D's loss comes before its update
        torch.testing.assert_close(out.losses["d_real"], 0.5 * ((reference.discriminator(real_b) - 1) ** 2).mean())
    assert _changed(model, before) == {"G": True, "D": True, "F": True}


# ------------------------------------------------------------------------------------------------ options


def test_invalid_regulariser_options_name_the_option():
    with pytest.raises(ValueError, match=r"reg_layers are indices into nce_layers \[0, 4, 8, 12, 16\] \(0..4\)"):
        _model(reg_layers=[0, 5])
    with pytest.raises(ValueError, match="reg_layers"):
        _model(reg_layers="")
    with pytest.raises(ValueError, match="reg_type"):
        _model(reg_type="v3")
    with pytest.raises(ValueError, match="reg_noise"):
        _model(reg_noise=0.0)


@pytest.mark.parametrize("official_mode", ["CUT_mode=CUT", "CUT_mode=FastCUT"])
def test_init_args_from_the_official_defaults(official_mode):
    path = reference_dir() / "srunit" / "MANIFEST.json"
    if not path.is_file():
        pytest.skip(f"no oracle fixtures: {path} does not exist")
    options = json.loads(path.read_text())["official_defaults"][official_mode]
    args = SRUNIT.init_args_from_official(options)
    assert (args["reg"], args["reg_noise"], args["reg_type"], args["reg_layers"], args["inact_epochs"],
            args["d_noise"]) == (0.001, 0.001, "v2", [0, 1, 2, 3, 4], 100, 0.0)
    model = SRUNIT(**args)
    h = model.hparams
    fast = official_mode.endswith("FastCUT")
    assert h.mode == ("fastcut" if fast else "cut") and not h.train_generator_when_inactive
    assert (h.lambda_nce, h.nce_idt, h.flip_equivariance, h.n_epochs, h.n_epochs_decay) == (
        (10.0, False, True, 150, 50) if fast else (1.0, True, False, 200, 200))
    assert model.reg_layers == [0, 1, 2, 3, 4] and model.nce_layers == [0, 4, 8, 12, 16]
    assert model.patch_sampler.normalize == "srunit"


def test_a_model_with_discriminator_noise_pickles_for_spawned_processes():
    """DDP spawn pickles the module, its forward pre-hooks included."""
    import pickle

    restored = pickle.loads(pickle.dumps(_model(d_noise=0.1)))
    x = torch.zeros(1, 3, 32, 32)
    assert not torch.equal(restored.discriminator(x), restored.discriminator(x))  # the noise hook came along
