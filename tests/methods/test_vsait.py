"""VSAIT-specific behaviour: objective, update order, schedule, projections, frozen features, official import, hub."""

from __future__ import annotations

import pytest
import torch

import zoo
from tests.methods.tiny_configs import build_tiny_datamodule, build_tiny_model
from zoo.hub import WeightsUnavailableError, save_bundle
from zoo.losses.vsa import HypervectorEncoder, gan_list_loss
from zoo.methods.vsait import OFFICIAL_DEFAULT_CONFIG, VSAIT
from zoo.trainer import ZooTrainer


def _tiny(**overrides) -> tuple[VSAIT, int]:
    torch.manual_seed(0)
    return build_tiny_model("vsait", **overrides)


def _batch(model: VSAIT, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    return model.example_inputs(2, size, generator=torch.Generator().manual_seed(seed))


def test_mapping_starts_at_tanh_one_and_belongs_to_the_generator_optimizer():
    model, size = _tiny()
    hv = torch.rand(2, model.hparams.hv_dim, 3, 5) * 2 - 1
    torch.testing.assert_close(model.mapping(hv), torch.full_like(hv, torch.tanh(torch.tensor(1.0)).item()))
    (opt_g, opt_d), schedulers = model.configure_optimizers()
    ids = lambda *nets: {id(p) for net in nets for p in net.parameters()}  # noqa: E731
    assert {id(p) for g in opt_g.param_groups for p in g["params"]} == ids(model.generator, model.mapping)
    assert {id(p) for g in opt_d.param_groups for p in g["params"]} == ids(model.discriminator)
    for opt, lr in ((opt_g, 1e-4), (opt_d, 4e-4)):
        group = opt.param_groups[0]
        assert (group["lr"], group["betas"], group["weight_decay"], group["eps"]) == (lr, (0.0, 0.9), 1e-4, 1e-8)
        assert isinstance(opt, torch.optim.Adam)  # L2 decay inside the gradient, not AdamW
    for s in schedulers:
        assert (s["scheduler"].step_size, s["scheduler"].gamma) == (100000, 0.5)
    assert not any(p.requires_grad for p in model.feature_extractor.parameters())


def test_vsa_loss_does_not_train_the_mapping_network():
    model, size = _tiny(losses=["vsa", "discr"])
    real_a, _ = _batch(model, size)
    hv = [model.encode(real_a, "source")]
    out = model.generator_losses(real_a, hv)
    out.losses["vsa"].backward()
    assert all(p.grad is None or not p.grad.any() for p in model.mapping.parameters())
    assert any(p.grad is not None and p.grad.any() for p in model.generator.parameters())


@pytest.mark.parametrize("mode", ["hinge", "lsgan", "bce"])
def test_gan_losses_average_two_generator_and_three_discriminator_terms(mode):
    g = torch.Generator().manual_seed(0)
    a, b, c = (torch.randn(2, 1, 3, 4, generator=g) for _ in range(3))
    adv = gan_list_loss([a, b], [1.0, 1.0], mode)
    discr = gan_list_loss([a, b, c], [0.0, 0.0, 1.0], mode)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    if mode == "hinge":
        torch.testing.assert_close(adv, (-a.mean() - b.mean()) / 2)
        terms = [torch.relu(1 + a).mean(), torch.relu(1 + b).mean(), torch.relu(1 - c).mean()]
    elif mode == "lsgan":
        torch.testing.assert_close(adv, (((a - 1) ** 2).mean() + ((b - 1) ** 2).mean()) / 2)
        terms = [(a ** 2).mean(), (b ** 2).mean(), ((c - 1) ** 2).mean()]
    else:
        torch.testing.assert_close(adv, (bce(a, torch.ones_like(a)) + bce(b, torch.ones_like(b))) / 2)
        terms = [bce(a, torch.zeros_like(a)), bce(b, torch.zeros_like(b)), bce(c, torch.ones_like(c))]
    torch.testing.assert_close(discr, sum(terms) / 3)  # the real term weighs 1/3
    weighted = gan_list_loss([a, b, c], [0.0, 0.0, 1.0], mode, weight=[1.0, 0.5])  # cycled: 1, 0.5, 1
    torch.testing.assert_close(weighted, (terms[0] + 0.5 * terms[1] + terms[2]) / 3)


def test_discriminator_step_uses_the_updated_generator_and_losses_are_weighted():
    model, size = _tiny()
    real_a, real_b = _batch(model, size)
    optimizers, _ = model.configure_optimizers()
    out = model.optimization_step(real_a, real_b, *optimizers)
    with torch.no_grad():
        regenerated = model.generator(real_a)
    torch.testing.assert_close(out.images["fake_b_d_step"], regenerated, rtol=0, atol=0)
    assert not torch.equal(out.images["fake_b"], out.images["fake_b_d_step"])
    torch.testing.assert_close(out.losses["g_total"], out.losses["vsa"] + out.losses["adv"])
    assert model.loss_weights == {"vsa": 10.0, "adv": 1.0, "discr": 1.0}


def test_step_lr_is_stepped_once_per_batch(tmp_path):
    model, _ = _tiny(lr_step_size=1, lr_gamma=0.5)
    trainer = ZooTrainer(accelerator="cpu", default_root_dir=tmp_path, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, enable_image_grid=False, limit_val_batches=0, max_steps=2)
    trainer.fit(model, datamodule=build_tiny_datamodule("vsait"))
    opt_g, opt_d = model.optimizers()
    assert opt_g.param_groups[0]["lr"] == pytest.approx(1e-4 * 0.25)
    assert opt_d.param_groups[0]["lr"] == pytest.approx(4e-4 * 0.25)


def test_projections_are_regenerated_from_the_seed_not_saved():
    model, size = _tiny()
    assert not any(tap.ready for tap in model.encoder)  # nothing allocated until needed
    assert not any(k.startswith(("encoder.", "feature_extractor.")) for k in model.state_dict())
    model.translate(torch.rand(1, 3, size, size))
    assert not any(tap.ready for tap in model.encoder)  # inference runs the generator only
    same = HypervectorEncoder([64, 128], 32, [4, 2], stride=[4, 2], seed=0)
    other = HypervectorEncoder([64, 128], 32, [4, 2], stride=[4, 2], seed=1)
    for enc in (model.encoder, same, other):
        enc.materialize()
    assert all(torch.equal(a.weight, b.weight) for a, b in zip(model.encoder, same, strict=False))
    assert not torch.equal(model.encoder[0].weight, other[0].weight)
    torch.testing.assert_close(same[1].ssq_weight.flatten(), same[1].weight.pow(2).sum(dim=[1, 2, 3]))
    assert all(f"encoder.{n}" in model._ddp_params_and_buffers_to_ignore for n, _ in model.encoder.named_buffers())


def test_patchwise_projection_equals_the_official_strided_convolution():
    g = torch.Generator().manual_seed(0)
    taps = [torch.rand(2, 5, 18, 17, generator=g), torch.rand(2, 7, 9, 8, generator=g)]  # remainders dropped
    fast = HypervectorEncoder([5, 7], 16, [4, 2], stride=[4, 2], seed=3)
    conv = HypervectorEncoder([5, 7], 16, [4, 2], stride=[4, 2], seed=3)
    for tap in conv:
        tap._patchwise = False
    assert all(tap._patchwise for tap in fast)
    torch.testing.assert_close(fast(taps), conv(taps), rtol=1e-5, atol=1e-6)
    overlapping = HypervectorEncoder([5], 16, 3, stride=1, padding=1, seed=3)
    assert overlapping(taps[:1]).shape == (2, 16, 18, 17) and not overlapping[0]._patchwise


def test_vgg_taps_follow_the_official_in_place_relu():
    model, size = _tiny()
    taps = model.feature_extractor(torch.rand(2, 3, size, size) * 2 - 1)
    assert (taps[0] >= 0).all()  # features.2 comes out after the in-place ReLU features.3
    assert (taps[-1] < 0).any()  # the deepest tap keeps its pre-activation value


def test_official_checkpoint_import_uses_its_projections_and_keeps_them(tmp_path):
    model, size = _tiny()
    source = build_tiny_model("vsait", projection_seed=7)[0]
    official = source.official_state_dict()
    assert "model.lsh_feat.0.weight" in official and "model.feature_extractor.net.features.0.weight" in official
    assert "model.g_net_map.0.1.conv.bias" in official and "model.d_net.net.0.net.2.weight" in official
    model.load_official_weights({"state_dict": official, "epoch": 3})
    assert model.encoder.imported and model.feature_extractor.imported
    for key, value in model.convert_official_state_dict(official).items():
        torch.testing.assert_close(model.state_dict()[key], value, rtol=0, atol=0)
    x = torch.rand(1, 3, size, size) * 2 - 1
    torch.testing.assert_close(model.encode(x), source.encode(x), rtol=0, atol=0)
    reloaded = zoo.load(str(save_bundle(model, tmp_path / "bundle")))
    torch.testing.assert_close(reloaded.encode(x), source.encode(x), rtol=0, atol=0)
    generator_only = model.convert_official_state_dict(source.generator.state_dict(), net="g_net")
    assert all(k.startswith("generator.") for k in generator_only)
    # an official Lightning .ckpt with the official config of the tiny architecture
    torch.save({"state_dict": official, "pytorch-lightning_version": "1.6.5", "epoch": 0}, tmp_path / "last.ckpt")
    cfg = {"TASK_MODEL": {"RES_CHANNELS": 4, "RES_BLOCKS": 2, "LSH": {"kernel_size": [4, 2], "stride": [4, 2],
                                                                      "out_channels": 32},
                          "FEATURE_EXTRACTOR": {"RETURN_NODES": ["features.2", "features.7"], "WEIGHTS": None},
                          "DISCRIMINATOR_KWARGS": {"n_channels": [16, 16, 1]}}}
    imported = VSAIT.from_official_checkpoint(tmp_path / "last.ckpt", cfg)
    torch.testing.assert_close(imported(x), source(x), rtol=0, atol=0)


def test_init_args_from_official_default_config_are_the_paper_defaults():
    args = VSAIT.init_args_from_official(OFFICIAL_DEFAULT_CONFIG)
    defaults = {k: p.default for k, p in __import__("inspect").signature(VSAIT.__init__).parameters.items()
                if k in args}
    normalise = lambda v: list(v) if isinstance(v, (list, tuple)) else v  # noqa: E731
    assert {k: normalise(v) for k, v in args.items()} == {k: normalise(v) for k, v in defaults.items()}
    overridden = VSAIT.init_args_from_official({"TASK_MODEL": {"GAN_LOSS_FN": "loss_ls_gan", "ADV_LOSS_COEF": [1, .5],
                                                               "FEATURE_EXTRACTOR": {"WEIGHTS": None}}})
    assert overridden["gan_loss"] == "lsgan" and overridden["adv_output_weights"] == [1, .5]
    assert overridden["lambda_adv"] == 1.0
    assert overridden["feature_weights"] is None and overridden["hv_dim"] == 4096


def test_list_valued_adversarial_coefficient_weights_each_output_inside_the_average():
    """Official VSALoss with ``ADV_LOSS_COEF: [w0, w1]``: ``(w0 l0 + w1 l1) / 2``, outer weight 1; a scalar
    coefficient multiplies the plain average."""
    model, size = _tiny(**{k: v for k, v in VSAIT.init_args_from_official(
        {"TASK_MODEL": {"ADV_LOSS_COEF": [2.0, 0.5], "DISCR_LOSS_COEF": 3.0}}).items()
        if k in ("adv_output_weights", "lambda_adv", "lambda_discr")})
    assert model.loss_weights["adv"] == 1.0 and model.loss_weights["discr"] == 3.0
    source = _batch(model, size)[0]
    with torch.no_grad():
        hv = [model.encode(source, "source")]
        fake = model.generator(source)
        mapped = model.mapping(hv[0])
        d = model.discriminator.net[0]
        outs = [d(model.encode(fake, "target")), d(hv[0] * mapped)]
        expected = (2.0 * -outs[0].mean() + 0.5 * -outs[1].mean()) / 2
        torch.testing.assert_close(model.generator_losses(source, hv).losses["adv"], expected)
    with pytest.raises(ValueError, match="lambda_adv=1"):
        _tiny(lambda_adv=2.0, adv_output_weights=[1.0, 0.5])
    with pytest.raises(TypeError, match="adv_output_weights only"):
        _tiny(lambda_adv=[1.0, 0.5], adv_output_weights=[1.0, 0.5])


def test_list_valued_lambda_is_the_deprecated_spelling_of_the_output_weights():
    """Configs and checkpoints from before ``adv_output_weights`` / ``discr_output_weights`` give the per-output
    weights as ``lambda_adv`` / ``lambda_discr`` lists: they still build the same model, with a warning."""
    with pytest.warns(DeprecationWarning, match="adv_output_weights"):
        legacy, size = _tiny(lambda_adv=[2.0, 0.5])
    with pytest.warns(DeprecationWarning, match="discr_output_weights"):
        legacy_discr, _ = _tiny(lambda_discr=[1.0, 3.0])
    current, _ = _tiny(lambda_adv=1.0, adv_output_weights=[2.0, 0.5])
    assert legacy.hparams.lambda_adv == 1.0 and list(legacy.hparams.adv_output_weights) == [2.0, 0.5]
    assert legacy_discr.hparams.lambda_discr == 1.0 and list(legacy_discr.hparams.discr_output_weights) == [1.0, 3.0]
    legacy.load_state_dict(current.state_dict())
    source = _batch(current, size)[0]
    with torch.no_grad():
        hv = [current.encode(source, "source")]
        torch.testing.assert_close(legacy.generator_losses(source, hv).losses["adv"],
                                   current.generator_losses(source, hv).losses["adv"], rtol=0, atol=0)


def test_real_data_entry_says_no_published_weights_and_a_trained_tiny_bundle_loads_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("ZOO_WEIGHTS_DIR", raising=False)
    with pytest.raises(WeightsUnavailableError, match="no published weights.*zoo fit --config configs/vsait.yaml"):
        zoo.load("vsait.gta2cityscapes")
    assert zoo.load("vsait").zoo_source == "vsait.toy_sim2photo", "without the file, the shipped model loads"
    model, size = _tiny()
    trainer = ZooTrainer(accelerator="cpu", default_root_dir=tmp_path, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, enable_image_grid=False, limit_val_batches=0, max_steps=2)
    trainer.fit(model, datamodule=build_tiny_datamodule("vsait"))
    bundle = save_bundle(model, tmp_path / "bundle")
    x = torch.rand(2, 3, size, size)
    expected = model.translate(x)
    torch.testing.assert_close(zoo.load(str(bundle)).translate(x), expected, rtol=0, atol=0)
    weights_dir = tmp_path / "weights"
    weights_dir.mkdir()
    (bundle / "model.safetensors").rename(weights_dir / "vsait_gta2cityscapes.safetensors")
    monkeypatch.setenv("ZOO_WEIGHTS_DIR", str(weights_dir))
    torch.testing.assert_close(zoo.load("vsait").translate(x), expected, rtol=0, atol=0)


def test_multi_scale_discriminator_and_strided_generator_train():
    model, size = _tiny(disc_scales=2, gaussian_downsample=False, gan_loss="lsgan", label_smoothing=0.1,
                        adv_output_weights=[1.0, 0.5])
    out = model.optimization_step(*_batch(model, size), *model.configure_optimizers()[0])
    assert set(out.losses) == {"vsa", "adv", "g_total", "discr"}
    assert all(torch.isfinite(v) for v in out.losses.values())
    assert len(model.discriminator.net) == 2


def test_one_channel_sources_reach_the_feature_extractor_expanded_or_are_refused_clearly():
    """Gray sources (1 channel) with RGB targets: the feature extractor encodes both domains, so it needs
    ``feature_in_channels=3``; without it the constructor says so instead of failing inside torchvision."""
    with pytest.raises(ValueError, match="feature_in_channels"):
        _tiny(in_channels=1, out_channels=3)
    with pytest.raises(ValueError, match="cannot take 1-channel images.*feature_in_channels"):
        _tiny(in_channels=1, out_channels=1)
    model, size = _tiny(in_channels=1, out_channels=3, feature_in_channels=3)
    real_a, real_b = _batch(model, size)
    assert (real_a.shape[1], real_b.shape[1]) == (1, 3)
    optimizers, _ = model.configure_optimizers()
    out = model.optimization_step(real_a, real_b, *optimizers)
    assert all(v.isfinite() for v in out.losses.values()) and model.translate(real_a * 0.5 + 0.5).shape[1] == 3
