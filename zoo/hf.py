"""``hf://`` addresses: weights and bundles kept in a Hugging Face Hub model repository.

An address names a repository, an optional revision and a path inside it::

    hf://<owner>/<repo>/<path/in/repo>             # the repository's main branch
    hf://<owner>/<repo>@<revision>/<path/in/repo>  # a branch, tag or commit (percent-encode a "/" in it: refs%2Fpr%2F1)

Files are fetched with :func:`huggingface_hub.hf_hub_download`, so they land in (and are served from) huggingface_hub's
own cache (``$HF_HUB_CACHE``, by default ``~/.cache/huggingface/hub``), not zoo's weight cache: one copy per machine,
shared with every other tool that uses the Hub. With ``HF_HUB_OFFLINE=1`` or ``ZOO_OFFLINE=1`` nothing is requested
from the network: a file already in that cache is returned, any other raises
:class:`~zoo.weights.WeightsUnavailableError` saying what to do. The Hub's own errors (unknown repository, missing file,
no connection) become that error too, so callers handle one exception for "the weights are not here".

This module knows addresses and files, not models: it imports only the standard library, :mod:`zoo.weights` and (when
a file is fetched) ``huggingface_hub``, so that :mod:`zoo.weights` and :mod:`zoo.hub` can call it without an import
cycle.
"""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path, PurePosixPath

from zoo.weights import WeightsUnavailableError, is_offline

__all__ = ["HF_SCHEME", "download_hf_bundle", "is_hf_url", "parse_hf_url", "resolve_hf_weights"]

HF_SCHEME = "hf://"
#: The files of a zoo bundle folder (:func:`zoo.hub.save_bundle`), fetched by :func:`download_hf_bundle`.
BUNDLE_FILES = ("model.safetensors", "config.json")
# Owner and repository names as the Hub accepts them: letters, digits, "-", "_", "."; no "--" or "..", no "-"/"."
# at either end.
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?")
_EXAMPLE = "hf://owner/repo/path/in/repo or hf://owner/repo@revision/path/in/repo"


def is_hf_url(text: object) -> bool:
    """Whether ``text`` is a string starting with ``hf://`` (well-formed or not: :func:`parse_hf_url` checks that)."""
    return isinstance(text, str) and text.startswith(HF_SCHEME)


def _check_name(url: str, kind: str, name: str) -> None:
    if not _NAME.fullmatch(name) or "--" in name or ".." in name:
        raise ValueError(f"{url!r}: {kind} {name!r} is not a valid Hugging Face name (letters, digits, '-', '_', '.'; "
                         f"no '--' or '..'; expected {_EXAMPLE})")


def parse_hf_url(url: str) -> tuple[str, str | None, str]:
    """Split an ``hf://`` address into ``(repo_id, revision, path)``.

    Args:
        url: ``hf://<owner>/<repo>[@<revision>][/<path/in/repo>]``; a ``/`` inside the revision is written ``%2F``.

    Returns:
        ``repo_id`` (``"owner/repo"``), ``revision`` (``None`` for the default branch) and the path inside the
        repository (``""`` when the address names the repository itself), in ``/`` form without a leading or trailing
        slash.

    Raises:
        ValueError: not an ``hf://`` address, a missing owner or repository, an invalid name, an empty revision, or a
            path with empty, ``.`` or ``..`` parts or a backslash. The message shows the expected form.
    """
    if not is_hf_url(url):
        raise ValueError(f"{url!r} is not an hf:// address; expected {_EXAMPLE}")
    rest = url[len(HF_SCHEME):]
    if "?" in rest or "#" in rest:
        raise ValueError(f"{url!r}: an hf:// address takes no query or fragment ('?', '#'); expected {_EXAMPLE}")
    parts = rest.split("/", 2)
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise ValueError(f"{url!r} does not name a repository; expected {_EXAMPLE}")
    owner, repo_and_revision = parts[0], parts[1]
    path = parts[2].rstrip("/") if len(parts) == 3 else ""
    repo, at, revision_text = repo_and_revision.partition("@")
    _check_name(url, "owner", owner)
    _check_name(url, "repository", repo)
    revision = None
    if at:
        revision = urllib.parse.unquote(revision_text)
        if not revision.strip():
            raise ValueError(f"{url!r}: the revision after '@' is empty; expected {_EXAMPLE}")
    if path:
        pieces = path.split("/")
        if "\\" in path or any(piece in ("", ".", "..") for piece in pieces):
            raise ValueError(f"{url!r}: the path {path!r} inside the repository must be relative, without empty, '.' "
                             f"or '..' parts or backslashes; expected {_EXAMPLE}")
    return f"{owner}/{repo}", revision, path


