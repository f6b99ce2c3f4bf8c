"""DECENT-specific behaviour: losses, flow optimizer and EMA, update order, schedules, official options and files."""

from __future__ import annotations

import argparse
import copy
import math

import pytest
import torch

from zoo.methods.decent import DECENT, density_change_variance, flow_nll
from zoo.nets.cut import CUTResnetGenerator, build_cut_generator
from zoo.nets.flows import MAF, MAFMOG, NSF, BNAFModel, FlowEMA, PatchDensityEstimator, gather_patches

TINY = dict(ngf=4, ndf=4, netG="resnet_6blocks", num_patches=8, bnaf_dim=3, channels_last=False)


def _model(**overrides) -> DECENT:
    torch.manual_seed(0)
    model = DECENT(**{**TINY, **overrides})
    model.train()
    return model


def _inputs(batch: int = 2, size: int = 32, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, size, size, generator=g) * 2 - 1, torch.rand(batch, 3, size, size, generator=g) * 2 - 1


class _Recorder:
    """Optimizer pass-through that logs its steps (name) and the gradient norms of given modules at step time."""

    def __init__(self, optimizer, name: str, log: list, norms: dict, modules: dict) -> None:
        self._optimizer, self._name, self._log, self._norms, self._modules = optimizer, name, log, norms, modules

    def __getattr__(self, attr):
        return getattr(self._optimizer, attr)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self._optimizer.zero_grad(set_to_none)

    def step(self) -> None:
        self._log.append(self._name)
        for key, module in self._modules.items():
            grads = [p.grad for p in module.parameters() if p.grad is not None]
            self._norms[key] = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        self._optimizer.step()


# ------------------------------------------------------------------------------------------------ losses


def test_variance_loss_is_unbiased_bits_per_dimension_per_image_or_over_all_patches():
    torch.manual_seed(0)
    batch, patches, dims = 2, 5, [3, 16]
    lp_a = [torch.randn(batch * patches) * 10 for _ in dims]
    lp_b = [torch.randn(batch * patches) * 10 for _ in dims]
    per_image = [((a - b) / (d * math.log(2))).view(batch, patches).var(1, unbiased=True).mean()
                 for a, b, d in zip(lp_a, lp_b, dims, strict=False)]
    all_patches = [((a - b) / (d * math.log(2))).var(unbiased=True) for a, b, d in zip(lp_a, lp_b, dims, strict=False)]
    var, exp_a, exp_b = density_change_variance(lp_a, lp_b, dims, batch)
    torch.testing.assert_close(var, sum(per_image) / len(dims))
    torch.testing.assert_close(exp_a, -sum(a.mean() for a in lp_a))
    torch.testing.assert_close(exp_b, -sum(b.mean() for b in lp_b))
    torch.testing.assert_close(density_change_variance(lp_a, lp_b, dims, batch, var_all=True)[0],
                               sum(all_patches) / len(dims))
    loss, nll_a, nll_b = flow_nll(lp_a, lp_b)
    torch.testing.assert_close(loss, (nll_a + nll_b) / len(dims))
    torch.testing.assert_close(nll_a, -sum(a.mean() for a in lp_a))


def test_variance_gradient_reaches_only_the_target_domain_log_density():
    lp_a = [torch.randn(8, requires_grad=True)]
    lp_b = [torch.randn(8, requires_grad=True)]
    density_change_variance(lp_a, lp_b, [4], 2)[0].backward()
    assert lp_a[0].grad is None
    assert lp_b[0].grad is not None and lp_b[0].grad.abs().sum() > 0


