"""DECENT: unpaired image-to-image translation with density changing regularization.

Paper: Xie, Ho, Zhang, "Unpaired Image-to-Image Translation with Density Changing Regularization", NeurIPS 2022.
Official code: https://github.com/Mid-Push/Decent, a fork of CUT (model ``decent_gan``); networks, losses, update
order, flow optimizer and schedules reproduced, proven by the parity tests against fixtures of commit a7f8bbe.

One generator G (A -> B). Two patch density estimators: ``density_a`` (official ``F_A``) models G-encoder features
of real A images, ``density_b`` (``F_B``) those of real B images (identity pass ``G(b)``); one normalizing flow per
feature layer (``var_layers``, default 0,4,8,12,16 of the CUT generator). The regularizer asks every sampled
patch to change its log-density by the same amount when translated: with ``d_i = (log p_A(f(a)_i) -
log p_B(f(G(a))_i)) / (C ln 2)`` (bits per dimension, same positions in both), ``L_var`` is the unbiased variance of
``d`` over the patches of each image (``var_all``: over all patches of the batch), averaged over images and layers.

Faithful to the official implementation:

* One iteration: forward ``G(a)`` and ``G(b)`` with feature taps; (1) flows: NLL of detached features,
  ``clip_grad_norm_(0.1)`` per estimator, Adam with amsgrad (lr ``flow_lr``, the official eps placement) and a
  polyak average (``flow_ema``) that **starts at zero** and has no bias correction; (2) D: LSGAN, ``(fake + real)/2``;
  (3) G with the flows' **averaged** weights: ``lambda_gan * GAN + lambda_idt * |G(b) - b|_1 + lambda_var * L_var``,
  where ``log p_A`` is computed without gradient and the gradient reaches G through ``f(G(G(a)))`` only (flows
  frozen). Patch positions are shared by the whole batch and by ``F_A``/``F_B`` in the variance term.
* Flows are never put in eval mode during training (MAF batch norm uses batch statistics; NSF dropout is active).
* CUT ResNet generator with anti-aliased sampling, CUT PatchGAN, xavier(0.02) init; linear decay
  (``n_epochs`` + ``n_epochs_decay``) for all three optimizers.
* Official ``net_G`` / ``net_D`` / ``net_F_A`` / ``net_F_B`` files load unchanged (:meth:`load_official_weights`);
  the flow EMA can be taken from ``optimizer_F`` files (:meth:`load_official_flow_ema`).

Deliberate deviations: flows are built eagerly from the known channel counts (the official code builds them at the
first batch and, through ``.to(gpu_ids[0])``, cannot run without a GPU); patch positions come from torch's RNG (the
official code uses numpy's); with instance norm G and D process the A and B batches in one call (same numbers);
flows always run in float32 under mixed precision; ``num_patches`` larger than a layer's positions uses all of them.

Config: ``configs/decent.yaml`` (horse2zebra), ``configs/tiny/decent.yaml``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.compile import CompileSetting
from zoo.losses import GANMode, check_finite, gan_loss
from zoo.methods._common import (
    OFFICIAL_CUT_OPTIONS,
    StepOutput,
    backward,
    build_official_schedulers,
    discriminator_losses,
    iteration_index,
    set_requires_grad,
    unscale_gradients,
)
from zoo.methods.base import ChannelsLast, TranslationMethod
from zoo.nets.cut import CUTDiscriminatorType, build_cut_networks, generator_taps
from zoo.nets.flows import FlowEMA, PatchDensityEstimator
from zoo.nets.init import InitType
from zoo.nets.norm import NormType
from zoo.registry import PretrainedEntry, register_method, register_pretrained
from zoo.schedules import LRPolicy, StepAt

__all__ = ["DECENT", "density_change_variance", "flow_nll"]

_LN2 = math.log(2.0)
#: Adam epsilon of the official optimizers; the flow optimizer adds it to the *uncorrected* ``sqrt(v_max)``
_ADAM_EPS = 1e-8

#: official option name -> zoo constructor argument
_OFFICIAL_OPTIONS = {
    **OFFICIAL_CUT_OPTIONS, "lambda_idt": "lambda_idt", "lambda_var": "lambda_var", "flow_type": "flow_type",
    "flow_blocks": "flow_blocks", "bnaf_layers": "bnaf_layers", "bnaf_dim": "bnaf_dim", "maf_dim": "maf_dim",
    "maf_layers": "maf_layers", "maf_comps": "maf_comps", "flow_lr": "flow_lr", "flow_ema": "flow_ema",
    "var_all": "var_all",
}


def flow_nll(log_probs_a: Sequence[Tensor], log_probs_b: Sequence[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    """Flow objective ``(sum_l -mean log p_A,l + sum_l -mean log p_B,l) / n_layers`` and the two sums.

    Args:
        log_probs_a, log_probs_b: per layer (N,) natural log-densities.

    Returns:
        (loss, nll_a, nll_b), 0-d float32.
    """
    nll_a = sum(-lp.mean() for lp in log_probs_a)
    nll_b = sum(-lp.mean() for lp in log_probs_b)
    return (nll_a + nll_b) / len(log_probs_a), nll_a, nll_b


def density_change_variance(log_probs_a: Sequence[Tensor], log_probs_fake_b: Sequence[Tensor],
                            feature_dims: Sequence[int], batch_size: int, *, var_all: bool = False,
                            ) -> tuple[Tensor, Tensor, Tensor]:
    """DECENT's density-changing loss in bits per dimension.

    Args:
        log_probs_a: per layer (B * P,) log p_A of the source features (treated as constants).
        log_probs_fake_b: per layer (B * P,) log p_B of the translated image's features at the same positions.
        feature_dims: per layer feature dimension C_l.
        batch_size: B.
        var_all: unbiased variance over all B * P changes instead of per image.

    Returns:
        (loss = mean over layers of the (mean per-image) unbiased variance, exp_a = sum_l -mean log p_A,
        exp_b = sum_l -mean log p_B), 0-d.
    """
    total, exp_a, exp_b = 0.0, 0.0, 0.0
    for lp_a, lp_b, dim in zip(log_probs_a, log_probs_fake_b, feature_dims, strict=True):
        exp_a = exp_a - lp_a.mean()
        exp_b = exp_b - lp_b.mean()
        change = (lp_a.detach() - lp_b) / (dim * _LN2)
        if var_all:
            total = total + torch.var(change)
        else:
            total = total + torch.var(change.view(batch_size, -1), dim=-1).mean()
    return total / len(log_probs_a), exp_a, exp_b


def _parse_layers(layers: str | Sequence[int]) -> list[int]:
    if isinstance(layers, str):
        return [int(v) for v in layers.split(",") if v.strip()]
    return [int(v) for v in layers]


def _official_adam(params: Iterable[nn.Parameter], *, lr: float, betas: tuple[float, float],
                   amsgrad: bool = False) -> torch.optim.Adam:
    """Adam as the official code builds it (torch's default weight decay), fused where the parameters allow it."""
    params = list(params)
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
    return torch.optim.Adam(params, lr=lr, betas=betas, eps=_ADAM_EPS, amsgrad=amsgrad, fused=fused or None)


@register_method("decent")
class DECENT(TranslationMethod):
    """DECENT (Xie et al., NeurIPS 2022) with the official CUT networks, flows, objective and update order.

    Args:
        input_nc: channels of domain A images.
        output_nc: channels of domain B images (must equal ``input_nc``: identity loss and shared encoder).
        ngf: generator base width (64).
        ndf: discriminator base width (64).
        netG: ``resnet_9blocks`` (default), ``resnet_6blocks``, ``resnet_4blocks`` or any ``resnet_<N>blocks``.
        netD: ``basic`` (70x70 PatchGAN), ``n_layers`` (``n_layers_d`` layers) or ``pixel``.
        n_layers_d: depth of the ``n_layers`` discriminator.
        norm_g: generator normalisation (official ``normG``: ``instance``).
        norm_d: discriminator normalisation (official ``normD``: ``instance``).
        use_dropout: dropout in the residual blocks (official ``no_dropout`` is True: off).
        init_type: weight initialisation (``xavier``).
        init_gain: its gain (0.02).
        no_antialias: stride-2 convs instead of conv + blur-pool (G and D).
        no_antialias_up: transposed convs instead of blur up-sampling in G.
        gan_mode: ``lsgan`` (official), ``vanilla`` or ``wgangp`` (no penalty, as the official code).
        lambda_gan: weight of the adversarial term (1).
        lambda_idt: weight of the L1 identity term ``|G(b) - b|`` (10).
        lambda_var: weight of the density-changing variance (0.01).
        var_layers: generator layer indices whose outputs the flows model (official ``"0,4,8,12,16"``; a list or
            the official comma-separated string).
        num_patches: positions sampled per layer and image (256).
        flow_type: ``bnaf`` (default), ``maf``, ``nsf`` or ``mafmog``.
        flow_blocks: flow blocks (1).
        bnaf_layers: extra BNAF hidden layers (0).
        bnaf_dim: BNAF hidden multiplier (10).
        maf_dim: MAF / MAF-MoG hidden width (1024).
        maf_layers: MAF hidden layers (2).
        maf_comps: MAF-MoG mixture components (10).
        flow_lr: flow Adam learning rate (1e-3).
        flow_ema: polyak decay of the flow weights used in the generator step (0.998).
        flow_grad_clip: max gradient norm per estimator (0.1, hard-coded officially).
        var_all: variance over all patches of the batch instead of per image.
        lr: G and D Adam learning rate (2e-4).
        beta1: G and D Adam beta1 (0.5).
        beta2: G and D Adam beta2 (0.999).
        lr_policy: ``linear`` (official), ``step``, ``plateau``, ``cosine``; counted in epochs.
        n_epochs: epochs at the initial learning rate (200).
        n_epochs_decay: epochs of linear decay to zero (200).
        epoch_count: starting epoch of the schedule.
        lr_decay_iters: epochs between x0.1 steps for ``lr_policy="step"``.
        lr_step_at: ``epoch_end`` (official CUT loop) or ``epoch_start``.
        diff_augment: DiffAugment policy for the discriminators' inputs, e.g. ``color,translation,cutout``, for
            small datasets (``None``: off; zoo addition, see ``TranslationMethod.use_diff_augment``).
        ema_decay: keep an EMA copy of G with this decay for ``translate`` (``None``: off; zoo addition).
        channels_last: train in the channels-last memory format (same math): ``true``, ``false`` or ``"auto"``
            (default: channels-last on CUDA and on CPUs with AVX-512, NCHW on other CPUs).
        compile: compile the networks with ``torch.compile`` (``true``, or a mapping with ``mode``, ``dynamic``,
            ``fullgraph``, ``backend``; see :mod:`zoo.compile`). Models loaded from files start eager.
    """

    optimizer_steps_per_iteration = 3
    INFERENCE_MEMORY_FORMAT = torch.channels_last
    IMAGE_DISCRIMINATORS = ("discriminator",)
    OFFICIAL_NETWORKS = {"G": "generator", "D": "discriminator", "F_A": "density_a", "F_B": "density_b"}
    #: zoo loss name -> official ``loss_<name>`` (weights as the official values carry them; see ``official_losses``)
    OFFICIAL_LOSS_NAMES = {"flow_nll": "F", "nll_a": "nll_A", "nll_b": "nll_B", "g_gan": "G_GAN", "g_idt": "idt",
                           "var": "var", "exp_a": "exp_A", "exp_b": "exp_B", "g_total": "G"}

    def __init__(
        self,
        *,
        input_nc: int = 3,
        output_nc: int = 3,
        ngf: int = 64,
        ndf: int = 64,
        netG: str = "resnet_9blocks",
        netD: CUTDiscriminatorType = "basic",
        n_layers_d: int = 3,
        norm_g: NormType = "instance",
        norm_d: NormType = "instance",
        use_dropout: bool = False,
        init_type: InitType = "xavier",
        init_gain: float = 0.02,
        no_antialias: bool = False,
        no_antialias_up: bool = False,
        gan_mode: GANMode = "lsgan",
        lambda_gan: float = 1.0,
        lambda_idt: float = 10.0,
        lambda_var: float = 0.01,
        var_layers: list[int] | str = "0,4,8,12,16",
        num_patches: int = 256,
        flow_type: str = "bnaf",
        flow_blocks: int = 1,
        bnaf_layers: int = 0,
        bnaf_dim: int = 10,
        maf_dim: int = 1024,
        maf_layers: int = 2,
        maf_comps: int = 10,
        flow_lr: float = 1e-3,
        flow_ema: float = 0.998,
        flow_grad_clip: float = 0.1,
        var_all: bool = False,
        lr: float = 2e-4,
        beta1: float = 0.5,
        beta2: float = 0.999,
        lr_policy: LRPolicy = "linear",
        n_epochs: int = 200,
        n_epochs_decay: int = 200,
        epoch_count: int = 1,
        lr_decay_iters: int = 50,
        lr_step_at: StepAt = "epoch_end",
        ema_decay: float | None = None,
        diff_augment: str | None = None,
        channels_last: ChannelsLast = "auto",
        compile: CompileSetting = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if input_nc != output_nc:
            raise ValueError(f"DECENT needs input_nc == output_nc (identity pass G(b) and one encoder for both "
                             f"domains); got {input_nc} and {output_nc}")
        if num_patches <= 0:
            raise ValueError(f"num_patches must be > 0 (the flows take sampled vectors), got {num_patches}")
        if not 0.0 <= flow_ema <= 1.0:
            raise ValueError(f"flow_ema must be in [0, 1], got {flow_ema}")
        self.var_layers = _parse_layers(var_layers)
        if not self.var_layers:
            raise ValueError("var_layers must name at least one generator layer")
        self.generator, self.discriminator = build_cut_networks(self.hparams)
        channels = self.generator.feature_channels(self.var_layers)
        flow_args = dict(flow_type=flow_type, flow_blocks=flow_blocks, bnaf_layers=bnaf_layers, bnaf_dim=bnaf_dim,
                         maf_dim=maf_dim, maf_layers=maf_layers, maf_comps=maf_comps)
        self.density_a = PatchDensityEstimator(channels, **flow_args)
        self.density_b = PatchDensityEstimator(channels, **flow_args)
        self.density_a_ema = FlowEMA(self.density_a)
        self.density_b_ema = FlowEMA(self.density_b)
        self.build_ema(ema_decay)
        self.use_diff_augment(diff_augment)
        self.use_compile(compile)

    # ---------------------------------------------------------------- training

    @property
    def loss_weights(self) -> dict[str, float]:
        h = self.hparams
        return {"d_fake": 0.5, "d_real": 0.5, "g_gan": h.lambda_gan, "g_idt": h.lambda_idt, "g_var": h.lambda_var}

    @property
    def _per_sample_g(self) -> bool:
        return self.hparams.norm_g in ("instance", "none")

    def _official_flow_eps(self, optimizer: Any) -> None:
        """Set Adam's eps so that torch's update equals the official one, which adds eps to the *uncorrected*
        ``sqrt(v_max)``: ``eps_torch = eps / sqrt(1 - beta2**t)`` at step ``t``."""
        opt = getattr(optimizer, "optimizer", optimizer)
        first = opt.param_groups[0]["params"][0]
        state = opt.state.get(first, {})
        t = int(state["step"]) + 1 if "step" in state else 1
        for group in opt.param_groups:
            group["eps"] = _ADAM_EPS / math.sqrt(1.0 - group["betas"][1] ** t)

    def optimization_step(self, real_a: Tensor, real_b: Tensor, opt_g: Any, opt_d: Any, opt_f: Any, *,
                          patch_ids: Mapping[str, Sequence[Tensor]] | None = None) -> StepOutput:
        """One official iteration: flows, then D, then G with the flows' averaged weights.

        Args:
            real_a: (B, C, H, W) in [-1, 1].
            real_b: (B, C, H, W) in [-1, 1].
            opt_g, opt_d, opt_f: optimizers of G, D and both flows (order of :meth:`configure_optimizers`).
            patch_ids: optional fixed positions per layer instead of sampling: ``"flow_a"``, ``"flow_b"`` (flow
                step) and ``"var"`` (variance term, shared by both estimators); each a list of (P,) tensors.

        Returns:
            Loss terms (``d_*``/``g_*`` weighted as in the objective, ``g_total`` their G sum, ``flow_nll`` the
            flow objective; ``nll_*``, ``var``, ``exp_*`` unweighted diagnostics) and ``fake_b``/``idt_b``.
        """
        h, weights = self.hparams, self.loss_weights
        iteration, epoch = iteration_index(self)
        ids = patch_ids or {}
        fake_b, idt_b, feats_a, feats_b = generator_taps(self.generator, real_a, real_b, self.var_layers,
                                                         joint=self._per_sample_g)

        # (1) flows on detached features of the current generator
        opt_f.zero_grad()
        lp_a, _, _ = self.density_a(feats_a, h.num_patches, ids.get("flow_a"), detach=True)
        lp_b, _, _ = self.density_b(feats_b, h.num_patches, ids.get("flow_b"), detach=True)
        loss_f, nll_a, nll_b = flow_nll(lp_a, lp_b)
        losses: dict[str, Tensor] = {"flow_nll": loss_f}
        check_finite(losses, iteration=iteration, epoch=epoch)
        backward(self, loss_f, opt_f)
        unscale_gradients(self, opt_f)
        torch.nn.utils.clip_grad_norm_(self.density_a.parameters(), max_norm=h.flow_grad_clip)
        torch.nn.utils.clip_grad_norm_(self.density_b.parameters(), max_norm=h.flow_grad_clip)
        self._official_flow_eps(opt_f)
        opt_f.step()
        self.density_a_ema.update(self.density_a, h.flow_ema)
        self.density_b_ema.update(self.density_b, h.flow_ema)

        # (2) discriminator
        opt_d.zero_grad()
        d_losses = discriminator_losses(self.discriminator, fake_b.detach(), real_b, h.gan_mode,
                                        joint=h.norm_d in ("instance", "none"),
                                        weights=(weights["d_fake"], weights["d_real"]))
        check_finite(d_losses, iteration=iteration, epoch=epoch)
        backward(self, d_losses["d_fake"] + d_losses["d_real"], opt_d)
        opt_d.step()

        # (3) generator against the updated D, with the flows' averaged weights
        set_requires_grad([self.discriminator], False)
        opt_g.zero_grad()
        g_losses = {"g_gan": weights["g_gan"] * gan_loss(self.discriminator(fake_b), True, h.gan_mode),
                    "g_idt": weights["g_idt"] * F.l1_loss(idt_b.float(), real_b.float())}
        diagnostics: dict[str, Tensor] = {"nll_a": nll_a.detach(), "nll_b": nll_b.detach()}
        # with lambda_var = 0 the term is still computed for logging (as officially), but without a graph
        with torch.set_grad_enabled(h.lambda_var > 0 and torch.is_grad_enabled()):
            feats_fake = self.generator(fake_b, self.var_layers, encode_only=True)
            with torch.no_grad():
                lp_src, dims, var_ids = self.density_a(feats_a, h.num_patches, ids.get("var"), detach=True,
                                                       weights=self.density_a_ema.tensors())
            lp_fake, _, _ = self.density_b(feats_fake, h.num_patches, var_ids, weights=self.density_b_ema.tensors())
            var, exp_a, exp_b = density_change_variance(lp_src, lp_fake, dims, real_a.shape[0], var_all=h.var_all)
        if h.lambda_var > 0:
            g_losses["g_var"] = weights["g_var"] * var
        diagnostics.update(var=var.detach(), exp_a=exp_a.detach(), exp_b=exp_b.detach())
        g_losses["g_total"] = sum(g_losses.values())
        check_finite(g_losses, iteration=iteration, epoch=epoch)
        backward(self, g_losses["g_total"], opt_g)
        opt_g.step()
        set_requires_grad([self.discriminator], True)
        self.update_ema()
        return StepOutput({**losses, **d_losses, **g_losses, **diagnostics}, {"fake_b": fake_b, "idt_b": idt_b})

    def validation_metrics(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """``idt``: L1 in model space between ``G(real_b)`` (live generator) and ``real_b``, (B, C, H, W) each."""
        idt_b = self.generator(batch["real_b"])
        return {"idt": F.l1_loss(idt_b.float(), batch["real_b"].float())}

    def configure_optimizers(self) -> tuple[list[torch.optim.Adam], list[dict[str, Any]]]:
        h = self.hparams
        opt_g = _official_adam(self.generator.parameters(), lr=h.lr, betas=(h.beta1, h.beta2))
        opt_d = _official_adam(self.discriminator.parameters(), lr=h.lr, betas=(h.beta1, h.beta2))
        flows = [*self.density_a.parameters(), *self.density_b.parameters()]
        opt_f = _official_adam(flows, lr=h.flow_lr, betas=(0.9, 0.999), amsgrad=True)
        return [opt_g, opt_d, opt_f], build_official_schedulers((opt_g, opt_d, opt_f), h)

    # ---------------------------------------------------------------- official checkpoints

    @classmethod
    def init_args_from_official(cls, opt: Any) -> dict[str, Any]:
        """zoo constructor arguments from the official options (``argparse.Namespace`` or dict)."""
        opt = dict(vars(opt)) if not isinstance(opt, Mapping) else dict(opt)
        args = {ours: opt[theirs] for theirs, ours in _OFFICIAL_OPTIONS.items() if theirs in opt}
        if "no_dropout" in opt:
            args["use_dropout"] = not opt["no_dropout"]
        layers = opt.get("var_layers", opt.get("nce_layers"))
        if layers is not None:
            args["var_layers"] = _parse_layers(layers)
        return args

    def official_network_norm(self, net: str) -> str:
        """Normalisation of official network ``net``: ``norm_g`` for G, ``norm_d`` for D, none in the flows."""
        return {"G": self.hparams.norm_g, "D": self.hparams.norm_d}.get(net, "none")

    def load_official_flow_ema(self, optimizer_state: Mapping[str, Any]) -> None:
        """Take the flows' polyak averages from an official ``<epoch>_optimizer_F.pth`` (``exp_avg_param`` of each
        parameter, indexed in the order F_A's parameters, then F_B's)."""
        state = optimizer_state["state"]
        index = 0
        for estimator, ema in ((self.density_a, self.density_a_ema), (self.density_b, self.density_b_ema)):
            averaged = ema.tensors()
            for name, _ in estimator.named_parameters():
                if index not in state or "exp_avg_param" not in state[index]:
                    raise KeyError(f"optimizer_F state has no exp_avg_param for parameter {index} ({name})")
                averaged[name].copy_(state[index]["exp_avg_param"])
                index += 1


# --------------------------------------------------------------------------------------------------------------------
# Official generators linked from the README (Google Drive; download by hand, then put the file in $ZOO_WEIGHTS_DIR)
# --------------------------------------------------------------------------------------------------------------------

for _name in ("horse2zebra", "cat2dog", "label2city", "selfie2anime", "summer2winter"):
    register_pretrained(f"decent.{_name}", PretrainedEntry(
        method="decent",
        init_args={"netG": "resnet_9blocks", "ngf": 64, "norm_g": "instance"},
        url=None,  # Google Drive folder linked from the official README; not reachable for automatic download
        sha256=None,
        filename=f"decent_{_name}_net_G.pth",
        format="official",
        official_net="G",
        direction="a2b",
        origin="https://github.com/Mid-Push/Decent (README, pretrained models)",
        notes=f"Official DECENT generator for {_name} (CUT layout, latest_net_G.pth); download it from the README "
              f"link and save it as decent_{_name}_net_G.pth. Unverified: check the generator options on a real file.",
    ))
