"""Store a structure with its prediction and calibrated error bar in an ASE database.

``ase.db`` keeps only standard results (energy, forces, ...) of a calculator, so the
uncertainty, interval, confidence and model name go into key-value pairs, where
``ase db`` can also show and filter them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.db.core import Database

PREDICTION_KEYS = ("energy_uncertainty", "energy_lo", "energy_hi", "confidence", "model")


@dataclass
class StoredPrediction:
    """A structure read back from the db with its energy, forces and error bar."""

    atoms: Atoms
    energy: float
    forces: np.ndarray | None
    energy_uncertainty: float
    energy_interval: np.ndarray
    confidence: float
    model: str


def write_prediction(
    db: Database,
    atoms: Atoms,
    calc: Any,
    forces: bool = True,
    **key_value_pairs: Any,
) -> int:
    """Predict ``atoms`` with one of our calculators and write the row; returns its id."""
    wanted = ["energy", "energy_uncertainty", "energy_interval", *(["forces"] if forces else [])]
    work = atoms.copy()
    work.calc = calc
    values = {p: calc.get_property(p, work) for p in wanted}
    lo, hi = (float(x) for x in values["energy_interval"])
    stored = atoms.copy()
    stored.calc = SinglePointCalculator(
        stored,
        energy=float(values["energy"]),
        free_energy=float(values["energy"]),
        forces=values.get("forces"),
    )
    kvp = {
        "energy_uncertainty": float(values["energy_uncertainty"]),
        "energy_lo": lo,
        "energy_hi": hi,
        "confidence": float(calc.confidence),
        "model": f"{type(calc).__name__}:{calc.card.get('model_type', '?')}",
        **key_value_pairs,
    }
    return db.write(stored, key_value_pairs=kvp)


def read_prediction(db: Database, selection: Any = None, **query: Any) -> StoredPrediction:
    """Read one row written by :func:`write_prediction` (same selection syntax as ``db.get``)."""
    row = db.get(selection, **query)
    missing = [k for k in PREDICTION_KEYS if k not in row.key_value_pairs]
    if missing:
        raise ValueError(f"row {row.id} has no prediction keys {missing}: not written by us")
    atoms = row.toatoms()
    forces = np.asarray(row.forces) if row.get("forces") is not None else None
    return StoredPrediction(
        atoms=atoms,
        energy=float(row.energy),
        forces=forces,
        energy_uncertainty=float(row.energy_uncertainty),
        energy_interval=np.array([row.energy_lo, row.energy_hi], dtype=float),
        confidence=float(row.confidence),
        model=str(row.model),
    )
