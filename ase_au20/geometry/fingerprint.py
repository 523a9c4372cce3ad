"""Permutation- and rotation-invariant geometry fingerprints for near-duplicate detection.

The fingerprint is the sorted list of interatomic distances; two isomers are the same
geometry when the largest difference between their lists is below
``conventions.DUPLICATE_TOLERANCE``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms
from scipy.spatial.distance import cdist, pdist


def distance_fingerprint(atoms: Atoms) -> np.ndarray:
    """Sorted pair distances of ``atoms`` (length N(N-1)/2, Å)."""
    return np.sort(pdist(atoms.get_positions()))


def fingerprint_matrix(structures: Sequence[Atoms]) -> np.ndarray:
    """Stack the fingerprints of equally sized structures into an (n, N(N-1)/2) array."""
    fps = [distance_fingerprint(a) for a in structures]
    if len({fp.shape for fp in fps}) > 1:
        raise ValueError("fingerprints need structures with the same number of atoms")
    return np.array(fps).reshape(len(fps), -1)


def max_deviation(fps_a: np.ndarray, fps_b: np.ndarray) -> np.ndarray:
    """Pairwise max |difference| (Chebyshev distance) between two fingerprint stacks."""
    return cdist(np.atleast_2d(fps_a), np.atleast_2d(fps_b), metric="chebyshev")
