"""zoo: a PyTorch Lightning model zoo for image-to-image translation.

    >>> import zoo
    >>> zoo.list_models()            # registered methods
    >>> model = zoo.create("cyclegan", ngf=16)
    >>> model = zoo.load("path/to/run/checkpoints/last.ckpt")
    >>> images_b = model.translate(images_a)   # (B, C, H, W) in [0, 1]
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from zoo.hf import resolve_hf_weights as _resolve_hf_weights
from zoo.weights import add_catalog_loader as _add_catalog_loader
from zoo.weights import add_url_resolver as _add_url_resolver

try:
    __version__ = version("zoo")  # pyproject.toml is the one source of the version
except PackageNotFoundError:  # a source tree that was not installed
    __version__ = "unknown"

__all__ = ["__version__", "list_models", "list_pretrained", "create", "load"]


def _import_methods() -> None:
    """Import every method file (each registers its method and its pretrained weights), then the shipped weights."""
    import zoo.methods  # noqa: F401
    from zoo.shipped_weights import register_shipped_weights

    register_shipped_weights()


# The registries never import the methods (the methods import them); they run this when asked for a name.
_add_catalog_loader(_import_methods)
# hf:// records are fetched through huggingface_hub's cache (zoo.hf); zoo.weights itself imports nothing of zoo.
_add_url_resolver("hf://", lambda url, file_name: _resolve_hf_weights(url, filename=file_name))


def list_models(pattern: str = "*", pretrained: bool = False) -> list[str]:
    """Names of registered methods (or of pretrained weights with ``pretrained=True``) matching ``pattern``."""
    from zoo.registry import list_models as _list_models

    return _list_models(pattern, pretrained=pretrained)


def list_pretrained(pattern: str = "*") -> list[str]:
    """Names of registered pretrained weights (``"cyclegan.horse2zebra"``, ...) matching ``pattern``."""
    from zoo.registry import list_pretrained as _list_pretrained

    return _list_pretrained(pattern)


def create(name: str, **overrides: Any):
    """A randomly initialised method (``"cyclegan"``) or the architecture of pretrained weights, with overrides."""
    from zoo.hub import create as _create

    return _create(name, **overrides)


def load(name_or_path: str, **kwargs: Any):
    """A trained model in eval mode from a ``.ckpt``, a bundle folder, a registered pretrained name, or an official
    checkpoint (with ``method=`` and ``net=``). See :func:`zoo.hub.load`."""
    from zoo.hub import load as _load

    return _load(name_or_path, **kwargs)
