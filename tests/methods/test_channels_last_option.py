"""The ``channels_last`` option every method takes: ``True``, ``False`` or ``"auto"`` (channels-last on CUDA and on
CPUs with AVX-512),
resolved on the device training runs on, applied by the Trainer's ``setup`` and undone at the end of ``fit``."""

from __future__ import annotations

from types import SimpleNamespace

import lightning as L
import pytest
import torch

from tests.methods.test_common import _trainer
from tests.methods.tiny_configs import build_tiny_datamodule, build_tiny_model
from zoo.methods.base import channels_last_pays


def _convolution_layouts(model: torch.nn.Module) -> set[bool]:
    """For each 4-d convolution weight of ``model``: whether it is channels-last (and not also NCHW-contiguous)."""
    return {p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
            for p in model.parameters() if p.dim() == 4 and p.shape[-1] > 1}


class _LayoutDuringTraining(L.Callback):
    def __init__(self) -> None:
        self.layouts: set[bool] = set()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.layouts |= _convolution_layouts(pl_module)


@pytest.mark.parametrize(("capability", "on_cpu"), [("AVX512", True), ("AVX2", False), ("DEFAULT", False)])
def test_auto_picks_channels_last_on_cuda_and_on_avx512_cpus(monkeypatch, capability, on_cpu):
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    assert channels_last_pays(torch.device("cuda", 0)) and channels_last_pays("cuda")
    assert channels_last_pays("cpu") == on_cpu
    assert not channels_last_pays(torch.device("meta"))


@pytest.mark.parametrize(("setting", "capability", "expected"), [
    (True, "AVX2", True), (False, "AVX512", False), ("auto", "AVX2", False), ("auto", "AVX512", True)])
def test_training_runs_in_the_layout_the_option_gives_on_the_cpu(tmp_path, monkeypatch, setting, capability,
                                                                 expected):
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    torch.manual_seed(0)
    model, _ = build_tiny_model("pix2pix", channels_last=setting)
    seen = _LayoutDuringTraining()
    _trainer(tmp_path, max_steps=2, callbacks=[seen]).fit(model, datamodule=build_tiny_datamodule("pix2pix"))
    assert seen.layouts == {expected}
    assert _convolution_layouts(model) == {False}  # back to NCHW after fit


def test_auto_follows_the_trainers_device_and_rejects_other_values():
    model, _ = build_tiny_model("pix2pix", channels_last="auto")
    assert model.uses_channels_last == channels_last_pays("cpu")
    model._trainer = SimpleNamespace(strategy=SimpleNamespace(root_device=torch.device("cuda", 0)))
    assert model.uses_channels_last
    model._trainer = None
    with pytest.raises(ValueError, match=r"channels_last must be one of 'auto' \(or a bool\); got 'yes'"):
        build_tiny_model("pix2pix", channels_last="yes")
    model.hparams.channels_last = "yes"  # changed after building: refused where it is read
    with pytest.raises(ValueError, match="channels_last must be true, false or 'auto'"):
        _ = model.uses_channels_last


def test_the_command_takes_auto_and_refuses_other_values_in_one_line(tmp_path, monkeypatch, capsys):
    from tests.test_cli_errors import TINY_PIX2PIX, _error_line
    from zoo.cli import main

    monkeypatch.chdir(tmp_path)
    main(["fit", "--config", str(TINY_PIX2PIX), "--model.init_args.channels_last=auto", "--print_config"])
    assert "channels_last: auto" in capsys.readouterr().out
    line = _error_line(capsys, "fit", "--config", str(TINY_PIX2PIX), "--model.init_args.channels_last=maybe")
    assert "'maybe'" in line and "'auto'" in line
