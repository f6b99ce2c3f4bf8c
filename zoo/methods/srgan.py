"""SRResNet and SRGAN: single-image super-resolution with a perceptual (VGG + adversarial) loss.

Paper: C. Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a Generative Adversarial Network",
CVPR 2017, https://arxiv.org/abs/1609.04802. The authors released no code; the networks, the key layout and the
order of operations follow the most paper-faithful PyTorch port, Lornatang/SRGAN-PyTorch (commit 8842030), whose
``model.py`` produced the parity fixtures (``tests/parity/test_srgan.py``), so its published checkpoints load through
:meth:`SRResNet.load_official_weights`.

Two registered methods, trained one after the other as in the paper (Sec. 3.2):

* ``srresnet``: the generator alone, trained with the pixel MSE (SRResNet-MSE: 1e6 iterations at lr 1e-4).
  ``lambda_content`` > 0 with ``vgg_layers=["vgg22"]`` and ``lambda_tv=2e-8`` gives SRResNet-VGG22.
* ``srgan``: the generator initialised from a trained SRResNet (``init_from``), against the VGG-style discriminator;
  ``l = l_VGG54 + 1e-3 l_adv`` (paper Eq. 3), 1e5 iterations at lr 1e-4 then 1e5 at 1e-5. ``vgg_layers=["vgg22"]``
  gives SRGAN-VGG22; ``lambda_content=0, lambda_pixel=1`` gives SRGAN-MSE.

Faithful to the paper by default: LR input in [0, 1] and HR output/targets in [-1, 1] (``hr_range="symmetric"``),
MSE computed in [-1, 1], a linear last convolution (Figure 4), VGG19 relu5_4 features (after the ReLU) rescaled by
1/12.75, the non-saturating adversarial loss -log D(G(x)) on logits, Adam beta1 0.9, x0.1 learning-rate drop, one G
step and one D step per iteration. The port's recipe is one switch set away (``init_args_from_official`` fills them
in): ``hr_range="unit"`` with ``output_activation="clamp"`` (HR in [0, 1], output clamped), ``vgg_feature_scale=1``
and ``lambda_pixel=1`` (its G loss is 1 MSE + 1 VGG54 + 0.001 adversarial), ``detach_content=True`` (its content loss
is accidentally detached: no VGG gradient reaches G). Like the port, G steps first and D stays in train mode while
frozen for the G step (its BatchNorm statistics move on D(G(x))); ``update_order="d_first"`` follows Goodfellow's
Algorithm 1 instead. Test-time BatchNorm uses the running statistics.

Batches are zoo's SR batches: ``real_a`` LR (B, C, h, w) and ``real_b`` HR (B, C, s*h, s*w), both in [-1, 1]; the
LR is mapped to [0, 1] before the generator as the paper prescribes.

Configs: ``configs/srresnet.yaml``, ``configs/srgan.yaml`` (paper settings), ``configs/tiny/srresnet.yaml``,
``configs/tiny/srgan.yaml``.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor, nn

from zoo.compile import CompileSetting
from zoo.losses import check_finite
from zoo.losses.segmenter_content import SegmenterContentLoss, content_network_choice
from zoo.losses.vgg_content import IMAGENET_MEAN, IMAGENET_STD, VGGArch, VGGContentLoss
from zoo.methods._common import StepOutput, adam, backward, check_images, iteration_index, set_requires_grad
from zoo.methods._inference import InferenceModule, frozen_copy
from zoo.methods.base import ChannelsLast, LRStepPoint, TranslationMethod
from zoo.metrics.image_quality import psnr
from zoo.metrics.report import SRMetrics, quantize
from zoo.nets.srresnet import OutputActivation, SRGANDiscriminator, SRResNetGenerator
from zoo.registry import PretrainedEntry, register_method, register_pretrained

__all__ = ["SRGAN", "SRResNet", "total_variation"]

HRRange = Literal["symmetric", "unit"]
LRInterval = Literal["iteration", "epoch"]
ContentNetwork = Literal["vgg", "toy_segmenter", "auto"]


def _upcast(x: Tensor) -> Tensor:
    """Losses reduce in at least float32 under autocast; float64 (parity runs) stays float64."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _bce_logits(logits: Tensor, real: bool) -> Tensor:
    """BCE-with-logits against a constant label: ``-log D`` for ``real=True`` (the non-saturating G loss)."""
    logits = _upcast(logits)
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, 1.0 if real else 0.0))


def total_variation(x: Tensor) -> Tensor:
    """Squared total variation, mean over neighbouring pixel pairs: ``mean(dx^2) + mean(dy^2)``.

    The paper adds it (weight 2e-8) only to SRResNet-VGG22 (Sec. 3.4) and does not define it further.

    Shape: (B, C, H, W) -> 0-d.
    """
    x = _upcast(x)
    return (x[..., 1:, :] - x[..., :-1, :]).pow(2).mean() + (x[..., :, 1:] - x[..., :, :-1]).pow(2).mean()


# --------------------------------------------------------------------------------------------------------------------
# Official configurations (Lornatang/SRGAN-PyTorch): manifest-style constructor blocks or the port's YAML files
# --------------------------------------------------------------------------------------------------------------------


def _lower_keys(d: Any) -> Any:
    return {str(k).lower(): _lower_keys(v) for k, v in d.items()} if isinstance(d, dict) else d


