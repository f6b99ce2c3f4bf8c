"""Evaluate a translation model with the metrics its paper reports: the library functions behind ``zoo evaluate``.

:func:`evaluate_model` translates the test split of a DataModule (deterministically: batch ``i`` is translated with
seed ``seed + i``) in each direction of the model and measures the translations with
:class:`~zoo.metrics.TranslationMetrics`: A -> B translations are compared with the real B images (and with their
aligned targets on paired and super-resolution data), B -> A the other way. Multimodal methods (MUNIT, DRIT) also get
the LPIPS diversity of ``num_styles`` styles per input (:func:`zoo.metrics.lpips.diversity`).
:func:`evaluate_folders` measures images made elsewhere against a folder of real images and/or the label maps of their
inputs (semantic consistency, ``zoo evaluate --labels``), :func:`evaluate_sequences` the temporal flicker of translated
videos and frame sequences against their inputs (``zoo evaluate --source``), and :func:`write_report` writes
``metrics.json`` and ``metrics.md``::

    from zoo.evaluate import evaluate_model, write_report

    result = evaluate_model("runs/cyclegan/version_0/checkpoints/last.ckpt", "configs/cyclegan.yaml")
    write_report(result, "runs/cyclegan/version_0/evaluation/last")

The result is a plain dict (JSON-ready): ``metrics`` (per direction: name -> value), ``skipped`` (metrics the data
cannot feed, and why), ``protocol`` (how each number was measured: networks, weights and their sha256, resize),
``sample_counts`` (per direction), ``model``, ``data``, ``settings``, ``zoo_version`` and ``timestamp``.
"""

from __future__ import annotations

import datetime
import inspect
import itertools
import json
import math
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from zoo import __version__
from zoo.data.io import IMG_EXTENSIONS, batches_by_size, list_images, read_image, read_image_size
from zoo.data.video import VIDEO_EXTENSIONS, is_video, read_video_frames
from zoo.metrics.lpips import LPIPS, diversity
from zoo.metrics.temporal import TemporalFlicker
from zoo.metrics.translation import (
    DISTRIBUTION_METRICS,
    LABEL_METRICS,
    METRIC_NAMES,
    PAIRED_METRICS,
    TranslationMetrics,
    parse_metric_names,
    translate_for_metrics,
)
from zoo.utils.devices import deterministic_backends, resolve_device
from zoo.weights import file_sha256

__all__ = ["EVALUATE_METRICS", "FLICKER", "LABEL_ENCODINGS", "evaluate_folders", "evaluate_model", "evaluate_sequences",
           "find_sequences", "load_datamodule", "load_segmenter", "markdown_table", "test_batch", "write_report"]

DIVERSITY = "diversity"
#: How label maps of ``evaluate_folders(labels=...)`` store classes: Cityscapes label ids (0-33, the files GTA5 and
#: Cityscapes ship) or train ids (0-18, 255 = ignore).
LABEL_ENCODINGS = ("label_ids", "train_ids")
#: The temporal-flicker metric of :func:`evaluate_sequences` (:mod:`zoo.metrics.temporal`).
FLICKER = "flicker"
#: Every metric :func:`evaluate_model` computes, in report order.
EVALUATE_METRICS = (*METRIC_NAMES, DIVERSITY)
#: Inputs of the diversity score when ``max_images`` does not cap them (MUNIT and DRIT++ use 100 test inputs).
DIVERSITY_INPUTS = 100

_NEEDS = {**dict.fromkeys(DISTRIBUTION_METRICS, "real images of the target domain"),
          **dict.fromkeys(PAIRED_METRICS, "aligned target images (paired or super-resolution data)"),
          **dict.fromkeys(LABEL_METRICS, "class labels of the source images")}


def load_datamodule(config: str | os.PathLike[str] | dict[str, Any]) -> Any:
    """The DataModule of a config's ``data`` section, built as ``zoo fit`` builds it (a ``class_path`` naming a
    :class:`~zoo.data.ZooDataModule`, with its ``init_args``; omegaconf interpolations resolved).

    Args:
        config: a config file or shipped config name (:func:`zoo.config_files.resolve_config`), or a config dict.
    """
    from jsonargparse import ArgumentParser

    from zoo.config_files import load_config
    from zoo.data import ZooDataModule

    source = config if isinstance(config, dict) else load_config(config)
    if not isinstance(source.get("data"), dict):
        where = "the config" if isinstance(config, dict) else f"config {config}"
        raise ValueError(f"{where} has no data section (class_path and init_args of a DataModule)")
    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(ZooDataModule, "data", required=True)
    return parser.instantiate(parser.parse_object({"data": source["data"]})).data


def test_batch(config: str | os.PathLike[str] | dict[str, Any], count: int = 4) -> dict[str, Any]:
    """The first ``count`` items of the test split of a config's data, as one batch (tensors stacked: ``real_a``,
    ``real_b`` (B, C, H, W) in [-1, 1], class maps, masks, instance maps; other values in lists). The notebooks and the
    regression test of the shipped weights use it to get fixed inputs."""
    datamodule = load_datamodule(config)
    datamodule.setup("test")
    dataset = datamodule.test_dataloader().dataset
    if count > len(dataset):
        raise ValueError(f"test_batch: asked for {count} items, the test split has {len(dataset)}")
    items = [dataset[i] for i in range(count)]
    return {key: torch.stack([item[key] for item in items]) if isinstance(items[0][key], Tensor)
            else [item[key] for item in items] for key in items[0]}


