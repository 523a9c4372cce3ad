"""Dask, the one parallel engine of the workflows: a local cluster, a remote one, or none.

Tasks are chunks of structures or whole search runs, each a call
``function(calc, item, progress)`` on one worker thread. The calculator travels once per
worker, not with every task: a ``BuildSpec`` (a ``--calc`` spec and the function that builds
it) is built on each worker once and kept there (on every worker before a screen's tasks,
see :meth:`Engine.prepare`, else at a worker's first task); a calculator object is scattered
to every worker once. The engine knows no calculator type: the caller says how to build.
Workers are processes with one thread each, because a 20-atom model call cannot use more
than one core and dscribe and ASE's optimisers hold the GIL.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import pickle
import sys
import time
import traceback
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ase.calculators.calculator import BaseCalculator, Calculator

from ase_au20.compute.allocator import keep_freed_memory

PROGRESS_TOPIC = "ase-au20-progress"
# Local workers: one BLAS/OpenMP thread each (Dask's own MALLOC_TRIM_THRESHOLD_=65536 is
# dropped: every task sets glibc's thresholds, see ase_au20.compute.allocator).
WORKER_ENVIRONMENT = {"OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1, "OPENBLAS_NUM_THREADS": 1}
# Dask keeps the last 1000 messages (each under 1 MB) of every connection for debugging: a
# task message holds its chunk of structures (~0.3 MB of xyz text at 256 per chunk), so the
# client and the scheduler would hold every chunk of a long screen (+2.3 kB a structure).
MESSAGE_LOG_LENGTH = 8
# Local workers run without Dask's statistical profiler: it samples the task thread's stack
# every 10 ms on the worker's event loop, holding the GIL, for a dashboard a local cluster
# does not serve (2 % of a SchNet screen's worker time in a py-spy profile).
LOCAL_CLUSTER_CONFIG = {
    "distributed.nanny.pre-spawn-environ": WORKER_ENVIRONMENT,
    "distributed.worker.profile.enabled": False,
}

TaskFunction = Callable[[Calculator, Any, Callable[..., None]], Any]


@dataclass(frozen=True)
class BuildSpec:
    """How a worker builds its calculator: ``build(spec, device, **options)``, once per
    worker (the function travels by reference, so its module must be importable there)."""

    build: Callable[..., BaseCalculator]
    spec: Any  # what ``build`` takes: a --calc spec, classified by the caller
    device: str = "auto"
    options: tuple[tuple[str, Any], ...] = ()  # keyword arguments of ``build``


_built: dict[BuildSpec, BaseCalculator] = {}  # a worker's calculators, by how they are built


class TaskFailed(ValueError):
    """A task raised: the message names the structures or run it was working on."""


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def inside_worker() -> bool:
    """Whether this code runs in a Dask worker, whose one core is all it may use (a worker
    cannot start processes of its own)."""
    if "distributed" not in sys.modules:
        return False
    try:
        sys.modules["distributed"].get_worker()
    except ValueError:
        return False
    return True


def worker_calculator(source: BaseCalculator | BuildSpec | None) -> BaseCalculator | None:
    """The calculator of a task: a scattered object as it is, or a ``BuildSpec`` built on
    this worker at its first use and kept for every later task (None: tasks that need
    none)."""
    if source is None or isinstance(source, BaseCalculator):
        return source
    if source not in _built:
        _built[source] = source.build(source.spec, source.device, **dict(source.options))
    return _built[source]


def _run_task(
    function: TaskFunction,
    source: BaseCalculator | BuildSpec | None,
    item: Any,
    label: str,
    report: bool,
) -> tuple[Any, list[tuple[str, type[Warning]]]]:
    """``function(calc, item, progress)`` with one BLAS/OpenMP/torch thread; its result and
    the warnings it gave (raised again by the caller)."""
    from threadpoolctl import threadpool_limits

    keep_freed_memory()  # once per worker process, local or remote
    _leave_task_failures_to_the_client()
    progress = _progress_to_client if report else _no_progress
    calc = _task_calculator(source, label)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    with threadpool_limits(limits=1), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = _named_call(function, calc, item, progress, label)
    return result, [(str(w.message), w.category) for w in caught]


def _task_calculator(source: BaseCalculator | BuildSpec | None, label: str) -> Any:
    """The calculator of the task ``label`` (see :func:`worker_calculator`); one that cannot
    be built fails the task as :class:`TaskFailed`, like the task's own code."""
    try:
        return worker_calculator(source)
    except Exception as exc:  # whatever the model's loader raises
        raise _task_failure(label, exc) from exc


