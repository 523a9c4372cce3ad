"""From raw local minima to ranked search candidates: validity, de-duplication, ranking, db rows.

A minimum is *valid* when no pair is closer than 2.3 Å (shorter Au–Au contacts mean the
potential left its training domain) and its bond graph at ``conventions.BOND_CUTOFF`` is
one piece. Minima within ``conventions.DUPLICATE_TOLERANCE`` of each other are merged,
keeping the lowest energy, and matched against the database's isomers with the same one.
Candidates are ranked by predicted energy or by the lower confidence bound E − κ·u
(u: the calculator's ``energy_uncertainty``; NaN, as for EMT, counts as 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import Atoms
from ase.db.core import Database

from ase_au20.database import load_rows
from ase_au20.database.migrate import require_migrated
from ase_au20.database.predictions import prediction_pairs
from ase_au20.database.writer_lock import writer_lock
from ase_au20.geometry.conventions import BOND_CUTOFF, DUPLICATE_TOLERANCE
from ase_au20.geometry.fingerprint import fingerprint_matrix, max_deviation
from ase_au20.geometry.metrics import connected
from ase_au20.validation import min_pair_distance
from ase_au20.workflows.any_calculator import ModelIdentity

MIN_PAIR_DISTANCE = 2.3  # Å
SEARCH_SOURCE = "search"


@dataclass
class Candidate:
    """A distinct valid minimum with its predicted energy, uncertainty and ranking score."""

    atoms: Atoms
    energy: float  # eV, predicted by the search calculator
    uncertainty: float  # eV, conformal half-width (NaN when the calculator has none)
    lcb: float  # eV, energy − κ·uncertainty
    run: int
    step: int
    std: float = np.nan  # eV, epistemic spread (NaN when the calculator has none)
    in_domain: bool | None = None  # the calculator's domain verdict (None: it gives none)
    gap: float = np.nan  # eV, energy above the lowest candidate
    gap_interval: tuple[float, float] = (np.nan, np.nan)  # eV, calibrated interval of the gap
    p_below_best: float = np.nan  # probability it is really lower than the lowest candidate
    matches_cluster_id: int = -1  # known isomer with the same fingerprint, or -1
    match_distance: float = np.inf  # Å, fingerprint distance to the closest known isomer


def invalid_reason(
    atoms: Atoms, bond_cutoff: float = BOND_CUTOFF, min_distance: float = MIN_PAIR_DISTANCE
) -> str:
    """Why a minimum is rejected (``""`` when it is valid)."""
    dmin = min_pair_distance(atoms.get_positions())
    if dmin < min_distance:
        return f"pair at {dmin:.2f} Å < {min_distance} Å"
    if not connected(atoms, bond_cutoff):
        return f"fragmented at {bond_cutoff:.2f} Å"
    return ""


def unique_indices(
    structures: Sequence[Atoms], energies: Sequence[float], tol: float = DUPLICATE_TOLERANCE
) -> list[int]:
    """Indices of one structure per fingerprint cluster (the lowest energy), lowest first."""
    if not structures:
        return []
    fps = fingerprint_matrix(structures)
    kept: list[int] = []
    for index in np.argsort(energies, kind="stable"):
        if not kept or max_deviation(fps[index], fps[kept]).min() >= tol:
            kept.append(int(index))
    return kept


def fill_gaps_to_best(
    calc: Any, candidates: Sequence[Candidate], predicted: dict[str, Any] | None = None
) -> None:
    """Each candidate's gap to the lowest-energy candidate; with a calculator that offers
    ``energy_differences`` also the gap's calibrated interval and the probability that the
    candidate is the lower one ("could this be the ground state instead?"). ``predicted``:
    the calculator's predictions of the candidates, in their order, reused if complete."""
    if not candidates:
        return
    energies = np.array([c.energy for c in candidates])
    best = int(np.argmin(energies))
    for cand, energy in zip(candidates, energies, strict=True):
        cand.gap = float(energy - energies[best])
    if not hasattr(calc, "energy_differences"):
        return
    pairs = [(k, best) for k in range(len(candidates))]
    out = calc.energy_differences([c.atoms for c in candidates], pairs, predicted=predicted)
    for cand, (lo, hi), p in zip(candidates, out["interval"], out["p_lower"], strict=True):
        cand.gap_interval, cand.p_below_best = (float(lo), float(hi)), float(p)


