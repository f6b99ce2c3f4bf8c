"""keep_freed_memory: large CPU tensors come from the heap and reuse it (glibc)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from zoo.utils.memory import heap_statistics, keep_freed_memory

pytestmark = pytest.mark.skipif(heap_statistics() is None, reason="needs glibc >= 2.33 (mallinfo2)")

_MIB = 2**20

_ALLOCATE = """
import json, torch
from zoo.utils.memory import heap_statistics, keep_freed_memory
applied = keep_freed_memory() if {keep} else False
before = heap_statistics()
x = torch.empty(16 * 2**20)  # 64 MiB
during = heap_statistics()
print(json.dumps({{"applied": applied, "mmapped": during.mmapped - before.mmapped,
                   "heap_in_use": during.heap_in_use - before.heap_in_use}}))
"""


def _allocation_in_fresh_process(keep: bool) -> dict:
    out = subprocess.run([sys.executable, "-c", _ALLOCATE.format(keep=keep)], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_large_tensors_come_from_the_heap_only_when_kept():
    default, kept = _allocation_in_fresh_process(False), _allocation_in_fresh_process(True)
    assert default["mmapped"] >= 64 * _MIB and default["heap_in_use"] < 64 * _MIB  # glibc: a fresh mmap
    assert kept["applied"] is True
    assert kept["mmapped"] == 0 and kept["heap_in_use"] >= 64 * _MIB


def test_freed_memory_is_reused_across_iterations():
    assert keep_freed_memory() is True

    def iteration():  # a training-like pattern: overlapping lifetimes of large activations
        a = torch.ones(2 * _MIB)  # 8 MiB
        b = torch.ones(_MIB)
        del a
        c = torch.ones(2 * _MIB)
        del b, c

    for _ in range(5):
        iteration()
    settled = heap_statistics()
    for _ in range(5):
        iteration()
    after = heap_statistics()
    assert after.mmapped == settled.mmapped
    assert after.heap == settled.heap  # no growth: the freed blocks were reused
