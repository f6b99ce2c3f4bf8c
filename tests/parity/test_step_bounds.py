"""The shared rule for zero-gradient entries in multi-step parity checks (``tests/parity/manifest.py``)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.parity.manifest import adam_step_bound, assert_rounding_noise, assert_step_close, mean_removed_biases


def _adam_run(grads: list[float], betas: tuple[float, float], lr: float = 1e-3) -> float:
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([p], lr=lr, betas=betas)
    for g in grads:
        p.grad = torch.tensor([g])
        opt.step()
    return p.item()


def test_adam_bound_holds_and_is_reached_where_lr_times_steps_is_not_a_bound():
    # a tiny first gradient then a large one: the second step is sqrt(1.9) lr with betas (0, 0.9)
    second = _adam_run([1e-9, 1.0], (0.0, 0.9)) - _adam_run([1e-9], (0.0, 0.9))
    assert abs(second) > 1.3e-3
    assert abs(second) <= adam_step_bound(1e-3, (0.0, 0.9), [2]) * (1 + 1e-6)
    torch.manual_seed(0)
    for betas in ((0.5, 0.999), (0.0, 0.9), (0.9, 0.99)):
        for _ in range(20):
            grads = (torch.randn(4) * 10 ** torch.randint(-9, 2, (4,)).float()).tolist()
            assert abs(_adam_run(grads, betas)) <= adam_step_bound(1e-3, betas, range(1, 5)) * (1 + 1e-6)


def test_step_check_accepts_noise_decided_changes_and_rejects_larger_ones():
    lr, bound = 1e-4, adam_step_bound(1e-4, (0.5, 0.999), [1, 2])
    ours, theirs = torch.tensor([2 * lr, -0.5 * lr]), torch.tensor([-1.9 * lr, lr])  # opposite signs
    never = torch.zeros(2, dtype=torch.bool)
    assert_step_close(ours, theirs, "noise", close=never, noise_decided=True, bound=bound, atol=1e-6)
    with pytest.raises(AssertionError, match="beyond Adam's bound"):
        assert_step_close(torch.tensor([3 * lr, 0.0]), theirs, "too far", close=never, noise_decided=True,
                          bound=bound, atol=1e-6)
    with pytest.raises(AssertionError, match="beyond Adam's bound"):  # the oracle is held to the bound too
        assert_step_close(ours, torch.tensor([0.0, 3 * lr]), "oracle", close=never, noise_decided=True,
                          bound=bound, atol=1e-6)
    # other entries keep the case's own verdict
    with pytest.raises(AssertionError, match="1 of 2"):
        assert_step_close(ours, theirs, "regular", close=torch.tensor([True, False]), noise_decided=False,
                          bound=bound, atol=1e-6)


def test_zero_gradient_biases_are_those_before_mean_removing_norms():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.InstanceNorm2d(4), nn.ReLU(),
                        nn.Sequential(nn.Conv2d(4, 4, 1)), nn.BatchNorm2d(4), nn.Conv2d(4, 2, 1))
    assert mean_removed_biases(net.train()) == {"0.bias", "3.0.bias"}
    assert mean_removed_biases(net.eval()) == {"0.bias"}  # batch norm with running statistics keeps the mean
    net.train()
    net(torch.randn(2, 3, 8, 8)).square().sum().backward()
    scale = max(p.grad.abs().max().item() for p in net.parameters())
    for name in mean_removed_biases(net):
        grad = net.get_parameter(name).grad
        assert_rounding_noise(grad, grad, name, scale=scale)
    with pytest.raises(AssertionError, match="not followed by a mean-removing norm"):
        assert_rounding_noise(net[5].bias.grad, net[5].bias.grad, "5.bias", scale=scale)