def official_init_args(config: dict[str, Any]) -> dict[str, Any]:
    """zoo arguments (a superset for :class:`SRGAN`) from an official configuration.

    Accepts the generator's constructor arguments (``in_channels``, ``out_channels``, ``channels``, ``num_rcb``,
    ``upscale``), a block ``{"g": ..., "d": ..., "content_loss": ..., "loss_weights": ...}`` as in the parity
    manifest, or a parsed ``configs/train/*.yaml`` of the port (``SCALE``, ``MODEL.G/D/EMA``, ``TRAIN.OPTIM``,
    ``TRAIN.LR_SCHEDULER``, ``TRAIN.LOSSES``, ``TRAIN.DATASET.GT_IMAGE_SIZE``). The port's value ranges and loss
    scaling come with it: HR in [0, 1], clamped output, unscaled VGG features. The content loss stays differentiable
    (as in the fixtures and the port before late 2022); add ``detach_content=True`` for the current upstream code,
    whose ``ContentLoss`` returns its values in a new, detached tensor.
    """
    c = _lower_keys(config)
    args: dict[str, Any] = {"hr_range": "unit", "output_activation": "clamp", "vgg_feature_scale": 1.0,
                            "lambda_pixel": 1.0}
    model, train = c.get("model", {}), c.get("train", {})
    g = c.get("g", model.get("g", c if "num_rcb" in c or "upscale" in c else {}))
    d = c.get("d", model.get("d", {}))
    for ours, theirs in (("in_channels", "in_channels"), ("out_channels", "out_channels"), ("channels", "channels"),
                         ("num_rcb", "num_rcb"), ("scale", "upscale")):
        if theirs in g:
            args[ours] = g[theirs]
    if "scale" in c:
        args["scale"] = c["scale"]
    name = str(g.get("name", ""))
    if "scale" not in args and name.startswith("srresnet_x"):
        args["scale"] = int(name.removeprefix("srresnet_x"))
    if "channels" in d:
        args["d_channels"] = d["channels"]
    if "out_channels" in d:
        args["d_out_channels"] = d["out_channels"]
    size = train.get("dataset", {}).get("gt_image_size")
    if size is not None:
        args["image_size"] = size
    losses = train.get("losses", {})
    content = c.get("content_loss", losses.get("content_loss", {}))
    if content:
        args["vgg_layers"] = list(content.get("feature_nodes", ["features.35"]))
        args["vgg_arch"] = content.get("net_cfg_name", "vgg19")
        args["vgg_batch_norm"] = bool(content.get("batch_norm", False))
        args["vgg_mean"] = list(content.get("feature_normalize_mean", IMAGENET_MEAN))
        args["vgg_std"] = list(content.get("feature_normalize_std", IMAGENET_STD))
        path = content.get("model_weights_path")
        if isinstance(path, str) and not path.startswith("<"):
            args["vgg_weights"] = path or "imagenet"  # "" = torchvision's ImageNet weights in the port
    weights = dict(c.get("loss_weights", {}))
    for key, theirs in (("pixel", "pixel_loss"), ("content", "content_loss"), ("adversarial", "adversarial_loss")):
        if theirs in losses and "weight" in losses[theirs]:
            weights[key] = losses[theirs]["weight"][0]
    for key, ours in (("pixel", "lambda_pixel"), ("content", "lambda_content"), ("adversarial", "lambda_adv")):
        if key in weights:
            args[ours] = float(weights[key])
    if "pixel_loss" in losses and "content_loss" not in losses:
        args["lambda_content"] = 0.0
    optim = train.get("optim", {})
    for ours, theirs in (("lr", "lr"), ("eps", "eps"), ("weight_decay", "weight_decay")):
        if theirs in optim:
            args[ours] = float(optim[theirs])
    if "betas" in optim:
        args["beta1"], args["beta2"] = (float(b) for b in optim["betas"])
    sched = train.get("lr_scheduler", {})
    if sched:
        if sched.get("name", "MultiStepLR") != "MultiStepLR":
            raise ValueError(f"unsupported official LR scheduler {sched.get('name')!r} (only MultiStepLR)")
        args.update(lr_milestones=[int(m) for m in sched.get("milestones", [])], lr_gamma=float(sched["gamma"]),
                    lr_interval="epoch")
    elif train:
        args["lr_milestones"] = []
    ema = model.get("ema", {})
    if ema.get("enable"):
        # the port averages as (1 - decay) * avg + decay * param, i.e. zoo's EMA with decay 1 - DECAY
        args["ema_decay"] = 1.0 - float(ema.get("decay", 0.999))
    return args


# --------------------------------------------------------------------------------------------------------------------
# The super-resolution side of the method contract, shared by both methods: functions, set as their methods below
# --------------------------------------------------------------------------------------------------------------------


def _lr_to_generator(real_a: Tensor) -> Tensor:
    """Batch LR in [-1, 1] -> the generator's input range [0, 1] (paper Sec. 3.2); any shape."""
    return (real_a + 1) / 2


def _hr_to_model(hr: Tensor, hr_range: HRRange) -> Tensor:
    """Generator output / targets in ``hr_range`` -> [-1, 1]; any shape."""
    return hr * 2 - 1 if hr_range == "unit" else hr


def _model_to_hr(x: Tensor, hr_range: HRRange) -> Tensor:
    """[-1, 1] -> ``hr_range`` (the range of the generator's output and of the losses); any shape."""
    return (x + 1) / 2 if hr_range == "unit" else x


