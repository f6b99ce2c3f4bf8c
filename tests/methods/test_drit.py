"""DRIT / DRIT++ specifics: official layout and options, multimodal API, the d_iter schedule, the two update semantics.

The official content discriminator needs images of at least 209 px; the training tests use 64 px images with
``dis_content_n_down=1`` (one 7x7 stride-2 layer instead of three) at width 2.
"""

from __future__ import annotations

import copy

import pytest
import torch

from zoo.data import UnpairedDataModule
from zoo.methods import DRIT
from zoo.methods.drit import _LambdaRule
from zoo.nets import drit as nets
from zoo.trainer import ZooTrainer

SIZE = 64


def _model(**kwargs) -> DRIT:
    torch.manual_seed(0)
    return DRIT(**{"ch": 2, "dis_scale": 1, "dis_content_n_down": 1, **kwargs})


def _step(model: DRIT, size: int | tuple[int, int] = SIZE, **kwargs):
    optimizers = model.configure_optimizers()[0]
    real_a, real_b = model.example_inputs(2, size, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(2)
    return model.optimization_step(real_a, real_b, *optimizers, **kwargs), optimizers


# ------------------------------------------------------------------------------------------------ networks


def test_official_layout_widths_and_options():
    model = DRIT(ch=4, concat=True, dis_scale=3, dis_spectral_norm=True, input_dim_a=1, input_dim_b=3)
    state = model.state_dict()
    assert state["enc_c.conv_share.0.model.1.weight"].shape == (16, 16, 3, 3)  # content codes have 4 ch channels
    assert state["enc_c.convA.0.model.1.weight"].shape == (4, 1, 7, 7)  # per-domain channel counts
    assert state["enc_c.convB.0.model.1.weight"].shape == (4, 3, 7, 7)
    # the attribute is concatenated at four depths: 16 -> 24 -> (32 -> 16) -> (24 -> 12) -> 20 -> output channels
    assert state["gen.decA1.0.model.1.weight"].shape == (24, 24, 3, 3)
    assert state["gen.decA2.0.model.0.weight"].shape == (32, 16, 3, 3)
    assert state["gen.decA4.0.weight"].shape == (20, 1, 1, 1) and state["gen.decB4.0.weight"].shape == (20, 3, 1, 1)
    assert state["enc_a.fc_A.0.weight"].shape == (8, 16) and "enc_a.fcVar_B.0.bias" in state
    for key in ("weight_orig", "weight_u", "weight"):  # the official spectral-norm hook's keys, no weight_v
        assert f"dis_a.Diss.2.0.model.1.{key}" in state
    assert not any(k.endswith("weight_v") for k in state)
    assert len(model.dis_a.Diss) == 3 and isinstance(model.dis_content, nets.Dis_content)
    assert len(model.dis_content.model) == 5  # official: three 7x7 stride-2 layers, a 4x4 layer, a 1x1 conv
    small = DRIT(ch=2, dis_content_n_down=1).dis_content
    assert len(small.model) == 3 and small(torch.randn(2, 8, 16, 16))[0].shape == (2 * 3 * 3,)
    featurewise = DRIT(ch=4, concat=False, dis_scale=1)
    assert isinstance(featurewise.gen, nets.G) and isinstance(featurewise.enc_a, nets.E_attr)
    assert isinstance(featurewise.dis_b2, nets.Dis)
    assert featurewise.state_dict()["gen.mlpB.4.weight"].shape == (64, 16)


def test_official_initialisation_and_ignored_dis_norm():
    model = DRIT(ch=8, dis_norm="Instance")
    conv = model.enc_c.convA[1].model[1].weight
    assert abs(float(conv.detach().std()) - 0.02) < 0.005
    ln = model.gen.decA2[0].model[1]
    assert torch.equal(ln.weight, torch.ones_like(ln.weight)) and torch.equal(ln.bias, torch.zeros_like(ln.bias))
    # dis_norm="Instance" has no effect (official bug): no normalisation layer anywhere in the discriminators
    assert not any(isinstance(m, torch.nn.InstanceNorm2d) for m in model.dis_a.modules())
    leaky = [m for m in model.dis_content.modules() if isinstance(m, torch.nn.LeakyReLU)]
    assert leaky and all(m.negative_slope == 0.01 for m in leaky)


def test_spectral_norm_eval_uses_the_stored_weight():
    conv = nets.SNConv2d(3, 4, 3)
    x = torch.randn(1, 3, 8, 8)
    u0 = conv.weight_u.clone()
    conv.train()
    y_train = conv(x)
    stored = conv.weight.clone()
    with torch.no_grad():
        conv.weight_orig.mul_(3.0)  # eval mode must not renormalise
    conv.eval()
    torch.testing.assert_close(conv(x), y_train.detach())
    assert torch.equal(conv.weight, stored)
    mat = conv.weight_orig.reshape(4, -1) / 3.0
    v = torch.nn.functional.normalize(mat.t().mv(u0), dim=0)  # one power iteration from the initial u
    u = torch.nn.functional.normalize(mat.mv(v), dim=0)
    torch.testing.assert_close(stored, conv.weight_orig / 3.0 / u.dot(mat.mv(v)))
    assert u.dot(mat.mv(v)) <= torch.linalg.matrix_norm(mat, ord=2) * (1 + 1e-6)  # the estimate never overshoots


# ------------------------------------------------------------------------------------------------ multimodal API


def test_translate_codes_styles_references_and_errors():
    model = _model(ch=2).eval()
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    y = model.translate(x, seed=5)
    assert y.shape == (3, 3, 32, 32) and 0 <= y.min() and y.max() <= 1
    torch.testing.assert_close(model.translate(x, seed=5), y, rtol=0, atol=0)
    assert not torch.equal(model.translate(x, seed=6), y)
    many = model.translate(x, num_styles=4, seed=5)
    assert many.shape == (3, 4, 3, 32, 32)
    codes = torch.randn(4, 8)
    many = model.translate(x, style=codes, num_styles=4)
    torch.testing.assert_close(many[:, 2], model.translate(x, style=codes[2]))  # column k = code k for every image
    torch.testing.assert_close(model.translate(x, style=codes[2]), model.translate(x, style=codes[2:3]))
    per_image = model.translate(x, style=codes[:3])
    torch.testing.assert_close(per_image[1], model.translate(x[1:2], style=codes[1])[0])
    ref = torch.rand(1, 3, 48, 40)
    with_ref = model.translate(x, reference=ref, direction="b2a")
    assert with_ref.shape == (3, 3, 32, 32)
    _, attribute = model.encode(ref * 2 - 1, domain="a")
    torch.testing.assert_close(with_ref, model.translate(x, style=attribute, direction="b2a"))
    for kwargs in ({"style": codes[:1], "reference": ref}, {"reference": ref, "num_styles": 2},
                   {"style": codes, "num_styles": 2}, {"style": codes[:2]}, {"num_styles": 0},
                   {"style": torch.randn(3, 5)}, {"reference": torch.rand(2, 3, 32, 32)}):
        with pytest.raises(ValueError):
            model.translate(x, **kwargs)
    with pytest.raises(ValueError):
        model.translate(x[:, :, :30])  # not a multiple of 4


def test_encode_decode_shapes_and_agreement_with_translate():
    model = _model(concat=False, input_dim_a=1, input_dim_b=3).eval()
    x = torch.rand(2, 1, 36, 44)  # non-square, one channel in domain A
    content, attribute = model.encode(x * 2 - 1, domain="a")
    assert content.shape == (2, 8, 9, 11) and attribute.shape == (2, 8)
    z = torch.randn(2, 8)
    out = model.decode(content, z, domain="b")
    assert out.shape == (2, 3, 36, 44)
    torch.testing.assert_close(model.translate(x, style=z), ((out + 1) / 2).clamp(0, 1))
    back = model.translate(torch.rand(2, 3, 36, 44), direction="b2a", seed=0)
    assert back.shape == (2, 1, 36, 44)
    assert model(x * 2 - 1, z).shape == (2, 3, 36, 44)


# ------------------------------------------------------------------------------------------------ training


def test_content_only_iteration_updates_only_the_content_discriminator_with_clipping():
    model = _model()
    before = copy.deepcopy(model.state_dict())
    out, _ = _step(model, content_only=True)
    assert set(out.losses) == {"d_content", "d_content_grad_norm"}
    grad_norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.dis_content.parameters()]))
    assert grad_norm <= 5.0 + 1e-4
    changed = {k.split(".")[0] for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"dis_content"}


