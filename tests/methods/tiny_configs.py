"""Build models and DataModules from ``configs/tiny/<method>.yaml`` (the single source of the tiny presets)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from zoo.config_files import load_config

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "tiny"


def trainable_methods() -> list[str]:
    """Registered methods that train (baselines such as ``bicubic`` set ``trainable = False``)."""
    import zoo
    from zoo.registry import get_method

    return [name for name in zoo.list_models() if getattr(get_method(name), "trainable", True)]


def tiny_config(name: str) -> dict[str, Any]:
    path = CONFIG_DIR / f"{name}.yaml"
    assert path.is_file(), f"every registered method needs {path}"
    return load_config(path)


def _instantiate(spec: dict[str, Any], **overrides: Any) -> Any:
    module, _, cls = spec["class_path"].rpartition(".")
    return getattr(importlib.import_module(module), cls)(**{**spec.get("init_args", {}), **overrides})


def build_tiny_model(name: str, **overrides: Any):
    """The tiny model and the image side of its tiny data."""
    config = tiny_config(name)
    size = config["data"]["init_args"].get("image_size", 32)
    return _instantiate(config["model"], **overrides), size


def build_tiny_datamodule(name: str, **overrides: Any):
    return _instantiate(tiny_config(name)["data"], **overrides)
