"""A flat registry of methods and of pretrained weights.

Methods register themselves with ``@register_method("name")`` when their module is imported
(``zoo/methods/__init__.py`` imports every method file). Pretrained weights are described by a
:class:`PretrainedEntry` and registered under a dotted ``method.tag`` name, e.g.
``"cyclegan.horse2zebra"``. Both tables are plain dicts; a duplicate name raises.

The licence of every registered set of weights is set here, in :data:`PRETRAINED_LICENSES`, so that one table
holds them all (``zoo list --pretrained`` shows it; ``THIRD_PARTY_NOTICES.md`` gives the sources).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import sys
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "PretrainedEntry",
    "register_method",
    "register_pretrained",
    "get_method",
    "get_pretrained",
    "list_models",
    "list_pretrained",
    "METHODS",
    "PRETRAINED",
    "PRETRAINED_LICENSES",
    "pretrained_license",
]

METHODS: dict[str, type] = {}
PRETRAINED: dict[str, PretrainedEntry] = {}


@dataclass(frozen=True)
class PretrainedEntry:
    """Where a set of weights lives and how to build the model that takes them.

    Args:
        method: registered method name the weights belong to (``"cyclegan"``).
        init_args: constructor arguments of the method class for these weights.
        url: download location (``https://`` or ``file://``); ``None`` when no weights are published.
        sha256: full hex digest of the file at ``url``; checked on every load.
        filename: name of the file in the cache (defaults to the last part of ``url``).
        format: ``"bundle"`` (zoo safetensors file written by :func:`zoo.hub.save_bundle`) or ``"official"``
            (an official state dict loaded through the method's ``load_official_weights``).
        official_net: for ``format="official"``: which network of the method the file holds (``"G_A"``, ``"G"``).
        direction: the translation direction these weights provide (``"a2b"``), if only one.
        license: licence of the weights: an SPDX-like id, ``"non-commercial (<why>)"`` or ``"unknown (<why>)"``;
            replaced at registration by the matching :data:`PRETRAINED_LICENSES` row.
        origin: where the weights come from (paper / repository).
        paper_metrics: numbers the paper reports for these weights.
        measured_metrics: numbers we measured.
        notes: anything a user should know (e.g. the official direction flags).
        default: ``zoo.load("<method>")`` resolves this entry (e.g. a method whose weights are not published yet).
    """

    method: str
    init_args: dict[str, Any] = field(default_factory=dict)
    url: str | None = None
    sha256: str | None = None
    filename: str | None = None
    format: Literal["bundle", "official"] = "bundle"
    official_net: str | None = None
    direction: str | None = None
    license: str = "unknown"
    origin: str = ""
    paper_metrics: dict[str, Any] = field(default_factory=dict)
    measured_metrics: dict[str, Any] = field(default_factory=dict)
    notes: str = ""
    default: bool = False

    @property
    def file_name(self) -> str | None:
        """Name of the cached file."""
        if self.filename:
            return self.filename
        return self.url.rsplit("/", 1)[-1] if self.url else None


def register_method(name: str):
    """Class decorator that registers a method (a ``LightningModule``) under ``name``."""

    def decorator(cls: type) -> type:
        if name in METHODS and METHODS[name] is not cls:
            raise ValueError(f"method {name!r} is already registered by {METHODS[name].__qualname__}")
        METHODS[name] = cls
        cls.method_name = name
        return cls

    return decorator


_CYCLEGAN_CODE = "code BSD-2-Clause"
_IMAGENET = "ImageNet data"  # research and educational use only
_CITYSCAPES = "Cityscapes data"  # non-commercial use only

#: Licence of each registered set of weights: (shell-style pattern of registered names, licence); the first match
#: wins. Weights trained on data whose terms forbid commercial use, or published under a non-commercial licence, are
#: marked ``non-commercial``; the code licence of the repository the weights come from is given in every case.
PRETRAINED_LICENSES: tuple[tuple[str, str], ...] = (
    ("cyclegan.cityscapes_*", f"non-commercial ({_CITYSCAPES}; {_CYCLEGAN_CODE})"),
    ("cyclegan.apple2orange", f"non-commercial ({_IMAGENET}; {_CYCLEGAN_CODE})"),
    ("cyclegan.orange2apple", f"non-commercial ({_IMAGENET}; {_CYCLEGAN_CODE})"),
    ("cyclegan.horse2zebra", f"non-commercial ({_IMAGENET}; {_CYCLEGAN_CODE})"),
    ("cyclegan.zebra2horse", f"non-commercial ({_IMAGENET}; {_CYCLEGAN_CODE})"),
    ("cyclegan.*", "BSD-2-Clause (data terms not stated)"),
    ("pix2pix.*", "BSD-2-Clause (data terms not stated)"),
    ("munit.edges2shoes", "non-commercial (CC-BY-NC-SA-4.0)"),
    ("decent.label2city", f"non-commercial ({_CITYSCAPES}; code licence not stated)"),
    ("decent.horse2zebra", f"non-commercial ({_IMAGENET}; code licence not stated)"),
    ("decent.*", "unknown (code licence not stated)"),
    ("vsait.gta2cityscapes", f"non-commercial (CC-BY-NC-4.0 code; {_CITYSCAPES})"),
    ("srgan.imagenet_*", f"non-commercial ({_IMAGENET}; code Apache-2.0)"),
    ("srresnet.imagenet_*", f"non-commercial ({_IMAGENET}; code Apache-2.0)"),
)


def pretrained_license(name: str, default: str = "unknown") -> str:
    """The :data:`PRETRAINED_LICENSES` licence of a registered name, or ``default`` when no row matches."""
    return next((value for pattern, value in PRETRAINED_LICENSES if fnmatch.fnmatchcase(name, pattern)), default)


def register_pretrained(name: str, entry: PretrainedEntry) -> PretrainedEntry:
    """Register pretrained weights under ``name`` (``"<method>.<tag>"``), with the licence of
    :data:`PRETRAINED_LICENSES` (the entry's own ``license`` where no row matches)."""
    if name in PRETRAINED:
        raise ValueError(f"pretrained weights {name!r} are already registered")
    if "." not in name or name.split(".", 1)[0] != entry.method:
        raise ValueError(f"pretrained name {name!r} must look like '{entry.method}.<tag>'")
    licence = pretrained_license(name, entry.license)
    if not licence.strip():
        raise ValueError(f"pretrained weights {name!r} have an empty licence; give license='unknown (<why>)' or add "
                         "a row to zoo.registry.PRETRAINED_LICENSES")
    entry = dataclasses.replace(entry, license=licence) if licence != entry.license else entry
    PRETRAINED[name] = entry
    return entry


def _ensure_methods_imported() -> None:
    import zoo.methods  # noqa: F401  (importing registers every method)


def get_method(name: str) -> type:
    """The registered method class called ``name``; a clear error lists the known names."""
    _ensure_methods_imported()
    try:
        return METHODS[name]
    except KeyError:
        raise KeyError(f"unknown method {name!r}; registered methods: {', '.join(sorted(METHODS))}") from None


def get_pretrained(name: str) -> PretrainedEntry:
    """The registered pretrained entry called ``name``; a clear error lists close names."""
    _ensure_methods_imported()
    try:
        return PRETRAINED[name]
    except KeyError:
        method = name.split(".", 1)[0]
        close = [n for n in PRETRAINED if n.startswith(method + ".")] or sorted(PRETRAINED)
        raise KeyError(f"unknown pretrained weights {name!r}; known: {', '.join(sorted(close))}") from None


def list_models(pattern: str = "*", pretrained: bool = False) -> list[str]:
    """Sorted names of registered methods (or, with ``pretrained=True``, pretrained entries) matching ``pattern``."""
    _ensure_methods_imported()
    names = PRETRAINED if pretrained else METHODS
    return sorted(n for n in names if fnmatch.fnmatch(n, pattern))


def list_pretrained(pattern: str = "*") -> list[str]:
    """Sorted names of registered pretrained weights matching ``pattern``."""
    return list_models(pattern, pretrained=True)


def registered_classes() -> dict[str, type]:
    """Model classes that files may name, keyed by ``"<module>.<qualname>"`` and by the short class name.

    These are the registered methods and every subclass of one that is already defined, also under the path of an
    imported package that re-exports them (``zoo.methods.CycleGAN``). Nothing is imported beyond zoo's own methods,
    so looking a name up never runs code named by a file.
    """
    _ensure_methods_imported()
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
