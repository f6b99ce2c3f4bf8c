"""The metrics papers report for a translation, by name, accumulated batch by batch (and across processes).

:class:`TranslationMetrics` holds any of :data:`METRIC_NAMES` and is fed translated images with whatever each metric
compares them to:

==============  ================================================  ==============================================
name            what it needs besides the translations            reported as
==============  ================================================  ==============================================
fid             real images of the target domain (any number)     ``fid``
kid             real images of the target domain                  ``kid``, ``kid_std``
fd_dinov2       real images of the target domain                  ``fd_dinov2``
lpips           the aligned target of each translation            ``lpips`` (mean LPIPS v0.1, lower is closer)
psnr, ssim      the aligned target of each translation            ``psnr`` (dB), ``ssim`` (means over images)
miou            the class labels of the source image              ``miou`` (semantic consistency, in [0, 1])
pixel_accuracy  the class labels of the source image              ``pixel_accuracy`` (in [0, 1])
==============  ================================================  ==============================================

``miou`` and ``pixel_accuracy`` segment the translations once and share one confusion matrix (Cityscapes train ids,
255 ignored): the FCN-score of pix2pix and the segmentation protocol of pix2pixHD for label map -> photo.

Diversity (MUNIT / DRIT++) needs the model itself, not images: see :func:`zoo.metrics.diversity`.

Every state is a torchmetrics state (features are concatenated, sums and confusion matrices summed across
processes), so under DDP each rank updates with its own batches and :meth:`TranslationMetrics.compute` returns
the values over the whole data set on every rank. Feature networks are created on first use of a metric that
needs them, resolved offline-first through :mod:`zoo.weights`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric

from zoo.metrics.distribution import FrechetDistance, KernelDistance
from zoo.metrics.features import DINOv2Features, InceptionFeatures, ResizeMode
from zoo.metrics.image_quality import psnr, ssim
from zoo.metrics.lpips import LPIPS, LPIPSNet, MeanLPIPS
from zoo.metrics.report import quantize
from zoo.metrics.semantic import CITYSCAPES_NUM_CLASSES, SemanticConsistency, pixel_accuracy

__all__ = ["DISTRIBUTION_METRICS", "LABEL_METRICS", "METRIC_NAMES", "PAIRED_METRICS", "MetricInputs",
           "TranslationMetrics", "aligned_inputs", "parse_metric_names", "translate_for_metrics"]

DISTRIBUTION_METRICS = ("fid", "kid", "fd_dinov2")
PAIRED_METRICS = ("lpips", "psnr", "ssim")
LABEL_METRICS = ("miou", "pixel_accuracy")
#: Every metric :class:`TranslationMetrics` computes, in report order.
METRIC_NAMES = DISTRIBUTION_METRICS + PAIRED_METRICS + LABEL_METRICS


def parse_metric_names(names: str | Iterable[str], *, allowed: Iterable[str] = METRIC_NAMES) -> tuple[str, ...]:
    """``"fid,kid"`` or ``["fid", "kid"]`` -> ``("fid", "kid")``, checked against ``allowed`` (one clear error)."""
    items = [n.strip().lower() for n in (names.split(",") if isinstance(names, str) else names) if n.strip()]
    allowed = tuple(allowed)
    unknown = [n for n in items if n not in allowed]
    if unknown:
        raise ValueError(f"unknown metric{'s' * (len(unknown) > 1)} {', '.join(map(repr, unknown))}; choose from "
                         f"{', '.join(allowed)}")
    if not items:
        raise ValueError(f"no metric named; choose from {', '.join(allowed)}")
    return tuple(dict.fromkeys(items))


class MetricInputs(NamedTuple):
    """One batch ready for :meth:`TranslationMetrics.update`: images in [0, 1], ``None`` where not available.

    ``fake``: translations ``(B, C, H', W')``; ``real``: real images of the target domain (the batch's other side);
    ``target``: the aligned target of each translation (paired and super-resolution data); ``labels``: ``(B, H, W)``
    class ids of the source images.
    """

    fake: Tensor
    real: Tensor | None
    target: Tensor | None
    labels: Tensor | None


def translate_for_metrics(model: Any, batch: dict[str, Any], *, direction: str = "a2b", paired: bool = False,
                          seed: int | None = 0) -> MetricInputs:
    """Translate a data-module batch for the metrics, in the given direction.

    Args:
        model: a zoo method (its ``translate``; exemplar-guided methods get the batch's target-domain images as
            exemplars, masks where the batch has them; the inputs of ``model.ALIGNED_INPUTS`` the batch has, e.g.
            pix2pixHD's ``instance`` maps, are passed as they are).
        batch: ``real_a`` (and usually ``real_b``) (B, C, H, W) in [-1, 1]; optionally class maps (B, H, W)
            ``label_a``/``label_b`` (or ``label``, the one scene of a paired item), masks ``mask_a``/``mask_b`` and
            aligned inputs (``instance``). Without the other side (label maps whose photos are not published),
            ``real`` and ``target`` are None.
        direction: ``"a2b"`` (A -> B, compared with B) or ``"b2a"``.
        paired: whether ``real_b`` is the aligned target of ``real_a`` (paired and super-resolution data).
        seed: seed of any sampling (multimodal styles): evaluations repeat exactly.

    Returns:
        :class:`MetricInputs`.
    """
    source_key, other_key = ("real_a", "real_b") if direction == "a2b" else ("real_b", "real_a")
    source = (batch[source_key] + 1) / 2
    other = (batch[other_key] + 1) / 2 if other_key in batch else None
    conditions: dict[str, Any] = {keyword: batch[key] for keyword, key in aligned_inputs(model).items() if key in batch}
    if getattr(model, "requires_exemplar", False):
        conditions["exemplar"] = other
        side, other_side = source_key[-1], other_key[-1]
        if f"mask_{side}" in batch and f"mask_{other_side}" in batch:
            conditions["mask"], conditions["exemplar_mask"] = batch[f"mask_{side}"], batch[f"mask_{other_side}"]
    with torch.no_grad():
        fake = model.translate(source, direction=direction, seed=seed, **conditions)
    labels = batch.get(f"label_{source_key[-1]}", batch.get("label"))  # "label": the one scene of a paired item
    return MetricInputs(fake.float().clamp(0, 1), other, other if paired else None, labels)


def aligned_inputs(model: Any) -> dict[str, str]:
    """``model.ALIGNED_INPUTS``: ``translate`` keyword -> batch key of an input aligned pixel for pixel with the
    images (pix2pixHD: ``{"instance": "instance"}``); empty for models without any (and non-zoo modules)."""
    return dict(getattr(model, "ALIGNED_INPUTS", None) or {})


class _Features(nn.Module):
    """Collects the features of real and translated images for the Fréchet and kernel distances of one network."""

    def __init__(self, extractor: nn.Module) -> None:
        super().__init__()
        self.extractor = extractor
        self.frechet = FrechetDistance()
        self.kernel: KernelDistance | None = None

    def update(self, images: Tensor, real: bool) -> None:
        with torch.no_grad():
            features = self.extractor(images).reshape(images.shape[0], -1)
        self.frechet.update(features, real=real)
        if self.kernel is not None:
            self.kernel.update(features, real=real)


class TranslationMetrics(nn.Module):
    """Named metrics of translated images, accumulated over batches and processes.

    Args:
        names: metrics to compute, from :data:`METRIC_NAMES`.
        resize: resize protocol of the FID Inception (:mod:`zoo.metrics.features`), recorded in :meth:`protocol`.
        inception_weights: ``"pytorch-fid"`` (published file), a path, or ``None`` (random weights: plumbing only).
        dinov2_weights: ``"timm"`` (published file), a path, or ``None`` (random weights).
        dinov2_options: extra arguments of :class:`~zoo.metrics.features.DINOv2Features` (``arch``, test sizes).
        kid_subsets, kid_subset_size: KID's subset draws (the subset size is capped at the samples available).
        lpips_net: ``"alex"`` or ``"vgg"`` (pretrained), or an :class:`~zoo.metrics.lpips.LPIPS` network.
        segmenter: for ``miou`` and ``pixel_accuracy``: a callable ``(B, 3, H, W) [0, 1] -> (B, num_classes, H, W)``
            logits, or ``None`` for the toy-world segmenter (:func:`zoo.metrics.toy_segmenter`).
        num_classes: classes of the labels (``miou``, ``pixel_accuracy``).
        crop_border, y_channel: PSNR/SSIM options (SR papers: the scale factor and ``True``).

    Shapes:
        :meth:`update`: ``fake`` ``(B, 3, H, W)`` in [0, 1]; ``real`` ``(B', 3, H', W')`` in [0, 1]; ``target`` like
        ``fake``; ``labels`` ``(B, H, W)`` integer class ids of the source images.
    """

    def __init__(
        self,
        names: str | Iterable[str],
        *,
        resize: ResizeMode = "clean",
        inception_weights: str | None = "pytorch-fid",
        dinov2_weights: str | None = "timm",
        dinov2_options: dict[str, Any] | None = None,
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        lpips_net: LPIPSNet | LPIPS = "alex",
        segmenter: Any = None,
        num_classes: int = CITYSCAPES_NUM_CLASSES,
        crop_border: int = 0,
        y_channel: bool = False,
    ) -> None:
        super().__init__()
        self.names = parse_metric_names(names)
        self.kid_subsets, self.kid_subset_size = kid_subsets, kid_subset_size
        self.crop_border, self.y_channel = crop_border, y_channel
        self.inception: _Features | None = None
        self.dinov2: _Features | None = None
        if {"fid", "kid"} & set(self.names):
            self.inception = _Features(InceptionFeatures(inception_weights, resize=resize))
            if "kid" in self.names:
                self.inception.kernel = KernelDistance(subsets=kid_subsets, subset_size=kid_subset_size)
        if "fd_dinov2" in self.names:
            self.dinov2 = _Features(DINOv2Features(dinov2_weights, **(dinov2_options or {})))
        self.lpips = MeanLPIPS(lpips_net) if "lpips" in self.names else None
        self.psnr = MeanMetric() if "psnr" in self.names else None
        self.ssim = MeanMetric() if "ssim" in self.names else None
        self.semantic = (SemanticConsistency(segmenter, num_classes=num_classes) if self.needs_labels else None)
        self._counts = {"real": 0, "fake": 0, "pairs": 0, "labelled": 0}

    @property
    def needs_real(self) -> bool:
        """Whether a metric compares the translations with a set of real target images."""
        return any(n in DISTRIBUTION_METRICS for n in self.names)

    @property
    def needs_target(self) -> bool:
        """Whether a metric compares each translation with its aligned target."""
        return any(n in PAIRED_METRICS for n in self.names)

    @property
    def needs_labels(self) -> bool:
        """Whether a metric needs the source images' class labels."""
        return any(n in LABEL_METRICS for n in self.names)

    def reset(self) -> None:
        """Forget every update."""
        for metric in self.modules():
            if hasattr(metric, "reset") and metric is not self:
                metric.reset()
        if self.semantic is not None:  # not an nn.Module, so not among self.modules()
            self.semantic.reset()
        self._counts = dict.fromkeys(self._counts, 0)

    def update(self, fake: Tensor, *, real: Tensor | None = None, target: Tensor | None = None,
               labels: Tensor | None = None) -> None:
        """Add a batch of translations and whatever the chosen metrics compare them with (all in [0, 1])."""
        fake = fake.detach().float().clamp(0, 1)
        for features in (self.inception, self.dinov2):
            if features is not None:
                features.update(fake, real=False)
                if real is not None:
                    features.update(real.detach().float().clamp(0, 1), real=True)
        self._counts["fake"] += fake.shape[0]
        if real is not None:
            self._counts["real"] += real.shape[0]
        if target is not None and self.needs_target:
            target = target.detach().float().clamp(0, 1)
            if target.shape != fake.shape:
                raise ValueError(f"target {tuple(target.shape)} must have the shape of the translations "
                                 f"{tuple(fake.shape)}")
            if self.lpips is not None:
                self.lpips.update(fake, target)
            pred, truth = quantize(fake, (0.0, 1.0)), quantize(target, (0.0, 1.0))
            for metric, fn in ((self.psnr, psnr), (self.ssim, ssim)):
                if metric is not None:
                    values = torch.as_tensor(fn(pred, truth, crop_border=self.crop_border, y_channel=self.y_channel))
                    metric.update(values.reshape(-1).to(metric.device, torch.float32))
            self._counts["pairs"] += fake.shape[0]
        if labels is not None and self.semantic is not None:
            self.semantic.update(fake, labels)
            self._counts["labelled"] += fake.shape[0]

    def compute(self) -> dict[str, float]:
        """Values of every metric that received what it needs (over all processes); the others are left out and
        named in :meth:`missing`."""
        result: dict[str, float] = {}
        for name, features in (("fid", self.inception), ("fd_dinov2", self.dinov2)):
            if features is None or not self._has_both(features.frechet):
                continue
            if name in self.names:
                result[name] = float(features.frechet.compute())
            if name == "fid" and features.kernel is not None:
                mean, std = features.kernel.compute()
                result["kid"], result["kid_std"] = float(mean), float(std)
        if self.lpips is not None and int(self.lpips.num_pairs) > 0:
            result["lpips"] = float(self.lpips.compute())
        for name, metric in (("psnr", self.psnr), ("ssim", self.ssim)):
            if metric is not None and self._counts["pairs"]:
                result[name] = float(metric.compute())
        if self.semantic is not None and self._counts["labelled"]:
            with self.semantic.synced():
                if "miou" in self.names:
                    result["miou"] = self.semantic.compute()
                if "pixel_accuracy" in self.names:
                    result["pixel_accuracy"] = pixel_accuracy(self.semantic.confusion)
        return result

    def _has_both(self, metric: FrechetDistance) -> bool:
        return bool(metric.real_features) and bool(metric.fake_features)

    def per_class_iou(self) -> dict[str, float]:
        """IoU of each class present in the labels or predictions (Cityscapes names by default), over all processes;
        empty without ``miou`` or labelled images."""
        if self.semantic is None or "miou" not in self.names or not self._counts["labelled"]:
            return {}
        with self.semantic.synced():
            report = self.semantic.report()
        report.pop("mIoU")
        return report

    def missing(self) -> dict[str, str]:
        """Chosen metrics this process has no input for, with what they need."""
        needs = {**dict.fromkeys(DISTRIBUTION_METRICS, ("real", "real images of the target domain")),
                 **dict.fromkeys(PAIRED_METRICS, ("pairs", "aligned target images")),
                 **dict.fromkeys(LABEL_METRICS, ("labelled", "class labels of the source images"))}
        return {name: needs[name][1] for name in self.names if not self._counts[needs[name][0]]}

    def protocol(self) -> dict[str, Any]:
        """How each number was measured (networks, weights and their sha256, resize, options)."""
        out: dict[str, Any] = {}
        if self.inception is not None:
            out["inception"] = self.inception.extractor.protocol()
        if "kid" in self.names:
            out["kid"] = {"subsets": self.kid_subsets, "subset_size": self.kid_subset_size, "degree": 3,
                          "gamma": "1 / feature dim", "coef0": 1}
        if self.dinov2 is not None:
            out["dinov2"] = self.dinov2.extractor.protocol()
        if self.lpips is not None:
            out["lpips"] = self.lpips.network.protocol()
        if self.psnr is not None or self.ssim is not None:
            out["psnr_ssim"] = {"quantize": "uint8", "crop_border": self.crop_border,
                                "y_channel": self.y_channel}
        if self.semantic is not None:
            out["miou"] = {"segmenter": type(self.semantic.segmenter).__name__,
                           "num_classes": self.semantic.num_classes, "ignore_index": self.semantic.ignore_index}
        return out

    def sample_counts(self) -> dict[str, int]:
        """Images seen by this process: real target images, translations, aligned pairs, labelled translations."""
        return dict(self._counts)
