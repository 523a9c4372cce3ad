"""One writer at a time per database, with a lock that is freed when a writer dies.

ASE's lock file is created and deleted by the writer, so a SIGKILL leaves it behind and
every later writer waits forever. For SQLite an ``flock`` on ``.<db>.writer-lock`` is
released by the operating system when its holder exits in any way, so a killed ``db add``
costs nothing. For PostgreSQL the same role is played by a session advisory lock, which the
server releases when the holder's connection closes or its process dies. Writers read,
decide and write under the lock (is this isomer new? which chunk comes next?), so several
processes or Dask workers writing at once never duplicate a row.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

DEFAULT_TIMEOUT = 600.0  # s: longer than any single write of ours, short of "forever"
# A waiter polls after 1 ms, then twice as long each time up to 0.1 s: a chunk's write holds
# the lock for 10-30 ms, so it is taken within that again instead of a whole 0.1 s later.
FIRST_POLL = 0.001  # s
POLL_INTERVAL = 0.1  # s, the longest wait between polls


def lock_path(db_path: str | os.PathLike[str]) -> Path:
    """The lock file beside ``db_path`` (the same for every process writing that database)."""
    path = Path(db_path).expanduser().absolute()
    return path.with_name(f".{path.name}.writer-lock")


def _holder(handle) -> str:
    """The pid the current holder wrote into the lock file (or ``"unknown"``)."""
    handle.seek(0)
    return handle.read().strip() or "unknown"


def poll_intervals() -> Iterator[float]:
    """Seconds between a waiter's polls: 1 ms, doubling up to :data:`POLL_INTERVAL`."""
    interval = FIRST_POLL
    while True:
        yield interval
        interval = min(2 * interval, POLL_INTERVAL)


@contextlib.contextmanager
def writer_lock(
    db_url: str | os.PathLike[str], timeout: float = DEFAULT_TIMEOUT
) -> Iterator[float]:
    """Hold the exclusive writer lock of a database (SQLite file or PostgreSQL URL); gives
    the seconds spent waiting for it.

    TimeoutError after ``timeout`` s naming the process that holds it. A leftover ASE
    ``<db>.lock`` is reported once: ase-au20 does not use it, but ``ase db`` writes would
    wait on it. Other server URLs (MySQL) get no lock.
    """
    from ase_au20.database.store import is_server_url, shown_url

    if str(db_url).startswith(("postgresql://", "postgres://")):
        with _advisory_lock(str(db_url), timeout) as waited:
            yield waited
        return
    if is_server_url(db_url):
        yield 0.0
        return
    path = lock_path(db_url)
    ase_lock = Path(db_url).expanduser().absolute().with_name(Path(db_url).name + ".lock")
    if ase_lock.exists():
        warnings.warn(
            f"{ase_lock} exists (left by a killed ASE writer?): ase-au20 ignores it, but "
            "`ase db` writes wait on it; delete it if no `ase db` write is running",
            stacklevel=3,
        )
    with path.open("a+") as handle:
        start = time.monotonic()
        deadline = start + timeout
        intervals = poll_intervals()
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"{shown_url(db_url)} is being written by process {_holder(handle)} "
                        f"(waited {timeout:.0f} s for {path})"
                    ) from None
                time.sleep(min(next(intervals), left))
        waited = time.monotonic() - start
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield waited
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


ADVISORY_KEY = 0x41553230  # "AU20": the one writer lock of an ase-au20 PostgreSQL database


@contextlib.contextmanager
def _advisory_lock(url: str, timeout: float) -> Iterator[float]:
    """A PostgreSQL session advisory lock on a connection of its own, for ``timeout`` s;
    gives the seconds spent waiting for it (the server wakes the waiter, no polling)."""
    from ase_au20.database.store import POSTGRES_EXTRA, shown_url

    try:
        import psycopg2
    except ModuleNotFoundError:
        raise ValueError(f"postgresql:// databases need the driver: {POSTGRES_EXTRA}") from None
    connection = psycopg2.connect(url)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = %s", (f"{int(timeout * 1000)}ms",))
            start = time.monotonic()
            try:
                cursor.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_KEY,))
            except psycopg2.errors.LockNotAvailable:
                cursor.execute(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = %s "
                    "AND granted",
                    (ADVISORY_KEY,),
                )
                holder = cursor.fetchone()
                raise TimeoutError(
                    f"{shown_url(url)} is being written by server process "
                    f"{holder[0] if holder else 'unknown'} (waited {timeout:.0f} s)"
                ) from None
            waited = time.monotonic() - start
        yield waited
    finally:
        connection.close()  # closing the session releases its advisory locks
