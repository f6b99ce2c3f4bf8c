"""DECENT against the official implementation (github.com/Mid-Push/Decent): one test per case of the oracle manifest.

The kind of a case comes from its ``kind`` field or, as in the DECENT manifest, from the official symbol its
``source`` names (``models/networks.py::define_G ...`` -> ``define_G``). Every network is built from the case's
constructor arguments or official options; an unknown kind fails.
"""

from __future__ import annotations

import re

import pytest
import torch

from tests.parity.manifest import (
    RecordingOptimizer,
    adam_step_bound,
    assert_close,
    assert_close_rounding_limited,
    assert_rounding_noise,
    assert_step_close,
    cases,
    mean_removed_biases,
    run_case,
    strip,
)
from zoo.losses import gan_loss
from zoo.methods.decent import DECENT, density_change_variance, flow_nll
from zoo.nets.cut import PatchSampleF, build_cut_discriminator, build_cut_generator, patch_nce_loss
from zoo.nets.flows import MAF, MAFMOG, NSF, BNAFModel, PatchDensityEstimator

pytestmark = pytest.mark.parity


def case_kind(case: dict) -> str:
    if "kind" in case:
        return case["kind"]
    match = re.search(r"::(\w+)", case.get("source", ""))
    if match is None:
        raise AssertionError(f"case {case['name']!r} has neither a kind nor an official source symbol")
    return match.group(1)


def _layers(t: dict[str, torch.Tensor], prefix: str) -> list[int]:
    """Sorted integer suffixes of the keys ``<prefix><int>``."""
    return sorted(int(k[len(prefix):]) for k in t if k.startswith(prefix) and k[len(prefix):].isdigit())


# ------------------------------------------------------------------------------------------------ networks


def check_generator(case: dict, t: dict[str, torch.Tensor]) -> None:
    c, tol = case["constructor"], case["tolerance"]
    # defaults are those of the official define_G signature
    net = build_cut_generator(input_nc=c["input_nc"], output_nc=c["output_nc"], ngf=c["ngf"], netG=c["netG"],
                              norm=c.get("norm", "batch"), use_dropout=c.get("use_dropout", False), init_type=None,
                              no_antialias=c.get("no_antialias", False),
                              no_antialias_up=c.get("no_antialias_up", False))
    net.load_state_dict(strip(t, "state.G."), strict=True)
    net.train()
    layers = _layers(t, "out.feat.")
    with torch.no_grad():
        y = net(t["in.x"])
        y_tapped, feats = net(t["in.x"], layers)
        encoded = net(t["in.x"], layers, encode_only=True)
    assert_close(y, t["out.y"], tol, "G(x)")
    assert_close(y_tapped, t["out.y"], tol, "G(x, layers)")
    assert net.feature_channels(layers) == [t[f"out.feat.{i}"].shape[1] for i in layers]
    for i, f, e in zip(layers, feats, encoded, strict=True):
        assert_close(f, t[f"out.feat.{i}"], tol, f"feature {i}")
        assert_close(e, t[f"out.feat.{i}"], tol, f"encode_only feature {i}")


def check_discriminator(case: dict, t: dict[str, torch.Tensor]) -> None:
    c = case["constructor"]
    net = build_cut_discriminator(input_nc=c["input_nc"], ndf=c["ndf"], netD=c["netD"],
                                  n_layers_D=c.get("n_layers_D", 3), norm=c.get("norm", "batch"), init_type=None,
                                  no_antialias=c.get("no_antialias", False))
    net.load_state_dict(strip(t, "state.D."), strict=True)
    with torch.no_grad():
        assert_close(net(t["in.x"]), t["out.y"], case["tolerance"], "D(x)")


def check_bnaf(case: dict, t: dict[str, torch.Tensor]) -> None:
    tol = case["tolerance"]
    for variant, args in case["constructor"].items():
        flow = BNAFModel(**args)
        flow.load_state_dict(strip(t, f"state.{variant}."), strict=True)
        x = t[f"in.{variant}.x"]
        with torch.no_grad():
            z, log_det = flow.model(x)
            assert_close(z, t[f"out.{variant}.z"], tol, f"{variant} z")
            assert_close(log_det, t[f"out.{variant}.logdet"], tol, f"{variant} logdet")
            assert_close(flow.log_probs(x), t[f"out.{variant}.log_prob"], tol, f"{variant} log_prob")


