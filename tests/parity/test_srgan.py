"""SRResNet / SRGAN against the PyTorch port the fixtures come from (Lornatang/SRGAN-PyTorch ``model.py``).

One test per manifest case. Every network is built from the case's official constructor arguments, loaded from the
stored weights in the port's key layout, and fed the stored inputs; tolerances come from the manifest.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import torch

from tests.parity.manifest import cases, load_tensors, strip
from zoo.losses.vgg_content import VGGContentLoss
from zoo.methods import SRGAN, SRResNet
from zoo.nets.srresnet import SRGANDiscriminator, SRResNetGenerator

pytestmark = pytest.mark.parity


def _close(actual: torch.Tensor, expected: torch.Tensor, *, atol: float, rtol: float, name: str) -> None:
    torch.testing.assert_close(actual.detach().to(expected.dtype).cpu(), expected, atol=atol, rtol=rtol,
                               msg=lambda m: f"{name}: {m}")


def _compare_state(ours: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], *, atol: float, rtol: float,
                   name: str) -> None:
    assert sorted(ours) == sorted(expected), f"{name}: key sets differ: {sorted(set(ours) ^ set(expected))}"
    for key, ref in expected.items():
        if ref.is_floating_point():
            _close(ours[key], ref, atol=atol, rtol=rtol, name=f"{name}.{key}")
        else:
            assert torch.equal(ours[key].cpu(), ref), f"{name}.{key}: {ours[key]} != {ref}"


# ------------------------------------------------------------------------------------------------ official builders


def build_generator(constructor: dict) -> SRResNetGenerator:
    """The port's ``SRResNet(in_channels, out_channels, channels, num_rcb, upscale)``: clamped [0, 1] output."""
    return SRResNetGenerator(**constructor, output_activation="clamp")


def build_discriminator(constructor: dict) -> SRGANDiscriminator:
    """The port's ``DiscriminatorForVGG(in_channels, out_channels, channels)``: 96 x 96 inputs."""
    return SRGANDiscriminator(**constructor, image_size=96)


def build_content_loss(constructor: dict) -> VGGContentLoss:
    """The port's ``ContentLoss``: ImageNet-normalised [0, 1] input, plain MSE per node, no rescaling."""
    return VGGContentLoss(layers=tuple(constructor["feature_nodes"]), arch=constructor["net_cfg_name"],
                          batch_norm=constructor["batch_norm"], weights=None, feature_scale=1.0,
                          mean=tuple(constructor["feature_normalize_mean"]),
                          std=tuple(constructor["feature_normalize_std"]))


