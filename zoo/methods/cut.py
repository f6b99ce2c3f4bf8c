"""CUT and FastCUT: contrastive unpaired translation.

Paper: Park, Efros, Zhang, Zhu, "Contrastive Learning for Unpaired Image-to-Image Translation", ECCV 2020
(arXiv 2007.15651). Official code: https://github.com/taesungp/contrastive-unpaired-translation; networks, losses,
update order and schedules reproduced, proven by the parity tests against fixtures of commit b3ac297.

One generator G (A -> B), no inverse and no cycle loss. The output keeps the content of the input because of
**PatchNCE**: features of G's encoder at ``nce_layers`` are sampled at ``num_patches`` random positions (the same
positions for the input and for the translation), projected by a small MLP per layer (the patch sampler, official
``netF``) and L2-normalised; each translated patch must pick the input patch at its own position among the other
positions of the same image (``nce_includes_all_negatives_from_minibatch``: of the whole batch), a cross-entropy
over similarities divided by ``nce_t``.

``mode`` picks the official presets (``--CUT_mode``), and any option given explicitly overrides them:

============  ==========  =======  ===================  ===================
mode          lambda_nce  nce_idt  flip_equivariance    epochs (+ decay)
============  ==========  =======  ===================  ===================
``cut``       1           True     False                200 + 200
``fastcut``   10          False    True                 150 + 50
============  ==========  =======  ===================  ===================

Faithful to the official implementation:

* One iteration: forward ``G(real)`` with ``real = cat(real_A, real_B)`` when ``nce_idt`` (identity pass, whose
  PatchNCE keeps G from changing target-domain images), flipped along the width when ``flip_equivariance`` decides
  so (probability 1/2); D step (``(GAN(D(fake), 0) + GAN(D(real_B), 1)) / 2``); G and patch-sampler step against
  the updated D: ``lambda_gan * GAN + NCE`` with ``NCE = (NCE(A, G(A)) + NCE(B, G(B))) / 2`` when ``nce_idt``.
  Under a flip the queries are flipped back and the keys come from the unflipped input; D sees the flipped fake.
* PatchNCE per layer is ``lambda_nce * mean(cross-entropy)``, averaged over the layers; keys are detached after the
  patch sampler; the negatives' diagonal is set to -10 before dividing by ``nce_t``.
* CUT ResNet generator with anti-aliased sampling, CUT PatchGAN, xavier(0.02) init of G, D and the sampler's MLPs;
  Adam (lr 2e-4, betas 0.5/0.999) per network; linear decay over ``n_epochs_decay`` epochs after ``n_epochs``.
* Official ``<epoch>_net_G.pth`` / ``_net_D.pth`` / ``_net_F.pth`` load unchanged (:meth:`load_official_weights`).

Deliberate deviations: the patch sampler's MLPs are built at construction from the generator's known channel counts
(officially at the first batch, ``data_dependent_initialize``); so they exist before the optimizers, in checkpoints
and under DDP from the start, with the same architecture and initialisation. Patch positions and flips come from
torch's RNG (officially numpy's). The PatchNCE negatives are grouped by the actual batch size (officially the
configured one, which differs on a last partial batch). When G normalises each sample on its own (instance norm,
no dropout) the keys are the encoder features of the forward pass instead of a second identical pass.

A PyTorch CPU defect the official code meets: ``instance_norm``'s backward is wrong for a batch of one NCHW image
when the incoming gradient is channels-last, which is what PatchNCE's patch gathering sends back into a residual
block's output (NCE layers 12 and 16) when G encodes one image at a time. zoo's instance norm hands such gradients
over contiguous and so gets the true gradient (:func:`zoo.nets.norm.reproduce_single_image_gradient_defect`; the
parity tests turn the correction off to replay what the official code computed on the oracle's CPU).

Configs: ``configs/cut.yaml`` and ``configs/fastcut.yaml`` (horse2zebra), ``configs/tiny/cut.yaml``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from zoo.compile import CompileSetting
from zoo.losses import GANMode, check_finite, gan_loss
from zoo.methods._common import (
    OFFICIAL_CUT_OPTIONS,
    StepOutput,
    adam,
    backward,
    build_official_schedulers,
    discriminator_losses,
    iteration_index,
    set_requires_grad,
)
from zoo.methods.base import ChannelsLast, TranslationMethod
from zoo.nets.cut import (
    CUTDiscriminatorType,
    PatchSampleF,
    build_cut_networks,
    generator_taps,
    patch_nce_loss,
)
from zoo.nets.init import InitType, init_weights
from zoo.nets.norm import NormType
from zoo.registry import PretrainedEntry, register_method, register_pretrained
from zoo.schedules import LRPolicy, StepAt

__all__ = ["CUT", "CUT_MODES", "parse_layers"]

CUTMode = Literal["cut", "fastcut"]

#: Options each ``mode`` sets unless they are given explicitly (the official ``--CUT_mode`` defaults).
CUT_MODES: dict[str, dict[str, Any]] = {
    "cut": {"lambda_nce": 1.0, "nce_idt": True, "flip_equivariance": False, "n_epochs": 200, "n_epochs_decay": 200},
    "fastcut": {"lambda_nce": 10.0, "nce_idt": False, "flip_equivariance": True, "n_epochs": 150,
                "n_epochs_decay": 50},
}

#: official option name -> zoo constructor argument
OFFICIAL_OPTIONS = {
    **OFFICIAL_CUT_OPTIONS, "lambda_NCE": "lambda_nce", "nce_idt": "nce_idt",
    "nce_includes_all_negatives_from_minibatch": "nce_includes_all_negatives_from_minibatch", "nce_T": "nce_t",
    "netF": "netF", "netF_nc": "netf_nc", "flip_equivariance": "flip_equivariance",
}


def parse_layers(layers: str | Sequence[int]) -> list[int]:
    """``"0,4,8"`` or ``[0, 4, 8]`` -> ``[0, 4, 8]``."""
    if isinstance(layers, str):
        return [int(v) for v in layers.split(",") if v.strip()]
    return [int(v) for v in layers]


@register_method("cut")
class CUT(TranslationMethod):
    """CUT / FastCUT (Park et al., ECCV 2020) with the official networks, objective and update order.

    Args:
        mode: ``cut`` or ``fastcut``: the official presets of ``lambda_nce``, ``nce_idt``, ``flip_equivariance``,
            ``n_epochs`` and ``n_epochs_decay`` (those left ``None``).
        input_nc: channels of domain A images.
        output_nc: channels of domain B images (must equal ``input_nc``: one encoder reads both domains).
        ngf: generator base width (64).
        ndf: discriminator base width (64).
        netG: ``resnet_9blocks`` (default), ``resnet_6blocks`` or any ``resnet_<N>blocks``.
        netD: ``basic`` (70x70 PatchGAN), ``n_layers`` (``n_layers_d`` layers) or ``pixel``.
        n_layers_d: depth of the ``n_layers`` discriminator.
        norm_g: generator normalisation (official ``normG``: ``instance``).
        norm_d: discriminator normalisation (official ``normD``: ``instance``).
        use_dropout: dropout in the residual blocks (official ``no_dropout`` is True: off).
        init_type: weight initialisation of G, D and the patch sampler (``xavier``).
        init_gain: its gain (0.02).
        no_antialias: stride-2 convs instead of conv + blur-pool (G and D).
        no_antialias_up: transposed convs instead of blur up-sampling in G.
        gan_mode: ``lsgan`` (official), ``vanilla``, ``wgangp`` (no penalty, as officially) or ``nonsaturating``.
        lambda_gan: weight of the adversarial term (1).
        lambda_nce: weight of PatchNCE (mode: 1 / 10); 0 turns it off.
        nce_idt: add PatchNCE on the identity pass ``G(B)`` and average the two (mode: True / False).
        nce_layers: generator layers whose outputs PatchNCE compares (``"0,4,8,12,16"``; a list or the official
            comma-separated string).
        nce_includes_all_negatives_from_minibatch: negatives from every image of the batch, not only the same one.
        nce_t: temperature (0.07).
        num_patches: positions sampled per layer (256).
        netF: ``mlp_sample`` (2-layer MLP per layer) or ``sample`` (no projection).
        netf_nc: MLP width (official ``netF_nc``, 256).
        flip_equivariance: flip G's input along the width with probability 1/2 (mode: False / True).
        lr: Adam learning rate of G, D and F (2e-4).
        beta1: Adam beta1 (0.5).
        beta2: Adam beta2 (0.999).
        lr_policy: ``linear`` (official), ``step``, ``plateau``, ``cosine``; counted in epochs.
        n_epochs: epochs at the initial learning rate (mode: 200 / 150).
        n_epochs_decay: epochs of linear decay to zero (mode: 200 / 50).
        epoch_count: starting epoch of the schedule.
        lr_decay_iters: epochs between x0.1 steps for ``lr_policy="step"``.
        lr_step_at: ``epoch_end`` (official loop) or ``epoch_start``.
        ema_decay: keep an EMA copy of G with this decay for ``translate`` (``None``: off; zoo addition).
        diff_augment: DiffAugment policy for the discriminator's inputs, e.g. ``color,translation,cutout``, for
            small datasets (``None``: off; zoo addition).
        channels_last: train in the channels-last memory format (same math). Off by default: on CPU the residual
            blocks' convolution backward is slower channels-last (13.8 vs 10.0 s per 256² CUT iteration measured).
        compile: compile the networks with ``torch.compile`` (``true``, or a mapping with ``mode``, ``dynamic``,
            ``fullgraph``, ``backend``; see :mod:`zoo.compile`). Models loaded from files start eager.
    """

    optimizer_steps_per_iteration = 3
    INFERENCE_MEMORY_FORMAT = torch.channels_last
    IMAGE_DISCRIMINATORS = ("discriminator",)
    OFFICIAL_NETWORKS = {"G": "generator", "D": "discriminator", "F": "patch_sampler"}
    #: zoo loss name -> official ``loss_<name>`` (see :meth:`official_losses`)
    OFFICIAL_LOSS_NAMES = {"g_gan": "G_GAN", "nce": "NCE", "nce_idt": "NCE_Y", "g_total": "G"}
    PAPER_METRICS = ("fid", "kid")
    #: the patch sampler's normalisation (SRUNIT uses its own)
    PATCH_NORMALIZE = "cut"
    #: the forward pass translates A and B in one generator call, as the official CUT does (SRUNIT: one call each)
    JOINT_FORWARD = True

    def __init__(
        self,
        *,
        mode: CUTMode = "cut",
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
        lambda_nce: float | None = None,
        nce_idt: bool | None = None,
        nce_layers: list[int] | str = "0,4,8,12,16",
        nce_includes_all_negatives_from_minibatch: bool = False,
        nce_t: float = 0.07,
        num_patches: int = 256,
        netF: Literal["mlp_sample", "sample"] = "mlp_sample",
        netf_nc: int = 256,
        flip_equivariance: bool | None = None,
        lr: float = 2e-4,
        beta1: float = 0.5,
        beta2: float = 0.999,
        lr_policy: LRPolicy = "linear",
        n_epochs: int | None = None,
        n_epochs_decay: int | None = None,
        epoch_count: int = 1,
        lr_decay_iters: int = 50,
        lr_step_at: StepAt = "epoch_end",
        ema_decay: float | None = None,
        diff_augment: str | None = None,
        channels_last: ChannelsLast = False,
        compile: CompileSetting = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        for key, value in CUT_MODES[mode].items():  # the preset, where no explicit value was given
            if self.hparams[key] is None:
                self.hparams[key] = value
        if input_nc != output_nc:
            raise ValueError(f"{type(self).__name__} needs input_nc == output_nc (one encoder reads both domains); "
                             f"got {input_nc} and {output_nc}")
        if num_patches < 1:
            raise ValueError(f"num_patches must be >= 1, got {num_patches}")
        self.nce_layers = parse_layers(nce_layers)
        if not self.nce_layers:
            raise ValueError("nce_layers must name at least one generator layer")
        self.generator, self.discriminator = build_cut_networks(self.hparams)
        self.patch_sampler = PatchSampleF(self.generator.feature_channels(self.nce_layers),
                                          use_mlp=netF == "mlp_sample", nc=netf_nc, normalize=self.PATCH_NORMALIZE)
        init_weights(self.patch_sampler, init_type, init_gain)
        self.build_ema(ema_decay)
        self.use_diff_augment(diff_augment)
        self.use_compile(compile)

    # ---------------------------------------------------------------- training

    @property
    def _per_sample_g(self) -> bool:
        """Whether G computes each sample on its own and deterministically (instance norm or none, no dropout), so
        that the forward pass's encoder features equal those of a separate encoding pass."""
        return self.hparams.norm_g in ("instance", "none") and not self.hparams.use_dropout

    def current_epoch_number(self, epoch: int | None = None) -> int:
        """The official 1-based epoch number (``epoch_count`` + epochs done): ``epoch`` when given."""
        if epoch is not None:
            return epoch
        _, done = iteration_index(self)
        return self.hparams.epoch_count + (done or 0)

    def flip_decision(self, draws: Mapping[str, Any]) -> bool:
        """Whether this iteration flips G's input (``flip_equivariance``; ``draws["flip"]`` overrides the draw)."""
        if not self.hparams.flip_equivariance:
            return False
        if "flip" in draws:
            return bool(draws["flip"])
        return bool(torch.rand(()) < 0.5)

    def patch_nce(self, keys: Sequence[Tensor], queries: Sequence[Tensor], batch_size: int,
                  patch_ids: Sequence[Tensor] | None = None) -> Tensor:
        """Official ``calculate_NCE_loss``: mean over layers of ``lambda_nce * mean PatchNCE``.

        Args:
            keys: per NCE layer (B, C_l, H_l, W_l) features of the source images (detached after the sampler).
            queries: the same for the translated images.
            batch_size: B.
            patch_ids: per layer (P,) positions instead of sampling them.
        """
        h = self.hparams
        key_samples, ids = self.patch_sampler(keys, h.num_patches, patch_ids)
        query_samples, _ = self.patch_sampler(queries, h.num_patches, ids)
        total = 0.0
        for q, k in zip(query_samples, key_samples, strict=True):
            per_patch = patch_nce_loss(q.float(), k.float(), batch_size=batch_size, nce_t=h.nce_t,
                                       all_negatives_from_minibatch=h.nce_includes_all_negatives_from_minibatch)
            total = total + (per_patch * h.lambda_nce).mean()
        return total / len(self.nce_layers)

    def generator_pass(self, real_a: Tensor, real_b: Tensor, flipped: bool, *, keys_need_grad: bool = False,
                       ) -> tuple[Tensor, Tensor | None, list[Tensor], list[Tensor] | None]:
        """Official ``forward``: ``G(real_A)`` (and ``G(real_B)`` with ``nce_idt``) from the possibly flipped input,
        with the NCE keys: encoder features of the *unflipped* inputs.

        Returns:
            ``(fake_b, idt_b, keys_a, keys_b)``; ``idt_b``/``keys_b`` are None without ``nce_idt``.
        """
        h = self.hparams
        real = (real_a, real_b) if h.nce_idt else (real_a, None)
        if flipped:
            real = tuple(None if x is None else x.flip(3) for x in real)
        reuse_taps = not flipped and self._per_sample_g and h.lambda_nce > 0
        layers = self.nce_layers if reuse_taps else ()
        if layers:
            fake_b, idt_b, keys_a, keys_b = generator_taps(self.generator, *real, layers, joint=self.JOINT_FORWARD)
        else:
            if real[1] is None:
                fake_b, idt_b = self.generator(real[0]), None
            elif self.JOINT_FORWARD:
                fake_b, idt_b = self.generator(torch.cat(real)).split([real_a.shape[0], real_b.shape[0]])
            else:
                fake_b, idt_b = self.generator(real[0]), self.generator(real[1])
            keys_a = keys_b = None
            if h.lambda_nce > 0:
                with torch.set_grad_enabled(keys_need_grad and torch.is_grad_enabled()):
                    keys_a = self.generator(real_a, self.nce_layers, encode_only=True)
                    keys_b = self.generator(real_b, self.nce_layers, encode_only=True) if h.nce_idt else None
        return fake_b, idt_b, keys_a, keys_b

    def query_features(self, fake_b: Tensor, idt_b: Tensor | None, flipped: bool) -> tuple[list[Tensor], list | None]:
        """Encoder features of the translations at the NCE layers (one pass per batch, as officially), flipped back
        when the input was flipped."""
        q_fake = self.generator(fake_b, self.nce_layers, encode_only=True)
        q_idt = None if idt_b is None else self.generator(idt_b, self.nce_layers, encode_only=True)
        if flipped:
            q_fake = [f.flip(3) for f in q_fake]
            q_idt = None if q_idt is None else [f.flip(3) for f in q_idt]
        return q_fake, q_idt

    def regularizer(self, real_a: Tensor, keys_a: list[Tensor] | None, draws: Mapping[str, Any], epoch: int,
                    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Extra generator terms (SRUNIT's): ``(weighted losses, diagnostics)``; none for CUT."""
        return {}, {}

    def generator_trains(self, epoch: int) -> bool:
        """Whether this iteration has a generator step (always, for CUT)."""
        return True

    def optimization_step(self, real_a: Tensor, real_b: Tensor, opt_g: Any, opt_d: Any, opt_f: Any = None, *,
                          draws: Mapping[str, Any] | None = None, epoch: int | None = None) -> StepOutput:
        """One official iteration: forward, D step, then G and patch-sampler step against the updated D.

        Args:
            real_a: (B, C, H, W) in [-1, 1].
            real_b: (B, C, H, W) in [-1, 1].
            opt_g, opt_d, opt_f: optimizers of G, D and the patch sampler (none with ``netF="sample"``).
            draws: fixed random draws instead of sampling them (parity tests): ``flip`` (bool), ``nce`` and
                ``nce_idt`` (per layer (P,) positions), and SRUNIT's ``reg_choice``, ``reg_direction``,
                ``reg_uniform``, ``reg``.
            epoch: the official 1-based epoch number (default: from the Trainer, ``epoch_count`` outside one).

        Returns:
            Loss terms (``d_*`` and ``g_*`` weighted as in the objective, ``g_total`` the G objective; ``nce`` and
            ``nce_idt`` the official ``NCE``/``NCE_Y``) and ``fake_b`` (and ``idt_b``).
        """
        h, draws = self.hparams, draws or {}
        iteration, epoch_index = iteration_index(self)
        epoch = self.current_epoch_number(epoch)
        flipped = self.flip_decision(draws)
        trains_g = self.generator_trains(epoch)
        fake_b, idt_b, keys_a, keys_b = self.generator_pass(real_a, real_b, flipped, keys_need_grad=self.needs_key_grad)

        opt_d.zero_grad()
        losses = discriminator_losses(self.discriminator, fake_b.detach(), real_b, h.gan_mode,
                                      joint=h.norm_d in ("instance", "none"))
        check_finite(losses, iteration=iteration, epoch=epoch_index)
        backward(self, losses["d_fake"] + losses["d_real"], opt_d)
        opt_d.step()
        images = {"fake_b": fake_b} if idt_b is None else {"fake_b": fake_b, "idt_b": idt_b}
        if not trains_g:  # the G objective is still computed, for the logs (as officially)
            with torch.no_grad():
                g_losses, diagnostics = self.generator_objective(real_a, real_b, fake_b, idt_b, keys_a, keys_b,
                                                                 flipped, draws)
            return StepOutput({**losses, **g_losses, **diagnostics}, images)

        set_requires_grad([self.discriminator], False)
        opt_g.zero_grad()
        if opt_f is not None:
            opt_f.zero_grad()
        g_losses, diagnostics = self.generator_objective(real_a, real_b, fake_b, idt_b, keys_a, keys_b, flipped,
                                                         draws)
        g_total = g_losses["g_total"]
        extra, extra_diagnostics = self.regularizer(real_a, keys_a, draws, epoch)
        diagnostics.update(extra_diagnostics)
        check_finite({**g_losses, **extra}, iteration=iteration, epoch=epoch_index)
        self.generator_backward(g_total, extra, (opt_g, opt_f) if opt_f is not None else (opt_g,))
        opt_g.step()
        if opt_f is not None:
            opt_f.step()
        set_requires_grad([self.discriminator], True)
        self.update_ema()
        return StepOutput({**losses, **g_losses, **extra, **diagnostics}, images)

    def generator_objective(self, real_a: Tensor, real_b: Tensor, fake_b: Tensor, idt_b: Tensor | None,
                            keys_a: list[Tensor] | None, keys_b: list[Tensor] | None, flipped: bool,
                            draws: Mapping[str, Any]) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Official ``compute_G_loss`` against the current D: weighted terms with their sum ``g_total``, and the
        unweighted ``nce`` / ``nce_idt`` diagnostics."""
        h = self.hparams
        g_losses: dict[str, Tensor] = {}
        if h.lambda_gan > 0:
            g_losses["g_gan"] = h.lambda_gan * gan_loss(self.discriminator(fake_b), True, h.gan_mode)
        diagnostics: dict[str, Tensor] = {}
        if h.lambda_nce > 0:
            q_fake, q_idt = self.query_features(fake_b, idt_b, flipped)
            nce = self.patch_nce(keys_a, q_fake, real_a.shape[0], draws.get("nce"))
            diagnostics["nce"] = nce.detach()
            if h.nce_idt:
                nce_idt = self.patch_nce(keys_b, q_idt, real_b.shape[0], draws.get("nce_idt"))
                diagnostics["nce_idt"] = nce_idt.detach()
                g_losses.update(g_nce=0.5 * nce, g_nce_idt=0.5 * nce_idt)
            else:
                g_losses["g_nce"] = nce
        g_losses["g_total"] = sum(g_losses.values()) if g_losses else fake_b.new_zeros(())
        return g_losses, diagnostics

    @property
    def needs_key_grad(self) -> bool:
        """Whether the NCE keys' graph is needed (SRUNIT's regulariser differentiates through them)."""
        return False

    def generator_backward(self, g_total: Tensor, extra: Mapping[str, Tensor], optimizers: tuple[Any, ...]) -> None:
        """Back-propagate the G objective (plus the regulariser terms in ``extra``) for ``optimizers`` (G's, F's)."""
        backward(self, g_total + sum(extra.values()) if extra else g_total, *optimizers)

    def validation_metrics(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """``idt``: L1 in model space between ``G(real_b)`` (live generator) and ``real_b``, (B, C, H, W) each."""
        idt_b = self.generator(batch["real_b"])
        return {"idt": F.l1_loss(idt_b.float(), batch["real_b"].float())}

    def configure_optimizers(self) -> tuple[list[torch.optim.Adam], list[dict[str, Any]]]:
        h = self.hparams
        betas = (h.beta1, h.beta2)
        optimizers = [adam(self.generator.parameters(), lr=h.lr, betas=betas),
                      adam(self.discriminator.parameters(), lr=h.lr, betas=betas)]
        if any(True for _ in self.patch_sampler.parameters()):
            optimizers.append(adam(self.patch_sampler.parameters(), lr=h.lr, betas=betas))
        return optimizers, build_official_schedulers(optimizers, h)

    def official_losses(self, losses: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """zoo's loss terms under the official names (``D``, ``D_fake``, ``D_real``, ``G_GAN``, ``NCE``, ...)."""
        out = {"D_fake": losses["d_fake"] / 0.5, "D_real": losses["d_real"] / 0.5,
               "D": losses["d_fake"] + losses["d_real"]}
        out.update({theirs: losses[ours] for ours, theirs in self.OFFICIAL_LOSS_NAMES.items() if ours in losses})
        return out

    # ---------------------------------------------------------------- official checkpoints

    @classmethod
    def init_args_from_official(cls, opt: Any) -> dict[str, Any]:
        """zoo constructor arguments from the official options (``argparse.Namespace`` or dict)."""
        opt = dict(vars(opt)) if not isinstance(opt, Mapping) else dict(opt)
        args = {ours: opt[theirs] for theirs, ours in OFFICIAL_OPTIONS.items() if theirs in opt}
        if "CUT_mode" in opt:
            args["mode"] = {"cut": "cut", "fastcut": "fastcut"}[str(opt["CUT_mode"]).lower()]
        if "no_dropout" in opt:
            args["use_dropout"] = not opt["no_dropout"]
        if "nce_layers" in opt:
            args["nce_layers"] = parse_layers(opt["nce_layers"])
        return args

    def official_network_norm(self, net: str) -> str:
        """Normalisation of official network ``net``: ``norm_g`` for G, ``norm_d`` for D, none in the sampler."""
        return {"G": self.hparams.norm_g, "D": self.hparams.norm_d}.get(net, "none")


# --------------------------------------------------------------------------------------------------------------------
# Official models (the authors' pretrained_models.tar; download by hand, then put the file in $ZOO_WEIGHTS_DIR)
# --------------------------------------------------------------------------------------------------------------------

for _name, _mode in (("horse2zebra", "cut"), ("cat2dog", "cut"), ("cityscapes", "cut"), ("horse2zebra", "fastcut"),
                     ("cat2dog", "fastcut"), ("cityscapes", "fastcut")):
    register_pretrained(f"cut.{_name}" if _mode == "cut" else f"cut.{_name}_fastcut", PretrainedEntry(
        method="cut",
        init_args={"mode": _mode, "netG": "resnet_9blocks", "ngf": 64, "norm_g": "instance"},
        url=None,  # one tar of all models (efrosgans.eecs.berkeley.edu/CUT/pretrained_models.tar); no single file
        sha256=None,
        filename=f"{_mode}_{_name}_net_G.pth",
        format="official",
        official_net="G",
        direction="a2b",
        origin="https://github.com/taesungp/contrastive-unpaired-translation (README, pretrained models)",
        notes=f"Official {_mode.upper()} generator for {_name}: extract "
              f"{_name}_{'CUT' if _mode == 'cut' else 'FastCUT'}/latest_net_G.pth from the authors' "
              f"pretrained_models.tar and save it as {_mode}_{_name}_net_G.pth.",
    ))