def check_flow(case: dict, t: dict[str, torch.Tensor], flow: torch.nn.Module) -> None:
    """MAF / MAF-MoG / NSF: train-mode call (and its buffer updates) if recorded, then eval mode."""
    tol = case["tolerance"]
    flow.load_state_dict(strip(t, "state.flow."), strict=True)
    x = t["in.x"]
    with torch.no_grad():
        if "out.log_prob_train" in t:
            flow.train()
            assert_close(flow.log_probs(x), t["out.log_prob_train"], tol, "train-mode log_prob")
            after = strip(t, "out.buffers_after_train_call.")
            state = flow.state_dict()
            for key, expected in after.items():
                assert_close(state[key], expected, tol, f"state after the train-mode call: {key}")
        flow.eval()
        assert_close(flow.log_probs(x), t["out.log_prob_eval"], tol, "eval-mode log_prob")


def _flow_args(options: dict) -> dict:
    return {k: options[k] for k in ("flow_type", "flow_blocks", "bnaf_layers", "bnaf_dim", "maf_dim", "maf_layers",
                                    "maf_comps") if k in options}


def check_density_estimator(case: dict, t: dict[str, torch.Tensor]) -> None:
    tol = case["tolerance"]
    layers = _layers(t, "in.feat")
    feats = [t[f"in.feat{i}"] for i in layers]
    ids = [t[f"in.patch_ids{i}"] for i in layers]
    estimator = PatchDensityEstimator([f.shape[1] for f in feats], **_flow_args(case["options"]))
    assert sorted(estimator.state_dict()) == sorted(strip(t, "state.F.")), "official F_* key set differs"
    estimator.load_state_dict(strip(t, "state.F."), strict=True)
    with torch.no_grad():
        log_probs, lens, used = estimator(feats, num_patches=max(i.numel() for i in ids), patch_ids=ids)
    for i, lp, n, u, expected_ids in zip(layers, log_probs, lens, used, ids, strict=True):
        assert_close(lp, t[f"out.log_prob{i}"], tol, f"log_prob layer {i}")
        assert n == t[f"out.feat_len{i}"].item()
        assert torch.equal(u, expected_ids)


def check_losses(case: dict, t: dict[str, torch.Tensor]) -> None:
    tol = case["tolerance"]
    for key in [k for k in t if k.startswith("loss.gan_")]:
        mode, target = re.fullmatch(r"loss\.gan_(\w+?)_(real|fake)(_list)?", key).group(1, 2)
        preds = [t[f"in.pred_list{i}"] for i in _layers(t, "in.pred_list")] if key.endswith("_list") else [t["in.pred"]]
        value = sum(gan_loss(p, target == "real", mode) for p in preds)  # official: a list's losses are summed
        assert_close(value, t[key], tol, key)
    layers = _layers(t, "in.logp_A")
    lp_a = [t[f"in.logp_A{i}"] for i in layers]
    lp_b = [t[f"in.logp_fakeB{i}"] for i in layers]
    dims = [int(t[f"in.feat_len{i}"].item()) for i in layers]
    # the stub model's batch size: from the case options if given, else the batch of the prediction tensor
    batch = case.get("options", {}).get("batch_size", t["in.pred"].shape[0])
    for name, var_all in (("var_single", False), ("var_all", True)):
        if f"loss.{name}" not in t:
            continue
        var, exp_a, exp_b = density_change_variance(lp_a, lp_b, dims, batch, var_all=var_all)
        assert_close(var, t[f"loss.{name}"], tol, name)
        assert_close(exp_a, t[f"loss.{name}_exp_A"], tol, f"{name} exp_A")
        assert_close(exp_b, t[f"loss.{name}_exp_B"], tol, f"{name} exp_B")
    loss, nll_a, nll_b = flow_nll(lp_a, lp_b)
    assert_close(loss, t["loss.flow_nll"], tol, "flow NLL")
    assert_close(nll_a, t["loss.flow_nll_A"], tol, "nll_A")
    assert_close(nll_b, t["loss.flow_nll_B"], tol, "nll_B")


