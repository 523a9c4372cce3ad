"""Rows written in one go are the rows ASE's own ``write`` makes, and are checked as ASE does."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from ase_au20.database import connect
from ase_au20.database.bulk_rows import write_rows
from ase_au20.database.predictions import prediction_pairs

TABLES = ("systems", "species", "keys", "text_key_values", "number_key_values")


def _rows(count: int) -> list[tuple[Atoms, dict]]:
    """Prediction rows of plain clusters (numbers and positions), as a screen writes them."""
    rng = np.random.default_rng(3)
    rows = []
    for i in range(count):
        atoms = Atoms([79] * 19 + [47], positions=rng.normal(scale=3.0, size=(20, 3)))
        kvp = prediction_pairs(-40.0 - i, 0.3, 0.1 if i % 2 else np.nan, i % 3 != 0, "schnet")
        rows.append((atoms, {**kvp, "source": f"in.xyz@{i}", "screen_index": i}))
    return rows


def _other_rows() -> list[tuple[Atoms, dict]]:
    """Rows with a cell and with a calculator's energy, which go through ASE's write."""
    periodic = Atoms("Au2", positions=[[0, 0, 0], [2.8, 0, 0]], cell=[9, 9, 9], pbc=True)
    with_energy = Atoms("Au2", positions=[[0, 0, 0], [0, 2.8, 0]])
    with_energy.calc = SinglePointCalculator(with_energy, energy=-5.0)
    return [(periodic, {"source": "cell"}), (with_energy, {"source": "calc"})]


def _not_through_ase_write(db, monkeypatch: pytest.MonkeyPatch) -> None:
    """Makes ``db.write`` fail, so a test knows the rows took the batched path."""

    def refused(*args, **kwargs):
        raise AssertionError("a plain row went through ASE's write")

    monkeypatch.setattr(db, "write", refused)


def _tables(where: Path | str) -> dict[str, list[tuple]]:
    """Every table's rows (a SQLite file or a PostgreSQL URL), without the columns that
    differ between two writes by design (unique id, creation and modification times)."""
    if isinstance(where, Path):
        with sqlite3.connect(where) as connection:
            tables = {t: connection.execute(f"SELECT * FROM {t}").fetchall() for t in TABLES}
    else:
        import psycopg2

        connection = psycopg2.connect(where)
        with connection, connection.cursor() as cursor:
            tables = {}
            for table in TABLES:
                cursor.execute(f"SELECT * FROM {table}")
                tables[table] = cursor.fetchall()
        connection.close()
    tables["systems"] = [(row[0], *row[4:]) for row in tables["systems"]]
    return {name: sorted(rows, key=repr) for name, rows in tables.items()}


@pytest.fixture(params=["sqlite", "postgresql"])
def two_databases(request, tmp_path: Path) -> tuple[Path | str, Path | str]:
    """Two empty databases of one backend: one for ASE's write, one for ours."""
    if request.param == "sqlite":
        return tmp_path / "ase.db", tmp_path / "bulk.db"
    from ase_au20.database.local_postgres import create_database

    server = request.getfixturevalue("postgres_server_url")
    name = f"bulk_{uuid.uuid4().hex[:8]}"
    return create_database(server, f"{name}_ase"), create_database(server, f"{name}_ours")


def test_rows_match_those_of_ase_write(two_databases, monkeypatch) -> None:
    rows = _rows(40)
    by_ase, at_once = two_databases
    with connect(by_ase) as db:
        ase_ids = [db.write(atoms, key_value_pairs=kvp) for atoms, kvp in rows]
    with connect(at_once) as db:
        _not_through_ase_write(db, monkeypatch)
        ids = write_rows(db, rows)
    assert ids == ase_ids == list(range(1, 41))
    assert _tables(at_once) == _tables(by_ase)
    db = connect(at_once)
    assert db.count("in_domain=True") == 26 and db.count("pred_std") == 20
    row = db.get(source="in.xyz@7")
    assert row.formula == "AgAu19" and row.key_value_pairs == rows[7][1]
    np.testing.assert_array_equal(row.toatoms().positions, rows[7][0].positions)


def test_a_batch_with_a_cell_or_a_calculator_goes_through_ase_write(tmp_path: Path) -> None:
    rows = [*_rows(3), *_other_rows()]
    by_ase, at_once = tmp_path / "ase.db", tmp_path / "bulk.db"
    with connect(by_ase) as db:
        for atoms, kvp in rows:
            db.write(atoms, key_value_pairs=kvp)
    with connect(at_once) as db:
        assert write_rows(db, rows) == [1, 2, 3, 4, 5]
    assert _tables(at_once) == _tables(by_ase)
    db = connect(at_once)
    assert db.get(source="calc").energy == -5.0 and db.get(source="cell").pbc.all()


def test_rows_join_the_open_transaction(two_databases, monkeypatch) -> None:
    path = two_databases[1]
    connect(path).metadata = {"ledger": 0}
    with pytest.raises(RuntimeError, match="abandoned"), connect(path) as db:
        _not_through_ase_write(db, monkeypatch)
        write_rows(db, _rows(5))
        assert db.count() == 5  # inside the transaction
        raise RuntimeError("abandoned")
    assert connect(path).count() == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"bad key": 1.0}, "Bad key: bad key"),
        ({"model": "1.5"}, "Value 1.5 is put in as string but can be interpreted as float"),
        ({"screen_index": [1, 2]}, r"Bad value for 'screen_index': \[1, 2\]"),
    ],
)
def test_a_bad_later_row_stops_the_write_with_ases_message(
    two_databases, monkeypatch, change: dict, message: str
) -> None:
    rows = _rows(6)
    rows[4][1].update(change)
    path = two_databases[1]
    with pytest.raises(ValueError, match=message), connect(path) as db:
        _not_through_ase_write(db, monkeypatch)
        write_rows(db, rows)
    assert connect(path).count() == 0
