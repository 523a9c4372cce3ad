"""Many rows into an ASE database in one go, stored as ASE's own ``write`` stores them.

ASE's SQLite ``write`` checks every row's keys again (a chemical-formula parse per key) and
fills the key tables with statements of their own, which makes writing a fifth of a SchNet
screen's time per structure. Rows of a screen share their keys, so here each key set is
checked once and each key table is filled with one statement for all rows. On PostgreSQL
(ase-db-backends) the systems rows go in with one statement as well, where ASE makes two
round trips per row (``benchmarks/scale_out.py --only rows`` prints both beside ASE's
``write``). Rows that carry more than numbers and positions (a cell, a calculator,
constraints, extra arrays), and every other backend, go through ASE's ``write``.
"""

from __future__ import annotations

import numbers
import os
import uuid

import numpy as np
from ase import Atoms
from ase.data import atomic_masses
from ase.db.core import Database, check, now
from ase.db.sqlite import SQLite3Database

from ase_au20.database.store import reads_as_number

COLUMNS = SQLite3Database.columnnames  # the systems table's, in ASE's order


def write_rows(db: Database, rows: list[tuple[Atoms, dict]]) -> list[int]:
    """Write ``(atoms, key_value_pairs)`` rows into ``db``; their ids, in order.

    Inside ``with db:`` the rows join that transaction. A bad key or value raises ASE's
    ValueError before any row of a batch is written (on a backend or rows that go through
    ASE's write, before that row; ``with db:`` rolls the others back).
    """
    if not rows:
        return []
    if not _batched(db) or not all(_is_plain(atoms) for atoms, _ in rows):
        return [db.write(atoms, key_value_pairs=kvp) for atoms, kvp in rows]
    _check(rows)
    stamp = now()
    user = os.getenv("USER")
    order = COLUMNS[1:]  # after id, which the database assigns
    with db.managed_connection() as connection:
        data = db.encode({}, binary=db.version >= 9)  # the version is known once connected
        systems = []
        for atoms, kvp in rows:
            values = dict.fromkeys(order)  # every column a plain cluster leaves NULL
            values.update(_plain_columns(db, atoms, kvp, stamp, user, data))
            systems.append([values[name] for name in order])
        cursor = connection.cursor()
        if db.type == "postgresql":
            ids = _insert_systems_returning_ids(cursor, systems)
        else:
            insert = f"INSERT INTO systems VALUES (NULL, {', '.join('?' * len(order))})"
            ids = []
            for values in systems:
                cursor.execute(insert, values)
                ids.append(cursor.lastrowid)
        species, keys, text, number = [], [], [], []
        for (atoms, kvp), row_id in zip(rows, ids, strict=True):
            counts = np.bincount(atoms.numbers)
            species += [(int(z), int(n), row_id) for z, n in enumerate(counts) if n]
            for key, value in kvp.items():
                keys.append((key, row_id))
                if isinstance(value, (numbers.Real, np.bool_)):
                    number.append((key, float(value), row_id))
                else:
                    text.append((key, value, row_id))
        cursor.executemany("INSERT INTO species VALUES (?, ?, ?)", species)
        cursor.executemany("INSERT INTO text_key_values VALUES (?, ?, ?)", text)
        cursor.executemany("INSERT INTO number_key_values VALUES (?, ?, ?)", number)
        cursor.executemany("INSERT INTO keys VALUES (?, ?)", keys)
    return ids


def _batched(db: Database) -> bool:
    """ASE's SQLite backend, or ase-db-backends' PostgreSQL one (built on that package's
    copy of it, with the same tables): the backends whose tables this module writes."""
    postgresql = type(db).__module__ == "ase_db_backends.postgresql"
    return type(db) is SQLite3Database or (postgresql and db.columnnames == COLUMNS)


def _insert_systems_returning_ids(cursor, systems: list[list]) -> list[int]:
    """Every systems row in one INSERT; their ids, matched by unique id (PostgreSQL does not
    promise RETURNING in the order of VALUES, and ASE's own id query reads the sequence's
    last value, which another session may have moved)."""
    row = f"(DEFAULT, {', '.join('?' * len(systems[0]))})"
    cursor.execute(
        f"INSERT INTO systems VALUES {', '.join([row] * len(systems))} RETURNING id, unique_id",
        [value for values in systems for value in values],
    )
    ids = {unique_id: row_id for row_id, unique_id in cursor.fetchall()}
    return [ids[values[0]] for values in systems]  # unique_id is the first column


def _is_plain(atoms: Atoms) -> bool:
    """Numbers and positions only: no cell, periodicity, calculator, constraints or arrays."""
    return (
        atoms.calc is None
        and not atoms.constraints
        and not atoms.pbc.any()
        and not atoms.cell.any()
        and set(atoms.arrays) == {"numbers", "positions"}
    )


def _check(rows: list[tuple[Atoms, dict]]) -> None:
    """ASE's checks of keys and values: in full once per key set, and on every row the
    values (numbers or strings that do not read as numbers or booleans)."""
    checked: set[frozenset[str]] = set()
    for _, kvp in rows:
        keys = frozenset(kvp)
        if keys not in checked:
            check(kvp)  # ASE's message for a bad key
            checked.add(keys)
            continue
        for key, value in kvp.items():
            if isinstance(value, str):
                if reads_as_number(value):
                    check({key: value})  # reads as a number: raises with ASE's message
            elif not isinstance(value, (numbers.Real, np.bool_)):
                raise ValueError(f"Bad value for {key!r}: {value}")


def _plain_columns(db: SQLite3Database, atoms: Atoms, kvp: dict, stamp, user, data) -> dict:
    """The systems columns ASE writes for a plain cluster (its numbers and positions)."""
    return {
        "unique_id": uuid.uuid4().hex,  # as ASE makes it
        "ctime": stamp,
        "mtime": stamp,
        "username": user,
        "numbers": db.blob(atoms.numbers),
        "positions": db.blob(atoms.positions),
        "cell": db.blob(np.zeros((3, 3))),
        "pbc": 0,
        "key_value_pairs": db.encode(kvp),
        "data": data,
        "natoms": len(atoms),
        "mass": float(atomic_masses[atoms.numbers].sum()),
        "charge": 0.0,
    }
