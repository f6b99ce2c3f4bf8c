"""Weight files: records of where they come from, the cache they land in, downloads and sha256 checks.

This module knows files, not models: it imports nothing else of zoo, so networks, losses and metrics use it without
pulling in the methods. A :class:`WeightsFile` names its ``owner`` (a method, or the module that uses the file, such
as ``"zoo.losses.perceptual"``); records registered by name (``"cyclegan.horse2zebra"``) live in :data:`WEIGHTS`.

Where weights are looked for, first match wins:

1. the ``weights_dir`` argument,
2. the folder in ``$ZOO_WEIGHTS_DIR``,
3. the cache ``$ZOO_HOME/weights`` (``$ZOO_HOME`` defaults to ``~/.cache/zoo``).

A file found nowhere is downloaded into the cache, unless ``ZOO_OFFLINE=1`` (or ``HF_HUB_OFFLINE=1``) is set, in
which case the miss fails at once and says which file to put where. Every resolution re-hashes the file, cached or
local, so a corrupted or replaced file raises instead of giving silently wrong weights. Files registered without a
digest are pinned on first use: their sha256 is written to ``<file>.sha256`` and later uses are checked against it.

Most records are registered when the modules that own them are imported (zoo's method files). This module never
imports them itself: the package root installs a catalogue loader (:func:`add_catalog_loader`) that does, and the
lookups by name here run it first (:func:`load_catalog`).
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import hashlib
import os
import secrets
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from rich.progress import Progress

__all__ = [
    "DownloadError",
    "HashMismatchError",
    "PRETRAINED_LICENSES",
    "SHIPPED_LICENSE",
    "SHIPPED_WEIGHTS_DIR",
    "UnknownModelError",
    "WEIGHTS",
    "WeightsFile",
    "WeightsUnavailableError",
    "add_catalog_loader",
    "add_url_resolver",
    "cached_weights_path",
    "download",
    "download_weights",
    "file_sha256",
    "get_weights",
    "is_offline",
    "list_weights",
    "load_catalog",
    "local_weights_path",
    "pin_path",
    "pretrained_license",
    "read_pin",
    "register_weights",
    "resolve_weights",
    "resolve_weights_argument",
    "verification_status",
    "verify_cached",
    "verify_file",
    "weights_cache_dir",
    "write_pin",
    "zoo_home",
]

PIN_SUFFIX = ".sha256"
#: The weights that ship inside the package (small models trained on the toy world; see :mod:`zoo.shipped_weights`).
SHIPPED_WEIGHTS_DIR = Path(__file__).resolve().parent / "pretrained"
DOWNLOAD_TIMEOUT_S = 30.0
_CHUNK = 1 << 20
_TRUE = {"1", "true", "yes", "on"}


# ----------------------------------------------------------------------------------------------------------- errors


class DownloadError(OSError):
    """A download failed (unreachable host, missing ``file://`` path, HTTP error, interrupted transfer)."""


class HashMismatchError(RuntimeError):
    """A file's sha256 differs from the expected digest; the message carries both digests."""


class WeightsUnavailableError(FileNotFoundError):
    """Weights are neither on disk nor downloadable (offline, failed download, or none published)."""


class UnknownModelError(KeyError):
    """A name is neither a registered method nor registered weights (nor an existing path)."""

    def __str__(self) -> str:  # KeyError would print the message with quotes around it
        return str(self.args[0]) if self.args else ""


# ---------------------------------------------------------------------------------------------------------- records


@dataclass(frozen=True, kw_only=True)
class WeightsFile:
    """A weights file: where it is published, its digest and licence, and who uses it.

    Args:
        owner: who the file belongs to: a registered method name (``"cyclegan"``) for a method's weights, else the
            module that uses it (``"zoo.losses.perceptual"``). Registered names start with it (``"<owner>.<tag>"``).
        url: download location (``https://`` or ``file://``); ``None`` when the file is not published.
        sha256: hex digest of the file at ``url``, checked on every use: the full digest, or a prefix of at least 8
            digits where only that is published (as in file names like ``name-6726825d.pth``). ``None`` pins the first
            copy seen.
        filename: name of the file on disk (defaults to the last part of ``url``).
        license: licence of the weights: an SPDX-like id, ``"non-commercial (<why>)"`` or ``"unknown (<why>)"``;
            replaced at registration by the matching :data:`PRETRAINED_LICENSES` row.
        origin: where the weights come from (paper / repository).
        notes: anything a user should know.
    """

    owner: str
    url: str | None = None
    sha256: str | None = None
    filename: str | None = None
    license: str = "unknown"
    origin: str = ""
    notes: str = ""

    @property
    def file_name(self) -> str | None:
        """Name of the file on disk."""
        if self.filename:
            return self.filename
        return self.url.rsplit("/", 1)[-1] if self.url else None

    def unpublished_hint(self) -> str:
        """What a user can do when the file is not published (nothing to add for a plain file)."""
        return ""


#: Registered weight records by name (``"<owner>.<tag>"``); :func:`register_weights` adds to it.
WEIGHTS: dict[str, WeightsFile] = {}

_CYCLEGAN_CODE = "code BSD-2-Clause"
_IMAGENET = "ImageNet data"  # research and educational use only
_CITYSCAPES = "Cityscapes data"  # non-commercial use only
#: Licence of the weights that ship with zoo: trained by zoo on its own procedural toy world, they are zoo's.
SHIPPED_LICENSE = "BSD-3-Clause (trained by zoo on its procedural toy world)"

#: Licence of each registered set of weights: (shell-style pattern of registered names, licence); the first match
#: wins. Weights trained on data whose terms forbid commercial use, or published under a non-commercial licence, are
#: marked ``non-commercial``; the code licence of the repository the weights come from is given in every case.
PRETRAINED_LICENSES: tuple[tuple[str, str], ...] = (
    ("*.toy_*", SHIPPED_LICENSE),
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
    ("cut.horse2zebra*", f"non-commercial ({_IMAGENET}; code BSD-2-Clause)"),
    ("cut.cityscapes*", f"non-commercial ({_CITYSCAPES}; code BSD-2-Clause)"),
    ("cut.*", "BSD-2-Clause (data terms not stated)"),
    ("pix2pixhd.label2city_*", f"non-commercial ({_CITYSCAPES}; code BSD-3-Clause style, NVIDIA)"),
    ("vsait.gta2cityscapes", f"non-commercial (CC-BY-NC-4.0 code; {_CITYSCAPES})"),
    ("srgan.imagenet_*", f"non-commercial ({_IMAGENET}; code Apache-2.0)"),
    ("srresnet.imagenet_*", f"non-commercial ({_IMAGENET}; code Apache-2.0)"),
)


def pretrained_license(name: str, default: str = "unknown") -> str:
    """The :data:`PRETRAINED_LICENSES` licence of a registered name, or ``default`` when no row matches."""
    return next((value for pattern, value in PRETRAINED_LICENSES if fnmatch.fnmatchcase(name, pattern)), default)


def register_weights(name: str, record: WeightsFile) -> WeightsFile:
    """Register ``record`` under ``name`` (``"<owner>.<tag>"``) with the licence of :data:`PRETRAINED_LICENSES`
    (the record's own ``license`` where no row matches); returns the record as stored."""
    if name in WEIGHTS:
        raise ValueError(f"pretrained weights {name!r} are already registered")
    if not name.startswith(record.owner + ".") or name == record.owner + ".":
        raise ValueError(f"pretrained name {name!r} must look like '{record.owner}.<tag>'")
    licence = pretrained_license(name, record.license)
    if not licence.strip():
        raise ValueError(f"pretrained weights {name!r} have an empty licence; give license='unknown (<why>)' or add "
                         "a row to zoo.weights.PRETRAINED_LICENSES")
    record = dataclasses.replace(record, license=licence) if licence != record.license else record
    WEIGHTS[name] = record
    return record


_CATALOG_LOADERS: list[Callable[[], object]] = []


_URL_RESOLVERS: dict[str, Callable[[str, str], Path]] = {}


def add_url_resolver(prefix: str, resolver: Callable[[str, str], Path]) -> None:
    """Resolve records whose ``url`` starts with ``prefix`` (``"hf://"``) with ``resolver(url, file_name)``, which
    returns the local file (in its own cache, offline-aware) instead of a download into zoo's cache.

    The package root installs the ``hf://`` resolver of :mod:`zoo.hf`, as it installs the catalogue loader, so that
    this module imports nothing else of zoo.
    """
    _URL_RESOLVERS[prefix] = resolver


def add_catalog_loader(loader: Callable[[], object]) -> None:
    """Add a function that imports the modules which register weights (and methods); run by :func:`load_catalog`.

    Calling it again with the same function does nothing.
    """
    if loader not in _CATALOG_LOADERS:
        _CATALOG_LOADERS.append(loader)


def load_catalog() -> None:
    """Run every catalogue loader, so that all of zoo's methods and weights are registered."""
    for loader in list(_CATALOG_LOADERS):
        loader()


def _unknown_weights(name: str) -> UnknownModelError:
    close = difflib.get_close_matches(name, sorted(WEIGHTS), n=5, cutoff=0.5)
    close = close or [known for known in sorted(WEIGHTS) if known.startswith(name.split(".", 1)[0] + ".")]
    hint = f"; did you mean: {', '.join(close)}?" if close else ""
    return UnknownModelError(f"unknown pretrained weights {name!r}{hint} (zoo.list_models(pretrained=True) lists them)")


def get_weights(name: str) -> WeightsFile:
    """The weight record registered as ``name``; :class:`UnknownModelError` (listing close names) when unknown."""
    load_catalog()
    try:
        return WEIGHTS[name]
    except KeyError:
        raise _unknown_weights(name) from None


def list_weights(pattern: str = "*") -> list[str]:
    """Sorted names of registered weight records matching the shell-style ``pattern``."""
    load_catalog()
    return sorted(name for name in WEIGHTS if fnmatch.fnmatch(name, pattern))


# ------------------------------------------------------------------------------------------------------ locations


def zoo_home() -> Path:
    """Root folder of zoo's files: ``$ZOO_HOME``, or ``~/.cache/zoo`` when unset."""
    return Path(os.environ.get("ZOO_HOME") or "~/.cache/zoo").expanduser()


def weights_cache_dir() -> Path:
    """Folder that downloaded weights are cached in: ``zoo_home() / "weights"``."""
    return zoo_home() / "weights"


def is_offline() -> bool:
    """Whether downloads are disabled by ``ZOO_OFFLINE`` or ``HF_HUB_OFFLINE`` (``1``/``true``/``yes``/``on``)."""
    return any(os.environ.get(var, "").strip().lower() in _TRUE for var in ("ZOO_OFFLINE", "HF_HUB_OFFLINE"))


def _search_dirs(weights_dir: str | os.PathLike[str] | None, *, shipped: bool = True) -> list[Path]:
    """The folders :func:`resolve_weights` looks in, in order (the package's own :data:`SHIPPED_WEIGHTS_DIR` last)."""
    dirs = []
    if weights_dir is not None:
        dirs.append(Path(weights_dir).expanduser())
    if os.environ.get("ZOO_WEIGHTS_DIR"):
        dirs.append(Path(os.environ["ZOO_WEIGHTS_DIR"]).expanduser())
    dirs.append(weights_cache_dir())
    if shipped:
        dirs.append(SHIPPED_WEIGHTS_DIR)
    return dirs


def local_weights_path(name_or_record: str | WeightsFile, *, weights_dir: str | os.PathLike[str] | None = None,
                       shipped: bool = True) -> Path | None:
    """Where a registered weights file already is on disk (``weights_dir``, ``$ZOO_WEIGHTS_DIR``, the cache and, with
    ``shipped``, the package's own folder), without downloading or hashing anything; ``None`` when it is nowhere."""
    record = get_weights(name_or_record) if isinstance(name_or_record, str) else name_or_record
    if record.file_name is None:
        return None
    return next((folder / record.file_name for folder in _search_dirs(weights_dir, shipped=shipped)
                 if (folder / record.file_name).is_file()), None)


def _where_to_put(file_name: str, weights_dir: str | os.PathLike[str] | None) -> str:
    """Human-readable list of the places a user can drop ``file_name`` into."""
    places = [f"  {d / file_name}" for d in _search_dirs(weights_dir)]
    if not os.environ.get("ZOO_WEIGHTS_DIR"):
        places.append(f"  or any folder named by $ZOO_WEIGHTS_DIR (then <folder>/{file_name})")
    return "\n".join(places)


def cached_weights_path(name: str) -> Path | None:
    """Where the registered weights ``name`` live in the cache (:func:`weights_cache_dir`), present or not.

    ``None`` when the record names no file. Raises :class:`UnknownModelError` for an unknown name.
    """
    file_name = get_weights(name).file_name
    return weights_cache_dir() / file_name if file_name else None


# --------------------------------------------------------------------------------------------------------- hashing


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def pin_path(path: Path) -> Path:
    """The pin file beside ``path``: ``<file>.sha256``."""
    return path.with_name(path.name + PIN_SUFFIX)


def read_pin(path: Path) -> str | None:
    """Digest stored in ``<file>.sha256`` (``sha256sum`` format), if that file exists."""
    pin = pin_path(path)
    if not pin.is_file():
        return None
    fields = pin.read_text().split()
    if not fields:
        raise HashMismatchError(f"{pin} is empty; delete it to re-pin {path.name}")
    return fields[0].lower()


def write_pin(path: Path, digest: str) -> None:
    """Record ``digest`` as the expected sha256 of ``path`` in ``<file>.sha256`` (``sha256sum`` format)."""
    pin_path(path).write_text(f"{digest}  {path.name}\n")


def digest_matches(actual: str, expected: str) -> bool:
    """Whether the hex digest ``actual`` is ``expected``, or starts with it when ``expected`` is a published prefix."""
    expected = expected.lower()
    if len(expected) < 8:
        raise ValueError(f"a sha256 prefix must have at least 8 hex digits; got {expected!r}")
    return actual == expected if len(expected) >= 64 else actual.startswith(expected)


def verify_file(path: Path, expected: str | None, *, pin_if_unknown: bool) -> None:
    """Check ``path`` against ``expected``, or against its ``.sha256`` pin when ``expected`` is ``None``.

    With neither, the file is pinned (when ``pin_if_unknown``) so that later uses catch changes.

    Raises:
        HashMismatchError: the file differs from the digest (the message carries both).
    """
    source = "the registered sha256"
    if expected is None:
        expected = read_pin(path)
        source = f"the digest pinned in {pin_path(path)} on first use"
    actual = file_sha256(path)
    if expected is None:
        if pin_if_unknown:
            try:
                write_pin(path, actual)
            except OSError as err:
                warnings.warn(f"cannot pin {path} ({err}); its content will not be verified", stacklevel=3)
        return
    if not digest_matches(actual, expected):
        raise HashMismatchError(
            f"sha256 mismatch for {path}:\n  expected {expected.lower()} ({source})\n  got      {actual}\n"
            f"The file is corrupt or was replaced. Delete it (and {pin_path(path).name} if present) and download "
            "it again."
        )


def verification_status(name: str) -> Literal["sha256", "pinned, unverified", "unverified"]:
    """How the registered weights ``name`` are checked on use.

    ``"sha256"``: the record carries their digest. ``"pinned, unverified"``: no registered digest, but the cached
    file has a ``<file>.sha256`` pin written on first use (later changes are caught; the first copy was trusted).
    ``"unverified"``: neither.
    """
    if get_weights(name).sha256:
        return "sha256"
    path = cached_weights_path(name)
    if path is not None and pin_path(path).is_file():
        return "pinned, unverified"
    return "unverified"


def verify_cached(names: list[str] | None = None) -> list[tuple[str, Path | None, str]]:
    """Re-hash cached weights against their registered digest, or their pin when the record has none.

    Args:
        names: registered weight names; ``None`` checks every registered record whose file is in the cache.

    Returns:
        ``(name, cache path, result)`` per record, ``result`` being ``"ok"`` (matches the registered sha256),
        ``"pinned-unverified"`` (matches its first-use pin; no registered digest), ``"unverified"`` (no digest and
        no pin), ``"MISMATCH"`` (differs from the digest or the pin; the pin file is unreadable or empty) or
        ``"missing"`` (not in the cache).

    Raises:
        UnknownModelError: a name is not registered.
    """
    if names is None:
        names = [n for n in list_weights() if (p := cached_weights_path(n)) is not None and p.is_file()]
    results: list[tuple[str, Path | None, str]] = []
    for name in names:
        record = get_weights(name)
        path = cached_weights_path(name)
        if path is None or not path.is_file():
            results.append((name, path, "missing"))
            continue
        try:
            expected = record.sha256 or read_pin(path)
        except (HashMismatchError, OSError):
            results.append((name, path, "MISMATCH"))
            continue
        if expected is None:
            results.append((name, path, "unverified"))
        elif not digest_matches(file_sha256(path), expected):
            results.append((name, path, "MISMATCH"))
        else:
            results.append((name, path, "ok" if record.sha256 else "pinned-unverified"))
    return results


# -------------------------------------------------------------------------------------------------------- download


def _progress_bar(enabled: bool) -> Progress:
    """A rich progress bar on stderr (a no-op display when ``enabled`` is False)."""
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
    )


