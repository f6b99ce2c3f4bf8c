"""Checks shared by the CUT and SRUNIT parity tests (``test_cut.py``, ``test_srunit.py``).

Every network and model is built from the case: constructor arguments, or the official options (the manifest's
``official_defaults`` for the case's ``--CUT_mode``, then the case's command line). Random draws of the official code
(``in.rng.<stage>.<NN>.<kind>.<phase>``) are injected in their order.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch

from tests.parity.manifest import RecordingOptimizer, assert_close, strip
from zoo.losses import gan_loss
from zoo.nets.cut import (
    InputNoise,
    PatchSampleF,
    build_cut_discriminator,
    build_cut_generator,
    gather_patches,
    patch_nce_loss,
    semantic_robustness_loss,
)
from zoo.nets.norm import reproduce_single_image_gradient_defect


def _layers(t: dict[str, torch.Tensor], prefix: str) -> list[int]:
    """Sorted integer suffixes of the keys ``<prefix><int>``."""
    return sorted(int(k[len(prefix):]) for k in t if k.startswith(prefix) and k[len(prefix):].isdigit())


def _tol(case: dict, category: str) -> dict:
    tol = case["tolerance"]
    return tol.get("per_category", {}).get(category, tol)


def rng_draws(t: dict[str, torch.Tensor], stage: str) -> list[tuple[str, str, torch.Tensor]]:
    """``(kind, phase, value)`` of the stage's recorded draws, in call order."""
    found = []
    for key, value in t.items():
        m = re.fullmatch(rf"in\.rng\.{re.escape(stage)}\.(\d+)\.(\w+)\.(\w+)", key)
        if m:
            found.append((int(m.group(1)), m.group(2), m.group(3), value))
    return [(kind, phase, value) for _, kind, phase, value in sorted(found, key=lambda x: x[0])]


# ------------------------------------------------------------------------------------------------ options


def _convert(text: str, default: Any) -> Any:
    if isinstance(default, bool):
        return text.lower() in ("yes", "true", "t", "y", "1")
    if isinstance(default, int):
        return int(text)
    if isinstance(default, float):
        return float(text)
    for parse in (int, float):  # an option without a recorded default
        try:
            return parse(text)
        except ValueError:
            pass
    return text


def official_options(case: dict) -> dict[str, Any]:
    """The official option namespace of a train case: the defaults of its ``--CUT_mode``, then its command line."""
    header = json.loads((Path(case["_folder"]) / "MANIFEST.json").read_text())
    tokens = case["spec"]["options_cmdline"].split()
    mode = next((tokens[i + 1] for i, tok in enumerate(tokens[:-1]) if tok == "--CUT_mode"), "CUT")
    options = dict(header["official_defaults"][f"CUT_mode={mode}"])
    i = 0
    while i < len(tokens):
        name = tokens[i][2:]
        if i + 1 < len(tokens) and not tokens[i + 1].startswith("--"):
            options[name] = _convert(tokens[i + 1], options.get(name, ""))
            i += 2
        else:  # a bare flag
            options[name] = True
            i += 1
    return options


# ------------------------------------------------------------------------------------------------ networks


def _generator(c: dict) -> torch.nn.Module:
    # defaults are those of the official define_G signature
    return build_cut_generator(input_nc=c["input_nc"], output_nc=c["output_nc"], ngf=c["ngf"], netG=c["netG"],
                               norm=c.get("norm", "batch"), use_dropout=c.get("use_dropout", False), init_type=None,
                               no_antialias=c.get("no_antialias", False),
                               no_antialias_up=c.get("no_antialias_up", False))


def check_generator(case: dict, t: dict[str, torch.Tensor]) -> None:
    """Output, feature taps (``G(x, layers)``, ``encode_only``) and SRUNIT's second output (the layer-16 feature)."""
    tol = case["tolerance"]
    net = _generator(case["spec"]["constructor"])
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
    for key in [k for k in t if re.fullmatch(r"out\.feat(\d+)_plain_forward", k)]:
        layer = int(re.fullmatch(r"out\.feat(\d+)_plain_forward", key).group(1))
        with torch.no_grad():
            _, (feat,) = net(t["in.x"], [layer])
        assert_close(feat, t[key], tol, key)


