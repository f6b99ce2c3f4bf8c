"""SRResNet / SRGAN beyond the shared method tests: networks, value ranges, losses, schedule, init, weights."""

from __future__ import annotations

import math

import pytest
import torch

import zoo
from tests.methods.tiny_configs import build_tiny_datamodule, build_tiny_model
from zoo.losses.vgg_content import VGGContentLoss, resolve_vgg_layer, vgg_layer_names
from zoo.methods import SRGAN, SRResNet
from zoo.methods.srgan import official_init_args, total_variation
from zoo.nets.srresnet import SRGANDiscriminator, SRResNetGenerator
from zoo.trainer import ZooTrainer


def _trainer(tmp_path, **kwargs) -> ZooTrainer:
    defaults = dict(accelerator="cpu", default_root_dir=tmp_path, logger=False, enable_progress_bar=False,
                    enable_model_summary=False, enable_image_grid=False, limit_val_batches=0)
    return ZooTrainer(**{**defaults, **kwargs})


# ------------------------------------------------------------------------------------------------ networks


@pytest.mark.parametrize("scale, channels, size", [(2, 3, (5, 7)), (4, 1, (6, 4)), (8, 3, (3, 3)), (3, 3, (4, 5))])
def test_generator_any_scale_channels_and_non_square_input(scale, channels, size):
    g = SRResNetGenerator(in_channels=channels, out_channels=channels, channels=4, num_rcb=1, upscale=scale)
    y = g(torch.rand(2, channels, *size))
    assert y.shape == (2, channels, size[0] * scale, size[1] * scale)
    assert len(g.upsampling) == (1 if scale == 3 else int(math.log2(scale)))


def test_generator_keys_follow_the_port_layout():
    keys = set(SRResNetGenerator(channels=4, num_rcb=2, upscale=4).state_dict())
    for key in ("conv1.0.weight", "conv1.0.bias", "conv1.1.weight", "trunk.1.rcb.0.weight", "trunk.1.rcb.1.running_var",
                "trunk.1.rcb.2.weight", "trunk.1.rcb.4.bias", "conv2.0.weight", "conv2.1.weight",
                "upsampling.1.upsample_block.0.bias", "upsampling.1.upsample_block.2.weight", "conv3.bias"):
        assert key in keys, key
    assert "trunk.0.rcb.0.bias" not in keys and "conv2.0.bias" not in keys  # convs before BN carry no bias


@pytest.mark.parametrize("bad", [0, 1, 5, 6, 12])
def test_generator_rejects_unsupported_scales(bad):
    with pytest.raises(ValueError, match="upscale"):
        SRResNetGenerator(channels=4, num_rcb=1, upscale=bad)


def test_output_activations():
    torch.manual_seed(0)
    x = torch.rand(1, 3, 4, 4)
    linear = SRResNetGenerator(channels=4, num_rcb=1, upscale=2)
    for act, low, high in (("clamp", 0.0, 1.0), ("tanh", -1.0, 1.0)):
        g = SRResNetGenerator(channels=4, num_rcb=1, upscale=2, output_activation=act)
        g.load_state_dict(linear.state_dict())
        y = g(x)
        assert y.min() >= low and y.max() <= high
    with torch.no_grad():
        linear.conv3.bias.fill_(5.0)
    assert linear(x).max() > 1  # the paper's linear output is not squashed


def test_discriminator_dense_head_fixes_the_size_and_pooling_variant_matches_at_96():
    torch.manual_seed(0)
    d = SRGANDiscriminator(channels=2).eval()
    assert d.classifier[0].in_features == 8 * 2 * 6 * 6 and d.classifier[0].out_features == 1024
    x = torch.rand(2, 3, 96, 96)
    assert d(x).shape == (2, 1)
    with pytest.raises(ValueError, match="96x96"):
        d(torch.rand(1, 3, 64, 64))
    pooled = SRGANDiscriminator(channels=2, image_size=None).eval()
    pooled.load_state_dict(d.state_dict())
    torch.testing.assert_close(pooled(x), d(x))
    assert pooled(torch.rand(1, 3, 48, 80)).shape == (1, 1)
    assert SRGANDiscriminator(channels=1, image_size=32).classifier[0].in_features == 8 * 2 * 2


# ------------------------------------------------------------------------------------------------ VGG content loss


