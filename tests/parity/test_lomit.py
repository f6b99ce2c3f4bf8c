"""LOMIT against the authors' code: one test per case of ``$ZOO_REFERENCE_DIR/lomit/MANIFEST.json``.

Every network is built from the case's official constructor arguments and every option from the case's config;
the case kind (and, for functions and forwards, the official symbol) selects the check; an unknown one fails.
"""

from __future__ import annotations

import pytest
import torch

from tests.parity.manifest import assert_close, cases, load_tensors, strip
from zoo.methods import LOMIT
from zoo.nets.lomit import Discriminator, Generator, highway_adain, mask_regularizers, style_affine

pytestmark = pytest.mark.parity

_G_ARGS = {"conv_dim": "g_conv_dim", "repeat_num": "g_repeat_num", "style_dim": "style_dim", "mlp_dim": "mlp_dim",
           "c_dim": "c_dim"}
_D_ARGS = {"image_size": "image_size", "conv_dim": "d_conv_dim", "c_dim": "c_dim", "repeat_num": "d_repeat_num"}


def _check_function(case: dict, t: dict[str, torch.Tensor]) -> None:
    symbol = case["class"]
    if symbol == "Decoder.highway_AdaIN":
        out = highway_adain(t["in.content"], t["in.mask"], t["in.fg_params"], t["in.bg_params"])
        mean, std = style_affine(t["in.fg_params"])
        assert_close(out, t["out.hadain"], case["tolerance"], "out.hadain")
        assert_close(mean.flatten(1), t["out.fg_mean"], case["tolerance"], "out.fg_mean")
        assert_close(std.flatten(1), t["out.fg_std"], case["tolerance"], "out.fg_std")
    elif symbol == "Run.mask_criterion":
        masks = sorted(k for k in t if k.startswith("in.mask"))
        tol = {"atol": 0.0, "rtol": case["tolerance"]["loss_rtol"]}
        for dtype, suffix in ((torch.float64, ""), (torch.float32, "_float32")):
            sim, mean, smooth = mask_regularizers([t[k].to(dtype) for k in masks], t["in.content"].to(dtype))
            for name, value in (("sim", sim), ("mean", mean), ("smooth", smooth)):
                key = f"loss.{name}" if not suffix else f"out.{name}{suffix}"
                assert_close(value, t[key].reshape(()), tol, key)
    else:
        raise AssertionError(f"unknown official function {symbol!r}")


def _check_forward(case: dict, t: dict[str, torch.Tensor]) -> None:
    tol = case["tolerance"]
    if case["class"] == "Generator":
        net = Generator(**case["constructor"])
        state = strip(t, "state.g.")
        assert sorted(net.state_dict()) == sorted(state), "module tree differs from the official key set"
        net.load_state_dict(state, strict=True)
        modes = sorted({k.split(".")[1] for k in t if k.startswith("out.")}, key=lambda m: m != "eval")
        assert modes, "no outputs in the case"
        for mode in modes:  # eval first: train-mode calls move the running statistics
            net.train(mode == "train")
            out = strip(t, f"out.{mode}.")
            x_a, x_b = t["in.x_a"], t["in.x_b"]
            with torch.no_grad():
                assert_close(net(x_a, x_b), out["x_ab"], tol, f"{mode}.x_ab")
                c_a, c_b = net.c_encoder(x_a), net.c_encoder(x_b)
                m_a, m_b = net.mask(c_a, c_b), net.mask(c_b, c_a)
                up = torch.nn.functional.interpolate
                s_fb = net.s_encoder(up(m_b, scale_factor=4, mode="bilinear", align_corners=False) * x_b, True)
                s_ba = net.s_encoder(up(1 - m_a, scale_factor=4, mode="bilinear", align_corners=False) * x_a, False)
                x_ab = net.decoder(c_a, m_a, s_fb, s_ba)
            for name, value in (("c_a", c_a), ("c_b", c_b), ("m_a", m_a), ("m_b", m_b), ("s_fb", s_fb),
                                ("s_ba", s_ba), ("x_ab_decoder", x_ab)):
                assert_close(value, out[name], tol, f"{mode}.{name}")
    elif case["class"] == "Discriminator":
        net = Discriminator(**case["constructor"])
        net.load_state_dict(strip(t, "state.d."), strict=True)
        with torch.no_grad():
            src, cls = net(t["in.x"])
        assert_close(src, t["out.src"], tol, "out.src")
        assert_close(cls, t["out.cls"], tol, "out.cls")
    else:
        raise AssertionError(f"unknown official network {case['class']!r}")


