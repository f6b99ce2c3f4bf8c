"""Export the inference generator of a zoo method to ONNX, TorchScript or an ExportedProgram, verified against eager
PyTorch.

The exported graph is ``translate`` of one direction: images in [0, 1] in, images in [0, 1] out, the conversion to
and from model space inside the graph. Inputs a method needs beyond the images are explicit graph inputs:

==============  =========================================================================================
method          graph inputs (all float32)
==============  =========================================================================================
most methods    ``images`` (B, C_in, H, W)
MUNIT, DRIT     ``images``, ``style`` (B, style_dim): codes of N(0, I), as ``translate(style=...)``
LOMIT           ``images``, ``exemplar`` (B, C, H, W); with ``mask_source="given"`` also ``mask`` (B, 1, H, W)
                and ``exemplar_mask`` (B, 1, H, W); otherwise the learned mask network runs in the graph
pix2pixHD       ``images`` (B, 1, H, W) label maps (``id / 255``), ``instance`` (B, 1, H, W) integer ids as
                float unless ``no_instance``, ``features`` (B, feat_num, H, W) for feature-encoder models
==============  =========================================================================================

The output is ``output`` (B, C_out, scale * H, scale * W). The exported network is the one ``translate`` runs (the
EMA copy when the model keeps one), in eval mode; models whose ``translate`` runs the generator in train mode
(``inference_mode="train"``) export with BatchNorm on the statistics of the batch, as ``translate`` computes it.

Usage::

    zoo export --model cyclegan.horse2zebra --format onnx --output horse2zebra.onnx --dynamic-shapes
    zoo translate --model horse2zebra.onnx --input photos/ --output zebras/     # runs with onnxruntime

    from zoo.export import export_model, load_onnx_model
    report = export_model(zoo.load("runs/munit/version_0/checkpoints/last.ckpt"), "munit.onnx", format="onnx")
    translator = load_onnx_model("munit.onnx")          # an nn.Module that quacks like a method
    out = translator.translate(images, seed=0)          # (B, C_out, H, W) in [0, 1], style drawn from N(0, I)

Formats: ``onnx`` (``torch.onnx.export`` with the ``torch.export``-based exporter, opset :data:`ONNX_OPSET`; needs
``pip install "zoo[export]"`` for onnx, onnxscript and onnxruntime), ``torchscript`` (``torch.jit.trace``, saved with
``torch.jit.save``; load with ``torch.jit.load``) and ``exported-program`` (``torch.export.export``, a ``.pt2`` file;
load with ``torch.export.load(path).module()``). Static shapes by default (the example size); ``dynamic_shapes=True``
makes batch, height and width dynamic (sides multiples of ``size_multiple``). The metadata (zoo version, method,
direction, ``size_multiple``, ``scale``, channels, input names, ``style_dim``) is stored in the file: ONNX
``metadata_props``, the extra file ``zoo_export.json`` of TorchScript and ``.pt2`` files.

Every export is verified: the written file is run (ONNX with onnxruntime, the others loaded back) on random inputs
and on a real frame of the toy world (or the caller's images) and compared with eager ``translate`` in float32; a
difference above :data:`TOLERANCE` raises :class:`ExportVerificationError`. Dynamic exports are also checked at a
second size and batch.

What does not export and why
----------------------------
Found by exporting every registered method to all three formats (``tests/test_export.py`` keeps every method's
ONNX export and a representative set of the others verified):

* **Sampling in Python.** MUNIT and DRIT draw style codes with a ``torch.Generator`` in ``translate``; the graph
  takes the codes as the ``style`` input instead (:class:`OnnxTranslator` draws them, seeded, outside the graph).
  Reference images (``translate(reference=...)``) and ``num_styles > 1`` are not exported: encode the style in
  PyTorch, or call the graph once per style.
* **pix2pixHD feature clusters.** Sampling a k-means centre per instance loops over ``torch.unique`` of the data
  and draws random numbers (data-dependent control flow): feature-encoder models (``instance_feat``/``label_feat``)
  export with an explicit ``features`` input instead. The label ids are not range-checked in the graph (an id
  outside ``[0, label_nc)`` gives an all-zero one-hot row instead of ``translate``'s error).
* **Dropout at inference.** pix2pix's default ``inference_mode="train"`` (and CycleGAN's, with ``use_dropout``)
  keeps dropout active: its output is random, so no graph can match eager; export raises
  :class:`NotExportableError` (export a model with ``inference_mode="eval"``). Train-mode BatchNorm without
  dropout (LOMIT's default) exports, on the batch statistics.
* **``translate`` itself is not traced.** It is not traceable as written: ``torch.inference_mode``, Python-side
  checks that read tensor values (pix2pixHD's label-id range via ``.item()``, LOMIT's mask range), a weight-layout
  cache keyed by ``data_ptr`` (channels-last inference of CUT, DECENT, VSAIT, SRUNIT), and TorchScript cannot trace
  a ``LightningModule`` (it reads ``.trainer``). Each method's ``export_module`` (the method contract) runs the
  networks ``translate`` runs, with the same
  pre- and post-processing, and every export is verified against ``translate`` so they cannot drift silently.
* **Bicubic with dynamic shapes.** Its MATLAB-style kernel weights are computed in NumPy from the image size, so a
  graph holds them for one size only: ``dynamic_shapes=True`` raises :class:`NotExportableError`.
* **Tiling and padding** (``zoo translate --tile``, padding to ``size_multiple``) stay outside the graph, around
  it, as they stay outside ``translate``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.methods._common import to_unit_range
from zoo.methods._inference import InferenceModule, NotExportableError

__all__ = [
    "ExportFormat",
    "ExportReport",
    "ExportVerificationError",
    "InferenceModule",
    "NotExportableError",
    "OnnxTranslator",
    "ONNX_OPSET",
    "TOLERANCE",
    "export_model",
    "inference_module",
    "load_onnx_model",
    "read_metadata",
]

ExportFormat = Literal["onnx", "torchscript", "exported-program"]
FORMATS: tuple[str, ...] = ("onnx", "torchscript", "exported-program")
#: ONNX opset the graphs are written with
ONNX_OPSET = 18
#: largest max-abs difference (outputs in [0, 1]) the verification accepts
TOLERANCE = 1e-4
#: name of the metadata file inside TorchScript and ``.pt2`` archives
METADATA_FILE = "zoo_export.json"
_INSTALL_HINT = 'pip install "zoo[export]"'


class ExportVerificationError(RuntimeError):
    """The exported file computes something else than eager ``translate`` (difference above the tolerance)."""


# --------------------------------------------------------------------------------------------------------------------
# Inference modules: each method's export_module (zoo.methods._inference)
# --------------------------------------------------------------------------------------------------------------------


def inference_module(model: nn.Module, direction: str = "a2b") -> InferenceModule:
    """The exportable inference module of ``model`` in ``direction`` (its ``export_module``), in eval mode: equal to
    ``model.translate`` in eval mode. ``model`` is left unchanged.

    Raises:
        NotExportableError: not a zoo method, or its ``translate`` has no graph equivalent (see the module docstring).
    """
    from zoo.methods import TranslationMethod

    if not isinstance(model, TranslationMethod):
        raise NotExportableError(f"{type(model).__name__} is not a zoo method (TranslationMethod)")
    return model.export_module(model.check_direction(direction)).eval()


# --------------------------------------------------------------------------------------------------------------------
# Metadata, inputs and references
# --------------------------------------------------------------------------------------------------------------------


def _metadata(model: nn.Module, module: InferenceModule, direction: str, fmt: str, dynamic: bool,
              size: tuple[int, int]) -> dict[str, Any]:
    import zoo

    return {
        "zoo_version": zoo.__version__,
        "method": getattr(type(model), "method_name", type(model).__name__),
        "direction": direction,
        "size_multiple": int(model.size_multiple),
        "scale": int(model.scale),
        "input_channels": int(model.input_channels(direction)),
        "output_channels": int(model.output_channels(direction)),
        "input_names": list(module.input_names),
        "output_names": ["output"],
        "style_dim": model.style_dim,
        "requires_exemplar": bool(getattr(model, "requires_exemplar", False)),
        "aligned_inputs": [name for name in getattr(model, "ALIGNED_INPUTS", {}) if name in module.input_names],
        "format": fmt,
        "dynamic_shapes": dynamic,
        "example_size": list(size),
    }


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The zoo metadata stored in an exported file (ONNX, TorchScript or ``.pt2``)."""
    import zipfile

    path = Path(path)
    if not zipfile.is_zipfile(path):  # TorchScript and .pt2 files are zip archives, ONNX files protobuf
        onnx = _require("onnx")
        props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        if "zoo" not in props:
            raise ValueError(f"{path} was not written by zoo export (no 'zoo' metadata)")
        return json.loads(props["zoo"])
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if name.rsplit("/", 1)[-1] == METADATA_FILE:
                return json.loads(archive.read(name))
    raise ValueError(f"{path} was not written by zoo export (no {METADATA_FILE})")


