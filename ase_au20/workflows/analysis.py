"""Task 2: stability analysis of the isomer set — ΔE statistics, lowest isomers, g(r), structure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from ase import Atoms
from scipy import stats
from tqdm.auto import tqdm

from ase_au20.geometry.conventions import BOND_CUTOFF
from ase_au20.geometry.metrics import structure_metrics
from ase_au20.geometry.rdf import default_r_max, mean_radial_distribution, radial_distribution
from ase_au20.workflows.any_calculator import predict_batch

STAT_NAMES = (
    "count",
    "n_distinct",
    "mean",
    "std",
    "min",
    "q25",
    "median",
    "q75",
    "max",
    "skewness",
    "kurtosis",
)


@dataclass
class AnalysisResult:
    """Everything the analysis computed; energies in eV, lengths in Å."""

    ids: np.ndarray  # every isomer, cluster_id order
    delta_e: np.ndarray
    statistics: dict[str, float]  # over all isomers (see delta_e_statistics)
    lowest: pd.DataFrame  # n lowest distinct isomers (copies collapsed) with the structure
    lowest_atoms: list[Atoms]
    r: np.ndarray
    g_ground_state: np.ndarray
    g_mean_lowest: np.ndarray
    cutoff: float  # Å, the bond cutoff of the structural table (conventions.BOND_CUTOFF)


def delta_e_statistics(delta_e: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    """Count, distinct geometries, mean, std, min, quartiles, max, skewness, excess kurtosis."""
    delta_e = np.asarray(delta_e, dtype=float)
    if len(delta_e) < 2:
        raise ValueError(f"need at least two isomers for statistics, got {len(delta_e)}")
    q25, median, q75 = np.percentile(delta_e, [25, 50, 75])
    return {
        "count": float(len(delta_e)),
        "n_distinct": float(len(np.unique(groups))),
        "mean": float(delta_e.mean()),
        "std": float(delta_e.std(ddof=1)),
        "min": float(delta_e.min()),
        "q25": float(q25),
        "median": float(median),
        "q75": float(q75),
        "max": float(delta_e.max()),
        "skewness": float(stats.skew(delta_e)),
        "kurtosis": float(stats.kurtosis(delta_e)),
    }


def lowest_distinct(energies: np.ndarray, groups: np.ndarray, n: int) -> np.ndarray:
    """Indices of the ``n`` lowest-energy isomers, one per duplicate group (its lowest copy)."""
    order = np.argsort(energies, kind="stable")
    _, first = np.unique(groups[order], return_index=True)
    return order[np.sort(first)][:n]


def run_analysis(
    isomers, n_lowest: int = 10, symmetry_tol: float = 0.1, progress: bool = True
) -> AnalysisResult:
    """Analyse an ``IsomerSet`` (see ``ase_au20.database.load_rows``)."""
    if n_lowest < 1:
        raise ValueError(f"n_lowest must be >= 1, got {n_lowest}")
    statistics = delta_e_statistics(isomers.delta_e, isomers.groups)
    picked = lowest_distinct(np.asarray(isomers.energies), np.asarray(isomers.groups), n_lowest)
    atoms = [isomers.atoms[i].copy() for i in picked]
    for a in atoms:
        a.calc = None
    r_max = default_r_max(atoms)
    r, g_mean = mean_radial_distribution(atoms, r_max)
    _, g_ground = radial_distribution(atoms[0], r_max)
    rows = []
    for index, structure in zip(
        picked, tqdm(atoms, desc="structures", unit="isomer", disable=not progress), strict=True
    ):
        group = isomers.groups[index]
        copies = np.flatnonzero((isomers.groups == group) & (np.arange(len(isomers)) != index))
        rows.append(
            {
                "cluster_id": int(isomers.ids[index]),
                "energy": float(isomers.energies[index]),
                "delta_e": float(isomers.delta_e[index]),
                "dup_group": int(group),
                "n_copies": len(copies) + 1,
                "copy_ids": " ".join(str(i) for i in sorted(isomers.ids[copies].tolist())),
                **structure_metrics(structure, BOND_CUTOFF, symmetry_tol).as_dict(),
            }
        )
    return AnalysisResult(
        ids=np.asarray(isomers.ids),
        delta_e=np.asarray(isomers.delta_e, dtype=float),
        statistics=statistics,
        lowest=pd.DataFrame(rows),
        lowest_atoms=atoms,
        r=r,
        g_ground_state=g_ground,
        g_mean_lowest=g_mean,
        cutoff=BOND_CUTOFF,
    )


def recheck_with_reference(reference: Any, result: AnalysisResult) -> pd.DataFrame:
    """The lowest distinct isomers re-evaluated by the ``reference`` beside their labels:
    each one's energy and gap to the lowest by both, and the difference. With DFTB1 as the
    reference they agree to ~1e-4 eV: a check that the database holds the reference's
    labels, and that their ordering is the reference's."""
    label = result.lowest["energy"].to_numpy(dtype=float)
    energy = np.asarray(
        predict_batch(reference, result.lowest_atoms, ("energy",))["energy"], dtype=float
    )
    return pd.DataFrame(
        {
            "cluster_id": result.lowest["cluster_id"].to_numpy(),
            "label_energy": label,
            "reference_energy": energy,
            "difference": energy - label,
            "label_gap": label - label[0],
            "reference_gap": energy - energy[0],
        }
    )


def ground_state_contest(calc: Any, result: AnalysisResult) -> pd.DataFrame:
    """Which of the lowest isomers could be the ground state in the eyes of a model: each
    isomer's predicted gap to the lowest DFTB1 isomer, the gap's calibrated interval and the
    probability that it is really lower (calculators with ``energy_differences``), beside
    the labels' (DFTB1) gap."""
    atoms = result.lowest_atoms
    pairs = [(k, 0) for k in range(len(atoms))]
    table = pd.DataFrame(
        {
            "cluster_id": result.lowest["cluster_id"].to_numpy(),
            "label_gap": result.lowest["delta_e"].to_numpy() - result.lowest["delta_e"].iloc[0],
        }
    )
    if hasattr(calc, "energy_differences"):
        out = calc.energy_differences(atoms, pairs)
        table["model_gap"] = out["delta"]
        table["gap_lo"], table["gap_hi"] = out["interval"][:, 0], out["interval"][:, 1]
        table["p_lower"] = out["p_lower"]
        table["in_domain"] = out["in_domain"]
    else:
        energies = np.asarray(predict_batch(calc, atoms, ("energy",))["energy"], dtype=float)
        table["model_gap"] = energies - energies[0]
    return table
