"""InstaFormer against the official implementation (github.com/cvlab-kaist/InstaFormer): one test per case of the
oracle manifest (``<ref>/instaformer``), dispatched on the case's ``kind``; an unknown kind fails.

Every network is built from the case (``spec.arch`` and the other spec fields; the official defaults of the
manifest header for the rest), never from zoo's defaults; the official random draws (``in.rng.<stage>.<NN>.<kind>.
<phase>``: the random style code, the patch ids) are injected in their order; tolerances are the case's own:
``out``/``loss`` atol + rtol, gradients a per-tensor atol (``noise_only`` gradients are rounding noise), post-step
weights atol except for the "unstable" elements the manifest names, integers exactly.

The train cases' G gradients are sensitive to float32 rounding in the forward pass: PatchNCE's gradient moves by
~100x the translation's rounding error, and a ReLU input 1e-6 from zero in exact arithmetic can land on either side.
They pass with one thread (the test default, ``ZOO_TEST_THREADS=1``) and eager kernels; with two threads (step 2 of
``train_two_steps``: one such ReLU flips) or inductor's fused kernels a few gradients leave their tolerance although
zoo's float64 replay of the same step matches the oracle to ~1e-6 of it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.parity.cut_family import rng_draws
from tests.parity.manifest import (
    RecordingOptimizer,
    assert_close,
    assert_rounding_noise,
    cases,
    run_case,
    strip,
)
from zoo.losses import gan_loss
from zoo.methods._common import discriminator_losses
from zoo.methods.instaformer import InstaFormer
from zoo.nets.cut import PatchSampleF, build_cut_discriminator
from zoo.nets.instaformer import (
    INSTANCE_PATCHES,
    MLP,
    AdaINTransformer,
    ContentEncoder,
    Decoder,
    StyleEncoder,
    TransformerAggregator,
    adain_layers,
    assign_adain_params,
    compute_nce_loss,
    extract_box_features,
    instance_nce_loss,
    valid_boxes,
)

pytestmark = pytest.mark.parity

#: official network name -> optimizer that trains it in train.py
_OPTIMIZER_OF = {"ContentEncoder": "G", "StyleEncoder": "G", "Transformer": "G", "MLP_Adain": "G", "Decoder": "G",
                 "Discrim": "D", "MLP_head": "F", "MLP_head_inst": "F"}
#: spec.arch key -> InstaFormer argument
_ARCH = {"ngf": "ngf", "embed_C": "embed_c", "img_size": "img_size", "depth": "depth", "heads": "heads",
         "mlp_dim": "mlp_dim", "adain_dim": "adain_dim", "ndf": "ndf", "n_layers_D": "n_layers_d",
         "nc_patch": "nc_patch", "nc_inst": "nc_inst", "style_dim": "style_dim", "n_downsampling": "n_downsampling"}
#: spec.weights key -> InstaFormer argument
_WEIGHTS = {"w_GAN": "w_gan", "w_Recon": "w_recon", "w_Style": "w_style", "w_NCE": "w_nce",
            "w_Instance_NCE": "w_instance_nce"}


def _tol(case: dict, category: str) -> dict:
    tol = case["tolerance"]
    return tol.get("per_category", {}).get(category, tol)


def _grad_tol(case: dict, key: str) -> dict:
    return {"atol": _tol(case, "grad")["per_tensor_atol"][key], "rtol": 0.0}


def _arch(case: dict) -> dict[str, Any]:
    arch = case["spec"].get("arch", {})
    return {"style_dim": 8, "n_downsampling": 2, **arch}


def _header(case: dict) -> dict:
    return json.loads((Path(case["_folder"]) / "MANIFEST.json").read_text())


def _check_grads(case: dict, t: dict[str, torch.Tensor], grads: dict[str, torch.Tensor | None], prefix: str) -> None:
    """Parameter gradients ``grads`` (official ``<Net>.<key>`` -> tensor or None) against ``<prefix><Net>.<key>``."""
    stored = strip(t, prefix)
    noise_only = {k.removeprefix(prefix) for k in case["tolerance"].get("noise_only", []) if k.startswith(prefix)}
    ours = {k: g for k, g in grads.items() if g is not None}
    assert set(ours) == set(stored), (f"{prefix}: zoo has gradients for {sorted(set(ours) - set(stored))}, lacks "
                                      f"{sorted(set(stored) - set(ours))}")
    for key, expected in stored.items():
        if key in noise_only:
            net = key.split(".")[0]
            scale = max(v.abs().max().item() for k, v in stored.items() if k.split(".")[0] == net)
            assert_rounding_noise(ours[key], expected, prefix + key, scale=scale)
            continue
        assert_close(ours[key], expected, _grad_tol(case, prefix + key), prefix + key)


def _named_grads(net: torch.nn.Module, name: str) -> dict[str, torch.Tensor | None]:
    return {f"{name}.{k}": p.grad for k, p in net.named_parameters()}


# ------------------------------------------------------------------------------------------------ components


def check_content_encoder(case: dict, t: dict[str, torch.Tensor]) -> None:
    """ContentEncoder taps and output; box features (roi_align 8x8, padded rows zeroed) and their backward."""
    spec, tol, arch = case["spec"], _tol(case, "out"), _arch(case)
    encoder = ContentEncoder(t["in.x"].shape[1], arch["ngf"], arch["n_downsampling"])
    encoder.load_state_dict(strip(t, "state.ContentEncoder."), strict=True)
    with torch.no_grad():
        content, feats = encoder(t["in.x"], spec["layers"])
    for layer, feat in zip(spec["layers"], feats, strict=True):
        assert_close(feat, t[f"out.feat.{layer}"], tol, f"feat.{layer}")
    assert encoder.feature_channels(spec["layers"]) == [t[f"out.feat.{i}"].shape[1] for i in spec["layers"]]
    assert_close(content, t["out.feat_content"], tol, "feat_content")
    features = t["out.feat_content"].clone().requires_grad_(True)
    boxes = extract_box_features(features, t["in.box"])
    assert_close(boxes, t["out.box_feature"], tol, "box_feature")
    (boxes * t["in.box_feature_weight"]).sum().backward()
    assert_close(features.grad, t["out.grad_feat_content"], tol, "grad_feat_content")


def check_style_adain(case: dict, t: dict[str, torch.Tensor]) -> None:
    """StyleEncoder, MLP_Adain, the official assignment of AdaIN parameters (all layers the same at 2C, consecutive
    chunks when wider) and AdaIN over tokens, with gradients."""
    tol, arch = _tol(case, "out"), _arch(case)
    encoder = StyleEncoder(t["in.x"].shape[1], arch["ngf"], arch["style_dim"], arch["n_downsampling"])
    encoder.load_state_dict(strip(t, "state.StyleEncoder."), strict=True)
    feat_c = arch["ngf"] * 2 ** arch["n_downsampling"]

    def mlp(name: str) -> MLP:
        state = strip(t, f"state.{name}.")
        net = MLP(arch["style_dim"], state["model.2.fc.weight"].shape[0], arch["adain_dim"], 3, norm="none",
                  activ="relu")
        net.load_state_dict(state, strict=True)
        return net

    mlp_adain, mlp_wide = mlp("MLP_Adain"), mlp("MLP_Adain_wide")
    transformer = AdaINTransformer(arch["embed_C"], arch["depth"], arch["heads"], feat_c, arch["mlp_dim"])
    transformer.load_state_dict(strip(t, "state.AdaIn_Transformer."), strict=True)
    x = t["in.x"].clone().requires_grad_(True)
    tokens = t["in.tokens"].clone().requires_grad_(True)
    style = encoder(x)
    params = mlp_adain(style)
    assert_close(style, t["out.style_code"], tol, "style_code")
    assert_close(params, t["out.adain_params"], tol, "adain_params")
    with torch.no_grad():
        assert_close(mlp_adain(t["in.rand_style"]), t["out.adain_params_rand_style"], tol, "adain_params_rand_style")
        wide = mlp_wide(style)
    assert_close(wide, t["out.adain_params_wide"], tol, "adain_params_wide")
    for label, source in (("assigned", params), ("assigned_wide", wide)):
        assign_adain_params(source.detach(), transformer)
        for i, (attention, feed_forward) in enumerate(transformer.layers):
            for part, block in (("attn", attention), ("ff", feed_forward)):
                for field in ("weight", "bias"):
                    assert_close(getattr(block.norm, field), t[f"out.{label}.{i}.{part}.{field}"], tol,
                                 f"{label}.{i}.{part}.{field}")
    assign_adain_params(params, transformer)
    y = transformer.layers[0][0].norm(tokens)
    assign_adain_params(None, transformer)
    assert all(layer.weight is None for layer in adain_layers(transformer))
    assert_close(y, t["out.adain_out_layer0_attn"], tol, "adain_out_layer0_attn")
    (y * t["in.adain_out_weight"]).sum().backward()
    assert_close(x.grad, t["out.grad_x"], tol, "grad_x")
    assert_close(tokens.grad, t["out.grad_tokens"], tol, "grad_tokens")
    _check_grads(case, t, {**_named_grads(encoder, "StyleEncoder"), **_named_grads(mlp_adain, "MLP_Adain")},
                 "grad.call.")


def _aggregator(case: dict, t: dict[str, torch.Tensor]) -> TransformerAggregator:
    arch = _arch(case)
    net = TransformerAggregator(arch["img_size"], arch["embed_C"], arch["ngf"] * 2 ** arch["n_downsampling"],
                                arch["depth"], arch["heads"], arch["mlp_dim"],
                                stem_channels=t["state.Transformer.patch_embed.proj.0.weight"].shape[0])
    net.load_state_dict(strip(t, "state.Transformer."), strict=True)
    return net


def check_transformer(case: dict, t: dict[str, torch.Tensor]) -> None:
    """Positional code, stem, box tokens, AdaIN transformer, split, gradients; the no-box call."""
    tol = _tol(case, "out")
    net = _aggregator(case, t)
    features = t["in.feat_content"].clone().requires_grad_(True)
    params = t["in.adain_params"].clone().requires_grad_(True)
    with torch.no_grad():
        assert_close(net.pos_embed(), t["out.pos_embed"], tol, "pos_embed")
        assert_close(net.tokens(t["in.feat_content"]), t["out.patch_tokens"], tol, "patch_tokens")
        assert_close(net.tokens(t["in.feat_content"], t["in.box"]), t["out.tokens_with_box"], tol, "tokens_with_box")
        nobox, none = net(t["in.feat_content"], None, t["in.adain_params"])
    assert none is None
    assert_close(nobox, t["out.aggregated_feat_nobox"], tol, "aggregated_feat_nobox")
    patches, boxes = net(features, t["in.box"], params)
    assert_close(patches, t["out.aggregated_feat"], tol, "aggregated_feat")
    assert_close(boxes, t["out.aggregated_box"], tol, "aggregated_box")
    ((patches * t["in.agg_weight"]).sum() + (boxes * t["in.aggbox_weight"]).sum()).backward()
    assert_close(features.grad, t["out.grad_feat_content"], tol, "grad_feat_content")
    assert_close(params.grad, t["out.grad_adain_params"], tol, "grad_adain_params")
    # the official API: parameters assigned to the modules beforehand
    assign_adain_params(t["in.adain_params"], net.transformer)
    with torch.no_grad():
        assigned, _ = net(t["in.feat_content"], t["in.box"])
    assign_adain_params(None, net.transformer)
    assert_close(assigned, t["out.aggregated_feat"], tol, "aggregated_feat (assigned parameters)")
    _check_grads(case, t, _named_grads(net, "Transformer"), "grad.call.")


def check_decoder(case: dict, t: dict[str, torch.Tensor]) -> None:
    """Global branch and box branch (every box token, padded ones included), with gradients."""
    tol, arch = _tol(case, "out"), _arch(case)
    net = Decoder(arch["embed_C"], arch["ngf"], arch["n_downsampling"], t["out.image"].shape[1])
    net.load_state_dict(strip(t, "state.Decoder."), strict=True)
    tokens = t["in.tokens"].clone().requires_grad_(True)
    box_tokens = t["in.box_tokens"].clone().requires_grad_(True)
    image, box_images = net(tokens), net(box_tokens, t["in.box"])
    assert_close(image, t["out.image"], tol, "image")
    assert_close(box_images, t["out.box_images"], tol, "box_images")
    ((image * t["in.image_weight"]).sum() + (box_images * t["in.box_image_weight"]).sum()).backward()
    assert_close(tokens.grad, t["out.grad_tokens"], tol, "grad_tokens")
    assert_close(box_tokens.grad, t["out.grad_box_tokens"], tol, "grad_box_tokens")
    _check_grads(case, t, _named_grads(net, "Decoder"), "grad.call.")


def _layers(t: dict[str, torch.Tensor], prefix: str) -> list[int]:
    return sorted(int(k[len(prefix):]) for k in t if k.startswith(prefix) and k[len(prefix):].isdigit())


def check_patchnce(case: dict, t: dict[str, torch.Tensor]) -> None:
    """``compute_NCE_loss`` with the MLP head (ids drawn for the keys, reused for the queries; num_patches beyond
    H*W takes every position) and PatchNCELoss, with gradients."""
    spec = case["spec"]
    layers = _layers(t, "in.feat_k")
    keys = [t[f"in.feat_k{i}"] for i in layers]
    queries = [t[f"in.feat_q{i}"].clone().requires_grad_(True) for i in layers]
    head = PatchSampleF([k.shape[1] for k in keys], nc=spec["nc"])
    head.load_state_dict(strip(t, "state.MLP_head."), strict=True)
    perms = [v for kind, phase, v in rng_draws(t, "call") if kind == "randperm" and phase == "NCE"]
    assert len(perms) == len(layers)
    ids = [perm[:spec["num_patches"]] for perm in perms]
    nce_t = spec.get("nce_T", _header(case)["official_defaults"].get("nce_T", 0.07))
    loss = compute_nce_loss(head, keys, queries, num_patches=spec["num_patches"], batch_size=spec["batch_size"],
                            nce_t=nce_t, patch_ids=ids)
    (spec["weight"] * loss).backward()
    assert_close(loss, t["loss.nce"], _tol(case, "loss"), "loss.nce")
    assert_close(spec["weight"] * loss, t["loss.nce_times_weight"], _tol(case, "loss"), "loss.nce_times_weight")
    tol = _tol(case, "out")
    with torch.no_grad():
        k_samples, used = head(keys, spec["num_patches"], ids)
        q_samples, _ = head([q.detach() for q in queries], spec["num_patches"], used)
    from zoo.nets.cut import patch_nce_loss

    for i, layer in enumerate(layers):
        assert_close(k_samples[i], t[f"out.sample_k{layer}"], tol, f"sample_k{layer}")
        assert_close(q_samples[i], t[f"out.sample_q{layer}"], tol, f"sample_q{layer}")
        per_patch = patch_nce_loss(q_samples[i], k_samples[i], batch_size=spec["batch_size"], nce_t=nce_t)
        assert_close(per_patch, t[f"out.patchnce_per_patch{layer}"], tol, f"patchnce_per_patch{layer}")
        assert_close(queries[i].grad, t[f"out.grad_feat_q{layer}"], tol, f"grad_feat_q{layer}")
    _check_grads(case, t, _named_grads(head, "MLP_head"), "grad.call.")


def check_instance_nce(case: dict, t: dict[str, torch.Tensor]) -> None:
    """The instance-NCE branch of ``compute_G_loss``: box features of ContentEncoder(fake), valid boxes only,
    PatchNCE over them (batch = their count) with 64 patches each."""
    spec, arch = case["spec"], _arch(case)
    encoder = ContentEncoder(t["in.fake_img"].shape[1], arch["ngf"], arch["n_downsampling"])
    encoder.load_state_dict(strip(t, "state.ContentEncoder."), strict=True)
    head = PatchSampleF([encoder.output_nc], nc=arch["nc_inst"])
    head.load_state_dict(strip(t, "state.MLP_head_inst."), strict=True)
    perms = [v for kind, phase, v in rng_draws(t, "call") if kind == "randperm" and phase == "instNCE"]
    assert len(perms) <= 1, "one instance-NCE draw per call"
    ids = perms[0][:INSTANCE_PATCHES] if perms else None  # none drawn when no box is valid
    nce_t = spec.get("nce_T", 0.07)
    boxes = t["in.A_box"]
    weight = spec["weights"]["w_Instance_NCE"]
    valid = valid_boxes(boxes).reshape(-1)
    count = int(valid.sum())
    # the official criterion keeps its initial batch size (batch * num_box) when no box is valid
    assert (count or boxes.shape[0] * boxes.shape[1]) == int(t["out.instnce_batch_size"])
    fake = t["in.fake_img"].clone().requires_grad_(True)
    content, _ = encoder(fake)
    queries = extract_box_features(content, boxes)
    loss = weight * instance_nce_loss(head, t["in.box_feature"], queries, boxes, nce_t=nce_t, patch_ids=ids)
    if count:
        loss.backward()
    else:  # the official tensor(0.): no graph, no gradient anywhere
        assert not loss.requires_grad and fake.grad is None
    assert_close(loss, t["loss.instNCE_loss"], _tol(case, "loss"), "loss.instNCE_loss")
    tol = _tol(case, "out")
    if "out.grad_fake_img" in t:
        grad = fake.grad if fake.grad is not None else torch.zeros_like(fake)
        assert_close(grad, t["out.grad_fake_img"], tol, "grad_fake_img")
    with torch.no_grad():
        (k,), used = head([t["in.box_feature"][valid]], INSTANCE_PATCHES, None if ids is None else [ids])
        (q,), _ = head([queries.detach()[valid]], INSTANCE_PATCHES, used)
    from zoo.nets.cut import patch_nce_loss

    for key, value in (("out.sample_k", k), ("out.sample_q", q)):
        if key in t:
            assert_close(value, t[key], tol, key)
    if count and "out.patchnce_per_patch" in t:
        assert_close(patch_nce_loss(q, k, batch_size=count, nce_t=nce_t), t["out.patchnce_per_patch"], tol,
                     "patchnce_per_patch")
    _check_grads(case, t, {**_named_grads(encoder, "ContentEncoder"), **_named_grads(head, "MLP_head_inst")},
                 "grad.call.")


def check_gan_recon(case: dict, t: dict[str, torch.Tensor]) -> None:
    """GANLoss (lsgan, vanilla, wgangp) values and gradients; weighted L1 reconstruction and style losses (the style
    code is not detached: both sides get gradients)."""
    spec, out_tol, loss_tol = case["spec"], _tol(case, "out"), _tol(case, "loss")
    for key in [k for k in t if re.fullmatch(r"loss\.\w+_(real|fake)", k)]:
        mode, target = re.fullmatch(r"loss\.(\w+)_(real|fake)", key).group(1, 2)
        pred = t["in.pred"].clone().requires_grad_(True)
        loss = gan_loss(pred, target == "real", mode)
        loss.backward()
        assert_close(loss, t[key], loss_tol, key)
        assert_close(pred.grad, t[f"out.grad_pred.{mode}_{target}"], out_tol, f"grad {key}")
    recon = t["in.recon"].clone().requires_grad_(True)
    recon_loss = spec["w_Recon"] * torch.nn.functional.l1_loss(recon, t["in.B"])
    recon_loss.backward()
    assert_close(recon_loss, t["loss.recon_loss"], loss_tol, "recon_loss")
    assert_close(recon.grad, t["out.grad_recon"], out_tol, "grad_recon")
    recon_style = t["in.recon_style_code"].clone().requires_grad_(True)
    style = t["in.style_code"].clone().requires_grad_(True)
    style_loss = spec["w_Style"] * torch.nn.functional.l1_loss(recon_style, style)
    style_loss.backward()
    assert_close(style_loss, t["loss.style_loss"], loss_tol, "style_loss")
    assert_close(recon_style.grad, t["out.grad_recon_style_code"], out_tol, "grad_recon_style_code")
    assert_close(style.grad, t["out.grad_style_code"], out_tol, "grad_style_code")


def check_discriminator(case: dict, t: dict[str, torch.Tensor]) -> None:
    """PatchGAN with BatchNorm in train mode: D(fake) without gradients, the D loss (D(fake), D(B): two calls),
    then D frozen and the G's GAN loss; running statistics after the four calls."""
    arch = _arch(case)
    header = _header(case)
    mode = case["spec"].get("gan_mode", "lsgan")
    net = build_cut_discriminator(input_nc=t["in.B"].shape[1], ndf=arch["ndf"], netD="n_layers",
                                  n_layers_D=arch["n_layers_D"], norm="batch", init_type=None)
    assert "BatchNorm2d" in header["official_defaults"]["constructors (initialize.baseline_model_load)"]
    net.load_state_dict(strip(t, "state.Discrim."), strict=True)
    net.train()
    tol, loss_tol = _tol(case, "out"), _tol(case, "loss")
    with torch.no_grad():
        assert_close(net(t["in.fake_img"]), t["out.pred_fake"], tol, "pred_fake")
    losses = discriminator_losses(net, t["in.fake_img"], t["in.B"], mode, joint=False)
    total = losses["d_fake"] + losses["d_real"]
    total.backward()
    assert_close(losses["d_fake"] / 0.5, t["loss.D_fake_loss"], loss_tol, "D_fake_loss")
    assert_close(losses["d_real"] / 0.5, t["loss.D_real_loss"], loss_tol, "D_real_loss")
    assert_close(total, t["loss.total_D_loss"], loss_tol, "total_D_loss")
    _check_grads(case, t, _named_grads(net, "Discrim"), "grad.call.")
    for p in net.parameters():
        p.requires_grad_(False)
    fake = t["in.fake_img"].clone().requires_grad_(True)
    gan = gan_loss(net(fake), True, mode)
    gan.backward()
    assert_close(gan, t["loss.GAN_loss_unweighted"], loss_tol, "GAN_loss_unweighted")
    assert_close(fake.grad, t["out.grad_fake_img"], tol, "grad_fake_img")
    state = net.state_dict()
    for key, expected in strip(t, "out.after.Discrim.").items():
        if expected.is_floating_point():
            assert_close(state[key], expected, tol, f"after.{key}")
        else:
            assert torch.equal(state[key], expected), f"after.{key}"


