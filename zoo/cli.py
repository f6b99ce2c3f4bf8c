"""The ``zoo`` command.

Training and evaluation go through Lightning's CLI with a YAML config whose ``model`` and ``data`` sections name the
classes (``class_path``) and their constructor arguments (``init_args``)::

    zoo fit --config configs/tiny/cyclegan.yaml --trainer.max_steps=1000 --model.init_args.lambda_a=5
    zoo fit --config configs/tiny/cyclegan.yaml --print_config        # the resolved config, overrides applied
    zoo validate --config runs/cyclegan/version_0/config.yaml --ckpt_path runs/cyclegan/version_0/checkpoints/last.ckpt

Three more commands work on trained models and do not build a Trainer::

    zoo list [PATTERN] [--pretrained]
    zoo download NAME
    zoo translate --model NAME|CKPT|BUNDLE --input IMAGE_OR_FOLDER --output FOLDER [--direction a2b]
                  [--num-styles K | --reference IMAGE]                      # MUNIT, DRIT
                  [--exemplar IMAGE [--exemplar-mask M] [--mask M] [--mask-ids 26,27]]   # LOMIT
                  [--tile 256 --tile-overlap 32]                            # super-resolution

``main(args)`` is the entry point of the ``zoo`` script and of ``python -m zoo``; tests call ``main([...])``.
This module imports only the standard library until a command needs more, so ``zoo --help`` answers at once.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import inspect
import os
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["main", "translate_images", "describe_parse_error", "fit_summary", "ZooCLI"]  # noqa: F822 (ZooCLI: lazy)

TRAINER_COMMANDS = ("fit", "validate", "test", "predict")
EXTRA_COMMANDS = ("translate", "list", "download")

HELP = """\
usage: zoo <command> [options]

Train, evaluate and run image-to-image translation models.

training and evaluation (`zoo <command> --help` lists every option):
  fit         train:  zoo fit --config CONFIG.yaml [--trainer.max_steps=N] [--model.init_args.KEY=VALUE]
  validate    run the validation loop:  zoo validate --config CONFIG.yaml --ckpt_path CKPT
  test        run the test loop
  predict     run the predict loop
  (add --print_config to any of them to see the resolved config instead of running)

models:
  translate   translate an image or a folder of images:
              zoo translate --model NAME|CKPT|BUNDLE --input IMAGE_OR_FOLDER --output FOLDER
  list        list registered methods and pretrained weights:  zoo list [PATTERN]
  download    fetch registered weights into the cache:  zoo download NAME

options:
  -h, --help  show this message and exit
  --version   print zoo's version and exit
