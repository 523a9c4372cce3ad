"""Per-site harmonic stiffness: diagonal 3×3 Hessian blocks from finite differences of forces."""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from ase_au20.workflows.any_calculator import predict_batch


def displaced_copies(atoms: Atoms, step: float) -> list[Atoms]:
    """6N copies of ``atoms``: atom i moved by +step then -step along x, y, z (in that order)."""
    copies = []
    for i in range(len(atoms)):
        for axis in range(3):
            for sign in (1.0, -1.0):
                atoms_d = atoms.copy()
                atoms_d.calc = None
                atoms_d.positions[i, axis] += sign * step
                copies.append(atoms_d)
    return copies


def hessian_diagonal_blocks(calc: Calculator, atoms: Atoms, step: float = 0.01) -> np.ndarray:
    """(N, 3, 3) blocks H_ii = ∂²E/∂r_i∂r_i (eV/Å²) by central differences of the forces.

    All 6N displaced copies go through one :func:`predict_batch` call; each block is
    symmetrised, since the exact Hessian is symmetric.
    """
    if not step > 0:
        raise ValueError(f"finite-difference step must be positive, got {step}")
    n = len(atoms)
    forces = predict_batch(calc, displaced_copies(atoms, step), ("forces",))["forces"]
    forces = np.asarray(forces, dtype=float).reshape(n, 3, 2, n, 3)
    own = forces[np.arange(n), :, :, np.arange(n), :]  # (N, axis moved, ±, force component)
    blocks = -(own[:, :, 0, :] - own[:, :, 1, :]) / (2.0 * step)  # [i, moved, component]
    blocks = np.swapaxes(blocks, 1, 2)
    return 0.5 * (blocks + np.swapaxes(blocks, 1, 2))


def harmonic_stiffness(blocks: np.ndarray) -> np.ndarray:
    """Mean curvature tr(H_ii)/3 (eV/Å²) per site: the spring constant of that atom alone."""
    return np.trace(blocks, axis1=1, axis2=2) / 3.0


def harmonic_mean_abs_de(blocks: np.ndarray, sigma: float) -> np.ndarray:
    """Expected ΔE (eV) of moving atom i alone by N(0, σ²) per axis: σ²·tr(H_ii)/2.

    Equals the mean |ΔE| at a true minimum in the small-σ (harmonic) limit, so it checks K_i.
    """
    return 0.5 * sigma**2 * np.trace(blocks, axis1=1, axis2=2)