# ------------------------------------------------------------------------------------------------ training


def _model(case: dict, t: dict[str, torch.Tensor]) -> InstaFormer:
    """The InstaFormer of a train case: the official config defaults of the manifest, then the case's spec (and the
    style MLP's output width from its stored weights: wider than 2 * embed_C splits over the AdaIN layers)."""
    spec, arch = case["spec"], _arch(case)
    config = dict(_header(case)["official_defaults"]["config/base_train.yaml (Train)"])
    config.update({k: spec[k] for k in ("lr", "num_box", "feat_layers", "num_patches") if k in spec})
    config.update(spec.get("weights", {}))
    args = InstaFormer.init_args_from_official(config)
    args.update({ours: arch[theirs] for theirs, ours in _ARCH.items() if theirs in arch})
    if "gan_mode" in spec:
        args["gan_mode"] = spec["gan_mode"]
    if "nce_T" in spec:
        args["nce_t"] = spec["nce_T"]
    args["stem_channels"] = t["init.Transformer.patch_embed.proj.0.weight"].shape[0]  # the fixture's stem width
    adain_params = t["init.MLP_Adain.model.2.fc.weight"].shape[0]
    if adain_params != 2 * args["embed_c"]:
        args["adain_params"] = adain_params
    torch.manual_seed(0)  # construction draws are overwritten by the fixture's init weights
    return InstaFormer(**args, channels_last=False)


