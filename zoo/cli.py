"""The ``zoo`` command.

Training and evaluation go through Lightning's CLI with a YAML config whose ``model`` and ``data`` sections name the
classes (``class_path``) and their constructor arguments (``init_args``)::

    zoo fit --config configs/tiny/cyclegan.yaml --trainer.max_steps=1000 --model.init_args.lambda_a=5
    zoo fit --config configs/tiny/cyclegan.yaml --print_config        # the resolved config, overrides applied
    zoo validate --config runs/cyclegan/version_0/config.yaml --ckpt_path runs/cyclegan/version_0/checkpoints/last.ckpt

Three more commands work on trained models and do not build a Trainer::

    zoo list [PATTERN] [--pretrained]
    zoo download NAME | zoo download --verify [NAME ...]
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
EXTRA_COMMANDS = ("translate", "list", "download", "configs")

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
  configs     list the shipped configs, or copy one to edit:  zoo configs copy decent ./my.yaml

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
    from jsonargparse import ActionYesNo, set_parsing_settings
    from jsonargparse.typing import import_object
    from lightning.pytorch import LightningModule
    from lightning.pytorch.cli import LightningCLI, SaveConfigCallback

    import zoo.methods
    from zoo.data import ZooDataModule
    from zoo.trainer import DEFAULT_ROOT_DIR, ZooTrainer, find_run_folder, latest_run_folder

    class RunConfigSaver(SaveConfigCallback):
        """Saves the resolved config in the run folder as ``config.yaml``; a continued run that already has one
        keeps it (when equal) or writes ``config_<k>.yaml`` beside it, so no config of an earlier start is lost."""

        def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
            if not self.already_saved and self.save_to_log_dir:
                log_dir = Path(trainer.log_dir)
                name = self.config_filename
                if trainer.is_global_zero:
                    name = _free_config_name(log_dir, self.config_filename, self.parser.dump(self.config))
                self.config_filename = trainer.strategy.broadcast(name)
                if self.config_filename is None:  # the same config is already there
                    self.config_filename = "config.yaml"
                    self.already_saved = True
                    return
            super().setup(trainer, pl_module, stage)

    class ZooCLI(LightningCLI):
        """Lightning's CLI with zoo's defaults.

        - ``model`` is any ``LightningModule`` and ``data`` any ``zoo.data.ZooDataModule``, chosen by ``class_path``
          (the short class name works for imported classes: ``class_path: CycleGAN``);
        - configs may use omegaconf interpolation (``image_size: ${data.init_args.crop_size}``), resolved after
          the command-line overrides, so a value is stated once;
        - the Trainer is a :class:`~zoo.trainer.ZooTrainer` (``trainer.max_steps`` counts iterations) that keeps freed
          CPU memory for reuse unless ``trainer.keep_freed_memory: false``;
        - the module's own ``configure_optimizers`` is never replaced (``auto_configure_optimizers=False``): GANs
          build several optimizers, and their settings are constructor arguments of each method;
        - ``--ckpt_path`` of a zoo run (or ``--ckpt_path last``: the latest run of this ``run_name``) continues in that
          run's folder and logger run; the resolved config is saved in the run folder;
        - ``zoo predict`` writes the translated images (``--output``, ``--overwrite``);
        - a typo or a wrongly typed value ends with one ``zoo: error:`` line naming the key (exit status 2).

        Args:
            model_class: base class of the accepted models.
            datamodule_class: base class of the accepted data modules.
            **kwargs: any other ``LightningCLI`` argument, e.g. ``args=[...]`` or ``run=False``.
        """

        def __init__(self, model_class: Any = None, datamodule_class: Any = None, **kwargs: Any) -> None:
            kwargs.setdefault("subclass_mode_model", True)
            kwargs.setdefault("subclass_mode_data", True)
            kwargs.setdefault("trainer_class", ZooTrainer)
            kwargs.setdefault("auto_configure_optimizers", False)
            kwargs.setdefault("save_config_callback", RunConfigSaver)
            kwargs.setdefault("save_config_kwargs", {"config_filename": "config.yaml", "overwrite": False})
            # configs interpolate from their own top (${data.init_args.crop_size}), whatever the subcommand
            set_parsing_settings(omegaconf_absolute_to_relative_paths=True)
            kwargs["parser_kwargs"] = {
                "exit_on_error": False,
                "parser_mode": "omegaconf+",
                **(kwargs.get("parser_kwargs") or {}),
            }
            super().__init__(model_class or LightningModule, datamodule_class or ZooDataModule, **kwargs)

        def _prepare_subcommand_parser(self, klass: type, subcommand: str, **kwargs: Any) -> Any:
            parser = super()._prepare_subcommand_parser(klass, subcommand, **kwargs)
            if subcommand == "predict":
                parser.add_argument("--output", type=str | None, default=None,
                                    help="folder for the predicted images (default: <run folder>/predictions)")
                parser.add_argument("--overwrite", action=ActionYesNo, default=False,
                                    help="replace existing files in the output folder")
            return parser

        def add_arguments_to_parser(self, parser: Any) -> None:
            parser.set_defaults({"trainer.keep_freed_memory": True})

        def parse_arguments(self, parser: Any, args: Any) -> None:
            try:
                super().parse_arguments(parser, args)
            except argparse.ArgumentError as error:
                subcommand = next((a for a in (args or sys.argv[1:]) if a in TRAINER_COMMANDS), None)
                sub_parser = getattr(self, "_subcommand_parsers", {}).get(subcommand, parser)
                _fail(describe_parse_error(str(error), _parser_keys(sub_parser)))
            subcommand = self.config.get("subcommand")
            _parsed_config["config"] = (self.config[subcommand] if subcommand else self.config).as_dict()
            self._run_folder = None
            if subcommand is not None:
                # before Lightning reads the checkpoint's hyperparameters: `last`, and a missing or broken file
                command_config = self.config[subcommand]
                trainer_config = command_config.get("trainer") or {}
                root = trainer_config.get("default_root_dir") or DEFAULT_ROOT_DIR
                run_name = trainer_config.get("run_name") or _method_name(command_config.get("model"))
                command_config["ckpt_path"], self._run_folder = _resolve_checkpoint(
                    command_config.get("ckpt_path"), root, run_name
                )

        def _parse_ckpt_path(self) -> None:
            """Take the model's class and arguments from ``--ckpt_path`` as Lightning does, but only for a registered
            zoo class: any other ``hyper_parameters['_class_path']`` is refused (one line) before anything is
            imported."""
            import torch

            from zoo.registry import resolve_registered_class

            subcommand = self.config.get("subcommand")
            ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
            if not ckpt_path or not Path(ckpt_path).is_file():
                return
            ckpt = torch.load(ckpt_path, weights_only=True, map_location="cpu", mmap=True)
            hparams = dict((ckpt.get("hyper_parameters") if isinstance(ckpt, dict) else None) or {})
            hparams.pop("_instantiator", None)
            if not hparams:
                return
            if "_class_path" in hparams:
                class_path = str(hparams.pop("_class_path"))
                if resolve_registered_class(class_path) is None:
                    _fail(f"--ckpt_path {ckpt_path}: refusing class {class_path!r}, which is not a registered zoo "
                          "method; pass a checkpoint written by zoo fit for a zoo method")
                hparams = {"class_path": class_path, "dict_kwargs": hparams}
            try:
                self.config = self.parser.parse_object({subcommand: {"model": hparams}}, self.config)
            except SystemExit:
                sys.stderr.write("Parsing of ckpt_path hyperparameters failed!\n")
                raise

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
            if getattr(self, "_run_folder", None) is not None and not trainer_config.get("run_folder"):
                kwargs["run_folder"] = self._run_folder  # the checkpoint's run: continue in its folder
            return super().instantiate_trainer(**kwargs)

        def before_predict(self) -> None:
            from zoo.callbacks import PredictionWriter

            if not any(isinstance(c, PredictionWriter) for c in self.trainer.callbacks):
                options = self.config_init["predict"]
                self.trainer.callbacks.append(
                    PredictionWriter(output_dir=options.get("output"), overwrite=bool(options.get("overwrite")))
                )

        def after_fit(self) -> None:
            if self.trainer.is_global_zero:
                saver = next((c for c in self.trainer.callbacks if isinstance(c, SaveConfigCallback)), None)
                print(fit_summary(self.trainer, config_name=saver.config_filename if saver else None))

    def _free_config_name(run_dir: Path, name: str, text: str) -> str | None:
        """``name`` if free, None if that file already holds ``text``, else ``<stem>_<k><suffix>`` (next free k)."""
        path = run_dir / name
        if not path.exists():
            return name
        if path.read_text() == text:
            return None
        stem, suffix = path.stem, path.suffix
        k = 1
        while (run_dir / f"{stem}_{k}{suffix}").exists():
            k += 1
        return f"{stem}_{k}{suffix}"

    def _method_name(model_config: Any) -> str:
        """The run name ``zoo fit`` gives a model section: its method's registered name, else its lower-case class."""
        from jsonargparse import Namespace

        class_path = model_config.get("class_path") if isinstance(model_config, (dict, Namespace)) else None
        if not class_path:
            return "zoo"
        try:
            cls = import_object(class_path) if "." in class_path else getattr(zoo.methods, class_path)
        except (ImportError, AttributeError, ValueError):
            return class_path.rpartition(".")[2].lower()
        return getattr(cls, "method_name", None) or cls.__name__.lower()

    def _resolve_checkpoint(ckpt_path: str | None, root: str, run_name: str) -> tuple[str | None, Path | None]:
        """The checkpoint file to load and the run folder to continue: ``last`` is the latest run's ``last.ckpt``;
        a file inside a zoo run folder continues that folder; a missing or unreadable file is a one-line error."""
        import zipfile

        if ckpt_path is None or ckpt_path in ("best", "hpc", "registry"):
            return ckpt_path, None
        if ckpt_path == "last":
            run_dir = latest_run_folder(root, run_name)
            if run_dir is None:
                _fail(f"--ckpt_path last: no run under {Path(root) / run_name} has checkpoints/last.ckpt; "
                      "train one first, or pass the checkpoint file")
            return str(run_dir / "checkpoints" / "last.ckpt"), run_dir
        path = Path(ckpt_path)
        if not path.is_file():
            _fail(f"--ckpt_path {ckpt_path}: no such file")
        if not zipfile.is_zipfile(path):
            _fail(f"--ckpt_path {ckpt_path}: not a readable checkpoint (truncated, or not written by zoo fit or "
                  "Lightning); pass an intact .ckpt, e.g. the run's checkpoints/last.ckpt")
        return ckpt_path, find_run_folder(path)

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


