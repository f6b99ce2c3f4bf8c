"""MUNIT against the official implementation: one test per case of the oracle manifest (``<ref>/munit``).

Every network is built from the case's official constructor arguments, every option comes from the case; an unknown
case kind or symbol fails.
"""

from __future__ import annotations

import pytest
import torch

from tests.parity.manifest import assert_close, cases, load_tensors, strip
from zoo.methods import MUNIT
from zoo.nets.munit import AdaINGen, MsImageDis, convert_official_state_dict, to_official_state_dict

pytestmark = pytest.mark.parity

_NETS = ("gen_a", "gen_b", "dis_a", "dis_b")


def _load(net: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    net.load_state_dict(convert_official_state_dict(state, net), strict=True)
    assert set(to_official_state_dict(net)) <= set(state), "export gives keys the official network does not have"


def check_adain_gen(case: dict, t: dict[str, torch.Tensor]) -> None:
    c = case["constructor"]
    gen = AdaINGen(c["input_dim"], **c["params"])
    _load(gen, strip(t, "state.gen."))
    gen.train(case.get("mode", "eval").startswith("train"))
    tol = case["tolerance"]
    with torch.no_grad():
        content, style = gen.encode(t["in.x"])
        assert_close(content, t["out.content"], tol, "out.content")
        assert_close(style, t["out.style"], tol, "out.style")
        assert_close(gen.mlp(t["in.style"]), t["out.adain_params"], tol, "out.adain_params")
        assert_close(gen.decode(t["out.content"], t["in.style"]), t["out.decode_given_style"], tol,
                     "out.decode_given_style")
        assert_close(gen.decode(t["out.content"], t["out.style"]), t["out.decode_own_style"], tol,
                     "out.decode_own_style")
        assert_close(gen(t["in.x"]), t["out.forward"], tol, "out.forward")
    # float64 on the same weights stays within twice the official float32-vs-float64 discrepancy (+ storage rounding)
    gen64 = gen.double()
    with torch.no_grad():
        y64 = gen64(t["in.x"].double())
    bound = 2 * case.get("observed_float32_vs_float64_max_abs", tol["atol"]) + 1e-6
    assert (y64 - t["out.forward"].double()).abs().max().item() <= bound


def check_ms_image_dis(case: dict, t: dict[str, torch.Tensor]) -> None:
    c = case["constructor"]
    dis = MsImageDis(c["input_dim"], **c["params"])
    _load(dis, strip(t, "state.dis."))
    dis.train(case.get("mode", "train").startswith("train"))
    tol = case["tolerance"]
    fake, real = t["in.fake"], t["in.real"]
    with torch.no_grad():
        for name, x in (("fake", fake), ("real", real)):
            outs = dis(x)
            refs = strip(t, f"out.{name}.scale")
            assert len(outs) == len(refs) == c["params"]["num_scales"]
            for i, out in enumerate(outs):
                assert_close(out, refs[str(i)], tol, f"out.{name}.scale{i}")
        assert_close(dis.calc_dis_loss(fake, real), t["loss.dis"], tol, "loss.dis")
        assert_close(dis.calc_gen_loss(fake), t["loss.gen"], tol, "loss.gen")


def check_train_step(case: dict, t: dict[str, torch.Tensor]) -> None:
    hyper = case["constructor"]["hyperparameters"]
    model = MUNIT(**MUNIT.init_args_from_official(hyper), channels_last=False).double()
    for net in _NETS:
        model.load_official_weights({k: v.double() for k, v in strip(t, f"init.{net}.").items()}, net=net)
    model.train()
    optimizers, schedulers = model.configure_optimizers()
    opt_gen, opt_dis = optimizers
    for opt in optimizers:
        group = opt.param_groups[0]
        assert group["lr"] == hyper["lr"] and tuple(group["betas"]) == (hyper["beta1"], hyper["beta2"])
        assert group["weight_decay"] == hyper["weight_decay"]
    model.update_learning_rate(schedulers)
    codes = [t[name].double() for name in case["randn_order"]]
    x_a, x_b = t["in.x_a"].double(), t["in.x_b"].double()
    out = model.optimization_step(x_a, x_b, opt_gen, opt_dis, style_codes=codes)
    tol = case["tolerance"]

    for name, ref in strip(t, "loss.").items():
        value = out.losses.get(MUNIT.OFFICIAL_LOSS_NAMES[name])
        if value is None:  # a disabled term is the integer 0 officially
            assert float(ref) == 0.0, f"loss.{name}: zoo computed no term but the official value is {float(ref)}"
            continue
        assert_close(value, ref, tol["loss"], f"loss.{name}")

    # decode outputs in call order: dis_update (x_ba, x_ab); gen_update gen_a: x_a_recon, x_ba, [x_aba] (b likewise)
    calls = {"dis_update": {"gen_a": ["dis_x_ba"], "gen_b": ["dis_x_ab"]},
             "gen_update": {"gen_a": ["x_a_recon", "x_ba", "x_aba"], "gen_b": ["x_b_recon", "x_ab", "x_bab"]}}
    outs = strip(t, "out.")
    assert outs, "no out.* tensors in the fixture"
    for key, ref in outs.items():
        phase, gen, call = key.split(".")[:3]
        name = calls[phase][gen.removesuffix("_decode")][int(call.removeprefix("call")) - 1]
        assert_close(out.images[name], ref, {"atol": tol["out"]["atol"], "rtol": 0.0}, f"out.{key}")

    for phase in ("dis_update", "gen_update"):
        refs = strip(t, f"grad.{phase}.")
        assert refs, f"no grad.{phase}.* tensors in the fixture"
        for key, ref in refs.items():
            net, param = key.split(".", 1)
            grad = dict(getattr(model, net).named_parameters())[param].grad
            assert grad is not None, f"grad.{phase}.{key}: zoo left no gradient"
            assert_close(grad, ref, tol["grad"], f"grad.{phase}.{key}")

    for net in _NETS:
        refs = strip(t, f"step1.{net}.")
        ours = model.official_state_dict(net)
        assert set(refs) == set(ours), f"step1.{net}: key sets differ"
        for key, ref in refs.items():
            assert_close(ours[key], ref, {"atol": tol["step1"]["atol"], "rtol": 0.0}, f"step1.{net}.{key}")
    expected_lr = hyper["lr"] * (hyper["gamma"] ** (1 // hyper["step_size"])) if hyper.get("lr_policy") == "step" \
        else hyper["lr"]
    assert opt_gen.param_groups[0]["lr"] == pytest.approx(expected_lr)


_CHECKS = {("forward", "AdaINGen"): check_adain_gen, ("forward", "MsImageDis"): check_ms_image_dis,
           ("train_step", "MUNIT_Trainer"): check_train_step}


@pytest.mark.parametrize("case", cases("munit"))
def test_munit_case(case):
    key = (case["kind"], case["official"]["symbol"])
    if key not in _CHECKS:
        pytest.fail(f"unknown MUNIT case kind/symbol {key}; known: {sorted(_CHECKS)}")
    _CHECKS[key](case, load_tensors(case))
