"""Translate images, whole datasets and videos with a trained model: the library function behind ``zoo translate``.

:func:`translate_images` takes an image, a video, or a dataset folder, and writes its translation so that the output
folder is a drop-in replacement for the input: every image and video is translated (same relative path, same file
type unless ``image_format="png"``), and every other file (label maps, instance maps, JSON / TXT boxes, lists) is
copied unchanged beside it (:mod:`zoo.data.dataset_files` decides which file is which and which image an annotation
belongs to). It needs no command line::

    from zoo.translate import translate_images

    report = translate_images("cyclegan.horse2zebra", "horses/", "zebras/", device="cpu")
    print(report.summary())

**Resumable.** Outputs appear whole or not at all (written to a hidden partial file, then renamed), and
``OUT/.zoo_translate.json`` (:class:`zoo.utils.manifest.TranslationManifest`) records what is done; running the same
command again skips every finished input and translates the rest. An unreadable input is reported, listed in the
manifest and skipped (``strict=True`` stops instead).

**Fast.** Images are decoded by DataLoader worker processes while the model runs, batched by size, translated on the
GPU when there is one (``precision="bf16"`` or ``"fp16"`` under autocast), and encoded by writer threads; memory is
bounded by the batch, not by the dataset. The report gives images/s and the share of time spent outside the model.

**Any size.** Each batch goes through :func:`zoo.utils.tiling.translate_any_size` (reflect-pad to the model's
``size_multiple``, translate, crop back); upscaling models are translated in overlapping tiles
(:func:`zoo.utils.tiling.translate_tiled`) so memory stays bounded.

**Styles.** Multimodal models (MUNIT, DRIT) get N(0, I) style codes and exemplar-guided ones (LOMIT) an exemplar
chosen from a folder by ``style_policy`` (:mod:`zoo.utils.style_policy`): one per dataset, per sequence (a video or a
folder of frames) or per image, seeded by the relative path, so results do not depend on batching or resumption.

**Videos** (``.mp4``, ``.avi``, ``.mov``) are translated frame by frame into a video of the same type, frame rate,
frame count and size (audio is dropped with a notice), see :mod:`zoo.data.video`.

Label maps (pix2pixHD) are 8-bit grayscale images whose pixel value is the class id: they are read like any grayscale
image (``id / 255``, exactly). Their instance maps (``instance=``, Cityscapes ``*_gtFine_instanceIds.png``, 16-bit)
are read as integer ids, never normalised, and padded like the label maps::

    translate_images("runs/pix2pixhd/version_0/checkpoints/last.ckpt", "test_label/", "out/", instance="test_inst/",
                     annotations=[])

Instance-aware models (InstaFormer) translate without boxes; ``boxes=`` gives them each image's object boxes in zoo's
box files (:mod:`zoo.data.boxes`, ``<name>.json`` beside the image or under a folder with the inputs' relative paths,
as ``zoo toy-dataset`` writes them), so that every object becomes an instance token::

    translate_images("instaformer.toy_sim2photo", "toy/images/", "out/", boxes="toy/images/")

A model exported with ``zoo export --format onnx`` runs through onnxruntime: pass the ``.onnx`` file as ``model``.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from zoo.data.boxes import fit_boxes, identity_geometry, read_box_file
from zoo.data.dataset_files import DEFAULT_IMAGE_SUFFIXES, LABEL_MAP_ANNOTATION_GLOBS, SourceFile, plan_dataset
from zoo.data.io import (
    IMG_EXTENSIONS,
    ImageReadError,
    batches_by_size,
    list_images,
    read_image,
    read_image_size,
    save_image,
)
from zoo.data.masks import read_mask
from zoo.utils.devices import deterministic_backends, resolve_device
from zoo.utils.manifest import TranslationManifest, copy_atomically, remove_partial_files, write_atomically
from zoo.utils.style_policy import STYLE_POLICIES, choose, style_codes, style_key
from zoo.utils.tiling import default_tile, translate_any_size

__all__ = ["PRECISIONS", "TranslationReport", "translate_images", "read_instance_map"]

#: ``precision`` values: float32, or autocast to bfloat16 / float16.
PRECISIONS: dict[str, torch.dtype | None] = {"32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
_WRITABLE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")
_JPEG_QUALITY = 95


@dataclass
class TranslationReport:
    """What :func:`translate_images` did.

    Attributes:
        outputs: every output file of the translated inputs, in input order (``num_styles`` per input), including
            those an earlier run had finished.
        written: outputs written by this call.
        resumed: inputs skipped because an earlier run had finished them (outputs present with their sizes).
        unreadable: each input that could not be decoded, and why (skipped; listed in the manifest).
        annotations: annotation files copied (or linked) by this call.
        frames: images and video frames translated by this call.
        seconds: wall time of the call; ``model_seconds`` of it inside the model.
        manifest: the manifest file.
    """

    outputs: list[Path] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)
    resumed: list[Path] = field(default_factory=list)
    unreadable: dict[Path, str] = field(default_factory=dict)
    annotations: list[Path] = field(default_factory=list)
    frames: int = 0
    seconds: float = 0.0
    model_seconds: float = 0.0
    manifest: Path | None = None

    @property
    def images_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def outside_model_share(self) -> float:
        """Share of the wall time not spent in the model (decoding, encoding, waiting for workers)."""
        return max(0.0, 1.0 - self.model_seconds / self.seconds) if self.seconds > 0 else 0.0

    def summary(self) -> str:
        parts = [f"translated {self.frames} image{'s' * (self.frames != 1)} in {self.seconds:.1f} s "
                 f"({self.images_per_second:.2f} images/s, {100 * self.outside_model_share:.0f}% of the time outside "
                 "the model)"]
        if self.resumed:
            parts.append(f"skipped {len(self.resumed)} already translated")
        if self.annotations:
            parts.append(f"copied {len(self.annotations)} annotation file{'s' * (len(self.annotations) != 1)}")
        if self.unreadable:
            parts.append(f"{len(self.unreadable)} unreadable (skipped, listed in {self.manifest})")
        return "; ".join(parts)


class UnreadableInputError(ValueError):
    """An input could not be decoded and ``strict=True`` asked to stop."""


def translate_images(
    model: str | os.PathLike[str] | nn.Module,
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    direction: str = "a2b",
    batch_size: int = 4,
    seed: int = 0,
    device: str = "auto",
    precision: str = "32",
    num_workers: int | None = None,
    progress: bool = True,
    num_styles: int = 1,
    style_policy: str | None = None,
    reference: str | os.PathLike[str] | None = None,
    exemplar: str | os.PathLike[str] | None = None,
    mask: str | os.PathLike[str] | None = None,
    exemplar_mask: str | os.PathLike[str] | None = None,
    mask_ids: Sequence[int] | None = None,
    instance: str | os.PathLike[str] | None = None,
    boxes: str | os.PathLike[str] | None = None,
    images: Sequence[str] | None = None,
    annotations: Sequence[str] | None = None,
    image_suffixes: Sequence[str] = DEFAULT_IMAGE_SUFFIXES,
    link_annotations: bool = False,
    image_format: str = "same",
    overwrite: bool = False,
    strict: bool = False,
    tile: int | None = None,
    tile_overlap: int = 32,
    trust_code: bool = False,
) -> TranslationReport:
    """Translate an image, a video, or every image and video below a folder, copying the annotations beside them.

    What it writes: for an input ``<input>/<dir>/<name>.<ext>`` (or the file ``input`` itself, as ``<name>.<ext>``)
    the file ``<output>/<dir>/<name>.<ext>`` (``.png`` with ``image_format="png"``), or ``<name>_style<k>.<ext>``
    for ``k < num_styles`` when ``num_styles > 1``: an 8-bit image of the input's size times the model's ``scale``
    with the model's output channels (JPEG at quality 95), or a video with the input's frame rate and frame count.
    Every other file of the input folder is copied to the same relative path (hard-linked with
    ``link_annotations``); the files belonging to an image are copied once it is translated. Folders are created as
    needed; a first run's outputs inside the input folder are never taken as inputs.

    Resuming: the call records its settings and every finished input in ``<output>/.zoo_translate.json``; called
    again with the same settings it skips the finished inputs (all outputs present with their recorded sizes) and
    translates the rest. Outputs are renamed into place whole, so a killed run leaves no partial file under an
    output's name (its hidden partial files are removed by the next run).

    Reproducible: equal calls write equal files. Style codes and exemplars depend on ``seed`` and the input's relative
    path only (``style_policy``); other sampling (train-mode dropout) uses seed ``seed + i`` for batch ``i``, with
    cuDNN's deterministic algorithms.

    Args:
        model: a model, or what :func:`zoo.hub.load` takes (a registered pretrained name, a ``.ckpt`` file or a bundle
            folder), or an ``.onnx`` file written by ``zoo export`` (run with onnxruntime). Moved to ``device``, put
            in eval mode.
        input: an image or video file, or a folder (searched recursively, without ``output`` if it lies inside).
        output: folder for the results; created if missing.
        direction: translation direction, one of ``model.directions``.
        batch_size: images (or video frames) per batch.
        seed: base seed for styles, exemplar choices and other sampling.
        device: ``auto`` (CUDA, then MPS, then CPU) or a torch device string.
        precision: ``"32"``, or ``"bf16"`` / ``"fp16"`` to run the model under autocast (GPU; bf16 also on CPU).
        num_workers: DataLoader processes decoding images (None: 2, or 0 for fewer than three batches).
        progress: show a progress bar on stderr.
        num_styles: multimodal models (MUNIT, DRIT): styles per input, each written to its own file.
        style_policy: ``per-dataset``, ``per-sequence`` or ``per-image``: how often a multimodal model's style code,
            or the exemplar chosen from an ``exemplar`` folder, changes. None: ``per-sequence`` for videos,
            ``per-image`` for images.
        reference: multimodal models: an image of the target domain whose style every output takes.
        exemplar: exemplar-guided models (LOMIT): the image whose (masked) style is used, or a folder of them (one is
            chosen by ``style_policy``).
        mask: exemplar-guided models: where to translate, a mask file for every input or a folder of masks with the
            inputs' relative paths (white = translate).
        exemplar_mask: exemplar-guided models: which region of the exemplar gives the style (a file, or a folder with
            the exemplars' relative paths when ``exemplar`` is a folder).
        mask_ids: read ``mask`` and ``exemplar_mask`` as label maps and use the pixels whose label is in ``mask_ids``.
        instance: label-map models with instance maps (pix2pixHD, ``"instance"`` in ``model.ALIGNED_INPUTS``): an
            instance-map file for every input, or a folder of them. In a folder, each input's map has the input's
            relative path (any image suffix), or its name with the Cityscapes suffix swapped
            (``X_gtFine_labelIds.png`` -> ``X_gtFine_instanceIds.png``). Instance maps are read as integer ids (8-
            or 16-bit grayscale, 32-bit ``I``; values kept, not scaled to [0, 1]) and must have the input's size.
            Without it such a model uses the label map's class boundaries.
        boxes: instance-aware models (InstaFormer, whose ``translate`` takes ``boxes``): a folder of zoo box files
            (:func:`zoo.data.boxes.read_box_file`), ``<relative path of the input>.json`` for every input (the input
            folder itself when the files sit beside the images). Coordinates are pixels of the box file's ``size``
            (or of the image); every labelled box is used, the ``num_box`` largest when there are more.
        images: globs of the image files to translate (None: all; see :mod:`zoo.data.dataset_files`).
        annotations: globs of the image files that are annotations, copied unchanged (None:
            :data:`zoo.data.dataset_files.DEFAULT_ANNOTATION_GLOBS`, or ``LABEL_MAP_ANNOTATION_GLOBS`` for models that
            take label maps, or none when ``images`` is given; ``[]``: every image is translated).
        image_suffixes: stem suffixes dropped from an image's name to match its annotations (``_leftImg8bit``).
        link_annotations: hard-link the copied files instead of copying them (falls back to a copy).
        image_format: ``"same"`` keeps each image's file type, ``"png"`` writes PNG files.
        overwrite: translate everything again even if the output folder holds a finished or differently made run.
        strict: stop at the first unreadable input instead of skipping it.
        tile: translate in ``tile`` x ``tile`` blocks with ``tile_overlap`` pixels of context (bounded memory, no
            seams for super-resolution networks); ``None`` tiles by 256 for upscaling models only
            (:func:`zoo.utils.tiling.default_tile`), 0 never tiles. Not for models given styles, exemplars or masks.
        tile_overlap: context around each block, in input pixels.
        trust_code: also build a model class that is not a registered zoo method (imports, and so runs code from,
            the module the file names); see :func:`zoo.hub.load`.

    Returns:
        A :class:`TranslationReport` (outputs, what was skipped, images/s).

    Raises:
        FileNotFoundError: ``input``, ``reference``, ``exemplar``, ``mask``, ``exemplar_mask``, ``instance`` or
            ``boxes`` does not exist, the input holds no image or video, or a mask, instance or box folder has no file
            for an input (the message names the expected file).
        ValueError: two inputs that would be written to the same file, a ``direction`` the model does not offer,
            options the model does not take (``num_styles`` for a unimodal model, ``tile`` together with styles,
            exemplars or masks, ...), an output folder made with other settings (without ``overwrite``); the
            messages name the ``zoo translate`` flag. :class:`UnreadableInputError` (a ``ValueError``) for an
            unreadable input with ``strict``.
        torch.OutOfMemoryError: the batch does not fit the device: lower ``batch_size`` or pass ``tile``.
    """
    started = time.perf_counter()
    source, target = Path(input), Path(output)
    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
    if num_styles < 1:
        raise ValueError(f"--num-styles must be >= 1, got {num_styles}")
    if precision not in PRECISIONS:
        raise ValueError(f"--precision must be one of {tuple(PRECISIONS)}, got {precision!r}")
    if style_policy is not None and style_policy not in STYLE_POLICIES:
        raise ValueError(f"--style-policy must be one of {STYLE_POLICIES}, got {style_policy!r}")
    if image_format not in ("same", "png"):
        raise ValueError(f"--image-format must be 'same' or 'png', got {image_format!r}")
    if num_workers is not None and num_workers < 0:
        raise ValueError(f"--num-workers must be >= 0, got {num_workers}")
    if not source.exists():
        raise FileNotFoundError(f"input '{source}' does not exist")
    for flag, path in (("--reference", reference), ("--exemplar", exemplar), ("--mask", mask),
                       ("--exemplar-mask", exemplar_mask), ("--instance", instance), ("--boxes", boxes)):
        if path is not None and not Path(path).exists():
            raise FileNotFoundError(f"{flag} '{path}' does not exist")
    torch_device = resolve_device(device)
    model = _load_model(model, torch_device, trust_code)
    if annotations is None and images is None and getattr(model, "takes_label_maps", False):
        annotations = LABEL_MAP_ANNOTATION_GLOBS
    _check_model_options(model, direction=direction, num_styles=num_styles, reference=reference, exemplar=exemplar,
                         mask=mask, exemplar_mask=exemplar_mask, mask_ids=mask_ids, instance=instance, boxes=boxes)
    plan = plan_dataset(source, skip=target, images=images, annotations=annotations, image_suffixes=image_suffixes)
    destinations = _output_paths(plan.sources, target, num_styles, image_format)
    styles = _Styles.build(model, direction=direction, seed=seed, num_styles=num_styles, policy=style_policy,
                           reference=reference, exemplar=exemplar, exemplar_mask=exemplar_mask, mask_ids=mask_ids,
                           device=torch_device)
    if tile is None:
        tile = default_tile(model)
    if tile and (styles.uses_conditions or mask is not None or instance is not None or boxes is not None):
        raise ValueError("--tile works for models without style, exemplar, mask, instance or box inputs; pass --tile 0")
    channels = model.input_channels(direction) if hasattr(model, "input_channels") else 3
    aligned_files = {}
    if mask is not None:
        aligned_files["mask"] = {s.path: _mask_for(s.path, Path(s.relative), Path(mask)) for s in plan.images}
    if instance is not None:
        aligned_files["instance"] = {s.path: _instance_for(s.path, Path(s.relative), Path(instance))
                                     for s in plan.images}
    if boxes is not None:
        aligned_files["boxes"] = {s.path: _box_file_for(s.path, Path(s.relative), Path(boxes)) for s in plan.images}
    if plan.videos and aligned_files:
        raise ValueError("--mask, --instance and --boxes apply to image inputs, not to videos")

    settings = {"model": _model_fingerprint(model), "direction": direction, "seed": seed, "num_styles": num_styles,
                "style_policy": style_policy, "precision": precision, "image_format": image_format, "tile": tile,
                "tile_overlap": tile_overlap if tile else None, "mask_ids": list(mask_ids) if mask_ids else None,
                **{name: _file_fingerprint(path) for name, path in (("reference", reference), ("exemplar", exemplar),
                                                                     ("mask", mask), ("exemplar_mask", exemplar_mask),
                                                                     ("instance", instance))},
                **({"boxes": _file_fingerprint(boxes)} if boxes is not None else {})}
    target.mkdir(parents=True, exist_ok=True)
    remove_partial_files(target)
    manifest = TranslationManifest(target, settings, overwrite=overwrite)
    report = TranslationReport(manifest=manifest.path)
    run = _Run(model=model, direction=direction, seed=seed, num_styles=num_styles, precision=PRECISIONS[precision],
               device=torch_device, tile=tile, tile_overlap=tile_overlap, styles=styles, plan_root=plan.root,
               target=target, manifest=manifest, report=report, link=link_annotations, strict=strict,
               destinations=destinations, mask_ids=mask_ids)
    for relative in plan.unattached:
        if not manifest.is_copied(relative.as_posix()):
            report.annotations.append(copy_atomically(plan.root / relative, target / relative, link=link_annotations))
            manifest.mark_copied(relative.as_posix())
    todo = []
    for item in plan.sources:
        if not overwrite and manifest.is_done(item.relative.as_posix()):
            report.resumed.append(item.path)
        else:
            todo.append(item)
    from rich.console import Console

    console = Console(stderr=True)
    try:
        with deterministic_backends(), _progress_bar(console, progress, sum(1 for s in todo if not s.is_video)) as bar:
            run.translate_images([s for s in todo if not s.is_video], channels=channels, batch_size=batch_size,
                                 num_workers=num_workers, aligned_files=aligned_files, advance=bar)
            for item in (s for s in todo if s.is_video):
                run.translate_video(item, batch_size=batch_size, console=console)
    finally:
        manifest.save()
        report.seconds = time.perf_counter() - started
    report.outputs = [dst for item in plan.sources for dst in destinations[item.path]
                      if item.path not in report.unreadable]
    return report


# ------------------------------------------------------------------------------------------------------ the run


@dataclass
class _Run:
    """The state shared by the image batches and the videos of one :func:`translate_images` call."""

    model: nn.Module
    direction: str
    seed: int
    num_styles: int
    precision: torch.dtype | None
    device: torch.device
    tile: int
    tile_overlap: int
    styles: _Styles
    plan_root: Path
    target: Path
    manifest: TranslationManifest
    report: TranslationReport
    link: bool
    strict: bool
    destinations: dict[Path, list[Path]]
    mask_ids: Sequence[int] | None = None
    batch_index: int = 0

    def model_outputs(self, images: Tensor, keys: list[str], aligned: dict[str, Tensor]) -> Tensor:
        """Translate a batch (B, C, H, W) in [0, 1], one style key per image: (B, K, C_out, sH, sW) in [0, 1] on the
        CPU, K = ``num_styles``."""
        start = time.perf_counter()
        images = images.to(self.device, non_blocking=True)
        aligned = {k: v.to(self.device, non_blocking=True) for k, v in aligned.items()}
        merged: Tensor | None = None
        for indices, per_style, unaligned in self.styles.groups(keys):
            part = images if len(indices) == len(keys) else images[indices]
            masks = aligned if len(indices) == len(keys) else {k: v[indices] for k, v in aligned.items()}
            instances = {"boxes": masks.pop("boxes")} if "boxes" in masks else {}  # normalised, not pixel-aligned
            results = []
            for conditions in per_style:
                with _autocast(self.device, self.precision):
                    results.append(translate_any_size(
                        self.model, part, direction=self.direction, seed=self.seed + self.batch_index, masks=masks,
                        unaligned=unaligned, tile=self.tile, tile_overlap=self.tile_overlap, **instances,
                        **conditions).float())
            result = torch.stack(results, 1)
            if len(indices) == len(keys):
                merged = result
            else:
                if merged is None:
                    merged = result.new_empty(len(keys), *result.shape[1:])
                merged[indices] = result
        self.batch_index += 1
        assert merged is not None
        merged = merged.cpu()
        self.report.model_seconds += time.perf_counter() - start
        return merged

    def translate_images(self, items: list[SourceFile], *, channels: int, batch_size: int, num_workers: int | None,
                         aligned_files: dict[str, dict[Path, Path]], advance: Callable[[int], None]) -> None:
        """Translate the image inputs: workers decode, the model runs, writer threads encode and copy."""
        if not items:
            return
        sizes: dict[Path, tuple[int, int]] = {}
        for item in items:
            try:
                sizes[item.path] = read_image_size(item.path)
            except (ImageReadError, OSError) as error:
                self.unreadable(item, str(error))
                advance(1)
        readable = {item.path: item for item in items if item.path in sizes}
        batches = batches_by_size(list(readable), sizes, batch_size)
        if num_workers is None:
            num_workers = 2 if len(batches) >= 3 else 0
        reader = _ImageReader([[readable[p] for p in batch] for batch in batches], channels, aligned_files,
                              self.mask_ids, num_box=int(dict(getattr(self.model, "hparams", {})).get("num_box", 20)))
        loader = torch.utils.data.DataLoader(reader, batch_size=None, shuffle=False, num_workers=num_workers,
                                             pin_memory=self.device.type == "cuda",
                                             prefetch_factor=2 if num_workers else None)
        with _Writer(workers=max(2, num_workers)) as writer:
            for batch in loader:
                for index, reason in batch["unreadable"]:
                    self.unreadable(reader.batches[batch["batch"]][index], reason)
                    advance(1)
                if batch["error"] is not None:
                    raise batch["error"]
                if not batch["indices"]:
                    continue
                batch_items = [reader.batches[batch["batch"]][i] for i in batch["indices"]]
                keys = [self.styles.key(item.relative.as_posix(), item.sequence, None) for item in batch_items]
                outputs = self.model_outputs(batch["images"], keys, batch["aligned"])
                for item, result in zip(batch_items, outputs, strict=True):
                    writer.submit(self._write_image, item, result, done=self._finished, advance=advance)
                writer.collect(block=False)

    def _write_image(self, item: SourceFile, styles: Tensor) -> tuple[SourceFile, list[Path], list[Path]]:
        """Encode the (K, C, H, W) outputs of one input and copy its annotations (in a writer thread)."""
        written = []
        for image, destination in zip(styles, self.destinations[item.path], strict=True):
            options = {"quality": _JPEG_QUALITY} if destination.suffix.lower() in (".jpg", ".jpeg") else {}
            written.append(write_atomically(destination, lambda partial, image=image, options=options:
                                            save_image(image, partial, **options)))
        copied = [copy_atomically(self.plan_root / a, self.target / a, link=self.link) for a in item.annotations]
        return item, written, copied

    def _finished(self, result: tuple[SourceFile, list[Path], list[Path]], advance: Callable[[int], None]) -> None:
        item, written, copied = result
        self.report.written.extend(written)
        self.report.annotations.extend(copied)
        self.report.frames += 1
        self.manifest.mark_done(item.relative.as_posix(), written, copied)
        advance(1)

    def unreadable(self, item: SourceFile, reason: str) -> None:
        if self.strict:
            raise UnreadableInputError(f"cannot read input '{item.path}' ({reason}); without --strict unreadable "
                                       "inputs are skipped and listed in the manifest")
        self.report.unreadable[item.path] = reason
        self.manifest.mark_unreadable(item.relative.as_posix(), reason)

    def translate_video(self, item: SourceFile, *, batch_size: int, console: Any) -> None:
        """Translate a video frame by frame into videos of the same type, frame rate, frame count and size."""
        from zoo.data.video import VideoWriter, audio_notice, read_video_info

        try:
            info = read_video_info(item.path)
        except ValueError as error:
            self.unreadable(item, str(error))
            return
        notice = audio_notice(info, item.path)
        if notice:
            console.print(f"zoo: {notice}", highlight=False, markup=False)
        scale = int(getattr(self.model, "scale", 1))
        destinations = self.destinations[item.path]
        frame = 0
        try:
            with contextlib.ExitStack() as stack:
                writers = [stack.enter_context(VideoWriter(dst, fps=info.fps, width=info.width * scale,
                                                           height=info.height * scale)) for dst in destinations]
                for frames in _video_frames(item.path, batch_size):
                    keys = [self.styles.key(item.relative.as_posix(), item.sequence, frame + i)
                            for i in range(frames.shape[0])]
                    outputs = self.model_outputs(_with_channels(frames, self._channels()), keys, {})
                    for k, writer in enumerate(writers):
                        writer.write(outputs[:, k])
                    frame += frames.shape[0]
        except _UnreadableVideo as error:  # the writers removed their partial files
            self.unreadable(item, str(error))
            return
        self.report.frames += frame
        copied = [copy_atomically(self.plan_root / a, self.target / a, link=self.link) for a in item.annotations]
        self.report.written.extend(destinations)
        self.report.annotations.extend(copied)
        self.manifest.mark_done(item.relative.as_posix(), destinations, copied)

    def _channels(self) -> int:
        return self.model.input_channels(self.direction) if hasattr(self.model, "input_channels") else 3


class _UnreadableVideo(Exception):
    """A video that cannot be decoded (raised inside the writers' context, so they discard their partial files)."""


def _video_frames(path: Path, batch_size: int) -> Iterator[Tensor]:
    """:func:`zoo.data.video.read_video_frames`, its decoding errors raised as :class:`_UnreadableVideo`."""
    from zoo.data.video import read_video_frames

    frames = read_video_frames(path, batch_size=batch_size)
    while True:
        try:
            batch = next(frames)
        except StopIteration:
            return
        except ValueError as error:
            raise _UnreadableVideo(str(error)) from error
        yield batch


class _ImageReader(torch.utils.data.Dataset):
    """Decodes one planned batch per index (in DataLoader workers): the images that could be read, stacked, and
    why the others could not; their aligned inputs (masks, instance maps) beside them."""

    def __init__(self, batches: list[list[SourceFile]], channels: int, aligned_files: dict[str, dict[Path, Path]],
                 mask_ids: Sequence[int] | None, num_box: int = 20) -> None:
        self.batches, self.channels, self.aligned_files, self.mask_ids = batches, channels, aligned_files, mask_ids
        self.num_box = num_box

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> dict[str, Any]:
        images, indices, unreadable = [], [], []
        aligned: dict[str, list[Tensor]] = {name: [] for name in self.aligned_files}
        error = None
        for i, item in enumerate(self.batches[index]):
            try:
                image = _read_with_channels(item.path, self.channels)
            except (ImageReadError, OSError, ValueError) as failure:
                unreadable.append((i, str(failure)))
                continue
            try:
                if "mask" in self.aligned_files:
                    aligned["mask"].append(read_mask(self.aligned_files["mask"][item.path], self.mask_ids))
                if "instance" in self.aligned_files:
                    aligned["instance"].append(_read_instance_matching(self.aligned_files["instance"][item.path],
                                                                       item.path, (image.shape[-1], image.shape[-2])))
                if "boxes" in self.aligned_files:
                    aligned["boxes"].append(read_boxes(self.aligned_files["boxes"][item.path],
                                                       (image.shape[-1], image.shape[-2]), self.num_box))
            except Exception as failure:  # a bad mask or instance map is the caller's error: raised in the main process
                error = failure
                break
            images.append(image)
            indices.append(i)
        return {"batch": index, "indices": indices, "unreadable": unreadable, "error": error,
                "images": torch.stack(images) if images else None,
                "aligned": {name: torch.stack(maps) for name, maps in aligned.items() if maps}}


class _Writer:
    """Writer threads (PNG/JPEG encoding and file copies release the GIL) with a bounded number of pending jobs;
    each job's ``done`` callback runs in the calling thread, in submission order."""

    def __init__(self, workers: int, max_pending: int | None = None) -> None:
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="zoo-writer")
        self.max_pending = max_pending or 4 * workers
        self.pending: list[tuple[Future, Callable[..., None], dict[str, Any]]] = []

    def submit(self, job: Callable[..., Any], *args: Any, done: Callable[..., None], **done_kwargs: Any) -> None:
        while len(self.pending) >= self.max_pending:
            self._finish_first()
        self.pending.append((self.pool.submit(job, *args), done, done_kwargs))

    def _finish_first(self) -> None:
        future, done, kwargs = self.pending.pop(0)
        done(future.result(), **kwargs)

    def collect(self, *, block: bool) -> None:
        """Run the callbacks of the finished jobs at the head of the queue (of all jobs with ``block``)."""
        while self.pending and (block or self.pending[0][0].done()):
            self._finish_first()

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self.collect(block=True)  # outputs already handed over are finished and recorded, even after an error
        finally:
            self.pool.shutdown(wait=True)


@contextlib.contextmanager
def _progress_bar(console: Any, enabled: bool, total: int) -> Iterator[Callable[[int], None]]:
    """A rich progress bar over ``total`` inputs on stderr; yields ``advance(n)``."""
    if not enabled or total == 0:
        yield lambda n: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("translating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("translating", total=total)
        yield lambda n: bar.advance(task, n)


@contextlib.contextmanager
def _autocast(device: torch.device, dtype: torch.dtype | None) -> Iterator[None]:
    if dtype is None:
        yield
        return
    with torch.autocast(device.type, dtype=dtype):
        yield


def _with_channels(frames: Tensor, channels: int) -> Tensor:
    """(T, 3, H, W) RGB frames in [0, 1] with ``channels`` channels (luma by ITU-R 601-2 for 1, as PIL's ``L``)."""
    if channels == 3:
        return frames
    if channels == 1:
        weights = torch.tensor([0.299, 0.587, 0.114], dtype=frames.dtype).view(1, 3, 1, 1)
        return (frames * weights).sum(1, keepdim=True)
    return frames.repeat(1, -(-channels // 3), 1, 1)[:, :channels]


@dataclass
class _Styles:
    """The style inputs of every batch: style codes or an exemplar per image, chosen by the style policy.

    ``groups(keys)`` splits a batch (one key per image, see :func:`zoo.utils.style_policy.style_key`) into the
    translate calls it needs: ``(indices, per-style keyword arguments, unaligned inputs)``.
    """

    policy: str | None
    seed: int
    num_styles: int
    style_dim: int | None = None
    reference: Tensor | None = None
    exemplars: list[tuple[Tensor, Tensor | None]] = field(default_factory=list)

    @classmethod
    def build(cls, model: nn.Module, *, direction: str, seed: int, num_styles: int, policy: str | None,
              reference: Any, exemplar: Any, exemplar_mask: Any, mask_ids: Sequence[int] | None,
              device: torch.device) -> _Styles:
        style_dim = getattr(model, "style_dim", None)
        channels = model.output_channels(direction) if hasattr(model, "output_channels") else 3
        styles = cls(policy, seed, num_styles)
        if reference is not None:
            styles.reference = read_image(reference, channels=channels if channels in (1, 3) else None)[None].to(device)
        elif style_dim is not None:
            styles.style_dim = int(style_dim)
        if exemplar is not None:
            files = list_images(exemplar, recursive=True) if Path(exemplar).is_dir() else [Path(exemplar)]
            for file in files:
                image = _read_with_channels(file, model.input_channels(direction) if hasattr(model, "input_channels")
                                            else 3)[None].to(device)
                region = None
                if exemplar_mask is not None:
                    relative = file.relative_to(exemplar) if Path(exemplar).is_dir() else Path(file.name)
                    region = read_mask(_mask_for(file, relative, Path(exemplar_mask)), mask_ids)[None].to(device)
                    if region.shape[-2:] != image.shape[-2:]:
                        raise ValueError(f"--exemplar-mask of '{file}' has size {tuple(region.shape[-2:])}, the "
                                         f"exemplar {tuple(image.shape[-2:])}")
                styles.exemplars.append((image, region))
        if policy is not None and styles.style_dim is None and len(styles.exemplars) < 2:
            raise ValueError("--style-policy chooses the style codes of multimodal models (MUNIT, DRIT) or the "
                             "exemplar from an --exemplar folder (LOMIT); this model and these options have one "
                             "style only")
        return styles

    @property
    def uses_conditions(self) -> bool:
        return self.style_dim is not None or self.reference is not None or bool(self.exemplars)

    def key(self, image: str, sequence: str, frame: int | None) -> str:
        policy = self.policy or ("per-sequence" if frame is not None else "per-image")
        return style_key(policy, image=image, sequence=sequence, frame=frame)  # type: ignore[arg-type]

    def groups(self, keys: list[str]) -> list[tuple[list[int], list[dict[str, Any]], dict[str, Tensor]]]:
        everyone = list(range(len(keys)))
        if self.reference is not None:
            return [(everyone, [{"reference": self.reference}], {})]
        if self.style_dim is not None:
            codes = style_codes(self.style_dim, keys, seed=self.seed, num_styles=self.num_styles)
            return [(everyone, [{"style": codes[:, k]} for k in range(self.num_styles)], {})]
        if not self.exemplars:
            return [(everyone, [{}], {})]
        chosen: dict[int, list[int]] = {}
        for i, key in enumerate(keys):
            chosen.setdefault(choose(range(len(self.exemplars)), seed=self.seed, key=key), []).append(i)
        groups = []
        for index, indices in chosen.items():
            image, region = self.exemplars[index]
            unaligned = {"exemplar": image} if region is None else {"exemplar": image, "exemplar_mask": region}
            groups.append((indices, [{}], unaligned))
        return groups


# ------------------------------------------------------------------------------------------------------ inputs


def _load_model(model: str | os.PathLike[str] | nn.Module, device: torch.device, trust_code: bool) -> nn.Module:
    """``model`` itself, an ``.onnx`` file run by onnxruntime, or what :func:`zoo.hub.load` makes of it; on
    ``device``, in eval mode."""
    if isinstance(model, (str, os.PathLike)):
        if str(model).lower().endswith(".onnx"):
            from zoo.export import load_onnx_model

            model = load_onnx_model(model)
        else:
            from zoo.hub import load

            model = load(model, map_location=device, trust_code=trust_code)
    return model.to(device).eval()


def _model_fingerprint(model: nn.Module) -> str:
    """SHA-256 of the model's class, hyperparameters and state (so a resumed run refuses other weights)."""
    digest = hashlib.sha256(type(model).__qualname__.encode())
    path = getattr(model, "path", None)  # an exported file run by onnxruntime: its bytes are the weights
    if isinstance(path, Path) and path.is_file():
        from zoo.weights import file_sha256

        digest.update(file_sha256(path).encode())
    plain = {k: v for k, v in dict(getattr(model, "hparams", {})).items() if _is_plain(v)}  # no object addresses
    digest.update(json.dumps(plain, sort_keys=True).encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu").contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def _is_plain(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    return value is None or isinstance(value, (bool, int, float, str))


def _file_fingerprint(path: str | os.PathLike[str] | None) -> str | None:
    if path is None:
        return None
    path = Path(path)
    return f"{path.resolve()}:{path.stat().st_size}" if path.is_file() else str(path.resolve())


def _output_paths(sources: list[SourceFile], target: Path, num_styles: int,
                  image_format: str) -> dict[Path, list[Path]]:
    """The files each input is written to (one per style), refusing two inputs that would share a file."""
    destinations: dict[Path, list[Path]] = {}
    seen: dict[Path, Path] = {}
    for item in sources:
        relative = Path(item.relative)
        suffix = relative.suffix if (item.is_video or (image_format == "same" and relative.suffix.lower() in
                                                        _WRITABLE_SUFFIXES)) else ".png"
        names = [relative.with_suffix(suffix)] if num_styles == 1 else [
            relative.with_name(f"{relative.stem}_style{k}{suffix}") for k in range(num_styles)]
        destinations[item.path] = [target / name for name in names]
        for dst in destinations[item.path]:
            if dst in seen:
                raise ValueError(f"inputs '{seen[dst]}' and '{item.path}' would both be written to '{dst}'; rename "
                                 "one of them")
            seen[dst] = item.path
    return destinations


def _read_with_channels(path: Path, channels: int) -> Tensor:
    """(C, H, W) in [0, 1] with the model's channel count: 16-bit kept, alpha dropped, gray <-> RGB converted."""
    if channels in (1, 3):
        return read_image(path, channels=channels)
    image = read_image(path, channels=3)
    if channels < 3:
        return image[:channels]
    return image.repeat(-(-channels // 3), 1, 1)[:channels]


def _mask_for(image: Path, relative: Path, mask: Path) -> Path:
    """The mask file of ``image``: ``mask`` itself, or the file under the folder ``mask`` with the same relative path
    and any image suffix."""
    if mask.is_file():
        return mask
    for suffix in (relative.suffix, *IMG_EXTENSIONS):
        candidate = mask / relative.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no mask for '{image}': expected '{mask / relative.with_suffix('.png')}'")


def _box_file_for(image: Path, relative: Path, folder: Path) -> Path:
    """The box file of ``image``: ``<folder>/<relative path>.json``."""
    candidate = folder / relative.with_suffix(".json")
    if not candidate.is_file():
        raise FileNotFoundError(f"no box file for '{image}' in --boxes folder '{folder}': expected '{candidate}'")
    return candidate


def read_boxes(path: Path, size: tuple[int, int], num_box: int) -> Tensor:
    """An image's boxes from its zoo box file, for ``translate(boxes=...)``: (num_box, 5) ``[label, x1, y1, x2, y2]``
    normalised to the image of ``size`` (W, H), padded with -1 rows. Class names become their index in order of
    appearance, integer labels stay (instance-aware models use a box's label only to tell it from padding)."""
    annotation = read_box_file(path)
    classes = list(dict.fromkeys(box["label"] for box in annotation.boxes if isinstance(box["label"], str)))
    return fit_boxes(annotation, identity_geometry(*size), classes=classes, num_box=num_box)


_LABEL_SUFFIX, _INSTANCE_SUFFIX = "_gtFine_labelIds", "_gtFine_instanceIds"  # Cityscapes names


def _instance_for(image: Path, relative: Path, instance: Path) -> Path:
    """The instance map of ``image``: ``instance`` itself, or the file under the folder ``instance`` with the same
    relative path (any image suffix), else with the Cityscapes suffix swapped (``X_gtFine_labelIds`` ->
    ``X_gtFine_instanceIds``)."""
    if instance.is_file():
        return instance
    names = [relative]
    if relative.stem.endswith(_LABEL_SUFFIX):
        names.insert(0, relative.with_name(relative.stem.removesuffix(_LABEL_SUFFIX) + _INSTANCE_SUFFIX
                                           + relative.suffix))
    for name in names:
        for suffix in dict.fromkeys((name.suffix, *IMG_EXTENSIONS)):
            candidate = instance / name.with_suffix(suffix)
            if candidate.is_file():
                return candidate
    expected = " or ".join(f"'{instance / name.with_suffix('.png')}'" for name in names)
    raise FileNotFoundError(f"no instance map for '{image}' in --instance folder '{instance}': expected {expected}")


def read_instance_map(path: str | os.PathLike[str]) -> Tensor:
    """An instance map as integer ids: (1, H, W) float32 holding the stored values (Cityscapes ``instanceIds``:
    the label id for stuff, ``label * 1000 + k`` for things), not scaled to [0, 1].

    Raises:
        ValueError: the file is not single-channel (8- or 16-bit grayscale, 32-bit ``I``, or palette indices).
    """
    from zoo.data.label_maps import read_ids

    ids = read_ids(path, "--instance map", hint=" E.g. Cityscapes *_gtFine_instanceIds.png.")
    if ids.size and (ids.max() > 2**24 or ids.min() < -(2**24)):
        raise ValueError(f"--instance map '{path}' holds ids beyond +-2**24, which float32 cannot keep exactly")
    return torch.from_numpy(ids).to(torch.float32)[None]


def _read_instance_matching(path: Path, image: Path, size: tuple[int, int]) -> Tensor:
    """:func:`read_instance_map` of ``path``, checked to have the (width, height) ``size`` of its input ``image``."""
    ids = read_instance_map(path)
    if (ids.shape[-1], ids.shape[-2]) != tuple(size):
        raise ValueError(f"--instance map '{path}' is {ids.shape[-1]}x{ids.shape[-2]}, its input '{image}' "
                         f"{size[0]}x{size[1]}; an instance map must have its label map's size")
    return ids


# ------------------------------------------------------------------------------------------------------- model


def _check_model_options(
    model: nn.Module,
    *,
    direction: str,
    num_styles: int,
    reference: Any,
    exemplar: Any,
    mask: Any,
    exemplar_mask: Any,
    mask_ids: Sequence[int] | None,
    instance: Any = None,
    boxes: Any = None,
) -> None:
    """Refuse, naming the flag, a direction or a style/exemplar/mask/instance/box option that ``model`` does not
    take."""
    name = type(model).__name__
    directions = tuple(getattr(model, "directions", ("a2b",)))
    if direction not in directions:
        raise ValueError(f"--direction {direction!r} is not offered by {name}; choose from {directions}")
    accepted = set(inspect.signature(model.translate).parameters)
    for flag, value, parameter in (("--num-styles", num_styles > 1, "num_styles"),
                                   ("--reference", reference, "reference"), ("--exemplar", exemplar, "exemplar"),
                                   ("--mask", mask, "mask"), ("--exemplar-mask", exemplar_mask, "exemplar_mask"),
                                   ("--boxes", boxes, "boxes")):
        if value and parameter not in accepted:
            raise ValueError(f"{flag} is not supported by {name}: its translate() takes no '{parameter}'")
    if instance is not None and "instance" not in dict(getattr(model, "ALIGNED_INPUTS", {})):
        raise ValueError(f"--instance is not supported by {name}: it takes no instance map (only label-map models "
                         "with instance maps, such as pix2pixHD, do)")
    if getattr(model, "requires_exemplar", False) and exemplar is None:
        raise ValueError(f"{name} translates with the style of an exemplar: pass --exemplar IMAGE")
    if mask_ids is not None and mask is None and exemplar_mask is None:
        raise ValueError("--mask-ids applies to --mask / --exemplar-mask label maps; pass one of them")
    if reference is not None and num_styles > 1:
        raise ValueError("--reference gives one style; it cannot be combined with --num-styles > 1")
