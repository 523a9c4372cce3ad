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
    """Map atom count -> (indices into ``structures``, stacked positions ``(n, N, 3)``).

    Plain dict grouping: one structure (every calculator call) costs ~15 µs, against ~65 µs
    with np.unique/flatnonzero.
    """
    positions = [positions_of(s) for s in structures]
    members: dict[int, list[int]] = {}
    for i, pos in enumerate(positions):
        members.setdefault(len(pos), []).append(i)
    return {
        size: (np.array(idx), np.stack([positions[i] for i in idx]))
        for size, idx in sorted(members.items())
    }


def chunks(n: int, size: int) -> Iterator[slice]:
    """Consecutive slices of at most ``size`` covering ``range(n)``."""
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))
