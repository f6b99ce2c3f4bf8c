"""Behaviour of Pix2Pix and CycleGAN beyond the oracle parity cases."""

from __future__ import annotations

import copy
import os
import random
from pathlib import Path

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from zoo.methods import CycleGAN, Pix2Pix
from zoo.methods.cyclegan import ImagePool

TINY_CYCLEGAN = dict(ngf=4, ndf=4, generator="resnet_2blocks")
TINY_PIX2PIX = dict(ngf=4, ndf=4, generator="unet_64")  # unet_64 keeps one dropout level


def _images(*shape, seed=0):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# ------------------------------------------------------------------------------------------------ official checkpoints


def test_legacy_cyclegan_checkpoint_with_instance_norm_buffers_imports():
    model = CycleGAN(**TINY_CYCLEGAN)
    official = {k: v.clone() for k, v in model.official_state_dict("G_A").items()}
    # mid-2018 files carry running stats for every InstanceNorm; the official loader drops them
    norm_indices = [2, 5, 8]
    for i in norm_indices:
        official[f"model.{i}.running_mean"] = torch.zeros(1)
        official[f"model.{i}.running_var"] = torch.ones(1)
        official[f"model.{i}.num_batches_tracked"] = torch.tensor(3)
    official["model.10.conv_block.2.running_mean"] = torch.zeros(1)
    fresh = CycleGAN(**TINY_CYCLEGAN)
    fresh.load_official_weights(official, net="G_A")
    for key, value in model.official_state_dict("G_A").items():
        assert torch.equal(fresh.official_state_dict("G_A")[key], value)


def test_old_pix2pix_checkpoint_without_num_batches_tracked_imports():
    model = Pix2Pix(**TINY_PIX2PIX)
    official = {k: v for k, v in model.official_state_dict("G").items() if not k.endswith("num_batches_tracked")}
    assert len(official) < len(model.official_state_dict("G"))
    fresh = Pix2Pix(**TINY_PIX2PIX)
    fresh.load_official_weights(official, net="G")
    tracked = {k: v for k, v in fresh.official_state_dict("G").items() if k.endswith("num_batches_tracked")}
    assert tracked and all(int(v) == 0 for v in tracked.values())


def test_official_converter_is_a_bijection_and_rejects_foreign_keys():
    model = CycleGAN(**TINY_CYCLEGAN)
    official = model.official_state_dict("D_A")
    converted = model.convert_official_state_dict(official, net="D_A")
    assert set(converted) == {f"discriminator_b.{k}" for k in official}
    with pytest.raises(RuntimeError, match="Unexpected key"):
        model.load_official_weights({**official, "model.99.weight": torch.zeros(1)}, net="D_A")
    with pytest.raises(ValueError, match="net must be one of"):
        model.load_official_weights(official, net="G_C")


# ------------------------------------------------------------------------------------------------ inference


def test_pix2pix_train_mode_inference_is_seeded_and_leaves_buffers_untouched():
    model = Pix2Pix(**TINY_PIX2PIX).eval()
    before = copy.deepcopy(model.generator.state_dict())
    x = torch.rand(2, 3, 64, 64)
    y1 = model.translate(x, seed=3)
    y2 = model.translate(x, seed=3)
    y3 = model.translate(x, seed=4)
    assert torch.equal(y1, y2)
    assert not torch.equal(y1, y3), "dropout should make different seeds differ in train-mode inference"
    assert y1.min() >= 0 and y1.max() <= 1
    for key, value in model.generator.state_dict().items():
        assert torch.equal(value, before[key]), f"train-mode inference changed {key}"
    assert not model.generator.training, "translate must restore the module mode"


def test_pix2pix_eval_mode_inference_is_deterministic_without_seed():
    model = Pix2Pix(**TINY_PIX2PIX, inference_mode="eval")
    x = torch.rand(1, 3, 64, 64)
    assert torch.equal(model.translate(x), model.translate(x))


def test_translate_rejects_bad_shapes_and_directions():
    model = CycleGAN(**TINY_CYCLEGAN)
    with pytest.raises(ValueError, match="multiples of 4"):
        model.translate(torch.rand(1, 3, 30, 32))
    with pytest.raises(ValueError, match="input channels"):
        model.translate(torch.rand(1, 1, 32, 32))
    with pytest.raises(ValueError, match="direction"):
        model.translate(torch.rand(1, 3, 32, 32), direction="x2y")
    with pytest.raises(ValueError, match="one way only"):
        Pix2Pix(**TINY_PIX2PIX).translate(torch.rand(1, 3, 64, 64), direction="b2a")


