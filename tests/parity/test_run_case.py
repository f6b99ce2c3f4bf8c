"""``run_case``: the dispatch every parity test uses, from a case's kind to its check."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from tests.parity.manifest import run_case


def _case(tmp_path, kind: str) -> dict:
    save_file({"in.x": torch.arange(3.0)}, str(tmp_path / "c.safetensors"))
    return {"name": "c", "kind": kind, "file": "c.safetensors", "_folder": str(tmp_path)}


def test_the_check_of_the_kind_gets_the_case_and_its_tensors(tmp_path):
    seen = []
    run_case(_case(tmp_path, "forward"), {"forward": lambda case, t: seen.append((case["name"], t["in.x"]))}, "X")
    assert seen[0][0] == "c" and torch.equal(seen[0][1], torch.arange(3.0))
    run_case(_case(tmp_path, "ignored"), {("a", 1): lambda case, t: seen.append("by key")}, "X", kind=("a", 1))
    assert seen[-1] == "by key"


def test_an_unknown_kind_fails_naming_the_method_and_case(tmp_path):
    with pytest.raises(pytest.fail.Exception, match=r"unknown X parity case kind 'backward' \(case 'c'\)"):
        run_case(_case(tmp_path, "backward"), {"forward": lambda case, t: None}, "X")
