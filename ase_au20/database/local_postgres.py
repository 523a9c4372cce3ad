"""A throwaway PostgreSQL server, for the tests and benchmarks of the PostgreSQL backend.

``initdb`` and ``pg_ctl`` (Debian's ``postgresql`` package) on a temporary folder, trust
authentication, listening on a free loopback port only, owned by the ``postgres`` user when
run as root (PostgreSQL refuses to run as root). Not a server to keep data in.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


def postgres_bin() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl`` (PATH, then Debian's layout), or None."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(folder, "initdb").is_file() and Path(folder, "pg_ctl").is_file():
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _as_owner(user: pwd.struct_passwd | None):
    """preexec_fn dropping root to ``user`` (None: run as we are)."""
    if user is None:
        return None

    def drop() -> None:
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)

    return drop


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A running server in a fresh temporary folder (outside pytest's, which the
    ``postgres`` user cannot enter); yields its URL (no database part), stops on exit."""
    binaries = postgres_bin()
    if binaries is None:
        raise FileNotFoundError("PostgreSQL's initdb and pg_ctl are not installed")
    user = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="au20-postgres-"))
    data = root / "data"
    data.mkdir(parents=True)
    if user is not None:
        os.chown(root, user.pw_uid, user.pw_gid)
        os.chown(data, user.pw_uid, user.pw_gid)
    name = user.pw_name if user is not None else pwd.getpwuid(os.geteuid()).pw_name
    port = _free_port()
    options = f"-h 127.0.0.1 -p {port} -k {root} -F"  # -F: no fsync, a throwaway server
    for command in (
        [binaries / "initdb", "-D", data, "-A", "trust", "-U", name, "--no-sync"],
        [binaries / "pg_ctl", "-D", data, "-o", options, "-l", root / "log", "-w", "start"],
    ):
        done = subprocess.run(
            command, capture_output=True, text=True, preexec_fn=_as_owner(user), cwd=root
        )
        if done.returncode != 0:  # say why, and leave no folder behind
            shutil.rmtree(root, ignore_errors=True)
            raise RuntimeError(f"{command[0].name} failed: {(done.stderr or done.stdout).strip()}")
    try:
        yield f"postgresql://{name}@127.0.0.1:{port}"
    finally:
        subprocess.run(
            [binaries / "pg_ctl", "-D", data, "-m", "immediate", "stop"],
            check=False,
            capture_output=True,
            preexec_fn=_as_owner(user),
        )
        shutil.rmtree(root, ignore_errors=True)


def create_database(server: str, name: str) -> str:
    """A new empty database ``name`` on ``server``; its URL."""
    import psycopg2

    connection = psycopg2.connect(f"{server}/postgres")
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()
    return f"{server}/{name}"