def load_segmenter(path: str | os.PathLike[str]) -> nn.Module:
    """A user's segmentation network for ``miou``, saved with ``torch.jit.save`` (TorchScript) or ``torch.export``
    (``.pt2``): ``(B, 3, H, W)`` in [0, 1] -> ``(B, classes, H, W)`` logits. Loaded on the CPU, in eval mode."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"segmenter file {path} does not exist (save your network with torch.jit.save or "
                                "torch.export.save)")
    if path.suffix == ".pt2":
        return torch.export.load(path).module()
    return torch.jit.load(path, map_location="cpu").eval()


def _load_model(model: str | os.PathLike[str] | nn.Module, device: torch.device, trust_code: bool) -> nn.Module:
    if isinstance(model, (str, os.PathLike)):
        from zoo.hub import load

        model = load(model, map_location=device, trust_code=trust_code)
    return model.to(device).eval()


def _model_record(model: nn.Module, source: Any) -> dict[str, Any]:
    """What was evaluated: the method, its class, and the file (with its sha256) it was read from."""
    record: dict[str, Any] = {"method": getattr(type(model), "method_name", type(model).__name__.lower()),
                              "class": f"{type(model).__module__}.{type(model).__qualname__}"}
    if isinstance(source, (str, os.PathLike)):
        record["source"] = os.fspath(source)
        path = Path(source).expanduser()
        weights = path / "model.safetensors" if path.is_dir() else path
        if weights.is_file():
            record["weights_sha256"] = file_sha256(weights)
    return record


def _is_multimodal(model: nn.Module) -> bool:
    return "num_styles" in inspect.signature(model.translate).parameters


def _parse_directions(directions: str | Iterable[str] | None, model: nn.Module) -> tuple[str, ...]:
    offered = tuple(getattr(model, "directions", ("a2b",)))
    if directions is None:
        return offered
    chosen = [d.strip() for d in (directions.split(",") if isinstance(directions, str) else directions) if d.strip()]
    unknown = [d for d in chosen if d not in offered]
    if unknown or not chosen:
        raise ValueError(f"--directions {','.join(chosen)!r}: {type(model).__name__} translates "
                         f"{', '.join(offered)}")
    return tuple(dict.fromkeys(chosen))


def _progress(items: Iterable[Any], description: str, *, enabled: bool, total: int | None = None) -> Iterable[Any]:
    """``items`` behind a rich progress bar on stderr, as ``zoo translate`` shows one."""
    from rich.console import Console
    from rich.progress import track

    return track(items, description=description, total=total, console=Console(stderr=True), disable=not enabled,
                 transient=True)


def _test_batches(loader: Iterable[dict[str, Any]], max_images: int | None) -> Iterator[dict[str, Any]]:
    """The loader's batches, the last one cut so that at most ``max_images`` items are seen."""
    seen = 0
    for batch in loader:
        if max_images is not None and seen >= max_images:
            return
        size = len(batch["real_a"])
        if max_images is not None and seen + size > max_images:
            keep = max_images - seen
            batch = {key: value[:keep] for key, value in batch.items()}
        seen += len(batch["real_a"])
        yield batch


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {key: value.to(device) if isinstance(value, Tensor) else value for key, value in batch.items()}


def _has_labels(batch: dict[str, Any], direction: str) -> bool:
    return f"label_{direction[0]}" in batch or "label" in batch


def _has_other_side(batch: dict[str, Any], direction: str) -> bool:
    """Whether the batch holds the target domain's images of ``direction`` (label maps may come without photos)."""
    return f"real_{direction.partition('2')[2] or 'b'}" in batch


def _plan(names: Sequence[str], directions: Sequence[str], *, paired: bool, first_batch: dict[str, Any],
          explicit: bool, data_name: str) -> dict[str, dict[str, str]]:
    """Per direction, the chosen metrics the test data cannot feed and why; an error for a metric named explicitly
    that no direction can compute."""
    skipped: dict[str, dict[str, str]] = {direction: {} for direction in directions}
    for direction in directions:
        for name in names:
            if name in PAIRED_METRICS and not (paired and _has_other_side(first_batch, direction)):
                skipped[direction][name] = _NEEDS[name]
            elif name in DISTRIBUTION_METRICS and not _has_other_side(first_batch, direction):
                skipped[direction][name] = _NEEDS[name]
            elif name in LABEL_METRICS and not _has_labels(first_batch, direction):
                skipped[direction][name] = _NEEDS[name]
    if explicit:
        for name in names:
            if all(name in skipped[direction] for direction in directions):
                raise ValueError(f"--metrics {name} needs {_NEEDS[name]}, which the test data of {data_name} "
                                 f"({', '.join(directions)}) do not have; leave {name} out")
    return skipped


