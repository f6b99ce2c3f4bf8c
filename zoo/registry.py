"""A flat registry of methods and of their pretrained weights.

Methods register themselves with ``@register_method("name")`` when their module is imported
(``zoo/methods/__init__.py`` imports every method file). A method's pretrained weights are described by a
:class:`PretrainedEntry` (a :class:`~zoo.weights.WeightsFile` that also says how to build the model) and registered
under a dotted ``method.tag`` name, e.g. ``"cyclegan.horse2zebra"``. Both tables are plain dicts; a duplicate name
raises. The weights table is :data:`zoo.weights.WEIGHTS` (also reachable here as :data:`PRETRAINED`).

This module never imports the methods: they import it. Lookups first run the catalogue loaders
(:func:`zoo.weights.load_catalog`), which the package root sets up to import ``zoo.methods``, so that every method is
registered however the registry is reached.

The licence of every registered set of weights is set in one table, :data:`PRETRAINED_LICENSES` (``zoo list
--pretrained`` shows it; ``THIRD_PARTY_NOTICES.md`` gives the sources).
"""

from __future__ import annotations

import fnmatch
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from zoo.weights import (
    PRETRAINED_LICENSES,
    WEIGHTS,
    UnknownModelError,
    WeightsFile,
    load_catalog,
    local_weights_path,
    pretrained_license,
    register_weights,
)

__all__ = [
    "PretrainedEntry",
    "register_method",
    "register_pretrained",
    "get_method",
    "get_pretrained",
    "default_pretrained",
    "list_models",
    "list_pretrained",
    "registered_classes",
    "resolve_registered_class",
    "METHODS",
    "PRETRAINED",
    "PRETRAINED_LICENSES",
    "pretrained_license",
]

#: Registered methods (``LightningModule`` classes) by name.
METHODS: dict[str, type] = {}
#: Registered weights by name: the same dict as :data:`zoo.weights.WEIGHTS`.
PRETRAINED: dict[str, WeightsFile] = WEIGHTS


@dataclass(frozen=True, kw_only=True)
class PretrainedEntry(WeightsFile):
    """Weights of a method: where the file lives (see :class:`~zoo.weights.WeightsFile`) and how to build the model
    that takes it.

    Args:
        method: registered method name the weights belong to (``"cyclegan"``); it is also the record's ``owner``.
        init_args: constructor arguments of the method class for these weights.
        format: ``"bundle"`` (zoo safetensors file written by :func:`zoo.hub.save_bundle`) or ``"official"``
            (an official state dict loaded through the method's ``load_official_weights``).
        official_net: for ``format="official"``: which network of the method the file holds (``"G_A"``, ``"G"``).
        direction: the translation direction these weights provide (``"a2b"``), if only one.
        paper_metrics: numbers the paper reports for these weights.
        measured_metrics: numbers we measured.
        default: the method's preferred real-data entry: ``zoo.load("<method>")`` takes it when its file is on disk.
        shipped: the file ships inside the package (a small model trained on the toy world, see
            :mod:`zoo.shipped_weights`); ``zoo.load("<method>")`` falls back to it.

    The file fields (``url``, ``sha256``, ``filename``, ``license``, ``origin``, ``notes``) are those of
    :class:`~zoo.weights.WeightsFile`; ``owner`` may be left out (it is ``method``).
    """

    method: str
    owner: str = ""
    init_args: dict[str, Any] = field(default_factory=dict)
    format: Literal["bundle", "official"] = "bundle"
    official_net: str | None = None
    direction: str | None = None
    paper_metrics: dict[str, Any] = field(default_factory=dict)
    measured_metrics: dict[str, Any] = field(default_factory=dict)
    default: bool = False
    shipped: bool = False

    def __post_init__(self) -> None:
        if not self.owner:
            object.__setattr__(self, "owner", self.method)
        elif self.owner != self.method:
            raise ValueError(f"weights of method {self.method!r} cannot be owned by {self.owner!r}")

    def unpublished_hint(self) -> str:
        """How to get weights for the method when none are published: train them."""
        return (f"train one with `zoo fit --config configs/{self.method}.yaml` and load the resulting .ckpt or bundle "
                "with zoo.load(path)")


def register_method(name: str):
    """Class decorator that registers a method (a ``LightningModule``) under ``name``."""

    def decorator(cls: type) -> type:
        if name in METHODS and METHODS[name] is not cls:
            raise ValueError(f"method {name!r} is already registered by {METHODS[name].__qualname__}")
        METHODS[name] = cls
        cls.method_name = name
        return cls

    return decorator


