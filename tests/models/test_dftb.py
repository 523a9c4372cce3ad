"""The DFTB1 reference: table reader, Slater–Koster rules, forces, the labels it reproduces."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.io import read
from scipy.spatial.transform import Rotation

from ase_au20.models.dftb.calculation import single_point
from ase_au20.models.dftb.model import TABLE_NAME
from ase_au20.models.dftb.rotations import BondDirections
from ase_au20.models.dftb.skf import BOHR, INTEGRALS, SlaterKosterTable
from ase_au20.paths import PRETRAINED_DIR

TABLE = PRETRAINED_DIR / "dftb" / TABLE_NAME
KT = 1e-4
S, PX, PY, PZ, DXY, DYZ, DZX, DX2Y2, DZ2 = range(9)
COLUMN = {name: k for k, name in enumerate(INTEGRALS)}


@pytest.fixture(scope="module")
def table() -> SlaterKosterTable:
    return SlaterKosterTable.read(TABLE)


def gold(positions: np.ndarray) -> Atoms:
    return Atoms(["Au"] * len(positions), positions=positions)


def td_pyramid() -> Atoms:
    from ase_au20.structures import au20_ground_state

    return au20_ground_state()


# -- reader ------------------------------------------------------------------------------


def test_the_reader_finds_the_grid_onsite_terms_and_occupations_of_the_shipped_file(table):
    assert table.grid_spacing == pytest.approx(0.02)
    assert len(table.hamiltonian) == len(table.overlap) == 919
    assert table.grid[0] == pytest.approx(0.02) and table.table_end == pytest.approx(18.38)
    assert table.onsite == pytest.approx(
        [-2.107700668744e-01, -2.785941987392e-02, -2.531805351853e-01]
    )
    assert table.occupations.tolist() == [1.0, 0.0, 10.0]  # d¹⁰ s¹: 11 valence electrons
    assert table.repulsive.cutoff == pytest.approx(7.24486306644)
    assert len(table.repulsive.knots) == 52  # 51 pieces


def test_the_repulsive_spline_is_continuous_with_its_slope_at_every_knot(table):
    knots = table.repulsive.knots[:-1]
    below, above = table.repulsive(knots - 1e-9), table.repulsive(knots + 1e-9)
    assert np.abs(below[0] - above[0]).max() < 1e-8
    assert np.abs(below[1] - above[1]).max() < 1e-6
    value, slope = table.repulsive(np.array([table.repulsive.cutoff + 1e-9, 20.0]))
    assert value.tolist() == [0.0, 0.0] and slope.tolist() == [0.0, 0.0]
    # the last piece reaches zero at the cutoff
    assert abs(table.repulsive(np.array([table.repulsive.cutoff - 1e-9]))[0][0]) < 1e-8


def test_the_integrals_interpolate_the_grid_and_vanish_smoothly_past_its_end(table):
    h, s, _, _ = table.integrals(table.grid[200:210])
    assert h == pytest.approx(table.hamiltonian[200:210], abs=1e-15)
    assert s == pytest.approx(table.overlap[200:210], abs=1e-15)
    end = table.table_end
    r = np.array([end - 1e-9, end + 1e-9, table.cutoff - 1e-9, table.cutoff + 1e-9, 40.0])
    h, s, dh, ds = table.integrals(r)
    assert np.abs(h[0] - h[1]).max() < 1e-12 and np.abs(dh[0] - dh[1]).max() < 1e-9
    assert np.abs(h[2:]).max() < 1e-12 and np.abs(dh[2:]).max() < 1e-9
    assert np.abs(s[2:]).max() < 1e-12 and (h[4] == 0).all()


def test_a_file_without_a_spline_block_is_refused_naming_it(tmp_path):
    text = TABLE.read_text().split("Spline")[0]
    broken = tmp_path / "broken.skf"
    broken.write_text(text)
    with pytest.raises(ValueError, match="broken.skf: no 'Spline' repulsive block"):
        SlaterKosterTable.read(broken)


# -- Slater–Koster rules -----------------------------------------------------------------


def test_a_bond_along_z_gives_the_tables_sigma_pi_delta_values():
    v = np.arange(1.0, 11.0)[None, :]  # distinct integrals, in .skf column order
    block = BondDirections(np.array([[0.0, 0.0, 1.0]])).blocks(v)[0]
    c = COLUMN
    assert block[S, S] == v[0, c["ss0"]]
    assert block[S, PZ] == v[0, c["sp0"]] and block[PZ, S] == -v[0, c["sp0"]]
    assert block[S, DZ2] == block[DZ2, S] == v[0, c["sd0"]]
    assert block[PZ, PZ] == v[0, c["pp0"]] and block[PX, PX] == block[PY, PY] == v[0, c["pp1"]]
    assert block[PZ, DZ2] == pytest.approx(v[0, c["pd0"]])
    assert block[PX, DZX] == pytest.approx(v[0, c["pd1"]]) == -block[DZX, PX]
    assert block[DZ2, DZ2] == pytest.approx(v[0, c["dd0"]])
    assert block[DZX, DZX] == pytest.approx(v[0, c["dd1"]]) == block[DYZ, DYZ]
    assert block[DXY, DXY] == pytest.approx(v[0, c["dd2"]]) == block[DX2Y2, DX2Y2]
    off = block.copy()
    for i, j in [(S, S), (S, PZ), (PZ, S), (S, DZ2), (DZ2, S), (PZ, PZ), (PX, PX), (PY, PY)]:
        off[i, j] = 0.0
    for i, j in [(PZ, DZ2), (DZ2, PZ), (PX, DZX), (DZX, PX), (PY, DYZ), (DYZ, PY)]:
        off[i, j] = 0.0
    for k in range(DXY, DZ2 + 1):
        off[k, k] = 0.0
    assert np.abs(off).max() < 1e-14  # nothing else couples along the axis


def test_the_blocks_follow_slater_and_kosters_table_for_any_direction():
    rng = np.random.default_rng(3)
    u = rng.normal(size=(5, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    v = rng.normal(size=(5, 10))
    blocks = BondDirections(u).blocks(v)
    r3 = np.sqrt(3.0)
    for (l, m, n), vk, b in zip(u, v, blocks, strict=True):
        dd_s, dd_p, dd_d, pd_s, pd_p, pp_s, pp_p, sd_s, sp_s, _ = vk
        assert b[S, PX] == pytest.approx(l * sp_s)
        assert b[PX, PY] == pytest.approx(l * m * (pp_s - pp_p))
        assert b[S, DX2Y2] == pytest.approx(r3 / 2 * (l * l - m * m) * sd_s)
        assert b[PX, DXY] == pytest.approx(r3 * l * l * m * pd_s + m * (1 - 2 * l * l) * pd_p)
        assert b[PZ, DZ2] == pytest.approx(
            n * (n * n - (l * l + m * m) / 2) * pd_s + r3 * n * (l * l + m * m) * pd_p
        )
        assert b[DXY, DXY] == pytest.approx(
            3 * l * l * m * m * dd_s
            + (l * l + m * m - 4 * l * l * m * m) * dd_p
            + (n * n + l * l * m * m) * dd_d
        )
        assert b[DXY, DYZ] == pytest.approx(
            3 * l * m * m * n * dd_s + l * n * (1 - 4 * m * m) * dd_p + l * n * (m * m - 1) * dd_d
        )


def test_the_energy_is_invariant_under_rotation_translation_and_permutation(table):
    atoms = td_pyramid()
    atoms.rattle(0.05, seed=1)
    reference = single_point(table, atoms.positions, KT, forces=True)
    rotation = Rotation.from_euler("xyz", [0.3, -1.1, 2.0]).as_matrix()
    order = np.random.default_rng(0).permutation(len(atoms))
    moved = atoms.positions[order] @ rotation.T + np.array([1.0, -2.0, 0.5])
    other = single_point(table, moved, KT, forces=True)
    assert other.energy == pytest.approx(reference.energy, abs=1e-9)
    assert other.forces == pytest.approx(reference.forces[order] @ rotation.T, abs=1e-8)
    assert np.abs(reference.forces.sum(axis=0)).max() < 1e-9  # no net force


# -- forces --------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["rattled", "near-degenerate"])
def test_the_forces_are_the_negative_gradient_of_the_energy(table, case):
    atoms = td_pyramid()
    rng = np.random.default_rng(7 if case == "rattled" else 11)
    atoms.positions += rng.normal(scale=0.1 if case == "rattled" else 0.25, size=(20, 3))
    point = single_point(table, atoms.positions, KT, forces=True)
    h = 1e-4
    for i in (0, 7, 19):
        for x in range(3):
            step = np.zeros((20, 3))
            step[i, x] = h
            up = single_point(table, atoms.positions + step, KT).energy
            down = single_point(table, atoms.positions - step, KT).energy
            assert -(up - down) / (2 * h) == pytest.approx(point.forces[i, x], abs=1e-4)


def test_levels_at_the_fermi_level_give_forces_of_the_band_energy_not_of_the_free_energy(table):
    """Au2 at 8 Å: two half-filled levels, where the occupations' response matters."""
    positions = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 7.0]])
    point = single_point(table, positions, KT, forces=True)
    assert point.energy - point.free_energy > 1e-3  # T·S_el of the open shell
    h = 1e-4
    up = single_point(table, positions + [[0, 0, 0], [0, 0, h]], KT).energy
    down = single_point(table, positions - [[0, 0, 0], [0, 0, h]], KT).energy
    assert point.forces[1, 2] == pytest.approx(-(up - down) / (2 * h), abs=1e-5)


