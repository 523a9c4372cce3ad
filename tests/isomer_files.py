"""Writing synthetic isomers in the dataset's format, shared by fixtures and tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms


def write_isomer_xyz(path: Path, atoms: Atoms, energy: float) -> None:
    """Write one isomer in the dataset's format: count, bare energy, ``Au x y z`` lines."""
    lines = [str(len(atoms)), f"{energy:.6f}"]
    lines += [f"Au {x:14.8f} {y:14.8f} {z:14.8f}" for x, y, z in atoms.get_positions()]
    path.write_text("\n".join(lines) + "\n")


def random_compact_au20(rng: np.random.Generator, radius: float = 4.3, dmin: float = 2.5) -> Atoms:
    """Twenty Au atoms placed at random in a sphere, no pair closer than ``dmin`` Å."""
    positions: list[np.ndarray] = []
    while len(positions) < 20:
        point = rng.uniform(-radius, radius, 3)
        if np.linalg.norm(point) > radius:
            continue
        if positions and np.linalg.norm(np.array(positions) - point, axis=1).min() < dmin:
            continue
        positions.append(point)
    return Atoms("Au20", positions=positions)
