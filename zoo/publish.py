"""Release trained weights: a bundle folder with a model card, optionally uploaded to the Hugging Face Hub.

:func:`publish` (``zoo publish``) turns a run folder of ``zoo fit``, a ``.ckpt`` or a zoo bundle into a folder anyone
can load with ``zoo.load(folder)``, and, given a repository, into ``hf://<repo_id>/<name>``::

    published/vsait.gta2cityscapes/
        model.safetensors      the weights, no pickle (zoo.hub.save_bundle)
        config.json            method, class path, constructor arguments, weights_sha256 (checked on every load)
        README.md              the model card: what it is, licence, training data, metrics, sha256, how to load it
        training_config.yaml   the run's resolved config.yaml, when the run folder has one
        SHA256SUMS             every other file's digest (sha256sum -c SHA256SUMS)

Why a separate step rather than uploading checkpoints: a Lightning ``.ckpt`` carries optimizer state and needs the
unpickler, a bundle is the weights alone as safetensors plus JSON; the card keeps what someone downloading the file
needs to judge it (licence, data, measured numbers) next to the digest that identifies it.

Metrics come from ``zoo evaluate``: the ``metrics.json`` it writes for the published checkpoint
(``<run>/evaluation/<checkpoint name>/metrics.json``) is read when present and its numbers go into the card, provided
the file it measured has the same sha256 as the one published; ``card_metrics`` adds to or overrides them.

The upload goes through ``huggingface_hub.HfApi`` (``create_repo`` + ``upload_folder`` into ``<repo>/<name>/``); an
object with those two methods can be passed instead (tests pass one that copies into a folder). With
``ZOO_OFFLINE=1`` or ``HF_HUB_OFFLINE=1`` the upload is refused, after the folder is written.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from zoo.weights import file_sha256, is_offline

__all__ = ["DEFAULT_LICENSE", "PUBLISHED_FILES", "HubApi", "PublishResult", "UploadError", "publish"]

#: Licence written on the card when none is given: the card then says plainly that it is not known.
DEFAULT_LICENSE = "unknown — set --license"
#: Folder that bundles are written under when no ``output_dir`` is given: ``./published/<name>/``.
DEFAULT_OUTPUT_ROOT = Path("published")
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
CARD_FILE = "README.md"
TRAINING_CONFIG_FILE = "training_config.yaml"
CHECKSUMS_FILE = "SHA256SUMS"
#: Every file :func:`publish` may write into a bundle folder; a folder holding anything else is refused, so that an
#: upload never carries stray files along.
PUBLISHED_FILES = (WEIGHTS_FILE, CONFIG_FILE, CARD_FILE, TRAINING_CONFIG_FILE, CHECKSUMS_FILE)
# The file zoo evaluate writes (zoo.evaluate.write_report) and the folder zoo evaluate writes it to in a run folder.
_METRICS_FILE = "metrics.json"
_EVALUATION_DIR = "evaluation"
_RUN_CONFIG = "config.yaml"
_RUN_FILE = "run.json"
_TAG = re.compile(r"[a-z0-9_]+")
_REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")


class UploadError(RuntimeError):
    """The bundle was written but not uploaded (offline, or the Hub refused it); the message says where it is and
    how to upload it later."""


class HubApi(Protocol):
    """What :func:`publish` needs of ``huggingface_hub.HfApi``: the two calls of an upload."""

    def create_repo(self, repo_id: str, **kwargs: Any) -> Any: ...

    def upload_folder(self, *, folder_path: str, repo_id: str, path_in_repo: str, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class PublishResult:
    """What :func:`publish` wrote (and uploaded).

    Attributes:
        name: the published name, ``<method>.<tag>``.
        folder: the bundle folder.
        sha256: hex sha256 of ``folder / "model.safetensors"``.
        size_bytes: size of ``model.safetensors``.
        source: the file the model was read from (checkpoint, bundle weights).
        run_folder: the ``zoo fit`` run folder the checkpoint belongs to, if any.
        metrics: the numbers on the card (``"<direction>/<metric>"`` from ``zoo evaluate``, plus ``card_metrics``).
        repo_id: the Hub repository uploaded to, or ``None``.
        commit: the Hub commit of the upload, when the API reported one.
    """

    name: str
    folder: Path
    sha256: str
    size_bytes: int
    source: Path
    run_folder: Path | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    repo_id: str | None = None
    commit: str | None = None

    @property
    def weights(self) -> Path:
        """The published ``model.safetensors``."""
        return self.folder / WEIGHTS_FILE

    @property
    def card(self) -> Path:
        """The model card, ``README.md``."""
        return self.folder / CARD_FILE

    @property
    def url(self) -> str | None:
        """``hf://<repo_id>/<name>`` (what ``zoo.load`` takes) when uploaded, else ``None``."""
        return f"hf://{self.repo_id}/{self.name}" if self.repo_id else None

    def registry_snippet(self) -> str:
        """Python code registering the uploaded weights as a pretrained name (for a method file of zoo).

        The URL is pinned to the upload's commit when known, and ``filename`` gives the file a unique name in local
        weight folders (every bundle's weights are called ``model.safetensors``).
        """
        if not self.repo_id:
            raise ValueError("only uploaded weights can be registered: publish with repo_id=OWNER/REPO")
        config = json.loads((self.folder / CONFIG_FILE).read_text())
        revision = f"@{self.commit}" if self.commit else ""
        metrics = {k: v for k, v in self.metrics.items() if isinstance(v, (int, float))}
        return (
            f'register_pretrained("{self.name}", PretrainedEntry(\n'
            f'    method="{config["method"]}",\n'
            f"    init_args={config.get('init_args', {})!r},\n"
            f'    url="hf://{self.repo_id}{revision}/{self.name}/{WEIGHTS_FILE}",\n'
            f'    sha256="{self.sha256}",\n'
            f'    filename="{self.name}.safetensors",\n'
            f"    measured_metrics={metrics!r},\n"
            "))\n"
        )


