"""One writer at a time per SQLite database, with a lock the kernel frees when a writer dies.

ASE's lock file is created and deleted by the writer, so a SIGKILL leaves it behind and
every later writer waits forever. An ``flock`` on ``.<db>.writer-lock`` is released by the
operating system when its holder exits in any way, so a killed ``db add`` costs nothing.
Server databases (PostgreSQL) serialise in their own transactions and need no file lock.
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
    """Hold the exclusive writer lock of a SQLite database (no-op for server URLs).

    TimeoutError after ``timeout`` s naming the process that holds it. A leftover ASE
    ``<db>.lock`` is reported once: ase-au20 does not use it, but ``ase db`` writes would
    wait on it.
    """
    from ase_au20.database.store import is_server_url

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
