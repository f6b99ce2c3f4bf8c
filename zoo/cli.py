"""The ``zoo`` command.

Training and evaluation go through Lightning's CLI with a YAML config whose ``model`` and ``data`` sections name the
classes (``class_path``) and their constructor arguments (``init_args``)::

    zoo fit --config configs/tiny/cyclegan.yaml --trainer.max_steps=1000 --model.init_args.lambda_a=5
    zoo fit --config configs/tiny/cyclegan.yaml --print_config        # the resolved config, overrides applied
    zoo validate --config runs/cyclegan/version_0/config.yaml --ckpt_path runs/cyclegan/version_0/checkpoints/last.ckpt

More commands work on trained models and do not build a Trainer::

    zoo list [PATTERN] [--pretrained]
    zoo download NAME | zoo download --verify [NAME ...]
    zoo translate --model NAME|CKPT|BUNDLE --input IMAGE_OR_FOLDER --output FOLDER [--direction a2b]
                  [--num-styles K | --reference IMAGE]                      # MUNIT, DRIT
                  [--exemplar IMAGE [--exemplar-mask M] [--mask M] [--mask-ids 26,27]]   # LOMIT
                  [--instance INSTANCE_MAP_OR_FOLDER]                       # pix2pixHD label maps
                  [--boxes BOX_FOLDER]                                      # InstaFormer instance boxes
                  [--tile 256 --tile-overlap 32]                            # super-resolution
    zoo evaluate --model NAME|CKPT|BUNDLE --config CONFIG [--metrics fid,kid,...] [--directions a2b,b2a]
    zoo evaluate --real FOLDER --fake FOLDER [--metrics fid,kid,lpips,psnr,ssim]
    zoo evaluate --fake FOLDER --labels FOLDER [--label-encoding label_ids|train_ids] [--metrics miou,pixel_accuracy]
    zoo toy-dataset OUTPUT [--sequences N] [--frames N] [--domain sim|photo] [--size H W] [--seed S]
    zoo export --model NAME|CKPT|BUNDLE --format onnx|torchscript|exported-program --output FILE
               [--direction a2b] [--dynamic-shapes] [--size H W] [--verify-input IMAGE ...]
    zoo publish RUN_OR_CKPT_OR_BUNDLE --name METHOD.TAG [--output DIR] [--repo-id OWNER/REPO] [--license TEXT]
                [--metric KEY=VALUE ...] [--metrics-file METRICS.json]

``main(args)`` is the entry point of the ``zoo`` script and of ``python -m zoo``; tests call ``main([...])``.
This module parses arguments and wires them to the code that does the work: :class:`ZooCLI` (Lightning's CLI) for
the Trainer commands, :func:`zoo.translate.translate_images` for ``zoo translate``, :mod:`zoo.evaluate` for ``zoo
evaluate``, and :mod:`zoo.errors` for the one-line ``zoo: error:`` messages. It imports only the standard library
until a command needs more, so ``zoo --help`` answers at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from zoo.errors import (
    describe_instantiation_error,
    describe_parse_error,
    describe_run_error,
    did_you_mean,
    is_out_of_memory,
)

__all__ = ["main", "fit_summary", "ZooCLI"]  # noqa: F822 (ZooCLI: defined on first use)

TRAINER_COMMANDS = ("fit", "validate", "test", "predict")
EXTRA_COMMANDS = ("translate", "evaluate", "export", "publish", "list", "download", "configs", "toy-dataset")

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
  evaluate    the paper's metrics (FID, KID, LPIPS, diversity, mIoU, pixel accuracy, PSNR/SSIM) on the test split:
              zoo evaluate --model NAME|CKPT|BUNDLE --config CONFIG.yaml [--metrics fid,kid]
              zoo evaluate --real FOLDER --fake FOLDER [--metrics fid,kid,psnr]
              zoo evaluate --fake FOLDER --labels FOLDER [--metrics miou,pixel_accuracy]
  export      export a model's generator to ONNX, TorchScript or an ExportedProgram, verified against PyTorch:
              zoo export --model NAME|CKPT|BUNDLE --format onnx --output FILE.onnx [--dynamic-shapes]
  publish     release trained weights as a bundle with a model card, optionally on the Hugging Face Hub:
              zoo publish RUN_FOLDER --name METHOD.TAG [--repo-id OWNER/REPO] [--license TEXT]
  list        list registered methods and pretrained weights:  zoo list [PATTERN]
  download    fetch registered weights into the cache:  zoo download NAME
  configs     list the shipped configs, or copy one to edit:  zoo configs copy decent ./my.yaml
  toy-dataset write a labelled synthetic dataset (images, Cityscapes label ids, boxes) from the toy world:
              zoo toy-dataset OUTPUT [--sequences 2] [--frames 4] [--domain sim|photo] [--size H W]

options:
  -h, --help  show this message and exit
  --version   print zoo's version and exit
"""