def test_vgg_layer_names_and_paper_aliases():
    assert resolve_vgg_layer("vgg54") == resolve_vgg_layer("relu5_4") == resolve_vgg_layer("features.35") == 35
    assert resolve_vgg_layer("vgg22") == 8 and resolve_vgg_layer("conv5_4") == 34 and resolve_vgg_layer("pool4") == 27
    assert resolve_vgg_layer("relu2_2", batch_norm=True) == 12
    assert vgg_layer_names("vgg16")["relu5_3"] == 29
    with pytest.raises(ValueError, match="unknown VGG layer"):
        resolve_vgg_layer("relu6_1")


def test_content_loss_rescaling_gradient_and_detach():
    torch.manual_seed(0)
    sr, hr = torch.rand(2, 3, 16, 16, requires_grad=True), torch.rand(2, 3, 16, 16)
    plain = VGGContentLoss(layers=("vgg22",), weights=None, feature_scale=1.0)
    paper = VGGContentLoss(layers=("vgg22",), weights=None)  # 1/12.75 on the feature maps (paper Sec. 2.2.1)
    paper.load_state_dict(plain.state_dict())
    paper.features.load_state_dict(plain.features.state_dict())
    value = paper(sr, hr)
    torch.testing.assert_close(value, plain(sr, hr) / 12.75**2)
    value.backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0  # the VGG gradient reaches the SR image
    detached = VGGContentLoss(layers=("vgg22",), weights=None, detach=True)
    detached.features.load_state_dict(plain.features.state_dict())
    port_value = detached(sr, hr)
    assert not port_value.requires_grad
    torch.testing.assert_close(port_value, value.detach())


def test_content_loss_pre_activation_layer_and_grayscale():
    torch.manual_seed(0)
    loss = VGGContentLoss(layers=("conv2_2", "relu2_2"), weights=None)
    feats = loss.extract(torch.rand(1, 3, 16, 16))
    assert feats["features.7"].min() < 0 and feats["features.8"].min() >= 0  # conv2_2 is taken before its ReLU
    torch.testing.assert_close(feats["features.8"], feats["features.7"].clamp(min=0))
    gray = torch.rand(1, 1, 16, 16)
    torch.testing.assert_close(loss(gray, gray), torch.tensor(0.0))


def test_vgg_is_frozen_out_of_state_dict_optimizers_and_ema():
    model, size = build_tiny_model("srgan", ema_decay=0.9)
    assert model.content_loss is not None
    assert not any(p.requires_grad for p in model.content_loss.parameters())
    assert not any(k.startswith("content_loss.") for k in model.state_dict())
    optimized = {id(p) for opt in model.configure_optimizers()[0] for g in opt.param_groups for p in g["params"]}
    assert not optimized & {id(p) for p in model.content_loss.parameters()}
    assert not any(k.startswith("content_loss") for k, _ in model.ema.named_parameters())
    bn = VGGContentLoss(layers=("vgg22",), batch_norm=True, weights=None).train()
    assert not any(m.training for m in bn.modules())  # BN variants always use their running statistics
    fresh, _ = build_tiny_model("srgan", ema_decay=0.9)
    fresh.load_state_dict(model.state_dict(), strict=True)  # loads although the VGG is not in the state dict


def test_vgg_weights_file_is_read_lazily(tmp_path):
    torch.manual_seed(0)
    source = VGGContentLoss(layers=("vgg22",), weights=None)
    path = tmp_path / "vgg.pth"
    torch.save({"state_dict": {f"features.{k}": v for k, v in source.features.state_dict().items()}}, path)
    loss = VGGContentLoss(layers=("vgg22",), weights=str(path))
    assert not torch.equal(loss.features[0].weight, source.features[0].weight)
    x = torch.rand(1, 3, 8, 8)
    loss(x, x)
    torch.testing.assert_close(loss.features[0].weight, source.features[0].weight)
    with pytest.raises(FileNotFoundError, match="VGG weights file"):
        VGGContentLoss(layers=("vgg22",), weights=str(tmp_path / "missing.pth")).load_weights()


def test_total_variation():
    assert total_variation(torch.ones(1, 3, 4, 4)) == 0
    checker = (torch.arange(4)[:, None] + torch.arange(4)[None, :]) % 2
    assert total_variation(checker[None, None].float()) == 2.0


# ------------------------------------------------------------------------------------------------ paper settings