def test_full_iteration_two_encoder_generator_steps_attribute_encoder_once():
    model = _model(mode_seeking=True)
    out, (_, _, opt_eg) = _step(model, size=(SIZE, 68))  # non-square
    steps = {id(p): int(opt_eg.state[p]["step"]) for p in opt_eg.param_groups[0]["params"]}
    assert {steps[id(p)] for p in model.enc_a.parameters()} == {1}
    assert {steps[id(p)] for p in (*model.enc_c.parameters(), *model.gen.parameters())} == {2}
    expected = {"d_a", "d_b", "d_a2", "d_b2", "d_content", "d_content_grad_norm", "eg_total", "ms_ab", "ms_ba"}
    assert expected <= set(out.losses)
    for side in ("a", "b"):
        for term in ("gan", "gan_content", "cycle", "self_rec", "kl_attr", "kl_content", "gan_random", "latent"):
            assert f"{term}_{side}" in out.losses
    # weights as officially: l1 x10, KL x0.01, KL summed over the 8 attribute dimensions (concat variant)
    f = out.images
    kl = -0.5 * torch.sum(1 + f["logvar_a"] - f["mu_a"] ** 2 - f["logvar_a"].exp())
    torch.testing.assert_close(out.losses["kl_attr_a"], 0.01 * kl)
    torch.testing.assert_close(out.losses["cycle_a"], 10 * (f["fake_A_recon"] - f["real_A_encoded"]).abs().mean())
    lz = (f["fake_B_random2"] - f["fake_B_random"]).abs().mean() / (f["z_random2"] - f["z_random"]).abs().mean()
    torch.testing.assert_close(out.losses["ms_ab"], 1 / (lz + 1e-5))
    assert f["fake_A_encoded"].shape == (1, 3, SIZE, 68)  # only the first image of the batch is translated
    no_ms, _ = _step(_model(mode_seeking=False))
    assert "ms_ab" not in no_ms.losses and "fake_A_random2" not in no_ms.images


