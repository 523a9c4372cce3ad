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
POLL_INTERVAL = 0.1  # s


def lock_path(db_path: str | os.PathLike[str]) -> Path:
    """The lock file beside ``db_path`` (the same for every process writing that database)."""
    path = Path(db_path).expanduser().absolute()
    return path.with_name(f".{path.name}.writer-lock")


def _holder(handle) -> str:
    """The pid the current holder wrote into the lock file (or ``"unknown"``)."""
    handle.seek(0)
    return handle.read().strip() or "unknown"


@contextlib.contextmanager
def writer_lock(db_url: str | os.PathLike[str], timeout: float = DEFAULT_TIMEOUT) -> Iterator[None]:
    """Hold the exclusive writer lock of a database (SQLite file or PostgreSQL URL).

    TimeoutError after ``timeout`` s naming the process that holds it. A leftover ASE
    ``<db>.lock`` is reported once: ase-au20 does not use it, but ``ase db`` writes would
    wait on it. Other server URLs (MySQL) get no lock.
    """
    from ase_au20.database.store import is_server_url

    if str(db_url).startswith(("postgresql://", "postgres://")):
        with _advisory_lock(str(db_url), timeout):
            yield
        return
    if is_server_url(db_url):
        yield
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
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"{db_url} is being written by process {_holder(handle)} "
                        f"(waited {timeout:.0f} s for {path})"
                    ) from None
                time.sleep(POLL_INTERVAL)
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


ADVISORY_KEY = 0x41553230  # "AU20": the one writer lock of an ase-au20 PostgreSQL database


@contextlib.contextmanager
def _advisory_lock(url: str, timeout: float) -> Iterator[None]:
    """A PostgreSQL session advisory lock on a connection of its own, for ``timeout`` s."""
    from ase_au20.database.store import POSTGRES_EXTRA

    try:
        import psycopg2
    except ModuleNotFoundError:
        raise ValueError(f"postgresql:// databases need the driver: {POSTGRES_EXTRA}") from None
    connection = psycopg2.connect(url)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = %s", (f"{int(timeout * 1000)}ms",))
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
                    f"{url} is being written by server process "
                    f"{holder[0] if holder else 'unknown'} (waited {timeout:.0f} s)"
                ) from None
        yield
    finally:
        connection.close()  # closing the session releases its advisory locks
