"""Assembly of the Hamiltonian and overlap matrices (9 orbitals per atom) of one cluster.

All pairs i < j closer than the table's cutoff are found directly: for clusters of tens of
atoms that is faster than building a neighbour list, and there is no cell.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ase_au20.models.dftb.rotations import N_ORBITALS, BondDirections
from ase_au20.models.dftb.skf import SlaterKosterTable

# number of orbitals of each angular momentum, to spread the (s, p, d) on-site energies
_SHELL_SIZES = (1, 3, 5)


@dataclass(frozen=True)
class Pairs:
    """Atom pairs i < j within the cutoff among ``atoms`` atoms, their unit vectors i → j and
    distances (bohr)."""

    atoms: int
    first: np.ndarray
    second: np.ndarray
    unit: np.ndarray
    distance: np.ndarray

    @classmethod
    def within(cls, positions: np.ndarray, cutoff: float) -> Pairs:
        """Every pair of ``positions`` (bohr) closer than ``cutoff`` (bohr)."""
        i, j = np.triu_indices(len(positions), 1)
        vectors = positions[j] - positions[i]
        distance = np.sqrt((vectors**2).sum(axis=1))
        near = distance < cutoff
        return cls(
            len(positions), i[near], j[near], vectors[near] / distance[near, None], distance[near]
        )


@dataclass(frozen=True)
class Matrices:
    """H and S (Hartree; 9N × 9N) of one cluster, the pairs and bond directions they were
    built from, and the pairs' integrals and radial slopes (``SlaterKosterTable.integrals``),
    which the forces use again."""

    hamiltonian: np.ndarray
    overlap: np.ndarray
    pairs: Pairs
    bonds: BondDirections
    integrals: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def onsite_energies(table: SlaterKosterTable) -> np.ndarray:
    """The nine on-site energies (Hartree) of one atom in orbital order."""
    return np.repeat(table.onsite, _SHELL_SIZES)


def assemble(table: SlaterKosterTable, positions: np.ndarray) -> Matrices:
    """H and S of atoms at ``positions`` (bohr): on-site energies on the diagonal, rotated
    two-centre blocks between atoms."""
    pairs = Pairs.within(positions, table.cutoff)
    integrals = table.integrals(pairs.distance)
    n = len(positions)
    bonds = BondDirections(pairs.unit)
    h = _symmetric(n, pairs, bonds.blocks(integrals[0]), np.diag(onsite_energies(table)))
    s = _symmetric(n, pairs, bonds.blocks(integrals[1]), np.eye(N_ORBITALS))
    return Matrices(h, s, pairs, bonds, integrals)


def pair_blocks(matrix: np.ndarray, pairs: Pairs) -> np.ndarray:
    """The (pairs, 9, 9) blocks <first | second> of a 9N × 9N matrix."""
    n = matrix.shape[0] // N_ORBITALS
    tiles = matrix.reshape(n, N_ORBITALS, n, N_ORBITALS).transpose(0, 2, 1, 3)
    return tiles[pairs.first, pairs.second]


def _symmetric(n: int, pairs: Pairs, off_diagonal: np.ndarray, diagonal: np.ndarray) -> np.ndarray:
    """The 9N × 9N symmetric matrix with ``diagonal`` blocks on the atoms and the pair
    blocks above the diagonal (their transposes below)."""
    tiles = np.zeros((n, n, N_ORBITALS, N_ORBITALS))
    tiles[np.arange(n), np.arange(n)] = diagonal
    tiles[pairs.first, pairs.second] = off_diagonal
    tiles[pairs.second, pairs.first] = np.swapaxes(off_diagonal, 1, 2)
    return tiles.transpose(0, 2, 1, 3).reshape(n * N_ORBITALS, n * N_ORBITALS)
