"""Symmetric search starts: the group is right, the count exact, the atoms apart, and a
relaxation keeps the symmetry; the multistart search and collapsed minima."""

from __future__ import annotations

import numpy as np
import pytest
from ase.calculators.emt import EMT
from ase.calculators.lj import LennardJones

from ase_au20.geometry.point_group import point_group
from ase_au20.geometry.random_cluster import random_cluster
from ase_au20.geometry.symmetric_cluster import (
    POINT_GROUPS,
    can_hold,
    group_operations,
    orbit_sizes,
    search_start,
    symmetric_cluster,
)
from ase_au20.structures import au20_ground_state
from ase_au20.validation import min_pair_distance
from ase_au20.workflows.relax import relax
from ase_au20.workflows.search import (
    WORST_SCORE,
    SearchSettings,
    _GuardedBasinHopping,
    ga_score,
    global_search,
)

ORDERS = {"C2": 2, "C3": 3, "Cs": 2, "C2v": 4, "C3v": 6, "D2": 4, "D3": 6, "D2d": 8}
ORDERS |= {"D3h": 12, "D5h": 20, "T": 12, "Td": 24}


def test_groups_are_closed_with_the_right_order():
    assert set(POINT_GROUPS) == set(ORDERS)
    for name, order in ORDERS.items():
        ops = group_operations(name)
        assert len(ops) == order, name
        for a in ops:  # closure: every product is again in the group
            for b in ops:
                assert np.isclose(np.abs(ops - a @ b).max(axis=(1, 2)), 0, atol=1e-9).any()
    assert orbit_sizes("Td") == (1, 4, 6, 12, 24)


@pytest.mark.parametrize("group", ["Cs", "C2v", "C3v", "D3", "D2d", "D3h", "D5h", "Td"])
def test_symmetric_cluster_has_its_group_and_spacing(group):
    atoms = symmetric_cluster(np.random.default_rng(3), group, 20)
    assert len(atoms) == 20
    assert min_pair_distance(atoms.positions) >= 2.5
    assert point_group(atoms) == group


def test_counts_a_group_cannot_hold_are_refused():
    assert not can_hold("D2", 5) and not can_hold("T", 7) and not can_hold("Td", 2)
    assert can_hold("Td", 20) and can_hold("C3", 7) and can_hold("Td", 5)  # centre + 4
    with pytest.raises(ValueError, match="cannot form T orbits"):
        symmetric_cluster(np.random.default_rng(0), "T", 7)
    with pytest.raises(ValueError, match="unknown point group 'Oh'"):
        symmetric_cluster(np.random.default_rng(0), "Oh", 20)


def test_search_starts_are_reproducible_and_checked():
    a = search_start(np.random.default_rng(8), 20, "symmetric")
    b = search_start(np.random.default_rng(8), 20, "symmetric")
    np.testing.assert_array_equal(a.positions, b.positions)
    assert point_group(a) != "C1"
    plain = search_start(np.random.default_rng(8), 20, "random")
    expected = random_cluster(np.random.default_rng(8))
    np.testing.assert_array_equal(plain.positions, expected.positions)
    odd = search_start(np.random.default_rng(1), 7, "symmetric")  # only some groups hold 7
    assert len(odd) == 7
    with pytest.raises(ValueError, match="unknown start kind 'lattice'"):
        search_start(np.random.default_rng(0), 20, "lattice")
    with pytest.raises(ValueError, match="unknown starts"):
        SearchSettings(starts="lattice").validate()


def test_relaxation_keeps_the_start_symmetry():
    start = symmetric_cluster(np.random.default_rng(2), "Td", 20)
    relaxed = relax(start, EMT(), fmax=0.01, optimizer="bfgs", steps=2000).atoms
    assert point_group(relaxed, tol=0.05) == "Td"


def test_multistart_relaxes_every_start():
    settings = SearchSettings(method="multistart", runs=2, steps=3, seed=4)
    minima = global_search(EMT(), settings)
    assert [m.run for m in minima] == [0, 0, 0, 1, 1, 1]
    assert len({round(m.energy, 6) for m in minima}) > 1  # fresh starts, not one structure
    for m in minima:
        atoms = m.atoms.copy()
        atoms.calc = EMT()
        assert np.linalg.norm(atoms.get_forces(), axis=1).max() < settings.fmax + 1e-9
        assert atoms.get_potential_energy() == pytest.approx(m.energy)


def test_collapsed_minima_are_rejected_hops_and_score_worst_in_the_ga(monkeypatch):
    # σ = 1.8 Å puts every Lennard-Jones bond at 2.02 Å, below the 2.3 Å validity limit
    collapsing = LennardJones(sigma=1.8, epsilon=0.5, rc=6.0)
    monkeypatch.setattr(_GuardedBasinHopping, "MAX_FAILURES", 5)  # stuck sooner, same path
    with pytest.warns(UserWarning, match="collapsed minimum"):
        minima = global_search(collapsing, SearchSettings(method="basin", runs=1, steps=3, seed=0))
    assert minima and all(min_pair_distance(m.atoms.positions) < 2.3 for m in minima)
    good = relax(au20_ground_state(), EMT(), fmax=0.05).atoms
    squeezed = good.copy()
    squeezed.positions *= 0.8  # nearest neighbours at ~2.2 Å
    assert ga_score(good, -10.0) == 10.0
    assert ga_score(squeezed, -50.0) == WORST_SCORE