def check_generator_perturb(case: dict, t: dict[str, torch.Tensor]) -> None:
    """SRUNIT's perturbation of one feature map: decoded, re-encoded, and the magnitude map."""
    spec, tol = case["spec"], case["tolerance"]
    net = _generator(spec["constructor"])
    net.load_state_dict(strip(t, "state.G."), strict=True)
    net.train()
    draws = rng_draws(t, "call")
    direction = next(v for kind, _, v in draws if kind == "randn")
    uniform = next(v for kind, _, v in draws if kind == "rand")
    with torch.no_grad():
        _, (feat,) = net(t["in.x"], [spec["layer"]])
        perturbed, magnitude = net.perturb(feat, spec["layer"], spec["noise"], direction=direction, uniform=uniform)
    assert_close(feat, t["out.feat"], tol, "feature")
    assert_close(perturbed, t["out.feat_perturbed"], tol, "perturbed, decoded and re-encoded feature")
    assert_close(magnitude, t["out.noise_magnitude"], tol, "noise magnitude")


class ReplayDraws:
    """Returns recorded normal draws in order; a request larger than one draw concatenates several along dim 0
    (zoo runs D once on the fake and real batches where the official code makes two calls)."""

    def __init__(self, draws: list[torch.Tensor]) -> None:
        self.draws = list(draws)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        parts, n = [], 0
        while n < x.shape[0]:
            part = self.draws.pop(0)
            parts.append(part)
            n += part.shape[0]
        out = torch.cat(parts)
        assert out.shape == x.shape, f"replayed draw {tuple(out.shape)} does not fit the input {tuple(x.shape)}"
        return out.to(x)


def check_discriminator(case: dict, t: dict[str, torch.Tensor]) -> None:
    """PatchGAN output; with SRUNIT's ``noise`` the recorded input noise is replayed."""
    c = case["spec"]["constructor"]
    net = build_cut_discriminator(input_nc=c["input_nc"], ndf=c["ndf"], netD=c["netD"],
                                  n_layers_D=c.get("n_layers_D", 3), norm=c.get("norm", "batch"), init_type=None,
                                  no_antialias=c.get("no_antialias", False))
    net.load_state_dict(strip(t, "state.D."), strict=True)
    noise = [v for kind, _, v in rng_draws(t, "call") if kind == "randn"]
    InputNoise(c.get("noise", 0.0), draw=ReplayDraws(noise)).attach(net)
    with torch.no_grad():
        assert_close(net(t["in.x"]), t["out.y"], case["tolerance"], "D(x)")


def check_patch_sample(case: dict, t: dict[str, torch.Tensor], normalize: str) -> None:
    """PatchSampleF: sampled ids, samples of keys and queries, all positions, ``sample`` (no MLP), and SRUNIT's
    single chosen scale (``choice``)."""
    spec, tol = case["spec"], case["tolerance"]
    layers = _layers(t, "in.feat_k")
    feats_k = [t[f"in.feat_k{i}"] for i in layers]
    feats_q = [t[f"in.feat_q{i}"] for i in layers]
    n = spec["num_patches"]
    sampler = PatchSampleF([f.shape[1] for f in feats_k], use_mlp=True, nc=spec["netF_nc"], normalize=normalize)
    sampler.load_state_dict(strip(t, "state.F."), strict=True)
    plain = PatchSampleF(use_mlp=False, normalize=normalize)
    perms = {phase: [v for kind, p, v in rng_draws(t, "call") if kind == "permutation" and p == phase]
             for phase in ("mlp_sample", "sample", "choice")}
    with torch.no_grad():
        ids = [perm[:n] for perm in perms["mlp_sample"]]
        k, used = sampler(feats_k, n, ids)
        q, _ = sampler(feats_q, n, used)
        k_all, _ = sampler(feats_k, 0)
        k_plain, _ = plain(feats_k, n, [perm[:n] for perm in perms["sample"]])
    for i, layer in enumerate(layers):
        assert torch.equal(used[i], t[f"out.patch_ids{layer}"]), f"patch ids {layer}"
        assert_close(k[i], t[f"out.sample_k{layer}"], tol, f"sample_k{layer}")
        assert_close(q[i], t[f"out.sample_q{layer}"], tol, f"sample_q{layer}")
        assert_close(k_all[i], t[f"out.sample_all_k{layer}"], tol, f"sample_all_k{layer}")
        assert_close(k_plain[i], t[f"out.sample_nomlp_k{layer}"], tol, f"sample_nomlp_k{layer}")
    if "out.choice_sample" in t:
        c = spec["choice"]
        with torch.no_grad():
            chosen, chosen_ids = sampler([feats_q[c]], n, [perms["choice"][0][:n]], mlp_indices=[c])
            chosen_plain, _ = plain([feats_q[c]], n, chosen_ids)
        assert_close(chosen[0], t["out.choice_sample"], tol, "choice sample (mlp of the chosen scale)")
        assert_close(chosen_plain[0], t["out.choice_nomlp_sample"], tol, "choice sample without MLP")