# ------------------------------------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class _Source:
    """Where the weights come from: the path given to ``zoo.hub.load`` and what lies around it."""

    load_path: Path  # what zoo.hub.load reads: a .ckpt, a bundle folder or a .safetensors file
    weights_file: Path  # the file whose sha256 identifies the weights (what zoo evaluate records)
    run_folder: Path | None
    training_config: Path | None
    metrics_file: Path | None


def _run_folder_of(checkpoint: Path) -> Path | None:
    """The run folder of ``<run>/checkpoints/<file>.ckpt`` (a folder with ``run.json`` or ``config.yaml``)."""
    for candidate in (checkpoint.parent.parent, checkpoint.parent):
        if (candidate / _RUN_FILE).is_file() or (candidate / _RUN_CONFIG).is_file():
            return candidate
    return None


def _checkpoint_in(folder: Path) -> Path:
    """``checkpoints/last.ckpt`` of a run folder, else the newest ``.ckpt`` anywhere below it."""
    last = folder / "checkpoints" / "last.ckpt"
    if last.is_file():
        return last
    checkpoints = [path for path in folder.rglob("*.ckpt") if path.is_file()]
    if not checkpoints:
        raise FileNotFoundError(f"{folder} holds no checkpoint (looked for checkpoints/last.ckpt and any *.ckpt below "
                                "it) and is not a zoo bundle (no model.safetensors); give a .ckpt file or a bundle")
    return max(checkpoints, key=lambda path: path.stat().st_mtime)


def _find_source(source: str | os.PathLike[str]) -> _Source:
    path = Path(source).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"no such run folder, checkpoint or bundle: {path}")
    if path.is_dir() and (path / WEIGHTS_FILE).is_file():  # a bundle folder (perhaps one published before)
        config = path / TRAINING_CONFIG_FILE
        found = path / _METRICS_FILE
        return _Source(path, path / WEIGHTS_FILE, None, config if config.is_file() else None,
                       found if found.is_file() else None)
    if path.is_file() and path.suffix == ".safetensors":
        return _Source(path, path, None, None, None)
    if path.is_dir():
        path = _checkpoint_in(path)
    elif path.suffix != ".ckpt":
        raise ValueError(f"{path} is not a run folder, a .ckpt checkpoint or a zoo bundle (.safetensors or its folder)")
    run_folder = _run_folder_of(path)
    config = run_folder / _RUN_CONFIG if run_folder is not None else None
    found = run_folder / _EVALUATION_DIR / path.stem / _METRICS_FILE if run_folder is not None else None
    return _Source(path, path, run_folder, config if config is not None and config.is_file() else None,
                   found if found is not None and found.is_file() else None)