#: The parsed config of the command running in this process (``{"config": {...}}``), for error messages.
_parsed_config: dict[str, Any] = {}


def _config_arguments(argv: list[str]) -> list[str]:
    """``argv`` with every ``--config``/``-c`` file checked: a path missing here becomes the shipped config of that
    name (the command says which file it uses), and a YAML syntax error is one line with the file, line and column."""
    import yaml

    from zoo.config_files import resolve_config

    resolved = list(argv)
    for i, arg in enumerate(argv):
        if arg in ("--config", "-c") and i + 1 < len(argv):
            index, value, prefix = i + 1, argv[i + 1], ""
        elif arg.startswith("--config="):
            index, value, prefix = i, arg.split("=", 1)[1], "--config="
        else:
            continue
        try:
            path = resolve_config(value)
        except FileNotFoundError as error:
            _fail(str(error))
        if str(path) != value:
            print(f"zoo: using the shipped config {path}", file=sys.stderr)
        try:
            yaml.safe_load(path.read_text())
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
            problem = getattr(error, "problem", None) or str(error).splitlines()[0]
            _fail(f"{where}: invalid YAML ({problem}); fix the config file")
        except OSError as error:
            _fail(f"cannot read config {path}: {error.strerror or error}")
        resolved[index] = prefix + str(path)
    return resolved


