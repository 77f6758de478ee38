"""Give the memory a job has freed back to the operating system between its stages.

glibc keeps freed heap memory for later allocations, in one arena per thread that allocated: after a stage whose
worker threads built and dropped gigabytes (LightGBM boosters trained side by side, blocks of candidates), the
process stays that large although nothing holds the memory, and the next stage's peak sits on top of it.
``malloc_trim`` returns the free pages of every arena. Elsewhere (another C library, another OS) nothing happens.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import sys


@functools.cache
def _malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        return None


def release_free_memory() -> bool:
    """Collect Python's unreachable cycles, then return the allocator's free pages to the OS.

    Returns
    -------
    bool
        Whether the allocator was asked (glibc); results never depend on it, only the resident memory does.
    """
    gc.collect()
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
