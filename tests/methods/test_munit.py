"""Behaviour of MUNIT beyond the oracle parity cases: options, update order, schedule, init, official files, API."""

from __future__ import annotations

import copy
import math

import pytest
import torch

import zoo
from zoo.hub import WeightsUnavailableError
from zoo.losses.perceptual import PerceptualLoss, VGG16Features, perceptual_loss, vgg_preprocess
from zoo.methods import MUNIT
from zoo.nets.munit import AdaINGen, Conv2dBlock, LayerNorm, MsImageDis, SpectralNorm

TINY = dict(dim=4, mlp_dim=8, style_dim=3, n_downsample=2, n_res=1, dis_dim=4, n_layer=2, num_scales=2,
            channels_last=False)


def _images(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _step(model: MUNIT, a: torch.Tensor, b: torch.Tensor, **kwargs):
    optimizers, schedulers = model.configure_optimizers()
    model.update_learning_rate(schedulers)
    return model.optimization_step(a, b, *optimizers, **kwargs)


# ------------------------------------------------------------------------------------------------ options


@pytest.mark.parametrize("options", [
    dict(activ="lrelu", pad_type="zero", dis_norm="bn", gan_type="nsgan"),
    dict(activ="prelu", pad_type="replicate", dis_norm="in", dis_activ="relu", dis_pad_type="zero"),
    dict(activ="selu", dis_norm="ln", dis_activ="selu", dis_pad_type="replicate", recon_x_cyc_w=10.0),
    dict(activ="tanh", dis_norm="sn", dis_activ="prelu", init="gaussian"),
    dict(activ="none", dis_activ="tanh", init="xavier", input_dim_a=1, lr_policy="constant"),
    dict(init="orthogonal", input_dim_b=1, n_downsample=1, n_res=2, num_scales=3, n_layer=1),
    dict(init="default", dis_activ="none", vgg_w=1.0, vgg_weights="random"),
])
def test_every_official_option_trains_on_non_square_images(options):
    torch.manual_seed(0)
    model = MUNIT(**{**TINY, **options})
    a = _images(2, model.input_channels("a2b"), 32, 48)
    b = _images(2, model.output_channels("a2b"), 32, 48, seed=1)
    before = copy.deepcopy(model.state_dict())
    out = _step(model, a, b)
    assert all(torch.isfinite(v) for v in out.losses.values())
    assert out.images["x_ab"].shape == b.shape and out.images["x_ba"].shape == a.shape
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.startswith("gen_a.") for k in changed) and any(k.startswith("dis_b.") for k in changed)
    y = model.translate((a + 1) / 2, seed=0)
    assert y.shape == (2, model.output_channels("a2b"), 32, 48)


def test_invalid_options_raise_clear_errors():
    with pytest.raises(ValueError, match="pad_type"):
        MUNIT(**{**TINY, "pad_type": "circular"})
    with pytest.raises(ValueError, match="activ must be one of"):
        MUNIT(**{**TINY, "activ": "gelu"})
    with pytest.raises(ValueError, match="discriminator norm"):
        MUNIT(**{**TINY, "dis_norm": "adain"})
    with pytest.raises(ValueError, match="gan_type"):
        MUNIT(**{**TINY, "gan_type": "wgan"})
    with pytest.raises(ValueError, match="lr_policy"):
        MUNIT(**{**TINY, "lr_policy": "linear"})
    with pytest.raises(ValueError, match="3-channel"):
        MUNIT(**{**TINY, "input_dim_a": 1, "vgg_w": 1.0, "vgg_weights": "random"})
    with pytest.raises(ValueError, match="vgg_weights"):
        MUNIT(**{**TINY, "vgg_w": 1.0})


def test_loss_weights_and_totals_follow_the_official_sums():
    torch.manual_seed(0)
    weights = dict(gan_w=2.0, recon_x_w=3.0, recon_s_w=0.5, recon_c_w=4.0, recon_x_cyc_w=5.0, vgg_w=0.25)
    model = MUNIT(**TINY, **weights, vgg_weights="random")
    out = _step(model, _images(1, 3, 32, 32), _images(1, 3, 32, 32, seed=1))
    lw = model.loss_weights
    gen_terms = [k for k in out.losses if k.startswith("gen_") and k != "gen_total"]
    assert len(gen_terms) == 12
    assert lw["gen_adv_a"] == 2.0 and lw["gen_recon_x_b"] == 3.0 and lw["gen_recon_s_a"] == 0.5
    assert lw["gen_recon_c_b"] == 4.0 and lw["gen_cycrecon_x_a"] == 5.0 and lw["gen_vgg_b"] == 0.25
    torch.testing.assert_close(out.losses["gen_total"], sum(lw[k] * out.losses[k] for k in gen_terms))
    torch.testing.assert_close(out.losses["dis_total"], 2.0 * (out.losses["dis_a"] + out.losses["dis_b"]))
    # the frozen VGG is not part of the model's parameters or checkpoint
    assert not any("vgg" in k for k in model.state_dict())
    assert all(not p.requires_grad for p in model.perceptual().parameters())


