"""Built-in structures: the tetrahedral (Td) Au20 pyramid, the known ground state."""

from __future__ import annotations

import itertools

import numpy as np
from ase import Atoms

# Mean nearest-neighbour distance of the DFTB1-relaxed Td isomer in the dataset (2.60–2.75 Å).
TD_BOND_LENGTH = 2.70


def au20_ground_state(bond_length: float = TD_BOND_LENGTH) -> Atoms:
    """The Td Au20 pyramid: an fcc tetrahedron with four atoms per edge, centred at 0.

    Unrelaxed (ideal fcc fragment); relax it with the calculator you will use.
    """
    edges = np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]) / np.sqrt(2.0)
    sites = [
        i * edges[0] + j * edges[1] + k * edges[2]
        for i, j, k in itertools.product(range(4), repeat=3)
        if i + j + k <= 3
    ]
    positions = np.array(sites) * bond_length
    positions -= positions.mean(axis=0)
    return Atoms("Au20", positions=positions)
