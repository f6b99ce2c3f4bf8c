"""Reading oracle cases: ``$ZOO_REFERENCE_DIR/<method>/MANIFEST.json`` (default ``../shared/reference``)."""

from __future__ import annotations

import json
import os
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


def strip(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """Entries whose key starts with ``prefix`` (e.g. ``"state."``), with the prefix removed."""
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def assert_close(actual: torch.Tensor, expected: torch.Tensor, tol: dict, name: str) -> None:
    torch.testing.assert_close(actual.detach().to(expected.dtype).cpu(), expected, atol=tol["atol"], rtol=tol["rtol"],
                               msg=lambda m: f"{name}: {m}")
