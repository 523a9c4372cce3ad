"""Random Au clusters with a random point-group symmetry: AIRSS-style search starts.

Low-energy clusters are often symmetric (the observation behind Pickard & Needs' AIRSS and
the symmetric generators of CALYPSO and PyXtal): a start drawn inside a point group
samples the small symmetric subspace, and a local relaxation keeps the symmetry (the
forces of a symmetric structure are symmetric). Each group is the closure of its generator
matrices; atoms are added one orbit at a time, from a general position or from a point on
a random symmetry element (axis or mirror plane), until the count is exact.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from ase import Atoms
from scipy.spatial.distance import cdist, pdist
from scipy.spatial.transform import Rotation

from ase_au20.geometry.random_cluster import RADIUS_PER_CBRT_N, random_cluster

STARTS = ("symmetric", "random")
_Z, _X, _BODY_DIAGONAL = (0.0, 0.0, 1.0), (1.0, 0.0, 0.0), (1.0, 1.0, 1.0)


def _rotation(axis: tuple[float, ...], order: int) -> np.ndarray:
    """Proper rotation by 2π/order about ``axis``."""
    axis_arr = np.asarray(axis) / np.linalg.norm(axis)
    return Rotation.from_rotvec(axis_arr * 2.0 * np.pi / order).as_matrix()


def _mirror(normal: tuple[float, ...]) -> np.ndarray:
    """Reflection through the plane with this normal."""
    n = np.asarray(normal) / np.linalg.norm(normal)
    return np.eye(3) - 2.0 * np.outer(n, n)


GENERATORS = {
    "C2": lambda: [_rotation(_Z, 2)],
    "C3": lambda: [_rotation(_Z, 3)],
    "Cs": lambda: [_mirror(_Z)],
    "C2v": lambda: [_rotation(_Z, 2), _mirror(_X)],
    "C3v": lambda: [_rotation(_Z, 3), _mirror(_X)],
    "D2": lambda: [_rotation(_Z, 2), _rotation(_X, 2)],
    "D3": lambda: [_rotation(_Z, 3), _rotation(_X, 2)],
    "D2d": lambda: [_rotation(_Z, 2), _rotation(_X, 2), _mirror((1.0, 1.0, 0.0))],
    "D3h": lambda: [_rotation(_Z, 3), _rotation(_X, 2), _mirror(_Z)],
    "D5h": lambda: [_rotation(_Z, 5), _rotation(_X, 2), _mirror(_Z)],
    "T": lambda: [_rotation(_BODY_DIAGONAL, 3), _rotation(_Z, 2)],
    "Td": lambda: [_rotation(_BODY_DIAGONAL, 3), _rotation(_Z, 2), _mirror((1.0, -1.0, 0.0))],
}
POINT_GROUPS = tuple(GENERATORS)


@cache
def group_operations(name: str) -> np.ndarray:
    """All operations (k, 3, 3) of a point group, identity first, by closing its generators."""
    if name not in GENERATORS:
        raise ValueError(f"unknown point group {name!r}: use one of {', '.join(POINT_GROUPS)}")
    generators = GENERATORS[name]()
    operations = [np.eye(3)]
    frontier = [np.eye(3)]
    while frontier:
        found = []
        for op in frontier:
            for generator in generators:
                product = generator @ op
                if not any(np.allclose(product, known, atol=1e-9) for known in operations):
                    operations.append(product)
                    found.append(product)
        frontier = found
    return np.array(operations)


@cache
def _sites(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Projectors (k, 3, 3) onto the subspace each operation fixes (identity: a general
    position; an axis; a mirror plane; only the centre) and the orbit size of a generic
    point there (k,)."""
    ops = group_operations(name)
    probe = np.random.default_rng(0)  # a generic point on each element: fixed, not a draw
    projectors, sizes = [], []
    for op in ops:
        values, vectors = np.linalg.eig(op)
        basis = np.real(vectors[:, np.isclose(values, 1.0, atol=1e-8)])
        if basis.shape[1]:
            q, _ = np.linalg.qr(basis)
            projector = q @ q.T
        else:
            projector = np.zeros((3, 3))
        projectors.append(projector)
        sizes.append(len(orbit(ops, projector @ probe.normal(size=3))))
    return np.array(projectors), np.array(sizes)


def orbit_sizes(name: str) -> tuple[int, ...]:
    """Sizes of the orbits a point group offers (general position and each element)."""
    return tuple(sorted({int(s) for s in _sites(name)[1]}))


