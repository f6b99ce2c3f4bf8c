"""pix2pixHD against the official implementation: one test per case of the oracle manifest.

Every network is built from the case's official constructor arguments, every model from the case's official
options (``Pix2PixHD.init_args_from_official``); training cases replay the case's schedule of iterations and
end-of-epoch calls through zoo's own epoch hooks (``start_epoch`` / ``end_epoch``).
"""

from __future__ import annotations

import pytest
import torch

from tests.parity.manifest import RecordingOptimizer, assert_close, cases, run_case, strip
from zoo.losses.multiscale import multiscale_gan_loss
from zoo.losses.vgg_feature_matching import VGGFeatureMatchingLoss
from zoo.methods import Pix2PixHD
from zoo.methods.pix2pixhd import official_learning_rates
from zoo.nets.pix2pixhd import (
    FeatureEncoder,
    MultiscaleDiscriminator,
    build_pix2pixhd_generator,
    half_resolution,
    instance_edges,
)

pytestmark = pytest.mark.parity

#: how the case's loop reads the generator optimizer -> zoo's fix_global_optimizer
_OPTIMIZER_REFS = {"train.py@HEAD": "official_head", "model attribute every iteration": "refresh"}


def _tolerance(case: dict, group: str) -> dict:
    tol = case["tolerance"]
    return tol.get(group, tol)


# ------------------------------------------------------------------------------------------------ networks


def _official_network(constructor: dict) -> torch.nn.Module:
    c = constructor
    if c["netG"] == "encoder":
        return FeatureEncoder(c["input_nc"], c["output_nc"], c["ngf"], c["n_downsample_global"], c["norm"])
    return build_pix2pixhd_generator(
        c["input_nc"], c["output_nc"], ngf=c["ngf"], netG=c["netG"], n_downsample_global=c["n_downsample_global"],
        n_blocks_global=c.get("n_blocks_global", 9), n_local_enhancers=c.get("n_local_enhancers", 1),
        n_blocks_local=c.get("n_blocks_local", 3), norm=c["norm"])


def check_generator_forward(case: dict, t: dict[str, torch.Tensor]) -> None:
    net = _official_network(case["constructor"])
    net.load_state_dict(strip(t, "state.G."), strict=True)
    net.train(case.get("mode", "train").startswith("train"))
    tol = _tolerance(case, "outputs")
    with torch.no_grad():
        if case["constructor"]["netG"] == "encoder":
            assert_close(net.model(t["in.x"]), t["out.raw"], tol, "out.raw")
            assert_close(net(t["in.x"], t["in.inst"]), t["out.feat"], tol, "out.feat")
            return
        assert_close(net(t["in.x"]), t["out.y"], tol, "out.y")
        if "out.input_downsampled" in t:
            downsampled = t["in.x"]
            for _ in range(net.n_local_enhancers):
                downsampled = half_resolution(downsampled)
            assert_close(downsampled, t["out.input_downsampled"], tol, "out.input_downsampled")
            assert_close(net.model(downsampled), t["out.global_features"], tol, "out.global_features")


def _check_discriminator_outputs(outputs: list[list[torch.Tensor]], t: dict[str, torch.Tensor], prefix: str,
                                 tol: dict) -> None:
    refs = strip(t, prefix)
    assert refs, f"no {prefix}* tensors"
    assert len(refs) == sum(len(scale) for scale in outputs), f"{prefix}: the number of outputs differs"
    for key, ref in refs.items():
        i, j = (int(part) for part in key.split("."))
        assert_close(outputs[i][j], ref, tol, f"{prefix}{key}")


def check_discriminator_forward(case: dict, t: dict[str, torch.Tensor]) -> None:
    c = case["constructor"]
    net = MultiscaleDiscriminator(c["input_nc"], c["ndf"], c["n_layers_D"], c["norm"], c["use_sigmoid"], c["num_D"],
                                  c["getIntermFeat"])
    net.load_state_dict(strip(t, "state.D."), strict=True)
    net.train(case.get("mode", "train").startswith("train"))
    with torch.no_grad():
        _check_discriminator_outputs(net(t["in.x"]), t, "out.pred.", _tolerance(case, "outputs"))


