"""Memory a stage freed goes back to the operating system before the next stage."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from features.memory import release_free_memory

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _resident() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim; a no-op elsewhere")
def test_freed_heap_memory_below_a_live_block_is_given_back():
    # Blocks below glibc's mmap threshold live in the heap; one still held above them keeps the heap from
    # shrinking on its own when they are freed, as a stage's leftovers do.
    blocks = [np.ones(64 * 1024 // 8) for _ in range(3000)]  # 192 MB of 64 KB blocks
    pinned = np.ones(64 * 1024 // 8)
    del blocks
    before = _resident()
    assert release_free_memory()
    after = _resident()
    assert before - after > 100e6, (before, after)
    assert pinned.sum() == len(pinned)
