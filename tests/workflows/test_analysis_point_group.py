"""The point-group detector on shapes whose symmetry is known exactly."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.cluster import Icosahedron, Octahedron
from scipy.spatial.transform import Rotation

from ase_au20.geometry.point_group import point_group
from ase_au20.structures import au20_ground_state


def ring(n: int, radius: float, z: float, phase: float = 0.0) -> list[list[float]]:
    """n points on a horizontal circle."""
    angles = phase + 2 * np.pi * np.arange(n) / n
    return [[radius * np.cos(a), radius * np.sin(a), z] for a in angles]


def cluster(points) -> Atoms:
    return Atoms(f"Au{len(points)}", positions=np.asarray(points, dtype=float))


SHAPES = {
    "Td": au20_ground_state(),
    "Oh": Octahedron("Au", 3),
    "Ih": Icosahedron("Au", 2),
    "D3h": cluster([[0, 0, 1.6], [0, 0, -1.6], *ring(3, 2.0, 0.0)]),  # trigonal bipyramid
    "C2v": cluster([[0, 0, 0], [2.8, 0, 0], [1.4, 2.0, 0]]),  # isosceles triangle
    "C3v": cluster([[0, 0, 1.8], *ring(3, 2.0, 0.0)]),  # trigonal pyramid
    "D4d": cluster([*ring(4, 2.0, 1.2), *ring(4, 2.0, -1.2, np.pi / 4)]),  # square antiprism
    "D3": cluster([*ring(3, 2.0, 1.4), *ring(3, 2.0, -1.4, 0.3)]),  # twisted prism
    "D4h": cluster([*ring(4, 2.0, 1.3), *ring(4, 2.0, -1.3)]),  # square prism
    "C4v": cluster([[0, 0, 1.5], *ring(4, 2.0, 0.0)]),  # square pyramid
    "C6h": cluster([*ring(6, 2.0, 0.0), *ring(6, 3.5, 0.0, 0.4)]),  # planar pinwheel
    "Cs": cluster([[0, 0, 0], [2.7, 0, 0], [0.3, 2.6, 0], [3.1, 2.9, 0.0]]),  # planar, skewed
    "Ci": cluster(
        [[2.3, 0.4, 0.9], [-0.5, 2.2, 1.1], [0.8, -0.9, 2.6]]
        + [[-2.3, -0.4, -0.9], [0.5, -2.2, -1.1], [-0.8, 0.9, -2.6]]
    ),
}


@pytest.mark.parametrize("expected", sorted(SHAPES))
def test_known_shapes(expected: str) -> None:
    assert point_group(SHAPES[expected]) == expected


@pytest.mark.parametrize("expected", ["Td", "Ih", "D4d"])
def test_symmetry_does_not_depend_on_orientation_or_origin(expected: str) -> None:
    atoms = SHAPES[expected].copy()
    atoms.positions = Rotation.random(random_state=3).apply(atoms.positions) + [5.0, -2.0, 7.0]
    assert point_group(atoms) == expected


def test_random_cluster_has_no_symmetry() -> None:
    rng = np.random.default_rng(1)
    assert point_group(cluster(rng.normal(scale=3.0, size=(20, 3)))) == "C1"


def test_tolerance_decides_whether_a_distorted_tetrahedron_is_td() -> None:
    atoms = au20_ground_state()
    atoms.positions += np.random.default_rng(0).uniform(-0.03, 0.03, atoms.positions.shape)
    assert point_group(atoms, tol=0.1) == "Td"
    assert point_group(atoms, tol=0.005) == "C1"


def test_degenerate_inputs() -> None:
    assert point_group(cluster([[0, 0, 0], [2.7, 0, 0]])) == "D∞h"
    assert point_group(cluster([[0, 0, 0], [2.7, 0, 0], [6.0, 0, 0]])) == "C∞v"
    with pytest.raises(ValueError, match="empty"):
        point_group(Atoms())
