"""The copy-me method skeleton stays unregistered and working."""

from __future__ import annotations

import torch

import zoo
from zoo.methods._template import TemplateTranslator
from zoo.trainer import ZooTrainer


def test_template_is_not_registered():
    assert "template" not in zoo.list_models()


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
