"""Re-creations of official training iterations (pix2pix, CycleGAN, DECENT, VSAIT, LOMIT, CUT, SRUNIT, pix2pixHD,
InstaFormer), used
as the speed and memory reference.

The official ``optimize_parameters`` is reproduced call for call on the same networks (zoo's networks have the
official layout and produce the same numbers): one network call per image set, separate ``backward`` calls where
the official code makes them, ``torch.optim.Adam`` with its default (per-parameter, not fused) implementation,
contiguous NCHW tensors. Measuring it next to zoo's step in the same process gives the "at least as fast as the
official loop on the same machine" ratio that ``bench_methods.py --reference`` prints. The re-creations run copies of
zoo's network modules in NCHW, with zoo's few-output convolutions and shape-only reflection pads turned back into the
plain PyTorch modules (:func:`official_copy`); other speed-ups inside zoo's modules count for both sides.
"""

from __future__ import annotations

from itertools import chain
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.losses import gan_loss


def official_copy(net: nn.Module) -> nn.Module:
    """A contiguous-format deep copy of ``net`` whose :class:`~zoo.nets.few_output_conv.Conv2dFewOutputs` and
    :class:`~zoo.nets.padding.ReflectionPad2d` layers run as the plain ``nn.Conv2d`` and ``nn.ReflectionPad2d`` they
    replace (same parameters), as in the official code."""
    import copy

    from zoo.nets.few_output_conv import Conv2dFewOutputs
    from zoo.nets.padding import ReflectionPad2d

    net = copy.deepcopy(net).to(memory_format=torch.contiguous_format)
    for module in net.modules():
        if isinstance(module, Conv2dFewOutputs):
            module.__class__ = nn.Conv2d
        elif isinstance(module, ReflectionPad2d):
            module.__class__ = nn.ReflectionPad2d
    return net


def _set_requires_grad(nets: list[nn.Module], flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad = flag


class OfficialCycleGANLoop:
    """``CycleGANModel.optimize_parameters`` on the networks of a zoo ``CycleGAN`` (deep-copied)."""

    def __init__(self, model) -> None:
        h = model.hparams
        self.h = h
        self.G_A, self.G_B, self.D_A, self.D_B = (
            official_copy(net)
            for net in (model.generator_a2b, model.generator_b2a, model.discriminator_b, model.discriminator_a))
        self.opt_G = torch.optim.Adam(chain(self.G_A.parameters(), self.G_B.parameters()), lr=h.lr,
                                      betas=(h.beta1, 0.999))
        self.opt_D = torch.optim.Adam(chain(self.D_A.parameters(), self.D_B.parameters()), lr=h.lr,
                                      betas=(h.beta1, 0.999))

    def step(self, real_A: Tensor, real_B: Tensor) -> None:
        h = self.h
        fake_B = self.G_A(real_A)
        rec_A = self.G_B(fake_B)
        fake_A = self.G_B(real_B)
        rec_B = self.G_A(fake_A)
        _set_requires_grad([self.D_A, self.D_B], False)
        self.opt_G.zero_grad()
        idt_A = self.G_A(real_B)
        loss_idt_A = F.l1_loss(idt_A, real_B) * h.lambda_b * h.lambda_identity
        idt_B = self.G_B(real_A)
        loss_idt_B = F.l1_loss(idt_B, real_A) * h.lambda_a * h.lambda_identity
        loss_G = (gan_loss(self.D_A(fake_B), True, h.gan_mode) + gan_loss(self.D_B(fake_A), True, h.gan_mode)
                  + F.l1_loss(rec_A, real_A) * h.lambda_a + F.l1_loss(rec_B, real_B) * h.lambda_b
                  + loss_idt_A + loss_idt_B)
        loss_G.backward()
        self.opt_G.step()
        _set_requires_grad([self.D_A, self.D_B], True)
        self.opt_D.zero_grad()
        for D, real, fake in ((self.D_A, real_B, fake_B), (self.D_B, real_A, fake_A)):
            loss_D = 0.5 * (gan_loss(D(real), True, h.gan_mode) + gan_loss(D(fake.detach()), False, h.gan_mode))
            loss_D.backward()
        self.opt_D.step()


    @torch.no_grad()
    def infer(self, real_A: Tensor) -> Tensor:
        """The official test.py forward: no_grad, the network in train mode (its default)."""
        return self.G_A(real_A)


class OfficialPix2PixLoop:
    """``Pix2PixModel.optimize_parameters`` on the networks of a zoo ``Pix2Pix`` (deep-copied)."""

    def __init__(self, model) -> None:
        h = model.hparams
        self.h = h
        self.G, self.D = (official_copy(net)
                          for net in (model.generator, model.discriminator))
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=h.lr, betas=(h.beta1, 0.999))
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=h.lr, betas=(h.beta1, 0.999))

    def step(self, real_A: Tensor, real_B: Tensor) -> None:
        h = self.h
        fake_B = self.G(real_A)
        _set_requires_grad([self.D], True)
        self.opt_D.zero_grad()
        loss_D_fake = gan_loss(self.D(torch.cat((real_A, fake_B), 1).detach()), False, h.gan_mode)
        loss_D_real = gan_loss(self.D(torch.cat((real_A, real_B), 1)), True, h.gan_mode)
        (0.5 * (loss_D_fake + loss_D_real)).backward()
        self.opt_D.step()
        _set_requires_grad([self.D], False)
        self.opt_G.zero_grad()
        loss_G = (gan_loss(self.D(torch.cat((real_A, fake_B), 1)), True, h.gan_mode)
                  + F.l1_loss(fake_B, real_B) * h.lambda_l1)
        loss_G.backward()
        self.opt_G.step()


    @torch.no_grad()
    def infer(self, real_A: Tensor) -> Tensor:
        """The official test.py forward: no_grad, the network in train mode (its default)."""
        return self.G(real_A)


class OfficialDECENTLoop:
    """DECENT's ``optimize_parameters`` (CUT code base) on the networks of a zoo ``DECENT`` (deep-copied).

    Two generator calls (``G(x, layers)``, ``G(y, layers)``), the flows' Adam (amsgrad) with its per-parameter polyak
    average, the flows swapped to their averaged weights for the generator step and back, one discriminator call per
    image set.
    """

    def __init__(self, model) -> None:
        from zoo.methods.decent import density_change_variance, flow_nll

        self.h = h = model.hparams
        self.layers = list(model.var_layers)
        self.flow_nll, self.variance = flow_nll, density_change_variance
        self.G, self.D, self.F_A, self.F_B = (
            official_copy(net)
            for net in (model.generator, model.discriminator, model.density_a, model.density_b))
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=h.lr, betas=(h.beta1, h.beta2))
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=h.lr, betas=(h.beta1, h.beta2))
        self.flow_params = [*self.F_A.parameters(), *self.F_B.parameters()]
        self.opt_F = torch.optim.Adam(self.flow_params, lr=h.flow_lr, betas=(0.9, 0.999), amsgrad=True, foreach=False)
        self.flow_average = [torch.zeros_like(p) for p in self.flow_params]

    @torch.no_grad()
    def _swap_flows(self) -> None:
        for p, avg in zip(self.flow_params, self.flow_average, strict=True):
            tmp = p.detach().clone()
            p.copy_(avg)
            avg.copy_(tmp)

    def step(self, real_A: Tensor, real_B: Tensor) -> None:
        h = self.h
        fake_B, feats_A = self.G(real_A, self.layers)
        idt_B, feats_B = self.G(real_B, self.layers)
        # flows
        self.opt_F.zero_grad()
        lp_a, _, _ = self.F_A(feats_A, h.num_patches, detach=True)
        lp_b, _, _ = self.F_B(feats_B, h.num_patches, detach=True)
        self.flow_nll(lp_a, lp_b)[0].backward()
        torch.nn.utils.clip_grad_norm_(self.F_A.parameters(), 0.1)
        torch.nn.utils.clip_grad_norm_(self.F_B.parameters(), 0.1)
        self.opt_F.step()
        with torch.no_grad():
            for p, avg in zip(self.flow_params, self.flow_average, strict=True):
                avg.mul_(h.flow_ema).add_(p, alpha=1 - h.flow_ema)
        # discriminator
        _set_requires_grad([self.D], True)
        self.opt_D.zero_grad()
        loss_D = 0.5 * (gan_loss(self.D(fake_B.detach()), False, h.gan_mode)
                        + gan_loss(self.D(real_B), True, h.gan_mode))
        loss_D.backward()
        self.opt_D.step()
        # generator with the flows' averaged weights
        self._swap_flows()
        _set_requires_grad([self.D, self.F_A, self.F_B], False)
        self.opt_G.zero_grad()
        feats_fake = self.G(fake_B, self.layers, encode_only=True)
        with torch.no_grad():
            lp_src, dims, ids = self.F_A(feats_A, h.num_patches, detach=True)
        lp_fake, _, _ = self.F_B(feats_fake, h.num_patches, ids)
        var = self.variance(lp_src, lp_fake, dims, real_A.shape[0], var_all=h.var_all)[0]
        loss_G = (h.lambda_gan * gan_loss(self.D(fake_B), True, h.gan_mode)
                  + h.lambda_idt * F.l1_loss(idt_B, real_B) + h.lambda_var * var)
        loss_G.backward()
        self.opt_G.step()
        _set_requires_grad([self.F_A, self.F_B], True)
        self._swap_flows()

    @torch.no_grad()
    def infer(self, real_A: Tensor) -> Tensor:
        """The official test.py forward: no_grad, the network in train mode (its default)."""
        return self.G(real_A)


