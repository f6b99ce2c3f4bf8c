"""Models from files and names: :func:`load`, :func:`create`, and safetensors bundles (:func:`save_bundle`).

Weight files themselves (records, cache, downloads, sha256 checks and pins, offline rules) are handled by
:mod:`zoo.weights`; its public names are re-exported here (``zoo.hub.resolve_weights``, ``zoo.hub.file_sha256``, ...).
Where weights are looked for, first match wins: the ``weights_dir`` argument, the folder in ``$ZOO_WEIGHTS_DIR``,
the cache ``$ZOO_HOME/weights``; a miss is downloaded unless ``ZOO_OFFLINE=1`` (or ``HF_HUB_OFFLINE=1``). Every load
re-hashes the file, cached or local, so a corrupted or replaced file raises instead of giving silently wrong weights.

A bundle is a folder with ``config.json`` (method, class path, constructor arguments, zoo version) and
``model.safetensors`` (the state dict; the same configuration is repeated in its metadata, so the safetensors file
alone is enough). Nothing here ever unpickles arbitrary objects: bundles are safetensors + JSON, and Lightning or
official checkpoints are read with ``torch.load(..., weights_only=True)``.

Only zoo's own classes are built from files: the class a bundle or checkpoint names must be a registered method (or a
defined subclass of one), looked up without importing anything the file names; other class paths are refused unless
the caller passes ``trust_code=True``. Constructor arguments read from files are type-checked and the model's
parameter count is computed on the ``meta`` device, without allocating, before the model is built; models above
``max_parameters`` (default :data:`DEFAULT_MAX_PARAMETERS`, or ``$ZOO_MAX_PARAMETERS``) are refused.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import inspect
import json
import os
import pickle
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import torch
from torch import nn

from zoo.hf import download_hf_bundle, is_hf_url
from zoo.registry import (
    METHODS,
    PRETRAINED,
    PretrainedEntry,
    default_pretrained,
    get_method,
    resolve_registered_class,
)
from zoo.weights import (
    DownloadError,
    HashMismatchError,
    UnknownModelError,
    WeightsUnavailableError,
    cached_weights_path,
    download,
    download_weights,
    file_sha256,
    is_offline,
    load_catalog,
    local_weights_path,
    resolve_weights,
    verification_status,
    verify_cached,
    verify_file,
    weights_cache_dir,
    zoo_home,
)

__all__ = [
    "DownloadError",
    "HashMismatchError",
    "ModelTooLargeError",
    "UntrustedClassError",
    "UnknownModelError",
    "WeightsDigestError",
    "WeightsUnavailableError",
    "cached_weights_path",
    "create",
    "download",
    "download_weights",
    "file_sha256",
    "is_offline",
    "load",
    "load_bundle",
    "resolve_weights",
    "save_bundle",
    "verification_status",
    "verify_cached",
    "weights_cache_dir",
    "zoo_home",
]

BUNDLE_WEIGHTS = "model.safetensors"
BUNDLE_CONFIG = "config.json"
# Keys LightningCLI adds to hparams so that ``load_from_checkpoint`` can rebuild the class; never constructor args.
_BOOKKEEPING_KEYS = ("_class_path", "_instantiator")
#: Largest model (in parameters) built from a file unless ``max_parameters=`` or ``$ZOO_MAX_PARAMETERS`` allow more:
#: about 7x the largest registered method at its defaults (VSAIT, ~65 M), 2 GB of float32 weights.
DEFAULT_MAX_PARAMETERS = 500_000_000
# Constructor arguments whose name marks a width (must be > 0) or a size/count (must be >= 0).
_WIDTH_NAME = re.compile(r"(^|_)(ngf|ndf|nc|ch|nz|channels|dim|conv_dim|width)(_[ab])?$")
_COUNT_NAME = re.compile(r"^(n|num)_|^n[a-z]+$|(^|_)(size|layers?|blocks|count|scales?|res|repeat_num|comps|rcb)$")


# ----------------------------------------------------------------------------------------------------------- errors


class WeightsDigestError(HashMismatchError, ValueError):
    """A bundle's ``model.safetensors`` differs from the ``weights_sha256`` its ``config.json`` records.

    The message is one line naming the file and both digests.
    """


class UntrustedClassError(ValueError):
    """A bundle or checkpoint names a class that is not a registered zoo method, and ``trust_code`` is off."""


class ModelTooLargeError(ValueError):
    """The configuration read from a file describes a model with more parameters than allowed."""


# --------------------------------------------------------------------------------------------------- resolve names


def _close_matches(name: str) -> list[str]:
    candidates = sorted(set(METHODS) | set(PRETRAINED))
    close = difflib.get_close_matches(name, candidates, n=5, cutoff=0.5)
    prefix = name.split(".", 1)[0]
    return close or [c for c in candidates if c.startswith(prefix)]


def _unknown(name: str) -> UnknownModelError:
    load_catalog()
    close = _close_matches(name)
    hint = f"; did you mean: {', '.join(close)}?" if close else ""
    return UnknownModelError(
        f"unknown model {name!r}{hint} (zoo.list_models() lists methods, zoo.list_models(pretrained=True) weights)"
    )


def _method_entry(name: str) -> PretrainedEntry:
    """The registered weights ``name`` of a method (a model can be built for them), else a clear error."""
    entry = PRETRAINED[name]
    if not isinstance(entry, PretrainedEntry):
        raise ValueError(f"{name!r} is a weights file of {entry.owner}, not the weights of a method: no model can be "
                         f"built for it (zoo.weights.resolve_weights({name!r}) gives its path)")
    return entry


# ---------------------------------------------------------------------------------------------------------- bundles


def _zoo_version() -> str:
    """The installed zoo version (as ``zoo.__version__``), or ``"unknown"`` for a source tree never installed."""
    try:
        return importlib.metadata.version("zoo")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _json_default(value: Any) -> Any:
    if isinstance(value, (Path, os.PathLike)):
        return os.fspath(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} value {value!r} is not JSON-serialisable")


def _model_config(model: nn.Module) -> dict[str, Any]:
    cls = type(model)
    hparams = dict(getattr(model, "hparams", {}) or {})
    init_args = {k: v for k, v in hparams.items() if k not in _BOOKKEEPING_KEYS}
    for key, value in init_args.items():
        try:
            json.dumps(value, default=_json_default)
        except TypeError as err:
            raise TypeError(f"hyperparameter {key!r} of {cls.__qualname__} cannot go into a bundle: {err}") from None
    return {
        "method": getattr(cls, "method_name", None),
        "class_path": f"{cls.__module__}.{cls.__qualname__}",
        "init_args": init_args,
        "zoo_version": _zoo_version(),
    }


def _dedupe_state_dict(state_dict: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Contiguous CPU tensors safetensors can store, plus ``{alias: kept name}`` for tensors that were the same view.

    Tied weights (one tensor under two names) are stored once; other tensors that overlap in memory are copied.
    """
    tensors: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    views: dict[tuple[Any, ...], str] = {}
    storages: set[tuple[str, int]] = set()
    for name, tensor in state_dict.items():
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"state dict entry {name!r} is a {type(tensor).__name__}, not a tensor")
        tensor = tensor.detach()
        storage = (str(tensor.device), tensor.untyped_storage().data_ptr())
        view = (*storage, tensor.storage_offset(), tensor.dtype, tuple(tensor.shape), tensor.stride())
        if tensor.numel() and view in views:
            aliases[name] = views[view]
            continue
        shared = tensor.numel() > 0 and storage in storages
        views[view] = name
        storages.add(storage)
        tensor = tensor.to("cpu")
        tensors[name] = tensor.clone().contiguous() if shared else tensor.contiguous()
    return tensors, aliases


