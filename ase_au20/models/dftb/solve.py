"""The electronic problem: H c = ε S c, Fermi filling at a finite electronic temperature.

Each spatial orbital holds two electrons. The filling ``f`` (0..2 per level) solves
Σ f = N at the chemical potential μ; the band energy is Σ f ε and the Mermin free energy
subtracts T·S_el, the entropy of the fractional occupations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
from scipy.optimize import brentq
from scipy.special import expit, xlogy

SPIN = 2.0  # electrons per spatial orbital


@dataclass(frozen=True)
class Filling:
    """Eigenvalues (Hartree), eigenvectors (columns), occupations and μ of one cluster."""

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    occupations: np.ndarray
    chemical_potential: float
    kt: float

    @property
    def band_energy(self) -> float:
        """Σ f ε (Hartree)."""
        return float(self.occupations @ self.eigenvalues)

    @property
    def entropy_term(self) -> float:
        """T·S_el (Hartree) of the fractional occupations."""
        p = self.occupations / SPIN
        return -SPIN * self.kt * float((xlogy(p, p) + xlogy(1 - p, 1 - p)).sum())

    def density_matrix(self, weights: np.ndarray | None = None) -> np.ndarray:
        """Σ w_n c_n c_nᵀ with w = f (the density matrix) or any other level weights."""
        w = self.occupations if weights is None else weights
        used = np.abs(w) > 1e-15 * np.abs(w).max()  # empty levels (most of them) add nothing
        c = self.eigenvectors[:, used]
        return (c * w[used]) @ c.T

    def gradient_weights(self) -> np.ndarray:
        """Level weights g with dE_band = Σ g_n dε_n at fixed N: the occupations f plus their
        response (ε_n − ε̄) ∂f_n/∂ε_n, where μ moves to keep N (ε̄ the slope-weighted mean
        level). Only levels within a few kT of μ differ from f."""
        p = self.occupations / SPIN
        slopes = -SPIN * p * (1 - p) / self.kt
        total = slopes.sum()
        if total == 0.0:
            return self.occupations
        response = (self.eigenvalues - (slopes @ self.eigenvalues) / total) * slopes
        if np.abs(response).max() < 1e-15:  # a gap of many kT: no level near μ responds
            return self.occupations
        return self.occupations + response


def solve(hamiltonian: np.ndarray, overlap: np.ndarray, electrons: float, kt: float) -> Filling:
    """Diagonalise (H, S) and fill ``electrons`` electrons at temperature ``kt`` (Hartree).

    ValueError when S is not positive definite (atoms so close that the basis collapses).
    """
    try:
        eigenvalues, eigenvectors = scipy.linalg.eigh(hamiltonian, overlap, check_finite=False)
    except np.linalg.LinAlgError:
        raise ValueError("the overlap matrix is not positive definite: atoms too close") from None
    mu = fermi_level(eigenvalues, electrons, kt)
    occupations = SPIN * expit(-(eigenvalues - mu) / kt)
    return Filling(eigenvalues, eigenvectors, occupations, mu, kt)


def fermi_level(eigenvalues: np.ndarray, electrons: float, kt: float) -> float:
    """The μ at which the Fermi filling of ``eigenvalues`` holds ``electrons`` electrons."""
    if not 0 < electrons < SPIN * len(eigenvalues):
        raise ValueError(f"{electrons} electrons do not fit into {len(eigenvalues)} levels")

    def excess(mu: float) -> float:
        return float(SPIN * expit(-(eigenvalues - mu) / kt).sum() - electrons)

    pad = 50 * kt
    return brentq(excess, eigenvalues[0] - pad, eigenvalues[-1] + pad, xtol=1e-14, rtol=1e-15)
