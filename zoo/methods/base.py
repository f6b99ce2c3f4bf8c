"""The base class of every zoo method: the contract the CLI, callbacks, hub and tests rely on, and the lifecycle
that all methods share (resumable checkpoints, channels-last training, scheduler stepping, logging, EMA).
"""

from __future__ import annotations

import inspect
import types
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.compile import CompileOptions, CompileSetting, compile_networks, compile_options
from zoo.methods._common import (
    RESUME_RNG_KEY,
    StepOutput,
    apply_stashed_rng_state,
    capture_rng_state,
    check_images,
    convert_official_network_state,
    inference_net,
    load_official_network,
    official_attribute,
    predict_outputs,
    random_unpaired_inputs,
    run_generator,
    stash_rng_state_for_resume,
    to_memory_format,
    to_unit_range,
)
from zoo.nets.diff_augment import augment_inputs_of
from zoo.precision import amp_scaling_of
from zoo.utils.choices import check_choices

__all__ = ["ChannelsLast", "LRStepPoint", "TranslationMethod", "channels_last_pays"]

#: When the learning-rate schedulers advance (see :attr:`TranslationMethod.lr_step_point`).
LRStepPoint = Literal["epoch_start", "epoch_end", "iteration_start", "iteration_end"]


#: What the ``channels_last`` option of a method accepts: ``True``, ``False`` or ``"auto"``
#: (:func:`channels_last_pays`).
ChannelsLast = bool | Literal["auto"]