def check_patchnce(case: dict, t: dict[str, torch.Tensor]) -> None:
    """PatchNCE per patch, its mean x lambda and the gradient w.r.t. the queries, both negative groupings."""
    spec = case["spec"]
    for variant, all_negatives in (("sameimg", False), ("allneg", True)):
        if f"out.{variant}.loss_per_patch" not in t:
            continue
        q = t["in.feat_q"].clone().requires_grad_(True)
        per_patch = patch_nce_loss(q, t["in.feat_k"], batch_size=spec["batch_size"], nce_t=spec["nce_T"],
                                   all_negatives_from_minibatch=all_negatives)
        loss = per_patch.mean() * spec["lambda_NCE"]
        loss.backward()
        assert_close(per_patch, t[f"out.{variant}.loss_per_patch"], _tol(case, "out"), f"{variant} per patch")
        assert_close(loss, t[f"loss.{variant}.mean_times_lambda"], _tol(case, "loss"), f"{variant} mean x lambda")
        assert_close(q.grad, t[f"out.{variant}.grad_feat_q"], _tol(case, "out"), f"{variant} grad wrt queries")


def check_gan_losses(case: dict, t: dict[str, torch.Tensor]) -> None:
    """GANLoss values and gradients, every mode stored."""
    for key in [k for k in t if k.startswith("loss.")]:
        mode, target = re.fullmatch(r"loss\.(\w+)_(real|fake)", key).group(1, 2)
        pred = t["in.pred"].clone().requires_grad_(True)
        loss = gan_loss(pred, target == "real", mode)
        loss.backward()
        assert_close(loss, t[key], _tol(case, "loss"), key)
        assert_close(pred.grad, t[f"out.grad_pred.{mode}_{target}"], _tol(case, "out"), f"grad {key}")


def check_lr_schedule(case: dict, t: dict[str, torch.Tensor], method_cls: type) -> None:
    """The learning rate of every epoch under the official schedule options (``update_learning_rate`` at each
    epoch's end), with zoo's schedulers built from the same options."""
    from zoo.methods._common import build_official_schedulers
    from zoo.schedules import step_scheduler

    for variant, cmdline in case["spec"]["variants"].items():
        options = official_options({**case, "spec": {"options_cmdline": cmdline}})
        args = method_cls.init_args_from_official(options)
        hparams = type("H", (), {k: args.get(k, v) for k, v in (
            ("lr_policy", "linear"), ("n_epochs", None), ("n_epochs_decay", None), ("epoch_count", 1),
            ("lr_decay_iters", 50))})()
        param = torch.nn.Parameter(torch.zeros(1))
        optimizer = torch.optim.Adam([param], lr=args["lr"])
        scheduler = build_official_schedulers([optimizer], hparams)[0]["scheduler"]
        expected = t[f"out.lr.{variant}"]
        lrs = [optimizer.param_groups[0]["lr"]]
        for _ in range(len(expected) - 1):
            step_scheduler(scheduler)
            lrs.append(optimizer.param_groups[0]["lr"])
        assert_close(torch.tensor(lrs, dtype=torch.float64), expected, case["tolerance"], f"lr {variant}")


