"""Turning lists of Atoms into same-size position batches for the SchNet network.

SchNet runs on dense ``[B, N, 3]`` position tensors; structures of different sizes are
grouped by atom count so no padding (and no masked pair arithmetic) is ever needed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from ase import Atoms

Structure = Atoms | np.ndarray


def positions_of(structure: Structure) -> np.ndarray:
    """Positions ``(N, 3)`` in Å of an Atoms object or of a position array."""
    pos = structure.get_positions() if isinstance(structure, Atoms) else np.asarray(structure)
    if pos.ndim != 2 or pos.shape[1] != 3 or len(pos) == 0:
        raise ValueError(f"expected positions of shape (N, 3) with N >= 1, got {pos.shape}")
    return np.asarray(pos, dtype=np.float64)


def group_by_size(structures: Sequence[Structure]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Map atom count -> (indices into ``structures``, stacked positions ``(n, N, 3)``)."""
    if len(structures) == 1:  # every calculator call: skip the grouping (~0.1 ms)
        pos = positions_of(structures[0])
        return {len(pos): (np.zeros(1, dtype=int), pos[None])}
    positions = [positions_of(s) for s in structures]
    sizes = np.array([len(p) for p in positions], dtype=int)
    groups = {}
    for size in np.unique(sizes):
        idx = np.flatnonzero(sizes == size)
        groups[int(size)] = (idx, np.stack([positions[i] for i in idx]))
    return groups


def chunks(n: int, size: int) -> Iterator[slice]:
    """Consecutive slices of at most ``size`` covering ``range(n)``."""
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))
