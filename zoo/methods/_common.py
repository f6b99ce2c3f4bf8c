"""Helpers shared by the method files: value ranges, seeded inference, official checkpoint keys, freezing."""

from __future__ import annotations

import contextlib
import random
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from zoo.losses import gan_loss
from zoo.precision import amp_scaling_of
from zoo.utils.tiling import translate_any_size

if TYPE_CHECKING:
    import lightning as L

__all__ = [
    "StepOutput",
    "backward",
    "iteration_index",
    "build_official_schedulers",
    "step_schedulers_at",
    "official_attribute",
    "load_official_network",
    "RESUME_RNG_KEY",
    "stash_rng_state_for_resume",
    "apply_stashed_rng_state",
    "to_memory_format",
    "capture_rng_state",
    "restore_rng_state",
    "adam",
    "check_images",
    "to_model_range",
    "to_unit_range",
    "set_requires_grad",
    "seeded",
    "preserved_norm_buffers",
    "run_generator",
    "convert_official_network_state",
    "official_init_args",
    "official_network_init_args",
    "official_options_init_args",
    "OFFICIAL_PIX2PIX_OPTIONS",
    "OFFICIAL_CUT_OPTIONS",
    "predict_outputs",
]

_NORM_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def to_model_range(images: Tensor) -> Tensor:
    """[0, 1] -> [-1, 1]."""
    return images * 2 - 1


def to_unit_range(images: Tensor) -> Tensor:
    """[-1, 1] -> [0, 1], clamped."""
    return ((images + 1) / 2).clamp(0, 1)


def set_requires_grad(nets: Iterable[nn.Module], requires_grad: bool) -> None:
    """Freeze or unfreeze every parameter of ``nets`` (the official ``set_requires_grad``)."""
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(requires_grad)


@contextlib.contextmanager
def seeded(seed: int | None, device: torch.device) -> Iterator[None]:
    """Run the block with torch's RNG seeded (CPU and ``device``), leaving the global RNG state untouched."""
    if seed is None:
        yield
        return
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, device_type=device.type if devices else "cuda"):
        torch.manual_seed(seed)
        yield


@contextlib.contextmanager
def preserved_norm_buffers(net: nn.Module) -> Iterator[None]:
    """Restore BatchNorm running statistics after the block (train-mode inference must not change the model)."""
    saved = {name: buf.clone() for name, buf in net.named_buffers() if name.rsplit(".", 1)[-1] in _NORM_BUFFERS}
    try:
        yield
    finally:
        buffers = dict(net.named_buffers())
        for name, value in saved.items():
            buffers[name].copy_(value)


def run_generator(net: nn.Module, images: Tensor, *, train_mode: bool, seed: int | None) -> Tensor:
    """Translate ``images`` (B, C, H, W) in [0, 1] with ``net`` and return (B, C', H, W) in [0, 1].

    ``train_mode=True`` runs the network as the official test script does by default (dropout active,
    BatchNorm on the statistics of the test batch) without letting it change any running buffer.
    The previous train/eval mode of ``net`` is restored.
    """
    was_training = net.training
    net.train(train_mode)
    try:
        # only a train-mode forward moves BatchNorm buffers; eval mode need not copy them
        buffers = preserved_norm_buffers(net) if train_mode else contextlib.nullcontext()
        with torch.inference_mode(), seeded(seed, images.device), buffers:
            return to_unit_range(net(to_model_range(images)))
    finally:
        net.train(was_training)


