"""One duplicate tolerance and one bond cutoff: every verb draws the same line."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from ase.io import read
from isomer_files import write_isomer_xyz

from ase_au20 import validation, viz
from ase_au20.database import add_to_database, build_database, connect, load_rows
from ase_au20.geometry.conventions import BOND_CUTOFF, DUPLICATE_TOLERANCE
from ase_au20.geometry.fingerprint import distance_fingerprint, fingerprint_matrix, max_deviation
from ase_au20.geometry.rdf import first_minimum_cutoff, mean_radial_distribution
from ase_au20.models import domain
from ase_au20.workflows import candidates
from ase_au20.workflows.analysis import run_analysis
from ase_au20.workflows.select import unlabelled_rows


def _stretched(atoms, distance: float):
    """A copy whose sorted pair distances differ from ``atoms``' by at most ``distance`` Å."""
    copy = atoms.copy()
    copy.positions *= 1 + distance / distance_fingerprint(atoms)[-1]
    return copy


def test_the_verbs_agree_on_what_is_one_isomer(synthetic_xyz_dir: Path, tmp_path: Path) -> None:
    # 0.06 Å apart and 13 meV: a copy like the Td pair 350/351 of the data. Before, db build
    # (0.01 Å and 1 meV) kept two isomers, search (0.05 Å) two minima, select (0.1 Å) one.
    folder = tmp_path / "xyz"
    shutil.copytree(synthetic_xyz_dir, folder)
    energies = {int(f.stem): float(f.read_text().splitlines()[1]) for f in folder.glob("*.xyz")}
    lowest = min(energies, key=energies.get)  # so the two lowest rows of analyze suffice
    original, energy = read(folder / f"{lowest}.xyz"), energies[lowest]
    write_isomer_xyz(folder / "100.xyz", _stretched(original, 0.06), energy + 0.013)
    db_path = tmp_path / "au20.db"
    build_database(folder, db_path)
    isomers = load_rows(db_path)
    group = dict(zip(isomers.ids.tolist(), isomers.groups.tolist(), strict=True))
    assert group[100] == group[lowest]

    table = run_analysis(isomers, n_lowest=2, progress=False).lowest
    assert 100 not in table["cluster_id"].tolist()
    assert table.set_index("cluster_id").loc[lowest, "copy_ids"] == "100"

    pair = [original, _stretched(original, 0.06)]
    assert candidates.unique_indices(pair, [energy, energy + 0.013]) == [0]
    assert candidates.match_known(pair[1:], pair[:1], [lowest])[0].tolist() == [lowest]

    copy_path = tmp_path / "101.xyz"
    write_isomer_xyz(copy_path, _stretched(original, 0.08), energy + 0.02)
    report = add_to_database(copy_path, db_path)
    assert report.n_added == 0 and report.matches[0].cluster_id in (lowest, 100)

    with connect(db_path) as db:  # a search row near a labelled isomer is nothing to label
        db.write(_stretched(original, 0.07), source="search", pred_energy=energy)
    ids, _, left_out = unlabelled_rows(connect(db_path))
    assert len(ids) == 0 and left_out == 1


def test_every_layer_imports_the_one_bond_cutoff() -> None:
    assert validation.MAX_NEIGHBOUR_GAP == 2 * BOND_CUTOFF
    assert domain.ENVIRONMENT_CUTOFF == 2 * BOND_CUTOFF
    assert viz.BOND_CUTOFF is BOND_CUTOFF and candidates.BOND_CUTOFF is BOND_CUTOFF


@pytest.mark.data
def test_bond_cutoff_is_the_first_minimum_of_the_datas_g_r(real_db: Path) -> None:
    r, g = mean_radial_distribution(load_rows(real_db).atoms)
    assert first_minimum_cutoff(r, g) == pytest.approx(BOND_CUTOFF, abs=r[1] - r[0])


@pytest.mark.data
def test_lowest_isomer_table_collapses_the_copies_of_one_isomer(real_db: Path) -> None:
    isomers = load_rows(real_db)
    result = run_analysis(isomers, n_lowest=10, progress=False)
    table = result.lowest.set_index("cluster_id")
    assert 351 not in table.index and {638, 919}.isdisjoint(table.index)
    assert "351" in table.loc[350, "copy_ids"].split()
    assert {"638", "919"} <= set(table.loc[316, "copy_ids"].split())
    apart = max_deviation(*[fingerprint_matrix(result.lowest_atoms)] * 2)
    assert apart[np.triu_indices(10, 1)].min() >= DUPLICATE_TOLERANCE