def check_gan_loss(case: dict, t: dict[str, torch.Tensor]) -> None:
    for mode, constructor in case["constructor"].items():
        feats, preds = strip(t, f"in.{mode}.feat."), strip(t, f"in.{mode}.pred.")
        nested = [[feats[str(i)], preds[str(i)]] for i in range(len(preds))]
        options = {"use_lsgan": constructor["use_lsgan"], "probabilities": True}  # vanilla inputs: sigmoid outputs
        for target, is_real in (("real", True), ("fake", False)):
            assert_close(multiscale_gan_loss(nested, is_real, **options), t[f"loss.{mode}.nested.{target}"],
                         case["tolerance"], f"loss.{mode}.nested.{target}")
            assert_close(multiscale_gan_loss(nested[0], is_real, **options), t[f"loss.{mode}.single.{target}"],
                         case["tolerance"], f"loss.{mode}.single.{target}")


def check_vgg_loss(case: dict, t: dict[str, torch.Tensor]) -> None:
    loss = VGGFeatureMatchingLoss(None, width_div=case["vgg_stub"]["width_div"])
    loss.load_weights(strip(t, "state.vgg."))
    tol = _tolerance(case, "outputs")
    with torch.no_grad():
        for name, image in (("x", t["in.x"]), ("y", t["in.y"])):
            for k, feature in enumerate(loss.slices(image)):
                assert_close(feature, t[f"out.vgg_{name}.{k}"], tol, f"out.vgg_{name}.{k}")
    x = t["in.x"].clone().requires_grad_(True)
    value = loss(x, t["in.y"])
    value.backward()
    assert_close(value, t["loss.vgg"], tol, "loss.vgg")
    assert_close(x.grad, t["out.grad_x"], tol, "out.grad_x")


# ------------------------------------------------------------------------------------------------ the model


def _build_model(case: dict, t: dict[str, torch.Tensor]) -> Pix2PixHD:
    args = Pix2PixHD.init_args_from_official(case["opt"])
    stub = case.get("vgg_stub") or {}
    refs = case.get("optimizer_refs", "model attribute every iteration")
    model = Pix2PixHD(**args, vgg_weights=None, vgg_width_div=stub.get("width_div", 1),
                      fix_global_optimizer=_OPTIMIZER_REFS[refs])
    loaded = {net for key in t if key.startswith("init.") for net in [key.split(".")[1]]}
    for net in sorted(loaded - {"vgg"}):
        model.load_official_weights(strip(t, f"init.{net}."), net=net)
    if "vgg" in loaded:
        model.vgg.load_weights(strip(t, "init.vgg."))
    return model.train()


def _inputs(case: dict, t: dict[str, torch.Tensor], prefix: str) -> tuple[torch.Tensor, torch.Tensor,
                                                                           torch.Tensor | None]:
    """The official batch (label ids, instance ids, photo) in zoo's form: the label map as read from its PNG."""
    label, inst = t[f"{prefix}label"], t[f"{prefix}inst"]
    real_a = label / 255 * 2 - 1 if case["opt"]["label_nc"] else label
    instance = inst if inst.dim() == 4 else None  # zeros(B) when the case has no instance maps
    return real_a, t[f"{prefix}image"], instance


def check_encode_input(case: dict, t: dict[str, torch.Tensor]) -> None:
    model = _build_model(case, t)
    real_a, _, instance = _inputs(case, t, "in.")
    assert torch.equal(model.encode_input(real_a, instance), t["out.input_label"])
    if "out.edge_map" in t:
        assert torch.equal(instance_edges(t["in.inst"]), t["out.edge_map"])


def check_model_forward(case: dict, t: dict[str, torch.Tensor]) -> None:
    model = _build_model(case, t)
    real_a, real_b, instance = _inputs(case, t, "in.")
    with torch.no_grad():
        losses, images = model.forward_losses(real_a, real_b, instance)
    _check_losses(case, t, model, losses, "loss.")
    tol = _tolerance(case, "outputs")
    assert_close(images["fake_b"], t["out.fake_image"], tol, "out.fake_image")
    assert_close(images["input_label"], t["out.input_label"], tol, "out.input_label")
    with torch.no_grad():
        judged = {"pred_fake_pool": images["fake_b"], "pred_fake": images["fake_b"], "pred_real": real_b}
        for call, image in judged.items():
            outputs = model.discriminator(torch.cat([images["input_label"], image], 1))
            _check_discriminator_outputs(outputs, t, f"out.{call}.", tol)