def check_patch_sample_nce(case: dict, t: dict[str, torch.Tensor]) -> None:
    tol, c = case["tolerance"], case["constructor"]
    layers = _layers(t, "in.feat_q")
    sampler = PatchSampleF([t[f"in.feat_q{i}"].shape[1] for i in layers], use_mlp=c["PatchSampleF"]["use_mlp"],
                           nc=c["PatchSampleF"]["nc"])
    sampler.load_state_dict(strip(t, "state.F."), strict=True)
    ids = [t[f"in.patch_ids{i}"] for i in layers]
    n = ids[0].numel()
    with torch.no_grad():
        q, _ = sampler([t[f"in.feat_q{i}"] for i in layers], n, ids)
        k, _ = sampler([t[f"in.feat_k{i}"] for i in layers], n, ids)
        k_all, _ = sampler([t[f"in.feat_k{i}"] for i in layers], 0)
    opt = c["PatchNCELoss.opt"]
    for i in layers:
        assert_close(q[i], t[f"out.sample_q{i}"], tol, f"sample_q{i}")
        assert_close(k[i], t[f"out.sample_k{i}"], tol, f"sample_k{i}")
        assert_close(k_all[i], t[f"out.sample_all_k{i}"], tol, f"sample_all_k{i}")
        nce = patch_nce_loss(q[i], k[i], batch_size=opt["batch_size"], nce_t=opt["nce_T"])
        assert_close(nce, t[f"out.nce_per_patch{i}"], tol, f"nce{i}")
        if f"out.nce_allneg_per_patch{i}" in t:
            nce = patch_nce_loss(q[i], k[i], batch_size=opt["batch_size"], nce_t=opt["nce_T"],
                                 all_negatives_from_minibatch=True)
            assert_close(nce, t[f"out.nce_allneg_per_patch{i}"], tol, f"nce all negatives {i}")


# ------------------------------------------------------------------------------------------------ training


_LOSS_MAP = {  # official loss name -> function of zoo's StepOutput losses
    "F": lambda o: o["flow_nll"], "D_fake": lambda o: o["d_fake"] / 0.5, "D_real": lambda o: o["d_real"] / 0.5,
    "D": lambda o: o["d_fake"] + o["d_real"], "G": lambda o: o["g_total"], "G_GAN": lambda o: o["g_gan"],
    "idt": lambda o: o["g_idt"], "var": lambda o: o["var"], "nll_A": lambda o: o["nll_a"],
    "nll_B": lambda o: o["nll_b"], "exp_A": lambda o: o["exp_a"], "exp_B": lambda o: o["exp_b"],
}


def _train_step_model(case: dict, t: dict[str, torch.Tensor], dtype: torch.dtype):
    """DECENT from the fixture's ``init.*`` weights in ``dtype``, its networks, and recording optimizers."""
    options = case["options"]
    torch.manual_seed(0)  # construction draws are overwritten by the fixture's init weights
    model = DECENT(**DECENT.init_args_from_official(options), channels_last=False)
    model.train()
    for net in ("G", "D", "F_A", "F_B"):
        model.load_official_weights(strip(t, f"init.{net}."), net=net)
    model.to(dtype)
    modules = {"G": model.generator, "D": model.discriminator, "F_A": model.density_a, "F_B": model.density_b}
    named = {n: [(f"{n}.{k}", p) for k, p in m.named_parameters()] for n, m in modules.items()}
    grads: dict[str, torch.Tensor] = {}
    opt_g, opt_d, opt_f = model.configure_optimizers()[0]
    optimizers = (RecordingOptimizer(opt_g, named["G"], grads), RecordingOptimizer(opt_d, named["D"], grads),
                  RecordingOptimizer(opt_f, named["F_A"] + named["F_B"], grads))
    return model, modules, grads, optimizers