class OfficialVSAITLoop:
    """VSAIT's Lightning ``training_step`` (one discriminator scale, the default) on the networks of a zoo ``VSAIT``.

    As officially: the generator step encodes the fake and the source with VGG and the projection; the
    discriminator step regenerates the fake and encodes fake, source and target again; VGG's parameters keep
    ``requires_grad`` (they are in no optimizer, so their gradients are computed and never used); Lightning's
    optimizer toggling freezes the other optimizer's parameters in each step.
    """

    def __init__(self, model) -> None:
        from zoo.losses.vsa import gan_list_loss, vsa_loss

        self.h = h = model.hparams
        self.gan_list_loss, self.vsa_loss = gan_list_loss, vsa_loss
        self.G, self.map_net, self.D, self.vgg, self.lsh = (
            official_copy(net)
            for net in (model.generator, model.mapping, model.discriminator.net[0], model.feature_extractor,
                        model.encoder))
        self.vgg.requires_grad_(True)
        g_params = [*self.G.parameters(), *self.map_net.parameters()]
        self.opt_G = torch.optim.Adam(g_params, lr=h.lr_g, betas=tuple(h.betas_g), weight_decay=h.weight_decay_g)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=h.lr_d, betas=tuple(h.betas_d),
                                      weight_decay=h.weight_decay_d)

    def hv(self, images: Tensor, domain: str) -> Tensor:
        return self.lsh(self.vgg(images, domain))

    def step(self, real_A: Tensor, real_B: Tensor) -> None:
        h = self.h
        _set_requires_grad([self.D], False)
        self.opt_G.zero_grad()
        fake = self.G(real_A)
        hv_fake, hv_src = self.hv(fake, "target"), self.hv(real_A, "source")
        mapped = self.map_net(hv_src)
        adv = self.gan_list_loss([self.D(hv_fake), self.D(hv_src * mapped)], [1.0, 1.0], h.gan_loss)
        vsa = self.vsa_loss(hv_fake * mapped.detach(), hv_src.detach())
        (h.lambda_vsa * vsa + adv).backward()
        self.opt_G.step()
        _set_requires_grad([self.D], True)
        _set_requires_grad([self.G, self.map_net], False)
        self.opt_D.zero_grad()
        fake = self.G(real_A)
        hv_src = self.hv(real_A, "source")
        outputs = [self.D(self.hv(fake.detach(), "target")), self.D(hv_src * self.map_net(hv_src)),
                   self.D(self.hv(real_B, "target"))]
        self.gan_list_loss(outputs, [0.0, 0.0, 1.0], h.gan_loss).backward()
        self.opt_D.step()
        _set_requires_grad([self.G, self.map_net], True)

    @torch.no_grad()
    def infer(self, real_A: Tensor) -> Tensor:
        """The official test forward: ``g_net(x)`` under no_grad."""
        return self.G(real_A)


