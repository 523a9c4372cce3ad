"""Analytic gradient of the DFTB1 energy: density matrices contracted with dH and dS.

The band energy Σ f ε changes as Σ g_n dε_n (``Filling.gradient_weights``: the occupations
plus their response near μ) and dε_n = c_nᵀ(dH − ε_n dS)c_n, so its derivative with
respect to an atom is Σ ρ dH − Σ W dS with ρ = Σ g c cᵀ and the energy-weighted W = Σ g ε
c cᵀ; the repulsive pair energy adds its own slope. Each pair block of H is Σ_c V_c(r)
T_c(u), so the contraction needs only ⟨ρ, T_c⟩ and its gradient in u per pair
(``BondDirections.contract``), never the derivative matrices themselves.
"""

from __future__ import annotations

import numpy as np

from ase_au20.models.dftb.assembly import Matrices, pair_blocks
from ase_au20.models.dftb.solve import Filling


def energy_gradient(
    matrices: Matrices, filling: Filling, repulsive_slope: np.ndarray, rho: np.ndarray
) -> np.ndarray:
    """dE/dR (atoms, 3) in Hartree/bohr of the band plus repulsive energy of the cluster
    whose ``matrices`` and ``filling`` are given, with the repulsive energy's radial slope
    per pair and the density matrix ``rho`` (Σ f c cᵀ, used as it is when no level lies
    within a few kT of μ)."""
    weights = filling.gradient_weights()
    if not np.array_equal(weights, filling.occupations):
        rho = filling.density_matrix(weights)
    weighted = filling.density_matrix(weights * filling.eigenvalues)
    pairs = matrices.pairs
    h, s, h_slope, s_slope = matrices.integrals
    u, r = pairs.unit, pairs.distance
    tau, gamma = matrices.bonds.contract(
        np.stack([pair_blocks(rho, pairs), pair_blocks(weighted, pairs)], axis=1)
    )
    radial = (tau[:, 0] * h_slope).sum(axis=1) - (tau[:, 1] * s_slope).sum(axis=1)
    angular = np.einsum("pcy,pc->py", gamma[:, 0], h) - np.einsum("pcy,pc->py", gamma[:, 1], s)
    angular -= u * (angular * u).sum(axis=1, keepdims=True)  # u moves only across the bond
    # the pair block appears twice (i, j and its transpose j, i), hence the factor 2
    on_second = 2.0 * (radial[:, None] * u + angular / r[:, None])
    on_second += repulsive_slope[:, None] * u
    gradient = np.zeros((pairs.atoms, 3))
    np.add.at(gradient, pairs.second, on_second)
    np.subtract.at(gradient, pairs.first, on_second)
    return gradient