def save_bundle(model: nn.Module, directory: str | os.PathLike[str], *, dtype: torch.dtype | None = None) -> Path:
    """Write ``model`` as a bundle: ``config.json`` plus ``model.safetensors`` (no pickle).

    ``config.json`` holds ``{"method", "class_path", "init_args", "zoo_version", "weights_sha256"}`` (the last the
    hex sha256 of ``model.safetensors``, checked whenever the bundle folder is loaded) with ``init_args`` taken from
    ``model.hparams`` (so the model must have called ``save_hyperparameters()``, and its hyperparameters must be JSON
    values). ``model.safetensors`` holds the state dict, each tied tensor once, and repeats the configuration in its
    string metadata (``zoo_config``), so the safetensors file alone can be loaded too.

    Args:
        model: a module of a registered method (any ``nn.Module`` with ``hparams`` works).
        directory: bundle folder; created if missing, existing bundle files are replaced.
        dtype: store floating-point tensors in this type (``torch.float16`` halves the file; loading casts them back
            to the model's own parameter type); ``None`` keeps each tensor's type.

    Returns:
        The bundle folder.
    """
    from safetensors.torch import save_file

    directory = Path(directory).expanduser()
    directory.mkdir(parents=True, exist_ok=True)
    config = _model_config(model)
    config_text = json.dumps(config, indent=2, default=_json_default, sort_keys=True)
    tensors, aliases = _dedupe_state_dict(model.state_dict())
    if dtype is not None:
        tensors = {name: t.to(dtype) if t.is_floating_point() else t for name, t in tensors.items()}
    metadata = {"format": "pt", "zoo_config": config_text, "zoo_aliases": json.dumps(aliases)}
    save_file(tensors, str(directory / BUNDLE_WEIGHTS), metadata=metadata)
    config["weights_sha256"] = file_sha256(directory / BUNDLE_WEIGHTS)
    (directory / BUNDLE_CONFIG).write_text(json.dumps(config, indent=2, default=_json_default, sort_keys=True) + "\n")
    return directory