def _config_keys_with_value(config: Any, value: str, prefix: str = "") -> list[str]:
    """Dotted keys of a (nested) config whose value prints as ``value``."""
    items = config.items() if isinstance(config, dict) else vars(config).items() if hasattr(config, "__dict__") else ()
    keys = []
    for key, item in items:
        name = f"{prefix}{key}"
        if isinstance(item, dict) or hasattr(item, "__dict__") and not isinstance(item, type):
            keys += _config_keys_with_value(item, value, f"{name}.")
        elif str(item) == value:
            keys.append(name)
    return keys


def _out_of_memory(error: BaseException) -> bool:
    """A CUDA/MPS out-of-memory error, or a CPU allocation that failed (``can't allocate memory``)."""
    import torch

    return isinstance(error, torch.OutOfMemoryError) or (
        isinstance(error, RuntimeError) and "can't allocate memory" in str(error)
    )


def describe_run_error(error: BaseException, config: Any = None) -> str | None:
    """One line for an error a user can cause while a command runs (bad value, data, device, precision, checkpoint),
    naming the cause and the fix; ``None`` for anything else (a bug: the traceback is shown).

    Args:
        error: the exception.
        config: the resolved config, used to name the key behind an out-of-range value.
    """
    import pickle

    from lightning.fabric.utilities.exceptions import MisconfigurationException

    text = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    first = lines[0] if lines else type(error).__name__
    if _out_of_memory(error):
        return f"out of memory ({first}); lower data.init_args.batch_size or the image/crop size"
    if isinstance(error, FloatingPointError):  # the NaN/Inf guard: its message names the loss term and the iteration
        return first
    if isinstance(error, pickle.UnpicklingError):
        return f"refusing to unpickle: {first}"
    if isinstance(error, MisconfigurationException):
        message = " ".join(lines)
        if re.search(r"accelerator|gpu backend|not available", message, re.IGNORECASE):
            message += " Pass --trainer.accelerator=auto (or cpu) to use what this machine has."
        return message
    if isinstance(error, ImportError):  # an option that needs a package that is not installed
        return f"{first}; install it, or choose a setting that does not need it"
    invalid = re.match(r"Invalid ([\w ]+?)(?: value)?: (\S+)$", first)
    if isinstance(error, ValueError) and invalid:  # torch.optim's checks: name the config key that holds the value
        keys = [k for k in _config_keys_with_value(config, invalid.group(2)) if k.startswith("model.")]
        if keys:
            return f"{keys[0]}={invalid.group(2)} is not a valid {invalid.group(1)}; set it to a value in range"
        return f"{first}; check the model's optimizer settings"
    too_small = ("Padding size should be less than", "Kernel size can't be greater than", "Output size is too small")
    if isinstance(error, RuntimeError) and any(text in first for text in too_small):
        return (f"the images are too small for this network ({first}); use larger images (data.init_args.crop_size "
                "or image_size) or a network with fewer down-sampling layers")
    if isinstance(error, RuntimeError) and "Error(s) in loading state_dict" in first:
        return (f"the checkpoint does not fit this model ({first}); use the config the checkpoint was trained with "
                "(its run folder's config.yaml)")
    if isinstance(error, (ValueError, OSError, KeyError, MisconfigurationException)):
        return " ".join(lines) if len(lines) <= 3 else first
    return None


