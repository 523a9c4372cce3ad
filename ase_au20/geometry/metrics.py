"""Geometric descriptors of one finite cluster at a given bond cutoff."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from ase import Atoms
from scipy.sparse.csgraph import connected_components
from scipy.spatial import ConvexHull
from scipy.spatial.distance import pdist, squareform

from ase_au20.geometry.point_group import point_group

SURFACE_TOLERANCE = 0.5  # Å from a convex-hull facet plane still counts as surface
BOND_BIN = 0.02  # Å; bond lengths closer than this count as one distinct length


def adjacency(atoms: Atoms, cutoff: float) -> np.ndarray:
    """Boolean N×N bond matrix: pairs closer than ``cutoff`` Å."""
    bonded = squareform(pdist(atoms.get_positions())) < cutoff
    np.fill_diagonal(bonded, False)
    return bonded


def fragments(atoms: Atoms, cutoff: float) -> list[np.ndarray]:
    """Atom indices of each connected piece of the bond graph at ``cutoff`` Å."""
    n_parts, labels = connected_components(adjacency(atoms, cutoff), directed=False)
    return [np.flatnonzero(labels == k) for k in range(n_parts)]


def connected(atoms: Atoms, cutoff: float) -> bool:
    """Whether the bond graph at ``cutoff`` Å is one piece (no fragment has flown off)."""
    return len(fragments(atoms, cutoff)) == 1


def coordination_numbers(atoms: Atoms, cutoff: float) -> np.ndarray:
    """Number of neighbours closer than ``cutoff`` Å, per atom."""
    return adjacency(atoms, cutoff).sum(axis=1)


def bond_lengths(atoms: Atoms, cutoff: float) -> np.ndarray:
    """Sorted distances (Å) of all pairs closer than ``cutoff``."""
    distances = pdist(atoms.get_positions())
    return np.sort(distances[distances < cutoff])


def count_distinct(values: np.ndarray, tol: float = BOND_BIN) -> int:
    """Number of groups in sorted ``values`` when a gap larger than ``tol`` starts a new group."""
    values = np.sort(np.asarray(values, dtype=float))
    return 0 if len(values) == 0 else int(1 + np.count_nonzero(np.diff(values) > tol))


def gyration_tensor(atoms: Atoms) -> np.ndarray:
    """3×3 gyration tensor (Å²) about the centroid (all atoms weigh the same)."""
    centred = atoms.get_positions() - atoms.get_positions().mean(axis=0)
    return centred.T @ centred / len(atoms)


def radius_of_gyration(atoms: Atoms) -> float:
    """Root-mean-square distance (Å) of the atoms from their centroid."""
    return float(np.sqrt(np.trace(gyration_tensor(atoms))))


def asphericity(atoms: Atoms) -> float:
    """Normalised asphericity (λ1 − (λ2+λ3)/2) / Rg² of the gyration eigenvalues λ1 ≥ λ2 ≥ λ3.

    0 for any shape with an isotropic gyration tensor (tetrahedron, octahedron,
    icosahedron), 1 for a rod; a flat regular disc gives 0.25.
    """
    lam = np.sort(np.linalg.eigvalsh(gyration_tensor(atoms)))[::-1]
    return float((lam[0] - 0.5 * (lam[1] + lam[2])) / lam.sum())


def surface_mask(atoms: Atoms, tolerance: float = SURFACE_TOLERANCE) -> np.ndarray:
    """Atoms within ``tolerance`` Å of a facet plane of the convex hull (flat: all of them).

    Unlike "hull vertex", this counts atoms in the middle of flat faces and edges as surface.
    """
    positions = atoms.get_positions()
    centred = positions - positions.mean(axis=0)
    thickness = np.ptp(centred @ np.linalg.svd(centred)[2][-1]) if len(atoms) > 3 else 0.0
    if thickness < 2.0 * tolerance:  # (near-)flat: every atom is exposed
        return np.ones(len(atoms), dtype=bool)
    hull = ConvexHull(positions)
    depth = -(positions @ hull.equations[:, :3].T + hull.equations[:, 3]).max(axis=1)
    return depth <= tolerance


@dataclass
class StructureMetrics:
    """One row of the structural table."""

    coordination_mean: float
    bond_mean: float
    bond_std: float
    radius_of_gyration: float
    asphericity: float
    surface_share: float
    n_distinct_bonds: int
    point_group: str

    def as_dict(self) -> dict[str, float | int | str]:
        """Plain-dict view, e.g. for a pandas row."""
        return asdict(self)


def structure_metrics(atoms: Atoms, cutoff: float, symmetry_tol: float = 0.1) -> StructureMetrics:
    """All table descriptors of ``atoms`` at bond ``cutoff`` Å."""
    bonds = bond_lengths(atoms, cutoff)
    return StructureMetrics(
        coordination_mean=float(coordination_numbers(atoms, cutoff).mean()),
        bond_mean=float(bonds.mean()) if len(bonds) else float("nan"),
        bond_std=float(bonds.std()) if len(bonds) else float("nan"),
        radius_of_gyration=radius_of_gyration(atoms),
        asphericity=asphericity(atoms),
        surface_share=float(surface_mask(atoms).mean()),
        n_distinct_bonds=count_distinct(bonds),
        point_group=point_group(atoms, symmetry_tol),
    )