def _is_working_folder(entry: str) -> bool:
    """Whether a ``sys.path`` entry is the working folder (``""``, ``"."`` or the current directory)."""
    if entry in ("", "."):
        return True
    try:
        return Path(entry).resolve() == Path.cwd().resolve()
    except OSError:
        return False


def _import_class(class_path: str, source: Path) -> type:
    """Import ``class_path`` (only with ``trust_code``), never searching the working folder or the file's folder."""
    module_name, _, attr = class_path.rpartition(".")
    saved = list(sys.path)
    sys.path[:] = [entry for entry in saved if not _is_working_folder(entry)]
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError, ValueError) as err:
        raise ImportError(f"{source}: cannot import class {class_path!r}: {err}") from err
    finally:
        sys.path[:] = saved
    if not (inspect.isclass(obj) and issubclass(obj, nn.Module)):
        raise TypeError(f"{source}: {class_path!r} is not a torch.nn.Module class; refusing to instantiate it")
    return obj


def _class_from_path(class_path: str, source: Path, *, trust_code: bool) -> type:
    """The class a file names: a registered zoo class (nothing imported), else, only with ``trust_code``, an import."""
    cls = resolve_registered_class(class_path)
    if cls is not None:
        return cls
    if not trust_code:
        raise UntrustedClassError(
            f"{source}: refusing to build class {class_path!r}, which is not a registered zoo method; if you trust "
            "this file, pass zoo.load(..., trust_code=True) (zoo translate --trust-code), which runs code from its "
            "module"
        )
    return _import_class(class_path, source)


def _resolve_class(method: str | None, class_path: str | None, source: Path, *, trust_code: bool = False) -> type:
    """The model class named by a registered ``method`` name (preferred) or a ``class_path`` (see
    :func:`_class_from_path`)."""
    if method:
        load_catalog()
        if method in METHODS:
            return METHODS[method]
    if class_path:
        return _class_from_path(str(class_path), source, trust_code=trust_code)
    if method:
        raise _unknown(method)
    raise ValueError(f"{source} names no model class (neither a method name nor a class path)")


def _constructor_args(cls: type, init_args: Mapping[str, Any]) -> dict[str, Any]:
    """``init_args`` without bookkeeping keys; a ``method`` key is kept only if the constructor takes it."""
    args = {k: v for k, v in init_args.items() if k not in _BOOKKEEPING_KEYS}
    if "method" in args:
        params = inspect.signature(cls.__init__).parameters
        takes_kwargs = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        if "method" not in params and not takes_kwargs:
            args.pop("method")
    return args