def _build_generator_side(model: SRResNet | SRGAN) -> None:
    """Check the options both methods share and build ``generator`` and ``content_loss`` (None without a VGG term)."""
    h = model.hparams
    if h.hr_range not in ("symmetric", "unit"):
        raise ValueError(f"hr_range must be 'symmetric' (paper) or 'unit' (port); got {h.hr_range!r}")
    if h.output_activation == "clamp" and h.hr_range != "unit":
        raise ValueError("output_activation='clamp' clamps to [0, 1]: it needs hr_range='unit'")
    if h.output_activation == "tanh" and h.hr_range != "symmetric":
        raise ValueError("output_activation='tanh' produces [-1, 1]: it needs hr_range='symmetric'")
    if h.lr_interval not in ("iteration", "epoch"):
        raise ValueError(f"lr_interval must be 'iteration' or 'epoch'; got {h.lr_interval!r}")
    model.scale = h.scale
    model.generator = SRResNetGenerator(in_channels=h.in_channels, out_channels=h.out_channels, channels=h.channels,
                                        num_rcb=h.num_rcb, upscale=h.scale, prelu_per_channel=h.prelu_per_channel,
                                        output_activation=h.output_activation)
    model.content_loss = None
    model.content_network_used = model.content_network_reason = None
    if h.lambda_content > 0:
        network, why = content_network_choice(h.get("content_network", "vgg"), h.vgg_weights, h.vgg_arch,
                                               h.vgg_batch_norm)
        if h.get("content_network") == "auto":
            rank_zero_info(f"{type(model).__name__}: content loss on {network} features ({why})")
        model.content_network_used, model.content_network_reason = network, why
        if network == "toy_segmenter":
            model.content_loss = SegmenterContentLoss(input_range=h.hr_range, detach=h.detach_content)
        else:
            model.content_loss = VGGContentLoss(
                layers=tuple(h.vgg_layers), arch=h.vgg_arch, batch_norm=h.vgg_batch_norm, weights=h.vgg_weights,
                feature_scale=h.vgg_feature_scale, input_range=h.hr_range, mean=tuple(h.vgg_mean),
                std=tuple(h.vgg_std), detach=h.detach_content)
    model.test_metrics = None


def _generator_inputs(model: SRResNet | SRGAN, real_a: Tensor, real_b: Tensor) -> tuple[Tensor, Tensor]:
    """Batch LR (B, C_in, h, w) and HR (B, C_out, s*h, s*w) in [-1, 1] -> LR in [0, 1] and HR in ``hr_range``."""
    if real_b.shape[-2:] != (real_a.shape[-2] * model.scale, real_a.shape[-1] * model.scale):
        raise ValueError(f"HR {tuple(real_b.shape)} is not {model.scale}x the LR {tuple(real_a.shape)}")
    return _lr_to_generator(real_a), _model_to_hr(real_b, model.hparams.hr_range)


def _reconstruction_losses(model: SRResNet | SRGAN, sr: Tensor, hr: Tensor) -> dict[str, Tensor]:
    """Unweighted content terms with a non-zero weight. ``sr``, ``hr``: (B, C, H, W) in ``hr_range``.

    ``g_pixel``: MSE (paper Eq. 4); ``g_content``: VGG loss incl. the 1/12.75^2 rescaling (Eq. 5);
    ``g_tv``: total variation.
    """
    h, terms = model.hparams, {}
    if h.lambda_pixel > 0:
        terms["g_pixel"] = F.mse_loss(_upcast(sr), _upcast(hr))
    if model.content_loss is not None:
        terms["g_content"] = model.content_loss(sr, hr)
    if h.lambda_tv > 0:
        terms["g_tv"] = total_variation(sr)
    return terms


def _generator_update(model: SRResNet | SRGAN, terms: dict[str, Tensor], opt_g: Any, iteration: int,
                      epoch: int | None) -> dict[str, Tensor]:
    """Weight the unweighted G ``terms`` (0-d) by ``loss_weights``, add ``g_total``, step G on it, update the EMA.

    Returns:
        The weighted terms and ``g_total``.
    """
    weights = model.loss_weights
    losses = {name: weights[name] * value for name, value in terms.items()}
    losses["g_total"] = sum(losses.values())
    check_finite(losses, iteration=iteration, epoch=epoch)
    opt_g.zero_grad()
    backward(model, losses["g_total"])
    opt_g.step()
    model.update_ema()
    return losses


def _adam_with_milestones(model: SRResNet | SRGAN, networks: Sequence[nn.Module]
                          ) -> tuple[list[torch.optim.Adam], list[dict[str, Any]]]:
    """One Adam per network and its ``MultiStepLR`` (``lr_milestones``, ``lr_gamma``), as ``configure_optimizers``
    returns them."""
    h = model.hparams
    optimizers = [adam(net.parameters(), lr=h.lr, betas=(h.beta1, h.beta2), eps=h.eps, weight_decay=h.weight_decay)
                  for net in networks]
    schedulers = [{"scheduler": torch.optim.lr_scheduler.MultiStepLR(o, milestones=list(h.lr_milestones),
                                                                     gamma=h.lr_gamma),
                   "interval": "step" if h.lr_interval == "iteration" else "epoch"} for o in optimizers]
    return optimizers, schedulers


def _lr_step_point(model: SRResNet | SRGAN) -> LRStepPoint | None:
    """The schedulers advance after each iteration or each epoch (``lr_interval``); never without ``lr_milestones``
    (their state stays that of a fresh schedule)."""
    if not model.hparams.lr_milestones:
        return None
    return "iteration_end" if model.hparams.lr_interval == "iteration" else "epoch_end"


