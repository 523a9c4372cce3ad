"""Which unlabelled structures are most worth a reference calculation (DFTB1, or your DFT)?

Pool: rows of the db without a label (no ``cluster_id``; search candidates and screened
structures are such rows), less those the search matched to a labelled isomer, those whose
fingerprint matches one now, repeats of an earlier pool row (the same structure screened
twice is one reference calculation), and those a model judged out of its domain. Every
calculator predicts each structure; the acquisition score, in eV, is

    score = sqrt(disagreement² + epistemic_std²) + conformal half-width

where *disagreement* is the standard deviation of the calculators' energies (e.g. KRR vs
SchNet), *epistemic_std* the largest epistemic spread a calculator reports through an
``energy_std`` property (an ensemble's std, or the shipped KRR's predictive std), and the
half-width the mean ``energy_uncertainty`` (missing values count as 0). Only structures
within ``energy_window`` eV of the lowest mean prediction and inside every calculator's
domain of applicability are eligible: the aim is to pin down the low-energy isomers.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.db.core import Database
from ase.io import write

from ase_au20.database import connect
from ase_au20.database.store import shown_url
from ase_au20.workflows.any_calculator import predict_batch
from ase_au20.workflows.candidates import known_isomers, match_known, unique_indices
from ase_au20.workflows.structure_files import predicted_structure

DEFAULT_ENERGY_WINDOW = 1.0  # eV above the lowest mean prediction


@dataclass
class Selection:
    """Scores of every eligible structure (rows sorted by decreasing score)."""

    row_ids: np.ndarray
    atoms: list[Atoms]
    energies: dict[str, np.ndarray]  # per calculator name, eV
    mean_energy: np.ndarray  # eV
    relative_energy: np.ndarray  # eV above the lowest mean prediction in the pool
    disagreement: np.ndarray  # eV
    epistemic_std: np.ndarray  # eV (NaN: no calculator reports one)
    conformal_half_width: np.ndarray  # eV (NaN: no calculator reports one)
    score: np.ndarray  # eV
    pool_size: int
    n_left_out: int = 0  # unlabelled rows not in the pool (already labelled, out of domain)

    def __len__(self) -> int:
        return len(self.row_ids)


def unlabelled_rows(db: Database) -> tuple[np.ndarray, list[Atoms], int]:
    """Row ids and structures of the pool, and how many unlabelled rows were left out.

    Left out: rows a search matched to a labelled isomer (``matches_cluster_id`` ≥ 0), rows
    whose fingerprint is within the duplicate tolerance of a labelled isomer or of an earlier pool
    row, out-of-domain rows.
    """
    ids, structures = [], []
    left_out = 0
    for row in db.select(include_data=False):
        if "cluster_id" in row:
            continue
        if row.get("matches_cluster_id", -1) >= 0 or row.get("in_domain", True) is False:
            left_out += 1
            continue
        ids.append(row.id)
        structures.append(row.toatoms())
    known, known_ids = known_isomers(db)
    matched, _ = match_known(structures, known, known_ids)
    keep = matched < 0
    first_of_each = unique_indices(structures, np.arange(len(structures)))
    keep &= np.isin(np.arange(len(structures)), first_of_each)
    left_out += int((~keep).sum())
    return (
        np.array(ids, dtype=int)[keep],
        [a for a, k in zip(structures, keep, strict=True) if k],
        left_out,
    )


def _nanmean_rows(columns: list[np.ndarray], n: int) -> np.ndarray:
    """Row-wise mean ignoring NaN, NaN where every value is missing (no warning)."""
    if not columns:
        return np.full(n, np.nan)
    stack = np.vstack(columns)
    count = np.isfinite(stack).sum(axis=0)
    total = np.nansum(stack, axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def score_candidates(
    structures: list[Atoms],
    row_ids: np.ndarray,
    calcs: Mapping[str, Calculator],
    energy_window: float | None = DEFAULT_ENERGY_WINDOW,
) -> Selection:
    """Predict every structure with every calculator and score the low-energy ones."""
    if not calcs:
        raise ValueError("select needs at least one calculator")
    if energy_window is not None and not energy_window >= 0:
        raise ValueError(f"energy_window must be >= 0, got {energy_window}")
    if not structures:
        raise ValueError(
            "no unlabelled structures to select from (run `au20-workflow search --db`)"
        )
    n = len(structures)
    energies, half_widths, spreads = {}, [], []
    inside = np.ones(n, dtype=bool)  # out of any calculator's domain: never selected
    for name, calc in calcs.items():
        implemented = getattr(calc, "implemented_properties", ())
        props = ("energy", *(p for p in ("energy_std", "in_domain") if p in implemented))
        out = predict_batch(calc, structures, props)
        if "in_domain" in out:
            inside &= np.asarray(out["in_domain"], dtype=bool)
        energies[name] = np.asarray(out["energy"], dtype=float)
        half_widths.append(np.asarray(out["energy_uncertainty"], dtype=float))
        if "energy_std" in out:
            spreads.append(np.asarray(out["energy_std"], dtype=float))
    stack = np.vstack(list(energies.values()))
    mean = stack.mean(axis=0)
    disagreement = stack.std(axis=0)
    epistemic = np.nanmax(np.vstack(spreads), axis=0) if spreads else np.full(n, np.nan)
    half_width = _nanmean_rows(half_widths, n)
    score = np.hypot(disagreement, np.nan_to_num(epistemic)) + np.nan_to_num(half_width)
    relative = mean - mean[inside].min() if inside.any() else mean - mean.min()
    eligible = inside & (np.ones(n, bool) if energy_window is None else relative <= energy_window)
    order = [i for i in np.argsort(-score, kind="stable") if eligible[i]]
    return Selection(
        row_ids=np.asarray(row_ids)[order],
        atoms=[structures[i] for i in order],
        energies={k: v[order] for k, v in energies.items()},
        mean_energy=mean[order],
        relative_energy=relative[order],
        disagreement=disagreement[order],
        epistemic_std=epistemic[order],
        conformal_half_width=half_width[order],
        score=score[order],
        pool_size=n,
    )


def export_selection(selection: Selection, n: int, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write the top ``n`` as ``select_<rank>_row<id>.xyz`` and all scores to ``scores.csv``."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    names = list(selection.energies)
    header = [
        "rank",
        "row_id",
        "selected",
        "file",
        "score_eV",
        "disagreement_eV",
        "epistemic_std_eV",
        "conformal_half_width_eV",
        "mean_energy_eV",
        "relative_energy_eV",
        *[f"energy_{k}_eV" for k in names],
    ]
    tmp = out / ".scores.csv.tmp"
    with tmp.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for rank in range(len(selection)):
            row_id = int(selection.row_ids[rank])
            name = ""
            if rank < n:
                path = out / f"select_{rank:03d}_row{row_id}.xyz"
                atoms = predicted_structure(
                    selection.atoms[rank],
                    float(selection.mean_energy[rank]),
                    "mean of " + ", ".join(names),
                    float(selection.conformal_half_width[rank]),
                )
                atoms.info.update(row_id=row_id, score=float(selection.score[rank]))
                write(path, atoms, format="extxyz")
                files[f"xyz_{rank}"] = path
                name = path.name
            values = [
                selection.score,
                selection.disagreement,
                selection.epistemic_std,
                selection.conformal_half_width,
                selection.mean_energy,
                selection.relative_energy,
                *[selection.energies[k] for k in names],
            ]
            writer.writerow(
                [rank, row_id, int(rank < n), name, *[repr(float(v[rank])) for v in values]]
            )
    files["csv"] = out / "scores.csv"
    os.replace(tmp, files["csv"])
    return files


def select_from_db(
    db_url: str | os.PathLike,
    calcs: Mapping[str, Calculator],
    n: int = 20,
    out_dir: str | os.PathLike = "select",
    energy_window: float | None = DEFAULT_ENERGY_WINDOW,
) -> tuple[Selection, dict[str, Path]]:
    """Score the unlabelled rows of ``db_url`` and export the ``n`` most informative."""
    if "://" not in str(db_url) and not Path(db_url).is_file():
        raise ValueError(f"database not found: {shown_url(db_url)}")
    row_ids, structures, left_out = unlabelled_rows(connect(db_url))
    if not structures and left_out:
        raise ValueError(
            f"all {left_out} unlabelled rows of {shown_url(db_url)} match labelled isomers or "
            "are out of domain: nothing to select"
        )
    selection = score_candidates(structures, row_ids, calcs, energy_window)
    selection.n_left_out = left_out
    return selection, export_selection(selection, n, out_dir)