def test_cyclegan_with_different_channel_counts_needs_no_identity():
    with pytest.raises(ValueError, match="identity loss needs input_nc == output_nc"):
        CycleGAN(**TINY_CYCLEGAN, input_nc=1, output_nc=3)
    model = CycleGAN(**TINY_CYCLEGAN, input_nc=1, output_nc=3, lambda_identity=0.0)
    opt_g, opt_d = model.configure_optimizers()[0]
    out = model.optimization_step(_images(1, 1, 32, 32), _images(1, 3, 32, 32, seed=1), opt_g, opt_d)
    assert "idt_a2b" not in out.losses
    assert model.translate(torch.rand(1, 1, 32, 32)).shape == (1, 3, 32, 32)
    assert model.translate(torch.rand(1, 3, 32, 32), direction="b2a").shape == (1, 1, 32, 32)


# ------------------------------------------------------------------------------------------------ training pieces


def test_image_pool_returns_new_images_until_full_then_mixes_history():
    pool = ImagePool(2, random.Random(0))
    first, second = torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2)
    assert torch.equal(pool.query(first), first) and torch.equal(pool.query(second), second)
    outs = [pool.query(torch.full((1, 1, 2, 2), 5.0 + i)) for i in range(20)]
    from_history = sum(float(o.mean()) < 5.0 or float(o.mean()) != 5.0 + i for i, o in enumerate(outs))
    assert 0 < from_history < 20, "once full, about half of the queries should return stored images"
    assert torch.equal(ImagePool(0, random.Random(0)).query(first), first)


def test_image_pool_state_round_trip():
    pool = ImagePool(3, random.Random(1))
    for i in range(5):
        pool.query(torch.full((2, 1, 2, 2), float(i)))
    clone = ImagePool(3, random.Random(99))
    clone.load_state_dict(pool.state_dict(), torch.device("cpu"))
    x = torch.full((4, 1, 2, 2), 9.0)
    assert torch.equal(pool.query(x), clone.query(x))


def test_wgangp_adds_a_real_gradient_penalty_unless_disabled():
    a, b = _images(1, 3, 64, 64), _images(1, 3, 64, 64, seed=1)
    for cls, tiny in ((CycleGAN, TINY_CYCLEGAN), (Pix2Pix, TINY_PIX2PIX)):
        model = cls(**tiny, gan_mode="wgangp")
        out = model.optimization_step(a, b, *model.configure_optimizers()[0])
        penalties = [k for k in out.losses if k.startswith("gp")]
        assert penalties and all(float(out.losses[k]) > 0 for k in penalties)
        plain = cls(**tiny, gan_mode="wgangp", lambda_gp=0.0)
        out = plain.optimization_step(a, b, *plain.configure_optimizers()[0])
        assert not [k for k in out.losses if k.startswith("gp")]


def test_non_finite_loss_stops_with_the_term_name():
    model = CycleGAN(**TINY_CYCLEGAN)
    a = _images(1, 3, 32, 32)
    a[0, 0, 0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match=r"loss term '\w+' became nan at iteration 0"):
        model.optimization_step(a, _images(1, 3, 32, 32, seed=1), *model.configure_optimizers()[0])


def test_identity_loss_uses_the_other_domains_cycle_weight():
    model = CycleGAN(**TINY_CYCLEGAN, lambda_a=2.0, lambda_b=8.0, lambda_identity=0.5)
    assert model.loss_weights["idt_a2b"] == 8.0 * 0.5  # G_a2b(real_b) ~ real_b weighted by lambda_b
    assert model.loss_weights["idt_b2a"] == 2.0 * 0.5


