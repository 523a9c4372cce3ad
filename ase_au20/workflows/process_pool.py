"""Independent jobs side by side in spawned worker processes, with a shared progress count.

The search's runs each relax hundreds of 20-atom structures, one small calculator call at a
time: one core per run is all a call can use, so runs in separate processes are the way to
use the other cores (threads would wait on the GIL that dscribe and ASE's optimisers hold).
Workers are spawned, not forked, so a parent that already started torch or OpenMP threads
is safe; each worker runs its job with one BLAS/OpenMP/torch thread.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import sys
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from typing import Any

_ticks: Any = None  # the worker's end of the progress queue, set by _start_worker


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _start_worker(ticks: Any) -> None:
    global _ticks
    _ticks = ticks


def _tick() -> None:
    """One unit of progress, reported to the parent."""
    _ticks.put(1)


def _call(function: Callable[..., Any], args: tuple[Any, ...]) -> tuple[Any, list[Any]]:
    """``function(*args, progress=...)`` on one thread; its result and the warnings it gave."""
    from threadpoolctl import threadpool_limits

    if "torch" in sys.modules:  # unpickling a SchNet calculator imported it
        sys.modules["torch"].set_num_threads(1)
    with threadpool_limits(limits=1), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = function(*args, progress=_tick)
    return result, [(str(w.message), w.category) for w in caught]


def map_in_processes(
    function: Callable[..., Any],
    jobs: Sequence[tuple[Any, ...]],
    workers: int,
    on_progress: Callable[[], None] | None = None,
) -> list[Any]:
    """``function(*job, progress=callback)`` for every job in ``workers`` processes, in order.

    ``function`` must be importable (module level) and every job picklable. Warnings raised
    in a worker are raised again here; the first exception of a job is raised here.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    distinct = {id(item): item for job in jobs for item in job}  # one calculator, many runs
    for item in distinct.values():
        try:
            pickle.dumps(item)
        except Exception as exc:  # what pickling raises depends on the object
            raise ValueError(
                f"cannot send {type(item).__name__} to worker processes ({exc}); "
                "pass a fresh object (an ASE calculator that has not computed yet) "
                "or use one worker"
            ) from exc
    context = multiprocessing.get_context("spawn")
    ticks = context.Queue()

    def drain() -> None:
        while True:
            try:
                ticks.get_nowait()
            except queue.Empty:
                return
            if on_progress is not None:
                on_progress()

    with ProcessPoolExecutor(
        max_workers=min(workers, len(jobs)) or 1,
        mp_context=context,
        initializer=_start_worker,
        initargs=(ticks,),
    ) as pool:
        futures = [pool.submit(_call, function, job) for job in jobs]
        pending = set(futures)
        while pending:
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_EXCEPTION)
            drain()
            if any(f.exception() is not None for f in done):
                for future in pending:
                    future.cancel()
                break
        results = []
        for future in futures:
            result, caught = future.result()
            for message, category in caught:
                warnings.warn(message, category, stacklevel=2)
            results.append(result)
    drain()
    return results
