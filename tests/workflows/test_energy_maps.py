"""Per-atom energy maps: PDB B-factors carry the per-atom energies; errors are clear."""

from __future__ import annotations

import numpy as np
import pytest
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones
from ase.io import read, write
from click.testing import CliRunner

from ase_au20.cli.energy_map import energy_map_cmd
from ase_au20.structures import au20_ground_state
from ase_au20.workflows.energy_maps import bfactor_encoding, energy_map, write_energy_map
from ase_au20.workflows.results import read_results


def test_pdb_bfactors_equal_per_atom_energies(tmp_path):
    atoms = au20_ground_state()
    atoms.rattle(0.05, seed=0)
    emap, files = write_energy_map(atoms, EMT(), tmp_path, "td")
    reference = atoms.copy()
    reference.calc = EMT()
    per_atom = reference.get_potential_energies()
    np.testing.assert_allclose(emap.energies, per_atom)
    assert emap.bfactor_unit == "meV"
    pdb = read(files["pdb"])
    np.testing.assert_allclose(
        pdb.get_array("bfactor"), (per_atom - per_atom.min()) * 1000, atol=0.006
    )
    np.testing.assert_allclose(pdb.positions, atoms.positions, atol=1e-3)
    arrays, attrs = read_results(files["h5"])
    np.testing.assert_allclose(arrays["energies"], per_atom)
    assert arrays["total_energy"] == pytest.approx(per_atom.sum())
    assert "mol color Beta" in files["tcl"].read_text()
    assert files["png"].stat().st_size > 10_000
    assert attrs["model_card"]["calculator"] == "EMT"


def test_td_corner_atoms_differ_from_face_atoms():
    emap = energy_map(au20_ground_state(), EMT())
    corners = np.argsort(emap.energies)[-4:]  # fewest neighbours -> highest EMT energy
    positions = au20_ground_state().positions
    radius = np.linalg.norm(positions, axis=1)
    assert set(corners) == set(np.argsort(radius)[-4:])


def test_bfactor_encoding_coarsens_large_spreads():
    values, unit = bfactor_encoding(np.array([0.0, 0.5]))
    assert unit == "meV" and values.tolist() == [0.0, 500.0]
    values, unit = bfactor_encoding(np.array([0.0, 3.0]))
    assert unit == "10 meV" and values.tolist() == [0.0, 300.0]


def test_calculator_without_energies_rejected():
    class EnergyOnly(LennardJones):
        implemented_properties = ["energy", "forces"]

    with pytest.raises(ValueError, match="does not provide per-atom 'energies'"):
        energy_map(au20_ground_state(), EnergyOnly())


def test_cli_energy_map(tmp_path):
    write(tmp_path / "td.xyz", au20_ground_state())
    res = CliRunner().invoke(
        energy_map_cmd, [str(tmp_path / "td.xyz"), "--calc", "emt", "--out", str(tmp_path / "map")]
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "map" / "td-energies.pdb").is_file() and "per-atom spread" in res.output


def test_cli_energy_map_without_a_file_maps_the_built_in_td(tmp_path):
    res = CliRunner().invoke(energy_map_cmd, ["--calc", "emt", "--out", str(tmp_path / "map")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "map" / "au20-td-energies.pdb").is_file()
