"""Random Gaussian perturbations of a cluster and their RMSD after optimal alignment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from scipy.spatial.transform import Rotation


def aligned_rmsd(reference: np.ndarray, positions: np.ndarray) -> float:
    """RMSD (Å) between two conformations of the same atoms after the best rigid alignment.

    Translation: both centroids to the origin; rotation: Kabsch via ``Rotation.align_vectors``.
    """
    a = reference - reference.mean(axis=0)
    b = positions - positions.mean(axis=0)
    if np.allclose(a, b, rtol=0.0, atol=1e-12):
        return 0.0
    _, rssd = Rotation.align_vectors(a, b)
    return float(rssd / np.sqrt(len(a)))


@dataclass
class Perturbations:
    """Perturbed copies of one structure and what was done to each (one entry per sample)."""

    positions: np.ndarray  # (n, N, 3) Å
    sigma: np.ndarray  # (n,) Å, standard deviation of each Cartesian displacement
    k: np.ndarray  # (n,) number of displaced atoms
    repeat: np.ndarray  # (n,) repeat number within its (sigma, k) cell
    indices: np.ndarray  # (n, max k) displaced atoms, padded with -1
    rmsd: np.ndarray  # (n,) Å after optimal alignment to the base structure

    def __len__(self) -> int:
        return len(self.sigma)

    def structures(self, base: Atoms) -> list[Atoms]:
        """The perturbed structures as Atoms (copies of ``base`` with new positions)."""
        out = []
        for positions in self.positions:
            atoms = base.copy()
            atoms.calc = None
            atoms.positions = positions
            out.append(atoms)
        return out


def _perturb(
    base: np.ndarray, cells: Sequence[tuple[float, np.ndarray]], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Displace the chosen atoms of ``base`` by N(0, σ²) per coordinate, one copy per cell."""
    positions = np.repeat(base[None], len(cells), axis=0)
    rmsd = np.empty(len(cells))
    for n, (sigma, chosen) in enumerate(cells):
        positions[n, chosen] += rng.normal(0.0, sigma, size=(len(chosen), 3))
        rmsd[n] = aligned_rmsd(base, positions[n])
    return positions, rmsd


def random_perturbations(
    atoms: Atoms,
    sigmas: Sequence[float],
    ks: Sequence[int],
    repeats: int,
    rng: np.random.Generator,
) -> Perturbations:
    """``repeats`` copies per (σ, k): k distinct random atoms each moved by N(0, σ²) per axis."""
    n_atoms = len(atoms)
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    if any(not s > 0 for s in sigmas):
        raise ValueError(f"sigmas must be positive, got {list(sigmas)}")
    if any(not 1 <= k <= n_atoms for k in ks):
        raise ValueError(f"every k must lie in 1..{n_atoms}, got {list(ks)}")
    grid = [(s, k, r) for s in sigmas for k in ks for r in range(repeats)]
    cells = [(s, rng.choice(n_atoms, size=k, replace=False)) for s, k, _ in grid]
    positions, rmsd = _perturb(atoms.get_positions(), cells, rng)
    indices = np.full((len(grid), max(ks)), -1, dtype=int)
    for n, (_, chosen) in enumerate(cells):
        indices[n, : len(chosen)] = np.sort(chosen)
    return Perturbations(
        positions=positions,
        sigma=np.array([g[0] for g in grid], dtype=float),
        k=np.array([g[1] for g in grid], dtype=int),
        repeat=np.array([g[2] for g in grid], dtype=int),
        indices=indices,
        rmsd=rmsd,
    )


def single_site_perturbations(
    atoms: Atoms, sigma: float, repeats: int, rng: np.random.Generator
) -> Perturbations:
    """``repeats`` copies per atom i in which only atom i moves by N(0, σ²) per axis."""
    if repeats < 1 or not sigma > 0:
        raise ValueError(f"need repeats >= 1 and sigma > 0, got {repeats} and {sigma}")
    grid = [(i, r) for i in range(len(atoms)) for r in range(repeats)]
    cells = [(sigma, np.array([i])) for i, _ in grid]
    positions, rmsd = _perturb(atoms.get_positions(), cells, rng)
    return Perturbations(
        positions=positions,
        sigma=np.full(len(grid), float(sigma)),
        k=np.ones(len(grid), dtype=int),
        repeat=np.array([r for _, r in grid], dtype=int),
        indices=np.array([[i] for i, _ in grid], dtype=int),
        rmsd=rmsd,
    )
