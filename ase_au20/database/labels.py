"""Energy-derived labels: ΔE above the lowest isomer, low/mid/high buckets, outliers."""

from __future__ import annotations

import numpy as np

OUTLIER_Z = 3.0  # robust z-score above which an isomer is flagged
MAD_TO_SIGMA = 0.6745  # Φ⁻¹(0.75): makes the MAD a consistent estimate of σ for normal data
MAX_PER_ATOM_DEVIATION = 5.0  # eV/atom; above gold's cohesive energy (3.8), so no isomer pair


def implausible_energies(
    energies: np.ndarray, n_atoms: int, centre: float | None = None
) -> list[str]:
    """A reason for each energy whose per-atom value is far from ``centre`` (``""`` if fine).

    ``centre`` is the per-atom energy the set is judged against (eV/atom; default: the
    median of ``energies``). A typo (−15572.09 for −1557.209) or a unit slip (Hartree,
    kJ/mol) moves a per-atom energy by tens of eV or more; two isomers cannot differ by
    more than the energy of pulling every atom apart (the dataset spans 1.3 eV/atom).
    """
    per_atom = np.asarray(energies, dtype=float) / n_atoms
    if centre is None:
        centre = float(np.median(per_atom)) if len(per_atom) else 0.0
    return [
        f"energy {e * n_atoms:.6f} eV is {e - centre:+.3f} eV/atom from the others' "
        f"{centre:.4f} eV/atom (more than {MAX_PER_ATOM_DEVIATION} eV/atom: a typo or unit slip?)"
        if abs(e - centre) > MAX_PER_ATOM_DEVIATION
        else ""
        for e in per_atom
    ]


def bucket_edges(delta_e: np.ndarray) -> list[float]:
    """The 25th and 75th percentiles of ΔE (eV): the low/mid and mid/high boundaries."""
    q25, q75 = np.percentile(np.asarray(delta_e, dtype=float), [25.0, 75.0])
    return [float(q25), float(q75)]


def assign_buckets(delta_e: np.ndarray, edges: list[float]) -> np.ndarray:
    """``low`` below the first edge, ``high`` above the second, ``mid`` in between (inclusive)."""
    delta_e = np.asarray(delta_e, dtype=float)
    out = np.full(delta_e.shape, "mid", dtype=object)
    out[delta_e < edges[0]] = "low"
    out[delta_e > edges[1]] = "high"
    return out.astype(str)


def robust_center_scale(delta_e: np.ndarray) -> tuple[float, float]:
    """Median and median absolute deviation of ΔE (eV)."""
    delta_e = np.asarray(delta_e, dtype=float)
    median = float(np.median(delta_e))
    return median, float(np.median(np.abs(delta_e - median)))


def robust_outliers(
    delta_e: np.ndarray, median: float, mad: float, threshold: float = OUTLIER_Z
) -> np.ndarray:
    """True where the robust z-score 0.6745·|ΔE − median|/MAD exceeds ``threshold``."""
    delta_e = np.asarray(delta_e, dtype=float)
    if mad == 0.0:
        return np.zeros(delta_e.shape, dtype=bool)
    return MAD_TO_SIGMA * np.abs(delta_e - median) / mad > threshold