"""


def _fail(message: str) -> None:
    """Report a bad command line or input as one ``zoo: error:`` line and exit with status 2 (as argparse does)."""
    print(f"zoo: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _did_you_mean(name: str, candidates: Sequence[str]) -> str:
    match = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


# ------------------------------------------------------------------------------------------ config errors, one line


def _readable_type(text: str) -> str:
    literal = re.fullmatch(r"typing\.Literal\[(.*)\]", text.strip())
    if literal:
        return f"one of {literal.group(1)}"
    text = re.sub(r"<class '(?:[\w.]+\.)?(\w+)'>", r"\1", text)
    return text.replace("typing.", "")


def _init_parameters(class_path: str) -> list[str]:
    """Constructor argument names of the class at ``class_path`` (empty when it cannot be imported)."""
    import importlib

    module_name, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), name)
        params = inspect.signature(cls.__init__).parameters.values()
    except (ImportError, AttributeError, ValueError, TypeError):
        return []
    return [p.name for p in params if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def describe_parse_error(message: str, known_keys: Sequence[str] = ()) -> str:
    """Condense one of jsonargparse's multi-line parse errors into one line that names the key.

    Args:
        message: the text of the ``ArgumentError``.
        known_keys: dotted option names of the parser (``trainer.max_steps``), used to suggest a fix for typos.

    Example:
        >>> describe_parse_error('Parser key "trainer.max_steps":\\n  Expected a <class \\'int\\'>. Got value: ten')
        "bad value 'ten' for 'trainer.max_steps': expected int"
    """
    choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
    if choice:
        options = re.findall(r"'([^']*)'", choice.group(2))
        return f"unknown command '{choice.group(1)}'{_did_you_mean(choice.group(1), options)}"
    not_accepted = re.search(r"does not accept option '([^']+)'", message)
    if not_accepted:
        key = not_accepted.group(1)
        return f"unknown option '{key}'{_did_you_mean(key, known_keys)}"
    unrecognized = re.search(r"unrecognized arguments: (\S+)", message)
    if unrecognized:
        key = unrecognized.group(1).lstrip("-").split("=", 1)[0]
        return f"unknown option '{key}'{_did_you_mean(key, known_keys)}"
    missing_file = re.search(r'Parser key "(\w*config\w*)":\s*File does not exist: (.*)', message)
    if missing_file:
        return f"config file not found: {missing_file.group(2).strip()}"

    keys = re.findall(r'Parser key "([^"]+)"', message)
    outer = keys[0] if keys else ""
    class_path = re.search(r"Problem with given class_path '([^']+)'", message)
    unknown = re.search(r"Option '([^']+)' is not accepted", message)
    if unknown:
        name = unknown.group(1)
        key = f"{outer}.init_args.{name}" if outer and class_path else name
        candidates = _init_parameters(class_path.group(1)) if class_path else known_keys
        return f"unknown option '{key}'{_did_you_mean(name, candidates)}"
    if class_path and len(keys) <= 1:
        # the class itself failed (not one of its arguments): the line after the class path says why
        after = message[class_path.end() :].lstrip(": \n").splitlines()
        reason = after[0].strip(" :-") if after else ""
        return f"bad value for '{outer}': cannot use class '{class_path.group(1)}'" + (f" ({reason})" if reason else "")
    expected = re.search(r"Expected a (.*?)\. Got value: (.*)", message)
    if expected:
        key = outer
        if class_path and len(keys) > 1:
            key = f"{outer}.init_args.{keys[-1]}"
        return f"bad value '{expected.group(2).strip()}' for '{key}': expected {_readable_type(expected.group(1))}"
    given = re.search(r"Given value: (.*)", message)
    not_subclass = re.search(r"Import path (?:(\S+) )?does not correspond to a subclass of (\w+)", message)
    if not_subclass and outer:
        name = not_subclass.group(1) or (given.group(1).strip() if given else "the class")
        return f"bad value for '{outer}': {name} is not a subclass of {not_subclass.group(2)}"
    if "Does not validate against any of the Union subtypes" in message and given and outer:
        alternatives = []
        for line in re.findall(r"- Expected a (.*)", message):
            if " but " in line:
                continue
            text = "a class path" if line.startswith("dot import path") else _readable_type(line.strip())
            alternatives.append("null" if "NoneType" in text else text)
        if alternatives:
            return f"bad value '{given.group(1).strip()}' for '{outer}': expected {' or '.join(alternatives)}"
    not_importable = re.search(r"Expected a dot import path string: (\S+)", message) or re.search(
        r"Import path (\S+) does not", message
    )
    if not_importable and outer:
        return f"bad value for '{outer}': cannot import class '{not_importable.group(1)}'"
    # anything else: the first line that says something, with the key
    lines = [line.strip(" -") for line in message.splitlines() if line.strip(" -")]
    skip = ("Parser key", "Does not validate", "Subtypes:", "Errors:", "Given value", "Expected a <class 'NoneType'>")
    detail = next((line for line in lines if not line.startswith(skip)), lines[0] if lines else message)
    return f"bad value for '{outer}': {detail}" if outer else detail


def _describe_instantiation_error(message: str) -> str:
    """One line for a constructor's error, without the union-type report jsonargparse wraps it in."""
    if "Does not validate against any of the Union subtypes" not in message:
        return message.strip()
    reasons = [
        line.strip()[2:] for line in message.splitlines() if line.strip().startswith("- ") and "NoneType" not in line
    ]
    class_path = re.search(r"class_path='([^']+)'", message)
    reason = reasons[0] if reasons else message.strip().splitlines()[0]
    return f"cannot create {class_path.group(1)}: {reason}" if class_path else reason


