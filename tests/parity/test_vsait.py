"""VSAIT against the official code: every case of ``$ZOO_REFERENCE_DIR/vsait/MANIFEST.json``.

Each case is dispatched on its kind (``kind`` when the manifest gives one, else the official source it was produced
from); an unknown kind fails. Networks are built from the manifest's official constructor arguments or config
overrides (through ``VSAIT.init_args_from_official``), weights are loaded from the fixture, tolerances come from it.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator

import pytest
import torch

from tests.parity.manifest import (
    adam_step_bound,
    assert_close,
    assert_rounding_noise,
    assert_step_close,
    cases,
    load_tensors,
    mean_removed_biases,
    strip,
)
from zoo.losses.vsa import (
    HypervectorEncoder,
    NormalizedPatchProjection,
    bind,
    bundle,
    gan_list_loss,
    similarity,
    unbind,
    vsa_loss,
)
from zoo.methods.vsait import VSAIT
from zoo.nets.vsait import FeatureExtractor, GaussianConv2d, VSAITGenerator

pytestmark = pytest.mark.parity

#: kind -> pattern of the official ``file::object`` a case was produced from (the source's first word).
KINDS: list[tuple[str, str]] = [
    ("train_step", r"^solver\.py::"),
    ("vsa_discriminator", r"::VSADiscriminator"),
    ("mapping_net", r"::VSAIT\.g_net_map"),
    ("generator", r"::ResNetGenerator"),
    ("gaussian_conv", r"::GaussianConv2d"),
    ("feature_extractor", r"::FeatureExtractor"),
    ("lsh_cat", r"::LSHCat"),
    ("lsh_single", r"lsh\.py::LSH$"),
    ("losses", r"::VSALoss"),
    ("vsa_ops", r"^semantics$"),
]


def kind_of(case: dict) -> str:
    if case.get("kind"):
        return case["kind"]
    for kind, pattern in KINDS:
        if re.search(pattern, (case.get("source") or "").split(" ", 1)[0].rstrip(",")):
            return kind
    pytest.fail(f"case {case['name']!r}: unknown kind (source {case.get('source')!r}); add a handler")


def _tiny_args(args: dict) -> dict:
    """Official config args with the parts a case does not exercise kept small (only used for those parts)."""
    return {**args, "feature_weights": None if args.get("feature_weights") in (None, "imagenet") else
            args["feature_weights"]}


def _model(case: dict) -> VSAIT:
    torch.manual_seed(0)
    return VSAIT(**_tiny_args(VSAIT.init_args_from_official(case.get("merged_config") or case["config_overrides"])))


# ------------------------------------------------------------------------------------------------- handlers


def check_generator(case: dict, t: dict, tol: dict) -> None:
    net = VSAITGenerator(**case["constructor"])
    net.load_state_dict(strip(t, "state.g_net."), strict=True)
    assert_close(net(t["in.x"]), t["out.y"], tol, "out.y")
    if "out.encoded" in t:
        assert_close(net.encode(t["in.x"]), t["out.encoded"], tol, "out.encoded")


def check_gaussian_conv(case: dict, t: dict, tol: dict) -> None:
    for name, kwargs in case["constructor"].items():
        layer = GaussianConv2d(**kwargs)
        # the kernel is computed, not loaded: it must equal the official buffer
        assert_close(layer.weight, t[f"state.{name}.weight"], tol, f"state.{name}.weight")
        layer.load_state_dict(strip(t, f"state.{name}."), strict=True)
        assert_close(layer(t["in.x"]), t[f"out.{name}"], tol, f"out.{name}")


def check_feature_extractor(case: dict, t: dict, tol: dict) -> None:
    cfg = case["constructor"]["cfg"]
    extra = {k.lower(): v for k, v in cfg.items() if k not in ("MODEL", "RETURN_NODES", "RESCALE", "IN_CHANNELS",
                                                                 "WEIGHTS")}
    net = FeatureExtractor(cfg["MODEL"], cfg.get("RETURN_NODES") or [], weights=None, rescale=cfg.get("RESCALE"),
                           in_channels=cfg.get("IN_CHANNELS"), image_channels=t["in.x"].shape[1], **extra)
    net.load_state_dict(strip(t, "state.feature_extractor."), strict=True)
    outs = [k for k in t if k.startswith("out.")]
    assert outs
    for key in outs:
        _, domain, index = key.split(".")
        assert_close(net(t["in.x"], domain)[int(index)], t[key], tol, key)


def _inputs(t: dict) -> list[torch.Tensor]:
    keys = sorted((k for k in t if re.fullmatch(r"in\.x\d+", k)), key=lambda k: int(k[4:]))
    return [t[k] for k in keys]


def check_lsh_cat(case: dict, t: dict, tol: dict) -> None:
    kw = dict(case["constructor"])
    enc = HypervectorEncoder(kw.pop("in_channels"), kw.pop("out_channels"), kw.pop("kernel_size"), **kw)
    enc.load_state_dict(strip(t, "state.lsh_feat."), strict=True)
    assert_close(enc(_inputs(t)), t["out.hv"], tol, "out.hv")
    # regenerating from a seed gives projections of the same law and layout (never the official draw)
    fresh = HypervectorEncoder(enc.in_channels, enc.out_channels, case["constructor"]["kernel_size"], **kw)
    assert fresh(_inputs(t)).shape == t["out.hv"].shape


def check_lsh_single(case: dict, t: dict, tol: dict) -> None:
    kw = dict(case["constructor"])
    net = NormalizedPatchProjection(kw.pop("in_channels"), kw.pop("out_channels"), kw.pop("kernel_size"), **kw)
    net.load_state_dict(strip(t, "state.lsh."), strict=True)
    assert_close(net(t["in.x"]), t["out.y"], tol, "out.y")


def _check_map_init(model: VSAIT, t: dict, tol: dict) -> None:
    """The official init of the mapping's last layer (weight 0, bias 1); earlier layers keep PyTorch's default."""
    init = strip(t, "init.g_net_map.")
    own = model.mapping.state_dict()
    last = max(int(k.split(".")[1]) for k in init)
    for key in (f"0.{last}.conv.weight", f"0.{last}.conv.bias"):
        assert_close(own[key], init[key], tol, f"init.g_net_map.{key}")


def check_vsa_discriminator(case: dict, t: dict, tol: dict) -> None:
    model = _model(case)
    if any(k.startswith("init.g_net_map.") for k in t):
        _check_map_init(model, t, tol)
    model.discriminator.load_state_dict(strip(t, "state.d_net."), strict=True)
    model.encoder.load_state_dict(strip(t, "state.lsh_feat."), strict=True)
    model.mapping.load_state_dict(strip(t, "state.g_net_map."), strict=True)
    hv_x = model.encode(t["in.x"])
    assert_close(hv_x, t["out.hv_x"], tol, "out.hv_x")
    with_src = model.discriminator(t["in.x"], t["in.src"], encode=model.encode, map_net=model.mapping)
    no_src = model.discriminator(t["in.tgt"], encode=model.encode)
    for name, outs in (("d_with_src", with_src), ("d_no_src", no_src)):
        keys = [k for k in t if k.startswith(f"out.{name}.")]
        assert len(keys) == len(outs), f"{name}: {len(outs)} outputs, fixture has {len(keys)}"
        for i, out in enumerate(outs):
            assert_close(out, t[f"out.{name}.{i}"], tol, f"out.{name}.{i}")
    if "out.d_net0_on_hv_x" in t:
        assert_close(model.discriminator.net[0](hv_x), t["out.d_net0_on_hv_x"], tol, "out.d_net0_on_hv_x")


def check_mapping_net(case: dict, t: dict, tol: dict) -> None:
    model = _model(case)
    _check_map_init(model, t, tol)
    hv = t["in.hv_src"]
    model.mapping.load_state_dict(strip(t, "init.g_net_map."), strict=True)
    assert_close(model.mapping(hv), t["out.map_init"], tol, "out.map_init")
    model.mapping.load_state_dict(strip(t, "state.g_net_map."), strict=True)
    mapped = model.mapping(hv)
    assert_close(mapped, t["out.map"], tol, "out.map")
    assert_close(bind(hv, mapped), t["out.bound"], tol, "out.bound")


_OPS: dict[str, Callable[[dict], torch.Tensor]] = {
    "bind_ab": lambda t: bind(t["in.a"], t["in.b"]),
    "unbind_ab_b": lambda t: unbind(bind(t["in.a"], t["in.b"]), t["in.b"]),
    "bundle_ac": lambda t: bundle(t["in.a"], t["in.c"]),
    "sim_ab": lambda t: similarity(t["in.a"], t["in.b"]),
    "sim_bundle_a": lambda t: similarity(bundle(t["in.a"], t["in.c"]), t["in.a"]),
    "sim_bundle_b": lambda t: similarity(bundle(t["in.a"], t["in.c"]), t["in.b"]),
    "sim_unbind_a": lambda t: similarity(unbind(bind(t["in.a"], t["in.b"]), t["in.b"]), t["in.a"]),
    "vsa_loss_unbind_a": lambda t: vsa_loss(unbind(bind(t["in.a"], t["in.b"]), t["in.b"]), t["in.a"]),
}


def check_vsa_ops(case: dict, t: dict, tol: dict) -> None:
    outs = [k for k in t if k.startswith("out.")]
    assert outs
    for key in outs:
        name = key[4:]
        assert name in _OPS, f"vsa_ops: no definition for {key}"
        assert_close(_OPS[name](t), t[key], tol, key)


def _gan_call(meaning: str) -> tuple[list[str], list[float]]:
    """``<fn>([d_out0, d_out1], labels [1, 1])`` in a manifest meaning -> (input names, labels)."""
    match = re.search(r"\(\[([^\]]*)\],\s*labels\s*\[([^\]]*)\]\)", meaning)
    assert match, f"cannot read the discriminator outputs and labels from {meaning!r}"
    names = [f"in.{n.strip()}" for n in match.group(1).split(",")]
    return names, [float(x) for x in match.group(2).split(",")]


def check_losses(case: dict, t: dict, tol: dict) -> None:
    small = dict(hv_dim=8, feature_model="identity", feature_nodes=[], lsh_kernel_size=[1], lsh_stride=[1],
                 disc_channels=[4, 4, 1], ngf=4, res_blocks=1, feature_weights=None)
    adv_in, adv_labels = _gan_call(case["meaning"]["loss.<v>.gan_adv"])
    discr_in, discr_labels = _gan_call(case["meaning"]["loss.<v>.gan_discr"])
    for variant, spec in case["variants"].items():
        model = VSAIT(**{**VSAIT.init_args_from_official(spec["config_overrides"]), **small})
        h, w = model.hparams, model.loss_weights
        inner = lambda x: list(x) if x is not None else 1.0  # noqa: E731
        vsa = vsa_loss(t["in.vsa_output"], t["in.vsa_target"])
        adv = gan_list_loss([t[k] for k in adv_in], adv_labels, h.gan_loss, weight=inner(h.adv_output_weights),
                            label_smoothing=h.label_smoothing)
        discr = gan_list_loss([t[k] for k in discr_in], discr_labels, h.gan_loss, weight=inner(h.discr_output_weights),
                              label_smoothing=h.label_smoothing)
        terms = {"vsa": vsa, "gan_adv": adv, "gan_discr": discr,
                 "total_G": sum(w[n] * v for n, v in (("vsa", vsa), ("adv", adv)) if n in h.losses),
                 "total_D": w["discr"] * discr}
        keys = [k for k in t if k.startswith(f"loss.{variant}.")]
        assert keys, f"no tensors for variant {variant}"
        for key in keys:
            assert_close(terms[key.rsplit(".", 1)[1]], t[key], tol, key)


def _grad_map(model: VSAIT, net: str) -> dict[str, torch.Tensor | None]:
    module = getattr(model, VSAIT.OFFICIAL_NETWORKS[net])
    return {n: p.grad for n, p in module.named_parameters()}


def _sign_unstable(ref_grad: torch.Tensor | None, grad: torch.Tensor | None, tol: dict,
                   like: torch.Tensor) -> torch.Tensor:
    """Elements whose first Adam step (about lr * sign(grad) with beta1 = 0) may legitimately differ.

    The manifest's rule: reference gradients below 1e-7. Besides those, gradients that the gradient check cannot
    tell from zero (|grad| <= atol) and where the two runs' values are dominated by rounding (more than 1 % apart):
    conv biases in front of InstanceNorm have a true gradient of exactly 0.
    """
    if ref_grad is None:
        return torch.zeros_like(like, dtype=torch.bool)
    unstable = ref_grad.abs() < 1e-7
    if grad is not None:
        noisy = (ref_grad.abs() <= tol["atol"]) & ((grad.detach() - ref_grad).abs() > 1e-2 * ref_grad.abs())
        unstable |= noisy
    return unstable


@contextlib.contextmanager
def _g_step_fake_pinned(model: VSAIT, reference: torch.Tensor | None, tol: dict, name: str) -> Iterator[None]:
    """Within the block, the generator's graph-building call (the G step) passes on the oracle's fake by value.

    The G-step gradient reaches the generator through ``d L / d fake``, which goes back through VGG's ReLUs and
    max-pooling: it is only piecewise continuous in the fake. Two float32 runs of the same generator on different
    CPUs or builds give fakes about 1e-6 apart, enough to move a max-pool switch or a ReLU near a tie and change the
    generator's gradients by up to 1 %. The fake keeps our value's gradient path (``out + sg(reference - out)``,
    so the generator's own backward is ours) after being checked against the oracle's at the case's tolerance.
    """
    if reference is None:
        yield
        return

    def hook(module: torch.nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
        if not (torch.is_grad_enabled() and out.requires_grad):
            return out
        assert_close(out, reference, tol, name)
        return out + (reference.to(out) - out).detach()

    handle = model.generator.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def check_train_step(case: dict, t: dict, tol: dict) -> None:
    model = _model(case)
    model.train()
    for net in case["weight_groups"]["init"]:
        getattr(model, VSAIT.OFFICIAL_NETWORKS[net]).load_state_dict(strip(t, f"init.{net}."), strict=True)
    optimizers, schedulers = model.configure_optimizers()
    weights = model.loss_weights
    h = model.hparams
    lr = {"g_net": h.lr_g, "g_net_map": h.lr_g, "d_net": h.lr_d}
    betas = {"g_net": tuple(h.betas_g), "g_net_map": tuple(h.betas_g), "d_net": tuple(h.betas_d)}
    zero_grad = {net: mean_removed_biases(getattr(model, VSAIT.OFFICIAL_NETWORKS[net])) for net in lr}
    prev_group = "init"
    k = 1
    while f"in.step{k}.source" in t:
        if k > 1:  # continue from the reference trajectory (sign-unstable elements may differ by 2 lr)
            for net in case["weight_groups"].get(prev_group, []):
                getattr(model, VSAIT.OFFICIAL_NETWORKS[net]).load_state_dict(strip(t, f"{prev_group}.{net}."),
                                                                             strict=True)
        before = {net: {n: p.detach().clone() for n, p in getattr(model, VSAIT.OFFICIAL_NETWORKS[net]
                                                                      ).named_parameters()}
                  for net in case["weight_groups"].get(f"step{k}", [])}
        source, target = t[f"in.step{k}.source"], t[f"in.step{k}.target"]
        pre = f"out.step{k}."
        if any(key.startswith(pre) for key in t):
            with torch.no_grad():
                fake = model.generator(source)
                hv_src = model.encode(source, "source")
                inter = {"fake": fake, "fake_in_G_step": fake, "hv_fake": model.encode(fake, "target"),
                         "hv_src": hv_src, "hv_tgt": model.encode(target, "target"), "map_src": model.mapping(hv_src)}
                for i, o in enumerate(model.discriminator(fake, source, encode=model.encode, map_net=model.mapping)):
                    inter[f"d_fake_and_srcmap.{i}"] = o
                for i, o in enumerate(model.discriminator(target, encode=model.encode)):
                    inter[f"d_real.{i}"] = o
        with _g_step_fake_pinned(model, t.get(f"{pre}fake_in_G_step"), tol, f"{pre}fake_in_G_step"):
            out = model.optimization_step(source, target, *optimizers)
        if model.hparams.lr_interval == "step":
            for s in schedulers:
                s["scheduler"].step()
        if any(key.startswith(pre) for key in t):
            inter["fake_in_D_step"] = out.images["fake_b_d_step"]
            for key in (key for key in t if key.startswith(pre)):
                name = key[len(pre):]
                assert name in inter, f"train_step: no definition for {key}"
                assert_close(inter[name], t[key], tol, key)
        losses = {"vsa": out.losses.get("vsa", 0) / weights["vsa"], "adv": out.losses.get("adv", 0) / weights["adv"],
                  "discr": out.losses.get("discr", 0) / weights["discr"], "G_total": out.losses.get("g_total"),
                  "D_total": out.losses.get("discr")}
        for key in (key for key in t if key.startswith(f"loss.step{k}.")):
            assert_close(losses[key.rsplit(".", 1)[1]], t[key], tol, key)
        for side in ("G", "D"):
            gp = f"grad.step{k}_{side}."
            for net in {key[len(gp):].split(".", 1)[0] for key in t if key.startswith(gp)}:
                grads = _grad_map(model, net)
                refs = strip(t, f"{gp}{net}.")
                scale = max(v.abs().max().item() for v in refs.values())
                for name, ref in refs.items():
                    assert grads[name] is not None, f"{gp}{net}.{name}: no gradient"
                    if name in zero_grad[net]:
                        assert_rounding_noise(grads[name], ref, f"{gp}{net}.{name}", scale=scale)
                        continue
                    assert_close(grads[name], ref, tol, f"{gp}{net}.{name}")
        for net, old in before.items():
            after = dict(getattr(model, VSAIT.OFFICIAL_NETWORKS[net]).named_parameters())
            ref_old = strip(t, f"{prev_group}.{net}.")
            side = "D" if net == "d_net" else "G"
            buffers = dict(getattr(model, VSAIT.OFFICIAL_NETWORKS[net]).named_buffers())
            for name, ref in strip(t, f"step{k}.{net}.").items():
                if name in buffers:  # fixed blur kernels
                    assert_close(buffers[name], ref, tol, f"step{k}.{net}.{name}")
                    continue
                delta, ref_delta = after[name].detach() - old[name], ref - ref_old[name]
                unstable = _sign_unstable(t.get(f"grad.step{k}_{side}.{net}.{name}"), after[name].grad, tol, ref)
                err = (delta - ref_delta).abs()
                close = (err <= 1e-6) | (unstable & (err <= 2 * lr[net] + 1e-6))
                # each step starts from the reference weights: the change compared is Adam's k-th step alone
                assert_step_close(delta, ref_delta, f"step{k}.{net}.{name}", close=close,
                                  noise_decided=name in zero_grad[net], bound=adam_step_bound(lr[net], betas[net], [k]),
                                  atol=1e-6)
        prev_group = f"step{k}"
        k += 1
    assert k > 1, "train_step case without steps"


HANDLERS: dict[str, Callable[[dict, dict, dict], None]] = {
    "generator": check_generator,
    "gaussian_conv": check_gaussian_conv,
    "feature_extractor": check_feature_extractor,
    "lsh_cat": check_lsh_cat,
    "lsh_single": check_lsh_single,
    "vsa_discriminator": check_vsa_discriminator,
    "mapping_net": check_mapping_net,
    "vsa_ops": check_vsa_ops,
    "losses": check_losses,
    "train_step": check_train_step,
}


@pytest.mark.parametrize("case", cases("vsait"))
def test_vsait_case(case: dict) -> None:
    kind = kind_of(case)
    handler = HANDLERS.get(kind)
    if handler is None:
        pytest.fail(f"case {case['name']!r}: unknown kind {kind!r}")
    with torch.no_grad() if kind != "train_step" else torch.enable_grad():
        handler(case, load_tensors(case), case["tolerance"])