class OfficialLOMITLoop:
    """LOMIT's ``Run.train`` iteration (``update_D`` twice, ``update_G`` every ``n_critic``) on a zoo ``LOMIT``'s
    networks.

    As officially: each ``update_D`` call runs ``D(x)``, a full ``G(x, y)`` with a graph (its result detached), ``D``
    on the fake and the gradient penalty; the first direction's loss graph stays alive until the second call's
    single backward. ``update_G`` calls the content encoder, mask network, style encoder (four times per stage) and
    decoder one image set at a time, ``D`` twice, and does not freeze ``D`` (its gradients are computed and later
    zeroed). Both networks stay in train mode.
    """

    def __init__(self, model) -> None:
        from zoo.nets.lomit import mask_regularizers, upsample_mask

        self.h = h = model.hparams
        self.mask_regularizers, self.up = mask_regularizers, upsample_mask
        self.G, self.D = official_copy(model.generator), official_copy(model.discriminator)
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=h.g_lr, betas=(h.beta1, h.beta2))
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=h.d_lr, betas=(h.beta1, h.beta2))
        self.iteration = 0

    @staticmethod
    def _cls(logit: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(logit, target, reduction="sum") / logit.shape[0]

    def _update_D(self, x: Tensor, y: Tensor, label: Tensor, d_loss: Tensor | float = 0.0) -> Tensor:
        h = self.h
        src, cls = self.D(x)
        d_real, d_cls = -src.mean(), self._cls(cls, label)
        fake = self.G(x, y)
        d_fake = self.D(fake.detach())[0].mean()
        alpha = torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype)
        x_hat = (alpha * x.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
        src_hat = self.D(x_hat)[0]
        (grad,) = torch.autograd.grad(src_hat, x_hat, torch.ones_like(src_hat), retain_graph=True, create_graph=True)
        gp = ((grad.flatten(1).pow(2).sum(1).sqrt() - 1) ** 2).mean()
        return d_loss + d_real + d_fake + h.lambda_cls * d_cls + h.lambda_gp * gp

    def _styles(self, x: Tensor, m: Tensor) -> tuple[Tensor, Tensor]:
        enc = self.G.s_encoder
        return enc(self.up(m) * x, True), enc(self.up(1 - m) * x, False)

    def _update_G(self, x_A: Tensor, x_B: Tensor, label_A: Tensor, label_B: Tensor) -> None:
        h, G, l1 = self.h, self.G, F.l1_loss
        c_A, c_B = G.c_encoder(x_A), G.c_encoder(x_B)
        m_A, m_B = G.mask(c_A, c_B), G.mask(c_B, c_A)
        (s_fA, s_bA), (s_fB, s_bB) = self._styles(x_A, m_A), self._styles(x_B, m_B)
        x_AB, x_BA = G.decoder(c_A, m_A, s_fB, s_bA), G.decoder(c_B, m_B, s_fA, s_bB)
        (src_AB, cls_AB), (src_BA, cls_BA) = self.D(x_AB), self.D(x_BA)
        c_AB, c_BA = G.c_encoder(x_AB), G.c_encoder(x_BA)
        m_AB, m_BA = G.mask(c_AB, c_BA), G.mask(c_BA, c_AB)
        (s_fAB, s_bAB), (s_fBA, s_bBA) = self._styles(x_AB, m_AB), self._styles(x_BA, m_BA)
        x_ABA, x_BAB = G.decoder(c_AB, m_AB, s_fBA, s_bAB), G.decoder(c_BA, m_BA, s_fAB, s_bBA)
        m_AA, m_BB = G.mask(c_A, c_A), G.mask(c_B, c_B)
        x_AA, x_BB = G.decoder(c_A, m_AA, s_fA, s_bA), G.decoder(c_B, m_BB, s_fB, s_bB)
        sim_A, min_A, smooth_A = self.mask_regularizers([m_A, m_AB, m_AA], c_A.detach())
        sim_B, min_B, smooth_B = self.mask_regularizers([m_B, m_BA, m_BB], c_B.detach())
        g_loss = (-(src_AB.mean() + src_BA.mean())
                  + h.lambda_x_rec * (l1(x_AA, x_A) + l1(x_BB, x_B))
                  + h.lambda_x_cyc * (l1(x_ABA, x_A) + l1(x_BAB, x_B))
                  + h.lambda_cls * (self._cls(cls_AB, label_B) + self._cls(cls_BA, label_A))
                  + h.lambda_s_f * (l1(s_fAB, s_fB) + l1(s_fBA, s_fA))
                  + h.lambda_s_b * (l1(s_bAB, s_bA) + l1(s_bBA, s_bB))
                  + h.lambda_c * (l1(c_AB, c_A) + l1(c_BA, c_B))
                  + h.lambda_mask_min * (min_A + min_B) + h.lambda_mask_smooth * (smooth_A + smooth_B)
                  + h.lambda_mask_sim * (sim_A + sim_B) - h.lambda_style_reg * l1(s_fA, s_fB))
        self.opt_G.zero_grad()
        g_loss.backward()
        self.opt_G.step()

    def step(self, x_A: Tensor, x_B: Tensor, label_A: Tensor, label_B: Tensor, *masks: Tensor) -> None:
        """One iteration on ``optimization_step``'s inputs (the masks are not used by the authors' code)."""
        d_loss = self._update_D(x_A, x_B, label_A)
        d_loss = self._update_D(x_B, x_A, label_B, d_loss)
        self.opt_D.zero_grad()
        d_loss.backward()
        self.opt_D.step()
        del d_loss
        if self.iteration % self.h.n_critic == 0:
            self._update_G(x_A, x_B, label_A, label_B)
        self.iteration += 1

    @torch.no_grad()
    def infer(self, x_A: Tensor, x_B: Tensor | None = None) -> Tensor:
        """One official ``G(x, exemplar)`` call under no_grad (the generator in train mode, as in ``Run.test``)."""
        return self.G(x_A, x_A if x_B is None else x_B)


class OfficialDraws:
    """The random draws of the CUT code base, made as the authors make them: ``np.random.permutation`` of the
    positions in the patch sampler, ``np.random.random`` for the flip, ``np.random.choice`` for SRUNIT's scale,
    ``torch.randn`` / ``torch.rand`` for SRUNIT's perturbation.

    ``drawn`` lists the current step's draws as ``(phase, kind, value)`` in call order (phase: the official function
    that draws, ``forward``, ``NCE``, ``NCE_Y`` or ``reg``), for equivalence checks that feed them to zoo; values put
    in ``replay`` are returned, in order, instead of new draws (to replay the authors' recorded draws).
    """

    def __init__(self) -> None:
        self.replay: list[Any] = []
        self.drawn: list[tuple[str, str, Any]] = []

    def _take(self, phase: str, kind: str, draw) -> Any:
        value = self.replay.pop(0) if self.replay else draw()
        self.drawn.append((phase, kind, value))
        return value

    def permutation(self, n: int, phase: str) -> np.ndarray:
        return np.asarray(self._take(phase, "permutation", lambda: np.random.permutation(n)))

    def random(self, phase: str) -> float:
        return float(self._take(phase, "uniform", np.random.random))

    def choice(self, options: list[int], phase: str) -> int:
        return int(np.asarray(self._take(phase, "choice", lambda: np.random.choice(options))).reshape(-1)[0])

    def randn(self, like: Tensor, phase: str) -> Tensor:
        return self._take(phase, "randn", lambda: torch.randn(like.shape)).to(like)

    def rand(self, shape: tuple[int, ...], like: Tensor, phase: str) -> Tensor:
        return self._take(phase, "rand", lambda: torch.rand(shape)).to(like)


def official_patch_nce(feat_q: Tensor, feat_k: Tensor, batch_size: int, nce_t: float,
                       all_negatives_from_minibatch: bool) -> Tensor:
    """CUT's ``PatchNCELoss`` call in plain torch: (N, D) query and key samples -> (N,) cross-entropies.

    Positive logits by a batched (1 x D) @ (D x 1) product, negatives by one bmm per image (or one for the batch),
    the diagonal filled in place with -10, logits divided by ``nce_t``; keys are detached.
    """
    n, dim = feat_q.shape
    feat_k = feat_k.detach()
    l_pos = torch.bmm(feat_q.view(n, 1, -1), feat_k.view(n, -1, 1)).view(n, 1)
    groups = 1 if all_negatives_from_minibatch else batch_size
    q, k = feat_q.view(groups, -1, dim), feat_k.view(groups, -1, dim)
    patches = q.size(1)
    l_neg = torch.bmm(q, k.transpose(2, 1))
    l_neg.masked_fill_(torch.eye(patches, device=q.device, dtype=torch.bool)[None, :, :], -10.0)
    out = torch.cat((l_pos, l_neg.view(-1, patches)), dim=1) / nce_t
    return F.cross_entropy(out, torch.zeros(out.size(0), dtype=torch.long, device=q.device), reduction="none")


class OfficialCUTLoop:
    """``CUTModel.optimize_parameters`` on the networks of a zoo ``CUT`` (deep-copied).

    As officially: ``forward`` runs one ``G(cat(real_A, real_B))`` (``nce_idt``; input flipped when
    ``flip_equivariance`` draws so); D step on ``fake_B.detach()`` and ``real_B`` (two D calls); G step against the
    updated D, where each ``calculate_NCE_loss(src, tgt)`` runs ``G(tgt, nce_layers, encode_only=True)`` and
    ``G(src, ...)`` as separate passes, samples numpy permutations for the keys and reuses them for the queries, one
    PatchNCE call per layer; one backward; Adam steps G, then F. The loss values of the last step are kept in
    ``losses`` (official names) and its draws in ``draws.drawn``.
    """

    def __init__(self, model) -> None:
        self.h = h = model.hparams
        self.layers = list(model.nce_layers)
        self.G, self.D, self.F = (official_copy(net)
                                  for net in (model.generator, model.discriminator, model.patch_sampler))
        betas = (h.beta1, h.beta2)
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=h.lr, betas=betas)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=h.lr, betas=betas)
        # the official optimizer_F exists for netF "mlp_sample" only
        self.opt_F = (torch.optim.Adam(self.F.parameters(), lr=h.lr, betas=betas)
                      if any(True for _ in self.F.parameters()) else None)
        self.draws = OfficialDraws()
        self.losses: dict[str, Tensor] = {}

    def sample_patches(self, feats: list[Tensor], phase: str, patch_ids: list[Tensor] | None = None,
                       mlp_indices: list[int] | None = None) -> tuple[list[Tensor], list[Tensor]]:
        """``netF(feats, num_patches, patch_ids)``: per layer a numpy permutation of the positions (unless given),
        its first ``num_patches`` entries gathered, the layer's MLP, L2 normalisation (CUT's or SRUNIT's)."""
        num_patches = self.h.num_patches
        samples, ids = [], []
        for k, feat in enumerate(feats):
            index = k if mlp_indices is None else mlp_indices[k]
            flat = feat.permute(0, 2, 3, 1).flatten(1, 2)
            if patch_ids is not None:
                patch_id = patch_ids[k]
            else:
                perm = self.draws.permutation(flat.shape[1], phase)
                patch_id = torch.tensor(perm[:int(min(num_patches, perm.shape[0]))], dtype=torch.long,
                                        device=feat.device)
            x = flat[:, patch_id, :].flatten(0, 1)
            if self.F.use_mlp:
                x = getattr(self.F, f"mlp_{index}")(x)
            if self.F.normalize == "cut":
                x = x.div(x.pow(2).sum(1, keepdim=True).pow(0.5) + 1e-7)
            else:
                x = x + 1e-12
                x = x.div(x.pow(2).sum(1, keepdim=True).pow(0.5))
            samples.append(x)
            ids.append(patch_id)
        return samples, ids

    def nce_from_features(self, feat_k: list[Tensor], feat_q: list[Tensor], batch_size: int, phase: str) -> Tensor:
        """Mean over the NCE layers of ``lambda_NCE * mean PatchNCE``, positions drawn for the keys."""
        h = self.h
        k_pool, ids = self.sample_patches(feat_k, phase)
        q_pool, _ = self.sample_patches(feat_q, phase, ids)
        total = 0.0
        for f_q, f_k in zip(q_pool, k_pool, strict=True):
            loss = official_patch_nce(f_q, f_k, batch_size, h.nce_t, h.nce_includes_all_negatives_from_minibatch)
            total = total + (loss * h.lambda_nce).mean()
        return total / len(self.layers)

    def calculate_nce_loss(self, src: Tensor, tgt: Tensor, flipped: bool, phase: str) -> Tensor:
        """``calculate_NCE_loss(src, tgt)``: two separate encoder passes, queries flipped back under a flip."""
        feat_q = self.G(tgt, self.layers, encode_only=True)
        if flipped:
            feat_q = [torch.flip(f, [3]) for f in feat_q]
        feat_k = self.G(src, self.layers, encode_only=True)
        return self.nce_from_features(feat_k, feat_q, src.shape[0], phase)

    def d_step(self, fake_B: Tensor, real_B: Tensor) -> None:
        """``compute_D_loss``: ``0.5 * (GAN(D(fake_B.detach()), False) + GAN(D(real_B), True))``, Adam step."""
        h = self.h
        _set_requires_grad([self.D], True)
        self.opt_D.zero_grad()
        loss_D_fake = gan_loss(self.D(fake_B.detach()), False, h.gan_mode)
        loss_D_real = gan_loss(self.D(real_B), True, h.gan_mode)
        loss_D = (loss_D_fake + loss_D_real) * 0.5
        loss_D.backward()
        self.opt_D.step()
        self.losses = {"D_fake": loss_D_fake.detach(), "D_real": loss_D_real.detach(), "D": loss_D.detach()}

    def g_gan_loss(self, fake_B: Tensor) -> Tensor | float:
        h = self.h
        return gan_loss(self.D(fake_B), True, h.gan_mode) * h.lambda_gan if h.lambda_gan > 0 else 0.0

    def step(self, real_A: Tensor, real_B: Tensor) -> None:
        h = self.h
        self.draws.drawn = []
        batch = real_A.shape[0]
        # forward
        real = torch.cat((real_A, real_B), dim=0) if h.nce_idt else real_A
        flipped = False
        if h.flip_equivariance:
            flipped = self.draws.random("forward") < 0.5
            if flipped:
                real = torch.flip(real, [3])
        fake = self.G(real)
        fake_B = fake[:batch]
        idt_B = fake[batch:] if h.nce_idt else None
        self.d_step(fake_B, real_B)
        # generator and patch sampler
        _set_requires_grad([self.D], False)
        self.opt_G.zero_grad()
        if self.opt_F is not None:
            self.opt_F.zero_grad()
        loss_G_GAN = self.g_gan_loss(fake_B)
        loss_NCE = self.calculate_nce_loss(real_A, fake_B, flipped, "NCE") if h.lambda_nce > 0 else 0.0
        if h.nce_idt and h.lambda_nce > 0:
            loss_NCE_Y = self.calculate_nce_loss(real_B, idt_B, flipped, "NCE_Y")
            loss_NCE_both = (loss_NCE + loss_NCE_Y) * 0.5
            self.losses["NCE_Y"] = loss_NCE_Y.detach()
        else:
            loss_NCE_both = loss_NCE
        loss_G = loss_G_GAN + loss_NCE_both
        loss_G.backward()
        self.opt_G.step()
        if self.opt_F is not None:
            self.opt_F.step()
        self.losses.update({name: value.detach() for name, value in
                            (("G_GAN", loss_G_GAN), ("NCE", loss_NCE), ("G", loss_G)) if isinstance(value, Tensor)})

    @torch.no_grad()
    def infer(self, real_A: Tensor) -> Tensor:
        """The official test.py forward: ``G(real_A)`` under no_grad, the network in train mode (its default)."""
        return self.G(real_A)