def test_paper_defaults():
    g, d = SRResNet().hparams, SRGAN(vgg_weights=None).hparams
    assert (g.lambda_pixel, g.lambda_content, g.lr, g.beta1, tuple(g.lr_milestones)) == (1.0, 0.0, 1e-4, 0.9, ())
    assert (d.lambda_content, d.lambda_adv, d.lambda_pixel, d.lr, d.beta1) == (1.0, 1e-3, 0.0, 1e-4, 0.9)
    assert tuple(d.lr_milestones) == (100_000,) and d.lr_gamma == 0.1 and d.lr_interval == "iteration"
    assert d.vgg_feature_scale == pytest.approx(1 / 12.75) and d.hr_range == "symmetric" and d.image_size == 96
    model = SRGAN(vgg_weights=None)
    assert model.content_loss.nodes == ["features.35"] and model.scale == 4
    assert len(model.generator.trunk) == 16 and model.discriminator.classifier[0].in_features == 512 * 36


def test_value_ranges_paper_and_port():
    """Paper: G sees LR in [0, 1] and its output is compared with HR in [-1, 1]; port: HR in [0, 1], clamped output."""
    torch.manual_seed(0)
    lr, hr = torch.rand(2, 3, 8, 8) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    for hr_range, activation, target in (("symmetric", "none", hr), ("unit", "clamp", (hr + 1) / 2)):
        model = SRResNet(scale=2, channels=4, num_rcb=1, hr_range=hr_range, output_activation=activation)
        seen = []
        model.generator.register_forward_pre_hook(lambda module, args, seen=seen: seen.append(args[0].detach()))
        sr = model.generator((lr + 1) / 2)
        out = model.optimization_step(lr, hr, *model.configure_optimizers()[0])
        torch.testing.assert_close(seen[-1], (lr + 1) / 2)
        torch.testing.assert_close(out.losses["g_pixel"], torch.nn.functional.mse_loss(sr, target))
        y = model.translate((lr + 1) / 2)
        assert y.shape == (2, 3, 16, 16) and 0 <= y.min() and y.max() <= 1
    with pytest.raises(ValueError, match="hr_range='unit'"):
        SRResNet(output_activation="clamp")


def test_learning_rate_drops_by_ten_at_the_milestone(tmp_path):
    model, _ = build_tiny_model("srgan", lr_milestones=[2])
    trainer = _trainer(tmp_path, max_steps=3)
    trainer.fit(model, datamodule=build_tiny_datamodule("srgan"))
    assert [o.param_groups[0]["lr"] for o in trainer.optimizers] == pytest.approx([1e-5, 1e-5])


def test_schedules_advance_per_lr_interval_and_never_without_milestones():
    """Without milestones the schedulers are never stepped, so their checkpoint state stays that of a fresh one."""
    assert SRResNet().lr_step_point is None
    assert SRGAN(vgg_weights=None).lr_step_point == "iteration_end"
    assert SRGAN(vgg_weights=None, lr_interval="epoch").lr_step_point == "epoch_end"


def test_update_orders_run_d_and_g_in_the_documented_order():
    for order, expected in (("g_first", ["fake", "real", "fake"]), ("d_first", ["real", "fake", "fake"])):
        torch.manual_seed(0)
        model, size = build_tiny_model("srgan", update_order=order)
        lr, hr = model.example_inputs(2, size, generator=torch.Generator().manual_seed(0))
        calls = []
        model.discriminator.register_forward_pre_hook(
            lambda module, args, calls=calls, hr=hr: calls.append("real" if torch.equal(args[0], hr) else "fake"))
        out = model.optimization_step(lr, hr, *model.configure_optimizers()[0])
        assert calls == expected and torch.isfinite(out.losses["g_total"])


# ------------------------------------------------------------------------------------------------ init and weights


def test_srgan_starts_from_a_trained_srresnet(tmp_path):
    srresnet, _ = build_tiny_model("srresnet")
    trainer = _trainer(tmp_path / "pre", max_steps=1)
    trainer.fit(srresnet, datamodule=build_tiny_datamodule("srresnet"))
    ckpt = trainer.run_dir / "checkpoints" / "last.ckpt"
    expected = srresnet.generator.state_dict()

    srgan, _ = build_tiny_model("srgan", init_from=str(ckpt))
    srgan.setup("fit")
    for key, value in srgan.generator.state_dict().items():
        assert torch.equal(value, expected[key]), key
    with torch.no_grad():
        srgan.generator.conv3.bias.add_(1.0)
    srgan.setup("fit")  # a second fit() continues from the current weights
    assert not torch.equal(srgan.generator.conv3.bias, expected["conv3.bias"])

    port_file = tmp_path / "SRResNet_x2-ImageNet.pth.tar"  # the port's format: torch.compile prefix, state_dict key
    torch.save({"state_dict": {f"_orig_mod.{k}": v for k, v in expected.items()}, "epoch": 3}, port_file)
    other, _ = build_tiny_model("srgan", init_from=str(port_file))
    other.setup("fit")
    assert all(torch.equal(v, expected[k]) for k, v in other.generator.state_dict().items())

    missing, _ = build_tiny_model("srgan", init_from=str(tmp_path / "nope.ckpt"))
    with pytest.raises(FileNotFoundError, match="init_from"):
        missing.setup("fit")


