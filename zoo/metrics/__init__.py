"""Image-quality and semantic-consistency metrics.

- :func:`psnr`, :func:`ssim`: MATLAB-compatible (BT.601 studio-range Y, border shave, Wang et al. SSIM), as the
  super-resolution literature computes them.
- :class:`SRMetrics`: per-image values, means, a printable table and rank gathering for SR methods' ``test_step``.
- :class:`SemanticConsistency`: mIoU of a segmentation network on translated images against the source labels (does a
  translation keep the semantics?), with a toy-world segmenter trained in seconds or any user-given model.
- :func:`frechet_distance`, :func:`kernel_inception_distance` (FID / KID on Inception features) and their
  accumulating torchmetrics modules :class:`FrechetDistance`, :class:`KernelDistance`.
- :class:`LPIPS`, :func:`lpips_distance` (LPIPS v0.1, Zhang et al. 2018; images in [0, 1]), its accumulating
  torchmetrics module :class:`MeanLPIPS`, and :func:`diversity`, the MUNIT / DRIT++ multimodal-diversity score.
- :class:`InceptionFeatures` (FID's network behind a named resize protocol: ``clean``, ``legacy-tensorflow``,
  ``legacy-pytorch``), :class:`DINOv2Features` (FD-DINOv2 through timm) and :class:`PooledFeatures` (any network's
  layer, e.g. a target-domain segmenter's).
- :class:`TranslationMetrics`: any of FID, KID, FD-DINOv2, LPIPS, PSNR, SSIM and mIoU by name, accumulated over
  batches and processes, with the protocol of every number (what ``zoo evaluate`` and
  :class:`zoo.callbacks.MetricsCallback` use).
"""

from .distribution import FrechetDistance, KernelDistance, frechet_distance, kernel_inception_distance
from .features import DINOv2Features, InceptionFeatures, PooledFeatures
from .image_quality import psnr, rgb_to_y, ssim, to_luma_or_gray
from .lpips import LPIPS, MeanLPIPS, diversity, lpips_distance
from .report import SRMetrics, quantize
from .semantic import SegmenterConfig, SemanticConsistency, toy_eval_set, toy_segmenter, train_toy_segmenter
from .translation import METRIC_NAMES, TranslationMetrics, parse_metric_names

__all__ = [
    "SRMetrics",
    "SegmenterConfig",
    "SemanticConsistency",
    "psnr",
    "quantize",
    "rgb_to_y",
    "ssim",
    "to_luma_or_gray",
    "toy_eval_set",
    "toy_segmenter",
    "train_toy_segmenter",
]
__all__ += ["FrechetDistance", "KernelDistance", "frechet_distance", "kernel_inception_distance"]
__all__ += ["LPIPS", "MeanLPIPS", "diversity", "lpips_distance"]
__all__ += ["DINOv2Features", "InceptionFeatures", "PooledFeatures"]
__all__ += ["METRIC_NAMES", "TranslationMetrics", "parse_metric_names"]
