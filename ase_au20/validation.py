"""Checks that an Atoms object is a gold cluster our models can score.

One place for the rules so the database builder, calculators and workflows agree on
what "bad input" means and raise the same messages.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms

from ase_au20.geometry.conventions import BOND_CUTOFF

CALCULATOR_MIN_DISTANCE = 1.5  # Å; closer Au-Au pairs are unphysical for any model here
DATABASE_MIN_DISTANCE = 1.0  # Å; looser, only catches corrupt files
MAX_COORDINATE = 1e4  # Å; beyond, distances lose precision and no cluster is that large
MAX_NEIGHBOUR_GAP = 2 * BOND_CUTOFF  # Å; an atom farther from all others is not bound
# Å: the mean nearest-neighbour distance of any Au cluster worth a label (the data's isomers:
# 2.54-2.64 Å); coordinates in bohr give 4.8-5.0 Å, in nm 0.25 Å
MEAN_NEIGHBOUR_RANGE = (2.0, 3.4)
MAX_EXTENT = 60.0  # Å; an Au20 straight chain at BOND_CUTOFF spans 57.6, the widest isomer 17.8
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


def check_bond_lengths(atoms: Atoms, allowed: tuple[float, float] = MEAN_NEIGHBOUR_RANGE) -> None:
    """Raise ``ValueError`` when the mean nearest-neighbour distance is far from any gold
    cluster's (a unit slip: bohr or nm for Å), as implausible energies are refused."""
    if len(atoms) < 2:
        return
    from scipy.spatial import cKDTree

    nearest = cKDTree(atoms.get_positions()).query(atoms.get_positions(), k=2)[0][:, 1]
    mean = float(nearest.mean())
    if not allowed[0] <= mean <= allowed[1]:
        raise ValueError(
            f"mean nearest-neighbour distance {mean:.2f} Å is far from gold's "
            f"({allowed[0]:g}-{allowed[1]:g} Å): coordinates in another unit (bohr, nm)?"
        )


def check_compact(
    atoms: Atoms, max_gap: float = MAX_NEIGHBOUR_GAP, max_extent: float = MAX_EXTENT
) -> None:
    """Raise ``ValueError`` for an atom with no neighbour within ``max_gap`` Å, or pieces
    spread over more than ``max_extent`` Å.

    Catches atoms torn off a labelled cluster (a stray atom 1000 Å away would otherwise be
    stored with a label no cluster has). Pieces of several atoms within the extent stay:
    the dataset holds five DFTB1 minima that are two fragments up to 14.5 Å apart.
    """
    from scipy.spatial.distance import pdist, squareform

    if len(atoms) < 2:
        return
    dist = squareform(pdist(atoms.get_positions()))
    np.fill_diagonal(dist, np.inf)
    lonely = np.flatnonzero(dist.min(axis=1) > max_gap)
    if len(lonely):
        raise ValueError(
            f"atom(s) {lonely.tolist()} have no neighbour within {max_gap:.2f} Å: "
            "torn off the cluster"
        )
    np.fill_diagonal(dist, 0.0)
    if dist.max() > max_extent:
        raise ValueError(
            f"atoms spread over {dist.max():.1f} Å (more than {max_extent:g} Å): not one cluster"
        )