def _parser_keys(parser: Any) -> list[str]:
    """Dotted option names a jsonargparse parser accepts (``trainer.max_steps``, ``model``, ...)."""
    keys = []
    for action in getattr(parser, "_actions", []):
        for option in action.option_strings:
            if option.startswith("--"):
                keys.append(option[2:])
    return keys


# ------------------------------------------------------------------------------------------------------ ZooCLI


def _define_zoo_cli() -> type:
    """Build the :class:`ZooCLI` class; deferred so that ``zoo --help`` need not import Lightning."""
    from lightning.pytorch import LightningModule
    from lightning.pytorch.cli import LightningCLI

    from zoo.data import ZooDataModule
    from zoo.trainer import ZooTrainer

    class ZooCLI(LightningCLI):
        """Lightning's CLI with zoo's defaults.

        - ``model`` is any ``LightningModule`` and ``data`` any ``zoo.data.ZooDataModule``, chosen by ``class_path``
          (the short class name works for imported classes: ``class_path: CycleGAN``);
        - the Trainer is a :class:`~zoo.trainer.ZooTrainer` (``trainer.max_steps`` counts iterations);
        - the module's own ``configure_optimizers`` is never replaced (``auto_configure_optimizers=False``): GANs
          build several optimizers, and their settings are constructor arguments of each method;
        - the resolved config is saved as ``config.yaml`` in each run's fresh folder;
        - a typo or a wrongly typed value ends with one ``zoo: error:`` line naming the key (exit status 2).

        Args:
            model_class: base class of the accepted models.
            datamodule_class: base class of the accepted data modules.
            **kwargs: any other ``LightningCLI`` argument, e.g. ``args=[...]`` or ``run=False``.
        """

        def __init__(self, model_class: Any = None, datamodule_class: Any = None, **kwargs: Any) -> None:
            import zoo.methods  # noqa: F401  (imported subclasses can be named by class name: class_path: CycleGAN)

            kwargs.setdefault("subclass_mode_model", True)
            kwargs.setdefault("subclass_mode_data", True)
            kwargs.setdefault("trainer_class", ZooTrainer)
            kwargs.setdefault("auto_configure_optimizers", False)
            kwargs.setdefault("save_config_kwargs", {"config_filename": "config.yaml", "overwrite": False})
            kwargs["parser_kwargs"] = {"exit_on_error": False, **(kwargs.get("parser_kwargs") or {})}
            super().__init__(model_class or LightningModule, datamodule_class or ZooDataModule, **kwargs)

        def parse_arguments(self, parser: Any, args: Any) -> None:
            try:
                super().parse_arguments(parser, args)
            except argparse.ArgumentError as error:
                subcommand = next((a for a in (args or sys.argv[1:]) if a in TRAINER_COMMANDS), None)
                sub_parser = getattr(self, "_subcommand_parsers", {}).get(subcommand, parser)
                _fail(describe_parse_error(str(error), _parser_keys(sub_parser)))

        def instantiate_classes(self) -> None:
            try:
                super().instantiate_classes()
            except (ValueError, KeyError, OSError) as error:
                if os.environ.get("ZOO_TRACEBACK"):
                    raise
                message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
                _fail(f"{_describe_instantiation_error(str(message))} (set ZOO_TRACEBACK=1 for the traceback)")

        def instantiate_trainer(self, **kwargs: Any) -> Any:
            trainer_config = self._get(self.config_init, "trainer", default={}) or {}
            if not trainer_config.get("run_name") and "run_name" not in kwargs and self.model is not None:
                kwargs["run_name"] = getattr(type(self.model), "method_name", None) or type(self.model).__name__.lower()
            return super().instantiate_trainer(**kwargs)

        def after_fit(self) -> None:
            if self.trainer.is_global_zero:
                print(fit_summary(self.trainer, config_name=self.save_config_kwargs.get("config_filename")))

    ZooCLI.__qualname__ = "ZooCLI"
    return ZooCLI