def _patch_ids(t: dict[str, torch.Tensor], step: int, layers) -> dict[str, list[torch.Tensor]]:
    return {ours: [t[f"in.patch_ids.step{step}.{theirs}.layer{i}"] for i in layers]
            for ours, theirs in (("flow_a", "F.F_A"), ("flow_b", "F.F_B"), ("var", "var.F_A"))}


def _float64_replay(case: dict, t: dict[str, torch.Tensor], steps: list[int]) -> dict[int, dict]:
    """The same steps of zoo's DECENT in float64 (weights and inputs ``.double()``): per step the gradients, losses
    and images, as the exact-arithmetic estimate that :func:`assert_close_rounding_limited` needs.

    zoo casts to float32 inside the step (flows run in float32 under mixed precision, the GAN / L1 losses reduce in
    float32) with ``Tensor.float()``; for this run only, ``float()`` of a float64 tensor returns it unchanged (the
    model is built and loaded before the patch, so its float32 masks and buffers are made as usual, then doubled).
    It runs eager even where the check runs a compiled model: it is the reference, and compiled code would not see
    the patch.
    """
    model, _, grads, optimizers = _train_step_model(case, t, torch.float64)
    original = torch.Tensor.float

    def keep_float64(self, *args, **kwargs):
        return self if self.dtype == torch.float64 else original(self, *args, **kwargs)

    out64: dict[int, dict] = {}
    torch.Tensor.float = keep_float64
    try:
        with torch.compiler.set_stance("force_eager"):
            for step in steps:
                out = model.optimization_step(t[f"in.step{step}.A"].double(), t[f"in.step{step}.B"].double(),
                                              *optimizers, patch_ids=_patch_ids(t, step, model.var_layers))
                assert all(g.dtype == torch.float64 for g in grads.values()), "float64 replay fell back to float32"
                out64[step] = {"grads": dict(grads), "losses": {k: v.detach() for k, v in out.losses.items()},
                               "images": {k: v.detach() for k, v in out.images.items()}}
    finally:
        torch.Tensor.float = original
    return out64


