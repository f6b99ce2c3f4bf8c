"""CUT / FastCUT-specific behaviour: mode presets, the PatchNCE objective and its variants (identity term, flips,
negatives from the batch, projection-free sampler), GAN modes, and official options and checkpoints."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import Tensor

from tests.methods.tiny_configs import build_tiny_datamodule
from tests.parity.manifest import reference_dir, strip
from zoo.methods.cut import CUT
from zoo.trainer import ZooTrainer

TINY: dict[str, Any] = dict(ngf=4, ndf=4, netG="resnet_6blocks", num_patches=16, netf_nc=16, channels_last=False)
SIZE = 32


def _model(**overrides: Any) -> CUT:
    torch.manual_seed(0)
    model = CUT(**{**TINY, **overrides})
    model.train()
    return model


def _inputs(batch: int = 1, seed: int = 1) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(batch, 3, SIZE, SIZE, generator=g) * 2 - 1,
            torch.rand(batch, 3, SIZE, SIZE, generator=g) * 2 - 1)


def _patch_ids(model: CUT, seed: int = 2) -> list[Tensor]:
    """Fixed positions per NCE layer for 32x32 inputs (so that a manual computation can use the same ones)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        feats = model.generator(torch.zeros(1, 3, SIZE, SIZE), model.nce_layers, encode_only=True)
    return [torch.randperm(f.shape[2] * f.shape[3], generator=g)[:model.hparams.num_patches] for f in feats]


def _manual_patch_nce(queries: Tensor, keys: Tensor, group_size: int, nce_t: float) -> Tensor:
    """PatchNCE per query written out: within each group of ``group_size`` rows, the positive is the key at the same
    row, the negatives are all keys of the group with the positive's own entry replaced by -10."""
    losses = []
    for start in range(0, queries.shape[0], group_size):
        q, k = queries[start:start + group_size], keys[start:start + group_size].detach()
        similarities = q @ k.T
        positives = similarities.diagonal().unsqueeze(1)
        negatives = similarities.clone()
        negatives.fill_diagonal_(-10.0)
        logits = torch.cat([positives, negatives], dim=1) / nce_t
        losses.append(F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long), reduction="none"))
    return torch.cat(losses)


def _manual_nce(model: CUT, keys: list[Tensor], queries: list[Tensor], ids: list[Tensor], group_size: int) -> Tensor:
    """The official ``calculate_NCE_loss``: mean over layers of ``lambda_nce * mean PatchNCE``."""
    h = model.hparams
    key_samples, _ = model.patch_sampler(keys, h.num_patches, ids)
    query_samples, _ = model.patch_sampler(queries, h.num_patches, ids)
    per_layer = [h.lambda_nce * _manual_patch_nce(q, k, group_size, h.nce_t).mean()
                 for q, k in zip(query_samples, key_samples, strict=True)]
    return sum(per_layer) / len(per_layer)


def _frozen_step(model: CUT, real_a: Tensor, real_b: Tensor, draws: dict[str, Any]) -> tuple[Any, CUT]:
    """One step at learning rate 0 (weights stay) and a copy of the model from before it."""
    reference = copy.deepcopy(model)
    out = model.optimization_step(real_a, real_b, *model.configure_optimizers()[0], draws=draws)
    return out, reference


# ------------------------------------------------------------------------------------------------ mode presets


def test_mode_presets_fill_the_options_left_unset():
    cut, fastcut = _model(mode="cut").hparams, _model(mode="fastcut").hparams
    preset = ("lambda_nce", "nce_idt", "flip_equivariance", "n_epochs", "n_epochs_decay")
    assert [cut[k] for k in preset] == [1.0, True, False, 200, 200]
    assert [fastcut[k] for k in preset] == [10.0, False, True, 150, 50]