def _ready(calc: Calculator | None, function: TaskFunction, progress: Callable[..., None]) -> None:
    """A task that leaves its worker ready for ``function``'s tasks: the task has built the
    calculator, and unpickling ``function`` has imported its module."""


def _is_not_a_task_failure(record: logging.LogRecord) -> bool:
    """False for Dask's "Compute Failed" log of a task that raised :class:`TaskFailed`."""
    return not (
        str(record.msg).startswith("Compute Failed") and "TaskFailed(" in record.getMessage()
    )


@functools.cache
def _leave_task_failures_to_the_client() -> None:
    """This worker stops logging its "Compute Failed" report (key, task, traceback) of a
    :class:`TaskFailed`: the client raises that error with the same message, and the
    worker's report would be printed again beside it, through the progress bar."""
    logging.getLogger("distributed.worker").addFilter(_is_not_a_task_failure)


def _named_call(function: TaskFunction, calc, item: Any, progress, label: str) -> Any:
    """``function(calc, item, progress)``; a failure becomes :class:`TaskFailed` naming what
    the task was working on (its structures or run) and where the error was raised."""
    try:
        return function(calc, item, progress)
    except Exception as exc:  # any failure of the task's code
        raise _task_failure(label, exc) from exc


def _task_failure(label: str, exc: Exception) -> TaskFailed:
    """The error of the task ``label`` that raised ``exc``: what and where."""
    return TaskFailed(f"{label}: {type(exc).__name__}: {exc} ({raised_at(exc)})")


def raised_at(exc: BaseException) -> str:
    """``raised at folder/file.py:line in function`` for the frame that raised ``exc``: a
    Dask client receives a task's error without its cause or that cause's traceback."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "raised at an unknown place"
    frame = frames[-1]
    where = Path(frame.filename)
    return f"raised at {where.parent.name}/{where.name}:{frame.lineno} in {frame.name}"


def _progress_to_client(n: int = 1) -> None:
    """``n`` units of progress, sent to the client's progress bar as a Dask event."""
    from distributed import get_worker

    get_worker().log_event(PROGRESS_TOPIC, n)


def _no_progress(n: int = 1) -> None:
    """Progress of a task whose caller shows none."""


@dataclass
class Engine:
    """Where tasks run: a Dask client (None: in this process) and its worker count."""

    client: Any = None
    workers: int = 1
    address: str = ""  # the scheduler's, kept for the description once the cluster is gone
    _sources: dict[int, Any] = field(default_factory=dict)

    @property
    def description(self) -> str:
        """``"in this process"`` or ``"on N Dask workers at ADDRESS"``."""
        if self.client is None:
            return "in this process"
        plural = "s" if self.workers != 1 else ""
        return f"on {self.workers} Dask worker{plural} at {self.address}"

    def calculator(self, calc: BaseCalculator | BuildSpec) -> Any:
        """A handle tasks receive their calculator through: a ``BuildSpec`` builds once per
        worker, an object is sent once per worker (ValueError if it cannot be pickled)."""
        if isinstance(calc, BuildSpec) or self.client is None:
            return calc
        key = id(calc)  # the object is kept beside its future, so the id stays its own
        if key not in self._sources:
            try:
                pickle.dumps(calc)
            except Exception as exc:  # what pickling raises depends on the object
                raise ValueError(
                    f"cannot send {type(calc).__name__} to the Dask workers ({exc}); pass a "
                    "fresh object (an ASE calculator that has not computed yet), a --calc "
                    "spec, or use --scheduler none"
                ) from exc
            future = self.client.scatter(calc, broadcast=True, hash=False)
            self._sources[key] = (calc, future)
        return self._sources[key][1]

    def prepare(self, function: TaskFunction, calculator: Any) -> float:
        """Import ``function``'s code and build the calculator on every worker now (here,
        without a client); the seconds it took.

        A screen's clock then starts with its workers ready, and a calculator a worker
        cannot build fails once, naming the worker, before any task is sent. A worker
        that joins later builds at its first task.
        """
        start = time.perf_counter()
        if self.client is None:
            _run_here(_ready, calculator, function, "building the calculator", None)
            return time.perf_counter() - start
        futures = [
            self.client.submit(
                _run_task,
                _ready,
                calculator,
                function,
                f"building the calculator on worker {address}",
                False,
                workers=[address],
                allow_other_workers=False,
                pure=False,
            )
            for address in self.client.nthreads()
        ]
        for future in futures:
            self._collect(future)
        return time.perf_counter() - start

    def map(
        self,
        function: TaskFunction,
        calculator: Any,
        items: Iterable[Any],
        label: Callable[[Any], str] = str,
        on_progress: Callable[[int], None] | None = None,
        window: int | None = None,
    ) -> Iterator[Any]:
        """Results of ``function(calc, item, progress)`` for each item, in order.

        ``items`` is consumed lazily: at most ``window`` tasks (default 2 per worker) are
        queued at once, so a stream of structures never sits in memory whole. Warnings of
        a task are raised again here; the first failing task raises :class:`TaskFailed`.
        """
        if self.client is None:
            for item in items:
                yield _run_here(function, calculator, item, label(item), on_progress)
            return
        window = window or 2 * self.workers
        pending: deque[Any] = deque()
        report = on_progress is not None
        subscribe = _subscribed(self.client, on_progress) if report else contextlib.nullcontext()
        with subscribe:
            try:
                for item in items:
                    pending.append(self._submit(function, calculator, item, label, report))
                    if len(pending) >= window:
                        yield self._collect(pending.popleft())
                while pending:
                    yield self._collect(pending.popleft())
            finally:
                for future in pending:
                    future.cancel()

    def _submit(self, function, calculator, item, label, report):
        return self.client.submit(
            _run_task, function, calculator, item, label(item), report, pure=False
        )

    @staticmethod
    def _collect(future: Any) -> Any:
        result, caught = future.result()
        _rewarn(caught)
        return result