def _build(cls: type, init_args: Mapping[str, Any], source: Path) -> nn.Module:
    try:
        return cls(**_constructor_args(cls, init_args))
    except TypeError as err:
        raise TypeError(f"{source}: cannot build {cls.__qualname__} from its saved arguments: {err}") from err


def _max_parameters(max_parameters: int | None) -> int:
    """The parameter limit: the argument, else ``$ZOO_MAX_PARAMETERS``, else :data:`DEFAULT_MAX_PARAMETERS`."""
    if max_parameters is not None:
        if isinstance(max_parameters, bool) or not isinstance(max_parameters, int) or max_parameters <= 0:
            raise ValueError(f"max_parameters must be a positive int, got {max_parameters!r}")
        return max_parameters
    text = os.environ.get("ZOO_MAX_PARAMETERS", "").strip().replace("_", "")
    if not text:
        return DEFAULT_MAX_PARAMETERS
    try:
        value = int(float(text)) if any(c in text for c in ".eE") else int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise ValueError(f"ZOO_MAX_PARAMETERS must be a positive integer (e.g. 2000000000), got {text!r}")
    return value


def _matches(value: Any, annotation: Any) -> bool | None:
    """Whether ``value`` fits a simple annotation (int, float, bool, str, None, Literal, unions of these);
    ``None`` when the annotation is not simple enough to check."""
    if annotation is Any:
        return None
    if annotation is type(None) or annotation is None:
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    origin = get_origin(annotation)
    if origin is Literal:
        return any(value == choice and type(value) is type(choice) for choice in get_args(annotation))
    if origin is Union or type(annotation).__name__ == "UnionType":
        results = [_matches(value, member) for member in get_args(annotation)]
        if any(result is True for result in results):
            return True
        return None if any(result is None for result in results) else False
    return None


def _check_init_args(cls: type, args: Mapping[str, Any], source: Path) -> None:
    """Refuse constructor arguments read from a file whose type contradicts a simple annotation of ``cls.__init__``,
    and widths (``ngf``, ``*_channels``, ``*_dim``) or sizes/counts (``n_*``, ``*_layers``) out of range."""
    try:
        hints = get_type_hints(cls.__init__)
    except Exception:  # annotations that do not evaluate: nothing to check against
        hints = {}
    for name, value in args.items():
        annotation = hints.get(name)
        if annotation is not None and _matches(value, annotation) is False:
            shown = getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")
            raise ValueError(
                f"{source}: argument {name}={value!r} of {cls.__qualname__} is not a {shown}; fix it in the file"
            )
        if isinstance(value, int) and not isinstance(value, bool):
            if _WIDTH_NAME.search(name) and value <= 0:
                raise ValueError(f"{source}: argument {name}={value} of {cls.__qualname__} must be positive")
            if _COUNT_NAME.search(name) and value < 0:
                raise ValueError(f"{source}: argument {name}={value} of {cls.__qualname__} must not be negative")


def _count_parameters(cls: type, args: Mapping[str, Any], source: Path) -> int | None:
    """Parameters of ``cls(**args)``, counted on the ``meta`` device (shapes only, nothing allocated); ``None`` for a
    class that cannot be built there (the check is then skipped and the real build is the only check)."""
    try:
        with torch.device("meta"):
            model = cls(**args)
    except TypeError as err:
        raise TypeError(f"{source}: cannot build {cls.__qualname__} from its saved arguments: {err}") from err
    except (NotImplementedError, RuntimeError):  # an operation the meta device does not support
        return None
    if not isinstance(model, nn.Module):
        return None
    return sum(p.numel() for p in model.parameters())


def _build_from_file(
    cls: type, init_args: Mapping[str, Any], source: Path, *, max_parameters: int | None
) -> nn.Module:
    """Check the arguments a file gives and the size they describe, then build the model."""
    args = _constructor_args(cls, init_args)
    if args.get("compile"):  # a file gives weights, not how to run them: loaded models start eager
        args = {**args, "compile": False}
    _check_init_args(cls, args, source)
    limit = _max_parameters(max_parameters)
    count = _count_parameters(cls, args, source)
    if count is not None and count > limit:
        raise ModelTooLargeError(
            f"{source}: the configuration describes a {cls.__qualname__} with {count:,} parameters, above the limit "
            f"of {limit:,}; if the file is right, raise the limit with zoo.load(..., max_parameters=N) or "
            "ZOO_MAX_PARAMETERS=N"
        )
    return _build(cls, args, source)


