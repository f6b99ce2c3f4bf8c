"""Re-creations of the official pix2pix / CycleGAN training iterations, used as the speed reference.

The official ``optimize_parameters`` is reproduced call for call on the same networks (zoo's networks have the
official layout and produce the same numbers): one network call per image set, separate ``backward`` calls per
discriminator, ``torch.optim.Adam`` with its default (per-parameter, not fused) implementation, contiguous NCHW
tensors. Measuring it next to zoo's step in the same process gives the "at least as fast as the official loop on
the same machine" ratio that ``bench_methods.py --reference`` prints.
"""

from __future__ import annotations

from itertools import chain

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from zoo.losses import gan_loss


def _set_requires_grad(nets: list[nn.Module], flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad = flag


class OfficialCycleGANLoop:
    """``CycleGANModel.optimize_parameters`` on the networks of a zoo ``CycleGAN`` (deep-copied)."""

    def __init__(self, model) -> None:
        import copy

        h = model.hparams
        self.h = h
        self.G_A, self.G_B, self.D_A, self.D_B = (
            copy.deepcopy(net).to(memory_format=torch.contiguous_format)
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
        import copy

        h = model.hparams
        self.h = h
        self.G, self.D = (copy.deepcopy(net).to(memory_format=torch.contiguous_format)
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


OFFICIAL_LOOPS = {"cyclegan": OfficialCycleGANLoop, "pix2pix": OfficialPix2PixLoop}