def check_train(case: dict, t: dict[str, torch.Tensor]) -> None:
    """Replay the official iterations from ``init.*`` with the recorded draws: losses, outputs, gradients right
    before each optimizer step, and every network's full state dict after each step (the manifest's rule).

    Step K > 1 starts from the oracle's stored weights of step K - 1 (buffers included; the optimizers keep their own
    state, so Adam's moments and step counts still carry over), as the manifest's float64 replay that set the
    tolerances does: Adam moves the "unstable" elements (gradient within its tolerance, or rounding noise) by about
    lr * sign(g) in the first steps, in a direction rounding decides, and such moves shift the next step's
    gradients by more than their tolerances although every weight is within the manifest's allowance.
    """
    spec, tol = case["spec"], case["tolerance"]
    model = _model(case, t)
    model.train()
    nets = case["nets"]
    model.load_official_weights({net: strip(t, f"init.{net}.") for net in nets})
    modules = {net: model.get_submodule(path) for net, path in model.OFFICIAL_NETWORKS.items()}
    grads: dict[str, torch.Tensor] = {}
    optimizers, schedulers = model.configure_optimizers()
    assert not schedulers, "the official code has no learning-rate schedule"
    header = _header(case)["official_defaults"]["config/base_train.yaml (Train)"]
    betas = {"G": (header["beta1"], header["beta2"]), "D": (header["beta1"], header["beta2"]), "F": (0.9, 0.999)}
    recording = []
    for name, optimizer in zip(("G", "D", "F"), optimizers, strict=True):
        assert tuple(optimizer.param_groups[0]["betas"]) == betas[name], f"betas of {name}"
        params = {id(p) for group in optimizer.param_groups for p in group["params"]}
        named = [(f"{net}.{k}", p) for net, m in modules.items() if _OPTIMIZER_OF[net] == name
                 for k, p in m.named_parameters() if id(p) in params]
        recording.append(RecordingOptimizer(optimizer, named, grads))
    per_tensor = _tol(case, "grad")["per_tensor_atol"]
    noise_only = set(tol.get("noise_only", []))
    weight_atol = _tol(case, "weights")["atol"]
    steps = sorted(int(m.group(1)) for k in t if (m := re.fullmatch(r"in\.step(\d+)\.A", k)))
    assert steps == list(range(1, len(spec["batches"]) + 1)), "train case without its inputs"
    allowance: dict[str, torch.Tensor] = {}
    instance_batch = spec["batch"] * spec["num_box"]
    for step in steps:
        draws: dict[str, Any] = {"nce": []}
        for kind, phase, value in rng_draws(t, f"step{step}"):
            if kind == "randn" and phase == "I2I":
                draws["style"] = value
            elif kind == "randperm" and phase == "NCE":
                draws["nce"].append(value[:spec["num_patches"]])
            elif kind == "randperm" and phase == "instNCE":
                draws["inst_nce"] = value[:INSTANCE_PATCHES]
            else:
                raise AssertionError(f"unknown draw {kind}.{phase} in step {step}")
        if step > 1:
            _load_stored_state(modules, t, f"step{step - 1}.", nets)
        grads.clear()
        box_a, box_b = t[f"in.step{step}.A_box"], t[f"in.step{step}.B_box"]
        out = model.optimization_step(t[f"in.step{step}.A"], t[f"in.step{step}.B"], box_a, box_b, *recording,
                                      draws=draws)
        for name, optimizer in zip(("G", "D", "F"), optimizers, strict=True):
            assert abs(optimizer.param_groups[0]["lr"] - t[f"out.step{step}.lr_{name}"].item()) <= 1e-12
        official = model.official_losses(out.losses)
        for key, expected in strip(t, f"loss.step{step}.").items():
            assert key in official, f"step {step}: zoo computed no loss {key!r}"
            assert_close(official[key], expected, _tol(case, "loss"), f"step {step} loss {key}")
        images = {"fake_img": "fake_b", "recon_img": "recon_b", "fake_box": "fake_box", "style_code": "style_b",
                  "box_feature": "box_feature_a"}
        for theirs, ours in images.items():
            assert_close(out.images[ours], t[f"out.step{step}.{theirs}"], _tol(case, "out"), f"step {step} {theirs}")
        # the official criterion keeps its last batch size (initially batch * num_box) when no box is valid
        instance_batch = int(valid_boxes(box_a).sum()) or instance_batch
        assert instance_batch == int(t[f"out.step{step}.instnce_batch_size"]), "number of valid boxes"
        # gradients right before each optimizer step
        stored = {k: v for k, v in t.items() if k.startswith(f"grad.step{step}_")}
        ours_keys = set(grads)
        theirs_keys = {k.split(".", 2)[2] for k in stored}
        assert ours_keys == theirs_keys, (f"step {step}: gradients only in zoo {sorted(ours_keys - theirs_keys)}, "
                                          f"only in the oracle {sorted(theirs_keys - ours_keys)}")
        for key, expected in stored.items():
            ours_key = key.split(".", 2)[2]
            lr = t[f"out.step{step}.lr_{_OPTIMIZER_OF[ours_key.split('.')[0]]}"].item()
            if key in noise_only:
                net = ours_key.split(".")[0]
                scale = max(v.abs().max().item() for k, v in stored.items() if k.split(".")[2] == net)
                assert_rounding_noise(grads[ours_key], expected, key, scale=scale)
                allowance[ours_key] = allowance.get(ours_key, torch.zeros(())) + 3 * lr
                continue
            assert_close(grads[ours_key], expected, {"atol": per_tensor[key], "rtol": 0.0}, key)
            unstable = expected.abs() <= per_tensor[key]
            allowance[ours_key] = allowance.get(ours_key, torch.zeros_like(expected)) + unstable * 3 * lr
        # every network's full state dict after the step
        for net in nets:
            expected_state = strip(t, f"step{step}.{net}.")
            ours_state = model.official_state_dict(net)
            assert set(ours_state) == set(expected_state), f"step {step} {net}: key sets differ"
            for key, expected in expected_state.items():
                actual = ours_state[key].detach()
                name = f"{net}.{key}"
                if not expected.is_floating_point():
                    assert torch.equal(actual, expected), f"step {step} {name}"
                    continue
                limit = weight_atol + allowance.get(name, torch.zeros(()))
                diff = (actual - expected).abs()
                bad = diff > limit
                assert not bad.any(), (f"step {step} {name}: {int(bad.sum())} of {bad.numel()} elements differ, "
                                       f"max {diff.max().item():.3g}")


def _load_stored_state(modules: dict[str, torch.nn.Module], t: dict[str, torch.Tensor], prefix: str,
                       nets: list[str]) -> None:
    """Copy the stored state dicts ``<prefix><net>.*`` into the networks in place (parameters stay the optimizers')."""
    with torch.no_grad():
        for net in nets:
            state = modules[net].state_dict()
            stored = strip(t, f"{prefix}{net}.")
            assert set(stored) == set(state), f"{prefix}{net}: key sets differ"
            for key, value in stored.items():
                state[key].copy_(value)


_CHECKS = {
    "content_encoder": check_content_encoder,
    "style_adain": check_style_adain,
    "transformer": check_transformer,
    "decoder": check_decoder,
    "patchnce": check_patchnce,
    "instance_nce": check_instance_nce,
    "gan_recon": check_gan_recon,
    "discriminator": check_discriminator,
    "train": check_train,
}


@pytest.mark.parametrize("case", cases("instaformer"))
def test_instaformer_case(case: dict) -> None:
    run_case(case, _CHECKS, "InstaFormer")