def evaluate_model(
    model: str | os.PathLike[str] | nn.Module,
    datamodule: Any,
    *,
    metrics: str | Iterable[str] | None = None,
    directions: str | Iterable[str] | None = None,
    num_styles: int = 10,
    seed: int = 0,
    device: str = "auto",
    batch_size: int | None = None,
    max_images: int | None = None,
    progress: bool = True,
    trust_code: bool = False,
    **metric_options: Any,
) -> dict[str, Any]:
    """Translate the test split of ``datamodule`` and measure the translations.

    Per direction of the model (``a2b``: ``real_a`` -> compared with ``real_b``; ``b2a`` the other way), every test
    batch ``i`` is translated with seed ``seed + i`` (``torch.manual_seed`` too), so the same call gives the same
    numbers. Distribution metrics (fid, kid, fd_dinov2) compare the translations with the real images of the target
    domain; paired metrics (lpips, psnr, ssim) with the aligned target of each translation, on paired and
    super-resolution data (``datamodule.paired``) only; miou and pixel_accuracy segment the translations and compare
    the segmentation with the source image's class labels (label map -> photo: the input label map's Cityscapes train
    ids, 255 ignored; the protocol of pix2pix and pix2pixHD). Inputs aligned with the source images that the model
    takes (``model.ALIGNED_INPUTS``: pix2pixHD's instance maps) are passed from the batches. Super-resolution models
    (``model.scale > 1``) get the SR papers' PSNR/SSIM protocol (Y channel, ``scale`` pixels shaved at the border).
    ``diversity`` (multimodal methods only) is the mean LPIPS between ``num_styles`` translations of each of the
    first ``min(max_images, 100)`` test inputs.

    Metrics the data cannot feed (paired metrics on unpaired data, miou without labels, fid without target images, as
    on label maps whose photos are not published) are left out and named in
    ``skipped``; when ``metrics`` names them explicitly and no direction can compute them, that is an error.

    Args:
        model: a model, or what :func:`zoo.hub.load` takes (registered pretrained name, ``.ckpt`` file, bundle
            folder); moved to ``device`` and put in eval mode.
        datamodule: a :class:`~zoo.data.ZooDataModule`, or a config (file, shipped name or dict) whose ``data``
            section builds one (:func:`load_datamodule`).
        metrics: names of :data:`EVALUATE_METRICS` (``"fid,kid"`` or a list); ``None``: ``model.PAPER_METRICS``.
        directions: directions to evaluate (``"a2b,b2a"`` or a list); ``None``: every direction of the model.
        num_styles: styles per input of the diversity score (K >= 2).
        seed: base seed of the translations and of the diversity styles.
        device: ``auto`` (CUDA, then MPS, then CPU) or a torch device string.
        batch_size: test images per batch (``None``: the DataModule's ``val_batch_size``).
        max_images: evaluate the first ``max_images`` test images only (``None``: all).
        progress: show a progress bar on stderr.
        trust_code: passed to :func:`zoo.hub.load`.
        **metric_options: options of :class:`~zoo.metrics.TranslationMetrics` (``resize``, ``inception_weights``,
            ``dinov2_weights``, ``lpips_net``, ``kid_subsets``, ``segmenter``, ...).

    Returns:
        The result dict described in the module docstring; ``metrics[direction]`` maps ``fid``, ``kid``,
        ``kid_std``, ... to floats.

    Raises:
        ValueError: an unknown metric or direction, diversity for a unimodal method (or with ``num_styles < 2``), an
            explicitly named metric the data cannot feed, or a ``max_images`` / ``batch_size`` below 1.
        zoo.weights.WeightsUnavailableError: a feature network's weights are missing offline (the message names the
            file, its URL and where to put it).
    """
    for flag, value in (("--max-images", max_images), ("--batch-size", batch_size)):
        if value is not None and value < 1:
            raise ValueError(f"{flag} must be >= 1, got {value}")
    torch_device = resolve_device(device)
    source = model
    model = _load_model(model, torch_device, trust_code)
    explicit = metrics is not None
    names = parse_metric_names(metrics if explicit else getattr(model, "PAPER_METRICS", ("fid", "kid")),
                               allowed=EVALUATE_METRICS)
    chosen_directions = _parse_directions(directions, model)
    if DIVERSITY in names and not _is_multimodal(model):
        raise ValueError(f"diversity measures the styles of multimodal methods (MUNIT, DRIT); {type(model).__name__} "
                         "translates each input one way; leave diversity out of --metrics")
    if DIVERSITY in names and num_styles < 2:
        raise ValueError(f"--num-styles must be >= 2 for diversity (pairs of styles), got {num_styles}")
    if isinstance(datamodule, (str, os.PathLike, dict)):
        datamodule = load_datamodule(datamodule)
    if batch_size is not None:
        datamodule.val_batch_size = batch_size
    datamodule.setup("test")
    loader = datamodule.test_dataloader()
    paired = bool(getattr(datamodule, "paired", False))
    first_batch = next(iter(loader))
    image_metrics = [name for name in names if name != DIVERSITY]
    skipped = _plan(image_metrics, chosen_directions, paired=paired, first_batch=first_batch, explicit=explicit,
                    data_name=type(datamodule).__name__)

    scale = int(getattr(model, "scale", 1))
    options = {"crop_border": scale, "y_channel": True} if scale > 1 else {}
    measured = [name for name in image_metrics if any(name not in skipped[d] for d in chosen_directions)]
    meter = (TranslationMetrics(measured, **{**options, **metric_options}).to(torch_device) if measured else None)
    diversity_network = _lpips_network(metric_options.get("lpips_net", "alex")) if DIVERSITY in names else None

    values: dict[str, dict[str, float]] = {}
    counts: dict[str, dict[str, int]] = {}
    per_class_iou: dict[str, dict[str, float]] = {}
    with deterministic_backends():
        for direction in chosen_directions:
            values[direction], counts[direction] = {}, {}
            if meter is not None:
                meter.reset()
                batches = _progress(_test_batches(loader, max_images), f"evaluating {direction}",
                                    enabled=progress, total=_batch_count(loader, max_images))
                for index, batch in enumerate(batches):
                    torch.manual_seed(seed + index)
                    batch = _to_device(batch, torch_device)
                    inputs = translate_for_metrics(model, batch, direction=direction, paired=paired,
                                                   seed=seed + index)
                    labels = None if any(n in skipped[direction] for n in LABEL_METRICS) else inputs.labels
                    meter.update(inputs.fake, real=inputs.real, target=inputs.target, labels=labels)
                computed = meter.compute()
                values[direction] = {key: value for key, value in computed.items()
                                     if key.removesuffix("_std") not in skipped[direction]}
                for name, need in meter.missing().items():
                    skipped[direction].setdefault(name, need)
                counts[direction] = meter.sample_counts()
                if "miou" in values[direction]:
                    per_class_iou[direction] = meter.per_class_iou()
            if DIVERSITY in names:
                values[direction][DIVERSITY], counts[direction]["diversity_inputs"] = _diversity(
                    model, loader, direction, num_styles=num_styles, seed=seed, device=torch_device,
                    max_images=min(max_images or DIVERSITY_INPUTS, DIVERSITY_INPUTS), network=diversity_network)

    protocol = meter.protocol() if meter is not None else {}
    if diversity_network is not None:
        protocol["diversity"] = {"lpips": diversity_network.protocol(), "styles_per_input": num_styles,
                                 "pairs_per_input": num_styles * (num_styles - 1) // 2,
                                 "style_seeds": "seed + batch_index * styles + k",
                                 "inputs": f"the first min(max_images, {DIVERSITY_INPUTS}) test images"}
    return {
        "zoo_version": __version__,
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model": _model_record(model, source),
        "data": {"class": f"{type(datamodule).__module__}.{type(datamodule).__qualname__}", "split": "test",
                 "paired": paired, "test_images": len(datamodule.test_dataset)},
        "settings": {"metrics": list(names), "directions": list(chosen_directions), "num_styles": num_styles,
                     "seed": seed, "device": str(torch_device), "batch_size": datamodule.val_batch_size,
                     "max_images": max_images, **_plain(metric_options), **_plain(options)},
        "metrics": values,
        "per_class_iou": per_class_iou,
        "skipped": _merge_skipped(skipped, chosen_directions),
        "protocol": protocol,
        "sample_counts": counts,
    }