def _build_method(case: dict, t: dict[str, torch.Tensor], prefix: str) -> LOMIT:
    """LOMIT from the case's config and constructor arguments, weights from ``<prefix>.g/d.*``, in float64."""
    ctor = case["constructor"]
    args = LOMIT.init_args_from_official(ctor.get("config", case.get("config", {})))
    args.update({ours: ctor["g"][key] for key, ours in _G_ARGS.items() if key in ctor["g"]})
    args.update({ours: ctor["d"][key] for key, ours in _D_ARGS.items() if key in ctor["d"]})
    model = LOMIT(**args)
    model.load_official_weights(strip(t, f"{prefix}.g."), net="G")
    model.load_official_weights(strip(t, f"{prefix}.d."), net="D")
    return model.double().train()


def _official_loss(model: LOMIT, name: str, terms: dict[str, torch.Tensor]) -> torch.Tensor:
    """The value the reference logs as ``name``: its terms times their lambdas; the reference logs the
    cross-cycle term with LAMBDA_X_REC (not the LAMBDA_X_CYC it optimises)."""
    weights = dict(model.loss_weights)
    weights["g_x_cyc"] = model.hparams.lambda_x_rec
    return sum(weights[k.rsplit("_", 1)[0] if k.startswith("d_") else k] * terms[k]
               for k in LOMIT.OFFICIAL_LOSS_NAMES[name])


def _check_losses(model: LOMIT, case: dict, t: dict[str, torch.Tensor], terms: dict[str, torch.Tensor],
                  prefix: str) -> None:
    tol = {"atol": 0.0, "rtol": case["tolerance"]["loss"]["rtol"]}
    checked = 0
    for official in LOMIT.OFFICIAL_LOSS_NAMES:
        key = "loss." + official.replace("/", "_")
        if official.startswith(prefix) and key in t:
            assert_close(_official_loss(model, official, terms), t[key], tol, key)
            checked += 1
    assert checked, f"no {prefix} loss entries found"


def _check_grads(model: LOMIT, case: dict, t: dict[str, torch.Tensor], phase: str, net: str) -> None:
    expected = strip(t, f"grad.{phase}.{net}.")
    params = dict(getattr(model, LOMIT.OFFICIAL_NETWORKS[net.upper()]).named_parameters())
    assert sorted(expected) == sorted(params), f"{phase}: parameter set differs from the official one"
    tol = case["tolerance"]["grad"]
    for key, ref in expected.items():
        assert params[key].grad is not None, f"grad.{phase}.{net}.{key}: no gradient"
        assert_close(params[key].grad, ref.to(params[key].dtype), tol, f"grad.{phase}.{net}.{key}")


def _check_generator_update(case: dict, t: dict[str, torch.Tensor]) -> None:
    if case["class"] != "Run.update_G":
        raise AssertionError(f"unknown official symbol {case['class']!r}")
    model = _build_method(case, t, "state")
    x_a, x_b, l_a, l_b = (t[f"in.{k}"].double() for k in ("x_a", "x_b", "label_a", "label_b"))
    with torch.random.fork_rng():
        torch.set_default_dtype(torch.float64)
        try:
            out = model.generator_losses(x_a, x_b, l_a, l_b)
        finally:
            torch.set_default_dtype(torch.float32)
    weights = model.loss_weights
    total = sum(weights[k] * v for k, v in out.losses.items())
    assert_close(total, t["loss.g_total"], {"atol": 0.0, "rtol": case["tolerance"]["loss"]["rtol"]}, "loss.g_total")
    _check_losses(model, case, t, out.losses, "G/")
    for key, ref in strip(t, "out.").items():
        assert_close(out.images[key], ref, {"atol": case["tolerance"]["out"]["atol"], "rtol": 0.0}, f"out.{key}")
    model.zero_grad()
    total.backward()
    _check_grads(model, case, t, "g_update", "g")