def _hub_cache_dir() -> str:
    """The cache huggingface_hub downloads into (read from it at call time, for the messages)."""
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def _fetch(url: str, repo_id: str, revision: str | None, path_in_repo: str, *, label: str) -> Path:
    """``hf_hub_download`` of one file; its errors become :class:`WeightsUnavailableError` naming ``label``."""
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.utils import EntryNotFoundError  # where 0.23 and later all have it
    except ImportError as err:
        raise WeightsUnavailableError(f"{label} is on the Hugging Face Hub ({url}), which needs the huggingface_hub "
                                      f"package: pip install 'huggingface_hub>=0.23'") from err
    offline = is_offline()
    try:
        local = hf_hub_download(repo_id, filename=path_in_repo, revision=revision, local_files_only=offline)
    except (OSError, ValueError, EntryNotFoundError) as err:  # the Hub's HTTP, cache and validation errors
        where = f"{repo_id} (file {path_in_repo}" + (f", revision {revision})" if revision else ")")
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if offline:
            raise WeightsUnavailableError(
                f"{label} ({url}) is not in the Hugging Face cache {_hub_cache_dir()} and downloads are off "
                f"(ZOO_OFFLINE/HF_HUB_OFFLINE). Fetch it once online (unset both), or copy the cache from another "
                f"machine, or run: hf download {repo_id} {path_in_repo}"
                + (f" --revision {revision}" if revision else "") + f"\n(huggingface_hub: {detail})"
            ) from err
        raise WeightsUnavailableError(
            f"could not download {label} from the Hugging Face Hub: {where}: {detail}\nCheck the address, your "
            "connection, and for a private or gated repository your token (hf auth login / $HF_TOKEN)."
        ) from err
    return Path(local)


def resolve_hf_weights(url: str, *, filename: str | None = None) -> Path:
    """Local path of the file an ``hf://`` address names, fetched into huggingface_hub's cache when needed.

    The sha256 is not checked here: the caller compares the file with its record (:func:`zoo.weights.verify_file`).

    Args:
        url: ``hf://<owner>/<repo>[@<revision>]/<path/to/file>``.
        filename: the name zoo's record gives the file (``WeightsFile.file_name``), used in messages so they say which
            weights are missing; the last part of the path when ``None``.

    Returns:
        The file in huggingface_hub's cache (a path inside ``snapshots/<commit>/``).

    Raises:
        ValueError: a malformed address, or one that names no file.
        WeightsUnavailableError: offline and not cached, or the Hub could not provide the file (unknown repository,
            revision or file, no connection); the message says which and what to do.
    """
    repo_id, revision, path = parse_hf_url(url)
    if not path:
        raise ValueError(f"{url!r} names a repository, not a file in it; expected {_EXAMPLE}")
    label = f"weights {filename or PurePosixPath(path).name}"
    return _fetch(url, repo_id, revision, path, label=label)


def download_hf_bundle(url: str) -> Path:
    """Local folder of a zoo bundle published on the Hub (``zoo publish --repo-id``), fetched when needed.

    ``<path>/model.safetensors`` and ``<path>/config.json`` are fetched from the same commit (the one the revision
    resolves to when the weights are fetched), so the two always belong together even while the branch moves.

    Args:
        url: ``hf://<owner>/<repo>[@<revision>]/<bundle folder in the repo>``, e.g.
            ``"hf://me/zoo-weights/vsait.gta2cityscapes"``; without a path, the bundle at the repository's root.

    Returns:
        The folder in huggingface_hub's cache holding both files; ``zoo.hub.load(folder)`` loads it (and checks the
        weights against the ``weights_sha256`` of ``config.json``).

    Raises:
        ValueError: a malformed address.
        WeightsUnavailableError: either file could not be had (see :func:`resolve_hf_weights`).
    """
    repo_id, revision, path = parse_hf_url(url)
    prefix = f"{path}/" if path else ""
    label = f"bundle {path or repo_id}"
    weights_name, config_name = BUNDLE_FILES
    weights = _fetch(url, repo_id, revision, prefix + weights_name, label=f"{label} ({weights_name})")
    # .../snapshots/<commit>/<path>/model.safetensors: pin the second file to the commit the first one came from.
    snapshot = weights.parents[len(PurePosixPath(prefix + weights_name).parts) - 1]
    commit = snapshot.name if re.fullmatch(r"[0-9a-f]{40}", snapshot.name) else revision
    config = _fetch(url, repo_id, commit, prefix + config_name, label=f"{label} ({config_name})")
    if config.parent != weights.parent:
        raise WeightsUnavailableError(f"{url}: {weights_name} and {config_name} were fetched into different folders "
                                      f"({weights.parent}, {config.parent}); delete the bundle from the Hugging Face "
                                      f"cache {_hub_cache_dir()} and try again")
    return weights.parent