def test_one_step_with_frozen_learning_rates_reproduces_every_loss_term():
    """lr = flow_lr = 0: weights stay, so every term can be recomputed from the initial networks; the variance term
    must use the flows' averaged weights, which after one step are (1 - 0.998) * w (the average starts at zero)."""
    model = _model(lr=0.0, flow_lr=0.0, lambda_var=0.5)
    ref = copy.deepcopy(model)
    a, b = _inputs()
    ids = {key: [torch.arange(8) + i for i in range(len(model.var_layers))] for key in ("flow_a", "flow_b", "var")}
    out = model.optimization_step(a, b, *model.configure_optimizers()[0], patch_ids=ids)
    with torch.no_grad():
        fake_b, feats_a = ref.generator(a, ref.var_layers)
        idt_b, feats_b = ref.generator(b, ref.var_layers)
        lp_a = [ref.density_a.flow(i)(gather_patches(f, ids["flow_a"][i])) for i, f in enumerate(feats_a)]
        lp_b = [ref.density_b.flow(i)(gather_patches(f, ids["flow_b"][i])) for i, f in enumerate(feats_b)]
        torch.testing.assert_close(out.losses["flow_nll"], flow_nll(lp_a, lp_b)[0])
        torch.testing.assert_close(out.losses["d_fake"], 0.5 * (ref.discriminator(fake_b) ** 2).mean())
        torch.testing.assert_close(out.losses["d_real"], 0.5 * ((ref.discriminator(b) - 1) ** 2).mean())
        torch.testing.assert_close(out.losses["g_gan"], ((ref.discriminator(fake_b) - 1) ** 2).mean())
        torch.testing.assert_close(out.losses["g_idt"], 10.0 * (idt_b - b).abs().mean())
        ema_a, ema_b = copy.deepcopy(ref.density_a), copy.deepcopy(ref.density_b)
        for p in [*ema_a.parameters(), *ema_b.parameters()]:
            p.mul_(1 - 0.998)
        feats_fake = ref.generator(fake_b, ref.var_layers, encode_only=True)
        src = [ema_a.flow(i)(gather_patches(f, ids["var"][i])) for i, f in enumerate(feats_a)]
        fake = [ema_b.flow(i)(gather_patches(f, ids["var"][i])) for i, f in enumerate(feats_fake)]
        dims = ref.generator.feature_channels(ref.var_layers)
        var = density_change_variance(src, fake, dims, 2)[0]
        torch.testing.assert_close(out.losses["var"], var)
        torch.testing.assert_close(out.losses["g_var"], 0.5 * var)
        torch.testing.assert_close(out.losses["g_total"], out.losses["g_gan"] + out.losses["g_idt"] + 0.5 * var)
    for name, averaged in model.density_a_ema.tensors().items():
        torch.testing.assert_close(averaged, (1 - 0.998) * dict(model.density_a.named_parameters())[name])


def test_update_order_flow_clipping_per_estimator_and_generator_gradient_path():
    model = _model(lambda_var=1.0, flow_grad_clip=1e-3)
    log, norms = [], {}
    opt_g, opt_d, opt_f = model.configure_optimizers()[0]
    modules = {"F_A": model.density_a, "F_B": model.density_b}
    recorded = (_Recorder(opt_g, "G", log, {}, {}), _Recorder(opt_d, "D", log, {}, {}),
                _Recorder(opt_f, "F", log, norms, modules))
    model.optimization_step(*_inputs(), *recorded)
    assert log == ["F", "D", "G"]
    # each estimator is clipped on its own (a joint clip would leave a combined norm of 1e-3, not each)
    assert norms["F_A"] == pytest.approx(1e-3, rel=1e-4) and norms["F_B"] == pytest.approx(1e-3, rel=1e-4)
    # after the G step the flows and D hold no gradient from it: G's step used the EMA buffers and a frozen D
    assert all(p.grad is None or p.grad.abs().sum() > 0 for p in model.generator.parameters())
    assert all(p.requires_grad for p in model.discriminator.parameters())