class OfficialSRUNITLoop(OfficialCUTLoop):
    """``SRUNITModel.optimize_parameters(curr_epoch)`` on the networks of a zoo ``SRUNIT`` (deep-copied).

    As officially: ``forward`` runs ``fake_B, feats_real_A = G(real_A, nce_layers)``, ``G(fake_B, nce_layers,
    encode_only=True)``, draws the scale (``np.random.choice(reg_layers)``) and perturbs that feature through the
    generator (``torch.randn`` direction, ``torch.rand`` magnitude map; decoded from the layer to an image and
    re-encoded), then ``idt_B, feats_real_B = G(real_B, nce_layers)``: separate calls. D step; the G objective:
    GAN, NCE on the stored features, NCE_Y with a ``G(idt_B, encode_only=True)`` pass; then, unless the regulariser
    is still inactive (``reg > 0`` and ``curr_epoch <= inact_epochs``: no G/F update at all), the regulariser (new
    positions on the chosen scale, its MLP only); ``v2`` one backward of ``loss_G + reg * loss_reg``, ``v1`` two (F
    frozen for the second); Adam steps G, F. ``curr_epoch`` is ``epoch`` (default the model's ``epoch_count``, the
    epoch zoo's step assumes outside a Trainer).

    The official code fails without ``nce_idt`` (NaN D loss) and asserts on flipped steps, so those settings have no
    re-creation.
    """

    def __init__(self, model, epoch: int | None = None) -> None:
        super().__init__(model)
        h = self.h
        if not h.nce_idt or h.flip_equivariance:
            raise ValueError("the official SRUNIT iteration fails with nce_idt=False or flip_equivariance=True; "
                             "no re-creation for those settings")
        self.reg_layers = list(model.reg_layers)
        self.epoch = h.epoch_count if epoch is None else epoch

    def perturb(self, feat: Tensor, layer: int, noise: float) -> tuple[Tensor, Tensor]:
        """The generator's perturbation forward: ``feat + noise * unit`` decoded by ``model[layer + 1:]`` and
        re-encoded by ``model[:layer + 1]``; returns it and the magnitude map that divides the loss."""
        unit = self.draws.randn(feat, "forward")
        unit = unit / (unit.pow(2).sum(1, keepdim=True).sqrt() + 1e-12)
        b, _, height, width = feat.shape
        noise_magnitude = 1e-7 + (noise - 1e-7) * self.draws.rand((b, 1, height, width), feat, "forward")
        x = feat + unit * noise
        for module in self.G.model[layer + 1:]:
            x = module(x)
        for module in self.G.model[:layer + 1]:
            x = module(x)
        return x, noise_magnitude

    def compute_reg_loss(self, clean: Tensor, perturbed: Tensor, noise_magnitude: Tensor, choice: int) -> Tensor:
        """``compute_reg_loss``: new positions on the chosen scale, ``||q - k|| / magnitude`` averaged, divided by
        the number of NCE layers."""
        k_pool, ids = self.sample_patches([clean], "reg", mlp_indices=[choice])
        q_pool, _ = self.sample_patches([perturbed], "reg", ids, mlp_indices=[choice])
        magnitude = noise_magnitude.permute(0, 2, 3, 1).flatten(1, 2)[:, ids[0], :].flatten(0, 1)
        distance = ((q_pool[0] - k_pool[0]).pow(2).sum(1, keepdim=True) + 1e-12).sqrt()
        return (distance / magnitude).mean() / len(self.layers)

    def step(self, real_A: Tensor, real_B: Tensor) -> None:
        h = self.h
        self.draws.drawn = []
        # forward
        fake_B, feats_real_A = self.G(real_A, self.layers)
        feats_fake_B = self.G(fake_B, self.layers, encode_only=True)
        if h.reg > 0:
            choice = self.draws.choice(self.reg_layers, "forward")
            feat_perturbed, noise_magnitude = self.perturb(feats_real_A[choice], self.layers[choice], h.reg_noise)
        idt_B, feats_real_B = self.G(real_B, self.layers)
        self.d_step(fake_B, real_B)
        # generator and patch sampler
        _set_requires_grad([self.D], False)
        self.opt_G.zero_grad()
        if self.opt_F is not None:
            self.opt_F.zero_grad()
        loss_G_GAN = self.g_gan_loss(fake_B)
        loss_NCE = self.nce_from_features(feats_real_A, feats_fake_B, real_A.shape[0], "NCE")
        feats_idt_B = self.G(idt_B, self.layers, encode_only=True)
        loss_NCE_Y = self.nce_from_features(feats_real_B, feats_idt_B, real_B.shape[0], "NCE_Y")
        loss_G = loss_G_GAN + (loss_NCE + loss_NCE_Y) * 0.5
        self.losses.update({name: value.detach() for name, value in
                            (("G_GAN", loss_G_GAN), ("NCE", loss_NCE), ("NCE_Y", loss_NCE_Y), ("G", loss_G))
                            if isinstance(value, Tensor)})
        if h.reg > 0 and self.epoch <= h.inact_epochs:
            self.losses["reg"] = torch.zeros(())
            return  # the official D-only epochs: the G objective is computed (its draws are made), not applied
        if h.reg > 0:
            loss_reg = self.compute_reg_loss(feats_real_A[choice], feat_perturbed, noise_magnitude, choice)
            self.losses["reg"] = loss_reg.detach()
            if h.reg_type == "v2":
                (loss_G + h.reg * loss_reg).backward()
            else:
                loss_G.backward(retain_graph=True)
                _set_requires_grad([self.F], False)
                (h.reg * loss_reg).backward()
                _set_requires_grad([self.F], True)
        else:
            loss_G.backward()
        self.opt_G.step()
        if self.opt_F is not None:
            self.opt_F.step()


