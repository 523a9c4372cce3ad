"""Near-duplicate groups: connected components of the "same geometry" graph."""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from ase_au20.geometry.conventions import DUPLICATE_TOLERANCE
from ase_au20.geometry.fingerprint import max_deviation


def duplicate_groups(
    fingerprints: np.ndarray,
    tol: float = DUPLICATE_TOLERANCE,
    existing: np.ndarray | None = None,
) -> np.ndarray:
    """Group label per structure, numbered 0.. in order of first member; fingerprints
    within ``tol`` Å are one isomer (single linkage), whatever their energy labels say.

    With ``existing`` (labels of the first ``len(existing)`` structures, kept as they
    are), later structures join the group of an existing near-duplicate (the smallest
    label if they touch several) or get new labels after the largest existing one.
    """
    n = len(fingerprints)
    if n == 0:
        return np.zeros(0, dtype=int)
    graph = max_deviation(fingerprints, fingerprints) < tol
    _, component = connected_components(csr_matrix(graph), directed=False)
    labels = np.full(n, -1, dtype=int)
    n_old = 0 if existing is None else len(existing)
    if n_old:
        labels[:n_old] = existing
        for comp in np.unique(component[:n_old]):
            members = component == comp
            labels[members & (labels < 0)] = labels[:n_old][members[:n_old]].min()
    next_label = int(labels.max()) + 1 if n_old else 0
    for index in range(n):
        if labels[index] < 0:
            labels[(component == component[index]) & (labels < 0)] = next_label
            next_label += 1
    return labels


def group_sizes(groups: np.ndarray) -> dict[int, int]:
    """Number of members of every group label."""
    values, counts = np.unique(groups, return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts, strict=True)}
