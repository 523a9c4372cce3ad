"""Random compact Au clusters: reproducible starting points for global-minimum searches."""

from __future__ import annotations

import numpy as np
from ase import Atoms

# Radius per N^(1/3) of the sphere the atoms are dropped into; 1.85 Å gives Au20 a 5.0 Å
# sphere, loose enough for random sequential placement at 2.5 Å yet compact after relaxing.
RADIUS_PER_CBRT_N = 1.85


def random_cluster(
    rng: np.random.Generator,
    n_atoms: int = 20,
    min_distance: float = 2.5,
    radius: float | None = None,
    max_tries: int = 100_000,
) -> Atoms:
    """Drop ``n_atoms`` Au at random into a sphere, no pair closer than ``min_distance`` Å."""
    if n_atoms < 1:
        raise ValueError(f"n_atoms must be >= 1, got {n_atoms}")
    radius = RADIUS_PER_CBRT_N * np.cbrt(n_atoms) if radius is None else radius
    positions = np.empty((0, 3))
    for _ in range(max_tries):
        point = rng.uniform(-radius, radius, 3)
        if point @ point > radius**2:
            continue
        if len(positions) and np.min(np.linalg.norm(positions - point, axis=1)) < min_distance:
            continue
        positions = np.vstack([positions, point])
        if len(positions) == n_atoms:
            return Atoms(f"Au{n_atoms}", positions=positions - positions.mean(axis=0))
    raise ValueError(
        f"could not place {n_atoms} atoms {min_distance} Å apart in a sphere of radius "
        f"{radius:.2f} Å within {max_tries} tries: increase the radius"
    )
