"""Au20 structures no model of DFTB1 minima should trust: the corpus of the domain checks.

Each kind is a plausible accident of a workflow (a collapsed relaxation, an atom flung off
in MD, a unit slip, a box of gas, a chain or a pancake) made from a real cluster with
seeded randomness.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from ase import Atoms

from ase_au20.geometry.random_cluster import random_cluster


def collapsed(base: Atoms, rng: np.random.Generator) -> Atoms:
    """Shrunk about its centre until its shortest pair is 1.6–2.05 Å."""
    out = base.copy()
    centre = out.positions.mean(axis=0)
    d = _shortest_pair(out)
    out.positions = centre + (out.positions - centre) * rng.uniform(1.6, 2.05) / d
    return out


def torn(base: Atoms, rng: np.random.Generator) -> Atoms:
    """One atom moved outward until it is 5–15 Å from every other atom."""
    out = base.copy()
    centre = out.positions.mean(axis=0)
    k = int(rng.integers(len(out)))
    direction = out.positions[k] - centre
    direction /= np.linalg.norm(direction)
    gap = rng.uniform(5.0, 15.0)
    others = np.delete(out.positions, k, axis=0)
    while np.linalg.norm(others - out.positions[k], axis=1).min() < gap:
        out.positions[k] += 0.5 * direction
    return out


def expanded(base: Atoms, rng: np.random.Generator) -> Atoms:
    """Scaled up by 12–40 % about its centre."""
    out = base.copy()
    centre = out.positions.mean(axis=0)
    out.positions = centre + (out.positions - centre) * rng.uniform(1.12, 1.4)
    return out


def gas_like(base: Atoms, rng: np.random.Generator) -> Atoms:
    """Twenty atoms spread at random through a 9–12 Å sphere, at least 2.5 Å apart."""
    return random_cluster(rng, len(base), min_distance=2.5, radius=rng.uniform(9.0, 12.0))


def chain(base: Atoms, rng: np.random.Generator) -> Atoms:
    """A straight or zig-zag chain with 2.6–2.9 Å bonds."""
    n, bond = len(base), rng.uniform(2.6, 2.9)
    angle = np.radians(rng.uniform(150.0, 180.0))  # bond angle
    step = np.array([bond * np.sin(angle / 2), bond * np.cos(angle / 2), 0.0])
    positions = np.array([[k * step[0], (k % 2) * step[1], 0.0] for k in range(n)])
    return Atoms(base.get_chemical_symbols(), positions=positions - positions.mean(axis=0))


def flattened(base: Atoms, rng: np.random.Generator) -> Atoms:
    """Squashed flat along a random axis (to 5–25 %) and spread in the plane only until its
    shortest pair is 1.9–2.15 Å: a pancake whose bonds were not restored. (A planar cluster
    with proper bonds is not unphysical: the dataset holds exactly planar isomers.)"""
    out = base.copy()
    centre = out.positions.mean(axis=0)
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    x = out.positions - centre
    along = x @ axis
    x = x - np.outer(along, axis) + np.outer(rng.uniform(0.05, 0.25) * along, axis)
    out.positions = centre + x
    d = _shortest_pair(out)
    target = rng.uniform(1.9, 2.15)
    if d < target:
        in_plane = x - np.outer(x @ axis, axis)
        out.positions = centre + x + in_plane * (target / d - 1.0)
    # the spread can open the shortest pair past the target: scale back to it exactly
    out.positions = centre + (out.positions - centre) * (target / _shortest_pair(out))
    return out


KINDS: dict[str, Callable[[Atoms, np.random.Generator], Atoms]] = {
    "collapsed": collapsed,
    "torn": torn,
    "expanded": expanded,
    "gas-like": gas_like,
    "chain": chain,
    "flattened": flattened,
}


def unphysical_corpus(bases: list[Atoms], per_kind: int, seed: int = 0) -> list[tuple[str, Atoms]]:
    """(kind, structure) pairs: ``per_kind`` of each kind, from bases taken in turn."""
    rng = np.random.default_rng(seed)
    return [
        (name, make(bases[k % len(bases)], rng))
        for name, make in KINDS.items()
        for k in range(per_kind)
    ]


def _shortest_pair(atoms: Atoms) -> float:
    diff = atoms.positions[:, None, :] - atoms.positions[None, :, :]
    dist = np.sqrt((diff**2).sum(-1))
    np.fill_diagonal(dist, np.inf)
    return float(dist.min())