def _load_state(model: nn.Module, state_dict: Mapping[str, torch.Tensor], source: Path) -> None:
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as err:
        raise RuntimeError(f"{source}: weights do not fit {type(model).__qualname__}: {err}") from err


def _finish(model: nn.Module, map_location: str | torch.device) -> nn.Module:
    return model.to(map_location).eval()


def _read_bundle_file(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None]:
    """Tensors (aliases restored) and the embedded configuration of a bundle's safetensors file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as err:
        raise ValueError(f"{path} is not a readable safetensors file: {err}") from err
    try:
        aliases = json.loads(metadata.get("zoo_aliases", "{}"))
        config = json.loads(metadata["zoo_config"]) if "zoo_config" in metadata else None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: malformed zoo metadata: {err}") from err
    for alias, kept in aliases.items():
        tensors[alias] = tensors[kept]
    return tensors, config


def _is_bundle_file(path: Path) -> bool:
    """Whether a safetensors file carries zoo's configuration (in its metadata or a ``config.json`` beside it)."""
    from safetensors.torch import safe_open

    if path.name == BUNDLE_WEIGHTS and path.with_name(BUNDLE_CONFIG).is_file():
        return True
    from safetensors import SafetensorError

    try:
        with safe_open(str(path), framework="pt") as f:
            return "zoo_config" in (f.metadata() or {})
    except (SafetensorError, OSError) as err:
        raise ValueError(f"{path} is not a readable safetensors file: {err}") from err


def load_bundle(
    directory: str | os.PathLike[str],
    map_location: str | torch.device = "cpu",
    *,
    trust_code: bool = False,
    max_parameters: int | None = None,
) -> nn.Module:
    """Rebuild a model saved by :func:`save_bundle`.

    Args:
        directory: the bundle folder, or its ``model.safetensors`` file (whose metadata carries the configuration;
            a ``config.json`` next to a ``model.safetensors`` takes precedence).
        map_location: device the model is moved to.
        trust_code: build a class that is not a registered zoo method, importing (and so running code from) the
            module the bundle names; see :func:`load`.
        max_parameters: largest parameter count accepted; see :func:`load`.

    Returns:
        The model in eval mode.
    """
    path = Path(directory).expanduser()
    if path.is_dir():
        weights = path / BUNDLE_WEIGHTS
        if not weights.is_file():
            raise FileNotFoundError(f"{path} is not a zoo bundle: {BUNDLE_WEIGHTS} is missing")
    elif path.is_file():
        weights = path
    else:
        raise FileNotFoundError(f"no bundle at {path}")
    return _load_bundle_file(weights, map_location=map_location, trust_code=trust_code, max_parameters=max_parameters)