def convert_official_network_state(state_dict: dict[str, Tensor], *, norm: str) -> dict[str, Tensor]:
    """Official per-network state dict -> zoo's (same module paths) with the official loader's fix-ups.

    * a ``module.`` prefix (DataParallel-era files) is stripped;
    * with instance norm, ``running_mean``/``running_var``/``num_batches_tracked`` entries (written
      by the mid-2018 code and found in some published CycleGAN files) are dropped: they are never used;
    * with batch norm, a missing ``num_batches_tracked`` (files from PyTorch <= 0.3) is filled with 0.
    """
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        key = key.removeprefix("module.")
        if key.endswith("._metadata") or key == "_metadata":
            continue
        if norm == "instance" and key.rsplit(".", 1)[-1] in _NORM_BUFFERS:
            continue
        out[key] = value
    if norm in ("batch", "syncbatch"):
        for key in list(out):
            if key.endswith(".running_mean"):
                tracked = key[: -len("running_mean")] + "num_batches_tracked"
                out.setdefault(tracked, torch.tensor(0, dtype=torch.long))
    return out


#: Options of the CycleGAN/pix2pix code base (and of the CUT code base built on it) that keep their meaning in zoo:
#: official option name -> zoo constructor argument.
_OFFICIAL_CODE_BASE_OPTIONS = {
    **{name: name for name in ("input_nc", "output_nc", "ngf", "ndf", "init_type", "init_gain", "gan_mode", "lr",
                               "beta1", "lr_policy", "n_epochs", "n_epochs_decay", "epoch_count", "lr_decay_iters")},
    "n_layers_D": "n_layers_d",
}
#: The CycleGAN/pix2pix code base's options that pix2pix and CycleGAN share: official name -> zoo argument.
OFFICIAL_PIX2PIX_OPTIONS = {**_OFFICIAL_CODE_BASE_OPTIONS, "netG": "generator", "netD": "discriminator",
                            "norm": "norm", "use_dropout": "use_dropout", "padding_type": "padding_type"}
#: The CUT code base's options that CUT and DECENT share: official name -> zoo argument.
OFFICIAL_CUT_OPTIONS = {**_OFFICIAL_CODE_BASE_OPTIONS, "beta2": "beta2", "netG": "netG", "netD": "netD",
                        "normG": "norm_g", "normD": "norm_d", "no_antialias": "no_antialias",
                        "no_antialias_up": "no_antialias_up", "lambda_GAN": "lambda_gan", "num_patches": "num_patches"}


def official_init_args(opt: dict, mapping: dict[str, str]) -> dict:
    """Rename the official option names present in ``opt`` to zoo constructor arguments."""
    args = {}
    for official, ours in mapping.items():
        if official in opt:
            args[ours] = opt[official]
    if "no_dropout" in opt:
        args["use_dropout"] = not opt["no_dropout"]
    return args


def official_network_init_args(generator_args: dict, discriminator_args: dict) -> dict:
    """zoo arguments from the official ``define_G``/``ResnetGenerator`` and ``define_D`` constructor arguments."""
    args = official_init_args(generator_args, {"ngf": "ngf", "netG": "generator", "norm": "norm",
                                               "use_dropout": "use_dropout", "padding_type": "padding_type",
                                               "input_nc": "input_nc", "output_nc": "output_nc"})
    if "n_blocks" in generator_args:  # the ResnetGenerator class takes a block count instead of a name
        args["generator"] = f"resnet_{generator_args['n_blocks']}blocks"
    if "num_downs" in generator_args:
        args["generator"] = f"unet_{2 ** generator_args['num_downs']}"
    args.update(official_init_args(discriminator_args, {"ndf": "ndf", "netD": "discriminator",
                                                        "n_layers_D": "n_layers_d"}))
    if "n_layers" in discriminator_args:  # the NLayerDiscriminator class
        args.update(discriminator="n_layers", n_layers_d=discriminator_args["n_layers"])
    return args


def official_options_init_args(opt: dict, options: dict[str, str], networks: dict[str, dict] | None = None, *,
                               generator: str, discriminator: str) -> dict:
    """zoo constructor arguments from official training options and, optionally, per-network constructor calls.

    Args:
        opt: the official options (``opt`` of the official training script), as a dict.
        options: official option name -> zoo argument name.
        networks: official network name -> ``{"args": {...}}``, the arguments its ``define_G``/``define_D`` (or
            class) was called with; they override the options.
        generator: the entry of ``networks`` describing the generator (``"G"``, ``"G_A"``).
        discriminator: the entry of ``networks`` describing the discriminator (``"D"``, ``"D_A"``).
    """
    args = official_init_args(opt, options)
    if networks:
        args.update(official_network_init_args(networks.get(generator, {}).get("args", {}),
                                               networks.get(discriminator, {}).get("args", {})))
    return args