@pytest.mark.parametrize("mode_seeking", [True, False])
def test_legacy_and_clean_second_update(mode_seeking):
    legacy, clean = _model(mode_seeking=mode_seeking), _model(mode_seeking=mode_seeking, eg_update="clean")
    clean.load_state_dict(legacy.state_dict())
    _step(legacy)
    _step(clean)
    for name in ("enc_a", "dis_a", "dis_b2", "dis_content"):  # identical under both semantics
        for (key, a), b in zip(getattr(legacy, name).state_dict().items(), getattr(clean, name).state_dict().values(),
                               strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-7, msg=f"{name}.{key}")
    diff = max(float((a - b).abs().max()) for a, b in zip(legacy.gen.parameters(), clean.gen.parameters(),
                                                            strict=True))
    if mode_seeking:
        assert diff <= 2.5e-4  # at most ~2 lr apart
    else:
        assert diff < 1e-6  # without mode seeking the second backward barely depends on the updated weights


def test_batches_of_one_are_refused_for_full_iterations():
    model = _model()
    optimizers = model.configure_optimizers()[0]
    a = torch.rand(1, 3, SIZE, SIZE) * 2 - 1
    with pytest.raises(ValueError, match="at least 2"):
        model.optimization_step(a, a, *optimizers)


def test_d_iter_schedule_and_lambda_lr_in_a_trainer(tmp_path):
    """8 items, batch 2 -> 4 batches: content-only on batches 0 and 1, full updates on 2 (d_iter) and 3 (last two)."""
    model = _model(d_iter=3, n_ep=3, n_ep_decay=0)
    data = UnpairedDataModule(root=None, image_size=SIZE, toy_length=8, toy_test_length=2, batch_size=2, val_size=2)
    trainer = ZooTrainer(accelerator="cpu", default_root_dir=tmp_path, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, enable_image_grid=False, limit_val_batches=0, max_epochs=1,
                         enable_checkpointing=False)
    trainer.fit(model, datamodule=data)
    assert trainer.global_step == 1 + 1 + 4 + 4
    # the lambda policy was stepped once at the end of the epoch: epoch 1 -> factor 1 - max(0, 1 - 0) / (3 - 0 + 1)
    lrs = [opt.param_groups[0]["lr"] for opt in trainer.optimizers]
    assert lrs == pytest.approx([0.75e-4, 0.75 * 4e-5, 0.75e-4])


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")
def test_official_lr_policies():
    rule = _LambdaRule(1200, 600)
    assert rule(0) == rule(600) == 1.0
    assert rule(601) == pytest.approx(1 - 1 / 601) and rule(1199) == pytest.approx(2 / 601)
    model = _model(lr_policy="step", n_ep_decay=2)
    optimizers, schedulers = model.configure_optimizers()
    assert optimizers[1].param_groups[0]["lr"] == pytest.approx(1e-4 / 2.5)
    for _ in range(2):
        schedulers[0]["scheduler"].step()
    assert optimizers[0].param_groups[0]["lr"] == pytest.approx(1e-5)
    assert _model(n_ep_decay=-1).configure_optimizers()[1] == []
    with pytest.raises(ValueError):
        _model(lr_policy="step", n_ep_decay=0)