def __getattr__(name: str) -> Any:
    if name == "ZooCLI":
        cls = _define_zoo_cli()
        globals()["ZooCLI"] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def fit_summary(trainer: Any, *, config_name: str | None = "config.yaml") -> str:
    """Where a finished ``fit`` left its checkpoint, resolved config, sample grids and logs (several lines)."""
    from zoo.callbacks.image_grid import ImageGrid

    run_dir = getattr(trainer, "run_dir", None) or Path(trainer.default_root_dir)
    iterations = getattr(trainer, "iterations", None)
    done = f"{iterations} iterations" if iterations is not None else f"{trainer.global_step} optimizer steps"
    lines = [f"zoo: fit finished after {done}; run folder {run_dir}"]
    checkpoint = trainer.checkpoint_callback
    ckpt = (checkpoint.last_model_path or checkpoint.best_model_path) if checkpoint is not None else ""
    lines.append(f"  checkpoint  {ckpt or '(none saved)'}")
    config = run_dir / config_name if config_name else None
    if config is not None and config.is_file():
        lines.append(f"  config      {config}")
    grids = [cb for cb in trainer.callbacks if isinstance(cb, ImageGrid) and cb.written]
    for grid in grids:
        lines.append(f"  samples     {grid.image_dir}/ ({len(grid.written)} grids, latest {grid.written[-1].name})")
    wandb_dir = run_dir / "wandb"
    if wandb_dir.is_dir() and os.environ.get("WANDB_MODE") in ("offline", "dryrun"):
        lines.append(f"  logs        {wandb_dir} (offline W&B run; upload with: wandb sync {wandb_dir}/offline-run-*)")
    elif wandb_dir.is_dir():
        lines.append(f"  logs        {wandb_dir}")
    elif trainer.loggers and getattr(trainer.loggers[0], "log_dir", None):
        lines.append(f"  logs        {trainer.loggers[0].log_dir}")
    if ckpt and config is not None and config.is_file():
        lines.append(f"  resume      zoo fit --config {config} --ckpt_path {ckpt}")
    return "\n".join(lines)


def _wandb_run() -> Any:
    wandb = sys.modules.get("wandb")
    return getattr(wandb, "run", None) if wandb is not None else None


def _run_trainer_command(args: list[str] | None) -> None:
    outer_run = _wandb_run()
    try:
        __getattr__("ZooCLI")(args=args)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError) as error:
        # bad data paths surface only when the DataModule is set up, inside the run: one line, like config errors
        if os.environ.get("ZOO_TRACEBACK"):
            raise
        _fail(f"{error} (set ZOO_TRACEBACK=1 for the traceback)")
    finally:
        run = _wandb_run()
        if run is not None and run is not outer_run:
            run.finish()  # so that the next command in this process (tests, notebooks) starts its own run


# --------------------------------------------------------------------------------------------------- translate