# ----------------------------------------------------------------------------------------------------- checks


def _check_name_format(name: str) -> tuple[str, str]:
    """``(method, tag)`` of a name ``<registered method>.<tag>``; a ValueError says what is wrong."""
    from zoo.registry import METHODS
    from zoo.weights import load_catalog

    method, dot, tag = name.partition(".")
    if not dot or not method or not _TAG.fullmatch(tag):
        raise ValueError(f"--name {name!r} must look like <method>.<tag>, the tag made of lowercase letters, digits "
                         "and '_' (e.g. vsait.gta2cityscapes)")
    load_catalog()
    if method not in METHODS:
        raise ValueError(f"--name {name!r}: {method!r} is not a registered method; registered methods: "
                         f"{', '.join(sorted(METHODS))}")
    return method, tag


def _check_output_folder(folder: Path) -> None:
    """Refuse a folder holding files other than a bundle's, so that nothing unrelated is overwritten or uploaded."""
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"output {folder} is a file, not a folder")
    if folder.is_dir():
        others = sorted(entry.name for entry in folder.iterdir() if entry.name not in PUBLISHED_FILES)
        if others:
            shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
            raise ValueError(f"output folder {folder} holds files that are not part of a bundle ({shown}); choose an "
                             "empty or new folder with --output")


def _check_repo_id(repo_id: str) -> None:
    if not _REPO_ID.fullmatch(repo_id) or "--" in repo_id or ".." in repo_id:
        raise ValueError(f"--repo-id {repo_id!r} must look like OWNER/REPO (letters, digits, '-', '_', '.')")


# ----------------------------------------------------------------------------------------------------- metrics


def _number(value: Any) -> Any:
    """A JSON value for the card: finite numbers as they are, anything else as text."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return value if math.isfinite(value) else str(value)


def _read_evaluation(metrics_file: Path, accepted_digests: set[str], *, explicit: bool) -> dict[str, Any] | None:
    """The result ``zoo evaluate`` wrote, if it measured these weights (one of ``accepted_digests``).

    A result that measured other weights is an error when the file was named explicitly, else a warning (it is left
    out of the card).
    """
    try:
        result = json.loads(metrics_file.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{metrics_file} is not a readable metrics.json of zoo evaluate: {err}") from err
    if not isinstance(result, Mapping) or not isinstance(result.get("metrics"), Mapping):
        raise ValueError(f"{metrics_file} has no 'metrics' table; it does not look like zoo evaluate's metrics.json")
    measured = (result.get("model") or {}).get("weights_sha256") if isinstance(result.get("model"), Mapping) else None
    if measured and measured not in accepted_digests:
        message = (f"{metrics_file} measured weights with sha256 {measured}, not the ones published (sha256 "
                   f"{' or '.join(sorted(accepted_digests))}); re-run zoo evaluate on them")
        if explicit:
            raise ValueError(message)
        warnings.warn(message + "; its numbers are left out of the card", stacklevel=3)
        return None
    return dict(result)


def _flatten_metrics(result: Mapping[str, Any]) -> dict[str, Any]:
    """``{"a2b/fid": 42.0, ...}`` from the per-direction ``metrics`` table of a zoo evaluate result."""
    flat: dict[str, Any] = {}
    for direction, values in result["metrics"].items():
        if isinstance(values, Mapping):
            for metric, value in values.items():
                flat[f"{direction}/{metric}"] = _number(value)
    return flat


# -------------------------------------------------------------------------------------------------------- card


def _training_data(training_config: Path | None) -> dict[str, Any] | None:
    """The ``data`` section (class path and arguments that are set) of a run's resolved config, if readable."""
    if training_config is None:
        return None
    import yaml

    try:
        config = yaml.safe_load(training_config.read_text())
    except (OSError, yaml.YAMLError) as err:
        warnings.warn(f"cannot read the training config {training_config} ({err}); the card leaves the data out",
                      stacklevel=3)
        return None
    data = config.get("data") if isinstance(config, Mapping) else None
    if not isinstance(data, Mapping):
        return None
    init_args = data.get("init_args") if isinstance(data.get("init_args"), Mapping) else {}
    return {"class_path": data.get("class_path"),
            "init_args": {key: value for key, value in init_args.items() if value is not None}}