def check_train_step(case: dict, t: dict[str, torch.Tensor]) -> None:
    """Replay the official iterations from ``init.*`` with the stored patch positions.

    Losses, images and gradients are compared with :func:`assert_close_rounding_limited`: the float32 run (the
    production path) against the oracle, with a float64 run of the same steps deciding the few entries where float32
    rounding, ours or the oracle's, takes up the tolerance (the first convolutions' weight gradients sum 8192
    cancelling float32 terms per entry). Zero-gradient biases keep their own rule (rounding noise, Adam's bound).
    """
    tol, options = case["tolerance"], case["options"]
    model, modules, grads, optimizers = _train_step_model(case, t, torch.float32)
    lrs = {"G": options["lr"], "D": options["lr"], "F_A": options["flow_lr"], "F_B": options["flow_lr"]}
    layers = model.var_layers
    previous = {f"{n}.{k}": v.detach().clone() for n, m in modules.items() for k, v in m.state_dict().items()}
    initial = dict(previous)
    betas = {"G": (model.hparams.beta1, model.hparams.beta2), "D": (model.hparams.beta1, model.hparams.beta2)}
    zero_grad = {f"{n}.{k}" for n in ("G", "D") for k in mean_removed_biases(modules[n])}
    steps = sorted(int(m.group(1)) for k in t if (m := re.fullmatch(r"in\.step(\d+)\.A", k)))
    assert steps, "train-step case without inputs"
    reference = _float64_replay(case, t, steps)
    for step in steps:
        ref64 = reference[step]
        out = model.optimization_step(t[f"in.step{step}.A"], t[f"in.step{step}.B"], *optimizers,
                                      patch_ids=_patch_ids(t, step, layers))
        for name, fn in _LOSS_MAP.items():
            if f"loss.step{step}.{name}" in t:
                assert_close_rounding_limited(fn(out.losses), fn(ref64["losses"]), t[f"loss.step{step}.{name}"],
                                              tol, f"step {step} loss {name}")
        for name, ours in (("fake_B", "fake_b"), ("idt_B", "idt_b")):
            if f"out.step{step}.{name}" in t:
                assert_close_rounding_limited(out.images[ours], ref64["images"][ours], t[f"out.step{step}.{name}"],
                                              tol, f"step {step} {name}")
        expected_grads = strip(t, f"grad.step{step}.")
        assert expected_grads.keys() <= grads.keys(), sorted(expected_grads.keys() - grads.keys())[:5]
        scale = {n: max(v.abs().max().item() for k, v in expected_grads.items() if k.startswith(f"{n}."))
                 for n in {k.split(".", 1)[0] for k in expected_grads}}
        for key, expected in expected_grads.items():
            if key in zero_grad:
                assert_rounding_noise(grads[key], expected, f"step {step} gradient {key}",
                                      scale=scale[key.split(".", 1)[0]])
                continue
            assert_close_rounding_limited(grads[key], ref64["grads"][key], expected, tol,
                                          f"step {step} gradient {key}")
        current = {f"{n}.{k}": v for n, m in modules.items() for k, v in m.state_dict().items()}
        current.update({f"F_A_ema.{k}": v for k, v in model.density_a_ema.tensors().items()})
        current.update({f"F_B_ema.{k}": v for k, v in model.density_b_ema.tensors().items()})
        expected_state = strip(t, f"step{step}.")
        assert expected_state, f"no step{step}.* weights stored"
        for key, expected in expected_state.items():
            net = key.split(".", 1)[0]
            if net.endswith("_ema"):
                assert_close(current[key], expected, {"atol": 1e-6, "rtol": tol["rtol"]}, f"step {step} {key}")
                continue
            before = previous[key]
            delta, expected_delta = current[key] - before, expected - before
            grad = expected_grads.get(key)
            # elements whose gradient is zero within the gradient tolerance (e.g. conv biases followed by instance
            # norm: exactly zero in theory, +-1e-6 noise in practice) get Adam's sign-like first step in either
            # direction; they must stay within one learning rate of the start
            undetermined = grad.abs() <= tol["atol"] if grad is not None else torch.zeros_like(delta, dtype=torch.bool)
            close = (delta - expected_delta).abs() <= 1e-6 + tol["rtol"] * expected_delta.abs()
            bounded = delta.abs() <= lrs[net] * (1 + 1e-3) * step
            if key in zero_grad:
                # gradient 0 in exact arithmetic: both trajectories are decided by rounding noise from step 1 on,
                # so the whole change since the start is compared with Adam's bound over all steps so far
                assert_step_close(current[key] - initial[key], expected - initial[key], f"step {step} {key}",
                                  close=close | (undetermined & bounded), noise_decided=True,
                                  bound=adam_step_bound(lrs[net], betas[net], range(1, step + 1)), atol=1e-6)
                continue
            bad = ~(close | (undetermined & bounded))
            assert not bad.any(), (f"step {step} {key}: {int(bad.sum())} elements differ, max "
                                   f"{(delta - expected_delta).abs()[bad].max().item():.3g}")
        previous = {k: v.detach().clone() for k, v in current.items() if "_ema." not in k}


# ------------------------------------------------------------------------------------------------ dispatch

_CHECKS = {
    "define_G": check_generator,
    "define_D": check_discriminator,
    "BNAFModel": check_bnaf,
    "MAF": lambda c, t: check_flow(c, t, MAF(**c["constructor"])),
    "MAFMOG": lambda c, t: check_flow(c, t, MAFMOG(**c["constructor"])),
    "NSF": lambda c, t: check_flow(c, t, NSF(**c["constructor"])),
    "PatchDensityEstimator": check_density_estimator,
    "GANLoss": check_losses,
    "PatchSampleF": check_patch_sample_nce,
    "DecentGANModel": check_train_step,
}


@pytest.mark.parametrize("case", cases("decent"))
def test_decent_case(case: dict) -> None:
    run_case(case, _CHECKS, "DECENT", kind=case_kind(case))