def _download(url: str, dst: Path, *, sha256: str | None, progress: bool) -> str:
    """Stream ``url`` to ``dst`` atomically and return the sha256 of what was written."""
    import http.client
    import urllib.error
    import urllib.request

    dst.parent.mkdir(parents=True, exist_ok=True)
    if progress:
        print(f"Downloading {url} to {dst}", file=sys.stderr)
    # A unique name in the destination folder keeps the final rename atomic; open(..., "xb") respects the umask.
    tmp = dst.with_name(f".{dst.name}.{secrets.token_hex(8)}.part")
    digest = hashlib.sha256()
    try:
        try:
            with open(tmp, "xb") as out, urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                with _progress_bar(progress) as bar:
                    task = bar.add_task(dst.name, total=total)
                    for chunk in iter(lambda: response.read(_CHUNK), b""):
                        out.write(chunk)
                        digest.update(chunk)
                        bar.update(task, advance=len(chunk))
                out.flush()
                os.fsync(out.fileno())
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as err:
            # HTTPError's own text carries the status code; URLError's reason is the readable part of its text.
            reason = err if isinstance(err, urllib.error.HTTPError) else getattr(err, "reason", None) or err
            raise DownloadError(f"download of {url} failed: {reason}") from err
        actual = digest.hexdigest()
        if sha256 is not None and not digest_matches(actual, sha256):
            raise HashMismatchError(
                f"sha256 mismatch for {url}:\n  expected {sha256.lower()}\n  got      {actual}\n"
                f"Nothing was written to {dst}."
            )
        os.replace(tmp, dst)
        return actual
    finally:
        tmp.unlink(missing_ok=True)