def register_pretrained(name: str, entry: PretrainedEntry) -> PretrainedEntry:
    """Register a method's pretrained weights under ``name`` (``"<method>.<tag>"``), with the licence of
    :data:`PRETRAINED_LICENSES` (the entry's own ``license`` where no row matches)."""
    if not isinstance(entry, PretrainedEntry):
        raise TypeError(f"register_pretrained takes a PretrainedEntry, got {type(entry).__name__}; register other "
                        "weight files with zoo.weights.register_weights")
    return cast(PretrainedEntry, register_weights(name, entry))


def get_method(name: str) -> type:
    """The registered method class called ``name``; a clear error lists the known names."""
    load_catalog()
    try:
        return METHODS[name]
    except KeyError:
        raise KeyError(f"unknown method {name!r}; registered methods: {', '.join(sorted(METHODS))}") from None


def _method_entries() -> dict[str, PretrainedEntry]:
    """The registered weights that belong to a method (the others are files of networks, losses or metrics)."""
    return {name: entry for name, entry in PRETRAINED.items() if isinstance(entry, PretrainedEntry)}


def get_pretrained(name: str) -> PretrainedEntry:
    """The registered pretrained entry of a method called ``name``; a clear error lists close names."""
    load_catalog()
    entries = _method_entries()
    try:
        return entries[name]
    except KeyError:
        method = name.split(".", 1)[0]
        close = [n for n in entries if n.startswith(method + ".")] or sorted(entries)
        raise UnknownModelError(f"unknown pretrained weights {name!r}; known: {', '.join(sorted(close))}") from None


def default_pretrained(method: str, *, weights_dir: str | os.PathLike[str] | None = None) -> tuple[str, str] | None:
    """The weights ``zoo.load("<method>")`` takes, and why: ``(registered name, reason)``, or ``None`` if it has none.

    The best entry on disk wins: a real-data entry whose file is already in ``weights_dir``, ``$ZOO_WEIGHTS_DIR`` or
    the cache (the method's ``default`` entry first, then the others by name); else the method's shipped toy-world
    model. Nothing is downloaded to decide.
    """
    load_catalog()
    entries = {name: entry for name, entry in _method_entries().items() if entry.method == method}
    real = sorted((name for name, entry in entries.items() if not entry.shipped),
                  key=lambda name: (not entries[name].default, name))
    for name in real:
        path = local_weights_path(entries[name], weights_dir=weights_dir, shipped=False)
        if path is not None:
            return name, f"real-data weights found at {path}"
    shipped = sorted(name for name, entry in entries.items() if entry.shipped)
    if shipped:
        others = f"; real-data weights: {', '.join(real)} (not on disk)" if real else ""
        return shipped[0], f"the small model zoo ships, trained on its toy world{others}"
    return None


def list_models(pattern: str = "*", pretrained: bool = False) -> list[str]:
    """Sorted names of registered methods (or, with ``pretrained=True``, pretrained entries) matching ``pattern``."""
    load_catalog()
    names = _method_entries() if pretrained else METHODS
    return sorted(n for n in names if fnmatch.fnmatch(n, pattern))


def list_pretrained(pattern: str = "*") -> list[str]:
    """Sorted names of registered pretrained weights of methods matching ``pattern``."""
    return list_models(pattern, pretrained=True)


def registered_classes() -> dict[str, type]:
    """Model classes that files may name, keyed by ``"<module>.<qualname>"`` and by the short class name.

    These are the registered methods and every subclass of one that is already defined, also under the path of an
    imported package that re-exports them (``zoo.methods.CycleGAN``). Nothing is imported beyond zoo's own methods,
    so looking a name up never runs code named by a file.
    """
    load_catalog()
    table: dict[str, type] = {}
    pending = list(METHODS.values())
    seen: set[type] = set()
    while pending:
        cls = pending.pop()
        if cls in seen:
            continue
        seen.add(cls)
        table[f"{cls.__module__}.{cls.__qualname__}"] = cls
        table.setdefault(cls.__name__, cls)
        # the packages that re-export it, e.g. ``zoo.methods.CycleGAN`` (already imported: nothing is loaded here)
        parts = cls.__module__.split(".")
        for end in range(1, len(parts)):
            package = sys.modules.get(".".join(parts[:end]))
            if package is not None and getattr(package, cls.__name__, None) is cls:
                table.setdefault(f"{package.__name__}.{cls.__name__}", cls)
        pending.extend(cls.__subclasses__())
    return table


def resolve_registered_class(class_path: str) -> type | None:
    """The registered class a file's class path names (full dotted path or short class name), or ``None``."""
    return registered_classes().get(class_path)
