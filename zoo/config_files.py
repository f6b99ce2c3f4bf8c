"""The configs shipped with zoo: find, list and copy them.

The YAML files of ``configs/`` (paper settings) and ``configs/tiny/`` (seconds-long runs on the embedded toy world)
are installed with the package as ``zoo/configs``. A ``--config`` path that does not exist where the command runs
resolves to the shipped file of the same name, so ``zoo fit --config configs/decent.yaml`` works from any folder::

    >>> resolve_config("configs/tiny/cyclegan.yaml").name
    'cyclegan.yaml'
    >>> "tiny/cyclegan" in list_configs()
    True
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

__all__ = ["config_dir", "list_configs", "resolve_config", "copy_config", "load_config"]


def config_dir() -> Path:
    """The folder of the shipped configs (``zoo/configs`` inside the installed package)."""
    return Path(__file__).resolve().parent / "configs"


def list_configs() -> list[str]:
    """Names of the shipped configs without ``.yaml``, under :func:`config_dir`: ``['bicubic', ..., 'tiny/vsait']``."""
    root = config_dir()
    return sorted(str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.yaml"))


def _shipped(name: str | Path) -> Path | None:
    """The shipped file named ``decent``, ``tiny/decent``, ``decent.yaml`` or ``configs/tiny/decent.yaml``; or None."""
    parts = Path(name).parts
    if "configs" in parts:  # anything up to the last 'configs' folder is where the user thought the file was
        parts = parts[len(parts) - parts[::-1].index("configs") :]
    if not parts:
        return None
    relative = Path(*parts)
    candidate = config_dir() / (relative if relative.suffix in (".yaml", ".yml") else relative.with_suffix(".yaml"))
    return candidate if candidate.is_file() else None


def resolve_config(path: str | Path) -> Path:
    """``path`` itself when it exists, else the shipped config it names.

    Raises:
        FileNotFoundError: neither exists; the message lists the shipped names.
    """
    given = Path(path)
    if given.exists():
        return given
    shipped = _shipped(given)
    if shipped is None:
        raise FileNotFoundError(
            f"config file not found: {path} (and no shipped config of that name; `zoo configs` lists them)"
        )
    return shipped


def copy_config(name: str, destination: str | Path, *, overwrite: bool = False) -> Path:
    """Write an editable copy of the shipped config ``name`` to ``destination`` (a file, or a folder to put it in).

    Raises:
        FileNotFoundError: ``name`` is not a shipped config.
        FileExistsError: the destination exists and ``overwrite`` is False.
    """
    source = _shipped(name)
    if source is None:
        raise FileNotFoundError(f"no shipped config named '{name}'; `zoo configs` lists them")
    target = Path(destination)
    if target.is_dir():
        target = target / source.name
    if target.exists() and not overwrite:
        raise FileExistsError(f"'{target}' exists; pass --overwrite to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


def load_config(path: str | Path) -> dict[str, Any]:
    """A config file (or shipped config name) as a plain dict, with its omegaconf interpolations resolved, e.g.
    SRGAN's ``image_size: ${data.init_args.crop_size}`` becomes the crop size."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.load(resolve_config(path)), resolve=True)
