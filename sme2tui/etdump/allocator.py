"""Keep glibc's allocator from handing memory back to the kernel between decode chunks.

Decoding allocates and frees a few dozen arrays of 16k-128k elements per chunk. With glibc's defaults
(dynamic mmap threshold starting at 128 KB, heap trimmed when 128 KB sit free at its top) each chunk's
arrays are mapped, zero-filled by page faults and unmapped again, which cost a quarter of the decode time
in a fresh process (measured with benchmarks/etdump_read.py: 231k events 0.12 s -> 0.09 s, 3M events
1.5 s -> 1.1 s, same peak RSS). A fixed 4 MB mmap threshold and a 32 MB trim threshold keep that memory
in the process; big arrays (the per-event columns) are still mapped and returned as usual.
Applied once per process, on glibc only (elsewhere it does nothing).
"""

from __future__ import annotations

import sys
from typing import Final

_M_TRIM_THRESHOLD: Final = -1  # from glibc's malloc.h
_M_MMAP_THRESHOLD: Final = -3
MMAP_THRESHOLD_BYTES: Final = 4 << 20
TRIM_THRESHOLD_BYTES: Final = 32 << 20

_tuned = False


def tune_allocator() -> None:
    global _tuned
    if _tuned or not sys.platform.startswith("linux"):
        return
    _tuned = True
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl without mallopt)
        return
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