# ------------------------------------------------------------------------------------------------ official checkpoints


def test_official_options_and_checkpoint_round_trip():
    opts = {"input_dim_a": 1, "input_dim_b": 3, "concat": 0, "no_ms": True, "dis_scale": 2, "dis_norm": "None",
            "dis_spectral_norm": True, "lr_policy": "lambda", "n_ep": 10, "n_ep_decay": 5, "d_iter": 1, "gpu": 0,
            "batch_size": 2, "crop_size": 216, "resize_size": 256, "dataroot": "x", "no_flip": False}
    args = DRIT.init_args_from_official(opts)
    assert args == {"input_dim_a": 1, "input_dim_b": 3, "concat": False, "mode_seeking": False, "dis_scale": 2,
                    "dis_norm": "None", "dis_spectral_norm": True, "lr_policy": "lambda", "n_ep": 10,
                    "n_ep_decay": 5, "d_iter": 1}
    with pytest.raises(ValueError, match="unknown official DRIT option"):
        DRIT.init_args_from_official({**opts, "lambda_unknown": 1})
    source = DRIT(ch=2, **args)
    checkpoint = {name: {f"module.{k}": v for k, v in source.official_state_dict(name).items()}
                  for name in DRIT.OFFICIAL_NETWORKS}
    checkpoint.update(ep=3, total_it=10, gen_opt={})
    converted = source.convert_official_state_dict(checkpoint)
    assert set(converted) == {k for k in source.state_dict() if not k.startswith("ema.")}
    target = DRIT(ch=2, **args, ema_decay=0.9)
    target.load_official_weights(checkpoint)
    x = torch.rand(2, 1, 32, 32)
    torch.testing.assert_close(target.translate(x, seed=0), source.translate(x, seed=0), rtol=0, atol=0)
    with pytest.raises(ValueError, match="lacks"):
        target.load_official_weights({"gen": checkpoint["gen"]})
    with pytest.raises(RuntimeError):
        DRIT(ch=4, **args).load_official_weights(checkpoint)  # wrong width: shapes checked