def _check_losses(case: dict, t: dict[str, torch.Tensor], model: Pix2PixHD, losses: dict[str, torch.Tensor],
                  prefix: str) -> None:
    tol = _tolerance(case, "losses")
    refs = {k: v for k, v in strip(t, prefix).items() if "." not in k}
    assert refs, f"no {prefix}* tensors in the fixture"
    ours_by_official = {official: ours for ours, official in model.OFFICIAL_LOSS_NAMES.items()}
    for name, ref in refs.items():
        value = losses.get(ours_by_official[name])
        if value is None:  # a switched-off term is the integer 0 officially
            assert float(ref) == 0.0, f"{prefix}{name}: zoo computed no term but the official value is {ref}"
            continue
        assert_close(value, ref, tol, f"{prefix}{name}")


def _official_named_parameters(model: Pix2PixHD, net: str) -> list[tuple[str, torch.nn.Parameter]]:
    return list(getattr(model, model.OFFICIAL_NETWORKS[net]).named_parameters())


def _check_grads(case: dict, t: dict[str, torch.Tensor], grads: dict[str, torch.Tensor], prefix: str) -> None:
    tol = case["tolerance"]["grads"]
    noise_only = case.get("noise_only", {})
    refs = strip(t, prefix)
    assert refs, f"no {prefix}* tensors in the fixture"
    for key, ref in refs.items():
        net, name = key.split(".", 1)
        if tol.get("skip_noise_only") and name in noise_only.get(net, []):
            continue
        assert key in grads, f"{prefix}{key}: zoo left no gradient"
        err = (grads[key] - ref).abs().max().item()
        bound = tol["atol"] + tol["rtol_of_tensor_max"] * ref.abs().max().item()
        assert err <= bound, f"{prefix}{key}: max error {err:.3g} > {bound:.3g}"


def _check_states(case: dict, t: dict[str, torch.Tensor], model: Pix2PixHD, step: int) -> None:
    tol = case["tolerance"]["states"]
    noise_only = case.get("noise_only", {})
    for net in case["nets"]:
        refs = strip(t, f"step{step}.{net}.")
        if not refs:
            continue
        ours_state = model.official_state_dict(net)
        assert set(refs) == set(ours_state), f"step{step}.{net}: key sets differ"
        grads = {**strip(t, f"grad.step1_G.{net}."), **strip(t, f"grad.step1_D.{net}.")}
        for key, ref in refs.items():
            ours = ours_state[key].detach()
            if not ref.is_floating_point():
                assert torch.equal(ours, ref), f"step{step}.{net}.{key}: {ours} != {ref}"
                continue
            loose = torch.zeros_like(ref, dtype=torch.bool)
            if key in noise_only.get(net, []):
                loose[...] = True
            elif key in grads:
                loose |= grads[key].abs() < tol["tiny_grad_threshold"]
            allowed = tol["atol"] + tol["rtol"] * ref.abs() + loose * tol["loose_atol_per_step"] * step
            err = (ours - ref).abs()
            assert (err <= allowed).all(), f"step{step}.{net}.{key}: max error {err.max().item():.3g} too large"