def _lpips_network(net: Any) -> Any:
    """``net`` if it is an :class:`~zoo.metrics.lpips.LPIPS` network, else the pretrained network it names."""
    return net if isinstance(net, LPIPS) else LPIPS(net)


def _batch_count(loader: Any, max_images: int | None) -> int | None:
    try:
        batches = len(loader)
    except TypeError:
        return None
    if max_images is None:
        return batches
    return min(batches, math.ceil(max_images / max(1, int(getattr(loader, "batch_size", None) or 1))))


def _diversity(model: nn.Module, loader: Iterable[dict[str, Any]], direction: str, *, num_styles: int, seed: int,
               device: torch.device, max_images: int, network: Any) -> tuple[float, int]:
    """LPIPS diversity of ``num_styles`` translations of each of the first ``max_images`` test inputs (source side
    of ``direction``, (B, C, H, W) in [0, 1])."""
    source_key = "real_a" if direction == "a2b" else "real_b"
    inputs = [((batch[source_key] + 1) / 2).to(device) for batch in _test_batches(loader, max_images)]
    score = diversity(lambda images, style_seed: model.translate(images, direction=direction, seed=style_seed),
                      inputs, styles=num_styles, seed=seed, net=network.to(device))
    return score, sum(len(batch) for batch in inputs)


def _merge_skipped(skipped: dict[str, dict[str, str]], directions: Sequence[str]) -> dict[str, str]:
    """``{metric: reason}``; a metric skipped in some directions only names them."""
    merged: dict[str, str] = {}
    for name in dict.fromkeys(n for d in directions for n in skipped[d]):
        where = [d for d in directions if name in skipped[d]]
        reason = f"needs {skipped[where[0]][name]}, which the test data lack"
        merged[name] = reason if len(where) == len(directions) else f"{reason} (in {', '.join(where)})"
    return merged


def _plain(options: dict[str, Any]) -> dict[str, Any]:
    """Settings as JSON values (networks and callables by their class name)."""
    return {key: value if isinstance(value, (str, int, float, bool, type(None), list, tuple, dict))
            else type(value).__name__ for key, value in options.items()}


# ------------------------------------------------------------------------------------------------------- folders


def _relative_stems(folder: Path) -> dict[str, Path]:
    return {str(path.relative_to(folder).with_suffix("")): path for path in list_images(folder, recursive=True)}


def _read_batches(paths: Sequence[Path], batch_size: int) -> list[list[Path]]:
    """Batches of at most ``batch_size`` images of equal size, in a fixed order (by size, then path)."""
    return batches_by_size(list(paths), {path: read_image_size(path) for path in paths}, batch_size)


def _stack(paths: Sequence[Path], device: torch.device) -> Tensor:
    return torch.stack([read_image(path, channels=3) for path in paths]).to(device)


