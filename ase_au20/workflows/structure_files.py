"""Structures written by workflows: ``ase.io.read`` gets them back with their energy.

A predicted energy goes into extended xyz as ``energy=`` (so ``read(f).get_potential_energy()``
works) and the frame says whose prediction it is in ``predicted_by``; `db add` refuses such
frames, so a prediction can never come back into the database as a label. The reference's
energies are labels: their frames say their ``level`` instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from ase_au20.database.labelled_inputs import LEVEL, PREDICTED_BY


def reference_level(model_card: dict[str, Any]) -> str | None:
    """The level of theory of a run whose calculator is the reference (its energies are
    labels), None for a model's run."""
    reference = model_card.get("reference")
    return str(reference["level"]) if isinstance(reference, dict) else None


def predicted_structure(
    atoms: Atoms,
    energy: float,
    model: str,
    uncertainty: float = np.nan,
    forces: np.ndarray | None = None,
    level: str | None = None,
) -> Atoms:
    """A copy of ``atoms`` carrying a predicted energy (and forces), marked as a prediction;
    with ``level`` (the reference's) marked as a label at that level instead."""
    out = Atoms(atoms.numbers, positions=atoms.get_positions())
    results = {"energy": float(energy)}
    if forces is not None:
        results["forces"] = np.asarray(forces)
    out.calc = SinglePointCalculator(out, **results)
    if level is None:
        out.info[PREDICTED_BY] = model
    else:
        out.info[LEVEL] = level
    if np.isfinite(uncertainty):
        out.info["energy_uncertainty"] = float(uncertainty)
    return out
