"""The float32-rounding rule of parity checks (``tests/parity/manifest.py::assert_close_rounding_limited``)."""

from __future__ import annotations

import pytest
import torch

from tests.parity.manifest import assert_close_rounding_limited

TOL = {"atol": 1e-5, "rtol": 1e-4}


def _tensors(n: int = 100):
    """ours64 (the exact value), ours32 and the oracle: equal to it except where a test sets an entry."""
    exact = torch.linspace(-1.0, 1.0, n, dtype=torch.float64)
    return exact.clone(), exact, exact.clone()


def test_rounding_limited_entry_within_the_bound_is_accepted():
    ours32, ours64, oracle = _tensors()
    tol0 = TOL["atol"] + TOL["rtol"] * ours64[0].abs().item()  # 1.1e-4 at |x| = 1
    ours32[0] += 3 * tol0  # our float32 value is 3 tolerances off the exact one ...
    oracle[0] -= 1.5 * tol0  # ... the oracle's 1.5 the other way: 4.5 apart, within tol + 2 x 3 tol of float64
    result = assert_close_rounding_limited(ours32, ours64, oracle, TOL, "limited")
    assert result["limited"] == 1 and result["margin"] == pytest.approx(0.5 * tol0)
    # entries that pass the plain check are not touched by the rule, whatever the float64 value says
    ours32, ours64, oracle = _tensors()
    assert assert_close_rounding_limited(ours32, ours64 + 1.0, oracle, TOL, "plain")["limited"] == 0


def test_entry_stable_in_float32_but_off_is_rejected():
    ours32, ours64, oracle = _tensors()
    tol0 = TOL["atol"] + TOL["rtol"] * ours64[0].abs().item()
    ours32[0] += 1e-9  # our float32 rounding is negligible there, so the plain tolerance decides
    oracle[0] += 1.5 * tol0
    with pytest.raises(AssertionError, match="1 of 100 elements differ beyond the float32 rounding bound"):
        assert_close_rounding_limited(ours32, ours64, oracle, TOL, "stable")


def test_entry_off_beyond_the_rounding_bound_is_rejected():
    ours32, ours64, oracle = _tensors()
    tol0 = TOL["atol"] + TOL["rtol"] * ours64[0].abs().item()
    ours32[0] += 2 * tol0  # rounding-limited: allowed |oracle - ours64| <= tol + 4 tol
    oracle[0] -= 5.5 * tol0
    with pytest.raises(AssertionError, match="beyond the float32 rounding bound"):
        assert_close_rounding_limited(ours32, ours64, oracle, TOL, "too far")
    oracle[0] = ours64[0] - 4.5 * tol0  # just within
    assert assert_close_rounding_limited(ours32, ours64, oracle, TOL, "within")["limited"] == 1


def test_too_many_rounding_limited_entries_are_rejected():
    ours32, ours64, oracle = _tensors(100)  # at most 2 (2 %) may rely on the rule
    tol = TOL["atol"] + TOL["rtol"] * ours64.abs()
    ours32[:3] += 3 * tol[:3]
    oracle[:3] -= 1.5 * tol[:3]
    with pytest.raises(AssertionError, match="3 of 100 elements are only float32-rounding-limited, more than 2"):
        assert_close_rounding_limited(ours32, ours64, oracle, TOL, "many")
    assert assert_close_rounding_limited(ours32, ours64, oracle, TOL, "many", max_fraction=0.03)["limited"] == 3
    # a tensor too small for one exemption gets none
    with pytest.raises(AssertionError, match="more than 0"):
        assert_close_rounding_limited(ours32[:10], ours64[:10], oracle[:10], TOL, "small")