def download(url: str, dst: str | os.PathLike[str], *, sha256: str | None = None, progress: bool = True) -> Path:
    """Download ``url`` (``http(s)://`` or ``file://``) to ``dst``, checking its sha256 while streaming.

    The data goes to a temporary file in ``dst``'s folder, which is renamed onto ``dst`` only when complete and, if
    ``sha256`` is given, matching; on any failure no file is left behind. There are no retries: a network failure
    raises at once.

    Args:
        url: source address.
        dst: destination file; missing parent folders are created; an existing file is replaced.
        sha256: expected hex digest (full, or a published prefix of at least 8 digits), or ``None`` to skip
            the check.
        progress: show a progress bar on stderr.

    Returns:
        ``dst`` as a :class:`~pathlib.Path`.

    Raises:
        DownloadError: the source could not be read.
        HashMismatchError: the downloaded bytes have another digest (the message carries both).
    """
    dst = Path(dst).expanduser()
    _download(url, dst, sha256=sha256, progress=progress)
    return dst


# ---------------------------------------------------------------------------------------------------------- resolve


def _no_published_weights(label: str, record: WeightsFile) -> WeightsUnavailableError:
    hint = record.unpublished_hint()
    return WeightsUnavailableError(f"no published weights for {label} yet" + (f"; {hint}" if hint else ""))


