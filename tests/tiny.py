"""Tiny stand-ins for the trainer, CLI and callback tests: a G + D module that follows zoo's method contract and a
DataModule of random 8x8 images. Both run a training iteration in milliseconds on a CPU."""

from __future__ import annotations

from typing import Any, Literal

import lightning as L
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from zoo.data import ZooDataModule
from zoo.nets import ExponentialMovingAverage


class TinyGAN(L.LightningModule):
    """Two 1-layer generators and a 1-layer discriminator trained with manual optimization.

    Args:
        width: unused width, here so that configs have an int to override.
        lambda_l1: weight of the L1 term.
        gan_mode: adversarial loss.
        g_every: step the generators only every ``g_every``-th iteration, so the number of optimizer steps per
            iteration varies (1 or 2).
        ema_decay: keep an EMA of ``g_ab`` used by ``translate``.
    """

    optimizer_steps_per_iteration = 2
    directions = ("a2b", "b2a")
    size_multiple = 4

    def __init__(
        self,
        *,
        width: int = 4,
        lambda_l1: float = 10.0,
        gan_mode: Literal["lsgan", "vanilla"] = "lsgan",
        g_every: int = 1,
        ema_decay: float | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.g_ab = nn.Conv2d(3, 3, 3, padding=1)
        self.g_ba = nn.Conv2d(3, 3, 3, padding=1)
        self.d = nn.Conv2d(3, 1, 3, padding=1)
        self.g_ab_ema = ExponentialMovingAverage(self.g_ab, decay=ema_decay) if ema_decay is not None else None
        self.batches_seen = 0
        self.translate_calls = 0

    def input_channels(self, direction: str = "a2b") -> int:
        return 3

    def output_channels(self, direction: str = "a2b") -> int:
        return 3

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(self.g_ab(x))

    @torch.inference_mode()
    def translate(self, images: Tensor, *, direction: str = "a2b", seed: int | None = None) -> Tensor:
        if images.shape[-1] % self.size_multiple or images.shape[-2] % self.size_multiple:
            raise ValueError(f"size {tuple(images.shape[-2:])} is not a multiple of {self.size_multiple}")
        self.translate_calls += 1
        self.eval()
        net = self.g_ab if direction == "a2b" else self.g_ba
        if direction == "a2b" and self.g_ab_ema is not None:
            net = self.g_ab_ema
        return (torch.tanh(net(images * 2 - 1)) + 1) / 2

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        real_a, real_b = batch["real_a"], batch["real_b"]
        with self.toggled_optimizer(opt_d):
            loss_d = self.d(torch.tanh(self.g_ab(real_a)).detach()).pow(2).mean() + (self.d(real_b) - 1).pow(2).mean()
            opt_d.zero_grad()
            self.manual_backward(loss_d)
            opt_d.step()
        if self.batches_seen % self.hparams.g_every == 0:
            with self.toggled_optimizer(opt_g):
                fake_b = torch.tanh(self.g_ab(real_a))
                rec_a = torch.tanh(self.g_ba(fake_b))
                loss_g = (self.d(fake_b) - 1).pow(2).mean() + self.hparams.lambda_l1 * (rec_a - real_a).abs().mean()
                opt_g.zero_grad()
                self.manual_backward(loss_g)
                opt_g.step()
            if self.g_ab_ema is not None:
                self.g_ab_ema.update(self.g_ab)
        self.batches_seen += 1
        self.log("train/loss_d", loss_d.detach())

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self.log("val/l1", (torch.tanh(self.g_ab(batch["real_a"])) - batch["real_b"]).abs().mean())

    def configure_optimizers(self) -> Any:
        opt_g = torch.optim.Adam([*self.g_ab.parameters(), *self.g_ba.parameters()], lr=1e-3)
        opt_d = torch.optim.Adam(self.d.parameters(), lr=1e-3)
        return [opt_g, opt_d]


class RandomPairs(Dataset):
    """``length`` items of random ``real_a`` / ``real_b`` images in [-1, 1], fixed per index."""

    def __init__(self, length: int, size: int) -> None:
        self.length, self.size = length, size

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Tensor]:
        index = key[1] if isinstance(key, tuple) else key  # ZooDataModule's sampler yields (epoch, index)
        g = torch.Generator().manual_seed(index)
        return {
            "real_a": torch.rand(3, self.size, self.size, generator=g) * 2 - 1,
            "real_b": torch.rand(3, self.size, self.size, generator=g) * 2 - 1,
        }


class TinyData(ZooDataModule):
    """Random 8x8 pairs; ``length`` training items and ``val_length`` validation items."""

    def __init__(self, *, batch_size: int = 2, length: int = 8, val_length: int = 4, size: int = 8) -> None:
        super().__init__(batch_size=batch_size, val_size=None)
        self.length, self.val_length, self.size = length, val_length, size

    def build_dataset(self, split: str) -> Dataset:
        offset = 0 if split == "train" else 1000
        dataset = RandomPairs(self.length if split == "train" else self.val_length, self.size)
        return dataset if not offset else _Offset(dataset, offset)


class _Offset(Dataset):
    def __init__(self, dataset: RandomPairs, offset: int) -> None:
        self.dataset, self.offset = dataset, offset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        return self.dataset[index + self.offset]
