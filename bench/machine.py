"""The line every bench prints first: which machine and software measured the numbers."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch


def describe_machine(*extras: str) -> str:
    """CPU model, logical CPUs, torch version and threads, Python, and ``extras`` (e.g. ``"onnxruntime 1.32.0"``)."""
    model = platform.processor() or platform.machine()
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    parts = [model, f"{os.cpu_count()} logical CPUs", f"torch {torch.__version__}", *extras,
             f"{torch.get_num_threads()} threads", f"python {platform.python_version()}"]
    return ", ".join(parts)
