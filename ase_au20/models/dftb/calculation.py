"""One DFTB1 single point: assemble, solve, fill, and return eV / Å quantities.

The energy is the band energy Σ f ε at the electronic temperature plus the repulsive pair
energy; its forces are the exact negative gradient, the occupations' response included.
The Mermin free energy (the band energy less T·S_el) is returned beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ase_au20.models.dftb.assembly import Pairs, assemble
from ase_au20.models.dftb.forces import energy_gradient
from ase_au20.models.dftb.rotations import N_ORBITALS
from ase_au20.models.dftb.skf import BOHR, HARTREE, SlaterKosterTable
from ase_au20.models.dftb.solve import solve


@dataclass(frozen=True)
class SinglePoint:
    """Energy and Mermin free energy (eV), per-atom energies (eV), forces (eV/Å) or None,
    and the HOMO–LUMO gap (eV) of one cluster."""

    energy: float
    free_energy: float
    energies: np.ndarray
    forces: np.ndarray | None
    gap: float


def single_point(
    table: SlaterKosterTable,
    positions: np.ndarray,
    electronic_temperature: float,
    forces: bool = False,
) -> SinglePoint:
    """DFTB1 of a cluster at ``positions`` (Å) with the valence electrons of ``table``'s
    neutral atoms at ``electronic_temperature`` (Hartree)."""
    bohr_positions = np.asarray(positions, dtype=float) / BOHR
    matrices = assemble(table, bohr_positions)
    electrons = float(table.occupations.sum()) * len(bohr_positions)
    filling = solve(matrices.hamiltonian, matrices.overlap, electrons, electronic_temperature)
    pairs = matrices.pairs
    repulsive, repulsive_slope = table.repulsive(pairs.distance)
    energy = filling.band_energy + float(repulsive.sum())
    rho = filling.density_matrix()
    per_atom = _per_atom_energies(matrices.hamiltonian, rho, pairs, repulsive)
    gradient = energy_gradient(matrices, filling, repulsive_slope, rho) if forces else None
    lumo = int(np.searchsorted(-filling.occupations, -1.0))  # first level at most half full
    levels = filling.eigenvalues
    gap = float(levels[lumo] - levels[lumo - 1]) if 0 < lumo < len(levels) else float("nan")
    return SinglePoint(
        energy=energy * HARTREE,
        free_energy=(energy - filling.entropy_term) * HARTREE,
        energies=per_atom * HARTREE,
        forces=None if gradient is None else -gradient * (HARTREE / BOHR),
        gap=gap * HARTREE,
    )


def _per_atom_energies(
    hamiltonian: np.ndarray, density: np.ndarray, pairs: Pairs, repulsive: np.ndarray
) -> np.ndarray:
    """A Mulliken split of the band energy tr(ρH) by the atom of each orbital, plus half of
    every repulsive pair term: they sum to the energy, but another split is as valid."""
    band = (density * hamiltonian).sum(axis=1).reshape(-1, N_ORBITALS).sum(axis=1)
    half = 0.5 * repulsive
    np.add.at(band, pairs.first, half)
    np.add.at(band, pairs.second, half)
    return band