def _split_to(batches: list[list[Path]], count: int) -> list[list[Path]]:
    """``batches`` with the largest ones halved until there are ``count`` (or every batch holds one image)."""
    batches = [list(batch) for batch in batches]
    while len(batches) < count and any(len(batch) > 1 for batch in batches):
        largest = max(range(len(batches)), key=lambda i: len(batches[i]))
        batch = batches.pop(largest)
        batches[largest:largest] = [batch[: len(batch) // 2], batch[len(batch) // 2 :]]
    return batches


def evaluate_folders(
    real_dir: str | os.PathLike[str] | None,
    fake_dir: str | os.PathLike[str],
    *,
    source: str | os.PathLike[str] | None = None,
    labels: str | os.PathLike[str] | None = None,
    label_encoding: str = "label_ids",
    metrics: str | Iterable[str] | None = None,
    batch_size: int = 16,
    device: str = "auto",
    progress: bool = True,
    **metric_options: Any,
) -> dict[str, Any]:
    """Measure translations made elsewhere (``fake_dir``) against real images (``real_dir``), both searched
    recursively, against the label maps of their inputs (``labels``: semantic consistency), and/or their temporal
    flicker against the videos and frame sequences they were translated from (``source``, see
    :func:`evaluate_sequences`).

    Distribution metrics (fid, kid, fd_dinov2) compare the two sets, whatever their sizes. Paired metrics (lpips,
    psnr, ssim) compare each translation with the real image of the same relative name (suffix ignored:
    ``fake/sub/x.png`` with ``real/sub/x.jpg``); every file must have its match. Images are read as RGB in [0, 1].
    With ``source``, the ``flicker`` of every sequence is added to the same ``"folders"`` row.

    Semantic consistency (miou, pixel_accuracy): every translation is segmented (the toy-world segmenter, or
    ``segmenter=`` as for :class:`~zoo.metrics.TranslationMetrics`) and compared with the label map of the same
    relative name in ``labels`` (any image suffix: ``fake/seq/0.png`` with ``labels/seq/0.png``), which must have
    the translation's size. Label maps are single-channel images of Cityscapes label ids (``label_encoding=
    "label_ids"``, as GTA5, Cityscapes' ``*_labelIds.png`` and ``zoo toy-dataset`` store them; mapped to train ids,
    classes outside the 19 evaluated ones ignored) or of train ids (``"train_ids"``, 255 = ignore).

    Args:
        real_dir: folder of real images, or ``None`` to measure flicker only (``source`` is then required).
        fake_dir: folder of translations (a video file is accepted when ``source`` is one and ``real_dir`` is None).
        labels: folder of label maps of the translated inputs, for ``miou`` and ``pixel_accuracy``.
        label_encoding: ``"label_ids"`` (Cityscapes label ids 0-33) or ``"train_ids"`` (0-18, 255 = ignore).
        source: the inputs the translations were made from: a video file, or a folder of videos and/or sequence
            folders of frames (:func:`evaluate_sequences`).
        metrics: names of :data:`~zoo.metrics.METRIC_NAMES` and ``flicker`` (``"fid,kid,psnr"`` or a list; default
            ``fid,kid`` with ``real_dir``, plus ``miou,pixel_accuracy`` with ``labels``; only ``flicker`` with
            ``source`` alone); ``miou`` and ``pixel_accuracy`` need ``labels``.
            ``flicker`` is measured whenever ``source`` is given, named or not.
        batch_size: images (frames) per batch.
        device: ``auto`` (CUDA, then MPS, then CPU) or a torch device string.
        progress: show a progress bar on stderr.
        **metric_options: options of :class:`~zoo.metrics.TranslationMetrics` (``resize``, ``inception_weights``,
            ``lpips_net``, ``crop_border``, ``y_channel``, ``segmenter``, ``num_classes``, ...).

    Returns:
        The result dict of :func:`evaluate_model` with the one direction ``"folders"`` (with ``source``: also
        ``per_sequence``, as :func:`evaluate_sequences` returns it; with ``miou``: ``per_class_iou``).

    Raises:
        FileNotFoundError: a folder is missing or holds no image.
        ValueError: an unknown metric or label encoding, a metric its inputs cannot feed (``flicker`` without
            ``source``, ``miou`` / ``pixel_accuracy`` without ``labels``, the other image metrics without
            ``real_dir``), unmatched files for a paired metric (named), a translation without a label map (the
            expected file named), label maps that are not single-channel class ids or whose size differs from
            the translation's, paired images of different sizes, or the errors of :func:`evaluate_sequences`.
    """
    allowed = DISTRIBUTION_METRICS + PAIRED_METRICS + LABEL_METRICS + (FLICKER,)
    requested = parse_metric_names(metrics, allowed=allowed) if metrics is not None else None
    if label_encoding not in LABEL_ENCODINGS:
        raise ValueError(f"--label-encoding must be one of {', '.join(LABEL_ENCODINGS)}, got {label_encoding!r}")
    if requested is not None and FLICKER in requested and source is None:
        raise ValueError("flicker compares translated sequences with their inputs: give --source (the videos or "
                         "frame folders the --fake outputs were translated from)")
    label_metrics = [name for name in requested or () if name in LABEL_METRICS]
    if label_metrics and labels is None:
        raise ValueError(f"{', '.join(label_metrics)} compare{'s' * (len(label_metrics) == 1)} a segmentation of "
                         "the translations with the label maps of their inputs: give --labels FOLDER")
    if real_dir is None:
        if source is None and labels is None:
            raise ValueError("give --real (a folder of real images), --labels (label maps of the translated inputs), "
                             "--source (the translated inputs), or several")
        image_metrics = [name for name in requested or () if name not in (FLICKER, *LABEL_METRICS)]
        if image_metrics:
            raise ValueError(f"{', '.join(image_metrics)} compare{'s' * (len(image_metrics) == 1)} the translations "
                             f"with real images: give --real FOLDER")
        if labels is None:
            return evaluate_sequences(source, fake_dir, batch_size=batch_size, device=device, progress=progress)
        names = LABEL_METRICS if requested is None else tuple(label_metrics)
    else:
        default = ("fid", "kid") + (LABEL_METRICS if labels is not None else ())
        names = default if requested is None else tuple(name for name in requested if name != FLICKER)
    if not names:  # --metrics flicker: flicker only
        return evaluate_sequences(source, fake_dir, batch_size=batch_size, device=device, progress=progress)
    result = _evaluate_image_folders(real_dir, fake_dir, names=names, batch_size=batch_size, device=device,
                                     progress=progress, labels=labels, label_encoding=label_encoding,
                                     **metric_options)
    if source is not None:
        _merge_sequences(result, evaluate_sequences(source, fake_dir, batch_size=batch_size, device=device,
                                                    progress=progress))
    return result


def _read_label_map(path: Path, encoding: str, num_classes: int) -> Tensor:
    """A label map file as ``(H, W)`` int64 train ids (255 = ignore), from Cityscapes label ids or train ids."""
    import numpy as np
    from PIL import Image

    from zoo.data.toy_world.labels import label_to_train_id

    with Image.open(path) as image:
        array = np.array(image)
    if array.ndim != 2:
        raise ValueError(f"label map {path} has {array.shape[-1]} channels; label maps are single-channel images of "
                         f"class ids ({encoding}), not colour-coded maps")
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"label map {path} holds {array.dtype} values; label maps hold integer class ids")
    if encoding == "label_ids":
        if array.size and (int(array.min()) < 0 or int(array.max()) > 33):
            raise ValueError(f"label map {path} holds values in [{int(array.min())}, {int(array.max())}]; Cityscapes "
                             "label ids are 0-33 (pass --label-encoding train_ids for maps of train ids)")
        return torch.from_numpy(label_to_train_id(array.astype(np.int64)).astype(np.int64))
    invalid = (array < 0) | ((array >= num_classes) & (array != 255))
    if invalid.any():
        raise ValueError(f"label map {path} holds values outside 0-{num_classes - 1} and 255 (ignore): "
                         f"{sorted({int(v) for v in np.unique(array[invalid])})[:5]}; is it a map of label ids "
                         "(--label-encoding label_ids)?")
    return torch.from_numpy(array.astype(np.int64))


def _match_label_maps(fakes: dict[str, Path], label_root: Path) -> dict[str, Path]:
    """The label map of each translation (same relative stem, any image suffix); a missing one is an error."""
    maps = _relative_stems(label_root)
    missing = sorted(name for name in fakes if name not in maps)
    if missing:
        shown = ", ".join(f"{fakes[name]} (expected {label_root / name}.png)" for name in missing[:3])
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise ValueError(f"{len(missing)} translation(s) in --fake have no label map of the same relative name in "
                         f"--labels {label_root} (any image suffix): {shown}{more}")
    return {name: maps[name] for name in fakes}


def _evaluate_image_folders(real_dir: str | os.PathLike[str] | None, fake_dir: str | os.PathLike[str], *,
                            names: tuple[str, ...], batch_size: int, device: str, progress: bool,
                            labels: str | os.PathLike[str] | None = None, label_encoding: str = "label_ids",
                            **metric_options: Any) -> dict[str, Any]:
    """:func:`evaluate_folders` without sequences: image metrics ``names`` of ``fake_dir`` against ``real_dir``
    and (miou, pixel_accuracy) against the label maps in ``labels``."""
    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
    real_root = None if real_dir is None else Path(real_dir)
    fake_root = Path(fake_dir)
    label_root = Path(labels) if labels is not None and any(n in LABEL_METRICS for n in names) else None
    for flag, folder in (("--real", real_root), ("--fake", fake_root), ("--labels", label_root)):
        if folder is not None and not folder.is_dir():
            raise FileNotFoundError(f"{flag} {folder}: no such folder")
    reals = {} if real_root is None else _relative_stems(real_root)
    fakes = _relative_stems(fake_root)
    label_maps = None if label_root is None else _match_label_maps(fakes, label_root)
    num_classes = int(metric_options.get("num_classes", 19))
    torch_device = resolve_device(device)
    paired = any(name in PAIRED_METRICS for name in names)
    if paired:
        unmatched = sorted(set(fakes) ^ set(reals))
        if unmatched:
            shown = ", ".join(str(fakes.get(name, reals.get(name))) for name in unmatched[:5])
            more = f" and {len(unmatched) - 5} more" if len(unmatched) > 5 else ""
            raise ValueError(f"{', '.join(n for n in names if n in PAIRED_METRICS)} compare files of the same "
                             f"relative name in --real and --fake; {len(unmatched)} have no match: {shown}{more}")
        fake_batches = _read_batches([fakes[name] for name in sorted(fakes)], batch_size)
        real_batches = [[reals[str(path.relative_to(fake_root).with_suffix(""))] for path in batch]
                        for batch in fake_batches]
    elif real_root is None:
        real_batches = []
        fake_batches = _read_batches([fakes[name] for name in sorted(fakes)], batch_size)
    else:
        real_batches = _read_batches(list(reals.values()), batch_size)
        fake_batches = _split_to(_read_batches(list(fakes.values()), batch_size), len(real_batches))
        if len(fake_batches) < len(real_batches):
            raise ValueError(f"{len(fakes)} translations are too few to pair with the {len(real_batches)} batches of "
                             f"real images; pass a larger --batch-size")
    meter = TranslationMetrics(names, **metric_options).to(torch_device)
    steps = list(zip(fake_batches, real_batches + [[]] * (len(fake_batches) - len(real_batches)), strict=True))
    for fake_paths, real_paths in _progress(steps, "evaluating", enabled=progress):
        fake = _stack(fake_paths, torch_device)
        real = _stack(real_paths, torch_device) if real_paths else None
        if paired and real is not None and real.shape != fake.shape:
            raise ValueError(f"{fake_paths[0]} is {tuple(fake.shape[-2:])}, its real image {real_paths[0]} "
                             f"{tuple(real.shape[-2:])}; paired metrics need equal sizes")
        label_batch = None
        if label_maps is not None:
            label_paths = [label_maps[str(path.relative_to(fake_root).with_suffix(""))] for path in fake_paths]
            label_list = [_read_label_map(path, label_encoding, num_classes) for path in label_paths]
            for fake_path, label_path, label in zip(fake_paths, label_paths, label_list, strict=True):
                if tuple(label.shape) != tuple(fake.shape[-2:]):
                    raise ValueError(f"{fake_path} is {tuple(fake.shape[-2:])} (H, W), its label map {label_path} "
                                     f"{tuple(label.shape)}; label maps must have the size of the translations")
            label_batch = torch.stack(label_list).to(torch_device)
        meter.update(fake, real=real, target=real if paired else None, labels=label_batch)
    return {
        "zoo_version": __version__,
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "data": {"real": None if real_root is None else str(real_root), "fake": str(fake_root),
                 "real_images": len(reals), "fake_images": len(fakes),
                 **({} if label_root is None else {"labels": str(label_root), "label_maps": len(label_maps or {})})},
        "settings": {"metrics": list(names), "device": str(torch_device), "batch_size": batch_size,
                     **({} if label_root is None else {"label_encoding": label_encoding}),
                     **_plain(metric_options)},
        "metrics": {"folders": meter.compute()},
        "per_class_iou": {"folders": meter.per_class_iou()} if "miou" in names else {},
        "skipped": {},
        "protocol": meter.protocol(),
        "sample_counts": {"folders": meter.sample_counts()},
    }


# ------------------------------------------------------------------------------------------------------ sequences


def _natural_key(path: Path) -> tuple[Any, ...]:
    """Sort key of frame names: digit runs compare as numbers (``frame_2`` before ``frame_10``), then the name."""
    parts = re.split(r"(\d+)", path.name)
    return tuple(int(part) if index % 2 else part for index, part in enumerate(parts)), path.name


def _frames_of(folder: Path) -> list[Path]:
    """The image files directly in ``folder`` (not below), in frame order (:func:`_natural_key`)."""
    paths = [p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
             and p.name.lower().endswith(IMG_EXTENSIONS)]
    return sorted(paths, key=_natural_key)


def find_sequences(source: str | os.PathLike[str]) -> dict[str, Path]:
    """The sequences of a ``--source``: video files and folders of frames, by relative name.

    Args:
        source: a video file (one sequence, named by its file name), or a folder searched recursively: each video
            file (:data:`~zoo.data.video.VIDEO_EXTENSIONS`) is a sequence named by its relative path
            (``clips/a.mp4``), and each folder holding image files directly is a sequence of those frames named by
            its relative path (``shots/1``; ``.`` for ``source`` itself). Hidden files and folders are skipped.

    Returns:
        ``{relative name: path}``, sorted by name.

    Raises:
        FileNotFoundError: ``source`` does not exist, or holds no video and no image.
        ValueError: ``source`` is a file that is not a video.
    """
    root = Path(source)
    if not root.exists():
        raise FileNotFoundError(f"--source {root}: no such file or folder")
    if root.is_file():
        if not is_video(root):
            raise ValueError(f"--source {root}: not a video ({', '.join(VIDEO_EXTENSIONS)}) or a folder")
        return {root.name: root}
    sequences: dict[str, Path] = {}
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        here = Path(folder)
        relative = here.relative_to(root).as_posix()
        for name in names:
            if is_video(name):
                sequences[(here / name).relative_to(root).as_posix()] = here / name
        if any(not name.startswith(".") and name.lower().endswith(IMG_EXTENSIONS) for name in names):
            sequences[relative] = here
    if not sequences:
        raise FileNotFoundError(f"--source {root}: no video ({', '.join(VIDEO_EXTENSIONS)}) and no folder of frames "
                                f"({', '.join(IMG_EXTENSIONS)}) in or below it")
    return dict(sorted(sequences.items()))


def _translation_of(name: str, path: Path, fake: Path) -> Path | None:
    """Where the translate pipeline put the translation of source sequence ``name`` (None when it is not there)."""
    if fake.is_file():
        return fake if path.is_file() and is_video(fake) else None
    candidate = fake / name
    if path.is_file():
        return candidate if candidate.is_file() else None
    return candidate if candidate.is_dir() else None


def _video_flicker(source: Path, fake: Path, batch_size: int, device: torch.device) -> dict[str, float] | None:
    """Flicker of video ``fake`` against video ``source`` (None for a single-frame video)."""
    meter = TemporalFlicker()
    inputs, outputs = read_video_frames(source, batch_size=batch_size), read_video_frames(fake, batch_size=batch_size)
    counts = [0, 0]
    for input_frames, output_frames in itertools.zip_longest(inputs, outputs):
        counts[0] += 0 if input_frames is None else len(input_frames)
        counts[1] += 0 if output_frames is None else len(output_frames)
        if input_frames is None or output_frames is None or len(input_frames) != len(output_frames):
            continue  # counting to the end of the longer one, for the error below
        meter.update(input_frames.to(device), output_frames.to(device))
    if counts[0] != counts[1]:
        raise ValueError(f"frame counts differ: source {source} has {counts[0]} frames, its translation {fake} "
                         f"{counts[1]}")
    return meter.compute() | {"frames": float(counts[0])} if meter.transitions else None


def _frames_flicker(source: Path, fake: Path, batch_size: int, device: torch.device) -> dict[str, float] | None:
    """Flicker of the frames in ``fake`` against the frames in ``source``, matched by name whatever their image type
    (None for a single frame)."""
    inputs = _frames_of(source)
    outputs = {path.stem: path for path in fake.iterdir()
               if path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMG_EXTENSIONS}
    missing = [path.name for path in inputs if path.stem not in outputs]
    extra = sorted(set(outputs) - {path.stem for path in inputs})
    if missing or extra:
        details = []
        if missing:
            details.append(f"no {', '.join(Path(name).stem + '.*' for name in missing[:3])}"
                           f"{f' and {len(missing) - 3} more' if len(missing) > 3 else ''} in {fake}")
        if extra:
            details.append(f"{', '.join(outputs[name].name for name in extra[:3])}"
                           f"{f' and {len(extra) - 3} more' if len(extra) > 3 else ''} in {fake} match no frame of "
                           f"{source}")
        raise ValueError(f"frame counts differ: {source} has {len(inputs)} frames, {fake} {len(outputs)} frames "
                         f"({'; '.join(details)}); each source frame NAME.ext needs its translation NAME.<image type>")
    meter = TemporalFlicker()
    for start in range(0, len(inputs), batch_size):
        chunk = inputs[start:start + batch_size]
        meter.update(torch.stack([read_image(path, channels=3) for path in chunk]).to(device),
                     torch.stack([read_image(outputs[path.stem], channels=3) for path in chunk]).to(device))
    return meter.compute() | {"frames": float(len(inputs))} if meter.transitions else None


def evaluate_sequences(
    source: str | os.PathLike[str],
    fake: str | os.PathLike[str],
    *,
    batch_size: int = 16,
    device: str = "auto",
    progress: bool = True,
) -> dict[str, Any]:
    """Temporal flicker of translated videos and frame sequences against the sequences they were translated from.

    The sequences of ``source`` are found by :func:`find_sequences`; each is matched with its translation in
    ``fake`` as ``zoo translate`` writes it:

    - a video ``SOURCE/<rel>`` with the video ``FAKE/<rel>`` (same relative path and suffix); a single source video
      with ``fake`` itself when that is a video file, else with ``FAKE/<name>``;
    - a folder of frames ``SOURCE/<rel>/`` with ``FAKE/<rel>/``, frame ``NAME.ext`` with ``NAME.<any image type>``;
      frames are ordered by name, digit runs compared as numbers (``frame_2`` before ``frame_10``).

    Each pair gives :class:`~zoo.metrics.temporal.TemporalFlicker`'s values (streamed ``batch_size`` frames at a
    time, RGB in [0, 1], outputs not resized); the metric ``flicker`` is their unweighted mean over sequences (each
    sequence counts once, whatever its length). Source sequences without a translation in ``fake``, and sequences
    of a single frame, are left out and listed under ``skipped``.

    Args:
        source: a video file, or a folder of videos and/or sequence folders of frames.
        fake: the translations: a folder laid out like ``source`` (or one video file for a video ``source``).
        batch_size: frames decoded and compared at a time (memory is bounded by two batches).
        device: ``auto`` (CUDA, then MPS, then CPU) or a torch device string.
        progress: show a progress bar on stderr.

    Returns:
        The result dict of :func:`evaluate_folders` with ``metrics = {"folders": {"flicker": mean}}`` and
        ``per_sequence = {rel: {"flicker", "input_change", "output_change", "transitions", "frames"}}``.

    Raises:
        FileNotFoundError: ``source`` or ``fake`` is missing, or ``source`` holds no sequence.
        ValueError: no source sequence has a translation in ``fake`` (the expected paths named), a translation's
            frame count differs from its source's, a frame size changes within a sequence, or a video cannot be
            decoded.
    """
    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
    source_root, fake_root = Path(source), Path(fake)
    if not fake_root.exists():
        raise FileNotFoundError(f"--fake {fake_root}: no such file or folder")
    sequences = find_sequences(source_root)
    matched = {name: (path, _translation_of(name, path, fake_root)) for name, path in sequences.items()}
    unmatched = [name for name, (_, translation) in matched.items() if translation is None]
    if len(unmatched) == len(sequences):
        expected = ", ".join(str(fake_root / name) for name in unmatched[:3])
        more = f" and {len(unmatched) - 3} more" if len(unmatched) > 3 else ""
        raise ValueError(f"no sequence of --source {source_root} has its translation in --fake {fake_root} (looked "
                         f"for {expected}{more}); videos match by relative path and suffix, folders of frames by "
                         f"relative folder with frames of the same names")
    torch_device = resolve_device(device)
    per_sequence: dict[str, dict[str, float]] = {}
    too_short: list[str] = []
    pairs = [(name, path, translation) for name, (path, translation) in matched.items() if translation is not None]
    for name, path, translation in _progress(pairs, "measuring flicker", enabled=progress):
        measure = _video_flicker if path.is_file() else _frames_flicker
        values = measure(path, translation, batch_size, torch_device)
        if values is None:
            too_short.append(name)
        else:
            per_sequence[name] = values
    if not per_sequence:
        raise ValueError(f"no sequence of --source {source_root} has 2 or more frames; flicker compares consecutive "
                         f"frames")
    skipped = {}
    for names, reason in ((unmatched, "no translation in --fake"), (too_short, "fewer than 2 frames")):
        if names:
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            skipped[f"flicker of {len(names)} sequence{'s' * (len(names) > 1)}"] = f"{reason} ({shown})"
    frames = int(sum(values["frames"] for values in per_sequence.values()))
    return {
        "zoo_version": __version__,
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "data": {"source": str(source_root), "fake": str(fake_root), "sequences": len(per_sequence),
                 "frames": frames},
        "settings": {"metrics": [FLICKER], "device": str(torch_device), "batch_size": batch_size},
        "metrics": {"folders": {FLICKER: sum(v[FLICKER] for v in per_sequence.values()) / len(per_sequence)}},
        "per_sequence": per_sequence,
        "skipped": skipped,
        "protocol": {FLICKER: _FLICKER_PROTOCOL},
        "sample_counts": {"folders": {"sequences": len(per_sequence), "frames": frames}},
    }


_FLICKER_PROTOCOL = {
    "definition": "mean |output_t - output_t-1| / mean |input_t - input_t-1| (1 = as much change as the input)",
    "pixels": "RGB in [0, 1], per-element means, outputs not resized",
    "static input": "1 when the outputs are static too, else inf",
    "mean": "unweighted mean over sequences",
}


def _merge_sequences(result: dict[str, Any], sequences: dict[str, Any]) -> None:
    """Add the flicker of :func:`evaluate_sequences` to an image-folder result, in place."""
    result["metrics"]["folders"].update(sequences["metrics"]["folders"])
    result["per_sequence"] = sequences["per_sequence"]
    result["data"].update(source=sequences["data"]["source"], sequences=sequences["data"]["sequences"],
                          frames=sequences["data"]["frames"])
    result["settings"]["metrics"] = [*result["settings"]["metrics"], FLICKER]
    result["skipped"].update(sequences["skipped"])
    result["protocol"].update(sequences["protocol"])
    result["sample_counts"]["folders"].update(sequences["sample_counts"]["folders"])


# -------------------------------------------------------------------------------------------------------- report


def _format_value(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    return f"{value:.2f}" if abs(value) >= 10 else f"{value:.4f}"


def markdown_table(result: dict[str, Any]) -> str:
    """The Markdown table of a result: rows = directions, columns = metrics (``kid`` as mean ± std), then a table of
    the per-sequence flicker values (when measured), one line per protocol entry and per skipped metric."""
    rows = result["metrics"]
    columns = [name for name in (*EVALUATE_METRICS, *sorted({k for v in rows.values() for k in v}))
               if name != "kid_std" and any(name in values for values in rows.values())]
    columns = list(dict.fromkeys(columns))
    lines = ["| direction | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for direction, values in rows.items():
        cells = []
        for name in columns:
            if name not in values:
                cells.append("–")
            elif name == "kid" and "kid_std" in values:
                cells.append(f"{_format_value(values['kid'])} ± {_format_value(values['kid_std'])}")
            else:
                cells.append(_format_value(values[name]))
        lines.append(f"| {direction} | " + " | ".join(cells) + " |")
    lines.append("")
    if result.get("per_sequence"):
        lines += ["| sequence | frames | flicker | input change | output change |", "|---|---|---|---|---|"]
        for name, values in result["per_sequence"].items():
            lines.append(f"| {name} | {int(values['frames'])} | {_format_value(values[FLICKER])} | "
                         f"{_format_value(values['input_change'])} | {_format_value(values['output_change'])} |")
        lines.append("")
    for key, value in result.get("protocol", {}).items():
        text = ", ".join(f"{k}: {v}" for k, v in value.items()) if isinstance(value, dict) else str(value)
        lines.append(f"- {key}: {text}")
    for name, reason in result.get("skipped", {}).items():
        lines.append(f"- skipped {name}: {reason}")
    return "\n".join(lines) + "\n"


def write_report(result: dict[str, Any], folder: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write ``metrics.json`` (the whole result) and ``metrics.md`` (:func:`markdown_table`) into ``folder``.

    Returns:
        The paths of the two files.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    json_path, md_path = folder / "metrics.json", folder / "metrics.md"
    json_path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    title = result.get("model", {}).get("source") or result.get("data", {}).get("fake") or "evaluation"
    md_path.write_text(f"# {title}\n\n{markdown_table(result)}")
    return json_path, md_path