def _run_trainer_command(args: list[str] | None) -> None:
    outer_run = _wandb_run()
    argv = _config_arguments(list(sys.argv[1:] if args is None else args))
    if args is None:
        sys.argv[1:] = argv  # Lightning warns when given args while sys.argv has others
    _parsed_config.clear()
    try:
        __getattr__("ZooCLI")(args=None if args is None else argv)
    except SystemExit:
        raise
    except Exception as error:
        # errors inside the run (data, devices, optimizer settings, checkpoints): one line, like config errors
        if os.environ.get("ZOO_TRACEBACK"):
            raise
        message = describe_run_error(error, _parsed_config.get("config"))
        if message is None:
            raise
        _fail(f"{message} (set ZOO_TRACEBACK=1 for the traceback)")
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


def _decoded_size(path: Path) -> tuple[int, int] | str:
    """The (width, height) of an input image after decoding it whole, or why it cannot be decoded (corrupt or
    truncated)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
            return image.size
    except (OSError, ValueError, SyntaxError) as error:  # PIL reports broken headers as SyntaxError too
        return str(error) or type(error).__name__


class SkippedImagesError(ValueError):
    """Raised by :func:`translate_images` with ``skip_bad=True`` after every readable image was written.

    Attributes:
        written: the files written.
        skipped: each unreadable input and why.
    """

    def __init__(self, written: list[Path], skipped: dict[Path, str]) -> None:
        self.written, self.skipped = written, skipped
        names = ", ".join(f"{p}" for p in skipped)
        super().__init__(f"wrote {len(written)} images; skipped {len(skipped)} unreadable input(s): {names}")


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
    trust_code: bool = False,
    skip_bad: bool = False,
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
        trust_code: also build a model class that is not a registered zoo method (imports, and so runs code from,
            the module the file names); see :func:`zoo.hub.load`.
        skip_bad: translate every readable image and then raise :class:`SkippedImagesError` listing the
            unreadable ones; without it an unreadable input stops the call before anything is written.

    Returns:
        The written files, in input order (``num_styles`` files per input, style by style).
    """
    import torch
    from rich.console import Console
    from rich.progress import track

    from zoo.data.io import list_images, read_image, save_image
    from zoo.data.masks import read_mask
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
    decoded = {p: _decoded_size(p) for p in files}
    bad = {p: result for p, result in decoded.items() if isinstance(result, str)}
    if bad and not skip_bad:
        first, reason = next(iter(bad.items()))
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        raise ValueError(f"cannot read input image '{first}' ({reason}){more}; pass --skip-bad to translate the "
                         "readable images and list the others")
    files = [p for p in files if p not in bad]
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

        model = load(model, map_location=torch_device, trust_code=trust_code)
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
            region = read_mask(Path(exemplar_mask), mask_ids)[None].to(torch_device)
            if region.shape[-2:] != exemplar_image.shape[-2:]:
                raise ValueError(f"--exemplar-mask '{exemplar_mask}' has size {tuple(region.shape[-2:])}, the "
                                 f"exemplar {tuple(exemplar_image.shape[-2:])}")
            conditions["exemplar_mask"], _ = pad_to_multiple(region, multiple)
    if tile is None:
        tile = 256 if int(getattr(model, "scale", 1)) > 1 else 0
    if tile and conditions:
        raise ValueError("--tile works for models without style, exemplar or mask inputs; pass --tile 0")

    sizes = {p: decoded[p] for p in files}
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
                    [read_mask(_mask_for(p, relative[p], Path(mask)), mask_ids) for p in batch]
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
    paths = [path for p in files for path in written[p]]
    if bad:
        raise SkippedImagesError(paths, bad)
    return paths


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
    parser.add_argument("--skip-bad", action="store_true",
                        help="translate every readable image, list the unreadable ones and exit with status 2")
    parser.add_argument("--trust-code", action="store_true",
                        help="also load a model class that is not a registered zoo method; this imports, and so runs "
                             "code from, the module the file names: use only for files you trust")
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
            trust_code=ns.trust_code,
            skip_bad=ns.skip_bad,
        )
    except SkippedImagesError as error:
        for path, reason in error.skipped.items():
            print(f"zoo: skipped {path}: {reason}", file=sys.stderr)
        _fail(f"wrote {len(error.written)} images to {ns.output}; skipped {len(error.skipped)} unreadable "
              "input(s), listed above")
    except Exception as error:
        message = None if os.environ.get("ZOO_TRACEBACK") else describe_run_error(error)
        if message is None:
            raise
        if _out_of_memory(error):
            message = (f"out of memory translating {ns.input} ({str(error).splitlines()[0]}); translate large images "
                       "in tiles with bounded memory: --tile 256 (or a smaller --batch-size)")
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
    from zoo.hub import verification_status

    entries = {name: get_pretrained(name) for name in pretrained}
    statuses = {name: verification_status(name) for name in pretrained}
    licence_width = max((len(e.license or "unknown") for e in entries.values()), default=0) + 2
    status_width = max(map(len, [*statuses.values(), "verification"])) + 2
    if entries:
        print(f"  {'name':<{width}}{'licence':<{licence_width}}{'verification':<{status_width}}notes")
    for name, entry in entries.items():
        notes = [f"direction {entry.direction}"] if entry.direction else []
        if entry.url is None:
            notes.append("no published file")
        print(f"  {name:<{width}}{entry.license or 'unknown':<{licence_width}}{statuses[name]:<{status_width}}"
              f"{', '.join(notes)}".rstrip())
    if not pretrained:
        print("  (none)")


