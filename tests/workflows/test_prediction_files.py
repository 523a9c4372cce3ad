"""Files a workflow writes say whether their energies are predictions or the reference's
labels, and `db add` takes only labels (red-team finding 1)."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import pytest
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import Trajectory, read

from ase_au20.database.add import add_to_database
from ase_au20.structures import au20_ground_state
from ase_au20.workflows.relax import run_relax


@pytest.fixture
def db(synthetic_db: Path, tmp_path: Path) -> Path:
    path = tmp_path / "au20.db"
    shutil.copy(synthetic_db, path)
    return path


def _relax(calc, out: Path) -> dict[str, Path]:
    atoms = au20_ground_state()
    atoms.rattle(0.02, seed=3)
    _, files = run_relax(atoms, calc, out, "td", fmax=0.05, steps=3)
    return files


def test_a_models_relaxation_trajectory_is_refused_as_a_label(db, tmp_path, shipped_model):
    from ase_au20.calculators.krr import KRRAu20

    files = _relax(KRRAu20(shipped_model("krr")), tmp_path / "relax")
    frame = read(f"{files['traj']}@0")
    assert frame.info["predicted_by"] == "krr_au20"
    report = add_to_database([f"{files['traj']}@0"], db)
    assert report.n_added == 0
    assert "prediction of krr_au20" in report.bad_files[0].reason
    with h5py.File(files["h5"]) as h5:
        assert h5.attrs["energies"] == "predictions of krr, not labels"


def test_a_trajectory_frame_with_a_models_trust_values_is_refused(db, tmp_path):
    """A trajectory of an earlier version: no predicted_by, but the model's interval."""
    atoms = au20_ground_state()
    atoms.calc = SinglePointCalculator(atoms, energy=-1.0)
    atoms.info["energy_uncertainty"] = 0.5
    with Trajectory(str(tmp_path / "old.traj"), "w") as traj:
        traj.write(atoms)
    report = add_to_database([tmp_path / "old.traj"], db)
    assert report.n_added == 0
    assert "carries a model's energy_uncertainty" in report.bad_files[0].reason


def test_the_references_relaxation_frames_are_labels_with_their_level(tmp_path):
    from isomer_files import write_isomer_xyz

    from ase_au20 import DFTBAu20
    from ase_au20.database import build_database

    calc = DFTBAu20()
    folder = tmp_path / "dftb-isomers"
    folder.mkdir()
    for k in range(12):  # a database of DFTB1 labels, like the shipped one
        atoms = au20_ground_state()
        atoms.rattle(0.1, seed=100 + k)
        write_isomer_xyz(folder / f"{k}.xyz", atoms, calc.get_potential_energy(atoms))
    db = tmp_path / "dftb.db"
    build_database(folder, db)
    files = _relax(calc, tmp_path / "relax")
    frame = read(f"{files['traj']}@0")
    assert frame.info["level"] == "dftb1-auorg-1-1" and "predicted_by" not in frame.info
    assert read(files["xyz"]).info["level"] == "dftb1-auorg-1-1"
    with h5py.File(files["h5"]) as h5:
        assert h5.attrs["energies"] == "labels: the reference at level dftb1-auorg-1-1"
    report = add_to_database([f"{files['traj']}@0"], db)
    assert report.n_added == 1, report.bad_files