def _cell(text: str) -> str:
    """``text`` for a cell of a Markdown table (a ``|`` in it would end the cell)."""
    return str(text).replace("|", r"\|")


def _format_metric(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) >= 10 else f"{value:.4f}"
    return str(value)


def _json_block(value: Any) -> str:
    return "```json\n" + json.dumps(value, indent=2, sort_keys=True, default=str) + "\n```"


def _model_card(
    *,
    name: str,
    config: Mapping[str, Any],
    sha256: str,
    size_bytes: int,
    license: str,
    source: _Source,
    load_address: str,
    training_data: dict[str, Any] | None,
    metrics: Mapping[str, Any],
    evaluation: Mapping[str, Any] | None,
    given_metrics: set[str],
) -> str:
    """The ``README.md`` of a bundle. Local paths are reduced to file and folder names: the card may be public."""
    origin = source.load_path.name
    if source.run_folder is not None:
        origin += f" of the run {source.run_folder.parent.name}/{source.run_folder.name}"
    lines = [
        f"# {name}",
        "",
        f"Weights of the `{config.get('method')}` method of zoo, the image-to-image translation model zoo, "
        f"published with `zoo publish` from `{origin}`.",
        "",
        "| | |",
        "|---|---|",
        f"| name | `{name}` |",
        f"| method | `{config.get('method')}` |",
        f"| class | `{config.get('class_path')}` |",
        f"| licence | {_cell(license)} |",
        f"| weights | `{WEIGHTS_FILE}`, {size_bytes:,} bytes |",
        f"| sha256 | `{sha256}` |",
        f"| zoo version | {config.get('zoo_version', 'unknown')} |",
        "",
        "## Usage",
        "",
        "```python",
        "import zoo",
        "",
        f'model = zoo.load("{load_address}")  # checks the sha256 of {WEIGHTS_FILE} on every load',
        "images_b = model.translate(images_a)  # (B, 3, H, W) tensors in [0, 1]",
        "```",
        "",
        f"or `zoo translate --model {load_address} --input IMAGES --output OUT`.",
        "",
        "## Constructor arguments",
        "",
        _json_block(config.get("init_args", {})),
        "",
        "## Training data",
        "",
    ]
    if training_data is not None:
        lines += [f"`{training_data['class_path']}` with", "", _json_block(training_data["init_args"]), "",
                  f"The run's whole resolved config is in `{TRAINING_CONFIG_FILE}`.", ""]
    else:
        lines += ["Not recorded: the weights were published without the `config.yaml` of the run that trained them.",
                  ""]
    lines += ["## Metrics", ""]
    if metrics:
        lines += ["| metric | value | from |", "|---|---|---|"]
        for key, value in metrics.items():
            origin = "given" if key in given_metrics else "zoo evaluate"
            lines.append(f"| {_cell(key)} | {_cell(_format_metric(value))} | {origin} |")
        lines.append("")
        if evaluation is not None:
            data = evaluation.get("data") if isinstance(evaluation.get("data"), Mapping) else {}
            settings = evaluation.get("settings") if isinstance(evaluation.get("settings"), Mapping) else {}
            details = [f"{key}: {value}" for key, value in (("test images", data.get("test_images")),
                                                             ("max images", settings.get("max_images")),
                                                             ("seed", settings.get("seed"))) if value is not None]
            lines.append("Measured by `zoo evaluate`" + (f" ({', '.join(details)})" if details else "") + ".")
            for key, value in (evaluation.get("protocol") or {}).items():
                text = ", ".join(f"{k}: {v}" for k, v in value.items()) if isinstance(value, Mapping) else str(value)
                lines.append(f"- {key}: {text}")
            lines.append("")
    else:
        lines += ["None recorded. Measure them with `zoo evaluate --model CKPT --config CONFIG` and publish again, or "
                  "give them with `zoo publish ... --metric KEY=VALUE`.", ""]
    lines += [
        "## Files",
        "",
        f"- `{WEIGHTS_FILE}`: the weights (safetensors, no pickle); its metadata repeats the configuration",
        f"- `{CONFIG_FILE}`: method, class path, constructor arguments and `weights_sha256`, checked on load",
    ]
    if training_data is not None or source.training_config is not None:
        lines.append(f"- `{TRAINING_CONFIG_FILE}`: the resolved config of the training run")
    lines += [f"- `{CHECKSUMS_FILE}`: sha256 of every file (`sha256sum -c {CHECKSUMS_FILE}`)", ""]
    return "\n".join(lines)


