"""g(r) normalisation, the data-driven cutoff and the structural descriptors."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.cluster import Octahedron
from ase.io import read

from ase_au20.geometry.metrics import (
    asphericity,
    connected,
    count_distinct,
    radius_of_gyration,
    structure_metrics,
    surface_mask,
)
from ase_au20.geometry.rdf import (
    first_minimum_cutoff,
    mean_radial_distribution,
    number_density,
    radial_distribution,
)
from ase_au20.structures import TD_BOND_LENGTH, au20_ground_state


def neighbours_per_atom(atoms: Atoms, dr: float = 0.02) -> float:
    r, g = radial_distribution(atoms, dr=dr)
    return float(np.sum(4 * np.pi * r**2 * number_density(atoms) * g * dr))


def random_cluster(seed: int, n: int = 20) -> Atoms:
    return Atoms(f"Au{n}", positions=np.random.default_rng(seed).normal(scale=3.0, size=(n, 3)))


@pytest.mark.parametrize("atoms", [au20_ground_state(), random_cluster(0), Octahedron("Au", 3)])
def test_rdf_integrates_to_n_minus_one_neighbours(atoms: Atoms) -> None:
    assert neighbours_per_atom(atoms) == pytest.approx(len(atoms) - 1, rel=1e-12)


def test_rdf_first_shell_counts_the_bonds() -> None:
    atoms = au20_ground_state()
    r, g = radial_distribution(atoms, dr=0.01)
    shell = r < 3.0
    per_atom = np.sum(4 * np.pi * r[shell] ** 2 * number_density(atoms) * g[shell] * 0.01)
    assert per_atom == pytest.approx(6.0)  # 60 bonds of 2.70 Å, 2 ends each, 20 atoms
    assert np.all(g[r < TD_BOND_LENGTH - 0.05] == 0)


def test_mean_rdf_is_the_average_on_a_common_grid() -> None:
    a, b = au20_ground_state(), random_cluster(1)
    r, g = mean_radial_distribution([a, b], r_max=25.0)
    _, ga = radial_distribution(a, r_max=25.0)
    _, gb = radial_distribution(b, r_max=25.0)
    np.testing.assert_allclose(g, 0.5 * (ga + gb))
    assert r[-1] < 25.0


def test_cutoff_is_the_first_minimum_after_the_first_peak() -> None:
    r = np.arange(0.0, 8.0, 0.01)
    g = np.exp(-((r - 2.7) ** 2) / 0.02) + 0.6 * np.exp(-((r - 4.2) ** 2) / 0.05)
    g += 0.001 * np.exp(-((r - 0.8) ** 2) / 0.001)  # a negligible blip before the real peak
    expected = r[(r > 2.7) & (r < 4.2)][np.argmin(g[(r > 2.7) & (r < 4.2)])]
    assert first_minimum_cutoff(r, g) == pytest.approx(expected, abs=0.03)


def test_cutoff_of_the_ideal_pyramid_lies_in_the_gap_between_shells() -> None:
    r, g = radial_distribution(au20_ground_state())
    assert TD_BOND_LENGTH + 0.1 < first_minimum_cutoff(r, g) < TD_BOND_LENGTH * np.sqrt(2) - 0.1


def test_cutoff_errors() -> None:
    r = np.linspace(0.0, 5.0, 100)
    with pytest.raises(ValueError, match="no minimum"):
        first_minimum_cutoff(r, np.exp(-((r - 2.0) ** 2)))  # one peak, then only decreasing
    with pytest.raises(ValueError, match="no peak"):
        first_minimum_cutoff(r, r)
    with pytest.raises(ValueError, match="same length"):
        first_minimum_cutoff(r, r[:-1])


def test_metrics_of_the_ideal_pyramid() -> None:
    m = structure_metrics(au20_ground_state(), cutoff=3.0)
    assert m.coordination_mean == pytest.approx(6.0)  # (4*3 + 12*6 + 4*9) / 20
    assert m.bond_mean == pytest.approx(TD_BOND_LENGTH)
    assert m.bond_std == pytest.approx(0.0, abs=1e-9)
    assert m.n_distinct_bonds == 1
    assert m.asphericity == pytest.approx(0.0, abs=1e-9)
    assert m.surface_share == 1.0  # face and edge atoms count, not only hull vertices
    assert m.point_group == "Td"


def test_surface_share_finds_the_buried_atom() -> None:
    mask = surface_mask(Octahedron("Au", 3))  # 19 atoms: one in the centre
    assert mask.sum() == 18
    assert surface_mask(Atoms("Au3", positions=[[0, 0, 0], [2.7, 0, 0], [0, 2.7, 0]])).all()


def test_shape_descriptors() -> None:
    rod = Atoms("Au5", positions=[[2.7 * i, 0, 0] for i in range(5)])
    assert asphericity(rod) == pytest.approx(1.0)
    assert radius_of_gyration(rod) == pytest.approx(2.7 * np.sqrt(2.0))
    disc = Atoms("Au6", positions=[[np.cos(a), np.sin(a), 0] for a in np.arange(6) * np.pi / 3])
    assert asphericity(disc) == pytest.approx(0.25)


def test_count_distinct_bins_by_gaps() -> None:
    assert count_distinct(np.array([2.60, 2.61, 2.62, 2.70, 2.75, 2.76])) == 3
    assert count_distinct(np.array([])) == 0


def test_connected() -> None:
    td = au20_ground_state()
    assert connected(td, 3.0)
    assert not connected(td, 2.0)
    apart = td + td.copy()
    apart.positions[20:] += [30.0, 0.0, 0.0]
    assert not connected(apart, 3.0)


@pytest.mark.data
def test_lowest_dataset_isomer_is_the_td_pyramid(au20_data_dir) -> None:
    atoms = read(au20_data_dir / "xyz" / "350.xyz")
    r, g = radial_distribution(atoms)
    m = structure_metrics(atoms, first_minimum_cutoff(r, g))
    assert m.point_group == "Td"
    assert m.coordination_mean == pytest.approx(6.0)