def check_reg_loss(case: dict, t: dict[str, torch.Tensor]) -> None:
    """SRUNIT's ``compute_reg_loss`` on stored features: the loss and its gradients (features and F's MLP)."""
    spec = case["spec"]
    layers = _layers(t, "in.feat_real_A")
    feats = [t[f"in.feat_real_A{i}"] for i in layers]
    sampler = PatchSampleF([f.shape[1] for f in feats], use_mlp=True, nc=spec["netF_nc"], normalize="srunit")
    sampler.load_state_dict(strip(t, "state.F."), strict=True)
    c, n = spec["choice"], spec["num_patches"]
    (perm,) = [v for kind, _, v in rng_draws(t, "call") if kind == "permutation"]
    clean = feats[c].clone().requires_grad_(True)
    perturbed = t["in.feat_perturbed"].clone().requires_grad_(True)
    k, ids = sampler([clean], n, [perm[:n]], mlp_indices=[c])
    q, _ = sampler([perturbed], n, ids, mlp_indices=[c])
    loss = semantic_robustness_loss(q[0], k[0], gather_patches(t["in.noise_magnitude"], ids[0]),
                                    num_layers=len(spec["nce_layers"]))
    loss.backward()
    assert_close(loss, t["loss.reg"], _tol(case, "loss"), "reg loss")
    assert_close(clean.grad, t["out.grad_feat_real_A_choice"], _tol(case, "out"), "grad wrt the clean feature")
    assert_close(perturbed.grad, t["out.grad_feat_perturbed"], _tol(case, "out"), "grad wrt the perturbed feature")
    per_tensor = _tol(case, "grad")["per_tensor_atol"]
    grads = {f"grad.reg.F.{name}": p.grad for name, p in sampler.named_parameters() if p.grad is not None}
    for key, expected in strip(t, "").items():
        if key.startswith("grad.reg.F."):
            assert_close(grads[key], expected, {"atol": per_tensor[key], "rtol": 0.0}, key)


# ------------------------------------------------------------------------------------------------ training


def step_draws(t: dict[str, torch.Tensor], step: int, num_patches: int) -> tuple[dict[str, Any], list[torch.Tensor]]:
    """Draws of step ``step`` as ``optimization_step(draws=...)`` takes them, and D's input-noise draws."""
    draws: dict[str, Any] = {}
    d_noise = []
    for kind, phase, value in rng_draws(t, f"step{step}"):
        if kind == "uniform" and phase == "forward":
            draws["flip"] = bool(value.item() < 0.5)
        elif kind == "permutation":
            key = {"NCE": "nce", "NCE_Y": "nce_idt", "reg": "reg"}[phase]
            draws.setdefault(key, []).append(value[:num_patches])
        elif kind == "choice":
            draws["reg_choice"] = int(value.item())
        elif kind == "randn" and phase == "forward":
            draws["reg_direction"] = value
        elif kind == "rand" and phase == "forward":
            draws["reg_uniform"] = value
        elif kind == "randn":
            d_noise.append(value)
        else:
            raise AssertionError(f"unknown draw {kind}.{phase} in step {step}")
    return draws, d_noise


def check_train_step(case: dict, t: dict[str, torch.Tensor], method_cls: type) -> None:
    """Replay the official iterations from ``init.*`` with the recorded draws: losses, images, gradients right
    before each optimizer step, and the parameters after each step, with the case's rules (per-tensor gradient
    tolerances; ``noise_only`` gradients are rounding noise; post-step weights within ``atol``, or within
    ``atol + 3 lr`` per step where the stored gradient is within its tolerance or noise only).

    The official code ran on a CPU PyTorch whose instance-norm backward is wrong for one NCHW image receiving a
    channels-last gradient, which PatchNCE sends back into the residual-block taps; zoo corrects that gradient
    (:func:`zoo.nets.norm.reproduce_single_image_gradient_defect`, tested in ``tests/nets/test_channels_last.py``),
    so the replay turns the correction off to compute what the oracle computed.
    """
    with reproduce_single_image_gradient_defect():
        _replay_train_step(case, t, method_cls)


