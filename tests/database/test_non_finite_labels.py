"""A NaN energy never becomes a row, and a row without a finite label breaks no verb
(red-team finding 2)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import Trajectory, read, write
from cli_helpers import run_cli

from ase_au20.database import connect, load_rows
from ase_au20.database.add import add_to_database


@pytest.fixture
def db(synthetic_db: Path, tmp_path: Path) -> Path:
    path = tmp_path / "au20.db"
    shutil.copy(synthetic_db, path)
    return path


def _frame(synthetic_xyz_dir: Path, energy: float, forces: np.ndarray | None = None):
    atoms = read(synthetic_xyz_dir / "3.xyz")
    atoms.rattle(0.1, seed=5)  # a new geometry, not a copy of isomer 3
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
    return atoms


@pytest.mark.parametrize("kind", ["extxyz", "traj"])
@pytest.mark.parametrize("bad", ["energy", "forces"])
def test_a_non_finite_energy_or_force_is_refused_before_a_row_is_written(
    db, synthetic_xyz_dir, tmp_path, kind, bad
):
    forces = np.zeros((20, 3))
    energy = float(np.nan) if bad == "energy" else 1.0
    if bad == "forces":
        forces[4, 1] = np.inf
    path = tmp_path / f"bad.{kind}"
    frame = _frame(synthetic_xyz_dir, energy, forces)
    if kind == "traj":
        with Trajectory(str(path), "w") as traj:
            traj.write(frame)
    else:
        write(path, frame, format="extxyz")
    before = len(connect(db))
    report = add_to_database([path], db)
    assert report.n_added == 0 and len(connect(db)) == before
    expected = "is not a finite number" if bad == "energy" else "non-finite (NaN/inf)"
    assert expected in report.bad_files[0].reason


def test_a_database_holding_a_row_without_a_label_is_reported_not_crashed_on(
    db, synthetic_xyz_dir, tmp_path
):
    """A row an earlier version wrote with a NaN energy (stored as NULL)."""
    atoms = _frame(synthetic_xyz_dir, float(np.nan))
    with connect(db) as handle:
        bad_id = handle.write(atoms, cluster_id=9000, delta_e=float("nan"), split="train")
    with pytest.warns(
        UserWarning, match=rf"without a finite energy label left out \(ids {bad_id}\)"
    ):
        rows = load_rows(db)
    assert 9000 not in rows.ids and np.isfinite(rows.energies).all()
    assert "isomers" in run_cli("db", "info", str(db))
    write(tmp_path / "new.extxyz", _frame(synthetic_xyz_dir, 0.9))
    assert "added 1 rows" in run_cli("db", "add", str(tmp_path / "new.extxyz"), "--db", str(db))


def test_a_structure_in_bohr_is_refused_like_an_implausible_energy(db, synthetic_xyz_dir, tmp_path):
    """Bonds 1.9x too long (coordinates in bohr) were added as an ordinary isomer (red-team 14)."""
    atoms = _frame(synthetic_xyz_dir, 0.9)
    atoms.positions /= 0.52917721067
    write(tmp_path / "bohr.extxyz", atoms)
    report = add_to_database([tmp_path / "bohr.extxyz"], db)
    assert report.n_added == 0
    assert "coordinates in another unit (bohr, nm)?" in report.bad_files[0].reason