def _check_bundle_digest(weights: Path, expected: Any, config_file: Path) -> None:
    """Compare ``weights`` with the ``weights_sha256`` of its ``config.json`` (bundles without one are not checked)."""
    if expected is None:
        return
    if not isinstance(expected, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", expected):
        raise ValueError(f"{config_file}: weights_sha256 must be a 64-digit hex string, got {expected!r}; "
                         f"re-save the bundle with zoo.hub.save_bundle")
    actual = file_sha256(weights)
    if actual != expected.lower():
        raise WeightsDigestError(
            f"sha256 mismatch for {weights}: {config_file.name} records {expected.lower()}, the file has {actual}; "
            f"the file is corrupt or was modified: restore the original {BUNDLE_WEIGHTS} or re-save the bundle"
        )


def _load_bundle_file(
    weights: Path,
    *,
    map_location: str | torch.device,
    entry: PretrainedEntry | None = None,
    trust_code: bool = False,
    max_parameters: int | None = None,
    check_hash: bool = True,
) -> nn.Module:
    config_file = weights.with_name(BUNDLE_CONFIG)
    folder_config = None
    if weights.name == BUNDLE_WEIGHTS and config_file.is_file():
        try:
            folder_config = json.loads(config_file.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{config_file} is not valid JSON: {err}") from err
        if check_hash and isinstance(folder_config, Mapping):
            _check_bundle_digest(weights, folder_config.get("weights_sha256"), config_file)
    tensors, config = _read_bundle_file(weights)
    if folder_config is not None:
        config = folder_config
    if entry is not None:
        config = {**(config or {}), "method": entry.method}
        config["init_args"] = {**config.get("init_args", {}), **entry.init_args}
    if config is None:
        raise ValueError(f"{weights} has no zoo configuration (no {BUNDLE_CONFIG} beside it, no zoo_config metadata)")
    init_args = config.get("init_args", {})
    if not isinstance(init_args, Mapping):
        raise ValueError(f"{weights}: init_args must be a JSON object, got {type(init_args).__name__}")
    cls = _resolve_class(config.get("method"), config.get("class_path"), weights, trust_code=trust_code)
    model = _build_from_file(cls, init_args, weights, max_parameters=max_parameters)
    _load_state(model, tensors, weights)
    return _finish(model, map_location)


# --------------------------------------------------------------------------------------------------- checkpoints


def _torch_load(path: Path) -> Any:
    """``torch.load`` restricted to tensors and plain containers; anything else is refused, never executed."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise pickle.UnpicklingError(
            f"refusing to load {path}: it contains pickled objects other than tensors and plain containers, which "
            f"weights_only=True rejects (zoo never unpickles arbitrary code). Details: {err}"
        ) from err
    except (RuntimeError, EOFError, OSError) as err:
        raise ValueError(f"{path} is not a readable torch checkpoint: {err}") from err


def _is_lightning_checkpoint(obj: Any) -> bool:
    return isinstance(obj, dict) and "state_dict" in obj and (
        "pytorch-lightning_version" in obj or "hyper_parameters" in obj
    )


def _load_lightning(
    path: Path,
    ckpt: dict[str, Any],
    *,
    method: str | None,
    map_location: str | torch.device,
    trust_code: bool = False,
    max_parameters: int | None = None,
) -> nn.Module:
    hparams = dict(ckpt.get("hyper_parameters") or {})
    stored_method = ckpt.get("zoo_method") if isinstance(ckpt.get("zoo_method"), str) else None
    if stored_method is None and isinstance(hparams.get("method"), str):
        stored_method = hparams["method"]
    if method is not None:
        cls = get_method(method)
    elif hparams.get("_class_path"):
        cls = _class_from_path(str(hparams["_class_path"]), path, trust_code=trust_code)
    elif stored_method:
        cls = _resolve_class(stored_method, None, path)
    else:
        raise ValueError(
            f"{path} does not say which model class it holds (no hyper_parameters['_class_path'] or 'method'); "
            "pass method=NAME, e.g. zoo.load(path, method='cyclegan')"
        )
    model = _build_from_file(cls, hparams, path, max_parameters=max_parameters)
    _load_state(model, ckpt["state_dict"], path)
    return _finish(model, map_location)


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path), device="cpu")
    return _torch_load(path)


def _load_official(
    path: Path,
    *,
    method: str,
    net: str | None,
    init_args: Mapping[str, Any],
    map_location: str | torch.device,
    state_dict: Any = None,
) -> nn.Module:
    cls = get_method(method)
    if not callable(getattr(cls, "load_official_weights", None)):
        raise TypeError(f"method {method!r} ({cls.__qualname__}) cannot load official weights")
    model = _build(cls, init_args, path)
    state_dict = _read_state_dict(path) if state_dict is None else state_dict
    if net is None:
        model.load_official_weights(state_dict)
    else:
        model.load_official_weights(state_dict, net=net)
    return _finish(model, map_location)


# ------------------------------------------------------------------------------------------------------ public API


def load(
    name_or_path: str | os.PathLike[str],
    *,
    map_location: str | torch.device = "cpu",
    check_hash: bool = True,
    weights_dir: str | os.PathLike[str] | None = None,
    method: str | None = None,
    net: str | None = None,
    init_args: dict[str, Any] | None = None,
    trust_code: bool = False,
    max_parameters: int | None = None,
    verbose: bool = True,
) -> nn.Module:
    """Load a model with weights, ready for inference.

    ``name_or_path`` may be:

    1. a Lightning ``.ckpt`` written by ``zoo fit``: the class comes from ``hyper_parameters["_class_path"]``
       (stored by LightningCLI) or a ``"method"`` hyperparameter, or from ``method=``; the model is rebuilt from
       the saved constructor arguments;
    2. a bundle folder written by :func:`save_bundle`, or its ``model.safetensors``;
    3. a registered pretrained name such as ``"cyclegan.horse2zebra"``, resolved by :func:`resolve_weights`
       (local folders first, sha256 checked on every load), or a method name (``"vsait"``): its best weights on
       disk, real-data weights when their file is in ``weights_dir``, ``$ZOO_WEIGHTS_DIR`` or the cache, else the
       small toy-world model that ships with zoo (:func:`zoo.registry.default_pretrained`; the choice is printed);
    4. an official authors' checkpoint, with ``method=`` and ``net=`` naming the method and the network it holds;
       it goes through the method's ``load_official_weights``.

    Files are never unpickled beyond tensors and plain containers (``weights_only=True``), and only zoo's own
    classes are built from them: the class a bundle or checkpoint names must be a registered method (or a defined
    subclass of one), found without importing anything the file names. Before building, the constructor arguments
    the file gives are type-checked and the parameter count they describe is computed on the ``meta`` device (no
    memory allocated); a larger model than ``max_parameters`` is refused.

    Args:
        name_or_path: registered pretrained name or path.
        map_location: device the model is moved to.
        check_hash: verify the sha256 of registered weights (and of a ``<file>.sha256`` pin beside a local file).
        weights_dir: folder searched first for registered weights.
        method: registered method name of an official checkpoint, or of a ``.ckpt`` that does not record its class.
        net: network of ``method`` an official checkpoint holds (``"G"``, ``"G_A"``); the method's default if None.
        init_args: constructor arguments of ``method`` for an official checkpoint whose architecture differs from the
            method's defaults (e.g. ``{"ngf": 32}``).
        trust_code: also build a class that is not a registered zoo method: its module is imported, which runs
            code from the module the file names (never from the working folder or the file's own folder). Pass it
            only for files you trust.
        max_parameters: largest parameter count a model read from a file may have; ``None`` uses
            ``$ZOO_MAX_PARAMETERS`` or :data:`DEFAULT_MAX_PARAMETERS` (500 M).
        verbose: for a method name, print which weights were chosen and why (on stderr).

    Returns:
        The model (a ``LightningModule`` of a registered method) in eval mode on ``map_location``; it records what it
        was loaded from in ``model.zoo_source`` (the registered name or the path).

    Raises:
        UnknownModelError: an unknown name (the message lists close matches).
        ValueError: a method name without any registered weights (use :func:`create`), or a file zoo cannot
            identify.
        UntrustedClassError: the file names a class that is not a registered method, and ``trust_code`` is off.
        ModelTooLargeError: the file's configuration describes more than ``max_parameters`` parameters.
    """
    if is_hf_url(name_or_path):  # a bundle published with zoo publish --repo-id, fetched into huggingface_hub's cache
        folder = download_hf_bundle(os.fspath(name_or_path))
        model = _load_path(folder, map_location=map_location, check_hash=check_hash, method=method, net=net,
                           init_args=init_args or {}, trust_code=trust_code, max_parameters=max_parameters)
        return _with_source(model, os.fspath(name_or_path))
    path = Path(name_or_path).expanduser()
    if path.exists():
        model = _load_path(path, map_location=map_location, check_hash=check_hash, method=method, net=net,
                           init_args=init_args or {}, trust_code=trust_code, max_parameters=max_parameters)
        return _with_source(model, str(path))
    name = os.fspath(name_or_path)
    load_catalog()
    if name in PRETRAINED:
        model = _load_pretrained(name, map_location=map_location, check_hash=check_hash, weights_dir=weights_dir,
                                 max_parameters=max_parameters)
        return _with_source(model, name)
    if name in METHODS:
        chosen = default_pretrained(name, weights_dir=weights_dir)
        if chosen is not None:
            weights_name, reason = chosen
            model = _load_pretrained(weights_name, map_location=map_location, check_hash=check_hash,
                                     weights_dir=weights_dir, max_parameters=max_parameters)
            if verbose:
                path = local_weights_path(weights_name, weights_dir=weights_dir)
                print(f"zoo.load({name!r}): {weights_name} ({reason})\n  file: {path}", file=sys.stderr)
            return _with_source(model, weights_name)
        tags = [n for n in sorted(PRETRAINED) if n.startswith(name + ".")]
        offer = f"pretrained weights: {', '.join(tags)}" if tags else "no pretrained weights are registered for it yet"
        raise ValueError(
            f"{name!r} is a method, not a set of weights; use zoo.create({name!r}) for a randomly initialised model, "
            f"or load one of its {offer}"
        )
    if os.sep in name or "/" in name or path.suffix in {".ckpt", ".safetensors", ".pth", ".pt", ".bin"}:
        raise FileNotFoundError(f"no such file or folder: {path}")
    raise _unknown(name)


def _with_source(model: nn.Module, source: str) -> nn.Module:
    """``model``, noting what it was loaded from (``model.zoo_source``: a registered name or a path)."""
    model.zoo_source = source
    return model


def _load_path(
    path: Path,
    *,
    map_location: str | torch.device,
    check_hash: bool,
    method: str | None,
    net: str | None,
    init_args: dict[str, Any],
    trust_code: bool = False,
    max_parameters: int | None = None,
) -> nn.Module:
    if path.is_dir():
        if not (path / BUNDLE_WEIGHTS).is_file():
            raise FileNotFoundError(f"{path} is a folder but not a zoo bundle: {BUNDLE_WEIGHTS} is missing")
        path = path / BUNDLE_WEIGHTS
    if check_hash:
        verify_file(path, None, pin_if_unknown=False)
    if path.suffix == ".safetensors":
        if method is not None and not _is_bundle_file(path):
            return _load_official(path, method=method, net=net, init_args=init_args, map_location=map_location)
        return _load_bundle_file(path, map_location=map_location, trust_code=trust_code,
                                 max_parameters=max_parameters, check_hash=check_hash)
    obj = _torch_load(path)
    if _is_lightning_checkpoint(obj):
        return _load_lightning(path, obj, method=method, map_location=map_location, trust_code=trust_code,
                               max_parameters=max_parameters)
    if method is not None:
        return _load_official(
            path, method=method, net=net, init_args=init_args, map_location=map_location, state_dict=obj
        )
    raise ValueError(
        f"{path} is not a Lightning checkpoint or a zoo bundle; if it is an official checkpoint, pass "
        "method= and net=, e.g. zoo.load(path, method='cyclegan', net='G_A')"
    )


def _load_pretrained(
    name: str,
    *,
    map_location: str | torch.device,
    check_hash: bool,
    weights_dir: str | os.PathLike[str] | None,
    max_parameters: int | None = None,
) -> nn.Module:
    entry = _method_entry(name)
    path = resolve_weights(name, weights_dir=weights_dir, check_hash=check_hash)
    if entry.format == "official":
        return _load_official(
            path, method=entry.method, net=entry.official_net, init_args=entry.init_args, map_location=map_location
        )
    return _load_bundle_file(path, map_location=map_location, entry=entry, max_parameters=max_parameters,
                             check_hash=check_hash)


def create(name: str, **overrides: Any) -> nn.Module:
    """A randomly initialised model of a registered method (in training mode).

    Args:
        name: a method name (``"cyclegan"``), or a pretrained name whose ``init_args`` are used as the starting
            configuration (its weights are not loaded).
        **overrides: constructor arguments that replace the defaults.

    Returns:
        The new model.

    Raises:
        UnknownModelError: ``name`` is not registered (the message lists close matches).
    """
    load_catalog()
    if name in METHODS:
        return METHODS[name](**overrides)
    if name in PRETRAINED:
        entry = _method_entry(name)
        return get_method(entry.method)(**{**entry.init_args, **overrides})
    raise _unknown(name)
