"""glibc keeps freed memory for reuse once ``keep_freed_memory`` ran."""

import os
import subprocess
import sys

import pytest

# mallinfo2().hblkhd: bytes glibc holds in mmap'ed blocks, each mapped afresh (and
# page-faulted) when allocated and unmapped when freed
PROBE = """
import ctypes, numpy as np
from ase_au20.compute.allocator import keep_freed_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2

def mapped_while_alive():
    batch = np.ones(2**19)  # 4 MB, like a batch's tensors
    return libc.mallinfo2().hblkhd

print(mapped_while_alive(), keep_freed_memory(), mapped_while_alive())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_batches_come_from_the_heap_instead_of_fresh_mappings():
    # Dask's nanny starts workers with this setting: every 4 MB array is a fresh mapping
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536"}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    before, applied, after = int(out[0]), out[1], int(out[2])
    assert applied == "True"
    assert before >= 4 * 2**20  # the array is a mapping of its own
    assert after < before - 4 * 2**20 + 2**20  # now it is heap memory
