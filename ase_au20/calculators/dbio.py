"""Store a structure with its prediction and calibrated error bar in an ASE database.

A prediction is never the row's ``energy`` (that is a label: DFTB1 or an oracle's): the
predicted energy, interval, spread, domain verdict, confidence and model go into key-value
pairs, where ``ase db`` can show and filter them, and predicted forces into the row's data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import Atoms
from ase.db.core import Database

from ase_au20.database.predictions import prediction_pairs

PREDICTION_KEYS = ("pred_energy", "pred_lo", "pred_hi", "confidence", "model")


@dataclass
class StoredPrediction:
    """A structure read back from the db with its predicted energy, forces and error bar."""

    atoms: Atoms
    energy: float
    forces: np.ndarray | None
    energy_uncertainty: float
    energy_interval: np.ndarray
    confidence: float
    model: str
    in_domain: bool | None


def write_prediction(
    db: Database,
    atoms: Atoms,
    calc: Any,
    forces: bool = True,
    **key_value_pairs: Any,
) -> int:
    """Predict ``atoms`` with one of our calculators and write the row; returns its id."""
    wanted = ["energy", "energy_uncertainty", "energy_interval", "in_domain"]
    wanted += ["energy_std"] if "energy_std" in calc.implemented_properties else []
    wanted += ["forces"] if forces else []
    work = atoms.copy()
    work.calc = calc
    values = {p: calc.get_property(p, work) for p in wanted}
    lo, hi = (float(x) for x in values["energy_interval"])
    stored = Atoms(atoms.numbers, positions=atoms.get_positions(), cell=atoms.cell, pbc=atoms.pbc)
    kvp = {
        **prediction_pairs(
            values["energy"],
            values["energy_uncertainty"],
            values.get("energy_std", np.nan),
            values["in_domain"],
            calc.card.get("model_type", type(calc).__name__),
            calc.card.get("sha256", ""),
        ),
        "pred_lo": lo,
        "pred_hi": hi,
        "confidence": float(calc.confidence),
        **key_value_pairs,
    }
    data = {"pred_forces": np.asarray(values["forces"])} if forces else {}
    return db.write(stored, key_value_pairs=kvp, data=data)


def read_prediction(db: Database, selection: Any = None, **query: Any) -> StoredPrediction:
    """Read one row written by :func:`write_prediction` (same selection syntax as ``db.get``)."""
    row = db.get(selection, **query)
    missing = [k for k in PREDICTION_KEYS if k not in row.key_value_pairs]
    if missing:
        raise ValueError(f"row {row.id} has no prediction keys {missing}: not written by us")
    forces = row.data.get("pred_forces")
    return StoredPrediction(
        atoms=row.toatoms(),
        energy=float(row.pred_energy),
        forces=None if forces is None else np.asarray(forces),
        energy_uncertainty=float(row.get("pred_uncertainty", np.nan)),
        energy_interval=np.array([row.pred_lo, row.pred_hi], dtype=float),
        confidence=float(row.confidence),
        model=str(row.model),
        in_domain=row.get("in_domain"),
    )