class OfficialGANLoss:
    """pix2pixHD's ``GANLoss``: ``nn.MSELoss`` (LSGAN; ``nn.BCELoss`` otherwise) of each scale's last output against
    a target tensor of ones or zeros, summed over scales; the target of each kind is cached and made anew when the
    element count changes (so, with several scales, each call makes new ones, as officially)."""

    def __init__(self, use_lsgan: bool) -> None:
        self.loss = nn.MSELoss() if use_lsgan else nn.BCELoss()
        self.real_label_var: Tensor | None = None
        self.fake_label_var: Tensor | None = None

    def get_target_tensor(self, pred: Tensor, target_is_real: bool) -> Tensor:
        if target_is_real:
            if self.real_label_var is None or self.real_label_var.numel() != pred.numel():
                self.real_label_var = torch.empty(pred.size(), device=pred.device).fill_(1.0)
            return self.real_label_var
        if self.fake_label_var is None or self.fake_label_var.numel() != pred.numel():
            self.fake_label_var = torch.empty(pred.size(), device=pred.device).fill_(0.0)
        return self.fake_label_var

    def __call__(self, predictions: list, target_is_real: bool) -> Tensor:
        if isinstance(predictions[0], list):
            loss = 0
            for outputs in predictions:
                pred = outputs[-1]
                loss += self.loss(pred, self.get_target_tensor(pred, target_is_real))
            return loss
        pred = predictions[-1]
        return self.loss(pred, self.get_target_tensor(pred, target_is_real))


class OfficialVgg19(nn.Module):
    """pix2pixHD's ``Vgg19``: torchvision's VGG-19 ``features`` cut into five slices (``[0, 2)``, ``[2, 7)``,
    ``[7, 12)``, ``[12, 21)``, ``[21, 30)``), parameters frozen; returns the five slice outputs."""

    def __init__(self, features: nn.Sequential) -> None:
        super().__init__()
        bounds = (0, 2, 7, 12, 21, 30)
        for n in range(5):
            piece = nn.Sequential()
            for x in range(bounds[n], bounds[n + 1]):
                piece.add_module(str(x), features[x])
            setattr(self, f"slice{n + 1}", piece)
        for param in self.parameters():
            param.requires_grad = False

    def forward(self, x: Tensor) -> list[Tensor]:
        h_relu1 = self.slice1(x)
        h_relu2 = self.slice2(h_relu1)
        h_relu3 = self.slice3(h_relu2)
        h_relu4 = self.slice4(h_relu3)
        h_relu5 = self.slice5(h_relu4)
        return [h_relu1, h_relu2, h_relu3, h_relu4, h_relu5]


class OfficialVGGLoss(nn.Module):
    """pix2pixHD's ``VGGLoss``: ``vgg(x)`` and ``vgg(y)`` both computed as they are (no ``no_grad``), weighted
    ``nn.L1Loss`` against ``y_vgg[i].detach()``."""

    def __init__(self, features: nn.Sequential) -> None:
        super().__init__()
        self.vgg = OfficialVgg19(features)
        self.criterion = nn.L1Loss()
        self.weights = [1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0]

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        x_vgg, y_vgg = self.vgg(x), self.vgg(y)
        loss = 0
        for i in range(len(x_vgg)):
            loss += self.weights[i] * self.criterion(x_vgg[i], y_vgg[i].detach())
        return loss


class OfficialImagePool:
    """pix2pixHD's ``ImagePool`` (python ``random`` draws; ``pool_size`` 0, the default, returns its input)."""

    def __init__(self, pool_size: int) -> None:
        self.pool_size = pool_size
        self.num_imgs = 0
        self.images: list[Tensor] = []

    def query(self, images: Tensor) -> Tensor:
        import random

        if self.pool_size == 0:
            return images
        return_images = []
        for image in images.data:
            image = torch.unsqueeze(image, 0)
            if self.num_imgs < self.pool_size:
                self.num_imgs += 1
                self.images.append(image)
                return_images.append(image)
            elif random.uniform(0, 1) > 0.5:
                random_id = random.randint(0, self.pool_size - 1)
                tmp = self.images[random_id].clone()
                self.images[random_id] = image
                return_images.append(tmp)
            else:
                return_images.append(image)
        return torch.cat(return_images, 0)