def channels_last_pays(device: torch.device | str) -> bool:
    """What ``channels_last="auto"`` trains in on ``device``: channels-last on CUDA and on CPUs with AVX-512, NCHW on
    other CPUs.

    Measured with ``bench/bench_methods.py`` on 2-core AMD EPYC hosts against the official loops in the same runs:
    without AVX-512, NCHW trained pix2pix and CycleGAN 15-30% faster than channels-last; with AVX-512, channels-last
    trained CycleGAN 1.22x and LOMIT 1.33x as fast as the official loop against 1.01x and 1.23x in NCHW. On CUDA,
    channels-last is the layout of cuDNN's tensor-core convolutions under mixed precision.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return True
    return device.type == "cpu" and torch.backends.cpu.get_cpu_capability() == "AVX512"


class TranslationMethod(L.LightningModule):
    """An image-to-image translation method: the contract every zoo method meets, and its shared lifecycle.

    Images cross the public API in **[0, 1]** (``translate``, ``predict_step`` outputs) and live in **model space
    [-1, 1]** everywhere else (batches, ``forward``, ``optimization_step``). Shapes are ``(B, C, H, W)``. Domain A
    is the input of direction ``a2b``, domain B its output; ``b2a`` (where supported) goes the other way.

    **Class attributes** (override as needed):

    * ``directions``: the directions ``translate`` accepts, ``("a2b",)`` or ``("a2b", "b2a")``.
    * ``scale``: output side / input side (1 for translation, the factor for super-resolution; may be set per
      instance in ``__init__``).
    * ``SIZE_NETWORKS``: attributes of the networks an input goes through; ``size_multiple`` (a property, input
      sides must be multiples of it; ``predict_step`` and ``zoo translate`` pad to it and crop back) is the largest
      ``size_multiple`` they declare (networks declaring none take any size). Empty: the ``GENERATORS``.
    * ``requires_exemplar``: ``translate`` needs an ``exemplar=`` image batch (style reference, LOMIT).
    * ``takes_label_maps`` (property): ``translate`` takes label maps (pix2pixHD with ``label_nc > 0``).
    * ``style_dim`` (property): length of the N(0, I) style codes ``translate(style=...)`` takes; None without.
    * ``trainable``: False for fixed baselines (``bicubic``); the shared training tests skip them.
    * ``optimizer_steps_per_iteration``: optimizer steps one training iteration makes (Lightning's ``global_step``
      counts optimizer steps; ``ZooTrainer`` converts with it).
    * ``GENERATORS``: direction -> attribute name of the network translating that way (``{"a2b": "generator"}``);
      used by :meth:`generator_for`, :meth:`forward` and the EMA.
    * ``OFFICIAL_NETWORKS``: official network name -> attribute (``{"G": "generator", "D": "discriminator"}``) for
      the official-checkpoint import; its first entry is the default network.
    * ``direction_hint``: appended to the error of a one-direction method asked for another direction.
    * ``logged_lr_optimizer``: which optimizer's learning rate is logged as ``train/lr``.
    * ``INFERENCE_MEMORY_FORMAT``: the memory format ``translate`` runs the generator in (``torch.channels_last``
      for convolutional generators trained channels-last: faster on CPU; None keeps the module's).
    * ``ALIGNED_INPUTS``: ``translate`` keyword -> batch key of a further input aligned pixel for pixel with the
      images (pix2pixHD's instance map, ``{"instance": "instance"}``); ``predict_step``, the callbacks, ``zoo
      translate`` and ``zoo evaluate`` pass it, padded like the images.
    * ``PAPER_METRICS``: what ``zoo evaluate`` computes by default, the metrics the method's paper reports (names
      of :data:`zoo.metrics.METRIC_NAMES` and ``"diversity"``); metrics the data cannot feed (``miou`` without
      labels, paired metrics without aligned targets) are left out with a note.

    **A method must provide**:

    * ``__init__(self, *, ...)``: keyword-only, typed, calling ``self.save_hyperparameters()`` (checkpoints and
      bundles rebuild the model from them; string options typed with ``Literal`` are checked there); builds its
      networks, then calls :meth:`build_ema` with its ``ema_decay`` and, last, :meth:`use_compile` with its
      ``compile`` argument.
    * ``DOMAIN_CHANNELS``: the hyperparameters holding the channels of domain A and of domain B images
      (``("input_nc", "output_nc")``); a method whose channels follow from other options overrides the
      ``domain_channels`` property instead.
    * ``configure_optimizers()``: ``(optimizers, schedulers)``; optimisation is manual.
    * ``optimization_step(*inputs, *optimizers, **options) -> StepOutput``: one official training iteration on
      model-space inputs (``training_inputs``) with plain or Lightning optimizers, so parity tests run it without a
      Trainer; returns the weighted loss terms (scalars) and the images computed on the way. It calls
      :meth:`update_ema` after each generator step.

    **A method may override** (the defaults suit single-network generators):

    * ``translate(images, *, direction="a2b", seed=None, **conditions) -> Tensor``: ``(B, C_in, H, W)`` in [0, 1]
      -> ``(B, C_out, scale * H, scale * W)`` in [0, 1] (multimodal methods asked for ``num_styles=K`` return
      ``(B, K, C_out, ...)``), without gradients, leaving the module's mode and BatchNorm buffers unchanged;
      ``seed`` makes any sampling reproducible. Default: :func:`zoo.methods._common.run_generator` on
      :meth:`generator_for`, in train mode when the ``inference_mode`` hyperparameter is ``"train"``.
    * ``forward(x)``: model-space inference a2b, ``(B, C_a, H, W)`` -> ``(B, C_b, scale * H, scale * W)`` in [-1, 1].
    * ``generator_for(direction, *, use_ema=True) -> nn.Module``: the network ``translate`` runs.
    * ``example_inputs(batch_size, size, *, generator=None)``: random ``optimization_step`` inputs in [-1, 1].
    * ``training_inputs(batch)``: the inputs of ``optimization_step`` from a training batch (None skips it).
    * ``optimization_options(batch_idx)``: keyword arguments of ``optimization_step`` in the Trainer loop.
    * ``validation_metrics(batch) -> dict``: what validation (and test) logs under ``val/``.
    * ``lr_step_point``, ``step_schedulers()``: when and how the schedulers advance.
    * ``save_resume_state(checkpoint)`` / ``load_resume_state(checkpoint)``: state beyond parameters, optimizers
      and the global RNG that exact resumption needs (CycleGAN's image pools).
    * ``convert_official_state_dict``, ``load_official_weights``, ``official_state_dict``: the official-checkpoint
      import; the defaults read one state dict per network of ``OFFICIAL_NETWORKS`` (``official_norm`` decides the
      buffer fix-ups). A method with official checkpoints also provides the classmethod
      ``init_args_from_official(...)``: constructor arguments from the official options.

    **The base provides**: manual optimisation; ``training_step`` (inputs -> ``optimization_step`` -> scheduler
    stepping -> logging ``train/<loss>`` and ``train/lr``); ``validation_step``/``test_step`` logging
    ``validation_metrics``; ``predict_step`` through ``translate`` at any input size; ``setup``/``on_fit_end``
    moving the module to channels-last for training (``channels_last`` hyperparameter; ``"auto"`` picks by device)
    and back; checkpoints that carry ``zoo_method`` and the RNG state, restored at the first resumed batch
    (bit-exact resumption); the EMA copies (``self.ema``, a ``ModuleDict`` keyed by network attribute, ``None`` when
    off).
    """

    directions: ClassVar[tuple[str, ...]] = ("a2b",)
    scale: int = 1
    SIZE_NETWORKS: ClassVar[tuple[str, ...]] = ()
    requires_exemplar: ClassVar[bool] = False
    trainable: ClassVar[bool] = True
    optimizer_steps_per_iteration: ClassVar[int] = 1
    GENERATORS: ClassVar[dict[str, str]] = {"a2b": "generator"}
    OFFICIAL_NETWORKS: ClassVar[dict[str, str]] = {}
    direction_hint: ClassVar[str] = ""
    #: index (in ``configure_optimizers`` order) of the optimizer whose learning rate is logged as ``train/lr``
    logged_lr_optimizer: ClassVar[int] = 0
    #: attributes of the discriminators that see images: :meth:`use_diff_augment` augments their inputs
    IMAGE_DISCRIMINATORS: ClassVar[tuple[str, ...]] = ()
    PAPER_METRICS: ClassVar[tuple[str, ...]] = ("fid", "kid")
    ALIGNED_INPUTS: ClassVar[dict[str, str]] = {}
    #: networks the training step runs through methods other than ``forward`` (MUNIT's ``encode``/``decode``):
    #: ``compile`` compiles their submodules instead (dotted paths name submodules that are split further)
    COMPILE_BY_PARTS: ClassVar[tuple[str, ...]] = ()
    #: memory format ``translate`` runs the generator in (weights and inputs; None: as the module is)
    INFERENCE_MEMORY_FORMAT: ClassVar[torch.memory_format | None] = None
    #: hyperparameters holding the channels of domain A and of domain B images (see :attr:`domain_channels`)
    DOMAIN_CHANNELS: ClassVar[tuple[str, str]] = ("input_nc", "output_nc")

    def use_diff_augment(self, policy: str | None) -> None:
        """DiffAugment (:mod:`zoo.nets.diff_augment`) every input of the ``IMAGE_DISCRIMINATORS`` in training mode:
        real and generated images alike, in the discriminator and generator steps, differentiably. For small
        datasets (a few hundred images); ``policy`` is e.g. ``"color,translation,cutout"``, None or ``""`` is off.
        Called by a method's ``__init__`` with its ``diff_augment`` argument, after building the discriminators."""
        if policy and not self.IMAGE_DISCRIMINATORS:
            raise ValueError(f"{type(self).__name__} has no discriminator that sees images; diff_augment must be null.")
        if policy:
            for name in self.IMAGE_DISCRIMINATORS:
                augment_inputs_of(getattr(self, name), policy)

    @property
    def size_multiple(self) -> int:
        """Input sides must be multiples of this: the largest ``size_multiple`` declared by the networks of
        ``SIZE_NETWORKS`` (or ``GENERATORS``); 1 when none declares one. The networks are its only source."""
        names = self.SIZE_NETWORKS or tuple(self.GENERATORS.values())
        networks = [getattr(self, name, None) for name in names]
        return max((int(getattr(net, "size_multiple", 1)) for net in networks if net is not None), default=1)

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.ema: nn.ModuleDict | None = None
        self.compile_options: CompileOptions | None = None

    def save_hyperparameters(self, *args: Any, ignore: Sequence[str] | str | None = None,
                             frame: types.FrameType | None = None, logger: bool = True) -> None:
        """Lightning's ``save_hyperparameters`` (each method calls it in ``__init__``), then a check of every option
        typed with ``Literal`` strings (:func:`zoo.utils.choices.check_choices`): the ``zoo`` command's parser
        checks them from the type hints, a model built in Python only here."""
        frame = frame or inspect.currentframe().f_back  # Lightning reads the caller's arguments from its frame
        super().save_hyperparameters(*args, ignore=ignore, frame=frame, logger=logger)
        constructors = [cls.__dict__["__init__"] for cls in type(self).__mro__
                        if issubclass(cls, TranslationMethod) and "__init__" in cls.__dict__]
        check_choices(constructors, self.hparams, type(self).__name__)

    # ---------------------------------------------------------------- compilation

    @property
    def compiled_networks(self) -> tuple[str, ...]:
        """Module paths ``compile`` compiles: every direct submodule holding parameters (generators, discriminators,
        frozen feature networks of losses) except the EMA copies, which only run inference, and the
        :attr:`eager_networks`; the networks of ``COMPILE_BY_PARTS`` are replaced by their own submodules
        holding parameters (recursively)."""

        def expand(path: str, module: nn.Module) -> list[str]:
            if path not in self.COMPILE_BY_PARTS:
                return [path]
            return [part for name, child in module.named_children() if _has_parameters(child)
                    for part in expand(f"{path}.{name}", child)]

        eager = {"ema", *self.eager_networks}
        return tuple(part for name, child in self.named_children() if name not in eager and _has_parameters(child)
                     for part in expand(name, child))

    @property
    def eager_networks(self) -> tuple[str, ...]:
        """Networks ``compile`` leaves eager because training needs autograd graphs that compiled graphs cannot give:
        a backward pass that is differentiated again (gradient penalties), since ``aot_autograd`` graphs (inductor's)
        cannot be differentiated twice; a second backward pass through the same graph (``retain_graph``), which
        inductor refuses; or a backward pass through a graph whose weights were stepped since its forward pass, which
        must read the live parameters while a compiled backward may hold copies of them."""
        return ()

    def use_compile(self, setting: CompileSetting | CompileOptions) -> None:
        """Compile :attr:`compiled_networks` in place with :func:`torch.compile` (:mod:`zoo.compile`); ``False``
        or ``None`` leaves them eager. Called at the end of a method's ``__init__`` with its ``compile`` argument;
        call it on a loaded model to compile it (files always load eager)."""
        self.compile_options = compile_options(setting)
        compile_networks((self.get_submodule(name) for name in self.compiled_networks), self.compile_options)

    # ---------------------------------------------------------------- directions and channels

    @property
    def domain_channels(self) -> tuple[int, int]:
        """``(C_a, C_b)``: channels of domain A and of domain B images, the hyperparameters named by
        ``DOMAIN_CHANNELS``."""
        missing = [name for name in self.DOMAIN_CHANNELS if name not in self.hparams]
        if missing:
            raise NotImplementedError(f"{type(self).__name__} has no {' or '.join(missing)} hyperparameter: set "
                                      "DOMAIN_CHANNELS to the hyperparameters holding its channels, or override "
                                      "domain_channels")
        channels_a, channels_b = (self.hparams[name] for name in self.DOMAIN_CHANNELS)
        return channels_a, channels_b

    def check_direction(self, direction: str) -> str:
        """``direction`` if this method translates that way, else a ``ValueError`` naming the valid ones."""
        if direction in self.directions:
            return direction
        name = getattr(type(self), "method_name", type(self).__name__)
        if len(self.directions) == 1:
            message = f"{name} translates one way only (direction {self.directions[0]!r}), got {direction!r}"
        else:
            message = f"direction must be one of {self.directions}, got {direction!r}"
        raise ValueError(f"{message}; {self.direction_hint}" if self.direction_hint else message)

    @property
    def takes_label_maps(self) -> bool:
        """Whether ``translate`` takes label maps (class ids as 8-bit gray) rather than pictures: ``zoo translate``
        then translates the label-map files of a dataset instead of copying them as annotations."""
        return False

    @property
    def style_dim(self) -> int | None:
        """Length of the style codes ``translate(style=...)`` takes, drawn from N(0, I) by multimodal methods (MUNIT's
        ``style_dim``, DRIT's ``nz``); None for methods without style codes. ``zoo translate --style-policy`` and
        ``zoo export`` use it."""
        return None

    def input_channels(self, direction: str = "a2b") -> int:
        """Channels ``translate`` expects in ``direction``."""
        channels_a, channels_b = self.domain_channels
        return channels_a if self.check_direction(direction) == "a2b" else channels_b

    def output_channels(self, direction: str = "a2b") -> int:
        """Channels ``translate`` returns in ``direction``."""
        channels_a, channels_b = self.domain_channels
        return channels_b if self.check_direction(direction) == "a2b" else channels_a

    # ---------------------------------------------------------------- inference

    def generator_for(self, direction: str = "a2b", *, use_ema: bool = True) -> nn.Module:
        """The network translating in ``direction`` (``GENERATORS``), its EMA copy when kept and ``use_ema``."""
        name = self.GENERATORS[self.check_direction(direction)]
        if use_ema and self.ema is not None and name in self.ema:
            return self.ema[name].module
        return getattr(self, name)

    @property
    def inference_in_train_mode(self) -> bool:
        """Whether ``translate`` runs the generator in train mode (``inference_mode="train"``, pix2pix's default)."""
        return self.hparams.get("inference_mode", "eval") == "train"

    def forward(self, x: Tensor) -> Tensor:
        """A -> B in model space with the live network: (B, C_a, H, W) -> (B, C_b, scale*H, scale*W), in [-1, 1]."""
        return self.generator_for("a2b", use_ema=False)(x)

    def translate(self, images: Tensor, *, direction: str = "a2b", seed: int | None = None) -> Tensor:
        """Translate a batch.

        Args:
            images: (B, C_in, H, W), floating point in [0, 1]; H and W multiples of ``size_multiple``
                (:func:`~zoo.methods._common.check_images` refuses other images, saying how to convert them).
            direction: one of ``directions``.
            seed: seeds any randomness of inference (dropout in train-mode inference); ``None`` draws fresh noise.

        Returns:
            (B, C_out, scale * H, scale * W) in [0, 1].
        """
        check_images(images, self.input_channels(direction), self.size_multiple)
        net = self.generator_for(direction)
        if self.INFERENCE_MEMORY_FORMAT is not None:
            net = inference_net(self, net, self.INFERENCE_MEMORY_FORMAT)
        return run_generator(net, images, train_mode=self.inference_in_train_mode, seed=seed)

    def export_module(self, direction: str = "a2b") -> nn.Module:
        """``translate`` in ``direction`` as a traceable module for ``zoo export`` (an
        :class:`~zoo.methods._inference.InferenceModule`): ``forward(images, *inputs)``, images in [0, 1] ->
        (B, C_out, scale * H, scale * W) in [0, 1], on frozen float32 copies of the networks. Default: the
        generator of :meth:`generator_for` for methods that keep the default ``translate``; a method overriding
        ``translate`` overrides this too.

        Raises:
            NotExportableError: the method's inference has no graph equivalent (the message says why).
        """
        from zoo.methods._inference import GeneratorInference, NotExportableError, frozen_copy

        name = getattr(type(self), "method_name", type(self).__name__)
        if type(self).translate is not TranslationMethod.translate:
            raise NotExportableError(f"{name} overrides translate but not export_module, so zoo export cannot know "
                                     "what its graph computes; give it an export_module")
        net = self.generator_for(self.check_direction(direction))
        return GeneratorInference(frozen_copy(net, train_mode=self.inference_in_train_mode, what=name))

    def preview(self, images: Tensor, direction: str = "a2b") -> Tensor:
        """Inputs of ``translate`` as RGB pictures for sample grids and notebooks: (B, C_in, H, W) in [0, 1] ->
        (B, 3 or 1, H, W) in [0, 1]. Default: the images themselves (label-map methods colour their classes)."""
        return images

    def example_images(self, batch_size: int, size: int | tuple[int, int], direction: str = "a2b", *,
                       generator: torch.Generator | None = None) -> Tensor:
        """Random valid ``translate`` inputs (tests, benchmarks): (B, C_in, H, W) in [0, 1]; uniform noise by
        default (label-map methods draw class ids)."""
        height, width = (size, size) if isinstance(size, int) else size
        return torch.rand(batch_size, self.input_channels(direction), height, width, generator=generator)

    def example_inputs(self, batch_size: int, size: int | tuple[int, int], *,
                       generator: torch.Generator | None = None) -> tuple[Tensor, ...]:
        """Random ``optimization_step`` inputs in [-1, 1] (tests, benchmarks): ``(real_a, real_b)`` by default."""
        return random_unpaired_inputs(self, batch_size, size, generator=generator)

    # ---------------------------------------------------------------- exponential moving average

    @property
    def ema_networks(self) -> tuple[str, ...]:
        """Attributes of the networks the EMA follows: those of ``GENERATORS``, each once, in order."""
        return tuple(dict.fromkeys(self.GENERATORS.values()))

    def build_ema(self, decay: float | None) -> None:
        """Keep an exponential moving average of each of ``ema_networks`` in ``self.ema`` (``decay=None``: none).

        Call at the end of ``__init__``, once the networks exist. The copies are submodules (saved as
        ``ema.<network>.module.*``), used by :meth:`generator_for` and so by ``translate``.
        """
        if decay is None:
            self.ema = None
            return
        from zoo.nets.ema import ExponentialMovingAverage

        self.ema = nn.ModuleDict({name: ExponentialMovingAverage(getattr(self, name), decay=decay)
                                  for name in self.ema_networks})

    def update_ema(self) -> None:
        """Fold the current weights of the followed networks into their averages (no-op without EMA)."""
        if self.ema is not None:
            for name, average in self.ema.items():
                average.update(getattr(self, name))

    # ---------------------------------------------------------------- training

    def optimization_step(self, *inputs_and_optimizers: Any, **options: Any) -> StepOutput:
        """One training iteration: ``optimization_step(*training_inputs, *optimizers, **optimization_options)``.

        Returns:
            The weighted loss terms (scalar tensors, logged as ``train/<name>``) and the images computed on the way.
        """
        raise NotImplementedError(f"{type(self).__name__} must define optimization_step")

    @property
    def uses_channels_last(self) -> bool:
        """Whether training runs in the channels-last memory format: the ``channels_last`` hyperparameter, where
        ``"auto"`` decides by the training device (:func:`channels_last_pays`; the Trainer's device once attached to
        one, else the module's)."""
        setting = self.hparams.get("channels_last", False)
        if setting == "auto":
            trainer = self._trainer
            return channels_last_pays(trainer.strategy.root_device if trainer is not None else self.device)
        if setting not in (True, False):
            raise ValueError(f"channels_last must be true, false or 'auto', got {setting!r}")
        return bool(setting)

    def in_training_layout(self, inputs: tuple[Any, ...]) -> tuple[Any, ...]:
        """``inputs`` with every (B, C, H, W) tensor in the training memory format (channels-last when training uses
        it); other entries unchanged."""
        return tuple(to_memory_format(x, self.uses_channels_last) if isinstance(x, Tensor) and x.dim() == 4 else x
                     for x in inputs)

    @property
    def schedule_cycle(self) -> int:
        """Iterations until every kind of training iteration of the method's schedule has run once (1 unless the
        method alternates iterations, like LOMIT's ``n_critic`` or DRIT's ``d_iter``)."""
        return 1

    def training_inputs(self, batch: dict[str, Any]) -> tuple[Any, ...] | None:
        """The leading arguments of :meth:`optimization_step` from a training batch; ``None`` skips the batch.

        Default: ``(real_a, real_b)``, (B, C, H, W) in [-1, 1], in channels-last layout when training uses it.
        """
        return tuple(to_memory_format(batch[key], self.uses_channels_last) for key in ("real_a", "real_b"))

    def optimization_options(self, batch_idx: int) -> dict[str, Any]:
        """Keyword arguments of :meth:`optimization_step` for batch ``batch_idx`` of the epoch (none by default)."""
        return {}

    def optimizer_list(self) -> list[Any]:
        """The Trainer's optimizers in ``configure_optimizers`` order, always as a list."""
        optimizers = self.optimizers()
        return list(optimizers) if isinstance(optimizers, (list, tuple)) else [optimizers]

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        inputs = self.training_inputs(batch)
        if inputs is None:
            return
        optimizers = self.optimizer_list()
        if self.lr_step_point == "iteration_start":
            self.step_schedulers()
        out = self.optimization_step(*inputs, *optimizers, **self.optimization_options(batch_idx))
        if self.lr_step_point == "iteration_end":
            self.step_schedulers()
        batch_size = batch["real_a"].shape[0]
        self.log_losses(out.losses, batch_size=batch_size)
        self.log("train/lr", optimizers[self.logged_lr_optimizer].param_groups[0]["lr"], batch_size=batch_size)
        scaling = amp_scaling_of(self)
        if scaling is not None:  # 16-mixed: optimizer steps skipped for inf/NaN gradients so far, all optimizers
            self.log("amp/skipped_steps", float(sum(scaling.skipped_steps.values())), batch_size=batch_size)

    def log_losses(self, losses: Mapping[str, Tensor], *, batch_size: int, prefix: str = "train") -> None:
        """Log each loss term as ``<prefix>/<name>``."""
        self.log_dict({f"{prefix}/{name}": value.detach().float() for name, value in losses.items()},
                      batch_size=batch_size)

    # ---------------------------------------------------------------- learning-rate schedules

    @property
    def lr_step_point(self) -> LRStepPoint | None:
        """When the schedulers advance: the ``lr_step_at`` hyperparameter when the method has one, else at the end
        of each epoch. ``None`` leaves them to the method."""
        return self.hparams.get("lr_step_at", "epoch_end")

    def scheduler_list(self) -> list[Any]:
        """The Trainer's schedulers in ``configure_optimizers`` order, always as a list (empty without any)."""
        schedulers = self.lr_schedulers()
        if schedulers is None:
            return []
        return list(schedulers) if isinstance(schedulers, (list, tuple)) else [schedulers]

    def step_schedulers(self) -> None:
        """Advance every scheduler once (``ReduceLROnPlateau`` with metric 0, as the official loops do)."""
        from zoo.schedules import step_scheduler

        with warnings.catch_warnings():  # the official loops may step a schedule before the first optimizer step
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step\\(\\)`")
            for scheduler in self.scheduler_list():
                step_scheduler(scheduler)

    def on_train_epoch_start(self) -> None:
        if self.lr_step_point == "epoch_start":
            self.step_schedulers()

    def on_train_epoch_end(self) -> None:
        if self.lr_step_point == "epoch_end":
            self.step_schedulers()

    # ---------------------------------------------------------------- channels-last training

    def setup(self, stage: str) -> None:
        if stage == "fit" and self.uses_channels_last:  # before the optimizers are built
            self.to(memory_format=torch.channels_last)

    def on_fit_end(self) -> None:
        # back to the default layout, so a trained model and one loaded from its checkpoint compute identically
        self.to(memory_format=torch.contiguous_format)

    # ---------------------------------------------------------------- evaluation and prediction

    def validation_metrics(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """What validation logs (as ``val/<name>``) for one batch.

        Default, for paired data: ``l1``, the mean absolute difference in model space between ``translate`` of
        ``real_a`` (seed 0) and ``real_b``; nothing when ``real_b`` is absent or of another shape.
        """
        real_a, real_b = batch["real_a"], batch.get("real_b")
        fake_b = self.translate(to_unit_range(real_a), seed=0) * 2 - 1
        if real_b is None or real_b.shape != fake_b.shape:
            return {}
        return {"l1": F.l1_loss(fake_b.float(), real_b.float())}

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        metrics = self.validation_metrics(batch)
        if metrics:
            self.log_dict({f"val/{name}": value for name, value in metrics.items()},
                          batch_size=batch["real_a"].shape[0], sync_dist=True)

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self.validation_step(batch, batch_idx)

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Tensor]:
        """``{"fake_b": ..., "fake_a": ...}`` in [0, 1] for each direction whose input the batch has (``real_a``,
        ``real_b`` (B, C, H, W) in [-1, 1], any size: padded to ``size_multiple`` and cropped back)."""
        return predict_outputs(self, batch, directions=self.directions, masks=self.ALIGNED_INPUTS)

    # ---------------------------------------------------------------- checkpoints and exact resumption

    def save_resume_state(self, checkpoint: dict[str, Any]) -> None:
        """Add to ``checkpoint`` what exact resumption needs beyond parameters, optimizers and the RNG (none)."""

    def load_resume_state(self, checkpoint: dict[str, Any]) -> None:
        """Restore what :meth:`save_resume_state` added (absent keys: a checkpoint from before they existed)."""

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["zoo_method"] = getattr(type(self), "method_name", None)
        self.save_resume_state(checkpoint)
        checkpoint[RESUME_RNG_KEY] = capture_rng_state()  # dropout and sampling noise continue exactly on resume

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.load_resume_state(checkpoint)
        stash_rng_state_for_resume(self, checkpoint)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        apply_stashed_rng_state(self)

    # ---------------------------------------------------------------- official checkpoints (one state dict per network)

    @property
    def official_norm(self) -> str:
        """Normalisation of the official networks (decides the buffer fix-ups): the ``norm`` hyperparameter."""
        return self.hparams.get("norm", "none")

    def official_network_norm(self, net: str) -> str:
        """Normalisation of official network ``net`` (methods whose networks differ override it): ``official_norm``."""
        return self.official_norm

    def _official_net(self, net: str | None) -> str:
        if not self.OFFICIAL_NETWORKS:
            name = getattr(type(self), "method_name", type(self).__name__)
            raise TypeError(f"{name} has no official networks to load")
        return next(iter(self.OFFICIAL_NETWORKS)) if net is None else net

    def convert_official_state_dict(self, state_dict: dict[str, Tensor], *, net: str | None = None
                                    ) -> dict[str, Tensor]:
        """An official state dict of network ``net`` (default: the first of ``OFFICIAL_NETWORKS``) -> keys of this
        module (``<attribute>.<official key>``), with :func:`zoo.methods._common.convert_official_network_state`."""
        net = self._official_net(net)
        converted = convert_official_network_state(dict(state_dict), norm=self.official_network_norm(net))
        return {f"{official_attribute(self, net)}.{key}": value for key, value in converted.items()}

    def load_official_weights(self, state_dict: dict[str, Tensor], *, net: str | None = None) -> None:
        """Load an official state dict of network ``net`` (strict: every key used once, shapes checked), into its
        EMA copy too when one is kept."""
        net = self._official_net(net)
        load_official_network(self, dict(state_dict), net, norm=self.official_network_norm(net))

    def official_state_dict(self, net: str | None = None) -> dict[str, Tensor]:
        """The state dict of one network in the official layout (for export back to the official code)."""
        return self.get_submodule(official_attribute(self, self._official_net(net))).state_dict()


def _has_parameters(module: nn.Module) -> bool:
    return next(module.parameters(), None) is not None
