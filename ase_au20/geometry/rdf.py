"""Radial distribution function of a finite cluster and the bond cutoff it implies."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from ase import Atoms
from scipy.ndimage import gaussian_filter1d
from scipy.signal import argrelextrema
from scipy.spatial.distance import pdist


def number_density(atoms: Atoms) -> float:
    """Atoms per Å³ of the uniform sphere with the cluster's radius of gyration.

    That sphere has radius R = √(5/3)·Rg; unlike a convex hull it is defined for flat
    clusters too (the dataset holds planar Au20 isomers).
    """
    positions = atoms.get_positions()
    rg2 = ((positions - positions.mean(axis=0)) ** 2).sum(axis=1).mean()
    return len(atoms) / (4.0 / 3.0 * np.pi * (5.0 / 3.0 * rg2) ** 1.5)


def default_r_max(structures: Sequence[Atoms]) -> float:
    """A histogram range that holds every pair distance: the largest one plus 1 Å, rounded up."""
    return float(np.ceil(max(pdist(a.get_positions()).max() for a in structures)) + 1.0)


def radial_distribution(
    atoms: Atoms, r_max: float | None = None, dr: float = 0.02
) -> tuple[np.ndarray, np.ndarray]:
    """Bin centres r (Å) and g(r) of one cluster, normalised so that it counts neighbours.

    g(r) = H(r) / (N/2 · 4πr²ρ·dr), with H the number of pairs per bin and ρ =
    :func:`number_density`; hence Σ 4πr²ρ g(r) dr = N − 1 neighbours per atom when every
    pair distance is below ``r_max`` (default: :func:`default_r_max`). A cluster has no
    bulk, so g(r) → 0 beyond its size instead of → 1.
    """
    if len(atoms) < 2:
        raise ValueError("g(r) needs at least two atoms")
    r_max = default_r_max([atoms]) if r_max is None else r_max
    edges = np.arange(0.0, r_max + dr / 2, dr)
    counts, _ = np.histogram(pdist(atoms.get_positions()), bins=edges)
    r = 0.5 * (edges[1:] + edges[:-1])
    shell = 4.0 * np.pi * r**2 * number_density(atoms) * dr
    return r, counts / (len(atoms) / 2.0 * shell)


def mean_radial_distribution(
    structures: Sequence[Atoms], r_max: float | None = None, dr: float = 0.02
) -> tuple[np.ndarray, np.ndarray]:
    """Bin centres and the mean of :func:`radial_distribution` over ``structures``."""
    if not structures:
        raise ValueError("mean g(r) needs at least one structure")
    r_max = default_r_max(structures) if r_max is None else r_max
    curves = [radial_distribution(a, r_max, dr) for a in structures]
    return curves[0][0], np.mean([g for _, g in curves], axis=0)


def smooth_rdf(r: np.ndarray, g: np.ndarray, width: float = 0.05) -> np.ndarray:
    """g(r) convolved with a Gaussian of standard deviation ``width`` Å (its sum is kept)."""
    step = float(r[1] - r[0])
    return gaussian_filter1d(
        np.asarray(g, dtype=float), sigma=max(width / step, 1e-9), mode="nearest"
    )


def first_minimum_cutoff(r: np.ndarray, g: np.ndarray, smooth: float = 0.05) -> float:
    """The first minimum of g(r) after its first peak, after Gaussian smoothing (``smooth`` Å).

    This is the usual data-driven bond cutoff: it separates the first neighbour shell from
    the rest. Raises ``ValueError`` when g(r) shows no peak followed by a minimum.
    """
    r = np.asarray(r, dtype=float)
    g = np.asarray(g, dtype=float)
    if r.shape != g.shape or r.ndim != 1 or len(r) < 5:
        raise ValueError("r and g must be 1-D arrays of the same length (at least 5 bins)")
    smoothed = smooth_rdf(r, g, smooth)
    peaks = argrelextrema(smoothed, np.greater)[0]
    if len(peaks) == 0:
        raise ValueError("g(r) has no peak: cannot choose a cutoff")
    first_peak = peaks[np.argmax(smoothed[peaks] > 0.1 * smoothed.max())]
    i = first_peak
    while i + 1 < len(smoothed) and smoothed[i + 1] < smoothed[i]:
        i += 1
    j = i  # a flat minimum (an empty gap between shells) is cut in its middle
    while j + 1 < len(smoothed) and smoothed[j + 1] == smoothed[i]:
        j += 1
    if j == len(smoothed) - 1:
        raise ValueError("g(r) has no minimum after its first peak: cannot choose a cutoff")
    return float(r[(i + j) // 2])