# ------------------------------------------------------------------------------------------------ update order, RNG


def test_four_fresh_style_codes_are_drawn_in_the_official_order():
    torch.manual_seed(0)
    model = MUNIT(**TINY)
    twin = copy.deepcopy(model)
    a, b = _images(2, 3, 32, 32), _images(2, 3, 32, 32, seed=1)
    torch.manual_seed(5)
    codes = [torch.randn(2, 3, 1, 1) for _ in range(4)]  # dis s_a, dis s_b, gen s_a, gen s_b
    torch.manual_seed(5)
    drawn = _step(model, a, b)
    injected = _step(twin, a, b, style_codes=codes)
    for (key, value), other in zip(model.state_dict().items(), twin.state_dict().values(), strict=True):
        assert torch.equal(value, other), key
    torch.testing.assert_close(drawn.losses["gen_recon_s_a"], injected.losses["gen_recon_s_a"])
    # the discriminator update used codes 0/1, the generator update 2/3
    assert not torch.equal(drawn.images["dis_x_ab"], drawn.images["x_ab"])


def test_discriminator_step_precedes_the_generator_step():
    """The generator update sees the discriminators after their step (official dis_update -> gen_update)."""
    torch.manual_seed(0)
    model = MUNIT(**TINY, lr_policy="constant")
    a, b = _images(1, 3, 32, 32), _images(1, 3, 32, 32, seed=1)
    codes = [torch.randn(1, 3, 1, 1) for _ in range(4)]
    reference = copy.deepcopy(model)
    opt_gen, opt_dis = reference.configure_optimizers()[0]
    out = model.optimization_step(a, b, *model.configure_optimizers()[0], style_codes=codes)
    # replay: discriminator step only, then the generator adversarial loss with the stepped discriminator
    c_a, c_b = reference.gen_a.enc_content(a), reference.gen_b.enc_content(b)
    with torch.no_grad():
        x_ba, x_ab = reference.gen_a.decode(c_b, codes[0]), reference.gen_b.decode(c_a, codes[1])
    loss = reference.dis_a.calc_dis_loss(x_ba, a) + reference.dis_b.calc_dis_loss(x_ab, b)
    loss.backward()
    opt_dis.step()
    with torch.no_grad():
        adv = reference.dis_a.calc_gen_loss(reference.gen_a.decode(c_b, codes[2]))
    torch.testing.assert_close(out.losses["gen_adv_a"], adv)


# ------------------------------------------------------------------------------------------------ optimizers, schedule


