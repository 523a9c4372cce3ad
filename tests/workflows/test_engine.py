"""The Dask engine: what a long stream of tasks leaves behind in the client."""

import gc
import tracemalloc

from ase_au20.workflows.engine import MESSAGE_LOG_LENGTH, open_engine


def _length(calc, item: str, progress) -> int:
    return len(item)


def test_a_stream_of_tasks_does_not_stay_in_the_client(tmp_path):
    # each task carries 0.4 MB, like a chunk of 256 structures' xyz text; Dask's default
    # message logs keep all 80 in the client and again in its scheduler (64 MB), ours the
    # last few of each
    payload, tasks = 400_000, 80
    with open_engine("local", workers=1) as engine:
        list(engine.map(_length, None, ["w" * payload for _ in range(4)]))  # warm the comms
        gc.collect()
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            lengths = list(
                engine.map(_length, None, (chr(65 + k % 26) * payload for k in range(tasks)))
            )
            gc.collect()
            kept = tracemalloc.get_traced_memory()[0] - base
        finally:
            tracemalloc.stop()
    assert lengths == [payload] * tasks
    bound = (2 * MESSAGE_LOG_LENGTH + 4) * payload
    assert kept < bound, (
        f"{kept / 1e6:.1f} MB of {tasks * payload / 1e6:.0f} MB of tasks still held"
    )
