"""CUT / FastCUT against the official implementation (github.com/taesungp/contrastive-unpaired-translation): one
test per case of the oracle manifest, dispatched on the case's ``kind``; an unknown kind fails."""

from __future__ import annotations

import pytest

from tests.parity import cut_family as checks
from tests.parity.manifest import cases, run_case
from zoo.methods.cut import CUT

pytestmark = pytest.mark.parity

_CHECKS = {
    "generator": checks.check_generator,
    "discriminator": checks.check_discriminator,
    "patch_sample": lambda c, t: checks.check_patch_sample(c, t, normalize="cut"),
    "patchnce": checks.check_patchnce,
    "gan_loss": checks.check_gan_losses,
    "lr_schedule": lambda c, t: checks.check_lr_schedule(c, t, CUT),
    "train": lambda c, t: checks.check_train_step(c, t, CUT),
}


@pytest.mark.parametrize("case", cases("cut"))
def test_cut_case(case: dict) -> None:
    run_case(case, _CHECKS, "CUT")