def _write_checksums(folder: Path) -> Path:
    """``SHA256SUMS`` in ``sha256sum`` format for every other file of the bundle."""
    names = sorted(entry.name for entry in folder.iterdir() if entry.is_file() and entry.name != CHECKSUMS_FILE)
    path = folder / CHECKSUMS_FILE
    path.write_text("".join(f"{file_sha256(folder / name)}  {name}\n" for name in names))
    return path


# ------------------------------------------------------------------------------------------------------ upload


def _default_hub_api() -> HubApi:
    try:
        from huggingface_hub import HfApi
    except ImportError as err:
        raise UploadError("uploading needs the huggingface_hub package: pip install 'huggingface_hub>=0.23'") from err
    return HfApi()


def _upload(folder: Path, *, name: str, repo_id: str, hub_api: HubApi | None, commit_message: str) -> str | None:
    """Upload ``folder`` to ``<repo_id>/<name>/``; returns the commit id when the API reports one."""
    later = (f"The bundle was written at {folder} (its card already names hf://{repo_id}/{name}); upload it later "
             f"with: hf upload {repo_id} {folder} {name}")
    if hub_api is None and is_offline():
        raise UploadError(f"not uploading to {repo_id}: uploads are off (ZOO_OFFLINE/HF_HUB_OFFLINE is set). {later}")
    api = hub_api if hub_api is not None else _default_hub_api()
    try:
        api.create_repo(repo_id, exist_ok=True, repo_type="model")
        info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, path_in_repo=name, repo_type="model",
                                 commit_message=commit_message)
    except Exception as err:  # network, authentication, permissions: the bundle itself is fine
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UploadError(f"upload to {repo_id} failed: {first}\nCheck your token (hf auth login / $HF_TOKEN) and that "
                          f"you may write to {repo_id}. {later}") from err
    commit = getattr(info, "oid", None)
    return commit if isinstance(commit, str) else None


# ------------------------------------------------------------------------------------------------------- publish