def test_the_energy_is_continuous_where_a_pair_leaves_the_table(table):
    end = table.table_end * BOHR
    for distance in (end, table.cutoff * BOHR, table.repulsive.cutoff * BOHR):
        near, far = (
            single_point(table, np.array([[0, 0, 0], [0, 0, d]]), KT, forces=True)
            for d in (distance - 1e-9, distance + 1e-9)
        )
        assert abs(near.energy - far.energy) < 1e-8
        assert np.abs(near.forces - far.forces).max() < 1e-6


def test_per_atom_energies_sum_to_the_energy(table):
    point = single_point(table, td_pyramid().positions, KT)
    assert point.energies.sum() == pytest.approx(point.energy, abs=1e-9)


# -- the data's level of theory ----------------------------------------------------------


@pytest.mark.data
def test_the_check_structures_off_the_minima_are_reproduced(au20_data_dir, table):
    """Dimers, rattled isomers and a squeezed Td from an independent implementation."""
    path = au20_data_dir.parent / "dftb" / "check_structures.extxyz"
    if not path.is_file():
        pytest.fail(f"{path} missing from the shared data")
    frames = read(path, ":")
    assert len(frames) == 15
    for atoms in frames:
        point = single_point(table, atoms.positions, KT, forces=True)
        assert point.energy == pytest.approx(atoms.get_potential_energy(), abs=1e-4)
        assert np.abs(point.forces - atoms.get_forces()).max() < 1e-3


