"""Crash-safe checkpoint files: a checkpoint is either the complete old file or the complete new one.

:func:`atomic_torch_save` serialises to a temporary file in the target's folder, syncs it to disk and renames it over
the target, so a killed process or a full disk never leaves a truncated file under a checkpoint's name.
:class:`AtomicCheckpointIO` is the Lightning ``CheckpointIO`` plugin built on it; :class:`~zoo.trainer.ZooTrainer`
installs it unless given a ``CheckpointIO`` of its own.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from collections.abc import Iterable
from typing import Any, BinaryIO

import torch
from lightning.fabric.utilities.cloud_io import _is_local_file_protocol
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import CheckpointIO, TorchCheckpointIO
from lightning.pytorch.strategies import Strategy

__all__ = ["AtomicCheckpointIO", "atomic_torch_save", "with_atomic_checkpoint_io"]

_FIX = "free space or set trainer.default_root_dir to another disk"


def _serialise(obj: Any, file: BinaryIO) -> None:
    torch.save(obj, file)


class _CountingSink:
    """A write-only file that keeps nothing but the number of bytes written to it."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, data: Any) -> int:
        n = memoryview(data).nbytes
        self.size += n
        return n

    def flush(self) -> None:
        pass


def _temporary_name(path: str) -> str:
    folder, name = os.path.split(path)
    return os.path.join(folder, f".{name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")


def _remove_stale_temporaries(path: str) -> None:
    """Delete temporaries of ``path`` left by processes of this machine that no longer run (``kill -9``)."""
    folder, name = os.path.split(path)
    pattern = re.compile(rf"\.{re.escape(name)}\.tmp-(\d+)-[0-9a-f]+")
    try:
        entries = os.listdir(folder or ".")
    except OSError:
        return
    for entry in entries:
        match = pattern.fullmatch(entry)
        if match is None or int(match.group(1)) == os.getpid():
            continue
        try:
            os.kill(int(match.group(1)), 0)
            continue  # the writer is alive
        except ProcessLookupError:
            pass
        except OSError:
            continue  # alive, owned by another user
        try:
            os.remove(os.path.join(folder, entry))
        except OSError:
            pass


def _fsync_folder(folder: str) -> None:
    """Make the rename durable; some platforms and filesystems cannot open or sync a folder, which is fine."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _size_text(n: int) -> str:
    return f"{n} bytes ({n / 2**20:.1f} MiB)"


def _write_error(obj: Any, path: str, folder: str, written: int | None, error: BaseException) -> OSError:
    """One line naming the checkpoint, the bytes it needs, the free space and the fix."""
    if isinstance(error, OSError) and error.strerror:
        reason = error.strerror
    else:
        reason = f"{type(error).__name__}: {error}"
    reason = " ".join(reason.split())
    needed: str
    if written is not None:
        needed = _size_text(written)
    else:
        try:
            sink = _CountingSink()
            torch.save(obj, sink)  # type: ignore[arg-type]
            needed = _size_text(sink.size)
        except Exception:
            if os.path.isfile(path):
                needed = f"about {_size_text(os.path.getsize(path))}, the size of the previous file"
            else:
                needed = "an unknown number of bytes"
    try:
        free = _size_text(shutil.disk_usage(folder).free)
    except OSError:
        free = "an unknown number of bytes"
    message = (f"could not write checkpoint '{path}' ({reason}): it needs {needed}, {free} are free on that "
               f"filesystem; {_FIX}")
    result = OSError(message)
    result.errno = getattr(error, "errno", None)  # type: ignore[misc]
    return result


def atomic_torch_save(obj: Any, path: _PATH) -> None:
    """``torch.save(obj, path)`` that never leaves a partial file at ``path``.

    The object is written to a hidden temporary file beside ``path`` (``.<name>.tmp-<pid>-<random>``), synced to disk
    and renamed over ``path``; the folder is synced afterwards where the platform allows. On failure the temporary
    file is removed, an existing ``path`` is left as it was, and an ``OSError`` with a one-line message (checkpoint,
    bytes needed, bytes free, the fix) is raised. Temporaries of ``path`` left by killed processes are removed first.

    Args:
        obj: anything ``torch.save`` accepts.
        path: the target file; its folder is created if missing.

    Raises:
        OSError: the file could not be written (full disk, permissions, or an object that cannot be serialised).
    """
    path = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(path)
    temporary: str | None = None
    written: int | None = None
    try:
        os.makedirs(folder, exist_ok=True)
        _remove_stale_temporaries(path)
        temporary = _temporary_name(path)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with os.fdopen(fd, "wb") as file:
            _serialise(obj, file)
            file.flush()
            written = file.tell()
            os.fsync(file.fileno())
        os.replace(temporary, path)
        temporary = None
    except BaseException as error:
        if temporary is not None:
            try:
                os.remove(temporary)
            except OSError:
                pass
        if not isinstance(error, Exception):
            raise  # KeyboardInterrupt, SystemExit: cleaned up, passed on unchanged
        raise _write_error(obj, path, folder, written, error) from error
    _fsync_folder(folder)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's ``TorchCheckpointIO`` with crash-safe writes of local files (see :func:`atomic_torch_save`).

    Loading and removing work as in ``TorchCheckpointIO``; remote paths (``s3://`` and the like) are saved by it too.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None) -> None:
        """Write ``checkpoint`` to ``path`` atomically.

        Args:
            checkpoint: the model and trainer state.
            path: the checkpoint file.
            storage_options: not supported; must be ``None``.

        Raises:
            TypeError: ``storage_options`` was given.
            OSError: the checkpoint could not be written; ``path`` keeps its previous content.
        """
        if storage_options is not None or not _is_local_file_protocol(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        atomic_torch_save(checkpoint, path)


def with_atomic_checkpoint_io(plugins: Any, strategy: str | Strategy | None = None) -> list[Any]:
    """Trainer ``plugins`` with an :class:`AtomicCheckpointIO` added, unless a ``CheckpointIO`` is already chosen.

    A ``CheckpointIO`` in ``plugins``, or a strategy object that carries its own, is kept (Lightning refuses one in
    both places). Lightning hands the plugin to whichever strategy it builds, DDP included.

    Args:
        plugins: the ``plugins`` Trainer argument: ``None``, one plugin or a list.
        strategy: the ``strategy`` Trainer argument.
    """
    if plugins is None:
        result: list[Any] = []
    elif isinstance(plugins, (str, bytes)) or not isinstance(plugins, Iterable):
        result = [plugins]
    else:
        result = list(plugins)
    if any(isinstance(p, CheckpointIO) for p in result):
        return result
    if isinstance(strategy, Strategy) and getattr(strategy, "_checkpoint_io", None) is not None:
        return result
    result.append(AtomicCheckpointIO())
    return result
