"""SRUNIT against the official implementation (github.com/SeanJia/SRUNIT): one test per case of the oracle manifest,
dispatched on the case's ``kind``; an unknown kind fails."""

from __future__ import annotations

import pytest

from tests.parity import cut_family as checks
from tests.parity.manifest import cases, run_case
from zoo.methods.srunit import SRUNIT

pytestmark = pytest.mark.parity

_CHECKS = {
    "generator": checks.check_generator,
    "generator_perturb": checks.check_generator_perturb,
    "discriminator": checks.check_discriminator,
    "patch_sample": lambda c, t: checks.check_patch_sample(c, t, normalize="srunit"),
    "patchnce": checks.check_patchnce,
    "gan_loss": checks.check_gan_losses,
    "lr_schedule": lambda c, t: checks.check_lr_schedule(c, t, SRUNIT),
    "reg_loss": checks.check_reg_loss,
    "train": lambda c, t: checks.check_train_step(c, t, SRUNIT),
}


@pytest.mark.parametrize("case", cases("srunit"))
def test_srunit_case(case: dict) -> None:
    run_case(case, _CHECKS, "SRUNIT")
