"""Every shipped config's DataModule serves train/val/test/predict batches from the toy world (``root: null``)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
import torch

from zoo.config_files import load_config

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
CONFIGS = sorted(CONFIG_DIR.glob("**/*.yaml"))


def _data_module(path: Path) -> tuple[Any, dict[str, Any]]:
    config = load_config(path)
    data = config["data"]
    module_name, _, class_name = data["class_path"].rpartition(".")
    # The config's own arguments with root=null, as `--data.init_args.root=null` gives. Only the loader settings change
    # (one item per batch, in this process) to keep the test fast; they do not affect what the toy world serves.
    init_args = {**(data.get("init_args") or {}), "root": None}
    dm = getattr(importlib.import_module(module_name), class_name)(**init_args)
    assert dm.toy_length >= dm.batch_size, "a training batch of the config's size must fit the toy world"
    dm.batch_size = dm.val_batch_size = 1
    dm.num_workers = 0
    return dm, config.get("model") or {}


def test_the_loop_finds_the_shipped_configs():
    names = {p.relative_to(CONFIG_DIR).as_posix() for p in CONFIGS}
    assert {"lomit.yaml", "bicubic.yaml", "tiny/lomit.yaml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.relative_to(CONFIG_DIR).as_posix())
def test_config_trains_on_the_toy_world(path: Path):
    dm, model = _data_module(path)
    dm.setup("fit")
    dm.setup("test")
    dm.setup("predict")
    batches = {
        "train": next(iter(dm.train_dataloader())),
        "val": next(iter(dm.val_dataloader())),
        "test": next(iter(dm.test_dataloader())),
        "predict": next(iter(dm.predict_dataloader())),
    }
    model_args = model.get("init_args") or {}
    for split, batch in batches.items():
        for side in "ab":
            image = batch[f"real_{side}"]
            assert image.ndim == 4 and image.dtype == torch.float32, (split, side)
            assert -1.0 <= image.min() and image.max() <= 1.0, (split, side)
        if isinstance(model_args.get("c_dim"), int):  # attribute-conditioned methods: one label per model attribute
            assert dm.num_attributes == model_args["c_dim"], split
            for side in "ab":
                attr = batch[f"attr_{side}"]
                assert attr.shape == (batch["real_a"].shape[0], model_args["c_dim"]), (split, side)
                assert attr.dtype == torch.float32 and set(attr.unique().tolist()) <= {0.0, 1.0}
        for key, value in (("input_nc", batch["real_a"]), ("output_nc", batch["real_b"])):
            if isinstance(model_args.get(key), int):
                assert value.shape[1] == model_args[key], (split, key)
    predict = batches["predict"]
    assert predict["relpath_a"][0].startswith("toy_") and predict["relpath_a"][0].endswith(".png")
    assert predict["path_b"] and predict["relpath_b"]
