"""Semantic consistency of translated images: does a segmentation network still see the input's classes?

Unpaired translation can be realistic and still wrong: a GAN is free to paint trees where the simulator drew sky, or
to turn a traffic sign into a patch of building, as long as the output *looks* like the target domain. This is
"semantic flipping", the failure VSAIT and DECENT were designed to avoid. The usual way to measure it (the FCN-score
of pix2pix, the protocol of CyCADA, CUT and VSAIT) is to run a segmentation network trained on the **target** domain
over the translated source images and to score its prediction against the **source** labels: mean IoU over the
Cityscapes train ids. A perfect translation keeps every pixel's class, so it scores like real target images.

:class:`SemanticConsistency` implements that score around any segmentation model, given as a callable
``(B, 3, H, W) [0, 1] -> (B, num_classes, H, W)`` logits. Without one, it uses the toy-world segmenter of
:func:`toy_segmenter`: a :class:`~zoo.nets.segmentation.TinySegNet` trained on the photo-like renders of zoo's
embedded toy world (:func:`zoo.data.toy_world.render_photo`), i.e. on the target domain of the toy sim→photo task.

How the toy-world segmenter is made
    :func:`train_toy_segmenter` renders ``num_images`` photo-like scenes from a scene stream of their own
    (``ToyPairedDataset(seed=data_seed)``, disjoint from the scenes the DataModules use with their default seed 0)
    and trains the network for a fixed number of iterations with a seeded generator, on the CPU, in a few seconds
    to a minute. :func:`toy_segmenter` caches the result as safetensors under
    ``$ZOO_HOME/segmenters/`` (``~/.cache/zoo`` by default), keyed by a hash of every training setting, so it is
    trained once per setting and machine. Training is deterministic for a given PyTorch build and thread count (float
    reduction order may differ between machines, so two caches can differ in the last bits). The segmenter of the
    default settings ships with zoo (``zoo/pretrained/tinysegnet_<key>.safetensors``, fp16, written by
    ``python bench/train_zoo_weights.py --segmenter``) and is used before any cache, so the default scores, and the
    numbers on the shipped models' cards, are the same on every machine.

Example::

    metric = SemanticConsistency()                          # toy-world segmenter, 64 px (trained or cached)
    metric.update(model.translate(sim_images), labels)      # (B, 3, H, W) in [0, 1], (B, H, W) train ids
    metric.compute()                                        # mIoU in [0, 1]
    metric.score_translation(model, sim_images, labels)     # translate + reset + update + compute
    metric.report()                                         # {"mIoU": ..., "road": ..., "sky": ..., ...}
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.nets.segmentation import TinySegNet
from zoo.weights import SHIPPED_WEIGHTS_DIR, zoo_home

__all__ = [
    "CITYSCAPES_NUM_CLASSES",
    "SegmenterConfig",
    "SemanticConsistency",
    "mean_iou",
    "per_class_iou",
    "pixel_accuracy",
    "position_prior",
    "toy_eval_set",
    "toy_segmenter",
    "toy_segmenter_path",
    "train_toy_segmenter",
]

#: Number of Cityscapes train ids (0-18); 255 marks pixels ignored in evaluation.
CITYSCAPES_NUM_CLASSES = 19
_IGNORE = 255
# Bump when the training recipe changes in a way the settings below do not capture: it invalidates old caches.
_RECIPE_VERSION = 1

Segmenter = Callable[[Tensor], Tensor]


# --------------------------------------------------------------------------------------------------------------------
# IoU from a confusion matrix
# --------------------------------------------------------------------------------------------------------------------


def _check_labels(target: Tensor, num_classes: int, ignore_index: int | None) -> None:
    """Raise one clear line when ``target`` holds a value other than 0..num_classes-1 and ``ignore_index``."""
    valid = (target >= 0) & (target < num_classes)
    if ignore_index is not None:
        valid |= target == ignore_index
    if not bool(valid.all()):
        raise ValueError(f"SemanticConsistency: label values must be 0..{num_classes - 1}"
                         f"{f' or {ignore_index}' if ignore_index is not None else ''}; "
                         f"got {sorted(set(target[~valid].tolist()))[:8]}.")


def _jaccard(num_classes: int, ignore_index: int | None, average: str | None) -> Any:
    """torchmetrics' ``MulticlassJaccardIndex``; with ``average=None`` a class absent from both the labels and the
    predictions gets NaN (``zero_division=nan``), with ``average="macro"`` it is left out of the mean."""
    from torchmetrics.classification import MulticlassJaccardIndex

    return MulticlassJaccardIndex(num_classes, average=average, ignore_index=ignore_index, validate_args=False,
                                  zero_division=float("nan") if average is None else 0.0)


def _reduce(confusion: Tensor, average: str | None, ignore_index: int | None) -> Tensor:
    """torchmetrics' Jaccard reduction of an accumulated (C, C) confusion matrix (rows = target, columns =
    prediction), loaded into the metric as its state."""
    import warnings

    metric = _jaccard(confusion.shape[0], ignore_index, average)
    metric.merge_state({"confmat": confusion.detach().cpu().long()})
    with warnings.catch_warnings():  # the state came from merge_state, not from update(): nothing is missing
        warnings.filterwarnings("ignore", message=r".*was called before the ``update`` method")
        return metric.compute()


def _ignored_class(num_classes: int, ignore_index: int | None) -> int | None:
    return ignore_index if ignore_index is not None and 0 <= ignore_index < num_classes else None


def per_class_iou(confusion: Tensor, ignore_index: int | None = None) -> Tensor:
    """IoU of every class, ``(C,)`` float, from a confusion matrix ``(C, C)`` (rows = target, columns = prediction),
    as torchmetrics' ``MulticlassJaccardIndex(average=None)`` computes it.

    NaN marks a class that is not scored: absent from both the labels and the predictions, or ``ignore_index`` when
    it is one of the classes (0..C-1; its pixels were left out of the matrix, so its IoU means nothing).
    """
    iou = _reduce(confusion, None, ignore_index).float()
    ignored = _ignored_class(confusion.shape[0], ignore_index)
    if ignored is not None:
        iou[ignored] = float("nan")
    return iou


def mean_iou(confusion: Tensor, ignore_index: int | None = None) -> float:
    """Mean IoU over the classes present in the labels or the predictions, from a confusion matrix ``(C, C)``:
    torchmetrics' ``MulticlassJaccardIndex(average="macro")`` (which also leaves out ``ignore_index`` when it is one
    of the classes), i.e. the mean of the non-NaN entries of :func:`per_class_iou`; NaN when the matrix is empty."""
    return float(_reduce(confusion, "macro", ignore_index))


def pixel_accuracy(confusion: Tensor) -> float:
    """Share of the scored pixels whose predicted class is their label: the trace of a confusion matrix ``(C, C)``
    (rows = target, columns = prediction, ``ignore_index`` pixels already left out) over its sum; torchmetrics'
    ``MulticlassAccuracy(average="micro")`` of the same pixels. NaN when the matrix is empty."""
    total = int(confusion.sum())
    return float(torch.diagonal(confusion).sum().double() / total) if total else float("nan")


# --------------------------------------------------------------------------------------------------------------------
# The toy-world segmenter
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SegmenterConfig:
    """Every setting of :func:`train_toy_segmenter`; its hash names the cache file.

    Attributes:
        image_size: Side of the square training renders; the segmenter is applied at this size.
        width: :class:`~zoo.nets.segmentation.TinySegNet` width (with a timm ``backbone``: the decoder channels).
        num_images: Number of photo-like training scenes.
        iterations: Optimizer steps.
        batch_size: Images per step.
        lr: Peak learning rate of the one-cycle schedule (Adam).
        seed: Seed of the initialisation and of the batch order / flips.
        data_seed: Base seed of the training scenes (``ToyPairedDataset(seed=data_seed, split="train")``).
        domain: Rendering trained on: ``"photo"`` (the target domain of sim→photo) or ``"sim"``.
        backbone: ``"tinysegnet"`` (:class:`~zoo.nets.segmentation.TinySegNet`, the default) or a timm model name
            (``"resnet18"``, ``"mobilenetv3_small_100"``, ...) for a :class:`~zoo.nets.segmentation.TimmSegNet`.
        backbone_weights: Local weights file of a timm backbone to start from (its SHA-256 enters the cache key);
            None: random initialisation.
    """

    image_size: int = 64
    width: int = 16
    num_images: int = 256
    iterations: int = 400
    batch_size: int = 8
    lr: float = 3e-3
    seed: int = 0
    data_seed: int = 7
    domain: str = "photo"
    backbone: str = "tinysegnet"
    backbone_weights: str | None = None

    def __post_init__(self) -> None:
        for name in ("image_size", "width", "num_images", "iterations", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"SegmenterConfig: {name} must be a positive int; got {value!r}.")
        if self.image_size < 8:
            raise ValueError(f"SegmenterConfig: image_size must be >= 8; got {self.image_size}.")
        if self.domain not in ("photo", "sim"):
            raise ValueError(f"SegmenterConfig: domain must be 'photo' or 'sim'; got {self.domain!r}.")
        if self.backbone == "tinysegnet":
            if self.backbone_weights is not None:
                raise ValueError("SegmenterConfig: backbone_weights only apply to a timm backbone.")
        else:
            import timm

            if not timm.is_model(self.backbone):
                raise ValueError(f"SegmenterConfig: backbone must be 'tinysegnet' or a timm model name; got "
                                 f"{self.backbone!r}.")
            if self.backbone_weights is not None and not Path(self.backbone_weights).is_file():
                raise FileNotFoundError(f"SegmenterConfig: backbone_weights file not found: {self.backbone_weights}")

    def key(self) -> str:
        """Short stable hash of the settings and the recipe version (the default TinySegNet backbone keeps the keys
        it had before backbones were selectable, so existing caches stay valid)."""
        settings = asdict(self)
        if self.backbone == "tinysegnet":
            del settings["backbone"], settings["backbone_weights"]
        elif self.backbone_weights is not None:
            settings["backbone_weights"] = hashlib.sha256(Path(self.backbone_weights).read_bytes()).hexdigest()
        text = json.dumps({**settings, "recipe": _RECIPE_VERSION}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _toy_photos(config: SegmenterConfig) -> tuple[Tensor, Tensor]:
    """Training renders (N, 3, S, S) in [0, 1] and their train ids (N, S, S)."""
    from zoo.data.toy_world import ToyPairedDataset

    data = ToyPairedDataset(length=config.num_images, size=config.image_size, task="sim2photo", split="train",
                            seed=config.data_seed)
    side = "real_b" if config.domain == "photo" else "real_a"
    items = [data[i] for i in range(len(data))]
    images = torch.stack([item[side] for item in items]).add_(1).div_(2)
    return images, torch.stack([item["label"] for item in items])


def _new_segmenter(config: SegmenterConfig, *, load_backbone_weights: bool) -> nn.Module:
    """The untrained network of ``config.backbone``: :class:`~zoo.nets.segmentation.TinySegNet` or a
    :class:`~zoo.nets.segmentation.TimmSegNet` (its backbone weights read from ``config.backbone_weights`` when
    ``load_backbone_weights``)."""
    if config.backbone == "tinysegnet":
        return TinySegNet(num_classes=CITYSCAPES_NUM_CLASSES, width=config.width)
    from zoo.nets.segmentation import TimmSegNet

    weights = config.backbone_weights if load_backbone_weights else None
    return TimmSegNet(config.backbone, num_classes=CITYSCAPES_NUM_CLASSES, decoder_channels=config.width,
                      weights=weights)


def train_toy_segmenter(config: SegmenterConfig | None = None, **settings: Any) -> nn.Module:
    """Trains a :class:`~zoo.nets.segmentation.TinySegNet` (or the timm-backbone network of ``config.backbone``)
    on toy-world renders, deterministically, on the CPU.

    Recipe: cross-entropy (ignore 255) on random batches of the pre-rendered scenes with random horizontal flips,
    Adam with a one-cycle learning-rate schedule. The global RNG is not touched.

    Args:
        config: Training settings (default :class:`SegmenterConfig`); or give them as keyword ``settings``.

    Returns:
        The trained network in eval mode, on the CPU, with ``requires_grad`` off.
    """
    if config is not None and settings:
        raise ValueError("train_toy_segmenter: give either a config or keyword settings, not both.")
    config = config or SegmenterConfig(**settings)
    images, labels = _toy_photos(config)
    generator = torch.Generator().manual_seed(config.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        net = _new_segmenter(config, load_backbone_weights=True)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=config.iterations)
    net.train()
    for _ in range(config.iterations):
        index = torch.randint(0, len(images), (config.batch_size,), generator=generator)
        flip = torch.rand(config.batch_size, generator=generator) < 0.5
        x, y = images[index], labels[index]
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        y = torch.where(flip[:, None, None], y.flip(-1), y)
        loss = F.cross_entropy(net(x), y, ignore_index=_IGNORE)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    return net.eval().requires_grad_(False)


def toy_segmenter_path(config: SegmenterConfig | None = None) -> Path:
    """Cache file of the toy-world segmenter with these settings:
    ``$ZOO_HOME/segmenters/<backbone>_<key>.safetensors`` (``tinysegnet_<key>`` for the default network)."""
    config = config or SegmenterConfig()
    backbone = "".join(c if c.isalnum() or c in "-_" else "-" for c in config.backbone)
    return zoo_home() / "segmenters" / f"{backbone}_{config.key()}.safetensors"


def toy_segmenter(config: SegmenterConfig | None = None, *, cache: bool = True, **settings: Any) -> nn.Module:
    """The toy-world segmenter: loaded from the cache, or trained (and cached) when absent.

    Args:
        config: Training settings (default :class:`SegmenterConfig`: 64 px, photo domain); or keyword ``settings``.
        cache: Read and write :func:`toy_segmenter_path`; False always trains and writes nothing.

    Returns:
        A :class:`~zoo.nets.segmentation.TinySegNet` (a :class:`~zoo.nets.segmentation.TimmSegNet` with a timm
        ``config.backbone``) in eval mode on the CPU; its ``config`` attribute holds the settings
        (``config.image_size`` is the size it expects).
    """
    from safetensors.torch import load_file, save_file

    if config is not None and settings:
        raise ValueError("toy_segmenter: give either a config or keyword settings, not both.")
    config = config or SegmenterConfig(**settings)
    path = toy_segmenter_path(config)
    shipped = SHIPPED_WEIGHTS_DIR / path.name  # the default segmenter ships with zoo: the same scores everywhere
    if shipped.is_file() or (cache and path.is_file()):
        path = shipped if shipped.is_file() else path
        net = _new_segmenter(config, load_backbone_weights=False)  # every weight comes from the file
        try:
            state = load_file(str(path))
            net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
        except Exception as error:  # a truncated or foreign file: say which one
            raise RuntimeError(f"toy_segmenter: cannot load the cached segmenter {path} ({error}); delete the file "
                               f"to retrain it.") from error
        net.eval().requires_grad_(False)
    else:
        net = train_toy_segmenter(config)
        if cache:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(f".{os.getpid()}.tmp")
            save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(partial),
                      metadata={"config": json.dumps(asdict(config)), "recipe": str(_RECIPE_VERSION)})
            os.replace(partial, path)  # atomic: concurrent processes never read half a file
    net.config = config
    return net


# --------------------------------------------------------------------------------------------------------------------
# Evaluation data and a layout-only baseline
# --------------------------------------------------------------------------------------------------------------------


def toy_eval_set(num_images: int = 64, image_size: int = 64, *, split: str = "test",
                 seed: int = 0) -> dict[str, Tensor]:
    """Toy-world scenes rendered both ways, with labels, for scoring sim→photo translation.

    The scenes are those of ``ToyPairedDataset(task="sim2photo", split=split, seed=seed)``, which are also the
    domain-A scenes of ``ToyUnpairedDataset`` / ``UnpairedDataModule(root=None)`` with the same split and seed.

    Returns:
        ``{"sim": (N, 3, S, S), "photo": (N, 3, S, S)}`` in [0, 1] (the same scenes) and
        ``"labels"``: (N, S, S) int64 Cityscapes train ids (255 = ignore).
    """
    from zoo.data.toy_world import ToyPairedDataset

    data = ToyPairedDataset(length=num_images, size=image_size, task="sim2photo", split=split, seed=seed)
    items = [data[i] for i in range(len(data))]
    return {
        "sim": torch.stack([item["real_a"] for item in items]).add_(1).div_(2),
        "photo": torch.stack([item["real_b"] for item in items]).add_(1).div_(2),
        "labels": torch.stack([item["label"] for item in items]),
    }


def position_prior(labels: Tensor, num_classes: int = CITYSCAPES_NUM_CLASSES) -> Tensor:
    """The most frequent class at every pixel position of ``labels`` (N, H, W): a predictor that knows only the
    typical layout (sky on top, road below) and never looks at an image. Its mIoU is the floor a segmenter must beat
    to show that it reads images. Returns (H, W) int64."""
    valid = labels != _IGNORE
    counts = F.one_hot(torch.where(valid, labels, 0).long(), num_classes) * valid[..., None]
    return counts.sum(0).argmax(-1)


# --------------------------------------------------------------------------------------------------------------------
# The metric
# --------------------------------------------------------------------------------------------------------------------


class SemanticConsistency:
    """Mean IoU of a segmentation network's prediction on (translated) images against the source labels.

    Accumulates one confusion matrix over every :meth:`update` (so the score is over all pixels of the data set,
    not an average of per-batch scores) in a torchmetrics ``MulticlassJaccardIndex(num_classes,
    ignore_index=ignore_index)``; :meth:`compute` is its ``average="macro"`` reduction: classes absent from both the
    labels and the predictions are left out of the mean (and so is ``ignore_index`` when it is one of the classes).
    :meth:`per_class` is its ``average=None`` reduction with NaN for those classes.

    Args:
        segmenter: Any callable ``(B, 3, H, W)`` images in [0, 1] → ``(B, num_classes, H, W)`` logits (an
            ``nn.Module`` is put in eval mode and frozen). None: :func:`toy_segmenter` with ``image_size`` (trained on
            first use, then cached).
        num_classes: Number of classes of the labels and the logits (19 Cityscapes train ids).
        ignore_index: Label value left out of the score (255); None scores every pixel.
        image_size: Size images are resized to before segmentation (an int for squares or (H, W)); the logits are
            resized back to the labels' size. None: no resizing (then the logits must match the labels' size). With
            the default segmenter it defaults to the size it was trained at.
        device: Where the segmenter runs (None: the device of the images).
        batch_size: Images segmented at a time inside :meth:`update`.

    Shape:
        :meth:`update`: images ``(B, 3, H, W)`` float in [0, 1], labels ``(B, H, W)`` integer class ids.
    """

    def __init__(
        self,
        segmenter: Segmenter | None = None,
        *,
        num_classes: int = CITYSCAPES_NUM_CLASSES,
        ignore_index: int | None = _IGNORE,
        image_size: int | tuple[int, int] | None = None,
        device: str | torch.device | None = None,
        batch_size: int = 32,
        segmenter_config: SegmenterConfig | None = None,
    ) -> None:
        if segmenter is None:
            config = segmenter_config or SegmenterConfig(
                **({"image_size": image_size} if isinstance(image_size, int) else {}))
            segmenter = toy_segmenter(config)
            image_size = image_size or config.image_size
        elif segmenter_config is not None:
            raise ValueError("SemanticConsistency: segmenter_config only applies to the default toy segmenter.")
        if not callable(segmenter):
            raise TypeError(f"SemanticConsistency: segmenter must be callable; got {type(segmenter).__name__}.")
        if isinstance(segmenter, nn.Module):
            segmenter.eval()
            for parameter in segmenter.parameters():  # (TorchScript modules have no requires_grad_)
                parameter.requires_grad_(False)
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"SemanticConsistency: batch_size must be a positive int; got {batch_size!r}.")
        self.segmenter = segmenter
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.image_size = (image_size, image_size) if isinstance(image_size, int) else image_size
        self.device = torch.device(device) if device is not None else None
        self.batch_size = batch_size
        self._jaccard = _jaccard(num_classes, ignore_index, None)  # accumulates the confusion matrix (on the CPU)

    @property
    def confusion(self) -> Tensor:
        """The accumulated confusion matrix, ``(num_classes, num_classes)`` int64, rows = label, columns =
        prediction, pixels labelled ``ignore_index`` left out."""
        return self._jaccard.confmat

    def reset(self) -> None:
        """Forgets every update."""
        self._jaccard.reset()

    def synced(self) -> Any:
        """Context in which :attr:`confusion` sums every process's updates (under ``torch.distributed``; a no-op
        otherwise)."""
        return self._jaccard.sync_context()

    @torch.inference_mode()
    def predict(self, images: Tensor) -> Tensor:
        """Class map (B, H, W) int64 of images (B, 3, H, W) in [0, 1], at the images' size."""
        if images.ndim != 4 or images.shape[1] != 3 or not images.is_floating_point():
            raise ValueError(f"SemanticConsistency: images must be float (B, 3, H, W) in [0, 1]; got "
                             f"{tuple(images.shape)} {images.dtype}.")
        size = tuple(images.shape[-2:])
        device = self.device or images.device
        if isinstance(self.segmenter, nn.Module):
            self.segmenter.to(device)
        predictions = []
        for chunk in images.split(self.batch_size):
            x = chunk.to(device, torch.float32).clamp(0, 1)
            if self.image_size is not None and tuple(self.image_size) != size:
                x = F.interpolate(x, size=self.image_size, mode="bilinear", align_corners=False, antialias=True)
            logits = self.segmenter(x)
            if logits.ndim != 4 or logits.shape[0] != x.shape[0] or logits.shape[1] != self.num_classes:
                raise ValueError(f"SemanticConsistency: the segmenter must return (B, {self.num_classes}, H, W) "
                                 f"logits; got {tuple(logits.shape)} for input {tuple(x.shape)}.")
            if tuple(logits.shape[-2:]) != size:
                logits = F.interpolate(logits.float(), size=size, mode="bilinear", align_corners=False)
            predictions.append(logits.argmax(1).cpu())
        return torch.cat(predictions)

    def update(self, images: Tensor, labels: Tensor) -> None:
        """Adds images (B, 3, H, W) in [0, 1] and their labels (B, H, W) (class ids, ``ignore_index``) to the score."""
        if labels.ndim != 3 or labels.shape[0] != images.shape[0] or labels.shape[-2:] != images.shape[-2:]:
            raise ValueError(f"SemanticConsistency: labels must be (B, H, W) matching images {tuple(images.shape)}; "
                             f"got {tuple(labels.shape)}.")
        if labels.is_floating_point():
            raise TypeError(f"SemanticConsistency: labels must be integer class ids; got {labels.dtype}.")
        pred = self.predict(images)
        labels = labels.cpu()
        _check_labels(labels, self.num_classes, self.ignore_index)
        self._jaccard.update(pred, labels)

    def compute(self) -> float:
        """Mean IoU in [0, 1] over everything given to :meth:`update` since the last :meth:`reset`."""
        if not int(self.confusion.sum()):
            raise RuntimeError("SemanticConsistency.compute: no labelled pixel was given to update() yet.")
        return mean_iou(self.confusion, self.ignore_index)

    def pixel_accuracy(self) -> float:
        """Pixel accuracy in [0, 1] (the share of labelled pixels segmented as their label, ``ignore_index`` left
        out) over everything given to :meth:`update` since the last :meth:`reset`: from the same confusion matrix as
        :meth:`compute`."""
        if not int(self.confusion.sum()):
            raise RuntimeError("SemanticConsistency.pixel_accuracy: no labelled pixel was given to update() yet.")
        return pixel_accuracy(self.confusion)

    def per_class(self) -> Tensor:
        """IoU per class, ``(num_classes,)``, NaN for classes absent from labels and predictions (and for
        ``ignore_index`` when it is one of the classes)."""
        return per_class_iou(self.confusion, self.ignore_index)

    def score(self, images: Tensor, labels: Tensor) -> float:
        """:meth:`reset`, :meth:`update` and :meth:`compute` in one call."""
        self.reset()
        self.update(images, labels)
        return self.compute()

    def score_translation(
        self,
        translate: Callable[[Tensor], Tensor] | Any,
        images: Tensor | Iterable[tuple[Tensor, Tensor]],
        labels: Tensor | None = None,
        *,
        batch_size: int = 16,
        **translate_kwargs: Any,
    ) -> float:
        """Translates source images and scores the result against the source labels.

        Args:
            translate: A zoo model (its ``translate(images, **translate_kwargs)`` is used) or any callable
                ``(B, 3, H, W) [0, 1] -> (B, 3, H', W') [0, 1]``; outputs of another size are resized to the labels.
            images: Source images (N, 3, H, W) in [0, 1] with ``labels`` (N, H, W); or an iterable of
                ``(images, labels)`` batches (then ``labels`` is None).
            batch_size: Images translated at a time when ``images`` is a tensor.
            translate_kwargs: Passed to ``translate`` (e.g. ``direction="a2b"``, ``seed=0``).

        Returns:
            Mean IoU in [0, 1]; :meth:`per_class` then holds the per-class IoU.
        """
        fn = translate.translate if hasattr(translate, "translate") else translate
        if isinstance(images, Tensor):
            if labels is None:
                raise ValueError("SemanticConsistency.score_translation: labels are required with an image tensor.")
            batches: Iterable[tuple[Tensor, Tensor]] = zip(
                images.split(batch_size), labels.split(batch_size), strict=True)
        elif labels is not None:
            raise ValueError("SemanticConsistency.score_translation: give labels inside the batches, not separately.")
        else:
            batches = images
        self.reset()
        for x, y in batches:
            out = fn(x, **translate_kwargs)
            if tuple(out.shape[-2:]) != tuple(y.shape[-2:]):
                out = F.interpolate(out.float(), size=tuple(y.shape[-2:]), mode="bilinear", align_corners=False,
                                    antialias=True)
            self.update(out, y)
        return self.compute()

    def report(self, class_names: Mapping[int, str] | None = None) -> dict[str, float]:
        """``{"mIoU": ..., "<class name>": IoU, ...}`` for the classes present (Cityscapes names by default)."""
        if class_names is None:
            from zoo.data.toy_world import CITYSCAPES_CLASSES

            class_names = {c.train_id: c.name for c in CITYSCAPES_CLASSES if c.train_id != _IGNORE}
        iou = self.per_class()
        result = {"mIoU": self.compute()}
        result.update({class_names.get(i, str(i)): float(v) for i, v in enumerate(iou.tolist()) if v == v})
        return result
