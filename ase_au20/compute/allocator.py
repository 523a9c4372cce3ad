"""glibc's malloc told to keep freed memory for reuse, for batched model work.

Batched SchNet and SOAP arrays of a few MB are allocated and freed for every batch; under
glibc's adaptive thresholds (or Dask's MALLOC_TRIM_THRESHOLD_=65536) they are mapped afresh
and page-faulted each time, which costs a screening process 20-50 % of its time.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

MMAP_THRESHOLD = 32 * 2**20  # blocks below this come from the heap, not fresh mappings
TRIM_THRESHOLD = 256 * 2**20  # freed heap kept mapped up to this much
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters of glibc's malloc.h


@functools.cache
def keep_freed_memory() -> bool:
    """Set both thresholds in this process (once); False where the C library is not glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl, macOS and Windows have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    done = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    return mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and done