def test_explicit_options_override_the_mode_preset():
    h = _model(mode="fastcut", nce_idt=True, lambda_nce=2.0, n_epochs=3).hparams
    assert (h.nce_idt, h.lambda_nce, h.n_epochs) == (True, 2.0, 3)
    assert (h.flip_equivariance, h.n_epochs_decay) == (True, 50)  # the rest still from the preset
    with pytest.raises(ValueError, match="mode must be one of"):
        _model(mode="fast")


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)`")
def test_fastcut_schedule_decays_after_150_epochs_over_50():
    model = _model(mode="fastcut")
    optimizers, schedulers = model.configure_optimizers()
    for _ in range(149):
        for s in schedulers:
            s["scheduler"].step()
    assert [o.param_groups[0]["lr"] for o in optimizers] == pytest.approx([2e-4] * len(optimizers))
    for s in schedulers:
        s["scheduler"].step()
    assert [o.param_groups[0]["lr"] for o in optimizers] == pytest.approx([2e-4 * (1 - 1 / 51)] * len(optimizers))


# ------------------------------------------------------------------------------------------------ objective


def test_one_cut_step_reproduces_every_loss_term():
    """lr = 0: the weights stay, so every term can be recomputed from a copy of the initial networks."""
    model = _model(mode="cut", lr=0.0)
    real_a, real_b = _inputs()
    ids = _patch_ids(model)
    out, ref = _frozen_step(model, real_a, real_b, {"nce": ids, "nce_idt": ids})
    layers = ref.nce_layers
    with torch.no_grad():
        fake_b, idt_b = ref.generator(real_a), ref.generator(real_b)
        torch.testing.assert_close(out.images["fake_b"], fake_b)
        torch.testing.assert_close(out.images["idt_b"], idt_b)
        torch.testing.assert_close(out.losses["d_fake"], 0.5 * (ref.discriminator(fake_b) ** 2).mean())
        torch.testing.assert_close(out.losses["d_real"], 0.5 * ((ref.discriminator(real_b) - 1) ** 2).mean())
        torch.testing.assert_close(out.losses["g_gan"], ((ref.discriminator(fake_b) - 1) ** 2).mean())
        nce = _manual_nce(ref, ref.generator(real_a, layers, encode_only=True),
                          ref.generator(fake_b, layers, encode_only=True), ids, ref.hparams.num_patches)
        nce_idt = _manual_nce(ref, ref.generator(real_b, layers, encode_only=True),
                              ref.generator(idt_b, layers, encode_only=True), ids, ref.hparams.num_patches)
    torch.testing.assert_close(out.losses["nce"], nce)
    torch.testing.assert_close(out.losses["nce_idt"], nce_idt)
    torch.testing.assert_close(out.losses["g_nce"], 0.5 * nce)
    torch.testing.assert_close(out.losses["g_nce_idt"], 0.5 * nce_idt)
    torch.testing.assert_close(out.losses["g_total"], out.losses["g_gan"] + 0.5 * (nce + nce_idt))


def test_without_identity_patchnce_the_nce_term_is_not_halved_and_there_is_no_identity_pass():
    model = _model(mode="cut", nce_idt=False, lr=0.0)
    real_a, real_b = _inputs()
    ids = _patch_ids(model)
    out, ref = _frozen_step(model, real_a, real_b, {"nce": ids})
    assert "idt_b" not in out.images and "nce_idt" not in out.losses and "g_nce_idt" not in out.losses
    with torch.no_grad():
        layers = ref.nce_layers
        nce = _manual_nce(ref, ref.generator(real_a, layers, encode_only=True),
                          ref.generator(ref.generator(real_a), layers, encode_only=True), ids, ref.hparams.num_patches)
    torch.testing.assert_close(out.losses["g_nce"], nce)
    torch.testing.assert_close(out.losses["g_total"], out.losses["g_gan"] + nce)


def test_forced_flip_feeds_the_flipped_input_and_flips_the_queries_back():
    """FastCUT under a flip: fake = G(flip(A)), keys from the unflipped A, queries flipped back, D sees the flipped
    fake. The same numbers without flipping the queries back differ (so the check can fail)."""
    model = _model(mode="fastcut", lr=0.0)
    real_a, real_b = _inputs()
    ids = _patch_ids(model)
    out, ref = _frozen_step(model, real_a, real_b, {"flip": True, "nce": ids})
    layers, patches = ref.nce_layers, ref.hparams.num_patches
    with torch.no_grad():
        fake_b = ref.generator(real_a.flip(3))
        keys = ref.generator(real_a, layers, encode_only=True)
        queries = ref.generator(fake_b, layers, encode_only=True)
        nce = _manual_nce(ref, keys, [q.flip(3) for q in queries], ids, patches)
        not_flipped_back = _manual_nce(ref, keys, queries, ids, patches)
        d_fake = 0.5 * (ref.discriminator(fake_b) ** 2).mean()
    torch.testing.assert_close(out.images["fake_b"], fake_b)
    assert all(torch.isfinite(v).all() for v in out.losses.values())
    torch.testing.assert_close(out.losses["g_nce"], nce)
    torch.testing.assert_close(out.losses["d_fake"], d_fake)
    assert not torch.allclose(nce, not_flipped_back)


def test_flip_draw_is_ignored_without_flip_equivariance():
    model = _model(mode="cut", lr=0.0)
    real_a, real_b = _inputs()
    out, ref = _frozen_step(model, real_a, real_b, {"flip": True})
    with torch.no_grad():
        torch.testing.assert_close(out.images["fake_b"], ref.generator(real_a))


def test_negatives_from_the_whole_minibatch_use_every_image_of_a_batch_of_two():
    model = _model(mode="cut", nce_idt=False, nce_includes_all_negatives_from_minibatch=True, lr=0.0)
    real_a, real_b = _inputs(batch=2)
    ids = _patch_ids(model)
    out, ref = _frozen_step(model, real_a, real_b, {"nce": ids})
    layers, patches = ref.nce_layers, ref.hparams.num_patches
    with torch.no_grad():
        keys = ref.generator(real_a, layers, encode_only=True)
        queries = ref.generator(ref.generator(real_a), layers, encode_only=True)
        whole_batch = _manual_nce(ref, keys, queries, ids, 2 * patches)
        per_image = _manual_nce(ref, keys, queries, ids, patches)
    torch.testing.assert_close(out.losses["nce"], whole_batch)
    assert not torch.allclose(whole_batch, per_image)


@pytest.mark.parametrize("gan_mode", ["lsgan", "vanilla", "wgangp", "nonsaturating"])
def test_gan_modes_give_their_discriminator_and_generator_terms(gan_mode):
    model = _model(gan_mode=gan_mode, lr=0.0)
    real_a, real_b = _inputs(batch=2)
    out, ref = _frozen_step(model, real_a, real_b, {})
    with torch.no_grad():
        on_fake, on_real = ref.discriminator(ref.generator(real_a)), ref.discriminator(real_b)
    expected = {  # (d_fake, d_real, g_gan)
        "lsgan": (0.5 * (on_fake ** 2).mean(), 0.5 * ((on_real - 1) ** 2).mean(), ((on_fake - 1) ** 2).mean()),
        "vanilla": (0.5 * F.softplus(on_fake).mean(), 0.5 * F.softplus(-on_real).mean(), F.softplus(-on_fake).mean()),
        "wgangp": (0.5 * on_fake.mean(), -0.5 * on_real.mean(), -on_fake.mean()),
        "nonsaturating": (0.5 * F.softplus(on_fake).mean(), 0.5 * F.softplus(-on_real).mean(),
                          F.softplus(-on_fake).mean()),
    }[gan_mode]
    for name, value in zip(("d_fake", "d_real", "g_gan"), expected, strict=True):
        torch.testing.assert_close(out.losses[name], value, msg=lambda m, name=name: f"{gan_mode} {name}: {m}")


def test_unknown_gan_mode_is_refused_when_the_model_is_built():
    with pytest.raises(ValueError, match="CUT: gan_mode must be one of 'lsgan', 'vanilla', 'wgangp', 'nonsaturating'"):
        _model(gan_mode="hinge")


def test_sample_patch_sampler_has_no_optimizer_and_trains_under_the_trainer(tmp_path):
    model = _model(netF="sample")
    assert not list(model.patch_sampler.parameters())
    assert len(model.configure_optimizers()[0]) == 2
    before = copy.deepcopy(model.generator.state_dict())
    trainer = ZooTrainer(accelerator="cpu", default_root_dir=tmp_path, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, enable_image_grid=False, enable_checkpointing=False, max_steps=2)
    trainer.fit(model, datamodule=build_tiny_datamodule("cut"))
    assert len(trainer.optimizers) == 2
    metrics = trainer.callback_metrics
    assert torch.isfinite(metrics["train/g_total"]) and torch.isfinite(metrics["train/nce"])
    assert any(not torch.equal(v, before[k]) for k, v in model.generator.state_dict().items())


def test_one_step_updates_generator_discriminator_and_patch_sampler():
    model = _model()
    nets = {"G": model.generator, "D": model.discriminator, "F": model.patch_sampler}
    before = {name: copy.deepcopy(net.state_dict()) for name, net in nets.items()}
    out = model.optimization_step(*_inputs(), *model.configure_optimizers()[0])
    assert all(torch.isfinite(v).all() for v in out.losses.values())
    for name, net in nets.items():
        assert any(not torch.equal(v, before[name][k]) for k, v in net.state_dict().items()), name


# ------------------------------------------------------------------------------------------------ official files


def _manifest(method: str) -> dict:
    path = reference_dir() / method / "MANIFEST.json"
    if not path.is_file():
        pytest.skip(f"no oracle fixtures: {path} does not exist")
    return json.loads(path.read_text())


def test_official_state_dicts_round_trip_for_generator_discriminator_and_sampler():
    source = _model()
    torch.manual_seed(5)  # different initial weights
    target = CUT(**TINY)
    for net in ("G", "D", "F"):
        official = source.official_state_dict(net)
        target.load_official_weights({f"module.{k}": v for k, v in official.items()} if net == "G" else official,
                                     net=net)
    for net in ("G", "D", "F"):
        for key, value in source.official_state_dict(net).items():
            assert torch.equal(target.official_state_dict(net)[key], value), (net, key)
    assert "mlp_0.0.weight" in source.official_state_dict("F")  # the official netF layout
    x = torch.rand(1, 3, SIZE, SIZE)
    assert torch.equal(target.translate(x), source.translate(x))
    incomplete = {k: v for k, v in source.official_state_dict("F").items() if not k.startswith("mlp_4.")}
    with pytest.raises(RuntimeError):
        target.load_official_weights(incomplete, net="F")


def test_official_training_weights_load_strictly_and_export_unchanged():
    """The G, D and F state dicts the official code holds (fixture ``train_cut_step``) load into the matching zoo
    model and come back out bit for bit."""
    manifest = _manifest("cut")
    case = next(c for c in manifest["cases"] if c["name"] == "train_cut_step")
    tensors = load_file(str(reference_dir() / "cut" / case["file"]))
    model = CUT(mode="cut", ngf=4, ndf=8, netf_nc=16, num_patches=16)
    for net in ("G", "D", "F"):
        official = strip(tensors, f"init.{net}.")
        model.load_official_weights(official, net=net)
        exported = model.official_state_dict(net)
        assert exported.keys() == official.keys(), net
        assert all(torch.equal(exported[k], v) for k, v in official.items()), net


@pytest.mark.parametrize("official_mode", ["CUT_mode=CUT", "CUT_mode=FastCUT"])
def test_init_args_from_the_official_defaults(official_mode):
    options = _manifest("cut")["official_defaults"][official_mode]
    args = CUT.init_args_from_official(options)
    fast = official_mode.endswith("FastCUT")
    assert args["mode"] == ("fastcut" if fast else "cut")
    assert args["nce_layers"] == [0, 4, 8, 12, 16] and args["use_dropout"] is False
    model = CUT(**args)
    h = model.hparams
    assert (h.lambda_nce, h.nce_idt, h.flip_equivariance, h.n_epochs, h.n_epochs_decay) == (
        (10.0, False, True, 150, 50) if fast else (1.0, True, False, 200, 200))
    assert (h.ngf, h.ndf, h.netG, h.netD, h.n_layers_d, h.norm_g, h.norm_d, h.gan_mode) == (
        64, 64, "resnet_9blocks", "basic", 3, "instance", "instance", "lsgan")
    assert (h.netF, h.netf_nc, h.num_patches, h.nce_t, h.lr, h.beta1, h.beta2) == (
        "mlp_sample", 256, 256, 0.07, 0.0002, 0.5, 0.999)
    assert (h.init_type, h.init_gain, h.no_antialias, h.no_antialias_up, h.lr_policy, h.epoch_count) == (
        "xavier", 0.02, False, False, "linear", 1)
    assert not h.nce_includes_all_negatives_from_minibatch and model.nce_layers == [0, 4, 8, 12, 16]


def test_patch_sampler_gives_finite_gradients_for_an_all_zero_sample():
    """A ReLU MLP can output an exact zero row; its L2 normalisation must not turn the whole step's gradient NaN."""
    from zoo.nets.cut import PatchSampleF

    sampler = PatchSampleF([3], use_mlp=False)
    feature = torch.randn(1, 3, 4, 4)
    feature[0, :, 0, 0] = 0.0
    feature.requires_grad_(True)
    (samples,), _ = sampler([feature], 16, [torch.arange(16)])
    samples.sum().backward()
    assert torch.isfinite(feature.grad).all()