def _fail(message: str) -> None:
    """Report a bad command line or input as one ``zoo: error:`` line and exit with status 2 (as argparse does)."""
    print(f"zoo: error: {message}", file=sys.stderr)
    raise SystemExit(2)


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
                _fail(f"{describe_instantiation_error(str(message))} (set ZOO_TRACEBACK=1 for the traceback)")

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


# ------------------------------------------------------------------------------------------------ subcommands


def _translate_command(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="zoo translate",
        description="Translate an image, a video, or a whole dataset folder (any size): images and videos are "
        "translated to the same relative paths, every other file (label maps, instance maps, boxes) is copied beside "
        "them, so the output is a drop-in replacement for the input. Re-running resumes.",
    )
    parser.add_argument("--model", required=True,
                        help="registered pretrained name, .ckpt file, bundle folder, or .onnx file from zoo export")
    parser.add_argument("--input", required=True, help="image, video (.mp4, .avi, .mov) or dataset folder")
    parser.add_argument("--output", required=True, help="folder for the translated dataset")
    parser.add_argument("--direction", default="a2b", help="translation direction (default: a2b)")
    parser.add_argument("--batch-size", type=int, default=4, help="images per batch (default: 4)")
    parser.add_argument("--seed", type=int, default=0, help="seed for styles, exemplars and sampling (default: 0)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps (default: auto)")
    parser.add_argument("--precision", default="32", choices=("32", "bf16", "fp16"),
                        help="run the model in float32 or under bf16 / fp16 autocast (default: 32)")
    parser.add_argument("--num-workers", type=int, default=None,
                        help="processes decoding images (default: 2, or 0 for small inputs)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    dataset = parser.add_argument_group("datasets")
    dataset.add_argument("--images", action="append", metavar="GLOB",
                         help="translate only the images matching GLOB (repeatable, e.g. 'leftImg8bit/**')")
    dataset.add_argument("--annotations", action="append", metavar="GLOB",
                         help="image files matching GLOB are annotations, copied unchanged (repeatable; replaces the "
                              "defaults: labels/, masks/, gtFine/ folders, *_labelIds.*, *_instanceIds.*, ...; "
                              "--annotations '' for none)")
    dataset.add_argument("--image-suffix", action="append", metavar="SUFFIX",
                         help="stem suffix dropped from an image's name to match its annotations (default: "
                              "_leftImg8bit)")
    dataset.add_argument("--link", action="store_true", help="hard-link annotation files instead of copying them")
    dataset.add_argument("--image-format", default="same", choices=("same", "png"),
                         help="keep each image's file type, or write PNG files (default: same)")
    dataset.add_argument("--overwrite", action="store_true",
                         help="translate everything again instead of resuming what the output folder holds")
    dataset.add_argument("--strict", action="store_true",
                         help="stop at the first unreadable input (default: skip it and list it in the manifest)")
    multimodal = parser.add_argument_group("multimodal and exemplar-guided models (MUNIT, DRIT, LOMIT)")
    multimodal.add_argument("--num-styles", type=int, default=1,
                            help="random styles per input, written as NAME_style<k>.png (default: 1)")
    multimodal.add_argument("--style-policy", choices=("per-dataset", "per-sequence", "per-image"),
                            help="one style (or exemplar from an --exemplar folder) per dataset, per sequence (video "
                                 "or folder of frames) or per image (default: per-sequence for videos, per-image for "
                                 "images)")
    multimodal.add_argument("--reference", help="image of the target domain whose style the outputs take")
    guided = parser.add_argument_group("exemplar-guided models (LOMIT)")
    guided.add_argument("--exemplar", help="image whose style (inside --exemplar-mask) is used, or a folder of them")
    guided.add_argument("--mask", help="where to translate: a mask file, or a folder of masks named like the inputs")
    guided.add_argument("--exemplar-mask", help="which region of the exemplar gives the style")
    guided.add_argument("--mask-ids", help="read the masks as label maps and use these label ids, e.g. 26,27,28")
    labels = parser.add_argument_group("label-map models (pix2pixHD)")
    labels.add_argument("--instance", help="instance maps (integer ids, e.g. Cityscapes *_gtFine_instanceIds.png): a "
                        "file, or a folder of maps with the inputs' relative paths or their Cityscapes names "
                        "(X_gtFine_labelIds.png -> X_gtFine_instanceIds.png)")
    instances = parser.add_argument_group("instance-aware models (InstaFormer)")
    instances.add_argument("--boxes", help="folder of zoo box files (<relative path of the input>.json, as zoo "
                           "toy-dataset writes them beside the images): each object becomes an instance token")
    sr = parser.add_argument_group("super-resolution models")
    sr.add_argument("--tile", type=int, default=None,
                    help="translate in TILE x TILE blocks so memory stays bounded (default: 256 for upscaling models, "
                         "0: never)")
    sr.add_argument("--tile-overlap", type=int, default=32, help="context around each block in pixels (default: 32)")
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
    from zoo.data.dataset_files import DEFAULT_IMAGE_SUFFIXES
    from zoo.translate import translate_images
    from zoo.utils.memory import keep_freed_memory

    keep_freed_memory()  # as zoo fit does: large CPU tensors reuse freed heap memory instead of page-faulting
    try:
        report = translate_images(
            ns.model,
            ns.input,
            ns.output,
            direction=ns.direction,
            batch_size=ns.batch_size,
            seed=ns.seed,
            device=ns.device,
            precision=ns.precision,
            num_workers=ns.num_workers,
            progress=not ns.no_progress,
            num_styles=ns.num_styles,
            style_policy=ns.style_policy,
            reference=ns.reference,
            exemplar=ns.exemplar,
            mask=ns.mask,
            exemplar_mask=ns.exemplar_mask,
            mask_ids=mask_ids,
            instance=ns.instance,
            boxes=ns.boxes,
            images=ns.images,
            annotations=None if ns.annotations is None else [glob for glob in ns.annotations if glob],
            image_suffixes=ns.image_suffix or DEFAULT_IMAGE_SUFFIXES,
            link_annotations=ns.link,
            image_format=ns.image_format,
            overwrite=ns.overwrite,
            strict=ns.strict,
            tile=ns.tile,
            tile_overlap=ns.tile_overlap,
            trust_code=ns.trust_code,
        )
    except Exception as error:
        message = None if os.environ.get("ZOO_TRACEBACK") else describe_run_error(error)
        if message is None:
            raise
        if is_out_of_memory(error):
            message = (f"out of memory translating {ns.input} ({str(error).splitlines()[0]}); translate large images "
                       "in tiles with bounded memory: --tile 256 (or a smaller --batch-size)")
        _fail(message)
    for path, reason in report.unreadable.items():
        print(f"zoo: skipped unreadable {path}: {reason}", file=sys.stderr)
    print(f"zoo: {report.summary()}")
    count = len(report.outputs)
    print(f"zoo: {ns.output} holds {count} translated file{'s' * (count != 1)} (manifest {report.manifest})")


def _evaluation_folder(model: str) -> Path:
    """Default ``--output`` of ``zoo evaluate``: ``<run folder>/evaluation/<checkpoint>`` for a checkpoint of a zoo
    run, else ``runs/evaluate/<name>-<UTC time>`` (the file, folder or registered name of ``model``)."""
    import datetime

    from zoo.trainer import DEFAULT_ROOT_DIR, find_run_folder

    path = Path(model)
    run_dir = find_run_folder(path) if path.is_file() else None
    if run_dir is not None:
        return run_dir / "evaluation" / path.stem
    name = path.stem if path.is_file() else path.name if path.is_dir() else model
    name = "".join(c if c.isalnum() or c in "-_." else "-" for c in name) or "model"
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return Path(DEFAULT_ROOT_DIR) / "evaluate" / f"{name}-{stamp}"


def _evaluate_command(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="zoo evaluate",
        description="Measure a model on the test split of a config's data with the metrics its paper reports "
        "(--model, --config), compare two folders of images (--real, --fake), or measure the temporal flicker of "
        "translated videos and frame sequences against their inputs (--source, --fake), and/or the semantic "
        "consistency of translations with the label maps of their inputs (--labels, --fake). Writes metrics.json and "
        "metrics.md.",
    )
    model = parser.add_argument_group("a model on its test data")
    model.add_argument("--model", help="registered pretrained name, .ckpt file or bundle folder")
    model.add_argument("--config", help="config whose data section gives the test split (default: the run folder's "
                                        "config.yaml for a checkpoint of a zoo run)")
    model.add_argument("--directions", help="comma-separated directions (default: every direction of the model)")
    model.add_argument("--num-styles", type=int, default=10,
                       help="diversity: styles per input of multimodal models (default: 10)")
    model.add_argument("--seed", type=int, default=0, help="seed of the translations and styles (default: 0)")
    model.add_argument("--max-images", type=int, default=None, help="evaluate the first N test images only")
    model.add_argument("--trust-code", action="store_true",
                       help="also load a model class that is not a registered zoo method (runs code the file names)")
    folders = parser.add_argument_group("images made elsewhere")
    folders.add_argument("--real", help="folder of real images (searched recursively)")
    folders.add_argument("--fake", help="folder of translations; paired metrics match files by relative name")
    folders.add_argument("--source", help="flicker: the inputs the --fake outputs were translated from, a video file "
                         "or a folder of videos and/or folders of frames (matched by relative path; frames NAME.ext "
                         "with --fake's NAME.png)")
    folders.add_argument("--labels", help="miou, pixel_accuracy: folder of label maps of the translated inputs, "
                         "matched to --fake images by relative path, any image suffix (labels/seq/0.png with "
                         "fake/seq/0.jpg)")
    folders.add_argument("--label-encoding", default="label_ids", choices=("label_ids", "train_ids"),
                         help="what the --labels maps hold: label_ids (Cityscapes label ids 0-33, as GTA5, "
                         "Cityscapes and zoo toy-dataset store them; default) or train_ids (0-18, 255 = ignore)")
    parser.add_argument("--metrics", help="comma-separated, from fid, kid, fd_dinov2, lpips, psnr, ssim, miou, "
                                          "pixel_accuracy, diversity, flicker (default: the model's paper metrics; "
                                          "fid,kid for folders, plus miou,pixel_accuracy with --labels; flicker "
                                          "with --source)")
    parser.add_argument("--batch-size", type=int, default=None, help="images per batch (default: the data's "
                                                                      "val_batch_size; 16 for folders)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps (default: auto)")
    parser.add_argument("--resize", default="clean", choices=("clean", "legacy-tensorflow", "legacy-pytorch"),
                        help="FID/KID resize protocol (default: clean, as clean-fid)")
    parser.add_argument("--inception-weights", default="pytorch-fid",
                        help="FID Inception weights: pytorch-fid (the published file) or a file path")
    parser.add_argument("--dinov2-weights", default="timm",
                        help="FD-DINOv2 weights: timm (the published file) or a file path")
    parser.add_argument("--lpips-net", default="alex", choices=("alex", "vgg"), help="LPIPS backbone (default: alex)")
    parser.add_argument("--segmenter", help="for miou and pixel_accuracy: a TorchScript file of your segmentation "
                        "network, (B, 3, H, W) in [0, 1] -> (B, classes, H, W) logits (default: the toy-world "
                        "segmenter)")
    parser.add_argument("--output", help="folder for metrics.json and metrics.md (default: <run folder>/evaluation/"
                                         "<checkpoint> for a checkpoint of a zoo run, else runs/evaluate/NAME-TIME)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    ns = parser.parse_args(argv)
    if (ns.model is None) == (ns.real is None and ns.fake is None and ns.source is None and ns.labels is None):
        _fail("give --model (with --config) to evaluate a model, --real and --fake to compare two folders, or "
              "--source and --fake to measure the flicker of translated videos")
    if ns.model is None and (ns.fake is None or (ns.real is None and ns.source is None and ns.labels is None)):
        _fail("folder mode needs --fake FOLDER and --real FOLDER (images), --labels FOLDER (label maps: miou, "
              "pixel_accuracy), --source INPUT (flicker), or several")
    import shlex

    from zoo.evaluate import evaluate_folders, evaluate_model, load_segmenter, markdown_table, write_report
    from zoo.utils.memory import keep_freed_memory

    keep_freed_memory()
    options = {"resize": ns.resize, "inception_weights": ns.inception_weights, "dinov2_weights": ns.dinov2_weights,
               "lpips_net": ns.lpips_net}
    try:
        if ns.segmenter is not None:
            options["segmenter"] = load_segmenter(ns.segmenter)
        if ns.model is not None:
            config = ns.config
            if config is None:
                from zoo.trainer import find_run_folder

                run_dir = find_run_folder(ns.model) if Path(ns.model).is_file() else None
                if run_dir is None or not (run_dir / "config.yaml").is_file():
                    _fail("--config is needed: the config whose data section gives the test images (only a "
                          "checkpoint inside a zoo run folder finds its config.yaml by itself)")
                config = run_dir / "config.yaml"
            result = evaluate_model(ns.model, config, metrics=ns.metrics, directions=ns.directions,
                                    num_styles=ns.num_styles, seed=ns.seed, device=ns.device,
                                    batch_size=ns.batch_size, max_images=ns.max_images,
                                    progress=not ns.no_progress, trust_code=ns.trust_code, **options)
            result["settings"]["config"] = str(config)
            if ns.segmenter is not None:
                from zoo.weights import file_sha256

                result["settings"]["segmenter"] = {"file": ns.segmenter, "sha256": file_sha256(ns.segmenter)}
            output = Path(ns.output) if ns.output else _evaluation_folder(ns.model)
        else:
            result = evaluate_folders(ns.real, ns.fake, source=ns.source, labels=ns.labels,
                                      label_encoding=ns.label_encoding, metrics=ns.metrics or None,
                                      batch_size=ns.batch_size or 16, device=ns.device,
                                      progress=not ns.no_progress, **options)
            output = Path(ns.output) if ns.output else _evaluation_folder(ns.fake)
    except Exception as error:
        message = None if os.environ.get("ZOO_TRACEBACK") else describe_run_error(error)
        if message is None:
            raise
        _fail(message)
    result["command"] = shlex.join(["zoo", "evaluate", *argv])
    json_path, md_path = write_report(result, output)
    print(markdown_table(result), end="")
    print(f"zoo: wrote {json_path} and {md_path}")


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
        if entry.shipped:
            notes.append("ships with zoo (toy world)")
        elif entry.url is None:
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
    width = max(map(len, names), default=0) + 2
    for name in names:
        first = (config_dir() / f"{name}.yaml").read_text().splitlines()[0]
        summary = first.lstrip("# ").strip() if first.startswith("#") else ""
        print(f"  {name:<{width}}{summary[:100]}")
    if not names:
        print("  (none)")


def _toy_dataset_command(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="zoo toy-dataset",
        description="Write a labelled synthetic dataset from zoo's embedded toy driving world, laid out as GTA5 and "
        "Cityscapes ship theirs: images/SEQ/FRAME.png (renders), images/SEQ/FRAME.json (object boxes), "
        "labels/SEQ/FRAME.png (8-bit Cityscapes label ids) and classes.json. The frames of a sequence are "
        "consecutive views of one street, the camera driving forward. Translate it with zoo translate --input "
        "OUTPUT, then measure semantic consistency with zoo evaluate --fake OUT/images --labels OUT/labels.",
    )
    parser.add_argument("output", help="folder to write (created if missing; files of the same names are replaced)")
    parser.add_argument("--sequences", type=int, default=2, help="streets (default: 2)")
    parser.add_argument("--frames", type=int, default=4, help="frames per street (default: 4)")
    parser.add_argument("--domain", default="sim", choices=("sim", "photo"),
                        help="sim: flat simulator renders (default); photo: the photo-like renders")
    parser.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), default=None,
                        help="image size (default: 128 256)")
    parser.add_argument("--seed", type=int, default=0, help="base seed of the streets (default: 0)")
    parser.add_argument("--no-boxes", action="store_true", help="do not write the .json object boxes")
    ns = parser.parse_args(argv)
    from zoo.data.toy_world.export import DEFAULT_SIZE, write_toy_dataset

    try:
        written = write_toy_dataset(ns.output, sequences=ns.sequences, frames=ns.frames,
                                    size=tuple(ns.size) if ns.size else DEFAULT_SIZE, domain=ns.domain,
                                    seed=ns.seed, boxes=not ns.no_boxes)
    except ValueError as error:
        _fail(str(error).removeprefix("write_toy_dataset: ").replace("size must", "--size must"))
    root = Path(ns.output)
    images = sum(1 for path in written if path.suffix == ".png" and path.parent.parent.name == "images")
    boxes = sum(1 for path in written if path.suffix == ".json" and path.name != "classes.json")
    labels = sum(1 for path in written if path.parent.parent.name == "labels")
    print(f"zoo: wrote {images} {ns.domain} images to {root / 'images'}, {labels} label maps (Cityscapes label ids) "
          f"to {root / 'labels'}" + (f", {boxes} box files beside the images" if boxes else "")
          + f" and {root / 'classes.json'}")
    print(f"zoo: translate with: zoo translate --model CKPT --input {root} --output OUT; then: zoo evaluate --fake "
          "OUT/images --labels OUT/labels --metrics miou,pixel_accuracy")


