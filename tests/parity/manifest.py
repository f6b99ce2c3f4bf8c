"""Reading oracle cases: ``$ZOO_REFERENCE_DIR/<method>/MANIFEST.json`` (default ``../shared/reference``)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

REPO_ROOT = Path(__file__).resolve().parents[2]


def reference_dir() -> Path:
    """The folder holding one sub-folder of oracle fixtures per method."""
    return Path(os.environ.get("ZOO_REFERENCE_DIR", REPO_ROOT.parent / "shared" / "reference")).resolve()


def cases(method_folder: str) -> list[Any]:
    """One ``pytest.param`` per manifest case, with the case name as test id.

    A method folder absent from the reference dir yields a single skipped param that says so.
    """
    folder = reference_dir() / method_folder
    manifest = folder / "MANIFEST.json"
    if not manifest.is_file():
        reason = f"no oracle fixtures for {method_folder!r}: {manifest} does not exist"
        return [pytest.param(None, id=f"{method_folder}-absent", marks=pytest.mark.skip(reason=reason))]
    data = json.loads(manifest.read_text())
    return [pytest.param({**case, "_folder": str(folder)}, id=case["name"]) for case in data["cases"]]


def load_tensors(case: dict) -> dict[str, torch.Tensor]:
    return load_file(str(Path(case["_folder"]) / case["file"]))


def run_case(case: dict, checks: dict[Any, Callable[[dict, dict[str, torch.Tensor]], None]], method: str, *,
             kind: Any = None) -> None:
    """Run the check of the case's kind (``kind``, default ``case["kind"]``) on the case and its tensors; an unknown
    kind fails, naming the case."""
    kind = case["kind"] if kind is None else kind
    if kind not in checks:
        pytest.fail(f"unknown {method} parity case kind {kind!r} (case {case['name']!r}); add a check for it")
    checks[kind](case, load_tensors(case))


def strip(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """Entries whose key starts with ``prefix`` (e.g. ``"state."``), with the prefix removed."""
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def assert_close(actual: torch.Tensor, expected: torch.Tensor, tol: dict, name: str) -> None:
    torch.testing.assert_close(actual.detach().to(expected.dtype).cpu(), expected, atol=tol["atol"], rtol=tol["rtol"],
                               msg=lambda m: f"{name}: {m}")


# ------------------------------------------------------------------------------------------ multi-step weight checks

def _removes_channel_mean(module: torch.nn.Module) -> bool:
    """Instance norm, or batch norm in training mode (or without running statistics): the per-channel mean of the
    input is subtracted. (The flows' own batch norms act per feature after affine couplings and are not included.)"""
    if isinstance(module, torch.nn.modules.instancenorm._InstanceNorm):
        return True
    if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
        return module.training or not module.track_running_stats
    return False


def mean_removed_biases(module: torch.nn.Module) -> set[str]:
    """Names (as in ``module.named_parameters()``) of biases whose true gradient is exactly zero.

    A conv / linear / transposed-conv bias adds one constant per output channel. When that output goes straight into
    a normalisation that subtracts the per-channel mean (instance norm, or batch norm in training mode), the constant
    cancels, so the network's output, every loss and every other parameter's gradient do not depend on it: its
    gradient is 0 in exact arithmetic, and float rounding leaves only noise of the order of 1e-7 x the gradients
    around it. Such layers are found structurally: leaf modules taken in registration order (the execution order of
    the Sequential-built networks compared here), a layer with a bias immediately followed by such a normalisation.
    """
    leaves = [(name, m) for name, m in module.named_modules() if not list(m.children())]
    found = set()
    for (name, layer), (_, nxt) in zip(leaves, leaves[1:], strict=False):
        bias = getattr(layer, "bias", None)
        if isinstance(layer, (torch.nn.modules.conv._ConvNd, torch.nn.Linear)) and isinstance(
                bias, torch.nn.Parameter) and _removes_channel_mean(nxt):
            found.add(f"{name}.bias" if name else "bias")
    return found


def adam_step_bound(lr: float, betas: tuple[float, float], steps: range | list[int]) -> float:
    """Largest change |theta_T - theta_0| that bias-corrected Adam (PyTorch's ``Adam``, amsgrad or not, any L2
    weight decay, any ``eps``) can make to one entry over the given 1-based steps, whatever the gradients.

    At step t the update is ``lr * m_hat / (sqrt(v_hat) + eps)``. By Cauchy-Schwarz,
    ``|m_t| <= (1 - b1) / sqrt(1 - b2) * sqrt(sum_{j<t} (b1^2 / b2)^j) * sqrt(v_t)``, so after bias correction
    ``|update_t| <= lr * (1 - b1) / (1 - b1^t) * sqrt((1 - b2^t) / (1 - b2)) * sqrt(sum_{j<t} (b1^2 / b2)^j)``
    (``eps`` and amsgrad's running maximum only enlarge the denominator). The bound is 1 x lr at t = 1 and can exceed
    it later (1.38 x lr at t = 2 for betas (0, 0.9)), so ``lr x steps`` is not a bound. Returns the sum over ``steps``.
    """
    b1, b2 = betas
    if not 0.0 <= b1 < 1.0 or not 0.0 < b2 < 1.0:
        raise ValueError(f"the bound needs 0 <= beta1 < 1 and 0 < beta2 < 1, got {betas}")
    total = 0.0
    for t in steps:
        ratio = sum((b1 * b1 / b2) ** j for j in range(t))
        total += (1 - b1) / (1 - b1 ** t) * ((1 - b2 ** t) / (1 - b2)) ** 0.5 * ratio ** 0.5
    return lr * total


def assert_step_close(actual: torch.Tensor, expected: torch.Tensor, name: str, *, close: torch.Tensor,
                      noise_decided: torch.Tensor | bool, bound: float, atol: float) -> None:
    """Parameter changes after one or more optimizer steps, ``actual`` (ours) against ``expected`` (the oracle's).

    ``close`` is the case's own per-element verdict (its tolerance, unchanged). Entries flagged ``noise_decided``
    (see :func:`mean_removed_biases`: gradient 0 in exact arithmetic) are judged instead by the only thing both
    implementations share there: Adam normalises the gradient, so rounding noise of 1e-9 still moves such an entry by
    up to about lr per step, in a direction the noise decides. For them both changes must stay within ``bound``
    (:func:`adam_step_bound`, plus ``atol`` for the rounding of stored weights); their signs need not agree.

    Args:
        actual: our change, any shape.
        expected: the oracle's change, same shape.
        name: label for messages.
        close: bool tensor (same shape): the elements the case's tolerance accepts.
        noise_decided: bool tensor (or one flag for the whole tensor) of the zero-gradient entries.
        bound: largest change Adam can make over the steps compared.
        atol: absolute slack of the stored weights.
    """
    noise = torch.as_tensor(noise_decided, dtype=torch.bool).expand_as(actual)
    limit = bound * (1 + 1e-3) + atol
    within = (actual.abs() <= limit) & (expected.abs() <= limit)
    bad = (~noise & ~close) | (noise & ~within)
    if bad.any():
        worst = (actual - expected).abs()[bad].max().item()
        raise AssertionError(f"{name}: {int(bad.sum())} of {bad.numel()} elements differ (max {worst:.3g}; "
                             f"{int((noise & ~within).sum())} zero-gradient entries beyond Adam's bound {limit:.3g})")


def assert_rounding_noise(actual: torch.Tensor, expected: torch.Tensor, name: str, *, scale: float,
                          rel: float = 1e-4) -> None:
    """Gradients of zero-gradient entries (:func:`mean_removed_biases`): both must be rounding noise, i.e. at most
    ``rel`` x ``scale`` (the largest oracle gradient of that network at that step); their values are not compared,
    since noise is all they hold (float32 sums over B x H x W terms leave ~1e-6 relative)."""
    limit = rel * scale
    worst = max(actual.abs().max().item(), expected.abs().max().item())
    if worst > limit:
        raise AssertionError(f"{name}: a gradient that vanishes in exact arithmetic is {worst:.3g}, above the "
                             f"rounding level {limit:.3g}: the layer is not followed by a mean-removing norm")


# ------------------------------------------------------------------------------------------ float32 rounding limits

def assert_close_rounding_limited(ours32: torch.Tensor, ours64: torch.Tensor, expected: torch.Tensor, tol: dict,
                                  name: str, *, max_fraction: float = 0.02) -> dict:
    """``ours32`` (our float32 result, the production path) against the oracle's float32 ``expected``, where some
    entries are limited by float32 rounding rather than by the implementation; ``ours64`` is the same computation of
    ours run in float64 from the same inputs and weights (an estimate of the exact value of our function, ~1e-12).

    Every entry that passes today's check ``|ours32 - expected| <= atol + rtol * |expected|`` passes, unchanged.
    An entry that fails it is float32-rounding-limited, and accepted, only if the oracle agrees with our float64 value
    up to the case's tolerance plus twice our own float32 rounding at that entry::

        |expected - ours64| <= atol + rtol * |ours64| + 2 * |ours32 - ours64|

    Why: both sides are float32 evaluations of the same exact value, so ``ours32 - expected`` is the difference of two
    rounding errors. Where our rounding ``|ours32 - ours64|`` (measured on this machine) or the oracle's (made on
    another CPU, with another reduction order) takes up a large part of the tolerance, no float32 implementation can
    match the oracle bit for bit, so the float64 value decides. The tolerance (``atol``, ``rtol``) is unchanged; the
    only extra slack, ``2 * |ours32 - ours64|``, stands for the oracle's own float32 rounding at that entry: the same
    reduction (same length, same terms, same cancellation) over float32 gives errors of the same order on any
    machine, and a factor 2 covers the spread between two reduction orders of it (on the DECENT train step the oracle
    used at most 0.39 of this allowance, 2.9e-6 beyond the tolerance in ``G.model.1.weight``, with 1 or 2 threads).
    Where our float32 value is accurate the slack is small, so the oracle must then be within about the plain
    tolerance of the exact value.

    A real discrepancy cannot hide behind the rule: at most ``floor(max_fraction x numel)`` of the tensor's entries
    may rely on it (none in tensors of fewer than ``1 / max_fraction`` entries), and each must meet the bound above.

    Returns ``{"limited": number of entries accepted by the rule, "margin": largest (|expected - ours64| - tolerance)
    over them, in absolute units (<= 0 means the plain tolerance around the float64 value was enough)}``.
    """
    atol, rtol = tol["atol"], tol["rtol"]
    a = ours32.detach().cpu().to(torch.float64)
    b = ours64.detach().cpu().to(torch.float64)
    r = expected.detach().cpu().to(torch.float64)
    if not (a.shape == b.shape == r.shape):
        raise AssertionError(f"{name}: shapes differ: ours {tuple(a.shape)}, float64 {tuple(b.shape)}, "
                             f"oracle {tuple(r.shape)}")
    today = (a - r).abs() <= atol + rtol * r.abs()  # torch.testing.assert_close's rule, expected = oracle
    rounding = (a - b).abs()
    excess = (r - b).abs() - (atol + rtol * b.abs())
    within = excess <= 2 * rounding
    limited = ~today
    bad = limited & ~within
    if bad.any():
        i = int(torch.nonzero(bad.flatten())[0])
        raise AssertionError(
            f"{name}: {int(bad.sum())} of {bad.numel()} elements differ beyond the float32 rounding bound; first at "
            f"flat index {i}: ours {a.flatten()[i].item():.9g}, oracle {r.flatten()[i].item():.9g}, float64 "
            f"{b.flatten()[i].item():.9g} (oracle - float64 beyond the tolerance by {excess.flatten()[i].item():.3g},"
            f" allowed 2 x our rounding {2 * rounding.flatten()[i].item():.3g})")
    n = int(limited.sum())
    allowed = int(max_fraction * limited.numel())
    if n > allowed:
        raise AssertionError(f"{name}: {n} of {limited.numel()} elements are only float32-rounding-limited, more than "
                             f"{allowed} ({max_fraction:.0%}): a real discrepancy, not rounding")
    return {"limited": n, "margin": excess[limited].max().item() if n else float("nan")}


# ------------------------------------------------------------------------------------------ training steps

class RecordingOptimizer:
    """Passes through to an optimizer and records the gradients right before each ``step``."""

    def __init__(self, optimizer: torch.optim.Optimizer, named: list[tuple[str, torch.nn.Parameter]],
                 grads: dict[str, torch.Tensor]) -> None:
        self._optimizer, self._named, self._grads = optimizer, named, grads

    def __getattr__(self, name: str):
        return getattr(self._optimizer, name)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self._optimizer.zero_grad(set_to_none)

    def step(self) -> None:
        for name, p in self._named:
            if p.grad is not None:
                self._grads[name] = p.grad.detach().clone()
        self._optimizer.step()