def test_adam_and_step_schedule_stepped_before_each_iteration():
    model = MUNIT(**TINY, lr=2e-4, beta1=0.3, beta2=0.9, weight_decay=1e-3, step_size=3, gamma=0.1)
    optimizers, schedulers = model.configure_optimizers()
    for opt in optimizers:
        group = opt.param_groups[0]
        assert (group["lr"], group["betas"], group["weight_decay"]) == (2e-4, (0.3, 0.9), 1e-3)
        assert not group.get("decoupled_weight_decay", False)  # L2 in the gradient, not AdamW
    gen_params = {id(p) for p in optimizers[0].param_groups[0]["params"]}
    assert gen_params == {id(p) for p in [*model.gen_a.parameters(), *model.gen_b.parameters()]}
    lrs = []
    for _ in range(7):
        model.update_learning_rate(schedulers)  # what training_step does first
        lrs.append(optimizers[0].param_groups[0]["lr"])
    # update k (1-based) runs at lr * gamma ** (k // step_size)
    assert lrs == pytest.approx([2e-4 * 0.1 ** (k // 3) for k in range(1, 8)])
    assert MUNIT(**TINY, lr_policy="constant").configure_optimizers()[1] == []


def test_official_initialisation():
    torch.manual_seed(0)
    model = MUNIT(**{**TINY, "dim": 16, "dis_dim": 16})
    conv = model.gen_a.enc_content.model[1].conv  # kaiming normal, fan_in
    expected = math.sqrt(2.0 / (conv.in_channels * 4 * 4))
    assert abs(conv.weight.std().item() / expected - 1) < 0.15
    assert torch.count_nonzero(conv.bias) == 0
    dconv = model.dis_a.cnns[0][1].conv  # re-initialised N(0, 0.02)
    assert abs(dconv.weight.std().item() - 0.02) < 0.004 and torch.count_nonzero(dconv.bias) == 0
    gamma = model.gen_a.dec.model[2].norm.gamma  # LayerNorm gamma keeps U(0, 1)
    assert 0 <= gamma.min() and gamma.max() <= 1 and gamma.std() > 0.05
    sn = MUNIT(**TINY, dis_norm="sn").dis_a.cnns[0][1].conv
    assert isinstance(sn, SpectralNorm) and sn.module.bias.abs().sum() > 0  # official init skips wrapped convs


# ------------------------------------------------------------------------------------------------ official files


def test_official_gen_and_dis_files_import_with_stale_keys(tmp_path):
    torch.manual_seed(0)
    source = MUNIT(**TINY)
    gen, dis = source.official_state_dict("gen"), source.official_state_dict("dis")
    assert set(gen) == {"a", "b"} and "dec.model.0.model.0.model.0.norm.running_mean" in gen["a"]
    assert "dec.model.2.norm.gamma" in gen["a"] and "enc_style.model.6.weight" in gen["a"]
    for half in gen.values():  # PyTorch-0.3 files carry instance-norm statistics; the official fix deletes them
        half["enc_content.model.0.norm.running_mean"] = torch.zeros(4)
        half["enc_content.model.0.norm.running_var"] = torch.ones(4)
        half["enc_content.model.3.model.0.model.1.norm.running_mean"] = torch.zeros(16)
    gen_file, dis_file = tmp_path / "gen_00010000.pt", tmp_path / "dis_00010000.pt"
    torch.save(gen, gen_file)
    torch.save(dis, dis_file)
    target = MUNIT(**TINY)
    target.load_official_weights(torch.load(gen_file, weights_only=True), net="gen")
    target.load_official_weights(torch.load(dis_file, weights_only=True), net="dis")
    for (key, value), other in zip(source.state_dict().items(), target.state_dict().values(), strict=True):
        assert torch.equal(value, other), key
    loaded = zoo.load(gen_file, method="munit", net="gen", init_args={k: v for k, v in TINY.items()})
    x = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(loaded.translate(x, seed=3), source.translate(x, seed=3))
    with pytest.raises(KeyError, match="'a' and 'b'"):
        target.load_official_weights(gen["a"], net="gen")
    with pytest.raises(RuntimeError):  # strict: a real mismatch is not silently dropped
        target.load_official_weights({**gen["a"], "enc_style.model.9.weight": torch.zeros(1)}, net="gen_a")


def test_published_edges2shoes_entry_says_where_to_put_the_file():
    with pytest.raises(WeightsUnavailableError, match="edges2shoes.pt"):
        zoo.load("munit.edges2shoes")
    assert zoo.load("munit").zoo_source == "munit.toy_sim2photo", "without the file, the shipped model loads"


def test_official_dis_with_spectral_norm_keeps_the_official_keys():
    dis = MsImageDis(3, dim=4, norm="sn", n_layer=2, num_scales=1)
    keys = set(dis.state_dict())
    assert {"cnns.0.1.conv.module.weight_bar", "cnns.0.1.conv.module.weight_u", "cnns.0.1.conv.module.weight_v",
            "cnns.0.1.conv.module.bias"} <= keys
    u = dis.cnns[0][1].conv.module.weight_u.clone()
    dis(torch.rand(1, 3, 16, 16))
    assert not torch.equal(u, dis.cnns[0][1].conv.module.weight_u)  # one power iteration per forward
    for _ in range(100):  # the power iteration converges to the top singular vectors
        w = dis.cnns[0][1].conv.normalized_weight().reshape(8, -1)
    assert torch.linalg.matrix_norm(w.detach(), ord=2).item() == pytest.approx(1.0, rel=0.02)


def test_init_args_from_an_official_yaml(tmp_path):
    config = tmp_path / "synthia2cityscape.yaml"
    config.write_text(
        "image_save_iter: 10000\nbatch_size: 1\nweight_decay: 0.0001\nbeta1: 0.5\nbeta2: 0.999\ninit: kaiming\n"
        "lr: 0.0001\nlr_policy: step\nstep_size: 100000\ngamma: 0.5\ngan_w: 1\nrecon_x_w: 10\nrecon_s_w: 1\n"
        "recon_c_w: 1\nrecon_x_cyc_w: 10\nvgg_w: 1\nvgg_model_path: /models_root\n"
        "gen:\n  dim: 8\n  mlp_dim: 16\n  style_dim: 4\n  activ: relu\n  n_downsample: 2\n  n_res: 1\n"
        "  pad_type: reflect\ndis:\n  dim: 8\n  norm: none\n  activ: lrelu\n  n_layer: 2\n  gan_type: nsgan\n"
        "  num_scales: 2\n  pad_type: zero\ninput_dim_a: 3\ninput_dim_b: 1\nnum_workers: 8\nnew_size: 512\n")
    args = MUNIT.init_args_from_official(config)
    assert args["vgg_weights"] == "/models_root/models/vgg16.weight"
    assert (args["dim"], args["dis_dim"], args["gan_type"], args["dis_pad_type"], args["input_dim_b"]) == (
        8, 8, "nsgan", "zero", 1)
    assert args["recon_x_cyc_w"] == 10 and args["n_layer"] == 2 and args["style_dim"] == 4
    model = MUNIT(**{**args, "vgg_w": 0})
    assert model.output_channels("a2b") == 1
    assert MUNIT.init_args_from_official({"gen": {"dim": 8}})["lr_policy"] == "constant"


# ------------------------------------------------------------------------------------------------ multimodal API


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return MUNIT(**TINY).eval()


def test_translate_shapes_and_style_sources(model):
    x = torch.rand(2, 3, 32, 48)
    assert model.translate(x, seed=0).shape == (2, 3, 32, 48)
    many = model.translate(x, num_styles=4, seed=0)
    assert many.shape == (2, 4, 3, 32, 48)
    # column k: the k-th prior code (drawn from a CPU generator seeded by `seed`), shared by the batch
    codes = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    for k in range(4):
        torch.testing.assert_close(many[:, k], model.translate(x, style=codes[k]))
    assert model.translate(x, style=torch.randn(3)).shape == (2, 3, 32, 48)
    assert model.translate(x, style=torch.randn(1, 3)).shape == (2, 3, 32, 48)
    per_image = torch.randn(2, 3)
    y = model.translate(x, style=per_image)
    torch.testing.assert_close(y[1:], model.translate(x[1:], style=per_image[1]))
    assert model.translate(x, style=torch.randn(5, 3, 1, 1), num_styles=5).shape == (2, 5, 3, 32, 48)
    ref = torch.rand(1, 3, 40, 40)
    z = model.translate(x, reference=ref)
    style = model.encode(ref * 2 - 1, domain="b")[1]
    torch.testing.assert_close(z, model.translate(x, style=style))
    assert model.translate(x, reference=torch.rand(2, 3, 36, 36), direction="a2b").shape == (2, 3, 32, 48)
    assert model.translate(x, direction="b2a", seed=1).shape == (2, 3, 32, 48)


def test_translate_is_seeded(model):
    x = torch.rand(3, 3, 32, 32)
    torch.testing.assert_close(model.translate(x, seed=7), model.translate(x, seed=7), rtol=0, atol=0)
    torch.testing.assert_close(model.translate(x, num_styles=2, seed=7), model.translate(x, num_styles=2, seed=7),
                               rtol=0, atol=0)
    assert not torch.equal(model.translate(x, seed=7), model.translate(x, seed=8))
    state = torch.get_rng_state()
    model.translate(x, seed=7)
    assert torch.equal(state, torch.get_rng_state())  # seeded calls leave the global RNG alone


def test_translate_rejects_conflicting_arguments(model):
    x = torch.rand(2, 3, 32, 32)
    with pytest.raises(ValueError, match="not both"):
        model.translate(x, style=torch.randn(3), reference=torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match="num_styles=3"):
        model.translate(x, style=torch.randn(3, 3))
    with pytest.raises(ValueError, match=r"\(4, 3\)"):
        model.translate(x, style=torch.randn(2, 3), num_styles=4)
    with pytest.raises(ValueError, match="style_dim=3"):
        model.translate(x, style=torch.randn(2, 5))
    with pytest.raises(ValueError, match="reference"):
        model.translate(x, reference=torch.rand(3, 3, 32, 32))
    with pytest.raises(ValueError, match="reference"):
        model.translate(x, reference=torch.rand(2, 1, 32, 32))
    with pytest.raises(ValueError, match="num_styles must be 1"):
        model.translate(x, reference=torch.rand(2, 3, 32, 32), num_styles=2)
    with pytest.raises(ValueError, match="num_styles"):
        model.translate(x, num_styles=0)
    with pytest.raises(ValueError, match="multiples of 4"):
        model.translate(torch.rand(1, 3, 30, 32))
    with pytest.raises(ValueError, match="domain"):
        model.encode(x, domain="c")


def test_encode_decode_style_swap(model):
    x_a, x_b = _images(2, 3, 32, 32), _images(2, 3, 32, 32, seed=1)
    content, style = model.encode(x_a, domain="a")
    assert content.shape == (2, 16, 8, 8) and style.shape == (2, 3)
    with torch.no_grad():
        torch.testing.assert_close(model.decode(content, style, domain="a"), model.gen_a(x_a))
    _, style_b = model.encode(x_b, domain="b")
    swapped = model.decode(content, style_b.flip(0), domain="b")
    assert swapped.shape == (2, 3, 32, 32) and swapped.abs().max() <= 1
    expected = model.translate((x_a + 1) / 2, style=style_b.flip(0)) * 2 - 1
    torch.testing.assert_close(swapped, expected, atol=1e-6, rtol=0)


# ------------------------------------------------------------------------------------------------ building blocks


def test_layer_norm_and_adain_follow_the_official_formulas():
    x = torch.randn(3, 4, 5, 6, dtype=torch.float64)
    ln = LayerNorm(4).double()
    flat = x.reshape(3, -1)
    expected = (x - flat.mean(1).view(-1, 1, 1, 1)) / (flat.std(1, unbiased=True).view(-1, 1, 1, 1) + 1e-5)
    torch.testing.assert_close(ln(x), expected * ln.gamma.view(1, -1, 1, 1) + ln.beta.view(1, -1, 1, 1))
    block = Conv2dBlock(4, 4, 3, 1, 1, norm="adain", activation="none").double()
    gen = AdaINGen(3, dim=2, n_downsample=1, n_res=1, mlp_dim=4, style_dim=2)
    assert gen.get_num_adain_params(gen.dec) == 2 * 2 * 4  # one ResBlock, two AdaIN layers of 4 channels
    params = torch.randn(3, 8, dtype=torch.float64)
    gen.assign_adain_params(params, block)
    y = block.conv(block.pad(x))
    mean, var = y.mean((2, 3), keepdim=True), y.var((2, 3), unbiased=False, keepdim=True)
    expected = (y - mean) / torch.sqrt(var + 1e-5) * params[:, 4:].view(3, 4, 1, 1) + params[:, :4].view(3, 4, 1, 1)
    torch.testing.assert_close(block(x), expected)


def test_perceptual_loss_official_preprocessing_and_weight_layouts(tmp_path):
    images = torch.rand(2, 3, 8, 8) * 2 - 1
    caffe = vgg_preprocess(images, "caffe")
    torch.testing.assert_close(caffe[:, 0], (images[:, 2] + 1) * 127.5 - 103.939)  # BGR, [0, 255], minus means
    torch.testing.assert_close(caffe[:, 2], (images[:, 0] + 1) * 127.5 - 123.680)
    torch.manual_seed(0)
    vgg = VGG16Features()
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in list(vgg.features)[-7:])  # no pool4 before conv5
    assert vgg(torch.rand(1, 3, 32, 32)).shape == (1, 512, 4, 4)
    official = {}
    names = ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3", "conv4_1", "conv4_2",
             "conv4_3", "conv5_1", "conv5_2", "conv5_3"]
    convs = [m for m in vgg.features if isinstance(m, torch.nn.Conv2d)]
    for name, conv in zip(names, convs, strict=True):
        official[f"{name}.weight"], official[f"{name}.bias"] = conv.weight, conv.bias
    path = tmp_path / "vgg16.weight"
    torch.save(official, path)
    loss = PerceptualLoss(str(path))
    assert loss.preprocess == "caffe" and loss.vgg.layout == "official"
    tv_path = tmp_path / "vgg16-397923af.pth"
    torch.save({f"features.{k}": v for k, v in vgg.features.state_dict().items()}, tv_path)
    assert PerceptualLoss(str(tv_path)).preprocess == "imagenet"
    a, b = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    expected = torch.mean((torch.nn.functional.instance_norm(vgg(vgg_preprocess(a))) -
                           torch.nn.functional.instance_norm(vgg(vgg_preprocess(b)))) ** 2)
    torch.testing.assert_close(loss(a, b), expected)
    torch.testing.assert_close(perceptual_loss(vgg, a, a), torch.tensor(0.0))
    with pytest.raises(FileNotFoundError):
        PerceptualLoss(str(tmp_path / "missing.pth"))