@dataclass
class StepOutput:
    """What one training iteration produced: (weighted) loss terms and the images computed on the way."""

    losses: dict[str, Tensor] = field(default_factory=dict)
    images: dict[str, Tensor] = field(default_factory=dict)


#: How far outside their range ``translate`` inputs may reach, as a fraction of its width: the overshoot of bicubic or
#: Lanczos resampling is let through, 8-bit values and [-1, 1] images passed as [0, 1] ones are not.
RANGE_SLACK = 0.1


def check_images(images: Tensor, channels: int, multiple: int, *, name: str = "images",
                 value_range: tuple[float, float] = (0.0, 1.0)) -> None:
    """Raise a clear ``ValueError`` unless ``images`` is floating point, (B, channels, H, W) with H, W multiples of
    ``multiple``, and within ``value_range`` ([0, 1] for ``translate``, [-1, 1] in model space), give or take
    :data:`RANGE_SLACK` of its width; NaN is refused."""
    if images.dim() != 4:
        raise ValueError(f"expected {name} of shape (B, C, H, W), got {tuple(images.shape)}")
    if images.shape[1] != channels:
        raise ValueError(f"expected {channels} input channels in {name}, got {images.shape[1]} "
                         f"(shape {tuple(images.shape)})")
    h, w = images.shape[-2:]
    if h % multiple or w % multiple:
        raise ValueError(f"{name} sides must be multiples of {multiple}, got {h}x{w}; pad first "
                         "(zoo.utils.tiling.pad_to_multiple) or use `zoo translate`, which pads and crops back")
    bottom, top = value_range
    expected = f"{name} in [{bottom:g}, {top:g}]"
    if not images.is_floating_point():
        hint = ": images.float() / 255" if images.dtype == torch.uint8 and value_range == (0.0, 1.0) else ""
        raise ValueError(f"expected floating-point {expected}, got {images.dtype}{hint}")
    if images.numel():
        low, high = torch.stack(images.detach().aminmax()).tolist()
        slack = RANGE_SLACK * (top - bottom)
        if not (low >= bottom - slack and high <= top + slack):  # written so that NaN fails too
            hint = ("; 8-bit values? divide by 255" if high > 2 else
                    "; [-1, 1] images? map them with (images + 1) / 2" if bottom == 0 and low < -0.5 else "")
            raise ValueError(f"expected {expected}, got values from {low:.4g} to {high:.4g}{hint}")


def adam(params: Iterable[nn.Parameter], *, lr: float, betas: tuple[float, float], eps: float = 1e-8,
         weight_decay: float = 0.0) -> torch.optim.Adam:
    """Adam with the fused (single-kernel) implementation: same update rule, far fewer kernel launches.

    The fused kernels exist for CPU and CUDA parameters; anything else falls back to the default implementation.
    """
    params = list(params)
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
    return torch.optim.Adam(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, fused=fused or None)