def _forward(model: SRResNet | SRGAN, x: Tensor) -> Tensor:
    """LR (B, C_in, H, W) in [-1, 1] -> SR (B, C_out, s*H, s*W) in [-1, 1] (unclamped with a linear output)."""
    return _hr_to_model(model.generator(_lr_to_generator(x)), model.hparams.hr_range)


def _translate(model: SRResNet | SRGAN, images: Tensor, *, direction: str = "a2b", seed: int | None = None) -> Tensor:
    """Super-resolve a batch (deterministic: BatchNorm uses its running statistics; ``seed`` is unused).

    Args:
        images: LR (B, C_in, H, W) in [0, 1], any size.
        direction: only ``a2b``.
        seed: accepted for the common interface; SRResNet/SRGAN inference draws no noise.

    Returns:
        (B, C_out, s*H, s*W) in [0, 1].
    """
    check_images(images, model.input_channels(direction), model.size_multiple)
    net = model.generator_for(direction)
    was_training = net.training
    net.eval()
    try:
        with torch.inference_mode():
            out = net(images)
            out = (out + 1) / 2 if model.hparams.hr_range == "symmetric" else out
            return out.clamp(0, 1)
    finally:
        net.train(was_training)


def _example_inputs(model: SRResNet | SRGAN, batch_size: int, size: int | tuple[int, int], *,
                    generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Random ``(real_a, real_b)`` in [-1, 1]: LR (B, C_in, h, w) with ``size`` = (h, w) and HR (B, C_out, s*h,
    s*w)."""
    h, w = (size, size) if isinstance(size, int) else size
    lr = torch.rand(batch_size, model.hparams.in_channels, h, w, generator=generator) * 2 - 1
    hr = torch.rand(batch_size, model.hparams.out_channels, h * model.scale, w * model.scale,
                    generator=generator) * 2 - 1
    return lr, hr


def _evaluation_images(model: SRResNet | SRGAN, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """(SR, HR) of an evaluation batch, both (B, C, sH, sW) in [0, 1]; G in eval mode (running statistics)."""
    sr = model.translate(_lr_to_generator(batch["real_a"]).clamp(0, 1))
    return sr, ((batch["real_b"] + 1) / 2).clamp(0, 1)


def _validation_metrics(model: SRResNet | SRGAN, batch: dict[str, Tensor]) -> dict[str, Tensor]:
    """``psnr``: mean PSNR of the 8-bit outputs (Y channel, ``scale``-pixel shave) of the batch."""
    sr, hr = _evaluation_images(model, batch)
    border = model.scale if min(sr.shape[-2:]) > 2 * model.scale else 0
    values = psnr(quantize(sr, (0.0, 1.0)), quantize(hr, (0.0, 1.0)), crop_border=border, y_channel=True)
    return {"psnr": values.mean()}


def _start_test_metrics(model: SRResNet | SRGAN) -> None:
    model.test_metrics = SRMetrics(model.scale, crop_border=model.scale, y_channel=True, value_range=(0.0, 1.0))


def _test_step(model: SRResNet | SRGAN, batch: dict[str, Tensor], batch_idx: int) -> None:
    """PSNR and SSIM per image (8-bit, Y channel, ``scale``-pixel border shave: paper Sec. 3.1), printed with
    their means at the end of the test loop."""
    sr, hr = _evaluation_images(model, batch)
    names = batch.get("path_b") or [f"batch{batch_idx}_{i}" for i in range(sr.shape[0])]
    model.test_metrics.update(sr, hr, names, gray=batch.get("gray_b"))


def _finish_test_metrics(model: SRResNet | SRGAN) -> None:
    model.test_metrics.finish(model, prefix="test")


def _unwrap_official(state_dict: dict[str, Any]) -> dict[str, Tensor]:
    """A port checkpoint (``{"state_dict": ...}`` of ``.pth.tar``) or bare state dict, without the ``torch.compile``
    (``_orig_mod.``) prefix."""
    if isinstance(state_dict.get("state_dict"), dict):
        state_dict = state_dict["state_dict"]
    return {k.replace("_orig_mod.", ""): v for k, v in state_dict.items() if isinstance(v, Tensor)}


def _convert_official_state_dict(model: SRResNet | SRGAN, state_dict: dict[str, Any], *, net: str | None = None
                                 ) -> dict[str, Tensor]:
    """A port checkpoint (``SRResNet_x4-ImageNet.pth.tar``: ``{"state_dict": ...}``, or a bare state dict) of network
    ``net`` (``"G"``, or ``"D"`` for SRGAN) -> keys of this module (``generator.conv1.0.weight``, ...)."""
    return TranslationMethod.convert_official_state_dict(model, _unwrap_official(state_dict), net=net)


def _load_official_weights(model: SRResNet | SRGAN, state_dict: dict[str, Any], *, net: str | None = None) -> None:
    """Strictly load a port checkpoint of network ``net`` (``"G"``, or ``"D"`` for SRGAN), into the EMA copy of G
    too when one is kept."""
    TranslationMethod.load_official_weights(model, _unwrap_official(state_dict), net=net)


def _init_args_from_official(cls: type[SRResNet | SRGAN], config: dict[str, Any]) -> dict[str, Any]:
    """zoo constructor arguments of this class from an official configuration (see :func:`official_init_args`)."""
    params = inspect.signature(cls.__init__).parameters
    return {k: v for k, v in official_init_args(config).items() if k in params}


# --------------------------------------------------------------------------------------------------------------------
# SRResNet: MSE pre-training
# --------------------------------------------------------------------------------------------------------------------


class SuperResolutionInference(InferenceModule):
    """SRResNet/SRGAN: LR (B, C, h, w) in [0, 1] goes in as it is -> (B, C, s h, s w) in [0, 1]."""

    def __init__(self, net: nn.Module, *, symmetric: bool) -> None:
        super().__init__()
        self.net, self.symmetric = net, symmetric

    def forward(self, images: Tensor) -> Tensor:
        out = self.net(images)
        return ((out + 1) / 2 if self.symmetric else out).clamp(0, 1)


def _export_module(model: SRResNet | SRGAN, direction: str = "a2b") -> InferenceModule:
    """``translate`` as a traceable module (``zoo export``): LR in [0, 1] -> HR in [0, 1]."""
    net = model.generator_for(model.check_direction(direction))
    return SuperResolutionInference(frozen_copy(net, train_mode=False, what=type(model).__name__),
                                    symmetric=model.hparams.hr_range == "symmetric")


class SuperResolutionContract:
    """The super-resolution side of the method contract, shared by :class:`SRResNet` and :class:`SRGAN` (a mixin,
    listed before :class:`~zoo.methods.base.TranslationMethod`): LR (B, C, h, w) in [0, 1] -> HR
    (B, C, scale * h, scale * w) in [0, 1], PSNR/SSIM test metrics, learning-rate milestones, the port's checkpoints."""

    direction_hint = "super-resolution maps LR images (a2b) to HR images"
    PAPER_METRICS = ("psnr", "ssim", "lpips")  # PSNR/SSIM on Y with a scale-pixel shave (the SR tables' protocol)
    DOMAIN_CHANNELS = ("in_channels", "out_channels")  # channels of the LR and of the HR images
    forward = _forward
    translate = _translate
    export_module = _export_module
    example_inputs = _example_inputs
    validation_metrics = _validation_metrics
    on_test_epoch_start = _start_test_metrics
    test_step = _test_step
    on_test_epoch_end = _finish_test_metrics
    lr_step_point = property(_lr_step_point)
    official_norm = "batch"  # the port's networks use BatchNorm: files without num_batches_tracked get it
    convert_official_state_dict = _convert_official_state_dict
    load_official_weights = _load_official_weights
    init_args_from_official = classmethod(_init_args_from_official)


@register_method("srresnet")
class SRResNet(SuperResolutionContract, TranslationMethod):
    """SRResNet (Ledig et al., CVPR 2017): the SRGAN generator trained on a content loss alone.

    Args:
        in_channels: channels of the LR images.
        out_channels: channels of the HR images.
        channels: generator width (64, paper Figure 4).
        num_rcb: residual blocks B (16).
        scale: magnification (4 in the paper; any power of two, or 3).
        prelu_per_channel: one PReLU slope per channel (Lasagne's default) instead of one per layer (the port).
        output_activation: ``none`` (paper: linear last conv), ``tanh`` or ``clamp`` (port; needs ``hr_range="unit"``).
        hr_range: range of the HR images the generator produces and the losses see: ``symmetric`` [-1, 1] (paper
            Sec. 3.2) or ``unit`` [0, 1] (the port).
        lambda_pixel: weight of the pixel MSE (1; SRResNet-MSE).
        lambda_content: weight of the VGG content loss (0; 1 with ``vgg_layers=["vgg22"]`` for SRResNet-VGG22).
        lambda_tv: weight of the total-variation term (0; 2e-8 for SRResNet-VGG22, paper Sec. 3.4).
        vgg_layers: VGG nodes of the content loss (``vgg22`` = relu2_2, ``vgg54`` = relu5_4, ``conv5_4``,
            ``features.<k>``; several are summed).
        vgg_arch: VGG of the content loss (vgg19 in the paper).
        vgg_batch_norm: its BN variant.
        vgg_weights: ``imagenet`` (torchvision's file, found locally or downloaded once), a path, or ``None`` (random:
            tests only).
        vgg_feature_scale: factor on the VGG feature maps (paper: 1/12.75; the port: 1).
        vgg_mean: normalisation mean of the VGG input (ImageNet).
        vgg_std: normalisation std of the VGG input (ImageNet).
        detach_content: reproduce the port's detached content loss (logged, but no gradient).
        content_network: features of the content loss: ``vgg`` (the paper), ``toy_segmenter`` (the encoder of zoo's
            toy-world segmenter, :class:`~zoo.losses.segmenter_content.SegmenterContentLoss`: a perceptual loss
            without the 550 MB ImageNet file) or ``auto`` (the VGG when its ImageNet file is on disk, else the
            segmenter; the choice is logged and kept in ``content_network_used``, the reason in
            ``content_network_reason``).
        lr: Adam learning rate (1e-4, paper Sec. 3.2).
        beta1: Adam beta1 (0.9).
        beta2: Adam beta2 (0.999; not stated in the paper).
        eps: Adam epsilon.
        weight_decay: Adam weight decay.
        lr_milestones: iterations (or epochs, see ``lr_interval``) after which the learning rate is multiplied by
            ``lr_gamma`` (none for SRResNet: 1e6 iterations at 1e-4).
        lr_gamma: factor of each drop.
        lr_interval: whether ``lr_milestones`` count ``iteration`` s (paper) or ``epoch`` s (the port).
        ema_decay: keep an exponential moving average of the generator (``None``: off).
        channels_last: train in the channels-last memory format (same math): ``true``, ``false`` or ``"auto"``
            (default: channels-last on CUDA and on CPUs with AVX-512, NCHW on other CPUs).
        compile: compile the networks with ``torch.compile`` (``true``, or a mapping with ``mode``, ``dynamic``,
            ``fullgraph``, ``backend``; see :mod:`zoo.compile`). Models loaded from files start eager.
    """

    optimizer_steps_per_iteration = 1
    OFFICIAL_NETWORKS = {"G": "generator"}
    OFFICIAL_LOSS_NAMES = {"g_pixel": "pixel"}

    def __init__(
        self,
        *,
        in_channels: int = 3,
        out_channels: int = 3,
        channels: int = 64,
        num_rcb: int = 16,
        scale: int = 4,
        prelu_per_channel: bool = False,
        output_activation: OutputActivation = "none",
        hr_range: HRRange = "symmetric",
        lambda_pixel: float = 1.0,
        lambda_content: float = 0.0,
        lambda_tv: float = 0.0,
        vgg_layers: Sequence[str] = ("vgg22",),
        vgg_arch: VGGArch = "vgg19",
        vgg_batch_norm: bool = False,
        vgg_weights: str | None = "imagenet",
        vgg_feature_scale: float = 1 / 12.75,
        vgg_mean: Sequence[float] = IMAGENET_MEAN,
        vgg_std: Sequence[float] = IMAGENET_STD,
        detach_content: bool = False,
        content_network: ContentNetwork = "vgg",
        lr: float = 1e-4,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        lr_milestones: Sequence[int] = (),
        lr_gamma: float = 0.1,
        lr_interval: LRInterval = "iteration",
        ema_decay: float | None = None,
        channels_last: ChannelsLast = "auto",
        compile: CompileSetting = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        _build_generator_side(self)
        self.build_ema(ema_decay)
        self.use_compile(compile)

    @property
    def loss_weights(self) -> dict[str, float]:
        h = self.hparams
        return {"g_pixel": h.lambda_pixel, "g_content": h.lambda_content, "g_tv": h.lambda_tv}

    def optimization_step(self, real_a: Tensor, real_b: Tensor, opt_g: Any) -> StepOutput:
        """One iteration: the content loss of G(LR) against HR, one Adam step.

        Args:
            real_a: LR (B, C_in, h, w) in [-1, 1] (mapped to [0, 1] for the generator).
            real_b: HR (B, C_out, s*h, s*w) in [-1, 1].
            opt_g: the generator's optimizer.

        Returns:
            Weighted terms (``g_pixel``, ``g_content``, ``g_tv``, ``g_total``) and ``fake_b`` in [-1, 1].
        """
        iteration, epoch = iteration_index(self)
        lr, hr = _generator_inputs(self, real_a, real_b)
        sr = self.generator(lr)
        terms = _reconstruction_losses(self, sr, hr)
        if not terms:
            raise ValueError("every loss weight is 0: set lambda_pixel and/or lambda_content")
        losses = _generator_update(self, terms, opt_g, iteration, epoch)
        return StepOutput(losses, {"fake_b": _hr_to_model(sr.detach(), self.hparams.hr_range)})

    def configure_optimizers(self) -> tuple[list[torch.optim.Adam], list[dict[str, Any]]]:
        return _adam_with_milestones(self, [self.generator])


# --------------------------------------------------------------------------------------------------------------------
# SRGAN: adversarial fine-tuning of a trained SRResNet
# --------------------------------------------------------------------------------------------------------------------


@register_method("srgan")
class SRGAN(SuperResolutionContract, TranslationMethod):
    """SRGAN (Ledig et al., CVPR 2017): generator initialised from SRResNet, perceptual loss (paper Eq. 3).

    ``l_SR = lambda_content * l_VGG54 + lambda_adv * l_Gen (+ lambda_pixel * MSE + lambda_tv * TV)``; D is trained
    with BCE on HR (real) and G(LR) (fake).

    Args:
        init_from: checkpoint the generator starts from (paper Sec. 3.2: the trained SRResNet, to avoid bad local
            optima): a zoo ``.ckpt``/bundle of ``srresnet`` or ``srgan``, or a port ``SRResNet_x4-*.pth.tar``.
            Loaded when training starts, unless a run is resumed; ``None`` starts from scratch.
        d_channels: discriminator base width (64).
        d_out_channels: discriminator logits (1).
        image_size: side of the HR training crops (96), which fixes D's dense layer; ``None``: D pools its features
            to 6 x 6 first and accepts any size.
        lambda_adv: weight of the adversarial loss (1e-3, paper Eq. 3).
        lambda_content: weight of the VGG loss (1; 0 with ``lambda_pixel=1`` for SRGAN-MSE).
        lambda_pixel: weight of the pixel MSE (0 in the paper's SRGAN-VGG54; 1 in the port).
        vgg_layers: ``["vgg54"]`` (final SRGAN) or ``["vgg22"]`` (SRGAN-VGG22); see :class:`SRResNet` for the rest.
        lr_milestones: iterations after which the learning rate drops (paper: 1e5 at 1e-4, then 1e5 at 1e-5).
        update_order: ``g_first`` (the port: G step, then D step on the same G(LR)) or ``d_first`` (Goodfellow et
            al.'s Algorithm 1 with k = 1: D step, then G against the updated D).
        in_channels, out_channels, channels, num_rcb, scale, prelu_per_channel, output_activation, hr_range,
        lambda_tv, vgg_arch, vgg_batch_norm, vgg_weights, vgg_feature_scale, vgg_mean, vgg_std, detach_content,
        content_network, lr, beta1, beta2, eps, weight_decay, lr_gamma, lr_interval, ema_decay, channels_last: as for
        compile: compile the networks with ``torch.compile`` (``true``, or a mapping with ``mode``, ``dynamic``,
            ``fullgraph``, ``backend``; see :mod:`zoo.compile`). Models loaded from files start eager.
        :class:`SRResNet`.
        diff_augment: DiffAugment policy for the discriminator's inputs, e.g. ``color,translation,cutout``, for
            small datasets (``None``: off; zoo addition, see ``TranslationMethod.use_diff_augment``).
    """

    optimizer_steps_per_iteration = 2
    IMAGE_DISCRIMINATORS = ("discriminator",)
    OFFICIAL_NETWORKS = {"G": "generator", "D": "discriminator"}
    OFFICIAL_LOSS_NAMES = {"g_pixel": "pixel", "g_content": "content", "g_adv": "adversarial", "g_total": "g_total",
                           "d_real": "d_real", "d_fake": "d_fake", "d_total": "d_total"}

    def __init__(
        self,
        *,
        init_from: str | None = None,
        in_channels: int = 3,
        out_channels: int = 3,
        channels: int = 64,
        num_rcb: int = 16,
        scale: int = 4,
        prelu_per_channel: bool = False,
        output_activation: OutputActivation = "none",
        hr_range: HRRange = "symmetric",
        d_channels: int = 64,
        d_out_channels: int = 1,
        image_size: int | None = 96,
        lambda_adv: float = 1e-3,
        lambda_content: float = 1.0,
        lambda_pixel: float = 0.0,
        lambda_tv: float = 0.0,
        vgg_layers: Sequence[str] = ("vgg54",),
        vgg_arch: VGGArch = "vgg19",
        vgg_batch_norm: bool = False,
        vgg_weights: str | None = "imagenet",
        vgg_feature_scale: float = 1 / 12.75,
        vgg_mean: Sequence[float] = IMAGENET_MEAN,
        vgg_std: Sequence[float] = IMAGENET_STD,
        detach_content: bool = False,
        content_network: ContentNetwork = "vgg",
        lr: float = 1e-4,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        lr_milestones: Sequence[int] = (100_000,),
        lr_gamma: float = 0.1,
        lr_interval: LRInterval = "iteration",
        update_order: Literal["g_first", "d_first"] = "g_first",
        ema_decay: float | None = None,
        diff_augment: str | None = None,
        channels_last: ChannelsLast = "auto",
        compile: CompileSetting = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        _build_generator_side(self)
        self._initialised = False
        self.discriminator = SRGANDiscriminator(in_channels=out_channels, out_channels=d_out_channels,
                                                channels=d_channels, image_size=image_size)
        self.build_ema(ema_decay)
        self.use_diff_augment(diff_augment)
        self.use_compile(compile)

    @property
    def loss_weights(self) -> dict[str, float]:
        h = self.hparams
        return {"g_pixel": h.lambda_pixel, "g_content": h.lambda_content, "g_tv": h.lambda_tv, "g_adv": h.lambda_adv,
                "d_real": 1.0, "d_fake": 1.0}

    def generator_losses(self, sr: Tensor, hr: Tensor) -> dict[str, Tensor]:
        """Unweighted G terms: content terms and ``g_adv`` = -log D(G(LR)) (non-saturating, on logits)."""
        terms = _reconstruction_losses(self, sr, hr)
        if self.hparams.lambda_adv > 0:
            terms["g_adv"] = _bce_logits(self.discriminator(sr), True)
        return terms

    def discriminator_losses(self, sr: Tensor, hr: Tensor) -> dict[str, Tensor]:
        """Unweighted D terms: BCE(D(HR), 1) first, then BCE(D(G(LR)), 0) (the order moves BN statistics)."""
        return {"d_real": _bce_logits(self.discriminator(hr), True),
                "d_fake": _bce_logits(self.discriminator(sr.detach()), False)}

    def _generator_step(self, sr: Tensor, hr: Tensor, opt_g: Any, iteration: int, epoch: int | None
                        ) -> dict[str, Tensor]:
        # D is frozen but stays in train mode, as in the port: D(G(LR)) moves its BatchNorm statistics
        set_requires_grad([self.discriminator], False)
        losses = _generator_update(self, self.generator_losses(sr, hr), opt_g, iteration, epoch)
        set_requires_grad([self.discriminator], True)
        return losses

    def _discriminator_step(self, sr: Tensor, hr: Tensor, opt_d: Any, iteration: int, epoch: int | None
                            ) -> dict[str, Tensor]:
        losses = self.discriminator_losses(sr, hr)
        losses["d_total"] = losses["d_real"] + losses["d_fake"]
        check_finite(losses, iteration=iteration, epoch=epoch)
        opt_d.zero_grad()
        backward(self, losses["d_total"], opt_d)
        opt_d.step()
        return losses

    def optimization_step(self, real_a: Tensor, real_b: Tensor, opt_g: Any, opt_d: Any) -> StepOutput:
        """One iteration: a G step and a D step on the same G(LR) (order: ``update_order``).

        Args:
            real_a: LR (B, C_in, h, w) in [-1, 1].
            real_b: HR (B, C_out, s*h, s*w) in [-1, 1]; s*h = s*w = ``image_size`` unless that is ``None``.
            opt_g: generator optimizer.
            opt_d: discriminator optimizer.

        Returns:
            Weighted terms (``g_*``, ``g_total``, ``d_real``, ``d_fake``, ``d_total``) and ``fake_b`` in [-1, 1].
        """
        iteration, epoch = iteration_index(self)
        lr, hr = _generator_inputs(self, real_a, real_b)
        sr = self.generator(lr)
        if self.hparams.update_order == "g_first":
            losses = self._generator_step(sr, hr, opt_g, iteration, epoch)
            losses.update(self._discriminator_step(sr, hr, opt_d, iteration, epoch))
        else:
            losses = self._discriminator_step(sr, hr, opt_d, iteration, epoch)
            losses.update(self._generator_step(sr, hr, opt_g, iteration, epoch))
        return StepOutput(losses, {"fake_b": _hr_to_model(sr.detach(), self.hparams.hr_range)})

    def configure_optimizers(self) -> tuple[list[torch.optim.Adam], list[dict[str, Any]]]:
        return _adam_with_milestones(self, [self.generator, self.discriminator])

    def setup(self, stage: str) -> None:
        trainer = getattr(self, "_trainer", None)
        resuming = trainer is not None and trainer.ckpt_path is not None
        # once per model: a second fit() continues training instead of starting over from init_from
        if stage == "fit" and self.hparams.init_from and not resuming and not self._initialised:
            self.load_generator_from(self.hparams.init_from)
            self._initialised = True
        super().setup(stage)

    def load_generator_from(self, path: str | Path) -> None:
        """Copy the generator weights of a trained SRResNet (or SRGAN) into this model's generator.

        Args:
            path: a zoo ``.ckpt`` or bundle (the EMA generator when it has one), or a port checkpoint
                (``SRResNet_x4-ImageNet.pth.tar`` or a bare generator state dict).
        """
        path = Path(path).expanduser()
        if not path.exists():
            raise FileNotFoundError(
                f"init_from: {path} does not exist. SRGAN starts from a trained SRResNet (paper Sec. 3.2): run "
                "`zoo fit --config configs/srresnet.yaml` and set model.init_args.init_from to its "
                "checkpoints/last.ckpt, or set init_from to null to start from scratch")
        from zoo.hub import load

        if path.is_dir() or path.suffix in (".ckpt", ".safetensors"):
            source = load(str(path))
            if not isinstance(source, (SRResNet, SRGAN)):
                raise TypeError(f"init_from: {path} holds a {type(source).__name__}, not an SRResNet/SRGAN model")
            state = source.generator_for("a2b").state_dict()
            try:
                self.generator.load_state_dict(state, strict=True)
            except RuntimeError as err:
                raise RuntimeError(f"init_from: the generator in {path} does not fit this SRGAN (same scale, channels "
                                   f"and blocks needed): {err}") from err
        else:
            try:
                state = torch.load(path, map_location="cpu", weights_only=True)
                self.load_official_weights(state, net="G")
            except RuntimeError as err:
                raise RuntimeError(f"init_from: {path} is not a generator checkpoint that fits this SRGAN: {err}"
                                   ) from err
        if self.ema is not None:
            self.ema["generator"].module.load_state_dict(self.generator.state_dict())


# --------------------------------------------------------------------------------------------------------------------
# Published checkpoints of the port (Apache-2.0), in the port's key layout: loaded through load_official_weights
# --------------------------------------------------------------------------------------------------------------------

_PORT_URL = "https://huggingface.co/ChangyuLiu/SRGAN-PyTorch/resolve/main/{}"
_PORT_ARGS = {"channels": 64, "num_rcb": 16, "hr_range": "unit", "output_activation": "clamp"}
_PAPER_X4 = {"srresnet": {"set5_psnr": 32.05, "set5_ssim": 0.9019, "set14_psnr": 28.49, "set14_ssim": 0.8184,
                          "bsd100_psnr": 27.58, "bsd100_ssim": 0.7620},
             "srgan": {"set5_psnr": 29.40, "set5_ssim": 0.8472, "set14_psnr": 26.02, "set14_ssim": 0.7397,
                       "bsd100_psnr": 25.16, "bsd100_ssim": 0.6688}}
_PORT_X4 = {"srresnet": {"set5_psnr": 32.16}, "srgan": {"set5_psnr": 30.67}}
for _method, _file in (("srresnet", "SRResNet"), ("srgan", "SRGAN")):
    for _scale in (2, 4, 8):
        register_pretrained(f"{_method}.imagenet_x{_scale}", PretrainedEntry(
            method=_method,
            init_args={**_PORT_ARGS, "scale": _scale},
            url=_PORT_URL.format(f"{_file}_x{_scale}-ImageNet.pth.tar"),
            sha256=None,  # not published; pinned on first download (see zoo.hub)
            filename=f"{_file}_x{_scale}-ImageNet.pth.tar",
            format="official",
            official_net="G",
            direction="a2b",
            origin="https://github.com/Lornatang/SRGAN-PyTorch (scripts/download_weights.sh)",
            paper_metrics=_PAPER_X4[_method] if _scale == 4 else {},
            notes=(f"{_file} x{_scale} of the PyTorch port, trained on ImageNet validation tiles with HR in [0, 1] "
                   f"and a clamped output" + (f"; the port reports Set5 PSNR {_PORT_X4[_method]['set5_psnr']} (Y)"
                                              if _scale == 4 else "") + "."),
        ))
