"""Per-atom value export: PDB B-factors, the VMD script and the 3D picture."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ase.io import read

from ase_au20.structures import au20_ground_state
from ase_au20.viz import plot_site_values_3d, write_bfactor_pdb, write_vmd_script


def test_pdb_round_trips_positions_and_values(tmp_path: Path) -> None:
    atoms = au20_ground_state()
    values = np.linspace(-5.0, 250.0, 20)
    path = write_bfactor_pdb(atoms, values, tmp_path / "v.pdb")
    back = read(path)
    np.testing.assert_allclose(back.positions, atoms.positions, atol=1e-3)
    np.testing.assert_allclose(back.get_array("bfactor"), values, atol=0.005)
    assert "bfactor" not in atoms.arrays  # the caller's Atoms is left alone


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (np.full(20, 1500.0), "rescale"),
        (np.ones(19), "one value per atom"),
        (np.r_[np.ones(19), np.nan], "finite"),
    ],
)
def test_pdb_rejects_values_it_cannot_hold(tmp_path: Path, values, message) -> None:
    with pytest.raises(ValueError, match=message):
        write_bfactor_pdb(au20_ground_state(), values, tmp_path / "v.pdb")
    assert not (tmp_path / "v.pdb").exists()


def test_vmd_script_loads_the_pdb_and_colours_by_beta(tmp_path: Path) -> None:
    pdb = write_bfactor_pdb(au20_ground_state(), np.arange(20.0), tmp_path / "sites.pdb")
    tcl = write_vmd_script(pdb, tmp_path / "view.tcl", 'K_i "meV"')
    text = tcl.read_text()
    assert "mol new [file join $here {sites.pdb}] type pdb" in text
    assert "mol color Beta" in text and "mol representation VDW" in text
    assert "K_i 'meV'" in text  # quotes cannot break the Tcl string


def test_3d_plot_is_a_png(tmp_path: Path) -> None:
    atoms = au20_ground_state()
    path = plot_site_values_3d(atoms, np.arange(20.0), tmp_path / "sites.png", "title", "value")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    with pytest.raises(ValueError, match="one value per atom"):
        plot_site_values_3d(atoms, np.arange(3.0), tmp_path / "bad.png", "t", "v")
