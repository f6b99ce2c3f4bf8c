"""Up-front checks of a dataset's image files, so that a bad file stops a run before its first iteration.

:func:`check_image_files` opens every file and decodes as much of it as it takes to prove it readable, at a fraction
of the cost of full decoding:

- the header must identify an image Pillow can read, at least one pixel wide and high, in a mode zoo can convert
  (:func:`zoo.data.io.load_image`);
- PNG files are verified chunk by chunk (checksums and a complete stream, without inflating the pixels);
- JPEG files are decoded at 1/8 scale (the whole entropy-coded stream is read, so truncation is found);
- other formats (BMP, TIFF, WebP, PPM) are decoded fully.

Results are cached per folder under ``$ZOO_HOME/file-checks`` (see :func:`zoo.weights.zoo_home`) and keyed by
each file's size and modification time, so a dataset is checked once and re-checked only where files change.
:class:`~zoo.data.datamodule.ZooDataModule` runs the checks in ``setup`` and either raises :class:`BadFilesError`,
naming every bad file in one message, or (``skip_bad_files=True``) leaves those files out and lists them.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image
from tqdm.auto import tqdm

from zoo.weights import zoo_home

from .io import SUPPORTED_MODES

__all__ = ["BadFilesError", "FileProblem", "check_image_files", "describe_problems", "file_checks_cache_dir"]

#: How many bad files an error message names before it only counts the rest.
MAX_LISTED = 20

_CACHE_VERSION = 1


@dataclass(frozen=True)
class FileProblem:
    """A file a dataset cannot use, and why (e.g. ``image file is truncated``)."""

    path: Path
    reason: str


class BadFilesError(ValueError):
    """Some files of a dataset cannot be used; :attr:`problems` lists every one of them."""

    def __init__(self, message: str, problems: list[FileProblem]) -> None:
        super().__init__(message)
        self.problems = problems


def file_checks_cache_dir() -> Path:
    """Folder of the check results: ``zoo_home() / "file-checks"`` (one JSON file per image folder)."""
    return zoo_home() / "file-checks"


def describe_problems(problems: list[FileProblem]) -> str:
    """``'a.jpg' (image file is truncated), 'b.png' (0x0 pixels)`` in one line; beyond :data:`MAX_LISTED` files
    only a count (``and 3 more``)."""
    listed = ", ".join(f"'{problem.path}' ({problem.reason})" for problem in problems[:MAX_LISTED])
    return listed + (f" and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else "")


# --------------------------------------------------------------------------------------------------------------------
# Checking one file
# --------------------------------------------------------------------------------------------------------------------


def _inspect(path: Path) -> tuple[int, int, str]:
    """(width, height, reason) of one file; ``reason`` is empty when the file is readable."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width < 1 or height < 1:
                return width, height, f"{width}x{height} pixels"
            if image.mode not in SUPPORTED_MODES:
                return width, height, f"unsupported pixel mode '{image.mode}'"
            if image.format == "PNG":
                image.verify()  # chunk checksums and a complete stream, without inflating the pixels
            elif image.format == "JPEG":
                image.draft(image.mode, (max(1, width // 8), max(1, height // 8)))
                image.load()  # reads the whole entropy-coded stream at 1/8 scale: truncation shows
            else:
                image.load()
            return width, height, ""
    except FileNotFoundError:
        return 0, 0, "file not found"
    except Image.DecompressionBombError as error:
        return 0, 0, str(error).split(".")[0]
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        text = str(error).strip() or type(error).__name__
        if text.startswith("cannot identify image file"):
            text = "not an image file Pillow can identify"
        return 0, 0, text


# --------------------------------------------------------------------------------------------------------------------
# Cache: one JSON file per folder, entries keyed by file name and valid for one (size, mtime)
# --------------------------------------------------------------------------------------------------------------------


def _cache_file(folder: Path) -> Path:
    digest = hashlib.sha256(str(folder).encode()).hexdigest()[:24]
    return file_checks_cache_dir() / f"{digest}.json"


def _read_cache(folder: Path) -> dict[str, list]:
    try:
        content = json.loads(_cache_file(folder).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(content, dict):
        return {}
    if (content.get("version"), content.get("folder")) != (_CACHE_VERSION, str(folder)):
        return {}
    files = content.get("files")
    return files if isinstance(files, dict) else {}


def _write_cache(folder: Path, files: Mapping[str, list]) -> None:
    """Atomic write (several ranks or runs may check the same folder at once); a read-only home is not an error."""
    target = _cache_file(folder)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(handle, "w") as stream:
            json.dump({"version": _CACHE_VERSION, "folder": str(folder), "files": dict(files)}, stream)
        os.replace(temporary, target)
    except OSError:
        pass


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


# --------------------------------------------------------------------------------------------------------------------
# Checking many files
# --------------------------------------------------------------------------------------------------------------------


def check_image_files(
    paths: Iterable[str | os.PathLike],
    *,
    min_side: Mapping[Path, int] | None = None,
    use_cache: bool = True,
    workers: int | None = None,
    progress: bool | None = None,
) -> list[FileProblem]:
    """Check that every file is a readable image (see the module docstring) and large enough.

    Args:
        paths: Image files (duplicates are checked once).
        min_side: Smallest width and height a file must have (e.g. an SR training crop), per path; files not in it
            may have any size.
        use_cache: Read and update the results cached under :func:`file_checks_cache_dir`.
        workers: Threads decoding in parallel (None: up to 8, at most the CPU count; Pillow decodes without the GIL).
        progress: Show a progress bar (None: only on a terminal, and only when more than 500 files are unchecked).

    Returns:
        The unusable files in the order given, each with its reason; empty when all are fine.
    """
    given: dict[Path, Path] = {}  # absolute path -> the path as given (first occurrence), in the order given
    for path in paths:
        given.setdefault(Path(path).absolute(), Path(path))
    ordered = list(given)
    by_folder: dict[Path, list[Path]] = {}
    for path in ordered:
        by_folder.setdefault(path.parent, []).append(path)
    results: dict[Path, tuple[int, int, str]] = {}
    caches: dict[Path, dict[str, list]] = {}
    unchecked: list[tuple[Path, tuple[int, int] | None]] = []
    for folder, files in by_folder.items():
        cache = caches[folder] = _read_cache(folder) if use_cache else {}
        for path in files:
            stamp = _stamp(path)
            entry = cache.get(path.name)
            if stamp is not None and isinstance(entry, list) and len(entry) == 5 and tuple(entry[:2]) == stamp:
                results[path] = (int(entry[2]), int(entry[3]), str(entry[4]))
            else:
                unchecked.append((path, stamp))
    if unchecked:
        workers = workers or max(1, min(8, os.cpu_count() or 1))
        show = len(unchecked) > 500 if progress is None else progress
        with ThreadPoolExecutor(max_workers=workers) as pool:
            inspected = pool.map(_inspect, [path for path, _ in unchecked])
            bar = tqdm(inspected, total=len(unchecked), desc="Checking image files", unit="file",
                       disable=None if show else True)
            for (path, stamp), result in zip(unchecked, bar, strict=True):
                results[path] = result
                if stamp is not None:
                    caches[path.parent][path.name] = [*stamp, *result]
        if use_cache:
            for folder in {path.parent for path, stamp in unchecked if stamp is not None}:
                _write_cache(folder, caches[folder])
    minimum = {Path(path).absolute(): side for path, side in (min_side or {}).items()}
    problems = []
    for path in ordered:
        width, height, reason = results[path]
        need = minimum.get(path, 0)
        if not reason and (width < need or height < need):
            reason = f"{width}x{height} pixels, smaller than the {need}x{need} needed (crop_size)"
        if reason:
            problems.append(FileProblem(given[path], reason))
    return problems
