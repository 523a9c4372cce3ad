"""Structures written by workflows: ``ase.io.read`` gets them back with their energy.

A predicted energy goes into extended xyz as ``energy=`` (so ``read(f).get_potential_energy()``
works) and the frame says whose prediction it is in ``predicted_by``; `db add` refuses such
frames, so a prediction can never come back into the database as a label.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from ase_au20.database.labelled_inputs import PREDICTED_BY


def predicted_structure(
    atoms: Atoms,
    energy: float,
    model: str,
    uncertainty: float = np.nan,
    forces: np.ndarray | None = None,
) -> Atoms:
    """A copy of ``atoms`` carrying a predicted energy (and forces), marked as a prediction."""
    out = Atoms(atoms.numbers, positions=atoms.get_positions())
    results = {"energy": float(energy)}
    if forces is not None:
        results["forces"] = np.asarray(forces)
    out.calc = SinglePointCalculator(out, **results)
    out.info[PREDICTED_BY] = model
    if np.isfinite(uncertainty):
        out.info["energy_uncertainty"] = float(uncertainty)
    return out
