"""The copy-me method skeleton stays unregistered and working."""

from __future__ import annotations

import pytest
import torch

import zoo
from zoo.methods._template import TemplateTranslator
from zoo.methods.base import TranslationMethod
from zoo.trainer import ZooTrainer


def test_template_is_not_registered():
    assert "template" not in zoo.list_models()


def test_template_builds_on_the_base_class():
    assert issubclass(TemplateTranslator, TranslationMethod)
    model = TemplateTranslator(ngf=4, ndf=4, generator="resnet_1blocks", ema_decay=0.9)
    assert model.generator_for("a2b", use_ema=False) is model.generator
    assert model.generator_for("a2b") is model.ema["generator"].module
    with pytest.raises(ValueError, match="one way only"):
        model.translate(torch.rand(1, 3, 32, 32), direction="b2a")


def test_template_loads_official_weights_into_the_network_and_its_average():
    model = TemplateTranslator(ngf=4, ndf=4, generator="resnet_1blocks", ema_decay=0.9)
    official = {f"module.{k}": torch.randn_like(v) if v.is_floating_point() else v
                for k, v in model.generator.state_dict().items()}
    model.load_official_weights(official)  # the default network: the first of OFFICIAL_NETWORKS, "G"
    for key, value in model.official_state_dict("G").items():
        assert torch.equal(value, official[f"module.{key}"])
        assert torch.equal(model.ema["generator"].module.state_dict()[key], value)
    assert set(model.convert_official_state_dict(official)) == {f"generator.{k}" for k in model.generator.state_dict()}


def test_template_trains_through_the_trainer_and_translates(tmp_path):
    from zoo.data import PairedDataModule

    model = TemplateTranslator(ngf=4, ndf=4, generator="resnet_1blocks")
    data = PairedDataModule(root=None, image_size=32, toy_length=4, toy_test_length=2, val_size=2)
    trainer = ZooTrainer(accelerator="cpu", max_steps=2, default_root_dir=tmp_path, logger=False,
                         enable_progress_bar=False, enable_model_summary=False, enable_image_grid=False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer.fit(model, datamodule=data)
    assert trainer.iterations == 2
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())
    y = model.translate(torch.rand(1, 3, 32, 32))
    assert y.shape == (1, 3, 32, 32) and 0 <= y.min() and y.max() <= 1
    # the base class's validation goes through translate: L1 to the paired target, in model space
    metrics = trainer.validate(model, datamodule=data, verbose=False)[0]
    assert set(metrics) == {"val/l1"} and 0 < metrics["val/l1"] < 2
