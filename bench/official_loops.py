"""Re-creations of official training iterations (pix2pix, CycleGAN, DECENT, VSAIT, LOMIT), used as the speed and
memory reference.

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


OFFICIAL_LOOPS = {"cyclegan": OfficialCycleGANLoop, "pix2pix": OfficialPix2PixLoop, "decent": OfficialDECENTLoop,
                  "vsait": OfficialVSAITLoop, "lomit": OfficialLOMITLoop}