def check_compiled_train_step(case: dict, t: dict[str, torch.Tensor], method_cls: type) -> None:
    """The training step of a compiled model (``compile``) against zoo's eager step computed with instance norm's
    true gradient, at the case's tolerances.

    Under inductor, instance norm is decomposed into primitive operations whose backward is the true gradient, so
    the single-image defect the oracle carries (:func:`check_train_step`) cannot be reproduced; the eager step with
    the true gradient is the reference instead (it differs from the oracle only by that defect, which
    :func:`check_train_step` checks with the defect brought back).
    """
    _replay_train_step(case, eager_true_gradient_fixture(case, t, method_cls), method_cls)


def eager_true_gradient_fixture(case: dict, t: dict[str, torch.Tensor], method_cls: type) -> dict[str, torch.Tensor]:
    """``t`` with the oracle's losses, images, gradients and post-step weights replaced by zoo's eager replay of the
    same steps with instance norm's true gradient (compiled networks run eagerly here)."""
    record: dict[str, torch.Tensor] = {}
    with torch.compiler.set_stance("force_eager"):
        _replay_train_step(case, t, method_cls, record=record)
    return {**t, **record}


def _replay_train_step(case: dict, t: dict[str, torch.Tensor], method_cls: type,
                       record: dict[str, torch.Tensor] | None = None) -> None:
    """Replay the fixture's steps and compare with it; with ``record``, store what would be compared in ``record``
    under the fixture's keys instead (losses, images, gradients right before each step, parameters after it)."""

    def compare(actual: torch.Tensor, key: str, tolerance: dict, name: str) -> None:
        if record is not None:
            record[key] = actual.detach().clone()
        else:
            assert_close(actual, t[key], tolerance, name)

    spec, tol = case["spec"], case["tolerance"]
    options = official_options(case)
    torch.manual_seed(0)  # construction draws are overwritten by the fixture's init weights
    model = method_cls(**method_cls.init_args_from_official(options), channels_last=False)
    model.train()
    for net in ("G", "D", "F"):
        model.load_official_weights(strip(t, f"init.{net}."), net=net)
    modules = {"G": model.generator, "D": model.discriminator, "F": model.patch_sampler}
    named = {n: [(f"{n}.{k}", p) for k, p in m.named_parameters()] for n, m in modules.items()}
    grads: dict[str, torch.Tensor] = {}
    optimizers, schedulers = model.configure_optimizers()
    recording = [RecordingOptimizer(o, named[n], grads) for o, n in zip(optimizers, ("G", "D", "F"), strict=False)]
    from zoo.schedules import step_scheduler

    per_tensor = _tol(case, "grad")["per_tensor_atol"]
    noise_only = set(tol.get("noise_only", []))
    weight_atol = _tol(case, "weights")["atol"]
    steps = sorted(int(m.group(1)) for k in t if (m := re.fullmatch(r"in\.step(\d+)\.A", k)))
    assert steps, "train case without inputs"
    epochs = spec.get("epochs", [options["epoch_count"]] * len(steps))
    epoch_now = options["epoch_count"]
    previous = {f"{n}.{k}": v.detach().clone() for n, m in modules.items() for k, v in m.named_parameters()}
    allowance: dict[str, torch.Tensor] = {}
    noise = getattr(model, "discriminator_noise", None)
    for step, epoch in zip(steps, epochs, strict=True):
        for _ in range(epoch - epoch_now):  # official update_learning_rate between epochs
            for s in schedulers:
                step_scheduler(s["scheduler"])
        epoch_now = epoch
        draws, d_noise = step_draws(t, step, options["num_patches"])
        if noise is not None:
            noise.draw = ReplayDraws(d_noise)
        grads.clear()
        out = model.optimization_step(t[f"in.step{step}.A"], t[f"in.step{step}.B"], *recording, draws=draws,
                                      epoch=epoch)
        if f"out.step{step}.flipped" in t:
            assert draws.get("flip", False) == bool(t[f"out.step{step}.flipped"].item())
        for name, opt in zip(("G", "D", "F"), optimizers, strict=False):
            key = f"out.step{step}.lr_{name}"
            if key in t:
                assert abs(opt.param_groups[0]["lr"] - t[key].item()) <= 1e-12, key
        official = model.official_losses(out.losses)
        trained_g = any(name.startswith("G.") for name in grads)
        for key in strip(t, f"loss.step{step}."):
            assert key in official, f"step {step}: zoo computed no loss {key!r}"
            compare(official[key], f"loss.step{step}.{key}", _tol(case, "loss"), f"step {step} loss {key}")
        for key in ("fake_B", "idt_B"):
            if f"out.step{step}.{key}" in t:
                compare(out.images[key.lower()], f"out.step{step}.{key}", _tol(case, "out"), key)
        if "reg_choice" in out.losses:
            for key in ("feat_perturbed", "noise_magnitude"):
                compare(model.last_perturbation[key], f"out.step{step}.{key}", _tol(case, "out"), key)
            assert int(out.losses["reg_choice"]) == int(t[f"out.step{step}.reg_choice"].item())
        # gradients right before each optimizer step
        stored = {k: v for k, v in t.items() if k.startswith(f"grad.step{step}_")}
        for key, expected in stored.items():
            ours_key = key.split(".", 2)[2]  # grad.stepK_X.<net>.<param> -> <net>.<param>
            assert ours_key in grads, f"{key}: no gradient recorded (the optimizer of this network did not step)"
            if record is not None:
                record[key] = grads[ours_key].detach().clone()
                continue
            if key in noise_only:
                scale = max(v.abs().max().item() for k, v in stored.items() if k.split(".")[2] == key.split(".")[2])
                limit = max(1e-5 * scale, per_tensor.get(key, 0.0))
                largest = grads[ours_key].abs().max().item()
                assert largest <= limit, f"{key}: rounding noise up to {largest:.3g}, above its bound {limit:.3g}"
                continue
            assert_close(grads[ours_key], expected, {"atol": per_tensor[key], "rtol": 0.0}, key)
            unstable = expected.abs() <= per_tensor[key]
            allowance[ours_key] = allowance.get(ours_key, torch.zeros_like(expected)) + unstable * 3 * \
                t[f"out.step{step}.lr_{ours_key.split('.')[0]}"].item()
        for key in noise_only:
            if key.startswith(f"grad.step{step}_"):
                ours_key = key.split(".", 2)[2]
                allowance[ours_key] = allowance.get(ours_key, torch.zeros(())) + 3 * \
                    t[f"out.step{step}.lr_{ours_key.split('.')[0]}"].item()
        if not trained_g:
            assert not any(k.startswith(f"grad.step{step}_G") for k in t), "the oracle stepped G"
        # parameters after the step
        current = {f"{n}.{k}": v.detach() for n, m in modules.items() for k, v in m.named_parameters()}
        expected_state = strip(t, f"step{step}.")
        assert expected_state, f"no step{step}.* weights stored"
        if record is not None:
            record.update({f"step{step}.{key}": current[key].clone() for key in expected_state if key in current})
        for key, expected in (expected_state if record is None else {}).items():
            if key not in current:  # buffers (blur filters) never change
                continue
            limit = weight_atol + allowance.get(key, torch.zeros(()))
            diff = (current[key] - expected).abs()
            bad = diff > limit
            assert not bad.any(), f"step {step} {key}: {int(bad.sum())} elements differ, max {diff.max().item():.3g}"
        for key, before in previous.items():
            if key not in expected_state:
                assert torch.equal(current[key], before), f"step {step}: {key} changed but the oracle stores no value"
        previous = {k: v.clone() for k, v in current.items()}