@pytest.mark.data
@pytest.mark.slow
def test_every_labelled_isomer_is_reproduced_with_vanishing_forces(au20_data_dir, table):
    """Median |E − label| ≤ 1e-4 eV, the largest ≤ 5e-3 eV, median largest force ≤ 0.01;
    the labels are the zero-temperature limit: within 5e-5 eV of every one at kT → 0."""
    from ase_au20.database.xyz import read_isomer

    errors, cold_errors, largest_force = [], [], []
    files = sorted((au20_data_dir / "xyz").glob("*.xyz"))
    assert len(files) >= 899
    for path in files:
        isomer = read_isomer(path)
        point = single_point(table, isomer.atoms.positions, KT, forces=True)
        errors.append(abs(point.energy - isomer.energy))
        cold = single_point(table, isomer.atoms.positions, 1e-6).energy
        cold_errors.append(abs(cold - isomer.energy))
        largest_force.append(np.linalg.norm(point.forces, axis=1).max())
    assert np.median(errors) <= 1e-4
    assert max(errors) <= 5e-3
    assert np.median(largest_force) <= 0.01
    assert max(cold_errors) <= 5e-5


def test_the_package_finds_its_tables_without_the_shared_folder(tmp_path, table):
    """Run from an empty folder with the dataset pointed nowhere: the shipped table loads."""
    script = (
        "from ase_au20 import DFTBAu20\n"
        "from ase_au20.structures import au20_ground_state\n"
        "atoms = au20_ground_state(); atoms.calc = DFTBAu20()\n"
        "print(round(atoms.get_potential_energy(), 3))\n"
    )
    env = {**os.environ, "AU20_DATA": str(tmp_path / "nowhere")}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    expected = single_point(table, td_pyramid().positions, KT).energy
    assert float(done.stdout) == pytest.approx(expected, abs=1e-3)
    assert Path(PRETRAINED_DIR / "dftb" / "LICENSE").is_file()