def _export_command(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="zoo export",
        description="Export the generator of a model (one direction, images in [0, 1] in and out) to ONNX, TorchScript "
        "or an ExportedProgram, run the written file and compare it with eager PyTorch.",
    )
    parser.add_argument("--model", required=True, help="registered pretrained name, .ckpt file or bundle folder")
    parser.add_argument("--format", required=True, choices=("onnx", "torchscript", "exported-program"),
                        help="onnx (run with onnxruntime), torchscript (torch.jit.load) or exported-program (.pt2, "
                             "torch.export.load)")
    parser.add_argument("--output", required=True, help="file to write")
    parser.add_argument("--direction", default="a2b", help="translation direction (default: a2b)")
    parser.add_argument("--dynamic-shapes", action="store_true",
                        help="dynamic batch, height and width (sides multiples of the model's size_multiple)")
    parser.add_argument("--size", type=int, nargs=2, metavar=("H", "W"),
                        help="example input size: the input size of a static graph (default: 32x32, 16x16 for "
                             "upscalers, at least the model's size_multiple)")
    parser.add_argument("--verify-input", nargs="+", metavar="IMAGE",
                        help="images to verify the file on (default: a frame of the embedded toy world)")
    parser.add_argument("--no-verify", action="store_true", help="write the file without running it")
    parser.add_argument("--trust-code", action="store_true",
                        help="also load a model class that is not a registered zoo method; this imports, and so runs "
                             "code from, the module the file names: use only for files you trust")
    ns = parser.parse_args(argv)
    if ns.no_verify and ns.verify_input:
        _fail("--verify-input and --no-verify exclude each other")
    try:
        import zoo.hub
        from zoo.export import export_model

        model = zoo.hub.load(ns.model, trust_code=ns.trust_code)
        real = None
        if ns.verify_input:
            from zoo.data.io import read_image

            real = [read_image(path, channels=3) for path in ns.verify_input]
        report = export_model(model, ns.output, format=ns.format, direction=ns.direction,
                              dynamic_shapes=ns.dynamic_shapes, example_size=ns.size, verify=not ns.no_verify,
                              real_images=real)
    except Exception as error:
        from zoo.export import ExportVerificationError

        if isinstance(error, ExportVerificationError):
            _fail(str(error))
        message = None if os.environ.get("ZOO_TRACEBACK") else describe_run_error(error)
        if message is None:
            raise
        _fail(message)
    print("\n".join(f"zoo: {line}" for line in report.summary().splitlines()))