def _require(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(f"{module} is needed for ONNX export and inference: {_INSTALL_HINT}") from error


def _toy_images(model: nn.Module, direction: str, size: tuple[int, int], seed: int) -> Tensor:
    """One real frame of the embedded toy world, (1, C_in, H, W) in [0, 1] (a photo, in the model's channels)."""
    from zoo.data.toy_world import make_scene, render_photo

    photo = torch.from_numpy(render_photo(make_scene(seed, *size))).permute(2, 0, 1).float()[None] / 255
    return _with_channels(photo, model.input_channels(direction))


def _with_channels(images: Tensor, channels: int) -> Tensor:
    """(B, C, H, W) -> (B, channels, H, W): gray as the mean, extra channels repeated."""
    if images.shape[1] == channels:
        return images
    if channels == 1:
        return images.mean(1, keepdim=True)
    return images.repeat(1, -(-channels // images.shape[1]), 1, 1)[:, :channels]


def _real_inputs(model: nn.Module, module: InferenceModule, direction: str, size: tuple[int, int],
                 images: Tensor | None) -> tuple[Tensor, ...]:
    """Inputs from the toy world (or ``images``): a photo (pix2pixHD: a label map with its instance map)."""
    from zoo.methods import Pix2PixHD

    generator = torch.Generator().manual_seed(1)
    if images is None and isinstance(model, Pix2PixHD) and model.hparams.label_nc >= 34:
        from zoo.data.toy_world import ToyLabelMapDataset

        item = ToyLabelMapDataset(length=1, size=size, split="test")[0]
        images = to_unit_range(item["real_a"])[None]
        extras = module.example_extras(images, generator=generator)
        if module.input_names[1:2] == ("instance",):
            extras = (item["instance"][None], *extras[1:])
        return (images, *extras)
    if images is None:
        images = _toy_images(model, direction, size, seed=0)
    extras = module.example_extras(images, generator=generator)
    if "exemplar" in module.input_names:  # a real exemplar: another street
        exemplar = _toy_images(model, direction, tuple(images.shape[-2:]), seed=1).expand_as(images)
        extras = (exemplar.contiguous(), *extras[1:])
    return (images, *extras)


def _random_inputs(model: nn.Module, module: InferenceModule, direction: str, batch: int, size: tuple[int, int],
                   seed: int) -> tuple[Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    images = model.example_images(batch, size, direction, generator=generator)
    return (images, *module.example_extras(images, generator=generator))


def _reference(model: nn.Module, module: InferenceModule, direction: str, inputs: Sequence[Tensor]) -> Tensor:
    """Eager ``model.translate`` of ``inputs`` (the graph inputs), in float32 on the CPU."""
    device = next(model.parameters(), torch.empty(0)).device
    images, *extras = (tensor.to(device) for tensor in inputs)
    conditions = dict(zip(module.input_names[1:], extras, strict=True))
    return model.translate(images, direction=direction, seed=0, **conditions).float().cpu()


# --------------------------------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class ExportReport:
    """What :func:`export_model` wrote and how well the file matches eager PyTorch.

    Attributes:
        path: the file written.
        format: ``onnx``, ``torchscript`` or ``exported-program``.
        input_names: graph inputs, ``images`` first.
        output_names: graph outputs (``output``).
        metadata: what the file stores (see the module docstring).
        checks: check name -> max abs difference against eager ``translate`` (empty without verification).
        opset: ONNX opset (None for the other formats).
        seconds: time taken by the export (verification excluded).
    """

    path: Path
    format: str
    input_names: tuple[str, ...]
    output_names: tuple[str, ...] = ("output",)
    metadata: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, float] = field(default_factory=dict)
    opset: int | None = None
    seconds: float = 0.0

    @property
    def max_abs_diff(self) -> float:
        """Largest difference over every check (0 without verification)."""
        return max(self.checks.values(), default=0.0)

    def summary(self) -> str:
        """Lines for the CLI: one per check, then the file."""
        lines = [f"verify {name}: max abs diff {diff:.3g}" for name, diff in self.checks.items()]
        opset = f", opset {self.opset}" if self.opset else ""
        lines.append(f"wrote {self.path} ({self.format}{opset}; inputs {', '.join(self.input_names)})")
        return "\n".join(lines)


def _dynamic_shapes(module: InferenceModule, multiple: int, example: Sequence[Tensor]) -> tuple[Any, ...]:
    """``torch.export`` dynamic shapes: batch, and height/width as multiples of ``multiple``, shared by the inputs
    aligned with the images (masks, instance maps, features, LOMIT's exemplar)."""
    from torch.export import Dim

    batch = Dim("batch", min=1, max=1024)
    height = Dim("height_blocks", min=1, max=16384 // multiple)
    width = Dim("width_blocks", min=1, max=16384 // multiple)
    h, w = (height * multiple, width * multiple) if multiple > 1 else (height, width)
    return tuple({0: batch} if tensor.dim() == 2 else {0: batch, 2: h, 3: w} for tensor in example)


def _write_onnx(module: InferenceModule, example: tuple[Tensor, ...], path: Path, dynamic: tuple[Any, ...] | None,
                metadata: dict[str, Any]) -> None:
    onnx = _require("onnx")
    _require("onnxscript")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(module, example, dynamo=True, input_names=list(module.input_names),
                                    output_names=["output"], opset_version=ONNX_OPSET, dynamic_shapes=dynamic,
                                    optimize=True, verbose=False, external_data=False)
    proto = program.model_proto
    for key, value in {"zoo": json.dumps(metadata), **{k: json.dumps(v) for k, v in metadata.items()}}.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))


def _write_torchscript(module: InferenceModule, example: tuple[Tensor, ...], path: Path,
                       metadata: dict[str, Any]) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(module, example, check_trace=False)
    torch.jit.save(traced, str(path), _extra_files={METADATA_FILE: json.dumps(metadata)})


def _write_exported_program(module: InferenceModule, example: tuple[Tensor, ...], path: Path,
                            dynamic: tuple[Any, ...] | None, metadata: dict[str, Any]) -> None:
    program = torch.export.export(module, example, dynamic_shapes=dynamic)
    torch.export.save(program, str(path), extra_files={METADATA_FILE: json.dumps(metadata)})


def _runner(path: Path, fmt: str, input_names: Sequence[str]):
    """A function running the written file on CPU tensors: ``run(*inputs) -> output``."""
    if fmt == "onnx":
        session = _onnx_session(path, torch.device("cpu"))

        def run(*inputs: Tensor) -> Tensor:
            feeds = {name: tensor.detach().float().cpu().numpy() for name, tensor in zip(input_names, inputs,
                                                                                          strict=True)}
            return torch.from_numpy(session.run(None, feeds)[0])
        return run
    if fmt == "torchscript":
        loaded = torch.jit.load(str(path), map_location="cpu")
    else:
        loaded = torch.export.load(str(path)).module()

    def run_torch(*inputs: Tensor) -> Tensor:
        with torch.no_grad():
            return loaded(*inputs).float()
    return run_torch


def _verify(run, model: nn.Module, module: InferenceModule, direction: str, checks: dict[str, tuple[Tensor, ...]],
            tolerance: float) -> dict[str, float]:
    diffs: dict[str, float] = {}
    for name, inputs in checks.items():
        expected = _reference(model, module, direction, inputs)
        got = run(*inputs)
        if got.shape != expected.shape:
            raise ExportVerificationError(f"verification '{name}': the exported file gives shape {tuple(got.shape)}, "
                                          f"eager translate {tuple(expected.shape)}")
        diff = float((got - expected).abs().max()) if expected.numel() else 0.0
        diffs[name] = diff
        if not diff <= tolerance:  # NaN fails too
            raise ExportVerificationError(
                f"verification '{name}' failed: the exported file differs from eager translate by {diff:.3g} (max "
                f"abs, tolerance {tolerance:g}); the file is kept at its path for inspection, but do not use it")
    return diffs


def _size_pair(size: int | Sequence[int] | None, model: nn.Module, dynamic: bool) -> tuple[int, int]:
    multiple = int(model.size_multiple)
    if size is None:
        # dynamic graphs: two blocks at least, so no side traces as 1 (torch.export specialises sizes 0 and 1)
        side = max(32 if model.scale == 1 else 16, multiple * (2 if dynamic else 1))
        return side, side
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    if height % multiple or width % multiple or height <= 0 or width <= 0:
        raise ValueError(f"example size must be positive multiples of size_multiple={multiple}, got {height}x{width}")
    return int(height), int(width)


def _second_size(size: tuple[int, int], multiple: int) -> tuple[int, int]:
    return size[0] + multiple * max(1, 8 // multiple), size[1] + 2 * multiple * max(1, 8 // multiple)


def _prepare_real(images: Tensor, model: nn.Module, direction: str, size: tuple[int, int], dynamic: bool) -> Tensor:
    """Caller images (B, C, H, W) or (C, H, W) in [0, 1] -> the model's channels, resized to the export size (static
    graphs) or cropped to multiples of ``size_multiple`` (dynamic ones)."""
    from zoo.methods import Pix2PixHD

    images = images[None] if images.dim() == 3 else images
    images = _with_channels(images.float(), model.input_channels(direction))
    labels = isinstance(model, Pix2PixHD) and model.hparams.label_nc
    if dynamic:
        multiple = model.size_multiple
        h, w = images.shape[-2] // multiple * multiple, images.shape[-1] // multiple * multiple
        if not h or not w:
            raise ValueError(f"verification images must be at least {multiple} pixels on each side")
        return images[..., :h, :w]
    if tuple(images.shape[-2:]) == size:
        return images
    if labels:
        return F.interpolate(images, size=size, mode="nearest")
    return F.interpolate(images, size=size, mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)


def export_model(model: nn.Module, output: str | os.PathLike[str], *, format: ExportFormat = "onnx",
                 direction: str = "a2b", dynamic_shapes: bool = False, example_size: int | Sequence[int] | None = None,
                 verify: bool = True, real_images: Tensor | Sequence[Tensor] | None = None,
                 tolerance: float = TOLERANCE) -> ExportReport:
    """Export ``model.translate`` in ``direction`` to ``output`` and verify the file against eager PyTorch.

    Args:
        model: a zoo method (``zoo.load(...)``); left unchanged.
        output: file to write (``.onnx``, ``.pt`` for TorchScript, ``.pt2`` for ExportedProgram by convention).
        format: ``onnx``, ``torchscript`` or ``exported-program``.
        direction: the direction exported (one per file).
        dynamic_shapes: batch, height and width dynamic (sides multiples of ``size_multiple``); otherwise the graph
            is checked at the example size and batch 1 only (what other shapes do is not guaranteed).
        example_size: (H, W) or a side of the example input (default: 32, or 16 for upscalers, at least
            ``size_multiple``); the input size of a static graph.
        verify: run the written file and compare with eager ``translate`` (random inputs, a toy-world frame or
            ``real_images``, and a second size with dynamic shapes).
        real_images: images in [0, 1], (B, C, H, W) or a sequence of (C, H, W), checked instead of the toy frame.
        tolerance: largest accepted max-abs difference.

    Returns:
        An :class:`ExportReport` (path, metadata, max abs difference of each check).

    Raises:
        NotExportableError: the model or option cannot be exported (the message says why).
        ExportVerificationError: the file differs from eager ``translate`` by more than ``tolerance``.
        ImportError: ONNX export without onnx/onnxscript/onnxruntime (``pip install "zoo[export]"``).
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    try:
        module = inference_module(model, direction)
        if dynamic_shapes and module.static_shapes_only:
            raise NotExportableError(module.static_shapes_only)
        size = _size_pair(example_size, model, dynamic_shapes)
        batch = 2 if dynamic_shapes else 1
        example = _random_inputs(model, module, direction, batch, size, seed=0)
        dynamic = _dynamic_shapes(module, int(model.size_multiple), example) if dynamic_shapes else None
        metadata = _metadata(model, module, direction, format, dynamic_shapes, size)
        start = time.perf_counter()
        if format == "onnx":
            _write_onnx(module, example, path, dynamic, metadata)
        elif format == "torchscript":
            _write_torchscript(module, example, path, metadata)
        else:
            _write_exported_program(module, example, path, dynamic, metadata)
        report = ExportReport(path=path, format=format, input_names=module.input_names, metadata=metadata,
                              opset=ONNX_OPSET if format == "onnx" else None, seconds=time.perf_counter() - start)
        if verify:
            checks: dict[str, tuple[Tensor, ...]] = {"random": _random_inputs(model, module, direction, batch, size,
                                                                              seed=1)}
            if real_images is not None:
                stacked = real_images if isinstance(real_images, Tensor) else torch.stack(list(real_images))
                images = _prepare_real(stacked, model, direction, size, dynamic_shapes)
                if not dynamic_shapes:
                    images = images[:1]  # a static graph takes the example batch
                checks["real"] = _real_inputs(model, module, direction, tuple(images.shape[-2:]), images)
            else:
                checks["toy-world"] = _real_inputs(model, module, direction, size, None)
            if dynamic_shapes:
                other = _second_size(size, int(model.size_multiple))
                checks[f"random-{other[0]}x{other[1]}-batch3"] = _random_inputs(model, module, direction, 3, other,
                                                                                seed=2)
            report.checks = _verify(_runner(path, format, module.input_names), model, module, direction, checks,
                                    tolerance)
        return report
    finally:
        model.train(was_training)


# --------------------------------------------------------------------------------------------------------------------
# Running ONNX files like a method
# --------------------------------------------------------------------------------------------------------------------


def _onnx_session(path: str | os.PathLike[str], device: torch.device, threads: int | None = None) -> Any:
    ort = _require("onnxruntime")
    providers = ["CPUExecutionProvider"]
    if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, ("CUDAExecutionProvider", {"device_id": device.index or 0}))
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), sess_options=options, providers=providers)


class OnnxTranslator(nn.Module):
    """An exported ONNX file run with onnxruntime, with the method interface ``zoo translate`` uses.

    It has no parameters; ``.to(device)`` picks the execution provider (CUDA when available for a CUDA device,
    else CPU) and ``translate`` returns tensors on that device.

    Attributes:
        directions: the exported direction, ``(direction,)``.
        size_multiple, scale, style_dim, requires_exemplar, ALIGNED_INPUTS: as the exported method's (``style_dim``
            None unless the graph takes style codes; ``ALIGNED_INPUTS`` names the pix2pixHD instance input).
        metadata: everything stored in the file (:func:`read_metadata`).
        input_names: graph inputs, ``images`` first.
    """

    def __init__(self, path: str | os.PathLike[str], *, threads: int | None = None) -> None:
        super().__init__()
        self.path, self.threads = Path(path), threads
        self.metadata = read_metadata(self.path)
        meta = self.metadata
        self.method_name = meta["method"]
        self.directions = (meta["direction"],)
        self.size_multiple = int(meta["size_multiple"])
        self.scale = int(meta["scale"])
        self.style_dim = meta.get("style_dim") if "style" in meta["input_names"] else None
        self.requires_exemplar = "exemplar" in meta["input_names"]
        self.ALIGNED_INPUTS = {name: name for name in meta.get("aligned_inputs", [])}
        self.input_names = tuple(meta["input_names"])
        self.register_buffer("_device_probe", torch.zeros(0), persistent=False)
        self._session: Any = None
        self._session_device: torch.device | None = None

    @property
    def device(self) -> torch.device:
        return self._device_probe.device

    @property
    def dynamic_shapes(self) -> bool:
        return bool(self.metadata.get("dynamic_shapes"))

    def _check_direction(self, direction: str) -> None:
        if direction not in self.directions:
            raise ValueError(f"{self.path.name} was exported for direction {self.directions[0]!r}, got {direction!r}; "
                             f"export the other direction with `zoo export --direction {direction}`")

    def input_channels(self, direction: str = "a2b") -> int:
        self._check_direction(direction)
        return int(self.metadata["input_channels"])

    def output_channels(self, direction: str = "a2b") -> int:
        self._check_direction(direction)
        return int(self.metadata["output_channels"])

    def session(self) -> Any:
        """The onnxruntime session for the module's device (created on first use)."""
        if self._session is None or self._session_device != self.device:
            self._session = _onnx_session(self.path, self.device, self.threads)
            self._session_device = self.device
        return self._session

    def forward(self, *inputs: Tensor) -> Tensor:
        """Run the graph on its inputs (``input_names`` order), tensors in [0, 1]; returns (B, C_out, sH, sW).

        A static graph was exported for batches of one: a larger batch runs image by image."""
        if not self.dynamic_shapes and inputs[0].shape[0] > 1:
            return torch.cat([self(*(tensor[i:i + 1] for tensor in inputs)) for i in range(inputs[0].shape[0])])
        feeds = {name: tensor.detach().to("cpu", torch.float32).contiguous().numpy()
                 for name, tensor in zip(self.input_names, inputs, strict=True)}
        return torch.from_numpy(self.session().run(None, feeds)[0]).to(self.device)

    def translate(self, images: Tensor, *, direction: str = "a2b", seed: int | None = None,
                  style: Tensor | None = None, exemplar: Tensor | None = None, mask: Tensor | None = None,
                  exemplar_mask: Tensor | None = None, instance: Tensor | None = None,
                  features: Tensor | None = None, num_styles: int = 1) -> Tensor:
        """Translate a batch like the exported method's ``translate``.

        Args:
            images: (B, C_in, H, W) in [0, 1]; a static graph takes its example size only.
            direction: the exported direction.
            seed: seeds the style codes drawn from N(0, I) when the graph takes ``style`` and none is given (a CPU
                ``torch.Generator``, as MUNIT's and DRIT's ``translate`` draw them).
            style: (B, style_dim), (1, style_dim) or (style_dim,) codes (MUNIT, DRIT).
            exemplar: (B or 1, C, H, W) in [0, 1] (LOMIT; the graph takes the images' size).
            mask, exemplar_mask: (B or 1, 1, H, W) in [0, 1] (LOMIT with given masks; default all ones).
            instance: (B, 1, H, W) integer instance ids as float (pix2pixHD; default: the label map's class
                boundaries, as ``translate``).
            features: (B, feat_num, H, W) instance features (pix2pixHD feature-encoder models).
            num_styles: only 1 (the graph decodes one style per image).

        Returns:
            (B, C_out, scale * H, scale * W) in [0, 1], on the module's device.
        """
        self._check_direction(direction)
        if num_styles != 1:
            raise ValueError("an exported graph decodes one style per image: call translate once per style")
        if images.dim() != 4 or images.shape[1] != self.input_channels(direction):
            raise ValueError(f"expected images (B, {self.input_channels(direction)}, H, W), got {tuple(images.shape)}")
        batch, _, height, width = images.shape
        if height % self.size_multiple or width % self.size_multiple:
            raise ValueError(f"image sides must be multiples of {self.size_multiple}, got {height}x{width}")
        if not self.dynamic_shapes:
            expected = tuple(self.metadata["example_size"])
            if (height, width) != expected:
                raise ValueError(f"{self.path.name} has static shapes: it takes {expected[0]}x{expected[1]} images "
                                 f"only, got {height}x{width}; export with --dynamic-shapes for any size")
        inputs: list[Tensor] = [images]
        for name in self.input_names[1:]:
            if name == "style":
                inputs.append(self._style(style, batch, seed))
            elif name == "exemplar":
                if exemplar is None:
                    raise ValueError("this model needs exemplar= (B or 1, C, H, W) images in [0, 1]")
                inputs.append(exemplar.expand(batch, -1, -1, -1))
            elif name in ("mask", "exemplar_mask"):
                value = mask if name == "mask" else exemplar_mask
                like = images if name == "mask" else inputs[1]
                inputs.append(torch.ones_like(like[:, :1]) if value is None else value.expand(batch, -1, -1, -1))
            elif name == "instance":
                inputs.append(images if instance is None else instance)  # class boundaries, as translate
            elif name == "features":
                if features is None:
                    raise ValueError("this pix2pixHD graph takes instance features: pass features= (B, feat_num, H, W)")
                inputs.append(features)
        return self(*inputs)

    def _style(self, style: Tensor | None, batch: int, seed: int | None) -> Tensor:
        if style is None:
            generator = torch.Generator().manual_seed(seed) if seed is not None else None
            return torch.randn(batch, self.style_dim, generator=generator)
        style = style.flatten(1) if style.dim() == 4 else style
        style = style[None] if style.dim() == 1 else style
        if style.dim() != 2 or style.shape[1] != self.style_dim or style.shape[0] not in (1, batch):
            raise ValueError(f"style must be (B or 1, {self.style_dim}) codes, got {tuple(style.shape)}")
        return style.expand(batch, -1)


def load_onnx_model(path: str | os.PathLike[str], *, threads: int | None = None) -> OnnxTranslator:
    """An ONNX file written by :func:`export_model` as an :class:`OnnxTranslator` (an ``nn.Module`` in eval mode).

    ``threads``: onnxruntime's intra-op threads (None: its default, one per physical core).

    Raises:
        ImportError: onnxruntime (or onnx) is missing: ``pip install "zoo[export]"``.
        ValueError: the file was not written by zoo export.
    """
    _require("onnxruntime")
    return OnnxTranslator(path, threads=threads).eval()