def _download_command(argv: list[str]) -> None:
    """``zoo download NAME``: fetch weights into the cache; ``zoo download --verify [NAME ...]``: re-check them."""
    parser = argparse.ArgumentParser(prog="zoo download", description="Fetch registered weights into the cache.")
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="registered pretrained name, e.g. cyclegan.horse2zebra (see `zoo list`)")
    parser.add_argument("--weights-dir", default=None, help="folder searched first (default: $ZOO_WEIGHTS_DIR)")
    parser.add_argument("--verify", action="store_true",
                        help="re-hash the cached files (every cached entry when no NAME is given) against the "
                             "registered sha256 or their first-use pin; exit 2 on a mismatch")
    ns = parser.parse_args(argv)
    from zoo.hub import download_weights, verify_cached

    if ns.verify:
        try:
            results = verify_cached(ns.names or None)
        except KeyError as error:
            _fail(error.args[0] if error.args else str(error))
        width = max((len(name) for name, _, _ in results), default=0) + 2
        for name, path, result in results:
            print(f"{name:<{width}}{result:<19}{path if path is not None else '(no file registered)'}")
        if not results:
            print("no registered weights are in the cache")
        bad = [name for name, _, result in results if result == "MISMATCH"]
        if bad:
            _fail(f"{len(bad)} of {len(results)} cached file{'s' * (len(results) != 1)} do not match their digest "
                  f"({', '.join(bad)}); delete them (and their .sha256 pins) and run `zoo download NAME` again")
        return
    if not ns.names:
        _fail("give a NAME to download (see `zoo list --pretrained`), or --verify to re-check the cache")
    try:
        for name in ns.names:
            download_weights(name, weights_dir=ns.weights_dir)
    except (KeyError, OSError, ValueError, RuntimeError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
        _fail(message)


def _configs_command(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="zoo configs",
        description="The configs shipped with zoo: `zoo configs` lists them, `zoo configs copy NAME DEST` writes an "
        "editable copy. `zoo fit --config configs/NAME.yaml` finds a shipped config from any folder.",
    )
    actions = parser.add_subparsers(dest="action")
    listing = actions.add_parser("list", help="list the shipped configs (the default)")
    listing.add_argument("pattern", nargs="?", default="*", help="shell-style filter, e.g. 'tiny/*'")
    copy = actions.add_parser("copy", help="write an editable copy of a shipped config")
    copy.add_argument("name", help="a name from `zoo configs`, e.g. decent or tiny/decent")
    copy.add_argument("destination", help="file to write, or a folder to write NAME.yaml into")
    copy.add_argument("--overwrite", action="store_true", help="replace an existing file")
    ns = parser.parse_args(argv)

    import fnmatch

    from zoo.config_files import config_dir, copy_config, list_configs

    if ns.action == "copy":
        try:
            written = copy_config(ns.name, ns.destination, overwrite=ns.overwrite)
        except (FileNotFoundError, FileExistsError) as error:
            _fail(str(error))
        print(f"zoo: wrote {written}; train with: zoo fit --config {written}")
        return
    pattern = getattr(ns, "pattern", "*")
    names = [name for name in list_configs() if fnmatch.fnmatch(name, pattern)]
    print(f"shipped configs ({config_dir()}):")
    for name in names:
        first = (config_dir() / f"{name}.yaml").read_text().splitlines()[0]
        summary = first.lstrip("# ").strip() if first.startswith("#") else ""
        print(f"  {name:<16}{summary[:100]}")
    if not names:
        print("  (none)")


_EXTRA = {
    "translate": _translate_command,
    "list": _list_command,
    "download": _download_command,
    "configs": _configs_command,
}


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
            from zoo import __version__

            print(f"zoo {__version__}")
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
