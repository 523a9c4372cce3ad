"""Writing isomer rows with ase.db: connection, row layout, dataset hash and atomic replace.

SQLite files are built under a temporary name in the target folder and moved into place
with ``os.replace``, so a failed build leaves the previous database untouched. Server
URLs (PostgreSQL, MySQL) are rewritten inside one transaction instead. Writers of one
SQLite file take :func:`ase_au20.database.writer_lock.writer_lock` around their
read-modify-write, so ASE's own lock file (which a killed writer leaves behind) is not used.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
from ase import Atoms
from ase.db import connect as ase_connect
from ase.db.core import Database, convert_str_to_int_float_bool_or_str

SERVER_PREFIXES = ("postgresql://", "postgres://", "mysql://", "mariadb://")
KEYS = ("cluster_id", "delta_e", "bucket", "dup_group", "is_outlier", "split", "fold", "source")
PREDICTION_KEYS = (
    "pred_energy",
    "pred_uncertainty",
    "pred_std",
    "in_domain",
    "model",
    "model_card_sha256",
)
# key -> (short, long, unit), stored in the metadata for viewers of the database
KEY_DESCRIPTIONS = {
    "cluster_id": ("Isomer id", "Isomer id (the xyz file stem); labelled rows only", ""),
    "delta_e": ("ΔE", "DFTB1 energy above the database's energy_reference", "eV"),
    "bucket": ("Bucket", "low / mid / high: ΔE below, between or above the quartiles", ""),
    "dup_group": ("Duplicate group", "Rows with near-identical fingerprints share it", ""),
    "is_outlier": ("Outlier", "Robust z-score of ΔE above 3", ""),
    "split": ("Split", "train / val / calib / test (group-aware)", ""),
    "fold": ("Fold", "Cross-validation fold of train/val rows, -1 otherwise", ""),
    "source": ("Source", "File or workflow the row came from", ""),
    "level": ("Level", "Level of theory of the energy label (dftb1-auorg-1-1, a DFT setting)", ""),
    "pred_energy": ("Predicted E", "Model prediction, never a label", "eV"),
    "pred_uncertainty": ("Pred. half-width", "Conformal interval half-width", "eV"),
    "pred_std": ("Pred. spread", "Epistemic spread of the model", "eV"),
    "in_domain": ("In domain", "Whether the model's domain check accepted the structure", ""),
    "model": ("Model", "Name of the model that made the prediction", ""),
    "model_card_sha256": ("Model card", "SHA-256 of the model card that made the prediction", ""),
}


SQLITE_MAGIC = b"SQLite format 3\x00"
POSTGRES_EXTRA = 'pip install "ase-au20[postgres]"'


def shown_url(url: str | os.PathLike[str]) -> str:
    """``url`` as it may be stored, printed or shown: a server URL's password replaced by
    ``***`` (``postgresql://user:***@host/db``); file names as they are."""
    text = os.fspath(url)
    if "://" not in text:
        return text
    parts = urlsplit(text)
    if parts.password is None:
        return text
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def connect(url: str | os.PathLike[str]) -> Database:
    """Open an ASE database by file name or server URL (anything ``ase.db.connect`` takes).

    ValueError (one line, no traceback for the CLI) for a file that is not a database of its
    extension's kind and for a server URL whose driver is not installed.
    """
    url = os.fspath(url)
    if is_server_url(url):
        try:
            db = ase_connect(url)
            _give_rollback(db)
            return db
        except ModuleNotFoundError as err:
            raise ValueError(
                f"{url.split('://')[0]}:// databases need the driver package {err.name!r}: "
                f"{POSTGRES_EXTRA}"
            ) from None
    path = Path(url).expanduser()
    if path.suffix == ".db" and path.is_file() and path.stat().st_size > 0:
        with path.open("rb") as handle:
            if handle.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
                raise ValueError(f"{path} is not an SQLite database (wrong file header)")
    try:
        # writers serialise through writer_lock; ASE's lock file would survive a kill
        return ase_connect(str(path), use_lock_file=False)
    except ValueError as err:
        raise ValueError(f"cannot open database {path}: {err}") from None


def _give_rollback(db: Database) -> None:
    """ase-db-backends 0.11's PostgreSQL connection wrapper lacks ``rollback``, which ASE's
    ``with db:`` calls when the block raises: the real error was lost behind an
    AttributeError and the transaction was left open. The wrapper gets the method."""
    connection_class = getattr(sys.modules.get("ase_db_backends.postgresql"), "Connection", None)
    if connection_class is not None and not hasattr(connection_class, "rollback"):
        connection_class.rollback = lambda self: self.con.rollback()


def reads_as_number(text: str) -> bool:
    """Whether ASE reads the string ``text`` as a number or a boolean, and so refuses it as a
    row's string value (``"2024"``, ``"12e45"``, ``"True"``)."""
    return not isinstance(convert_str_to_int_float_bool_or_str(text), str)


def is_server_url(url: str | os.PathLike[str]) -> bool:
    """True for database server URLs, False for file paths."""
    return str(url).startswith(SERVER_PREFIXES)


def row_key_value_pairs(
    cluster_id: int,
    delta_e: float,
    bucket: str,
    dup_group: int,
    is_outlier: bool,
    split: str,
    fold: int,
    source: str,
    level: str = "",
) -> dict[str, Any]:
    """Key-value pairs of one isomer row, as plain Python scalars ase.db accepts (``level``
    only when known)."""
    return ({"level": str(level)} if level else {}) | {
        "cluster_id": int(cluster_id),
        "delta_e": float(delta_e),
        "bucket": str(bucket),
        "dup_group": int(dup_group),
        "is_outlier": bool(is_outlier),
        "split": str(split),
        "fold": int(fold),
        "source": str(source),
    }


def dataset_hash(ids: Sequence[int], energies: Sequence[float], atoms: Sequence[Atoms]) -> str:
    """SHA-256 of ids, energies and positions in id order (1e-6 precision): the data identity."""
    digest = hashlib.sha256()
    for index in np.argsort(np.asarray(ids), kind="stable"):
        positions = " ".join(f"{x:.6f}" for x in atoms[index].get_positions().ravel())
        digest.update(f"{int(ids[index])} {float(energies[index]):.6f} {positions}\n".encode())
    return digest.hexdigest()


def write_rows(db: Database, atoms: Sequence[Atoms], kvps: Sequence[dict[str, Any]]) -> None:
    """Write Atoms (with their SinglePointCalculator) and key-value pairs, in order."""
    for structure, kvp in zip(atoms, kvps, strict=True):
        db.write(structure, key_value_pairs=kvp)


def temp_path_beside(url: str | os.PathLike[str]) -> Path:
    """A fresh temporary name beside the database file; ValueError if it cannot be written."""
    path = Path(url).expanduser().absolute()
    if path.is_dir():
        raise ValueError(f"cannot write database {path}: it is a directory")
    if not path.suffix:
        raise ValueError(f"database file {path} needs an extension, e.g. .db")
    if not path.parent.is_dir():
        raise ValueError(f"cannot write database {path}: folder {path.parent} does not exist")
    try:
        handle, name = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}"
        )
    except OSError as err:
        raise ValueError(f"cannot write database {path}: {err.strerror or err}") from None
    os.close(handle)
    Path(name).unlink()  # writability is proven; ase.db creates the file in its own format
    return Path(name)


@contextlib.contextmanager
def fresh_database(url: str | os.PathLike[str]) -> Iterator[Database]:
    """An empty database, in an open transaction, that replaces ``url`` only on success."""
    if is_server_url(url):
        db = connect(url)
        with db:
            db.delete([row.id for row in db.select(include_data=False)])
            yield db
        return
    tmp = temp_path_beside(url)
    try:
        db = ase_connect(str(tmp), use_lock_file=False)
        with db:
            yield db
        os.replace(tmp, Path(url).expanduser().absolute())
    finally:
        tmp.unlink(missing_ok=True)
