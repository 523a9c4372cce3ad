"""Evaluating many structures with any ASE calculator, and describing the calculator.

Workflows take a plain ASE ``Calculator``; ours add a batched ``predict`` and calibrated
uncertainty, which is used when present and replaced by a per-structure loop (and NaN
uncertainty) otherwise, so EMT works everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator


def model_card_of(calc: Calculator) -> dict[str, Any]:
    """The model card of one of our calculators, or a minimal description of any other."""
    card = getattr(calc, "card", None)
    if isinstance(card, dict):
        return card
    return {"calculator": type(calc).__name__, "parameters": dict(getattr(calc, "parameters", {}))}


def predict_batch(
    calc: Calculator,
    structures: Sequence[Atoms],
    properties: Sequence[str] = ("energy",),
) -> dict[str, np.ndarray]:
    """Evaluate ``properties`` for every structure; always returns ``energy_uncertainty``.

    Uses ``calc.predict`` (batched, one device call) when the calculator offers it.
    """
    if hasattr(calc, "predict"):
        wanted = tuple(dict.fromkeys([*properties, "energy_uncertainty"]))
        return calc.predict(list(structures), properties=wanted)
    out: dict[str, list[Any]] = {p: [] for p in properties}
    for atoms in structures:
        atoms = atoms.copy()
        atoms.calc = calc
        for prop in properties:
            out[prop].append(np.asarray(atoms.calc.get_property(prop, atoms)))
    result = {p: np.asarray(v) for p, v in out.items()}
    result["energy_uncertainty"] = np.full(len(structures), np.nan)
    return result