def lower_confidence_bound(energy: np.ndarray, uncertainty: np.ndarray, kappa: float) -> np.ndarray:
    """E − κ·u, with a missing (NaN) uncertainty counted as zero."""
    if not kappa >= 0:
        raise ValueError(f"kappa must be >= 0, got {kappa}")
    return np.asarray(energy) - kappa * np.nan_to_num(np.asarray(uncertainty), nan=0.0)


def match_known(
    structures: Sequence[Atoms],
    known: Sequence[Atoms],
    known_ids: Sequence[int],
    tol: float = DUPLICATE_TOLERANCE,
    scale_invariant: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Closest known isomer of each structure: its cluster_id (or -1 beyond ``tol``) and distance.

    ``scale_invariant`` compares shapes: every fingerprint is rescaled to the mean pair
    distance of the known set first, so a potential with a different bond length (EMT)
    can still be recognised as having found a known isomer.
    """
    if not structures:
        return np.zeros(0, dtype=int), np.zeros(0)
    if not known:
        return np.full(len(structures), -1), np.full(len(structures), np.inf)
    fps, known_fps = fingerprint_matrix(structures), fingerprint_matrix(known)
    if scale_invariant:
        scale = known_fps.mean()
        fps = fps / fps.mean(axis=1, keepdims=True) * scale
        known_fps = known_fps / known_fps.mean(axis=1, keepdims=True) * scale
    dist = max_deviation(fps, known_fps)
    closest = dist.argmin(axis=1)
    best = dist[np.arange(len(structures)), closest]
    ids = np.where(best < tol, np.asarray(known_ids)[closest], -1)
    return ids.astype(int), best


def known_isomers(db: Database) -> tuple[list[Atoms], np.ndarray]:
    """Structures and cluster_ids of the labelled (non-search) rows of ``db``."""
    isomers = load_rows(db)
    return isomers.atoms, isomers.ids


def search_rows(db: Database) -> list[Atoms]:
    """Structures already stored in ``db`` by earlier searches."""
    return [row.toatoms() for row in db.select(source=SEARCH_SOURCE)]


def store_candidates(
    db: Database,
    candidates: Sequence[Candidate],
    extra: dict[str, Any],
    model: ModelIdentity,
    tol: float = DUPLICATE_TOLERANCE,
    db_url: str | None = None,
) -> tuple[list[int], int]:
    """Write new candidates as prediction rows (``source="search"``); skip ones already stored.

    Returns the row ids written (one per candidate, 0 when skipped) and the number skipped.
    The read-compare-write runs under the writer lock of ``db_url`` (SQLite files).
    """
    with writer_lock(db_url or db.filename):
        require_migrated(db, db_url or db.filename)
        return _store_new(db, candidates, extra, model, tol)


def _store_new(
    db: Database,
    candidates: Sequence[Candidate],
    extra: dict[str, Any],
    model: ModelIdentity,
    tol: float,
) -> tuple[list[int], int]:
    """The body of :func:`store_candidates`, under its lock."""
    existing = search_rows(db)
    existing_fps = fingerprint_matrix(existing) if existing else None
    row_ids: list[int] = []
    skipped = 0
    with db:
        for rank, cand in enumerate(candidates):
            if existing_fps is not None:
                fp = fingerprint_matrix([cand.atoms])
                if max_deviation(fp, existing_fps).min() < tol:
                    row_ids.append(0)
                    skipped += 1
                    continue
            atoms = cand.atoms.copy()
            atoms.calc = None  # a prediction is never stored as the row's energy
            kvp = {
                "source": SEARCH_SOURCE,
                **prediction_pairs(
                    cand.energy,
                    cand.uncertainty,
                    cand.std,
                    cand.in_domain,
                    model.name,
                    model.card_sha256,
                ),
                "lcb": float(cand.lcb),
                "search_rank": rank,
                "search_run": int(cand.run),
                "matches_cluster_id": int(cand.matches_cluster_id),
                **extra,
            }
            if np.isfinite(cand.match_distance):
                kvp["match_distance"] = float(cand.match_distance)
            row_ids.append(db.write(atoms, key_value_pairs=kvp))
    return row_ids, skipped
