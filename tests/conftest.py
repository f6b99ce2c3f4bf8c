"""Test-wide settings: offline, quiet, deterministic, small thread pools."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("ZOO_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from zoo.utils.memory import keep_freed_memory  # noqa: E402

# The CPU cores shared among the pytest-xdist workers (pyproject's addopts); ZOO_TEST_THREADS overrides (1 keeps a
# busy machine usable).
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
torch.set_num_threads(int(os.environ.get("ZOO_TEST_THREADS", max(1, min(2, os.cpu_count() or 1) // _WORKERS))))
keep_freed_memory()  # as every ZooTrainer does; from the start, so that timings do not depend on the test order


@pytest.fixture(autouse=True)
def _isolated_zoo_home(tmp_path_factory, monkeypatch):
    """Never read or write the user's real weight cache."""
    monkeypatch.setenv("ZOO_HOME", str(tmp_path_factory.mktemp("zoo_home")))
    monkeypatch.delenv("ZOO_WEIGHTS_DIR", raising=False)