def test_lightning_training_step_equals_the_direct_official_step():
    """Running through a Trainer (manual optimization, LightningOptimizer) changes nothing numerically."""
    torch.manual_seed(0)
    a, b = _images(1, 3, 64, 64), _images(1, 3, 64, 64, seed=1)
    for cls, tiny in ((CycleGAN, TINY_CYCLEGAN), (Pix2Pix, dict(TINY_PIX2PIX, use_dropout=False))):
        direct = cls(**tiny, channels_last=False)  # the same memory layout on both sides: bit-identical math
        via_trainer = copy.deepcopy(direct)
        direct.optimization_step(a, b, *direct.configure_optimizers()[0])
        loader = DataLoader([{"real_a": a[0], "real_b": b[0]}], batch_size=1)
        trainer = L.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False)
        trainer.fit(via_trainer, loader)
        assert trainer.global_step == 2  # one iteration = two optimizer steps in Lightning's count
        for (name, p1), p2 in zip(direct.named_parameters(), via_trainer.parameters(), strict=True):
            torch.testing.assert_close(p2, p1, msg=lambda m, name=name: f"{name}: {m}")


def test_legacy_lr_loop_decays_one_epoch_earlier():
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    lrs = {}
    for step_at in ("epoch_end", "epoch_start"):
        model = CycleGAN(**TINY_CYCLEGAN, n_epochs=1, n_epochs_decay=2, lr_step_at=step_at)
        loader = DataLoader([{"real_a": x[0], "real_b": x[0]}], batch_size=1)
        class Record(L.Callback):
            seen: list[float] = []

            def on_train_epoch_end(self, trainer, pl_module):
                self.seen.append(trainer.optimizers[0].param_groups[0]["lr"])

        trainer = L.Trainer(max_epochs=3, accelerator="cpu", logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False, callbacks=[Record()])
        # the record runs before the module's own epoch-end step, i.e. it sees the lr used during the epoch
        trainer.fit(model, loader)
        lrs[step_at] = Record.seen
    assert lrs["epoch_end"] == pytest.approx([2e-4, 2e-4 * 2 / 3, 2e-4 / 3])
    assert lrs["epoch_start"] == pytest.approx([2e-4 * 2 / 3, 2e-4 / 3, 0.0])


# ------------------------------------------------------------------------------------------------ published weights


def test_registered_official_weights_load_from_a_local_file(tmp_path, monkeypatch):
    """A registered official generator (old file layout) downloads from file://, is hash-pinned and translates."""
    import zoo
    from zoo.hub import HashMismatchError
    from zoo.registry import PRETRAINED, PretrainedEntry

    source = CycleGAN(**TINY_CYCLEGAN).eval()
    official = dict(source.official_state_dict("G_A"))
    official["model.2.running_mean"] = torch.zeros(4)  # mid-2018 files carry InstanceNorm statistics
    official["model.2.running_var"] = torch.ones(4)
    path = tmp_path / "latest_net_G.pth"
    torch.save(official, path)
    monkeypatch.setenv("ZOO_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    PRETRAINED["cyclegan._local_test"] = PretrainedEntry(
        method="cyclegan", init_args=TINY_CYCLEGAN, url=path.as_uri(), format="official", official_net="G_A")
    try:
        model = zoo.load("cyclegan._local_test")
        x = torch.rand(1, 3, 32, 32)
        torch.testing.assert_close(model.translate(x), source.translate(x), rtol=0, atol=0)
        (cached,) = Path(os.environ["ZOO_HOME"]).rglob("latest_net_G.pth")
        data = bytearray(cached.read_bytes())
        data[-100] ^= 0xFF  # one flipped byte in the cached copy
        cached.write_bytes(bytes(data))
        with pytest.raises(HashMismatchError):
            zoo.load("cyclegan._local_test")
    finally:
        del PRETRAINED["cyclegan._local_test"]


def test_official_checkpoint_path_loads_with_method_net_and_architecture(tmp_path):
    import zoo

    source = Pix2Pix(**TINY_PIX2PIX)
    path = tmp_path / "latest_net_G.pth"
    # PyTorch <= 0.3 era files have no num_batches_tracked; the loader fills it in
    torch.save({k: v for k, v in source.official_state_dict("G").items() if "num_batches_tracked" not in k}, path)
    model = zoo.load(str(path), method="pix2pix", net="G", init_args=TINY_PIX2PIX)
    assert not model.training
    x = torch.rand(1, 3, 64, 64)
    torch.testing.assert_close(model.translate(x, seed=0), source.translate(x, seed=0), rtol=0, atol=0)
