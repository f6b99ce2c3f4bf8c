"""SRUNIT: semantically robust unpaired translation, for domains whose content statistics differ.

Paper: Jia, Yuan, Wang, Wu, Clifford, Yuan, Su, "Semantically Robust Unpaired Image Translation for Data with
Unmatched Semantics Statistics", ICCV 2021 (arXiv 2012.04932). Official code: https://github.com/SeanJia/SRUNIT (a
CUT fork); proven by the parity tests against fixtures of commit 76231f1.

When one domain has more of some content than the other (GTA frames show more sky and vegetation than Cityscapes),
a GAN can match the target statistics by *flipping semantics*: painting trees into the sky. SRUNIT adds to CUT
(:class:`zoo.methods.cut.CUT`, everything of which it keeps) a **multi-scale semantic-robustness regulariser**: at
one encoder scale, chosen at random from ``reg_layers`` (indices into ``nce_layers``) each iteration, the source
feature map is moved by ``reg_noise`` in a random direction per position, decoded to an image and re-encoded; the
re-encoded features must stay close to the clean ones at ``num_patches`` sampled positions (through the patch
sampler's MLP of that scale), ``||q - k|| / magnitude`` averaged, weighted by ``reg``. ``D_noise`` (``d_noise``)
adds Gaussian noise to every discriminator input.

Official behaviours reproduced (the defaults are the official options):

* With ``reg > 0``, during the first ``inact_epochs`` epochs (100 by default) the official code trains **only the
  discriminator**: no generator or sampler step at all. zoo does the same by default, says so in a warning at the
  start of training, and ``train_generator_when_inactive=True`` instead trains G and F with the CUT objective in
  those epochs (the regulariser still starts after ``inact_epochs``); the shipped paper config uses it.
* The perturbation added is always ``reg_noise`` times the unit direction; the random magnitude map
  ``1e-7 + (reg_noise - 1e-7) * U`` only divides the loss. The loss is divided by the number of NCE layers.
* ``reg_type="v2"``: the regulariser's gradient reaches G and the patch sampler; ``"v1"``: G only (F is frozen
  for that backward pass).
* The patch sampler normalises as ``(x + 1e-12) / ||x + 1e-12||`` (CUT: ``x / (||x|| + 1e-7)``).

Fixed: with ``nce_idt=False`` (so FastCUT mode) the official code trains D on an empty real batch (NaN) and asserts
under flips; zoo keeps the real B batch for D and handles flips as CUT does, so ``mode="fastcut"`` works.

Deviations as for CUT (eager patch-sampler MLPs, torch RNG). Configs: ``configs/srunit.yaml`` (GTA5 -> Cityscapes),
``configs/tiny/srunit.yaml``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, Literal

import torch
from torch import Tensor

from zoo.methods._common import backward, set_requires_grad
from zoo.methods.cut import CUT, parse_layers
from zoo.nets.cut import InputNoise, gather_patches, semantic_robustness_loss
from zoo.registry import register_method

__all__ = ["SRUNIT"]


@register_method("srunit")
class SRUNIT(CUT):
    """SRUNIT (Jia et al., ICCV 2021): CUT plus the multi-scale semantic-robustness regulariser.

    Args:
        reg: weight of the regulariser (official 0.001); 0 turns it off (plain CUT with SRUNIT's normalisation).
        reg_noise: perturbation size (0.001).
        reg_type: ``v2`` (the regulariser also trains the patch sampler) or ``v1`` (G only).
        reg_layers: indices into ``nce_layers`` the scale is drawn from (``"0,1,2,3,4"``).
        inact_epochs: epochs before the regulariser starts (100).
        train_generator_when_inactive: train G and F with the CUT objective during ``inact_epochs`` (the official
            code trains only D then); default False, as officially.
        d_noise: standard deviation of the Gaussian noise added to the discriminator's inputs (0).
        **cut_options: every option of :class:`zoo.methods.cut.CUT` (``mode``, widths, ``nce_layers``, ...).
    """

    OFFICIAL_LOSS_NAMES = {**CUT.OFFICIAL_LOSS_NAMES, "reg": "reg"}
    PAPER_METRICS = ("fid", "kid", "miou")  # FID and the semantic consistency (mIoU) of the translations
    PATCH_NORMALIZE = "srunit"
    # the regulariser projects one randomly chosen layer: compiled head by head, each head has one graph
    COMPILE_BY_PARTS = ("patch_sampler",)
    JOINT_FORWARD = False

    def __init__(self, *, reg: float = 0.001, reg_noise: float = 0.001, reg_type: Literal["v1", "v2"] = "v2",
                 reg_layers: list[int] | str = "0,1,2,3,4", inact_epochs: int = 100,
                 train_generator_when_inactive: bool = False, d_noise: float = 0.0, **cut_options: Any) -> None:
        super().__init__(**cut_options)
        if reg < 0 or reg_noise <= 0 and reg > 0:
            raise ValueError(f"reg must be >= 0 and reg_noise > 0 when reg > 0; got reg={reg}, reg_noise={reg_noise}")
        self.reg_layers = parse_layers(reg_layers)
        bad = [i for i in self.reg_layers if not 0 <= i < len(self.nce_layers)]
        if reg > 0 and (not self.reg_layers or bad):
            raise ValueError(f"reg_layers are indices into nce_layers {self.nce_layers} (0..{len(self.nce_layers) - 1})"
                             f"; got {self.reg_layers}")
        self.discriminator_noise = InputNoise(d_noise).attach(self.discriminator)

    # ---------------------------------------------------------------- training

    def _regularizer_active(self, epoch: int) -> bool:
        return self.hparams.reg > 0 and epoch > self.hparams.inact_epochs

    def generator_trains(self, epoch: int) -> bool:
        """False in the official D-only epochs (``reg > 0``, epoch <= ``inact_epochs``) unless
        ``train_generator_when_inactive``."""
        h = self.hparams
        return h.reg == 0 or epoch > h.inact_epochs or h.train_generator_when_inactive

    def on_train_start(self) -> None:
        h = self.hparams
        if h.reg > 0 and h.inact_epochs >= h.epoch_count and not h.train_generator_when_inactive:
            warnings.warn(f"SRUNIT trains only the discriminator until epoch {h.inact_epochs} (the official "
                          f"behaviour with reg > 0); set model.init_args.train_generator_when_inactive=true to train "
                          f"the generator with the CUT objective in those epochs.", stacklevel=1)

    @property
    def eager_networks(self) -> tuple[str, ...]:
        """The generator with the ``v1`` regulariser, whose backward runs a second time through the generator's graph
        of the forward pass: inductor refuses a second backward of a graph compiled with donated buffers, and without
        them it gave gradients 1e9 off (measured on the v1 parity case)."""
        return ("generator",) if self.hparams.reg > 0 and self.hparams.reg_type == "v1" else ()

    @property
    def needs_key_grad(self) -> bool:
        return self.hparams.reg > 0

    def regularizer(self, real_a: Tensor, keys_a: list[Tensor] | None, draws: Mapping[str, Any], epoch: int,
                    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """``{"g_reg": reg * loss}`` and the scalar diagnostics ``reg`` (unweighted) and ``reg_choice`` (the scale),
        when active; the perturbed feature map and the magnitude map are kept in ``last_perturbation``.

        Draws (``draws``): ``reg_choice`` (index into ``reg_layers``' values: an index into ``nce_layers``),
        ``reg_direction`` (B, C, H, W) normal and ``reg_uniform`` (B, 1, H, W) uniform for the perturbation,
        ``reg`` ([(P,)] positions).
        """
        h = self.hparams
        if not self._regularizer_active(epoch):
            return {}, {}
        if keys_a is None:  # lambda_nce == 0: the forward computed no encoder features
            keys_a = self.generator(real_a, self.nce_layers, encode_only=True)
        if "reg_choice" in draws:
            choice = int(draws["reg_choice"])
        else:
            choice = self.reg_layers[int(torch.randint(len(self.reg_layers), ()))]
        clean = keys_a[choice]
        perturbed, magnitude = self.generator.perturb(clean, self.nce_layers[choice], h.reg_noise,
                                                      direction=draws.get("reg_direction"),
                                                      uniform=draws.get("reg_uniform"))
        ids = draws.get("reg")
        k, used = self.patch_sampler([clean], h.num_patches, ids, mlp_indices=[choice])
        q, _ = self.patch_sampler([perturbed], h.num_patches, used, mlp_indices=[choice])
        loss = semantic_robustness_loss(q[0].float(), k[0].float(), gather_patches(magnitude, used[0]).float(),
                                        num_layers=len(self.nce_layers))
        self.last_perturbation = {"feat_perturbed": perturbed.detach(), "noise_magnitude": magnitude.detach()}
        return {"g_reg": h.reg * loss}, {"reg": loss.detach(), "reg_choice": torch.tensor(float(choice))}

    def generator_backward(self, g_total: Tensor, extra: Mapping[str, Tensor], optimizers: tuple[Any, ...]) -> None:
        """v2: one backward of ``g_total + reg * loss``; v1: ``g_total``, then the regulariser with F frozen."""
        if not extra or self.hparams.reg_type == "v2":
            super().generator_backward(g_total, extra, optimizers)
            return
        backward(self, g_total, *optimizers, retain_graph=True)
        set_requires_grad([self.patch_sampler], False)
        try:
            backward(self, sum(extra.values()), *optimizers)
        finally:
            set_requires_grad([self.patch_sampler], True)

    def official_losses(self, losses: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """CUT's, plus ``reg`` (the unweighted regulariser; 0 while it is inactive, as officially)."""
        out = super().official_losses(losses)
        out.setdefault("reg", torch.zeros(()))
        return out

    # ---------------------------------------------------------------- official checkpoints

    @classmethod
    def init_args_from_official(cls, opt: Any) -> dict[str, Any]:
        """zoo constructor arguments from the official options (CUT's, plus ``reg``, ``reg_noise``, ``reg_type``,
        ``reg_layers``, ``inact_epochs``, ``D_noise``)."""
        args = super().init_args_from_official(opt)
        opt = dict(vars(opt)) if not isinstance(opt, Mapping) else dict(opt)
        for theirs, ours in (("reg", "reg"), ("reg_noise", "reg_noise"), ("reg_type", "reg_type"),
                             ("inact_epochs", "inact_epochs"), ("D_noise", "d_noise")):
            if theirs in opt:
                args[ours] = opt[theirs]
        if "reg_layers" in opt:
            args["reg_layers"] = parse_layers(opt["reg_layers"])
        return args
