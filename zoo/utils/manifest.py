"""Resumable outputs: files that appear whole or not at all, and the manifest of a translated dataset.

``zoo translate`` writes each output to a hidden partial file beside its final path and renames it into place
(:func:`write_atomically`), so a killed run never leaves a half-written file under an output's name; the partial
files a kill leaves behind are removed by the next run (:func:`remove_partial_files`).

:class:`TranslationManifest` (``OUT/.zoo_translate.json``) records the settings of the run and, per input, the
outputs written with their sizes, the annotations copied beside them and the inputs that could not be read. A later
run with the same settings skips every input whose outputs are all present with their recorded sizes; a run with other
settings is refused unless told to start over. The manifest itself is replaced atomically, at most every
``save_interval`` seconds and at the end; an input finished after the last save is simply translated again.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["MANIFEST_NAME", "TranslationManifest", "copy_atomically", "partial_path", "remove_partial_files",
           "write_atomically"]

MANIFEST_NAME = ".zoo_translate.json"
_PARTIAL = ".zoo-partial"
_FORMAT = 1


def partial_path(path: Path) -> Path:
    """A hidden temporary name beside ``path`` that keeps its suffix (so writers pick the format from it)."""
    return path.with_name(f".{path.stem}.{secrets.token_hex(4)}{_PARTIAL}{path.suffix}")


def write_atomically(path: str | os.PathLike[str], write: Callable[[Path], Any]) -> Path:
    """Call ``write(temporary_path)`` and rename the result to ``path``: ``path`` is the old file or the whole new one.

    The temporary file is hidden, lies in ``path``'s folder (created if missing) and keeps ``path``'s suffix; it is
    removed if ``write`` raises.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(path)
    try:
        write(partial)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path


def copy_atomically(source: str | os.PathLike[str], destination: str | os.PathLike[str], *, link: bool = False) -> Path:
    """Copy ``source`` to ``destination`` (content and times), or hard-link it with ``link`` (falling back to a copy
    across file systems); never leaves a partial ``destination``."""

    def write(partial: Path) -> None:
        if link:
            try:
                os.link(source, partial)
                return
            except OSError:
                pass
        shutil.copy2(source, partial)

    return write_atomically(destination, write)


def remove_partial_files(folder: str | os.PathLike[str]) -> int:
    """Delete the partial files a killed run left below ``folder``; returns how many."""
    count = 0
    for root, _, names in os.walk(folder):
        for name in names:
            if name.startswith(".") and _PARTIAL in name:
                (Path(root) / name).unlink(missing_ok=True)
                count += 1
    return count


class TranslationManifest:
    """What has been translated into an output folder, with which settings.

    Args:
        folder: the output folder (the manifest is ``folder / MANIFEST_NAME``).
        settings: JSON-ready description of the run (model fingerprint, direction, seed, style policy, ...).
        overwrite: forget an existing manifest (every input is translated again) instead of resuming from it.
        save_interval: least seconds between two automatic saves.

    Raises:
        ValueError: the folder holds a manifest written with other settings (and not ``overwrite``); the message
            names the settings that differ.
    """

    def __init__(self, folder: str | os.PathLike[str], settings: Mapping[str, Any], *, overwrite: bool = False,
                 save_interval: float = 2.0) -> None:
        self.folder = Path(folder)
        self.path = self.folder / MANIFEST_NAME
        self.settings = json.loads(json.dumps(dict(settings)))
        self.save_interval = save_interval
        self.done: dict[str, dict[str, Any]] = {}
        self.unreadable: dict[str, str] = {}
        self.copied: dict[str, int] = {}
        self._last_save = 0.0
        if self.path.is_file() and not overwrite:
            record = json.loads(self.path.read_text())
            previous = record.get("settings", {})
            changed = sorted(k for k in {*previous, *self.settings} if previous.get(k) != self.settings.get(k))
            if changed and record.get("done"):  # a run that finished nothing binds nothing
                details = "; ".join(f"{k}: {previous.get(k)!r} then, {self.settings.get(k)!r} now" for k in changed)
                raise ValueError(f"'{self.folder}' holds translations made with other settings ({details}); pass "
                                 "--overwrite to translate everything again, or choose another --output")
            if not changed:
                self.done = record.get("done", {})
                self.unreadable = record.get("unreadable", {})
                self.copied = record.get("copied", {})

    def is_done(self, relative: str) -> bool:
        """Whether ``relative`` (an input's relative path) was translated and all its outputs and annotations are
        still there with their recorded sizes."""
        entry = self.done.get(relative)
        if entry is None:
            return False
        files = {**entry["outputs"], **entry.get("annotations", {})}
        return all(_size(self.folder / name) == size for name, size in files.items())

    def is_copied(self, relative: str) -> bool:
        """Whether the unattached file ``relative`` was copied and is still there with its recorded size."""
        return relative in self.copied and _size(self.folder / relative) == self.copied[relative]

    def mark_done(self, relative: str, outputs: list[Path], annotations: list[Path] = ()) -> None:
        """Record the outputs (and copied annotations) of the input ``relative``; saves when the interval passed."""
        self.unreadable.pop(relative, None)
        self.done[relative] = {"outputs": self._sizes(outputs), "annotations": self._sizes(annotations)}
        self.save(force=False)

    def mark_unreadable(self, relative: str, reason: str) -> None:
        self.done.pop(relative, None)
        self.unreadable[relative] = reason
        self.save(force=False)

    def mark_copied(self, relative: str) -> None:
        self.copied[relative] = _size(self.folder / relative)
        self.save(force=False)

    def _sizes(self, files: list[Path] | tuple[Path, ...]) -> dict[str, int]:
        return {Path(f).relative_to(self.folder).as_posix(): _size(Path(f)) for f in files}

    def save(self, *, force: bool = True) -> None:
        """Replace the manifest file atomically (unless ``force`` is false and the last save is recent)."""
        now = time.monotonic()
        if not force and now - self._last_save < self.save_interval:
            return
        from zoo import __version__

        record = {"format": _FORMAT, "zoo_version": __version__, "settings": self.settings,
                  "done": self.done, "unreadable": self.unreadable, "copied": self.copied}
        text = json.dumps(record, indent=1, sort_keys=True)
        write_atomically(self.path, lambda partial: partial.write_text(text))
        self._last_save = now


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1