def capture_rng_state() -> dict[str, Any]:
    """torch (CPU and current CUDA device) and Python ``random`` states, for bit-exact resumption (dropout, noise)."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def restore_rng_state(state: dict[str, Any] | None) -> None:
    """Inverse of :func:`capture_rng_state`; missing entries are left alone."""
    if not state:
        return
    if "torch" in state:
        torch.set_rng_state(state["torch"].cpu())
    if "python" in state:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"].cpu())


def to_memory_format(images: Tensor, channels_last: bool) -> Tensor:
    """(B, C, H, W) in the channels-last layout when asked (a no-op otherwise)."""
    return images.contiguous(memory_format=torch.channels_last) if channels_last else images


# -------------------------------------------------------------------------------------------------------------------
# Training helpers (used by zoo.methods.base.TranslationMethod and by methods with their own loops)
# -------------------------------------------------------------------------------------------------------------------


def backward(model: L.LightningModule, loss: Tensor, *optimizers: Any, retain_graph: bool = False) -> None:
    """``manual_backward`` inside a Trainer (precision plugins, DDP), plain ``backward`` outside one.

    ``optimizers``: those the gradients are for, stepped next; under ``16-mixed`` the loss is scaled by the first
    one's gradient scaler (:mod:`zoo.precision`: one scaler per optimizer).
    """
    if getattr(model, "_trainer", None) is not None:
        scaling = amp_scaling_of(model)
        if scaling is not None and optimizers:
            scaling.backward_for(model, optimizers)
        model.manual_backward(loss, retain_graph=retain_graph)
    else:
        loss.backward(retain_graph=retain_graph)


def unscale_gradients(model: L.LightningModule, optimizer: Any) -> None:
    """Make ``optimizer``'s gradients their true values before clipping them: under ``16-mixed`` they are still
    multiplied by the loss scale (:mod:`zoo.precision`); a no-op otherwise."""
    scaling = amp_scaling_of(model)
    if scaling is not None:
        scaling.unscale_gradients(model, optimizer)


def discriminator_losses(discriminator: nn.Module, fake: Tensor, real: Tensor, gan_mode: str, *, joint: bool,
                         weights: tuple[float, float] = (0.5, 0.5)) -> dict[str, Tensor]:
    """The discriminator terms ``{"d_fake": w_f * gan(D(fake), False), "d_real": w_r * gan(D(real), True)}``.

    Args:
        discriminator: maps (B, C, H, W) images to logits.
        fake: (B, C, H, W) generated images, already detached.
        real: (B', C, H, W) real images.
        gan_mode: a :data:`zoo.losses.GANMode`.
        joint: one D call on both batches (the same numbers when D normalises each sample on its own).
        weights: ``(w_f, w_r)``.
    """
    if joint:
        pred_fake, pred_real = discriminator(torch.cat([fake, real])).split([fake.shape[0], real.shape[0]])
    else:
        pred_fake, pred_real = discriminator(fake), discriminator(real)
    return {"d_fake": weights[0] * gan_loss(pred_fake, False, gan_mode),
            "d_real": weights[1] * gan_loss(pred_real, True, gan_mode)}


def iteration_index(model: L.LightningModule) -> tuple[int, int | None]:
    """(training batches completed, epoch) for messages; (0, None) outside a Trainer."""
    trainer = getattr(model, "_trainer", None)
    if trainer is None:
        return 0, None
    return trainer.fit_loop.epoch_loop.total_batch_idx, trainer.current_epoch


def build_official_schedulers(optimizers: Iterable[torch.optim.Optimizer], hparams: Any) -> list[dict[str, Any]]:
    """One official epoch-based scheduler per optimizer, from ``lr_policy``/``n_epochs``/... hyperparameters."""
    from zoo.schedules import build_scheduler

    return [{"scheduler": build_scheduler(o, policy=hparams.lr_policy, n_epochs=hparams.n_epochs,
                                          n_epochs_decay=hparams.n_epochs_decay, epoch_count=hparams.epoch_count,
                                          lr_decay_iters=hparams.lr_decay_iters), "interval": "epoch"}
            for o in optimizers]


def step_schedulers_at(model: L.LightningModule, when: str) -> None:
    """Step every scheduler if ``model.hparams.lr_step_at == when`` (``epoch_start`` or ``epoch_end``)."""
    from zoo.schedules import step_scheduler

    if model.hparams.lr_step_at != when:
        return
    with warnings.catch_warnings():  # the legacy loop steps the schedule before the first optimizer step
        warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step\\(\\)`")
        for scheduler in model.lr_schedulers():
            step_scheduler(scheduler)


def official_attribute(model: nn.Module, net: str) -> str:
    """Module path of the official network ``net`` (``"G_A"`` -> ``"generator_a2b"``; a dotted path names a part of
    a network, ``"generator.decoder"``), via ``OFFICIAL_NETWORKS``."""
    try:
        return model.OFFICIAL_NETWORKS[net]
    except KeyError:
        raise ValueError(f"net must be one of {sorted(model.OFFICIAL_NETWORKS)}, got {net!r}") from None


def load_official_network(model: nn.Module, state_dict: dict[str, Tensor], net: str, *, norm: str) -> None:
    """Strictly load an official per-network state dict into ``model``'s network (and its EMA copy, if kept)."""
    path = official_attribute(model, net)
    converted = convert_official_network_state(state_dict, norm=norm)
    model.get_submodule(path).load_state_dict(converted, strict=True)
    network, _, part = path.partition(".")  # EMA copies are kept per network attribute
    ema = getattr(model, "ema", None)
    if ema is not None and network in ema:
        ema[network].module.get_submodule(part).load_state_dict(converted, strict=True)


RESUME_RNG_KEY = "rng_state"


def stash_rng_state_for_resume(model: nn.Module, checkpoint: dict[str, Any]) -> None:
    """Keep the checkpoint's random state until :func:`apply_stashed_rng_state` runs at the first resumed batch.

    Applying it later than ``on_load_checkpoint`` matters: creating the data-loader iterator draws from the global
    generator, which the uninterrupted run did before the state was saved.
    """
    model._pending_rng_state = checkpoint.get(RESUME_RNG_KEY)


def apply_stashed_rng_state(model: nn.Module) -> None:
    state = getattr(model, "_pending_rng_state", None)
    if state is not None:
        restore_rng_state(state)
        model._pending_rng_state = None


def random_unpaired_inputs(model: Any, batch_size: int, size: int | tuple[int, int], *,
                           generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Random ``(real_a, real_b)`` in model space [-1, 1] with the channels of ``model``'s two domains.

    The default ``example_inputs`` of two-domain translators (used by the shared tests and ``bench/``).

    Returns:
        ``real_a`` (B, C_a, H, W) and ``real_b`` (B, C_b, H, W), uniform in [-1, 1].
    """
    height, width = (size, size) if isinstance(size, int) else size
    real_a = torch.rand(batch_size, model.input_channels("a2b"), height, width, generator=generator) * 2 - 1
    real_b = torch.rand(batch_size, model.output_channels("a2b"), height, width, generator=generator) * 2 - 1
    return real_a, real_b


class _InferenceLayout(nn.Module):
    """Runs ``net`` on inputs in ``memory_format``, with the given copies of its weights (or its own)."""

    def __init__(self, net: nn.Module, state: dict[str, Tensor] | None, memory_format: torch.memory_format) -> None:
        super().__init__()
        self.net, self.state, self.memory_format = net, state, memory_format

    def forward(self, x: Tensor) -> Tensor:
        x = x.contiguous(memory_format=self.memory_format) if x.dim() == 4 else x
        out = self.net(x) if self.state is None else torch.func.functional_call(self.net, self.state, (x,))
        return out.contiguous()


def _strides(shape: torch.Size, memory_format: torch.memory_format) -> tuple[int, ...]:
    n, c, h, w = shape
    if memory_format == torch.channels_last:
        return (h * w * c, 1, w * c, c)
    return (c * h * w, h * w, w, 1)


def inference_net(owner: nn.Module, net: nn.Module, memory_format: torch.memory_format) -> nn.Module:
    """``net`` run in one layout: its 4-D weights in ``memory_format``, inputs converted to it, outputs NCHW.

    The best layout for inference depends on the generator: oneDNN convolutions are about 1.5x faster on channels-last
    data on CPU, and zoo's instance norms keep that layout (:class:`zoo.nets.norm.ChannelsLastInstanceNorm2d`), while
    depthwise blur filters and reflection pads can be faster in NCHW. Weights that training left in the other layout
    are copied once and cached on ``owner`` until a weight changes (its storage or in-place version counter). The
    strides are compared, not ``is_contiguous()``: a (C, 1, k, k) depthwise filter is contiguous in both layouts, but
    its strides decide the layout of its convolution.
    """
    tensors = [*net.named_parameters(), *net.named_buffers()]
    if all(t.stride() == _strides(t.shape, memory_format) for _, t in tensors if t.dim() == 4):
        return _InferenceLayout(net, None, memory_format)
    key = (id(net), memory_format, tuple((t.data_ptr(), t._version) for _, t in tensors))
    cache = owner.__dict__.get("_inference_weights_cache")
    if cache is None or cache[0] != key:
        state = {name: t.detach().clone(memory_format=memory_format) if t.dim() == 4 else t.detach()
                 for name, t in tensors}
        cache = (key, state)
        owner.__dict__["_inference_weights_cache"] = cache
    return _InferenceLayout(net, cache[1], memory_format)


#: Output key and input key of each translation direction in predict batches.
PREDICT_KEYS: dict[str, tuple[str, str]] = {"a2b": ("fake_b", "real_a"), "b2a": ("fake_a", "real_b")}


def predict_outputs(model: nn.Module, batch: dict[str, Any], *, directions: Iterable[str] = ("a2b",),
                    seed: int | None = None, masks: dict[str, str] | None = None,
                    **conditions: Any) -> dict[str, Tensor]:
    """What a method's ``predict_step`` returns: ``model.translate`` of a predict batch at any input size.

    Each input is reflect-padded to ``model.size_multiple``, translated and cropped back
    (:func:`zoo.utils.tiling.translate_any_size`), so outputs keep the input size (times ``model.scale``).

    Args:
        model: a zoo method (``translate``, ``size_multiple``).
        batch: predict batch: ``real_a`` and optionally ``real_b`` (B, C, H, W) in [-1, 1].
        directions: directions to run; ``a2b`` reads ``real_a`` and gives ``fake_b``, ``b2a`` reads ``real_b`` and
            gives ``fake_a``. ``b2a`` is skipped when the batch has no ``real_b``; ``real_a`` is required.
        seed: seed for methods that sample.
        masks: ``translate`` keyword -> batch key of a mask aligned pixel for pixel with the input (LOMIT's
            ``{"mask": "mask_a"}``), padded like the input; keys missing from the batch (or None) are skipped.
        **conditions: further ``translate`` keywords, passed unchanged (an exemplar must already be padded to
            ``model.size_multiple``: :func:`zoo.utils.tiling.pad_to_multiple`).

    Returns:
        ``{"fake_b": ..., "fake_a": ...}`` for the directions run, in [0, 1].

    Shape:
        - ``batch["real_a"]``: ``(B, C_in, H, W)``
        - ``fake_b``: ``(B, C_out, s * H, s * W)``, ``s`` = ``model.scale``; ``(B, K, C_out, s * H, s * W)`` for
          multimodal methods asked for ``num_styles=K``.
    """
    outputs: dict[str, Tensor] = {}
    for direction in directions:
        out_key, in_key = PREDICT_KEYS[direction]
        if in_key not in batch:
            if direction == "a2b":
                raise KeyError(f"predict batch has no '{in_key}' (keys: {sorted(batch)}); the predict DataModule "
                               f"must provide '{in_key}' images in [-1, 1]")
            continue
        aligned = {name: batch[key] for name, key in (masks or {}).items() if batch.get(key) is not None}
        images = ((batch[in_key] + 1) / 2).clamp(0, 1)
        outputs[out_key] = translate_any_size(model, images, direction=direction, seed=seed, masks=aligned,
                                              **conditions)
    return outputs
