"""ExponentialMovingAverage: update rule, buffers, pickling (ddp_spawn) and checkpoint round trips."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
from torch import nn

from tests.tiny import TinyData, TinyGAN
from zoo.nets import ExponentialMovingAverage
from zoo.trainer import ZooTrainer


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))


def test_first_update_copies_then_decays():
    net = _net()
    ema = ExponentialMovingAverage(net, decay=0.9)
    with torch.no_grad():
        net[0].weight.add_(1.0)
    ema.update(net)
    torch.testing.assert_close(ema.module[0].weight, net[0].weight, rtol=0, atol=0)

    previous = ema.module[0].weight.clone()
    with torch.no_grad():
        net[0].weight.mul_(-2.0)
    ema.update(net)
    expected = 0.9 * previous + 0.1 * net[0].weight
    torch.testing.assert_close(ema.module[0].weight, expected)
    assert int(ema.n_averaged) == 2


def test_float_buffers_are_averaged_and_counters_copied():
    net = _net()
    ema = ExponentialMovingAverage(net, decay=0.5)
    ema.update(net)
    net.train()
    net(torch.randn(2, 3, 8, 8))  # moves running stats, bumps num_batches_tracked
    ema.update(net)
    bn_ema, bn = ema.module[1], net[1]
    torch.testing.assert_close(bn_ema.running_mean, 0.5 * torch.zeros(4) + 0.5 * bn.running_mean)
    assert bn_ema.num_batches_tracked.dtype == torch.long
    assert int(bn_ema.num_batches_tracked) == int(bn.num_batches_tracked) == 1


def test_average_is_frozen_and_runs_the_copy():
    net = _net().eval()
    ema = ExponentialMovingAverage(net, decay=0.99)
    assert not any(p.requires_grad for p in ema.parameters())
    ema.update(net)
    ema.eval()
    x = torch.randn(1, 3, 8, 8)
    torch.testing.assert_close(ema(x), net(x))


def test_decay_out_of_range_is_rejected():
    with pytest.raises(ValueError, match="decay"):
        ExponentialMovingAverage(_net(), decay=1.5)


def test_module_with_ema_pickles_for_ddp_spawn():
    model = TinyGAN(ema_decay=0.9)
    model.g_ab_ema.update(model.g_ab)
    restored = pickle.loads(pickle.dumps(model))
    with torch.no_grad():
        restored.g_ab.weight.add_(1.0)
    restored.g_ab_ema.update(restored.g_ab)  # the average function survived pickling
    expected = 0.9 * model.g_ab_ema.module.weight + 0.1 * restored.g_ab.weight
    torch.testing.assert_close(restored.g_ab_ema.module.weight, expected)
    assert copy.deepcopy(model).g_ab_ema.decay == 0.9


def test_ema_is_saved_and_resumed_with_the_checkpoint(tmp_path):
    model = TinyGAN(ema_decay=0.5)
    trainer = ZooTrainer(
        accelerator="cpu",
        max_steps=3,
        default_root_dir=tmp_path,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_image_grid=False,
        limit_val_batches=0,
    )
    trainer.fit(model, datamodule=TinyData(length=8))
    assert int(model.g_ab_ema.n_averaged) == 3
    # training moved the average away from the live weights
    assert not torch.equal(model.g_ab_ema.module.weight, model.g_ab.weight)

    ckpt = trainer.checkpoint_callback.last_model_path
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    assert "g_ab_ema.module.weight" in state and "g_ab_ema.n_averaged" in state

    loaded = TinyGAN.load_from_checkpoint(ckpt)
    torch.testing.assert_close(loaded.g_ab_ema.module.weight, model.g_ab_ema.module.weight, rtol=0, atol=0)
    assert int(loaded.g_ab_ema.n_averaged) == 3
    x = torch.rand(1, 3, 8, 8)
    torch.testing.assert_close(loaded.translate(x), model.translate(x), rtol=0, atol=0)


@pytest.mark.ddp
def test_ema_trains_under_ddp_spawn(tmp_path):
    model = TinyGAN(ema_decay=0.5)
    trainer = ZooTrainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp_spawn_find_unused_parameters_true",
        max_steps=2,
        default_root_dir=tmp_path,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_image_grid=False,
        enable_checkpointing=False,
        limit_val_batches=0,
    )
    trainer.fit(model, datamodule=TinyData(length=8))
    # rank 0's weights come back to this process, the average included
    assert int(model.g_ab_ema.n_averaged) == 2
    assert not torch.equal(model.g_ab_ema.module.weight, model.g_ab.weight)