def test_published_port_checkpoint_loads_through_the_registry(tmp_path, monkeypatch):
    torch.manual_seed(0)
    port = SRResNetGenerator(channels=64, num_rcb=16, upscale=4, output_activation="clamp").eval()
    torch.save({"state_dict": port.state_dict(), "psnr": 32.0}, tmp_path / "SRResNet_x4-ImageNet.pth.tar")
    monkeypatch.setenv("ZOO_WEIGHTS_DIR", str(tmp_path))
    model = zoo.load("srresnet.imagenet_x4")
    x = torch.rand(1, 3, 6, 5)
    with torch.no_grad():
        torch.testing.assert_close(model.translate(x), port(x))
    converted = model.convert_official_state_dict({"state_dict": port.state_dict()})
    assert set(converted) == {f"generator.{k}" for k in port.state_dict()}


def test_init_args_from_the_ports_yaml():
    config = {"SCALE": 4, "MODEL": {"EMA": {"ENABLE": True, "DECAY": 0.999},
                                    "G": {"NAME": "srresnet_x4", "IN_CHANNELS": 3, "OUT_CHANNELS": 3, "CHANNELS": 64,
                                          "NUM_RCB": 16},
                                    "D": {"NAME": "discriminator_for_vgg", "IN_CHANNELS": 3, "OUT_CHANNELS": 1,
                                          "CHANNELS": 64}},
              "TRAIN": {"DATASET": {"GT_IMAGE_SIZE": 96},
                        "OPTIM": {"NAME": "Adam", "LR": 1e-4, "BETAS": [0.9, 0.999], "EPS": 1e-8, "WEIGHT_DECAY": 0.0},
                        "LR_SCHEDULER": {"NAME": "MultiStepLR", "MILESTONES": [9], "GAMMA": 0.5},
                        "LOSSES": {"PIXEL_LOSS": {"WEIGHT": [1.0]},
                                   "CONTENT_LOSS": {"NET_CFG_NAME": "vgg19", "BATCH_NORM": False,
                                                    "MODEL_WEIGHTS_PATH": "", "FEATURE_NODES": ["features.35"],
                                                    "FEATURE_NORMALIZE_MEAN": [0.485, 0.456, 0.406],
                                                    "FEATURE_NORMALIZE_STD": [0.229, 0.224, 0.225], "WEIGHT": [1.0]},
                                   "ADVERSARIAL_LOSS": {"NAME": "vanilla", "WEIGHT": [0.001]}}}}
    args = SRGAN.init_args_from_official(config)
    assert args["scale"] == 4 and args["image_size"] == 96 and args["vgg_layers"] == ["features.35"]
    assert (args["lambda_pixel"], args["lambda_content"], args["lambda_adv"]) == (1.0, 1.0, 0.001)
    assert (args["lr_milestones"], args["lr_gamma"], args["lr_interval"]) == ([9], 0.5, "epoch")
    assert args["hr_range"] == "unit" and args["output_activation"] == "clamp" and args["vgg_feature_scale"] == 1.0
    assert args["ema_decay"] == pytest.approx(0.001) and args["vgg_weights"] == "imagenet"
    srresnet_args = SRResNet.init_args_from_official({k: v for k, v in config.items()})
    assert "lambda_adv" not in srresnet_args and "d_channels" not in srresnet_args
    assert official_init_args({"in_channels": 1, "out_channels": 1, "channels": 8, "num_rcb": 2, "upscale": 8})[
        "scale"] == 8


# ------------------------------------------------------------------------------------------------ evaluation


def test_test_loop_prints_psnr_and_ssim_per_image_and_mean(tmp_path, capsys):
    model, _ = build_tiny_model("srresnet")
    _trainer(tmp_path).test(model, datamodule=build_tiny_datamodule("srresnet"))
    table = capsys.readouterr().out
    rows = [line for line in table.splitlines() if "PSNR" in line and "SSIM" in line]
    assert len(rows) == 3 and rows[-1].startswith("mean")  # 2 toy test images + the mean