def _fillable(name: str, n_atoms: int) -> np.ndarray:
    """``fillable[m]``: whether m atoms are a sum of the group's orbit sizes.

    One-atom orbits are unlimited when the whole group fixes an axis (Cn, Cnv, Cs); else
    the only one is the centre, usable once.
    """
    ops = group_operations(name)
    fixed_axis = np.linalg.matrix_rank(np.vstack([op - np.eye(3) for op in ops])) < 3
    sizes = [s for s in orbit_sizes(name) if s > 1 or fixed_axis]
    reachable = np.zeros(n_atoms + 1, dtype=bool)
    reachable[0] = True
    for total in range(1, n_atoms + 1):
        reachable[total] = any(s <= total and reachable[total - s] for s in sizes)
    if not fixed_axis and 1 in orbit_sizes(name):
        reachable[1:] |= reachable[:-1]
    return reachable


def can_hold(name: str, n_atoms: int) -> bool:
    """Whether ``n_atoms`` atoms can be arranged with the symmetry of this point group."""
    return bool(_fillable(name, n_atoms)[n_atoms])


def orbit(operations: np.ndarray, point: np.ndarray, tol: float = 1e-6) -> np.ndarray:
    """The distinct images of ``point`` under ``operations`` (m, 3)."""
    images = operations @ point
    close = cdist(images, images) < tol
    return images[~np.triu(close, k=1).any(axis=0)]


def symmetric_cluster(
    rng: np.random.Generator,
    group: str,
    n_atoms: int = 20,
    min_distance: float = 2.5,
    radius: float | None = None,
    max_tries: int = 200,
) -> Atoms:
    """``n_atoms`` Au with the symmetry of ``group``, no pair closer than ``min_distance`` Å.

    Orbits are drawn inside a sphere of ``radius`` Å (the random starts' default), each of
    a size that leaves a count the group can still fill; a crowded draw is redrawn.
    """
    if n_atoms < 1:
        raise ValueError(f"n_atoms must be >= 1, got {n_atoms}")
    if not can_hold(group, n_atoms):
        raise ValueError(f"{n_atoms} atoms cannot form {group} orbits {orbit_sizes(group)}")
    operations = group_operations(group)
    projectors, sizes = _sites(group)
    fillable = _fillable(group, n_atoms)
    radius = RADIUS_PER_CBRT_N * np.cbrt(n_atoms) if radius is None else radius
    for _ in range(max_tries):
        positions = np.empty((0, 3))
        for _ in range(20 * n_atoms):
            left = n_atoms - len(positions)
            if left == 0:
                return Atoms(f"Au{n_atoms}", positions=positions)
            usable = np.flatnonzero((sizes <= left) & fillable[np.maximum(left - sizes, 0)])
            site = projectors[rng.choice(usable)] @ rng.uniform(-radius, radius, 3)
            if site @ site > radius**2:
                continue
            images = orbit(operations, site)
            if len(images) > left or _crowded(images, positions, min_distance):
                continue
            positions = np.vstack([positions, images])
    raise ValueError(
        f"could not place {n_atoms} atoms with {group} symmetry {min_distance} Å apart in a "
        f"sphere of radius {radius:.2f} Å within {max_tries} tries"
    )


def _crowded(images: np.ndarray, positions: np.ndarray, min_distance: float) -> bool:
    """Whether a new orbit comes closer than ``min_distance`` to itself or to the atoms."""
    if len(images) > 1 and pdist(images).min() < min_distance:
        return True
    return bool(len(positions) and cdist(images, positions).min() < min_distance)


def search_start(rng: np.random.Generator, n_atoms: int = 20, kind: str = "symmetric") -> Atoms:
    """One search start: ``random``, or ``symmetric`` in a group of POINT_GROUPS that can
    hold ``n_atoms``, drawn with probability proportional to its order: a larger group has
    fewer free parameters, so its draws cover its (smaller) subspace more densely. When a
    group cannot place the atoms, another is drawn."""
    if kind == "random":
        return random_cluster(rng, n_atoms)
    if kind != "symmetric":
        raise ValueError(f"unknown start kind {kind!r}: use {', '.join(STARTS)}")
    groups = [g for g in POINT_GROUPS if can_hold(g, n_atoms)]  # C2 and Cs hold any count
    orders = np.array([len(group_operations(g)) for g in groups], dtype=float)
    for index in rng.choice(len(groups), size=len(groups), replace=False, p=orders / orders.sum()):
        try:
            return symmetric_cluster(rng, groups[index], n_atoms, max_tries=50)
        except ValueError:
            continue
    raise ValueError(f"no point group of {POINT_GROUPS} could place {n_atoms} atoms")