def _run_here(function, calculator, item, label, on_progress):
    """One task in this process: warnings pass straight through, progress goes to the caller."""
    progress = on_progress if on_progress is not None else _no_progress
    return _named_call(function, _task_calculator(calculator, label), item, progress, label)


def _rewarn(caught: list[tuple[str, type[Warning]]]) -> None:
    for message, category in caught:
        warnings.warn(message, category, stacklevel=3)


@contextlib.contextmanager
def _subscribed(client: Any, on_progress: Callable[[int], None]) -> Iterator[None]:
    """Workers' progress events (timestamp, n) go to ``on_progress(n)`` meanwhile."""
    client.subscribe_topic(PROGRESS_TOPIC, lambda event: on_progress(event[1]))
    try:
        yield
    finally:
        client.unsubscribe_topic(PROGRESS_TOPIC)


def check_scheduler(scheduler: str) -> str:
    """``scheduler`` if it is ``local``, ``none`` or a ``tcp://`` address, else ValueError."""
    if scheduler in ("local", "none") or scheduler.startswith(("tcp://", "tls://")):
        return scheduler
    raise ValueError(
        f"unknown scheduler {scheduler!r}: use 'local', 'none' or a scheduler address "
        "tcp://HOST:PORT"
    )


@contextlib.contextmanager
def open_engine(scheduler: str = "local", workers: int | None = None) -> Iterator[Engine]:
    """An :class:`Engine` for ``scheduler``; ``workers`` sizes a local cluster (default: the
    usable cores). The cluster and client close on exit."""
    check_scheduler(scheduler)
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    if scheduler == "none":
        yield Engine()
        return
    import dask
    from distributed import Client, LocalCluster

    logs = dask.config.set({"distributed.admin.low-level-log-length": MESSAGE_LOG_LENGTH})
    if scheduler == "local":
        with (
            logs,
            dask.config.set(LOCAL_CLUSTER_CONFIG),
            LocalCluster(
                n_workers=workers or usable_cores(),
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            ) as cluster,
            Client(cluster) as client,
        ):
            yield Engine(client, len(cluster.workers), cluster.scheduler_address)
        return
    with logs, Client(scheduler, timeout="20s") as client:
        # nthreads() lists every worker; scheduler_info() of distributed releases from mid-2025
        # to mid-2026 lists the first five only
        threads = sum(client.nthreads().values())
        if threads == 0:
            raise ValueError(f"the Dask scheduler at {scheduler} has no workers")
        yield Engine(client, threads, scheduler)