def _check_train_step(case: dict, t: dict[str, torch.Tensor]) -> None:
    model = _build_method(case, t, "init")
    optimizers, _ = model.configure_optimizers()
    for opt, ref in zip(optimizers, (case["optimizer"]["g"], case["optimizer"]["d"]), strict=True):
        assert ref["class"] == "Adam" and ref["weight_decay"] == 0
        group = opt.param_groups[0]
        assert group["lr"] == ref["lr"] and tuple(group["betas"]) == tuple(ref["betas"])
    calls: list[tuple[torch.Tensor, torch.Tensor]] = []
    hook = model.discriminator.register_forward_hook(lambda m, i, o: calls.append((o[0].detach(), o[1].detach())))
    x_a, x_b, l_a, l_b = (t[f"in.{k}"].double() for k in ("x_a", "x_b", "label_a", "label_b"))
    alphas = (t["in.gp_alpha_1"].double(), t["in.gp_alpha_2"].double())
    try:
        out = model.optimization_step(x_a, x_b, l_a, l_b, None, None, *optimizers, iteration=0, gp_alpha=alphas)
    finally:
        hook.remove()
    loss_tol = {"atol": 0.0, "rtol": case["tolerance"]["loss"]["rtol"]}
    assert_close(out.losses["d_total"], t["loss.d_total"], loss_tol, "loss.d_total")
    first = sum(v for k, v in out.losses.items() if k.startswith("d_") and k.endswith("_a"))
    assert_close(first, t["loss.d_first_direction"], loss_tol, "loss.d_first_direction")
    assert_close(out.losses["g_total"], t["loss.g_total"], loss_tol, "loss.g_total")
    unweighted = {k: v / (model.loss_weights[k.rsplit("_", 1)[0] if k.startswith("d_") else k] or 1.0)
                  for k, v in out.losses.items() if k not in ("d_total", "g_total")}
    _check_losses(model, case, t, unweighted, "G/")
    _check_losses(model, case, t, unweighted, "D/")
    # zoo batches the discriminator calls: [real_a, real_b, fake_ab, fake_ba], [x_hat_a, x_hat_b], [x_ab, x_ba]
    b = x_a.shape[0]
    (d_step, gp_step, g_step) = calls
    order = [(d_step, 0), (d_step, 2), (gp_step, 0), (d_step, 1), (d_step, 3), (gp_step, 1), (g_step, 0), (g_step, 1)]
    out_tol = {"atol": case["tolerance"]["out"]["atol"], "rtol": 0.0}
    for index, ((src, cls), part) in enumerate(order):
        rows = slice(part * b, (part + 1) * b)
        assert_close(src[rows], t[f"out.d_call{index:02d}.src"], out_tol, f"out.d_call{index:02d}.src")
        assert_close(cls[rows], t[f"out.d_call{index:02d}.cls"], out_tol, f"out.d_call{index:02d}.cls")
    for key, ref in strip(t, "out.g_update.").items():
        assert_close(out.images[key], ref, out_tol, f"out.g_update.{key}")
    _check_grads(model, case, t, "d_update", "d")
    _check_grads(model, case, t, "g_update", "g")
    step_tol = case["tolerance"]["step1"]
    for net in ("g", "d"):
        ours = getattr(model, LOMIT.OFFICIAL_NETWORKS[net.upper()]).state_dict()
        expected = strip(t, f"step1.{net}.")
        assert sorted(expected) == sorted(ours)
        for key, ref in expected.items():
            if not ref.is_floating_point():
                assert torch.equal(ours[key], ref), f"step1.{net}.{key}"
                continue
            atol = 1e-5 if "running" in key else step_tol["atol"]
            assert_close(ours[key], ref, {"atol": atol, "rtol": 0.0}, f"step1.{net}.{key}")


@pytest.mark.parametrize("case", cases("lomit"))
def test_lomit_case(case):
    t = load_tensors(case)
    kind = case["kind"]
    if kind == "function":
        _check_function(case, t)
    elif kind == "forward":
        _check_forward(case, t)
    elif kind == "loss_and_grad":
        _check_generator_update(case, t)
    elif kind == "train_step":
        _check_train_step(case, t)
    else:
        raise AssertionError(f"unknown case kind {kind!r} in {case['name']}")