def test_flow_optimizer_matches_the_official_amsgrad_adam_with_uncorrected_eps():
    model = _model()
    opt_f = model.configure_optimizers()[0][2]
    group = opt_f.param_groups[0]
    assert group["amsgrad"] and group["lr"] == 1e-3 and group["betas"] == (0.9, 0.999)
    params = [p for g in opt_f.param_groups for p in g["params"]]
    start = [p.detach().clone() for p in params]
    torch.manual_seed(3)
    grads = [[torch.randn_like(p) * 1e-6 for p in params] for _ in range(3)]
    for step_grads in grads:
        for p, g in zip(params, step_grads, strict=False):
            p.grad = g.clone()
        model._official_flow_eps(opt_f)
        opt_f.step()
    # the official custom Adam: denom = sqrt(max v) + eps, step = lr * sqrt(bc2) / bc1
    for p, w0, i in zip(params, start, range(len(params)), strict=False):
        w, m, v, vmax = w0.clone(), torch.zeros_like(w0), torch.zeros_like(w0), torch.zeros_like(w0)
        for t, step_grads in enumerate(grads, 1):
            g = step_grads[i]
            m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
            vmax = torch.maximum(vmax, v)
            w = w - 1e-3 * math.sqrt(1 - 0.999**t) / (1 - 0.9**t) * m / (vmax.sqrt() + 1e-8)
        torch.testing.assert_close(p.detach(), w, rtol=1e-5, atol=1e-9)


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)`")
def test_linear_decay_applies_to_all_three_optimizers():
    model = _model(n_epochs=2, n_epochs_decay=3)
    optimizers, schedulers = model.configure_optimizers()
    assert len(schedulers) == 3 and [s["scheduler"].optimizer for s in schedulers] == optimizers
    for _ in range(4):
        for s in schedulers:
            s["scheduler"].step()
    factor = 1 - max(0, 4 + 1 - 2) / (3 + 1)
    assert [o.param_groups[0]["lr"] for o in optimizers] == pytest.approx([2e-4 * factor, 2e-4 * factor,
                                                                          1e-3 * factor])


# ------------------------------------------------------------------------------------------------ networks


def test_flows_are_built_eagerly_from_the_generator_feature_channels():
    model = _model()
    channels = model.generator.feature_channels(model.var_layers)
    assert channels == [3, 8, 16, 16, 16]  # padded image, first down conv, second down conv, two residual blocks
    keys = model.density_a.state_dict().keys()
    assert "initialized" in keys and {f"flow_{i}.model.0.0._weight" for i in range(5)} <= keys
    feats = model.generator(_inputs()[0], model.var_layers, encode_only=True)
    assert [f.shape[1] for f in feats] == channels


def test_patches_share_positions_across_the_batch_and_are_image_major():
    feat = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).view(2, 3, 4, 4)
    ids = torch.tensor([5, 0, 15])
    x = gather_patches(feat, ids)
    expected = feat.permute(0, 2, 3, 1).flatten(1, 2)[:, ids].flatten(0, 1)
    assert torch.equal(x, expected)
    estimator = PatchDensityEstimator([3], bnaf_dim=2)
    _, _, used = estimator([feat], num_patches=3)
    assert used[0].shape == (3,) and used[0].unique().numel() == 3


def test_flows_compute_in_float32_under_bf16_autocast():
    estimator = PatchDensityEstimator([4], bnaf_dim=2)
    feat = torch.randn(1, 4, 4, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        lp, _, _ = estimator([feat.bfloat16()], num_patches=4)
    assert lp[0].dtype == torch.float32


@pytest.mark.parametrize("flow_type", ["bnaf", "maf", "nsf", "mafmog"])
def test_every_flow_type_trains_one_step(flow_type):
    model = _model(flow_type=flow_type, maf_dim=8, maf_layers=1, maf_comps=2, flow_blocks=2, bnaf_layers=2,
                   var_layers=[0, 4], num_patches=6)
    flow = model.density_a.flow(0)
    assert isinstance(flow, {"bnaf": BNAFModel, "maf": MAF, "nsf": NSF, "mafmog": MAFMOG}[flow_type])
    before = copy.deepcopy(model.density_b.state_dict())
    out = model.optimization_step(*_inputs(), *model.configure_optimizers()[0])
    assert all(torch.isfinite(v) for v in out.losses.values())
    assert any(not torch.equal(v, before[k]) for k, v in model.density_b.state_dict().items())


def test_generator_taps_follow_the_official_in_place_relu_aliasing():
    net = build_cut_generator(ngf=4, netG="resnet_6blocks", no_antialias=True, no_antialias_up=True)
    _, feats = net(torch.randn(1, 3, 16, 16), [4, 8])
    assert feats[0].min() < 0  # layer 4: the stride-2 conv output (the next layer, a norm, is not in place)
    assert feats[1].min() >= 0  # layer 8: a norm output that the following ReLU(inplace=True) overwrites


# ------------------------------------------------------------------------------------------------ official options


def test_every_official_option_maps_to_the_constructor():
    opt = argparse.Namespace(
        input_nc=3, output_nc=3, ngf=6, ndf=5, netG="resnet_6blocks", netD="n_layers", n_layers_D=2,
        normG="instance", normD="none", init_type="normal", init_gain=0.03, no_dropout=True, no_antialias=True,
        no_antialias_up=True, gan_mode="vanilla", lambda_GAN=2.0, lambda_var=0.1, lambda_idt=5.0,
        var_layers="0,4,8", num_patches=12, flow_type="maf", maf_dim=16, maf_layers=1, maf_comps=3, flow_blocks=2,
        bnaf_layers=1, bnaf_dim=3, flow_lr=2e-3, flow_ema=0.99, var_all=True, lr=1e-4, beta1=0.4, beta2=0.9,
        lr_policy="linear", n_epochs=3, n_epochs_decay=4, epoch_count=1, lr_decay_iters=50, direction="AtoB",
        pool_size=0, dataroot="x")
    args = DECENT.init_args_from_official(opt)
    model = DECENT(**args)
    h = model.hparams
    assert (h.ngf, h.ndf, h.netG, h.netD, h.n_layers_d, h.norm_d, h.gan_mode) == (6, 5, "resnet_6blocks", "n_layers",
                                                                                   2, "none", "vanilla")
    assert (h.lambda_gan, h.lambda_var, h.lambda_idt, h.num_patches, h.flow_type, h.flow_lr, h.flow_ema) == (
        2.0, 0.1, 5.0, 12, "maf", 2e-3, 0.99)
    assert h.var_all and h.no_antialias and h.no_antialias_up and not h.use_dropout
    assert model.var_layers == [0, 4, 8] and (h.beta1, h.beta2, h.n_epochs, h.n_epochs_decay) == (0.4, 0.9, 3, 4)
    assert isinstance(model.density_a.flow(2), MAF)
    assert isinstance(model.generator, CUTResnetGenerator) and len(model.generator.model) == 4 + 2 * 3 + 6 + 2 * 3 + 3


def test_official_checkpoints_load_strictly_and_round_trip():
    source = _model()
    torch.manual_seed(5)  # different initial weights
    target = DECENT(**{**TINY, "ema_decay": 0.9})
    for net in ("G", "D", "F_A", "F_B"):
        official = {f"module.{k}" if net == "G" else k: v for k, v in source.official_state_dict(net).items()}
        converted = target.convert_official_state_dict(official, net=net)
        assert all(k.startswith(DECENT.OFFICIAL_NETWORKS[net] + ".") for k in converted)
        target.load_official_weights(official, net=net)
    for net in ("G", "D", "F_A", "F_B"):
        for key, value in source.official_state_dict(net).items():
            assert torch.equal(target.official_state_dict(net)[key], value)
    x = torch.rand(1, 3, 16, 16)
    assert torch.equal(target.translate(x), source.translate(x))  # the EMA generator got the weights too
    with pytest.raises(RuntimeError):
        target.load_official_weights({k: v for k, v in source.official_state_dict("F_A").items()
                                      if not k.endswith("_diag_weight")}, net="F_A")
    with pytest.raises(ValueError, match="net must be one of"):
        target.load_official_weights({}, net="F")


def test_flow_ema_loads_from_an_official_optimizer_file():
    model = _model()
    params = [*model.density_a.parameters(), *model.density_b.parameters()]
    state = {"state": {i: {"exp_avg_param": torch.full_like(p, float(i))} for i, p in enumerate(params)}}
    model.load_official_flow_ema(state)
    averaged = [*model.density_a_ema.tensors().values(), *model.density_b_ema.tensors().values()]
    assert all(torch.all(a == i) for i, a in enumerate(averaged))


def test_flow_ema_state_is_part_of_the_state_dict_and_starts_at_zero():
    model = _model()
    keys = [k for k in model.state_dict() if k.startswith("density_a_ema.")]
    assert keys and all(model.state_dict()[k].abs().sum() == 0 for k in keys)
    assert not any(k.startswith("density_a_ema") for k, _ in model.named_parameters())
    assert isinstance(model.density_a_ema, FlowEMA)


def test_invalid_options_fail_with_the_option_name():
    with pytest.raises(ValueError, match="num_patches"):
        DECENT(**{**TINY, "num_patches": 0})
    with pytest.raises(ValueError, match="netG"):
        DECENT(**{**TINY, "netG": "unet_256"})
    with pytest.raises(ValueError, match="feature layer"):
        DECENT(**{**TINY, "var_layers": [0, 99]})
    with pytest.raises(ValueError, match="direction"):
        _model().translate(torch.rand(1, 3, 16, 16), direction="b2a")


def test_zero_variance_weight_still_reports_the_variance_but_leaves_it_out_of_the_objective():
    model = _model(lambda_var=0.0)
    out = model.optimization_step(*_inputs(), *model.configure_optimizers()[0])
    assert "g_var" not in out.losses and torch.isfinite(out.losses["var"]) and not out.losses["var"].requires_grad
    torch.testing.assert_close(out.losses["g_total"], out.losses["g_gan"] + out.losses["g_idt"])