def resolve_weights(
    name_or_record: str | WeightsFile,
    *,
    weights_dir: str | os.PathLike[str] | None = None,
    check_hash: bool = True,
    progress: bool = True,
) -> Path:
    """Local path of a weights file, downloading it into the cache when needed.

    The file (named ``record.file_name``) is looked for in ``weights_dir``, then ``$ZOO_WEIGHTS_DIR``, then
    :func:`weights_cache_dir`, then the package's :data:`SHIPPED_WEIGHTS_DIR`. If absent everywhere, it is
    downloaded into the cache (``hf://`` records through the resolver of :func:`add_url_resolver`, i.e.
    huggingface_hub's cache), unless ``ZOO_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``, where the miss raises at once.

    The sha256 is checked on every call, for cached and local files alike. Records with ``sha256=None`` (official
    files nobody hashed yet) are pinned on first use: the digest is written to ``<file>.sha256`` beside the file (at
    download time for cached files, on first use for local ones) and later calls check against that pin. Delete the
    ``.sha256`` file to accept a deliberately replaced file.

    Args:
        name_or_record: a registered name (``"cyclegan.horse2zebra"``) or a :class:`WeightsFile`.
        weights_dir: folder searched before ``$ZOO_WEIGHTS_DIR`` and the cache.
        check_hash: verify the sha256 (or pin) of the file; turn off only for files you just verified yourself.
        progress: show a progress bar while downloading.

    Returns:
        Path of the verified file.

    Raises:
        UnknownModelError: ``name_or_record`` is an unknown name.
        WeightsUnavailableError: no published weights, an offline miss, or a failed download; the message names the
            file, the folders it may be put in and the URL.
        HashMismatchError: the file on disk (or the download) does not match the expected digest.
    """
    if isinstance(name_or_record, WeightsFile):
        record, label = name_or_record, f"{name_or_record.owner} ({name_or_record.file_name})"
    else:
        record, label = get_weights(name_or_record), repr(name_or_record)
    file_name = record.file_name
    if file_name is None:
        raise _no_published_weights(label, record)

    path = local_weights_path(record, weights_dir=weights_dir)
    if path is not None:
        if check_hash:
            verify_file(path, record.sha256, pin_if_unknown=True)
        return path

    where = _where_to_put(file_name, weights_dir)
    if record.url is None:
        err = _no_published_weights(label, record)
        raise WeightsUnavailableError(f"{err}\n(if you have {file_name}, put it at one of:\n{where})")
    resolver = next((fn for prefix, fn in _URL_RESOLVERS.items() if record.url.startswith(prefix)), None)
    if resolver is not None:  # e.g. hf://: the file lives in huggingface_hub's cache, which handles offline itself
        try:
            path = resolver(record.url, file_name)
        except WeightsUnavailableError as err:
            raise WeightsUnavailableError(f"{err}\nOr put {file_name} at one of:\n{where}") from err
        if check_hash:
            verify_file(path, record.sha256, pin_if_unknown=False)  # never write pins into another tool's cache
        return path
    if is_offline():
        raise WeightsUnavailableError(
            f"weights {file_name} for {label} are not on disk and downloads are off (ZOO_OFFLINE/HF_HUB_OFFLINE).\n"
            f"Download {record.url} and put it at one of:\n{where}"
        )
    dst = weights_cache_dir() / file_name
    try:
        digest = _download(record.url, dst, sha256=record.sha256, progress=progress)
    except DownloadError as err:
        raise WeightsUnavailableError(
            f"could not download weights {file_name} for {label}: {err}\nDownload {record.url} yourself (or copy "
            f"the file from another machine) and put it at one of:\n{where}"
        ) from err
    except HashMismatchError as err:
        raise HashMismatchError(f"{err}\nIf you have a good copy of {file_name}, put it at one of:\n{where}") from err
    if record.sha256 is None:
        write_pin(dst, digest)
    return dst


def resolve_weights_argument(weights: str | os.PathLike[str], published_name: str, record: WeightsFile) -> Path:
    """The file a ``weights=`` argument names: ``published_name`` (e.g. ``"pytorch-fid"``) resolves ``record``
    through :func:`resolve_weights`; anything else is a path that must exist.

    Raises:
        FileNotFoundError: the path does not exist (the message names both accepted forms).
    """
    if str(weights) == published_name:
        return resolve_weights(record)
    path = Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist (give a path to {record.file_name} or "
                                f"{published_name!r} for the published file)")
    return path


def download_weights(name: str, *, weights_dir: str | os.PathLike[str] | None = None) -> Path:
    """Fetch registered weights into the cache (``zoo download NAME``) and print where they are.

    Args:
        name: registered name, e.g. ``"cyclegan.horse2zebra"``.
        weights_dir: folder searched first; a file there is verified instead of downloaded.

    Returns:
        Path of the verified file.
    """
    path = resolve_weights(name, weights_dir=weights_dir)
    print(f"{name}: {path}")
    return path