def _resolve_device(device: str) -> torch.device:
    import torch

    if device != "auto":
        try:
            return torch.device(device)
        except RuntimeError as error:
            raise ValueError(f"--device: {error}") from None
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _read_with_channels(path: Path, channels: int) -> torch.Tensor:
    """(C, H, W) in [0, 1] with the model's channel count: 16-bit kept, alpha dropped, gray <-> RGB converted."""
    from zoo.data.io import read_image

    if channels in (1, 3):
        return read_image(path, channels=channels)
    image = read_image(path, channels=3)
    if channels < 3:
        return image[:channels]
    return image.repeat(-(-channels // 3), 1, 1)[:channels]


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.size
    except OSError:
        return (0, 0)  # undecodable: read_image names the file when the batch gets to it


@contextlib.contextmanager
def _deterministic_backends() -> Iterator[None]:
    import torch

    saved = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved


def _translate_parameters(model: nn.Module) -> set[str]:
    import inspect

    return set(inspect.signature(model.translate).parameters)


def _read_mask(path: Path, ids: Sequence[int] | None) -> torch.Tensor:
    """(1, H, W) float mask in {0, 1}: a binary mask file (white = 1), or the pixels of a label map in ``ids``."""
    import numpy as np
    import torch
    from PIL import Image

    from zoo.data.io import read_image

    if ids is None:
        return (read_image(path, channels=1) > 0.5).float()
    try:
        with Image.open(path) as image:
            labels = np.asarray(image)
    except OSError as error:
        raise ValueError(f"cannot read the label map '{path}': {error}") from None
    if labels.ndim == 3:
        labels = labels[..., 0]
    return torch.from_numpy(np.isin(labels, list(ids))).float()[None]


def _mask_for(image: Path, relative: Path, mask: Path) -> Path:
    """The mask file of ``image``: ``mask`` itself, or the file under the folder ``mask`` with the same relative path
    and any image suffix."""
    from zoo.data.io import IMG_EXTENSIONS

    if mask.is_file():
        return mask
    for suffix in (relative.suffix, *IMG_EXTENSIONS):
        candidate = mask / relative.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no mask for '{image}': expected '{mask / relative.with_suffix('.png')}'")


def translate_images(
    model: str | os.PathLike[str] | nn.Module,
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    direction: str = "a2b",
    batch_size: int = 4,
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
    num_styles: int = 1,
    reference: str | os.PathLike[str] | None = None,
    exemplar: str | os.PathLike[str] | None = None,
    mask: str | os.PathLike[str] | None = None,
    exemplar_mask: str | os.PathLike[str] | None = None,
    mask_ids: Sequence[int] | None = None,
    tile: int | None = None,
    tile_overlap: int = 32,
) -> list[Path]:
    """Translate an image file or every image below a folder, and write PNG files.

    Images of equal size are batched together. Each batch is reflect-padded to ``model.size_multiple`` and
    cropped back, so any size works. Inputs are converted to the model's channel count (grayscale replicated, colour
    reduced to luma, alpha dropped; 16-bit grayscale keeps its precision). Outputs keep the input's relative path,
    with the suffix ``.png`` (``<name>_style<k>.png`` for ``num_styles > 1``), and the input's size times the
    model's ``scale``. The same call gives the same files: batch ``i`` is translated with seed ``seed + i``.

    Args:
        model: a model, or what :func:`zoo.hub.load` takes: a registered pretrained name, a ``.ckpt`` file or a
            bundle folder.
        input: an image file or a folder (searched recursively, skipping ``output`` if it lies inside).
        output: folder for the results; created if missing.
        direction: translation direction, one of ``model.directions``.
        batch_size: images per batch.
        seed: base seed for methods that sample.
        device: ``auto`` (CUDA, then MPS, then CPU) or a torch device string.
        progress: show a progress bar on stderr.
        num_styles: multimodal models (MUNIT, DRIT): random styles per input, each written to its own file.
        reference: multimodal models: an image of the target domain whose style every output takes.
        exemplar: exemplar-guided models (LOMIT): the image whose (masked) style is used.
        mask: exemplar-guided models: where to translate, a mask file for every input or a folder of masks with the
            inputs' relative paths (white = translate).
        exemplar_mask: exemplar-guided models: which region of the exemplar gives the style.
        mask_ids: read ``mask`` and ``exemplar_mask`` as label maps and use the pixels whose label is in ``mask_ids``.
        tile: translate in ``tile`` x ``tile`` blocks with ``tile_overlap`` pixels of context (bounded memory, no
            seams for super-resolution networks); ``None`` tiles by 256 for upscaling models only, 0 never tiles.
        tile_overlap: context around each block, in input pixels.

    Returns:
        The written files, in input order (``num_styles`` files per input, style by style).
    """
    import torch
    from rich.console import Console
    from rich.progress import track

    from zoo.data.io import list_images, read_image, save_image
    from zoo.utils.tiling import pad_to_multiple, translate_any_size, translate_tiled

    source, target = Path(input), Path(output)
    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
    if num_styles < 1:
        raise ValueError(f"--num-styles must be >= 1, got {num_styles}")
    if not source.exists():
        raise FileNotFoundError(f"input '{source}' does not exist")
    for flag, path in (("--reference", reference), ("--exemplar", exemplar), ("--mask", mask),
                       ("--exemplar-mask", exemplar_mask)):
        if path is not None and not Path(path).exists():
            raise FileNotFoundError(f"{flag} '{path}' does not exist")
    if source.is_dir():
        skip = target.resolve()
        files = [p for p in list_images(source, recursive=True) if skip not in p.resolve().parents]
        relative = {p: p.relative_to(source) for p in files}
    else:
        files, relative = [source], {source: Path(source.name)}
    suffixes = [".png"] if num_styles == 1 else [f"_style{k}.png" for k in range(num_styles)]
    destinations = {p: [target / (str(relative[p].with_suffix("")) + suffix) for suffix in suffixes] for p in files}
    seen: dict[Path, Path] = {}
    for p, dsts in destinations.items():
        for dst in dsts:
            if dst in seen:
                raise ValueError(f"inputs '{seen[dst]}' and '{p}' would both be written to '{dst}'; rename one of them")
            seen[dst] = p

    torch_device = _resolve_device(device)
    if isinstance(model, (str, os.PathLike)):
        from zoo.hub import load

        model = load(model, map_location=torch_device)
    model = model.to(torch_device).eval()
    name = type(model).__name__
    directions = tuple(getattr(model, "directions", ("a2b",)))
    if direction not in directions:
        raise ValueError(f"--direction {direction!r} is not offered by {name}; choose from {directions}")
    channels = model.input_channels(direction) if hasattr(model, "input_channels") else 3
    out_channels = model.output_channels(direction) if hasattr(model, "output_channels") else 3
    accepted = _translate_parameters(model)
    for flag, value, parameter in (("--num-styles", num_styles > 1, "num_styles"),
                                   ("--reference", reference, "reference"), ("--exemplar", exemplar, "exemplar"),
                                   ("--mask", mask, "mask"), ("--exemplar-mask", exemplar_mask, "exemplar_mask")):
        if value and parameter not in accepted:
            raise ValueError(f"{flag} is not supported by {name}: its translate() takes no '{parameter}'")
    if getattr(model, "requires_exemplar", False) and exemplar is None:
        raise ValueError(f"{name} translates with the style of an exemplar: pass --exemplar IMAGE")
    if mask_ids is not None and mask is None and exemplar_mask is None:
        raise ValueError("--mask-ids applies to --mask / --exemplar-mask label maps; pass one of them")
    if reference is not None and num_styles > 1:
        raise ValueError("--reference gives one style; it cannot be combined with --num-styles > 1")

    conditions: dict[str, Any] = {}
    if num_styles > 1:
        conditions["num_styles"] = num_styles
    if reference is not None:
        conditions["reference"] = read_image(reference, channels=out_channels if out_channels in (1, 3) else None)[
            None
        ].to(torch_device)
    multiple = int(getattr(model, "size_multiple", 1))
    if exemplar is not None:
        exemplar_image = _read_with_channels(Path(exemplar), out_channels)[None].to(torch_device)
        conditions["exemplar"], _ = pad_to_multiple(exemplar_image, multiple)
        if exemplar_mask is not None:
            region = _read_mask(Path(exemplar_mask), mask_ids)[None].to(torch_device)
            if region.shape[-2:] != exemplar_image.shape[-2:]:
                raise ValueError(f"--exemplar-mask '{exemplar_mask}' has size {tuple(region.shape[-2:])}, the "
                                 f"exemplar {tuple(exemplar_image.shape[-2:])}")
            conditions["exemplar_mask"], _ = pad_to_multiple(region, multiple)
    if tile is None:
        tile = 256 if int(getattr(model, "scale", 1)) > 1 else 0
    if tile and conditions:
        raise ValueError("--tile works for models without style, exemplar or mask inputs; pass --tile 0")

    sizes = {p: _image_size(p) for p in files}
    batches: list[list[Path]] = []
    for p in sorted(files, key=lambda p: (sizes[p], str(p))):
        if batches and len(batches[-1]) < batch_size and sizes[batches[-1][0]] == sizes[p]:
            batches[-1].append(p)
        else:
            batches.append([p])

    written: dict[Path, list[Path]] = {}
    console = Console(stderr=True)
    with _deterministic_backends():
        for index, batch in enumerate(
            track(batches, description="translating", console=console, disable=not progress, transient=True)
        ):
            images = torch.stack([_read_with_channels(p, channels) for p in batch]).to(torch_device)
            masks = {}
            if mask is not None:
                masks["mask"] = torch.stack(
                    [_read_mask(_mask_for(p, relative[p], Path(mask)), mask_ids) for p in batch]
                ).to(torch_device)
            if tile:
                outputs = translate_tiled(model, images, tile=tile, overlap=tile_overlap, direction=direction,
                                          seed=seed + index)
            else:
                outputs = translate_any_size(model, images, direction=direction, seed=seed + index, masks=masks,
                                             **conditions)
            for p, result in zip(batch, outputs, strict=True):
                styles = result if num_styles > 1 else result[None]
                written[p] = [save_image(image, dst) for image, dst in zip(styles, destinations[p], strict=True)]
    return [path for p in files for path in written[p]]


# ------------------------------------------------------------------------------------------------ subcommands


def _translate_command(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="zoo translate",
        description="Translate an image or a folder of images (any size) and write PNG files with the same names.",
    )
    parser.add_argument("--model", required=True, help="registered pretrained name, .ckpt file or bundle folder")
    parser.add_argument("--input", required=True, help="image file or folder (searched recursively)")
    parser.add_argument("--output", required=True, help="folder for the translated PNG files")
    parser.add_argument("--direction", default="a2b", help="translation direction (default: a2b)")
    parser.add_argument("--batch-size", type=int, default=4, help="images per batch (default: 4)")
    parser.add_argument("--seed", type=int, default=0, help="seed for methods that sample (default: 0)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps (default: auto)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    multimodal = parser.add_argument_group("multimodal models (MUNIT, DRIT)")
    multimodal.add_argument("--num-styles", type=int, default=1,
                            help="random styles per input, written as NAME_style<k>.png (default: 1)")
    multimodal.add_argument("--reference", help="image of the target domain whose style the outputs take")
    guided = parser.add_argument_group("exemplar-guided models (LOMIT)")
    guided.add_argument("--exemplar", help="image whose style (inside --exemplar-mask) is used")
    guided.add_argument("--mask", help="where to translate: a mask file, or a folder of masks named like the inputs")
    guided.add_argument("--exemplar-mask", help="which region of the exemplar gives the style")
    guided.add_argument("--mask-ids", help="read the masks as label maps and use these label ids, e.g. 26,27,28")
    sr = parser.add_argument_group("super-resolution models")
    sr.add_argument("--tile", type=int, default=None,
                    help="translate in TILE x TILE blocks so memory stays bounded (default: 256 for upscaling models, "
                         "0: never)")
    sr.add_argument("--tile-overlap", type=int, default=32, help="context around each block in pixels (default: 32)")
    ns = parser.parse_args(argv)
    mask_ids = None
    if ns.mask_ids is not None:
        try:
            mask_ids = [int(v) for v in ns.mask_ids.replace(" ", "").split(",") if v]
        except ValueError:
            _fail(f"--mask-ids must be comma-separated integers, got {ns.mask_ids!r}")
    from zoo.utils.memory import keep_freed_memory

    keep_freed_memory()  # as zoo fit does: large CPU tensors reuse freed heap memory instead of page-faulting
    try:
        written = translate_images(
            ns.model,
            ns.input,
            ns.output,
            direction=ns.direction,
            batch_size=ns.batch_size,
            seed=ns.seed,
            device=ns.device,
            progress=not ns.no_progress,
            num_styles=ns.num_styles,
            reference=ns.reference,
            exemplar=ns.exemplar,
            mask=ns.mask,
            exemplar_mask=ns.exemplar_mask,
            mask_ids=mask_ids,
            tile=ns.tile,
            tile_overlap=ns.tile_overlap,
        )
    except (FileNotFoundError, NotADirectoryError, ValueError, KeyError, OSError, RuntimeError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
        _fail(message)
    print(f"zoo: wrote {len(written)} image{'s' * (len(written) != 1)} to {ns.output}")


def _list_command(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="zoo list", description="List registered methods and pretrained weights.")
    parser.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'cycle*' (default: all)")
    parser.add_argument("--pretrained", action="store_true", help="list only pretrained weights")
    ns = parser.parse_args(argv)

    from zoo.registry import METHODS, get_pretrained, list_models

    methods = [] if ns.pretrained else list_models(ns.pattern)
    pretrained = list_models(ns.pattern, pretrained=True)
    width = max(map(len, methods + pretrained), default=0) + 2
    if not ns.pretrained:
        print("methods:")
        for name in methods:
            cls = METHODS[name]
            print(f"  {name:<{width}}{cls.__module__}.{cls.__qualname__}")
        if not methods:
            print("  (none)")
    print("pretrained weights:")
    for name in pretrained:
        entry = get_pretrained(name)
        notes = [f"direction {entry.direction}"] if entry.direction else []
        if entry.url is None:
            notes.append("no published file")
        print(f"  {name:<{width}}{', '.join(notes)}".rstrip())
    if not pretrained:
        print("  (none)")


def _download_command(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="zoo download", description="Fetch registered weights into the cache.")
    parser.add_argument("name", help="registered pretrained name, e.g. cyclegan.horse2zebra (see `zoo list`)")
    parser.add_argument("--weights-dir", default=None, help="folder searched first (default: $ZOO_WEIGHTS_DIR)")
    ns = parser.parse_args(argv)
    from zoo.hub import download_weights

    try:
        download_weights(ns.name, weights_dir=ns.weights_dir)
    except (KeyError, OSError, ValueError, RuntimeError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
        _fail(message)


_EXTRA = {"translate": _translate_command, "list": _list_command, "download": _download_command}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("zoo")
    except PackageNotFoundError:
        return "unknown"


def main(args: Sequence[str] | None = None) -> int:
    """Run the ``zoo`` command line.

    Args:
        args: the arguments after ``zoo`` (``["fit", "--config", "x.yaml"]``); ``None`` reads ``sys.argv``.

    Returns:
        0 on success. Bad arguments or inputs print one ``zoo: error:`` line and raise ``SystemExit(2)``.
    """
    argv = list(sys.argv[1:] if args is None else args)
    try:
        if not argv:
            print(HELP, file=sys.stderr)
            raise SystemExit(2)
        command = argv[0]
        if command in ("-h", "--help"):
            print(HELP)
        elif command == "--version":
            print(f"zoo {_version()}")
        elif command in _EXTRA:
            _EXTRA[command](argv[1:])
        elif command in TRAINER_COMMANDS or command.startswith("-"):
            # Lightning warns when it is given args while sys.argv has some: pass None when they are the same
            _run_trainer_command(None if args is None else argv)
        else:
            _fail(
                f"unknown command '{command}'{_did_you_mean(command, TRAINER_COMMANDS + EXTRA_COMMANDS)}; "
                "see zoo --help"
            )
    except SystemExit as exit_:
        if exit_.code in (0, None):
            return 0
        raise
    return 0
