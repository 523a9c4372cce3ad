"""`add_to_database`: new rows are appended and labelled; existing rows never change."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from ase_au20.database import build_database, connect, load_rows
from ase_au20.database.add import add_to_database


def _snapshot(db_path: Path) -> dict[int, tuple]:
    return {
        row.id: (tuple(sorted(row.key_value_pairs.items())), row.energy, row.positions.tobytes())
        for row in connect(db_path).select()
    }


@pytest.fixture
def small_db(synthetic_xyz_dir: Path, tmp_path: Path) -> Path:
    """A db of files 0..29 of the synthetic set."""
    folder = tmp_path / "first"
    folder.mkdir()
    for i in range(30):
        shutil.copy(synthetic_xyz_dir / f"{i}.xyz", folder)
    path = tmp_path / "small.db"
    build_database(folder, path)
    return path


def test_add_appends_labels_and_keeps_existing(
    small_db: Path, synthetic_xyz_dir: Path, tmp_path: Path
) -> None:
    before = _snapshot(small_db)
    meta_before = connect(small_db).metadata
    new = tmp_path / "new"
    new.mkdir()
    for i in (3, 30, 31, 40, 42):  # 3 is already in; 40 copies 0 and 42 copies 1
        shutil.copy(synthetic_xyz_dir / f"{i}.xyz", new)
    (new / "77.xyz").write_text("20\nnot-a-number\n")
    report = add_to_database(new, small_db)
    assert report.n_added == 2 and report.added_ids == [30, 31]
    assert report.already_present == ["3.xyz"]
    assert [(b.source, b.reason) for b in report.bad_files] == [
        ("77.xyz", "energy on line 2 is not a number: 'not-a-number'")
    ]
    # copies of existing isomers are reported as matches, not added a second time
    assert [(m.source, m.cluster_id) for m in report.matches] == [("40.xyz", 0), ("42.xyz", 1)]
    assert all(m.distance < 0.01 for m in report.matches)
    after = _snapshot(small_db)
    assert {k: after[k] for k in before} == before
    rows = load_rows(small_db)
    assert len(rows) == 32
    new_rows = rows.subset(np.isin(rows.ids, [30, 31]))
    assert set(new_rows.splits) <= {"train", "val", "calib", "test"}
    assert sum(report.split_sizes.values()) == 2
    old_groups = set(rows.groups[~np.isin(rows.ids, [30, 31])].tolist())
    assert not set(new_rows.groups.tolist()) & old_groups
    meta = connect(small_db).metadata
    assert meta["energy_reference"] == meta_before["energy_reference"]
    np.testing.assert_allclose(new_rows.delta_e, new_rows.energies - meta["energy_reference"])
    assert meta["dataset_hash"] != meta_before["dataset_hash"] and meta["n_added"] == 2
    again = add_to_database(new, small_db)  # nothing new the second time
    assert again.n_added == 0 and len(again.already_present) == 3 and len(again.matches) == 2
    assert _snapshot(small_db) == after


def test_add_errors(small_db: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="database not found"):
        add_to_database(tmp_path, tmp_path / "nope.db")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no labelled structure"):
        add_to_database(empty, small_db)
    (empty / "5.xyz").write_text("")
    with pytest.raises(ValueError, match="strict mode"):
        add_to_database(empty, small_db, strict=True)
    plain = tmp_path / "plain.db"
    connect(plain).write(load_rows(small_db).atoms[0])
    with pytest.raises(ValueError, match="not an ase-au20 database"):
        add_to_database(empty, plain)
