"""Checks that an Atoms object is a gold cluster our models can score.

One place for the rules so the database builder, calculators and workflows agree on
what "bad input" means and raise the same messages.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

CALCULATOR_MIN_DISTANCE = 1.5  # Å; closer Au-Au pairs are unphysical for any model here
DATABASE_MIN_DISTANCE = 1.0  # Å; looser, only catches corrupt files
MAX_COORDINATE = 1e4  # Å; beyond, distances lose precision and no cluster is that large
GOLD = 79


def min_pair_distance(positions: np.ndarray) -> float:
    """Smallest interatomic distance (inf for fewer than two atoms)."""
    if len(positions) < 2:
        return float("inf")
    diff = positions[:, None, :] - positions[None, :, :]
    dist = np.sqrt((diff**2).sum(-1))
    dist[np.diag_indices(len(positions))] = np.inf
    return float(dist.min())


def check_cluster(atoms: Atoms, min_distance: float = CALCULATOR_MIN_DISTANCE) -> None:
    """Raise ``ValueError`` naming the problem if ``atoms`` is not a valid Au cluster."""
    if len(atoms) == 0:
        raise ValueError("empty Atoms: a gold cluster needs at least one atom")
    if not np.all(atoms.numbers == GOLD):
        others = ", ".join(sorted(set(atoms.get_chemical_symbols()) - {"Au"}))
        raise ValueError(f"only Au atoms are supported, found: {others}")
    positions = atoms.get_positions()
    if not np.all(np.isfinite(positions)):
        bad = np.where(~np.isfinite(positions).all(axis=1))[0]
        raise ValueError(f"non-finite (NaN/inf) positions for atom(s) {bad.tolist()}")
    far = np.where((np.abs(positions) > MAX_COORDINATE).any(axis=1))[0]
    if len(far):
        raise ValueError(
            f"coordinates beyond {MAX_COORDINATE:.0e} Å for atom(s) {far.tolist()}: "
            "not a cluster (corrupt or unit-confused input?)"
        )
    dmin = min_pair_distance(positions)
    if dmin < min_distance:
        raise ValueError(
            f"atoms closer than {min_distance} Å (closest pair {dmin:.3f} Å): unphysical geometry"
        )