def publish(
    source: str | os.PathLike[str],
    *,
    name: str,
    output_dir: str | os.PathLike[str] | None = None,
    repo_id: str | None = None,
    card_metrics: Mapping[str, Any] | None = None,
    hub_api: HubApi | None = None,
    license: str = DEFAULT_LICENSE,
    metrics_file: str | os.PathLike[str] | None = None,
    trust_code: bool = False,
) -> PublishResult:
    """Write a release bundle of trained weights (and upload it to the Hugging Face Hub with ``repo_id``).

    Args:
        source: a ``zoo fit`` run folder (its ``checkpoints/last.ckpt``, else the newest ``.ckpt`` below it), a
            ``.ckpt`` file, a bundle folder or a bundle ``.safetensors`` file.
        name: ``<method>.<tag>``: the registered method of the model and a tag of lowercase letters, digits and
            ``_`` (``"vsait.gta2cityscapes"``); the folder name and the path in the repository.
        output_dir: the bundle folder (default ``./published/<name>``); it must be new, empty or hold a bundle only.
        repo_id: ``OWNER/REPO`` of a Hub model repository (created if missing); the bundle goes to ``<name>/`` in it.
        card_metrics: numbers for the card (``{"a2b/fid": 41.2}``), added to and overriding those of ``zoo
            evaluate``.
        hub_api: an object with ``create_repo`` and ``upload_folder`` used instead of ``huggingface_hub.HfApi()``.
        license: the licence of the weights, written on the card.
        metrics_file: a ``metrics.json`` of ``zoo evaluate`` to use instead of the one found in the run folder
            (``<run>/evaluation/<checkpoint name>/metrics.json``); it must have measured these weights.
        trust_code: passed to :func:`zoo.hub.load` for a model class that is not a registered method.

    Returns:
        A :class:`PublishResult` (folder, sha256, size, metrics, Hub address).

    Raises:
        FileNotFoundError: ``source`` does not exist or holds no checkpoint.
        ValueError: a malformed ``name`` or ``repo_id``, a method other than the model's, an output folder holding
            other files, or an explicit ``metrics_file`` of other weights.
        UploadError: the bundle was written but not uploaded (offline without ``hub_api``, or the Hub failed); the
            message says where the bundle is and how to upload it later.
    """
    import zoo.hub

    method, _ = _check_name_format(name)
    if repo_id is not None:
        _check_repo_id(repo_id)
    folder = Path(output_dir).expanduser() if output_dir is not None else DEFAULT_OUTPUT_ROOT / name
    _check_output_folder(folder)
    found = _find_source(source)

    model = zoo.hub.load(found.load_path, trust_code=trust_code)
    model_method = getattr(type(model), "method_name", None)
    if model_method != method:
        raise ValueError(f"--name {name!r} names the method {method!r}, but {found.load_path} holds a "
                         f"{model_method or type(model).__qualname__} model; use --name {model_method}.<tag>")
    source_digest = file_sha256(found.weights_file)

    folder.mkdir(parents=True, exist_ok=True)
    zoo.hub.save_bundle(model, folder)
    weights = folder / WEIGHTS_FILE
    digest = file_sha256(weights)
    config = json.loads((folder / CONFIG_FILE).read_text())

    copied_config = folder / TRAINING_CONFIG_FILE
    if found.training_config is not None:
        if found.training_config.resolve() != copied_config.resolve():
            shutil.copyfile(found.training_config, copied_config)
    else:
        copied_config.unlink(missing_ok=True)  # a stale copy from an earlier publish into this folder

    evaluation = None
    chosen_metrics = Path(metrics_file).expanduser() if metrics_file is not None else found.metrics_file
    if chosen_metrics is not None:
        evaluation = _read_evaluation(chosen_metrics, {source_digest, digest}, explicit=metrics_file is not None)
    metrics = _flatten_metrics(evaluation) if evaluation is not None else {}
    given = {str(key): _number(value) for key, value in (card_metrics or {}).items()}
    metrics.update(given)

    load_address = f"hf://{repo_id}/{name}" if repo_id else str(folder)
    card = _model_card(name=name, config=config, sha256=digest, size_bytes=weights.stat().st_size, license=license,
                       source=found, load_address=load_address, training_data=_training_data(found.training_config),
                       metrics=metrics, evaluation=evaluation, given_metrics=set(given))
    (folder / CARD_FILE).write_text(card)
    _write_checksums(folder)

    result = PublishResult(name=name, folder=folder, sha256=digest, size_bytes=weights.stat().st_size,
                           source=found.load_path, run_folder=found.run_folder, metrics=metrics)
    if repo_id is None:
        return result
    commit = _upload(folder, name=name, repo_id=repo_id, hub_api=hub_api,
                     commit_message=f"zoo publish {name} (sha256 {digest[:12]})")
    return dataclasses.replace(result, repo_id=repo_id, commit=commit)
