"""glibc keeps freed memory for reuse once ``keep_freed_memory`` ran."""

import os
import subprocess
import sys

import pytest

PROBE = """
import resource, numpy as np
from ase_au20.allocator import keep_freed_memory

def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(40):
        np.ones(2**19).sum()  # 4 MB, allocated and freed like a batch's tensors
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

print(faults(), keep_freed_memory(), faults())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_freed_batches_are_reused_instead_of_mapped_and_faulted_again():
    # Dask's nanny starts workers with this setting: every 4 MB array is a fresh mapping
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536"}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    before, applied, after = int(out[0]), out[1], int(out[2])
    assert applied == "True"
    assert before > 40 * 250  # one fault per 4 kB page of every array (~20,000)
    assert after < 2000  # the first array's pages only (~500)
