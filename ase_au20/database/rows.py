"""Reading isomer rows back as numpy arrays plus Atoms: the input of every model and workflow."""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.db.core import Database
from ase.db.row import AtomsRow

from ase_au20.database.splits import SPLIT_NAMES
from ase_au20.database.store import connect

NEW_SPLIT = "new"  # rows that `db add` of older versions kept outside the splits
ROW_SPLITS = (*SPLIT_NAMES, NEW_SPLIT)


@dataclass
class IsomerSet:
    """Isomers in cluster_id order; every field has one entry per isomer."""

    ids: np.ndarray  # cluster_id (int)
    energies: np.ndarray  # total DFTB1 energy, eV
    delta_e: np.ndarray  # energy above the database's energy_reference, eV
    groups: np.ndarray  # dup_group (int)
    folds: np.ndarray  # CV fold 0..4 for train/val rows, -1 otherwise
    buckets: np.ndarray  # "low" | "mid" | "high"
    is_outlier: np.ndarray  # bool
    splits: np.ndarray  # "train" | "val" | "calib" | "test" (| "new": older `db add` rows)
    atoms: list[Atoms]  # each with a SinglePointCalculator holding the energy

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        """Counts per split and the energy range, not every value."""
        if len(self) == 0:
            return "IsomerSet(0 isomers)"
        names, counts = np.unique(self.splits, return_counts=True)
        splits = ", ".join(f"{n} {c}" for n, c in zip(names, counts, strict=True))
        return (
            f"IsomerSet({len(self)} isomers: {splits}; ids {int(self.ids.min())}-"
            f"{int(self.ids.max())}; E {self.energies.min():.6f} to {self.energies.max():.6f} eV)"
        )

    def subset(self, selection: np.ndarray | Sequence[int] | Sequence[bool]) -> IsomerSet:
        """The isomers picked by a boolean mask or integer indices."""
        index = np.asarray(selection)
        if index.dtype == bool:
            if index.shape != (len(self),):
                raise ValueError(f"mask of length {index.shape} for {len(self)} isomers")
            index = np.flatnonzero(index)
        index = index.astype(int)
        values = {f.name: getattr(self, f.name)[index] for f in fields(self) if f.name != "atoms"}
        return IsomerSet(**values, atoms=[self.atoms[i] for i in index])


def _row_atoms(row: AtomsRow) -> Atoms:
    """Atoms of a row with a SinglePointCalculator carrying its energy (faster than toatoms)."""
    atoms = Atoms(numbers=row.numbers, positions=row.positions, cell=row.cell, pbc=row.pbc)
    atoms.calc = SinglePointCalculator(atoms, energy=float(row.energy))
    return atoms


def _isomer_rows(db: Database) -> list[AtomsRow]:
    """All rows with a cluster_id and a finite energy label, read over one connection when
    the backend allows it; a row without one (written by an older version) is reported once
    in a warning and left out, so it breaks no verb."""
    if getattr(db, "connection", True) is None:  # SQLite outside a transaction
        with db:
            rows = list(db.select("cluster_id", include_data=False))
    else:
        rows = list(db.select("cluster_id", include_data=False))
    broken = [row for row in rows if not math.isfinite(row.get("energy", math.nan))]
    if broken:
        ids = ", ".join(str(row.id) for row in broken[:10])
        warnings.warn(
            f"{len(broken)} isomer row(s) without a finite energy label left out (ids {ids}"
            f"{', …' if len(broken) > 10 else ''}): delete them with "
            f"`ase db DB id=<id> --delete`",
            UserWarning,
            stacklevel=3,
        )
    return [row for row in rows if math.isfinite(row.get("energy", math.nan))]


def load_rows(
    db: Database | str | os.PathLike[str], split: str | Sequence[str] | None = None
) -> IsomerSet:
    """Isomers of ``db`` (path, URL or open Database), optionally restricted to split name(s).

    Only rows with a ``cluster_id`` are isomers; others (e.g. search candidates) are skipped.
    """
    if not isinstance(db, Database):
        if not isinstance(db, str) or "://" not in db:
            path = os.fspath(db)
            if not os.path.isfile(path):
                raise ValueError(f"database not found: {path}")
        db = connect(db)
    wanted = None if split is None else {split} if isinstance(split, str) else set(split)
    if wanted is not None and not wanted <= set(ROW_SPLITS):
        unknown = ", ".join(sorted(wanted - set(ROW_SPLITS)))
        raise ValueError(f"unknown split {unknown}: use {', '.join(ROW_SPLITS)}")
    rows = [row for row in _isomer_rows(db) if wanted is None or row.get("split") in wanted]
    rows.sort(key=lambda row: row.cluster_id)
    return IsomerSet(
        ids=np.array([row.cluster_id for row in rows], dtype=int),
        energies=np.array([row.energy for row in rows], dtype=float),
        delta_e=np.array([row.delta_e for row in rows], dtype=float),
        groups=np.array([row.dup_group for row in rows], dtype=int),
        folds=np.array([row.fold for row in rows], dtype=int),
        buckets=np.array([row.bucket for row in rows], dtype=str),
        is_outlier=np.array([bool(row.is_outlier) for row in rows], dtype=bool),
        splits=np.array([row.split for row in rows], dtype=str),
        atoms=[_row_atoms(row) for row in rows],
    )