def _parse_card_metric(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` of ``zoo publish --metric``: the value as a number when it is one, else as text."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. a2b/fid=41.2), got {text!r}")
    for number_type in (int, float):
        try:
            return key.strip(), number_type(value)
        except ValueError:
            pass
    return key.strip(), value.strip()


def _publish_command(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="zoo publish",
        description="Release trained weights: write a bundle folder (model.safetensors, config.json, a model card "
        "README.md with licence, training data, metrics and sha256, the run's config as training_config.yaml, and "
        "SHA256SUMS) and, with --repo-id, upload it to <name>/ in a Hugging Face Hub model repository, from where "
        "zoo.load('hf://OWNER/REPO/NAME') loads it. Metrics of `zoo evaluate` on the checkpoint are put on the card.",
    )
    parser.add_argument("source", metavar="RUN_OR_CKPT",
                        help="a zoo fit run folder (its checkpoints/last.ckpt, else the newest .ckpt), a .ckpt file, "
                             "or a zoo bundle (folder or .safetensors)")
    parser.add_argument("--name", required=True,
                        help="<method>.<tag>, e.g. vsait.gta2cityscapes (the tag: lowercase letters, digits, _)")
    parser.add_argument("--output", default=None, help="bundle folder to write (default: ./published/<name>)")
    parser.add_argument("--repo-id", default=None, metavar="OWNER/REPO",
                        help="Hugging Face Hub model repository to upload to (created if missing); needs a token "
                             "(hf auth login or $HF_TOKEN)")
    parser.add_argument("--license", default=None, metavar="TEXT",
                        help="licence of the weights for the card, e.g. CC-BY-NC-4.0 (default: unknown)")
    parser.add_argument("--metric", action="append", type=_parse_card_metric, default=[], metavar="KEY=VALUE",
                        help="a number for the card, e.g. a2b/fid=41.2; repeat for more; overrides zoo evaluate's")
    parser.add_argument("--metrics-file", default=None, metavar="METRICS.json",
                        help="metrics.json of zoo evaluate (default: <run>/evaluation/<checkpoint>/metrics.json)")
    parser.add_argument("--trust-code", action="store_true",
                        help="also load a model class that is not a registered zoo method; this imports, and so runs "
                             "code from, the module the file names: use only for files you trust")
    ns = parser.parse_args(argv)
    from zoo.publish import DEFAULT_LICENSE, UploadError, publish

    try:
        result = publish(ns.source, name=ns.name, output_dir=ns.output, repo_id=ns.repo_id,
                         card_metrics=dict(ns.metric), license=ns.license or DEFAULT_LICENSE,
                         metrics_file=ns.metrics_file, trust_code=ns.trust_code)
    except UploadError as error:
        _fail(str(error))
    except Exception as error:
        message = None if os.environ.get("ZOO_TRACEBACK") else describe_run_error(error)
        if message is None and isinstance(error, (ValueError, OSError)):
            message = str(error)
        if message is None:
            raise
        _fail(message)
    print(f"zoo: published {result.name} to {result.folder}")
    print(f"  model.safetensors  sha256 {result.sha256} ({result.size_bytes:,} bytes)")
    print(f"  card               {result.card}")
    print(f"  metrics            {', '.join(result.metrics) if result.metrics else '(none: run zoo evaluate first)'}")
    if result.url:
        commit = f" (commit {result.commit})" if result.commit else ""
        print(f"  uploaded           {result.url}{commit}")
        print(f'  load with          zoo.load("{result.url}")')
        print("  register it in zoo (a method file) with:")
        print("\n".join(f"    {line}" for line in result.registry_snippet().splitlines()))
    else:
        print(f'  load with          zoo.load("{result.folder}")')
    if not ns.license:
        print("zoo: the card says the licence is unknown; publish again with --license TEXT before sharing it")

_EXTRA = {
    "translate": _translate_command,
    "evaluate": _evaluate_command,
    "export": _export_command,
    "publish": _publish_command,
    "list": _list_command,
    "download": _download_command,
    "configs": _configs_command,
    "toy-dataset": _toy_dataset_command,
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
                f"unknown command '{command}'{did_you_mean(command, TRAINER_COMMANDS + EXTRA_COMMANDS)}; "
                "see zoo --help"
            )
    except SystemExit as exit_:
        if exit_.code in (0, None):
            return 0
        raise
    return 0