def check_train_steps(case: dict, t: dict[str, torch.Tensor]) -> None:
    model = _build_model(case, t)
    (opt_g, opt_d), _ = model.configure_optimizers()
    spec = case["optimizer"]
    for optimizer in (opt_g, opt_d):
        assert isinstance(optimizer, torch.optim.Adam)
        group = optimizer.param_groups[0]
        assert group["lr"] == pytest.approx(spec["lr"]) and tuple(group["betas"]) == pytest.approx(spec["betas"])
        assert group["eps"] == pytest.approx(spec["eps"]) and group["weight_decay"] == spec["weight_decay"]
    recorded: dict[str, torch.Tensor] = {}
    named_g = [(f"{net}.{name}", p) for net in ("G", "E") if getattr(model, model.OFFICIAL_NETWORKS[net]) is not None
               for name, p in _official_named_parameters(model, net)]
    rec_g = RecordingOptimizer(opt_g, named_g, recorded)
    rec_d = RecordingOptimizer(opt_d, [(f"D.{n}", p) for n, p in _official_named_parameters(model, "D")], recorded)
    opt = case["opt"]
    epoch, step, epoch_ended = 1, 0, False
    for action in case["schedule"]:
        if action == "iteration":
            if epoch_ended:
                epoch, epoch_ended = epoch + 1, False
                model.start_epoch(epoch, [rec_g, rec_d])
            step += 1
            prefix = "" if step == 1 else f"step{step}."
            out = model.optimization_step(*_inputs(case, t, f"in.{prefix}"), rec_g, rec_d)
            _check_losses(case, t, model, out.losses, f"loss.{prefix}")
            for name, optimizer in (("lr_G", rec_g), ("lr_D", rec_d)):
                ref = float(t[f"out.{prefix}{name}"])
                assert optimizer.param_groups[0]["lr"] == pytest.approx(ref, abs=1e-15), f"out.{prefix}{name}"
            if step == 1:
                assert_close(out.images["fake_b"], t["out.fake_image"], _tolerance(case, "outputs"), "out.fake_image")
                _check_grads(case, t, {k: v for k, v in recorded.items() if not k.startswith("D.")}, "grad.step1_G.")
                _check_grads(case, t, {k: v for k, v in recorded.items() if k.startswith("D.")}, "grad.step1_D.")
            _check_states(case, t, model, step)
        elif action in ("update_fixed_params", "update_learning_rate"):
            if action == "update_fixed_params":
                assert epoch == opt["niter_fix_global"], "the case calls update_fixed_params outside train.py's rule"
            else:
                assert epoch > opt["niter"], "the case calls update_learning_rate outside train.py's rule"
            if not epoch_ended:
                model.end_epoch(epoch, rec_g)
                epoch_ended = True
        else:
            raise AssertionError(f"unknown schedule action {action!r}")


def check_lr_schedule(case: dict, t: dict[str, torch.Tensor]) -> None:
    opt = case["opt"]
    epochs = opt["niter"] + opt["niter_decay"]
    assert len(t["out.lr_D_model"]) == epochs
    args = Pix2PixHD.init_args_from_official(opt)
    for view, mode in (("trainpy", "official_head"), ("model", "refresh")):
        rates = official_learning_rates(opt["lr"], opt["niter"], opt["niter_decay"], opt["niter_fix_global"], epochs,
                                        mode)
        lr_g = torch.tensor([g for g, _ in rates], dtype=torch.float64)
        lr_d = torch.tensor([d for _, d in rates], dtype=torch.float64)
        assert_close(lr_g, t[f"out.lr_G_{view}"], case["tolerance"], f"out.lr_G_{view}")
        assert_close(lr_d, t[f"out.lr_D_{view}"], case["tolerance"], f"out.lr_D_{view}")
        model = Pix2PixHD(**args, vgg_weights=None, fix_global_optimizer=mode)
        counts = [model.stepped_generator_parameters(epoch) for epoch in range(1, epochs + 1)]
        assert counts == t[f"out.n_params_G_{view}"].tolist(), f"out.n_params_G_{view}"
    final = official_learning_rates(opt["lr"], opt["niter"], opt["niter_decay"], opt["niter_fix_global"], epochs + 1)
    assert_close(torch.tensor(final[-1][1], dtype=torch.float64), t["out.old_lr_final"], case["tolerance"],
                 "out.old_lr_final")


CHECKS = {
    "encode_input": check_encode_input,
    "G_forward": check_generator_forward,
    "D_forward": check_discriminator_forward,
    "gan_loss": check_gan_loss,
    "vgg_loss": check_vgg_loss,
    "model_forward": check_model_forward,
    "train_steps": check_train_steps,
    "lr_schedule": check_lr_schedule,
}


@pytest.mark.parametrize("case", cases("pix2pixhd"))
def test_official_parity(case: dict) -> None:
    run_case(case, CHECKS, "pix2pixHD")
