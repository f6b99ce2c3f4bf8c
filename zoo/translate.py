"""Translate image files with a trained model: the library function behind ``zoo translate``.

:func:`translate_images` reads an image file or every image below a folder, translates them with a model (an
``nn.Module``, a registered pretrained name, a ``.ckpt`` file or a bundle folder) and writes PNG files that mirror the
input's layout. It needs no command line::

    from zoo.translate import translate_images

    written = translate_images("cyclegan.horse2zebra", "horses/", "zebras/", device="cpu")

Any image size works: each batch goes through :func:`zoo.utils.tiling.translate_any_size` (reflect-pad to the
model's ``size_multiple``, translate, crop back), which ``predict_step`` of every method uses too, and upscaling models
are translated in overlapping tiles (:func:`zoo.utils.tiling.translate_tiled`) so memory stays bounded.

Label maps (pix2pixHD) are 8-bit grayscale images whose pixel value is the class id: they are read like any grayscale
image (``id / 255``, exactly). Their instance maps (``instance=``, Cityscapes ``*_gtFine_instanceIds.png``, 16-bit)
are read as integer ids, never normalised, and padded like the label maps::

    translate_images("runs/pix2pixhd/version_0/checkpoints/last.ckpt", "test_label/", "out/", instance="test_inst/")
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from zoo.data.io import IMG_EXTENSIONS, batches_by_size, list_images, read_image, save_image
from zoo.data.masks import read_mask
from zoo.utils.devices import deterministic_backends, resolve_device
from zoo.utils.tiling import default_tile, translate_any_size

__all__ = ["translate_images", "read_instance_map", "SkippedImagesError"]


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
    instance: str | os.PathLike[str] | None = None,
    tile: int | None = None,
    tile_overlap: int = 32,
    trust_code: bool = False,
    skip_bad: bool = False,
) -> list[Path]:
    """Translate an image file or every image below a folder, and write PNG files.

    Every input is decoded first, so an unreadable one stops the call before anything is written (unless
    ``skip_bad``). Images of equal size are batched together. Each batch is reflect-padded to ``model.size_multiple``
    and cropped back (:func:`zoo.utils.tiling.translate_any_size`), so any size works. Inputs are converted to the
    model's channel count (grayscale replicated, colour reduced to luma, alpha dropped; 16-bit grayscale keeps its
    precision). The same call gives the same files: batch ``i`` is translated with seed ``seed + i``, with cuDNN's
    deterministic algorithms.

    What it writes: for an input file ``<input>/<dir>/<name>.<ext>`` (or the file ``input`` itself, as ``<name>``)
    the file ``<output>/<dir>/<name>.png``, or ``<name>_style<k>.png`` for ``k < num_styles`` when
    ``num_styles > 1``. Each output is an 8-bit PNG of the input's size times the model's ``scale``
    (``(C_out, s * H, s * W)`` for an ``(C_in, H, W)`` input) with the model's output channels. Existing files are
    replaced; folders are created as needed.

    Args:
        model: a model, or what :func:`zoo.hub.load` takes: a registered pretrained name, a ``.ckpt`` file or a
            bundle folder. It is moved to ``device`` and put in eval mode.
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
        instance: label-map models with instance maps (pix2pixHD, ``"instance"`` in ``model.ALIGNED_INPUTS``): an
            instance-map file for every input, or a folder of them. In a folder, each input's map has the input's
            relative path (any image suffix), or its name with the Cityscapes suffix swapped
            (``X_gtFine_labelIds.png`` -> ``X_gtFine_instanceIds.png``). Instance maps are read as integer ids (8-
            or 16-bit grayscale, 32-bit ``I``; values kept, not scaled to [0, 1]) and must have the input's size.
            Without it such a model uses the label map's class boundaries.
        tile: translate in ``tile`` x ``tile`` blocks with ``tile_overlap`` pixels of context (bounded memory, no
            seams for super-resolution networks); ``None`` tiles by 256 for upscaling models only
            (:func:`zoo.utils.tiling.default_tile`), 0 never tiles. Not for models given styles, exemplars or masks.
        tile_overlap: context around each block, in input pixels.
        trust_code: also build a model class that is not a registered zoo method (imports, and so runs code from,
            the module the file names); see :func:`zoo.hub.load`.
        skip_bad: translate every readable image and then raise :class:`SkippedImagesError` listing the
            unreadable ones; without it an unreadable input stops the call before anything is written.

    Returns:
        The written files, in input order (``num_styles`` files per input, style by style).

    Raises:
        FileNotFoundError: ``input``, ``reference``, ``exemplar``, ``mask``, ``exemplar_mask`` or ``instance`` does
            not exist, or a mask or instance folder has no map for an input (the message names the expected file).
        ValueError: an unreadable input (without ``skip_bad``), two inputs that would be written to the same file, a
            ``direction`` the model does not offer, or options the model does not take (``num_styles`` for a
            unimodal model, ``tile`` together with styles, exemplars or masks, ...). The messages name the
            ``zoo translate`` flag of the argument (``instance`` for a model without instance maps, an instance map
            whose size differs from its input's).
        SkippedImagesError: with ``skip_bad``, after writing the readable images, when some inputs were unreadable.
        torch.OutOfMemoryError: the batch does not fit the device: lower ``batch_size`` or pass ``tile``.
    """
    from rich.console import Console
    from rich.progress import track

    source, target = Path(input), Path(output)
    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
    if num_styles < 1:
        raise ValueError(f"--num-styles must be >= 1, got {num_styles}")
    if not source.exists():
        raise FileNotFoundError(f"input '{source}' does not exist")
    for flag, path in (("--reference", reference), ("--exemplar", exemplar), ("--mask", mask),
                       ("--exemplar-mask", exemplar_mask), ("--instance", instance)):
        if path is not None and not Path(path).exists():
            raise FileNotFoundError(f"{flag} '{path}' does not exist")
    relative = _input_files(source, target)
    sizes, bad = _decode_all(list(relative), skip_bad)
    files = [p for p in relative if p not in bad]
    destinations = _output_paths({p: relative[p] for p in files}, target, num_styles)

    torch_device = resolve_device(device)
    if isinstance(model, (str, os.PathLike)):
        from zoo.hub import load

        model = load(model, map_location=torch_device, trust_code=trust_code)
    model = model.to(torch_device).eval()
    _check_model_options(model, direction=direction, num_styles=num_styles, reference=reference, exemplar=exemplar,
                         mask=mask, exemplar_mask=exemplar_mask, mask_ids=mask_ids, instance=instance)
    channels = model.input_channels(direction) if hasattr(model, "input_channels") else 3
    out_channels = model.output_channels(direction) if hasattr(model, "output_channels") else 3
    conditions, unaligned = _style_inputs(num_styles=num_styles, reference=reference, exemplar=exemplar,
                                          exemplar_mask=exemplar_mask, mask_ids=mask_ids, channels=out_channels,
                                          device=torch_device)
    if tile is None:
        tile = default_tile(model)
    if tile and (conditions or unaligned or mask is not None or instance is not None):
        raise ValueError("--tile works for models without style, exemplar, mask or instance inputs; pass --tile 0")
    instance_files = ({p: _instance_for(p, relative[p], Path(instance)) for p in files}
                      if instance is not None else {})

    written: dict[Path, list[Path]] = {}
    batches = batches_by_size(files, sizes, batch_size)
    console = Console(stderr=True)
    with deterministic_backends():
        for index, batch in enumerate(
            track(batches, description="translating", console=console, disable=not progress, transient=True)
        ):
            images = torch.stack([_read_with_channels(p, channels) for p in batch]).to(torch_device)
            masks = {}
            if mask is not None:
                masks["mask"] = torch.stack(
                    [read_mask(_mask_for(p, relative[p], Path(mask)), mask_ids) for p in batch]
                ).to(torch_device)
            if instance_files:
                masks["instance"] = torch.stack(
                    [_read_instance_matching(instance_files[p], p, sizes[p]) for p in batch]
                ).to(torch_device)
            outputs = translate_any_size(model, images, direction=direction, seed=seed + index, masks=masks,
                                         unaligned=unaligned, tile=tile, tile_overlap=tile_overlap, **conditions)
            for p, result in zip(batch, outputs, strict=True):
                styles = result if num_styles > 1 else result[None]
                written[p] = [save_image(image, dst) for image, dst in zip(styles, destinations[p], strict=True)]
    paths = [path for p in files for path in written[p]]
    if bad:
        raise SkippedImagesError(paths, bad)
    return paths


# ------------------------------------------------------------------------------------------------------ inputs


def _input_files(source: Path, target: Path) -> dict[Path, Path]:
    """Each input image and its path relative to ``source`` (a folder, searched recursively without ``target``, or
    one file)."""
    if not source.is_dir():
        return {source: Path(source.name)}
    skip = target.resolve()
    return {p: p.relative_to(source) for p in list_images(source, recursive=True) if skip not in p.resolve().parents}


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


def _decode_all(files: list[Path], skip_bad: bool) -> tuple[dict[Path, tuple[int, int]], dict[Path, str]]:
    """Decode every input: the (width, height) of the readable ones and why each other one is unreadable.

    Raises:
        ValueError: an input is unreadable and ``skip_bad`` is false.
    """
    decoded = {p: _decoded_size(p) for p in files}
    bad = {p: result for p, result in decoded.items() if isinstance(result, str)}
    if bad and not skip_bad:
        first, reason = next(iter(bad.items()))
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        raise ValueError(f"cannot read input image '{first}' ({reason}){more}; pass --skip-bad to translate the "
                         "readable images and list the others")
    sizes = {p: size for p, size in decoded.items() if not isinstance(size, str)}
    return sizes, bad


def _output_paths(relative: dict[Path, Path], target: Path, num_styles: int) -> dict[Path, list[Path]]:
    """The files each input is written to (one per style), refusing two inputs that would share a file."""
    suffixes = [".png"] if num_styles == 1 else [f"_style{k}.png" for k in range(num_styles)]
    destinations = {p: [target / (str(rel.with_suffix("")) + suffix) for suffix in suffixes]
                    for p, rel in relative.items()}
    seen: dict[Path, Path] = {}
    for p, dsts in destinations.items():
        for dst in dsts:
            if dst in seen:
                raise ValueError(f"inputs '{seen[dst]}' and '{p}' would both be written to '{dst}'; rename one of them")
            seen[dst] = p
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
) -> None:
    """Refuse, naming the flag, a direction or a style/exemplar/mask/instance option that ``model`` does not take."""
    name = type(model).__name__
    directions = tuple(getattr(model, "directions", ("a2b",)))
    if direction not in directions:
        raise ValueError(f"--direction {direction!r} is not offered by {name}; choose from {directions}")
    accepted = set(inspect.signature(model.translate).parameters)
    for flag, value, parameter in (("--num-styles", num_styles > 1, "num_styles"),
                                   ("--reference", reference, "reference"), ("--exemplar", exemplar, "exemplar"),
                                   ("--mask", mask, "mask"), ("--exemplar-mask", exemplar_mask, "exemplar_mask")):
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


def _style_inputs(
    *,
    num_styles: int,
    reference: str | os.PathLike[str] | None,
    exemplar: str | os.PathLike[str] | None,
    exemplar_mask: str | os.PathLike[str] | None,
    mask_ids: Sequence[int] | None,
    channels: int,
    device: torch.device,
) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """The ``translate`` keywords shared by every batch: styles and references (passed unchanged), and the exemplar
    with its mask (images of their own size, padded to the model's multiple by ``translate_any_size``).

    Returns:
        ``conditions`` (``num_styles``, ``reference``: ``(1, C, H_r, W_r)``) and ``unaligned`` (``exemplar``:
        ``(1, C, H_e, W_e)``, ``exemplar_mask``: ``(1, 1, H_e, W_e)``), both on ``device``.
    """
    conditions: dict[str, Any] = {}
    if num_styles > 1:
        conditions["num_styles"] = num_styles
    if reference is not None:
        conditions["reference"] = read_image(reference, channels=channels if channels in (1, 3) else None)[None].to(
            device
        )
    unaligned: dict[str, Tensor] = {}
    if exemplar is not None:
        unaligned["exemplar"] = _read_with_channels(Path(exemplar), channels)[None].to(device)
        if exemplar_mask is not None:
            region = read_mask(Path(exemplar_mask), mask_ids)[None].to(device)
            if region.shape[-2:] != unaligned["exemplar"].shape[-2:]:
                raise ValueError(f"--exemplar-mask '{exemplar_mask}' has size {tuple(region.shape[-2:])}, the "
                                 f"exemplar {tuple(unaligned['exemplar'].shape[-2:])}")
            unaligned["exemplar_mask"] = region
    return conditions, unaligned