class OfficialPix2PixHDLoop:
    """pix2pixHD's ``train.py`` iteration (``Pix2PixHDModel.forward``, then the G step, then the D step) on the
    networks of a zoo ``Pix2PixHD`` (deep-copied).

    As officially: ``encode_input`` one-hot encodes the label ids with ``scatter_`` into a zeroed float tensor and
    appends ``get_edges`` of the instance map (a byte tensor OR-ed with the four neighbour comparisons, then
    ``.float()``); one ``G`` call; ``discriminate(use_pool=True)`` on ``cat(input_label, fake.detach())`` through the
    image pool, ``discriminate`` on ``cat(input_label, real.detach())``, ``netD(cat(input_label, fake))`` with D's
    parameters still requiring gradients (``loss_G.backward`` computes D's gradients too; ``optimizer_D.zero_grad``
    drops them); ``GANLoss`` (``nn.MSELoss`` against cached target tensors), the feature-matching double loop
    (``nn.L1Loss``), ``VGGLoss`` with both VGG passes outside ``no_grad``; ``torch.mean`` of every loss (as
    ``train.py`` does), ``loss_D = (D_fake + D_real) * 0.5``, ``loss_G = G_GAN + G_GAN_Feat + G_VGG``; then
    ``optimizer_G.zero_grad(); loss_G.backward(); optimizer_G.step(); optimizer_D.zero_grad(); loss_D.backward();
    optimizer_D.step()`` with plain ``torch.optim.Adam``. With ``n_epochs_fix_global`` (official
    ``niter_fix_global``) G's optimizer holds the last local enhancer's parameters only, as officially.

    Inputs are in the official data format (:meth:`official_inputs`: label ids as floats, instance map, photo);
    the losses of the last step are kept in ``losses`` (official names). The instance-feature encoder (``instance_feat``
    / ``label_feat``) has no re-creation here.
    """

    LOSS_NAMES = ("G_GAN", "G_GAN_Feat", "G_VGG", "D_real", "D_fake")
    #: ``infer`` takes the first two official inputs (label, inst)
    INFER_INPUTS = 2

    def __init__(self, model) -> None:
        self.h = h = model.hparams
        if model.encoder is not None:
            raise ValueError("no re-creation of the official pix2pixHD loop with instance_feat / label_feat")
        if h.gan_mode != "lsgan" and h.gan_feat_loss:
            raise ValueError("the official pix2pixHD loop crashes with --no_lsgan and the GAN feature loss")
        self.G, self.D = official_copy(model.generator), official_copy(model.discriminator)
        self.criterionGAN = OfficialGANLoss(h.gan_mode == "lsgan")
        self.criterionFeat = nn.L1Loss()
        self.criterionVGG = None
        if model.vgg is not None:
            model.vgg.load_weights()  # no-op unless ImageNet weights are still to be read
            features = official_copy(model.vgg.features)
            self.criterionVGG = OfficialVGGLoss(features).to(next(features.parameters()).device)
        self.fake_pool = OfficialImagePool(h.pool_size)
        if h.n_epochs_fix_global > 0:
            prefix = "model" + str(h.n_local_enhancers)
            params = [value for key, value in self.G.named_parameters() if key.startswith(prefix)]
        else:
            params = list(self.G.parameters())
        self.optimizer_G = torch.optim.Adam(params, lr=h.lr, betas=(h.beta1, 0.999))
        self.optimizer_D = torch.optim.Adam(self.D.parameters(), lr=h.lr, betas=(h.beta1, 0.999))
        self.losses: dict[str, Tensor] = {}

    def official_inputs(self, real_a: Tensor, real_b: Tensor, instance: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        """zoo's ``(real_a, real_b, instance)`` -> the official batch ``(label, inst, image)``: label ids as floats
        (the official ``transform_label(label) * 255``; the RGB input as it is with ``label_nc`` 0), the instance map
        (0 without one, as the official loader), the photo in [-1, 1]. Done once, outside the timed iterations (the
        data loader's work)."""
        label = torch.round((real_a.float() + 1) / 2 * 255) if self.h.label_nc else real_a
        inst = torch.zeros(1, device=real_a.device) if instance is None else instance
        return label.contiguous(), inst.contiguous(), real_b.contiguous()

    @staticmethod
    def get_edges(t: Tensor) -> Tensor:
        edge = torch.zeros(t.size(), dtype=torch.uint8, device=t.device)
        edge[:, :, :, 1:] = edge[:, :, :, 1:] | (t[:, :, :, 1:] != t[:, :, :, :-1])
        edge[:, :, :, :-1] = edge[:, :, :, :-1] | (t[:, :, :, 1:] != t[:, :, :, :-1])
        edge[:, :, 1:, :] = edge[:, :, 1:, :] | (t[:, :, 1:, :] != t[:, :, :-1, :])
        edge[:, :, :-1, :] = edge[:, :, :-1, :] | (t[:, :, 1:, :] != t[:, :, :-1, :])
        return edge.float()

    def encode_input(self, label_map: Tensor, inst_map: Tensor) -> Tensor:
        h = self.h
        if h.label_nc == 0:
            input_label = label_map.data
        else:
            size = label_map.size()
            one_hot_size = (size[0], h.label_nc, size[2], size[3])
            input_label = torch.empty(torch.Size(one_hot_size), device=label_map.device).zero_()
            input_label = input_label.scatter_(1, label_map.data.long(), 1.0)
        if not h.no_instance:
            edge_map = self.get_edges(inst_map.data)
            input_label = torch.cat((input_label, edge_map), dim=1)
        return input_label

    def discriminate(self, input_label: Tensor, test_image: Tensor, use_pool: bool = False) -> list:
        input_concat = torch.cat((input_label, test_image.detach()), dim=1)
        if use_pool:
            return self.D(self.fake_pool.query(input_concat))
        return self.D(input_concat)

    def forward(self, label: Tensor, inst: Tensor, image: Tensor) -> list:
        """``Pix2PixHDModel.forward``: the five losses (0 for the ones turned off), as ``loss_filter`` returns."""
        h = self.h
        input_label = self.encode_input(label, inst)
        real_image = image.data
        fake_image = self.G(input_label)
        pred_fake_pool = self.discriminate(input_label, fake_image, use_pool=True)
        loss_D_fake = self.criterionGAN(pred_fake_pool, False)
        pred_real = self.discriminate(input_label, real_image)
        loss_D_real = self.criterionGAN(pred_real, True)
        pred_fake = self.D(torch.cat((input_label, fake_image), dim=1))
        loss_G_GAN = self.criterionGAN(pred_fake, True)
        loss_G_GAN_Feat = 0
        if h.gan_feat_loss:
            feat_weights = 4.0 / (h.n_layers_d + 1)
            D_weights = 1.0 / h.num_d
            for i in range(h.num_d):
                for j in range(len(pred_fake[i]) - 1):
                    loss_G_GAN_Feat += D_weights * feat_weights * self.criterionFeat(
                        pred_fake[i][j], pred_real[i][j].detach()) * h.lambda_feat
        loss_G_VGG = 0
        if self.criterionVGG is not None:
            loss_G_VGG = self.criterionVGG(fake_image, real_image) * h.lambda_feat
        return [loss_G_GAN, loss_G_GAN_Feat, loss_G_VGG, loss_D_real, loss_D_fake]

    def step(self, label: Tensor, inst: Tensor, image: Tensor) -> None:
        losses = self.forward(label, inst, image)
        losses = [torch.mean(x) if not isinstance(x, int) else x for x in losses]
        loss_dict = dict(zip(self.LOSS_NAMES, losses, strict=True))
        loss_D = (loss_dict["D_fake"] + loss_dict["D_real"]) * 0.5
        loss_G = loss_dict["G_GAN"] + loss_dict.get("G_GAN_Feat", 0) + loss_dict.get("G_VGG", 0)
        self.optimizer_G.zero_grad()
        loss_G.backward()
        self.optimizer_G.step()
        self.optimizer_D.zero_grad()
        loss_D.backward()
        self.optimizer_D.step()
        self.losses = {name: value.detach() for name, value in (*loss_dict.items(), ("G", loss_G), ("D", loss_D))
                       if isinstance(value, Tensor)}

    @torch.no_grad()
    def infer(self, label: Tensor, inst: Tensor, image: Tensor | None = None) -> Tensor:
        """``Pix2PixHDModel.inference`` as ``test.py`` calls it: ``encode_input`` and ``netG`` under no_grad (the
        authors' torch 0.4 branch; older versions used volatile inputs), the network in train mode (test.py never
        calls ``eval``; instance norm has no running statistics)."""
        return self.G(self.encode_input(label, inst))


def check_pix2pixhd_losses(model, inputs: tuple, optimizers: list | None = None,
                           rtol: float = 1e-4) -> dict[str, tuple[float, float]]:
    """One zoo ``optimization_step`` and one official iteration on identical weights and inputs (a fresh
    :class:`OfficialPix2PixHDLoop` of ``model``, made before zoo's step): raise ``AssertionError`` unless every loss
    agrees within ``rtol`` (relative). Both sides take their step (``optimizers``: zoo's, default new ones); returns
    ``{official name: (zoo, official)}``."""
    reference = OfficialPix2PixHDLoop(model)
    if optimizers is None:
        optimizers, _ = model.configure_optimizers()
    out = model.optimization_step(*inputs, *optimizers)
    reference.step(*reference.official_inputs(*inputs))
    names = dict(model.OFFICIAL_LOSS_NAMES)
    compared = {official: (float(out.losses[ours]), float(reference.losses[official]))
                for ours, official in names.items() if ours in out.losses}
    bad = {k: v for k, v in compared.items() if abs(v[0] - v[1]) > rtol * max(abs(v[0]), abs(v[1]), 1e-12)}
    if bad or not compared:
        raise AssertionError(f"pix2pixHD losses differ from the official loop's (zoo, official): {bad or compared}")
    return compared



class OfficialInstaFormerLoop:
    """InstaFormer's ``train.py`` iteration (``loss.model_forward`` I2I and RECON, ``compute_D_loss``, D step,
    ``compute_G_loss``, G and F steps) on the networks of a zoo ``InstaFormer`` (deep-copied).

    The five generator networks are separate copies (the official ``model_G`` dict: ``ContentEncoder``,
    ``StyleEncoder``, ``Transformer``, ``MLP_Adain``, ``Decoder``), called one by one as the official code does:

    * ``model_forward(I2I)``: ``ContentEncoder(A, feat_layers)`` (content and NCE taps in one pass), the random style
      ``torch.randn(B, 8, 1, 1)``, ``MLP_Adain`` -> ``assign_adain_params`` on the transformer, ``Transformer(content,
      A_box)`` (it extracts the box features itself), ``Decoder(patch tokens)`` and the box branch ``Decoder(box
      tokens, A_box)`` **with** a graph (officially nothing detaches it; no loss uses it), and
      ``extract_box_feature(content, A_box)`` again for the instance-NCE keys;
    * ``model_forward(RECON)``: ``ContentEncoder(B)``, ``StyleEncoder(B)``, ``MLP_Adain`` -> assign,
      ``Transformer(content, B_box)``, ``Decoder(patch tokens)`` (the RECON box branch is not recorded in the
      fixtures' call order and is left out: if the official code decodes it, the official loop is a little slower
      and hungrier than timed here);
    * D step: ``set_requires_grad(D, True)``, ``0.5 * (lsgan(D(fake.detach()), 0) + lsgan(D(B), 1))``, backward,
      Adam step;
    * G step: ``set_requires_grad(D, False)``, ``lsgan(D(fake), 1)`` (D in train mode), ``L1(recon, B)``,
      ``L1(StyleEncoder(recon), style_code)`` (not detached), ``ContentEncoder(fake, feat_layers)`` (a second
      encoder pass on the fake), ``extract_box_feature(content(fake), A_box)``, ``compute_NCE_loss`` with
      ``MLP_head`` (one ``torch.randperm(H*W)`` per tap for the keys, reused for the queries, one ``PatchNCELoss``
      call per tap) and with ``MLP_head_inst`` on the valid boxes (``PatchNCELoss(#valid)``, one ``randperm(64)``;
      ``tensor(0.)`` without a valid box), one backward, Adam steps G then F.

    Plain ``torch.optim.Adam``: G (all five networks, the never-reached box branch included) and D with (beta1,
    beta2), the heads with the default betas; ``zero_grad`` sets gradients to None. The MLP heads exist from the
    start (officially created lazily on the first batch, with the same architecture). The losses of the last step
    are kept in ``losses`` (official names) and its draws in ``drawn`` (``(phase, value)`` in call order).
    """

    def __init__(self, model) -> None:
        from zoo.nets.instaformer import INSTANCE_PATCHES, assign_adain_params, extract_box_features

        self.h = h = model.hparams
        self.assign_adain_params, self.extract_box_feature = assign_adain_params, extract_box_features
        self.inst_patches = INSTANCE_PATCHES
        self.layers = list(model.feat_layers)
        gen = model.generator
        self.CE, self.SE, self.T, self.MLP_Adain, self.Dec, self.D, self.MLP_head, self.MLP_head_inst = (
            official_copy(net) for net in (gen.content_encoder, gen.style_encoder, gen.transformer, gen.mlp_adain,
                                           gen.decoder, model.discriminator, model.mlp_head, model.mlp_head_inst))
        self.G_nets = [self.CE, self.SE, self.T, self.MLP_Adain, self.Dec]
        betas = (h.beta1, h.beta2)
        self.optimizer_G = torch.optim.Adam(chain(*(net.parameters() for net in self.G_nets)), lr=h.lr, betas=betas)
        self.optimizer_D = torch.optim.Adam(self.D.parameters(), lr=h.lr, betas=betas)
        self.optimizer_F = torch.optim.Adam(chain(self.MLP_head.parameters(), self.MLP_head_inst.parameters()),
                                            lr=h.lr)
        self.losses: dict[str, Tensor] = {}
        self.drawn: list[tuple[str, Tensor]] = []

    # ------------------------------------------------------------------ official helpers

    def mlp_head(self, head: nn.Module, feats: list[Tensor], num_patches: int, phase: str,
                 patch_ids: list[Tensor] | None = None) -> tuple[list[Tensor], list[Tensor]]:
        """``MLP_Head.forward``: per tap a ``torch.randperm`` of the positions (unless given), its first
        ``num_patches`` gathered, the tap's MLP, ``Normalize(2)`` (``x / (||x|| + 1e-7)``)."""
        samples, ids = [], []
        for feat_id, feat in enumerate(feats):
            feat_reshape = feat.permute(0, 2, 3, 1).flatten(1, 2)
            if patch_ids is not None:
                patch_id = patch_ids[feat_id]
            else:
                perm = torch.randperm(feat_reshape.shape[1])
                self.drawn.append((phase, perm))
                patch_id = perm[:int(min(num_patches, perm.shape[0]))].to(feat.device)
            x_sample = feat_reshape[:, patch_id, :].flatten(0, 1)
            x_sample = getattr(head, f"mlp_{feat_id}")(x_sample)
            norm = x_sample.pow(2).sum(1, keepdim=True).pow(0.5)
            samples.append(x_sample.div(norm + 1e-7))
            ids.append(patch_id)
        return samples, ids

    def compute_nce_loss(self, feat_q: list[Tensor], feat_k: list[Tensor], head: nn.Module, batch_size: int,
                         num_patches: int, phase: str) -> Tensor:
        """``compute_NCE_loss``: positions drawn for the keys and reused for the queries, the mean of each tap's
        ``PatchNCELoss``, averaged over the taps."""
        feat_k_pool, sample_ids = self.mlp_head(head, feat_k, num_patches, phase)
        feat_q_pool, _ = self.mlp_head(head, feat_q, num_patches, phase, sample_ids)
        total = 0.0
        for f_q, f_k in zip(feat_q_pool, feat_k_pool, strict=True):
            total = total + official_patch_nce(f_q, f_k, batch_size, self.h.nce_t, False).mean()
        return total / len(feat_k)

    def model_forward(self, real: Tensor, box: Tensor, mode: str) -> tuple:
        """``loss.model_forward``: I2I -> (fake, fake_box, [taps of A..., box features of A]); RECON -> (recon,
        None, style code of B)."""
        if mode == "I2I":
            content, features = self.CE(real, self.layers)
            style = torch.randn(real.shape[0], self.h.style_dim, 1, 1).to(real)
            self.drawn.append(("I2I", style))
        else:
            content, _ = self.CE(real)
            style = self.SE(real)
        self.assign_adain_params(self.MLP_Adain(style), self.T.transformer)
        agg, agg_box = self.T(content, box)
        img = self.Dec(agg)
        if mode == "I2I":
            fake_box = self.Dec(agg_box, box)
            return img, fake_box, [*features, self.extract_box_feature(content, box)]
        return img, None, style

    # ------------------------------------------------------------------ the iteration

    def step(self, real_A: Tensor, real_B: Tensor, A_box: Tensor | None, B_box: Tensor | None) -> None:
        h = self.h
        self.drawn = []
        batch = real_A.shape[0]
        A_box, B_box = (torch.full((batch, h.num_box, 5), -1.0, dtype=real_A.dtype) if box is None else box
                        for box in (A_box, B_box))
        fake_img, fake_box, features = self.model_forward(real_A, A_box, "I2I")
        recon_img, _, style_code = self.model_forward(real_B, B_box, "RECON")
        features, box_feature = features[:-1], features[-1]
        # compute_D_loss, D step
        _set_requires_grad([self.D], True)
        self.optimizer_D.zero_grad()
        D_fake_loss = gan_loss(self.D(fake_img.detach()), False, h.gan_mode)
        D_real_loss = gan_loss(self.D(real_B), True, h.gan_mode)
        total_D_loss = 0.5 * (D_fake_loss + D_real_loss)
        total_D_loss.backward()
        self.optimizer_D.step()
        # compute_G_loss, G and F steps
        _set_requires_grad([self.D], False)
        self.optimizer_G.zero_grad()
        self.optimizer_F.zero_grad()
        G_losses: dict[str, Tensor] = {}
        if h.w_gan > 0:
            G_losses["GAN_loss"] = h.w_gan * gan_loss(self.D(fake_img), True, h.gan_mode)
        if h.w_recon > 0:
            G_losses["recon_loss"] = h.w_recon * F.l1_loss(recon_img, real_B)
        if h.w_style > 0:
            G_losses["style_loss"] = h.w_style * F.l1_loss(self.SE(recon_img), style_code)
        if h.w_nce > 0 or h.w_instance_nce > 0:
            fake_content, fake_features = self.CE(fake_img, self.layers)
            fake_box_feature = self.extract_box_feature(fake_content, A_box)
            if h.w_nce > 0:
                G_losses["NCE_loss"] = h.w_nce * self.compute_nce_loss(fake_features, features, self.MLP_head, batch,
                                                                       h.num_patches, "NCE")
            if h.w_instance_nce > 0:
                valid = (A_box[..., 0] != -1).reshape(-1)
                count = int(valid.sum())
                G_losses["instNCE_loss"] = (h.w_instance_nce * self.compute_nce_loss(
                    [fake_box_feature[valid]], [box_feature[valid]], self.MLP_head_inst, count, self.inst_patches,
                    "instNCE") if count else torch.tensor(0.0))
        total_G_loss = sum(G_losses.values())
        total_G_loss.backward()
        self.optimizer_G.step()
        self.optimizer_F.step()
        self.losses = {"D_fake_loss": D_fake_loss.detach(), "D_real_loss": D_real_loss.detach(),
                       "total_D_loss": total_D_loss.detach(),
                       **{name: value.detach() for name, value in G_losses.items()},
                       "total_G_loss": total_G_loss.detach()}

    def zoo_draws(self, num_patches: int | None = None) -> dict[str, Any]:
        """The last step's draws as ``InstaFormer.optimization_step``'s ``draws`` (style, NCE ids, instance ids)."""
        num_patches = self.h.num_patches if num_patches is None else num_patches
        draws: dict[str, Any] = {"nce": []}
        for phase, value in self.drawn:
            if phase == "I2I":
                draws["style"] = value
            elif phase == "NCE":
                draws["nce"].append(value[:num_patches])
            else:
                draws["inst_nce"] = value[:self.inst_patches]
        return draws

    @torch.no_grad()
    def infer(self, real_A: Tensor) -> Tensor:
        """Inference without boxes (the official code has no test.py; as zoo's ``translate``): ``ContentEncoder``,
        a random style ``torch.randn(B, 8, 1, 1)``, ``MLP_Adain`` -> assign, ``Transformer(content)`` (patch tokens
        only), ``Decoder``; no_grad, the networks in train mode."""
        content, _ = self.CE(real_A)
        style = torch.randn(real_A.shape[0], self.h.style_dim, 1, 1).to(real_A)
        self.assign_adain_params(self.MLP_Adain(style), self.T.transformer)
        agg, _ = self.T(content)
        return self.Dec(agg)


def check_instaformer_losses(model, inputs: tuple, optimizers: list | None = None,
                             rtol: float = 1e-4) -> dict[str, tuple[float, float]]:
    """One official iteration (a fresh :class:`OfficialInstaFormerLoop` of ``model``) and one zoo
    ``optimization_step`` replaying its draws (style code, NCE and instance-NCE positions), on identical weights and
    inputs: raise ``AssertionError`` unless every loss agrees within ``rtol`` (relative). Both sides take their step
    (``optimizers``: zoo's, default new ones); returns ``{official name: (zoo, official)}``."""
    reference = OfficialInstaFormerLoop(model)
    if optimizers is None:
        optimizers, _ = model.configure_optimizers()
    reference.step(*_official_inputs_of(inputs))
    out = model.optimization_step(*inputs, *optimizers, draws=reference.zoo_draws())
    ours = model.official_losses(out.losses)
    compared = {name: (float(ours[name]), float(value)) for name, value in reference.losses.items() if name in ours}
    bad = {k: v for k, v in compared.items() if abs(v[0] - v[1]) > rtol * max(abs(v[0]), abs(v[1]), 1e-12)}
    if bad or len(compared) != len(reference.losses):
        raise AssertionError(f"InstaFormer losses differ from the official loop's (zoo, official): {bad or compared}")
    return compared


def _official_inputs_of(inputs: tuple) -> tuple:
    """zoo's inputs as the official loop takes them: contiguous NCHW (None stays None)."""
    return tuple(None if x is None else x.contiguous() for x in inputs)

OFFICIAL_LOOPS = {"cyclegan": OfficialCycleGANLoop, "pix2pix": OfficialPix2PixLoop, "decent": OfficialDECENTLoop,
                  "vsait": OfficialVSAITLoop, "lomit": OfficialLOMITLoop, "cut": OfficialCUTLoop,
                  "srunit": OfficialSRUNITLoop, "pix2pixhd": OfficialPix2PixHDLoop,
                  "instaformer": OfficialInstaFormerLoop}

#: Same-weights loss checks ``check(model, inputs, optimizers) -> {name: (zoo, official)}`` that
#: ``bench_methods.py --reference`` runs once before timing (fp32).
OFFICIAL_CHECKS = {"pix2pixhd": check_pix2pixhd_losses, "instaformer": check_instaformer_losses}