def hash_uniform_conv(k: int, shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Weight and bias of the k-th VGG conv by the manifest's "hash-uniform" recipe (uint32 arithmetic)."""
    out_c, in_c = shape[0], shape[1]
    n = np.arange(out_c * in_c * 9, dtype=np.uint64)
    x = ((n + (0x9E3779B9 * (k + 1 + 1000 * seed))) % 2**32).astype(np.uint32)
    x ^= x >> np.uint32(16)
    x = x * np.uint32(0x7FEB352D)
    x ^= x >> np.uint32(15)
    x = x * np.uint32(0x846CA68B)
    x ^= x >> np.uint32(16)
    u = x.astype(np.float64) / 2.0**32
    weight = ((2 * u - 1) * math.sqrt(6 / (in_c * 9))).astype(np.float32).reshape(shape)
    bias = (0.01 * ((np.arange(out_c) % 11) - 5)).astype(np.float32)
    return weight, bias


def load_vgg_weights(loss: VGGContentLoss, spec, tensors: dict[str, torch.Tensor]) -> None:
    """Put the case's VGG weights into ``loss``: stored in the file, or the hash recipe (checksums verified)."""
    if isinstance(spec, str):
        stored = strip(tensors, "state.vgg.")
        own = loss.features.state_dict()
        assert set(own) <= {k.removeprefix("features.") for k in stored}, "stored VGG weights miss layers"
        loss.features.load_state_dict({k: stored[f"features.{k}"] for k in own})
        return
    convs = [i for i, m in enumerate(loss.features) if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        for k, index in enumerate(convs):
            conv = loss.features[index]
            weight, bias = hash_uniform_conv(k, tuple(conv.weight.shape), spec["seed"])
            check = spec["checksums"].get(f"features.{index}.weight")
            assert check is not None, f"no checksum for features.{index}.weight"
            assert list(weight.shape) == check["shape"]
            assert hashlib.sha256(weight.astype("<f4").tobytes()).hexdigest() == check["sha256_float32_le"], \
                f"hash-uniform recipe differs from the fixture's at features.{index}.weight"
            conv.weight.copy_(torch.from_numpy(weight))
            conv.bias.copy_(torch.from_numpy(bias))


# ------------------------------------------------------------------------------------------------ case kinds


def check_forward(case: dict, t: dict[str, torch.Tensor]) -> None:
    tol = case["tolerance"]
    if case["class"] == "SRResNet":
        net, net_key, x, outputs = build_generator(case["constructor"]), "g", t["in.lr"], ("sr_eval", "sr_train")
    elif case["class"] == "DiscriminatorForVGG":
        net, net_key, x, outputs = build_discriminator(case["constructor"]), "d", t["in.hr"], ("logits_eval",
                                                                                                 "logits_train")
    else:
        raise AssertionError(f"unknown forward class {case['class']!r}")
    state = strip(t, f"state.{net_key}.")
    assert sorted(net.state_dict()) == sorted(state), "module tree differs from the official key set"
    net.load_state_dict(state, strict=True)
    for name in outputs:  # eval first (running statistics), then train (batch statistics, buffers move)
        net.train(name.endswith("_train"))
        with torch.no_grad():
            y = net(x)
        _close(y, t[f"out.{name}"], atol=tol["atol"], rtol=tol["rtol"], name=f"out.{name}")
    after = strip(t, f"after_train_forward.{net_key}.")
    ours = net.state_dict()
    for key, ref in after.items():
        if ref.is_floating_point():
            _close(ours[key], ref, atol=tol["atol"], rtol=tol["rtol"], name=f"after_train_forward.{key}")
        else:
            assert torch.equal(ours[key], ref), f"after_train_forward.{key}: {ours[key]} != {ref}"


def check_content_loss(case: dict, t: dict[str, torch.Tensor]) -> None:
    assert case["class"] == "ContentLoss", f"unknown loss class {case['class']!r}"
    tol = case["tolerance"]
    loss = build_content_loss(case["constructor"])
    load_vgg_weights(loss, case["vgg_weights"], t)
    nodes = case["constructor"]["feature_nodes"]
    with torch.no_grad():
        features = loss.extract(t["in.sr"])
        for node in nodes:
            _close(features[node], t[f"out.feat_sr.{node}"], atol=tol["feat_atol"], rtol=tol["feat_rtol"],
                   name=f"out.feat_sr.{node}")
        per_node = loss.double().layer_losses(t["in.sr"].double(), t["in.gt"].double())
    for i, node in enumerate(nodes):
        _close(per_node[node], t[f"loss.{node}"], atol=0.0, rtol=tol["loss_rtol"], name=f"loss.{node}")
        _close(per_node[node], t["out.content_losses"][0, i], atol=0.0, rtol=tol["loss_rtol"],
               name=f"out.content_losses[{i}]")
    total = loss(t["in.sr"].double(), t["in.gt"].double())
    _close(total, sum(t[f"loss.{n}"] for n in nodes), atol=0.0, rtol=tol["loss_rtol"], name="sum over nodes")


def _optimizer_args(optimizer: dict) -> dict:
    assert optimizer["class"] == "Adam", f"unsupported optimizer {optimizer['class']!r}"
    beta1, beta2 = optimizer["betas"]
    return {"lr": optimizer["lr"], "beta1": beta1, "beta2": beta2, "eps": optimizer["eps"],
            "weight_decay": optimizer["weight_decay"]}


def check_train_step(case: dict, t: dict[str, torch.Tensor]) -> None:
    tol = case["tolerance"]
    gan = isinstance(case["class"], list)
    cls = SRGAN if gan else SRResNet
    optimizer = case["optimizer"]["g"] if gan else case["optimizer"]
    if gan:
        assert case["optimizer"]["d"] == optimizer, "zoo uses one Adam setting for G and D"
    args = {**cls.init_args_from_official(case["constructor"]), **_optimizer_args(optimizer)}
    model = cls(**args, vgg_weights=None, channels_last=False)
    if gan:
        load_vgg_weights(model.content_loss, case["vgg_weights"], t)
    model.load_official_weights(strip(t, "init.g."), net="G")
    if gan:
        model.load_official_weights(strip(t, "init.d."), net="D")
    model.double().train()
    optimizers, _ = model.configure_optimizers()
    logits: list[torch.Tensor] = []
    if gan:
        model.discriminator.register_forward_hook(lambda module, inputs, output: logits.append(output.detach()))
    real_a, real_b = t["in.lr"].double() * 2 - 1, t["in.gt"].double() * 2 - 1  # the batch's [-1, 1] range
    out = model.optimization_step(real_a, real_b, *optimizers)

    weights, names = model.loss_weights, cls.OFFICIAL_LOSS_NAMES
    expected_terms = strip(t, "loss.")
    for ours, theirs in names.items():
        if weights.get(ours) == 0:
            continue  # a term weighted 0 is not computed by zoo; it still enters the checked g_total as 0
        assert ours in out.losses, f"zoo computed no {ours} (fixture loss.{theirs})"
        value = out.losses[ours] / weights.get(ours, 1.0) if not ours.endswith("_total") else out.losses[ours]
        _close(value, expected_terms[theirs], atol=0.0, rtol=tol["loss"]["rtol"], name=f"loss.{theirs}")
    unchecked = set(expected_terms) - set(names.values())
    assert not unchecked, f"fixture losses zoo does not check: {sorted(unchecked)}"
    if "out.sr" in t:
        _close((out.images["fake_b"] + 1) / 2, t["out.sr"], atol=tol["out"]["atol"], rtol=0.0, name="out.sr")
    if gan:
        assert len(logits) == 3, f"D ran {len(logits)} times, the port 3 (G step, real, fake)"
        for name, value in zip(("d_logits_g_step", "d_logits_real", "d_logits_fake"), logits, strict=True):
            _close(value, t[f"out.{name}"], atol=tol["out"]["atol"], rtol=0.0, name=f"out.{name}")
        _close(out.losses["g_content"], t["out.content_losses_reference_forward"].sum(), atol=1e-6, rtol=1e-5,
               name="out.content_losses_reference_forward")

    grads = {k: p.grad for k, p in model.generator.named_parameters()}
    for key, ref in strip(t, "grad.g_step.g.").items():
        assert grads[key] is not None, f"grad.g_step.g.{key}: no gradient"
        _close(grads[key], ref, atol=tol["grad"]["atol"], rtol=tol["grad"]["rtol"], name=f"grad.g_step.g.{key}")
    for net in ("g", "d") if gan else ("g",):
        _compare_state(model.official_state_dict(net.upper()), strip(t, f"step1.{net}."), atol=tol["step1"]["atol"],
                       rtol=0.0, name=f"step1.{net}")


CHECKS = {"forward": check_forward, "loss": check_content_loss, "train_step": check_train_step}


@pytest.mark.parametrize("case", cases("srgan"))
def test_srgan_case(case):
    check = CHECKS.get(case["kind"])
    assert check is not None, f"unknown case kind {case['kind']!r} in {case['name']}"
    check(case, load_tensors(case))
