"""Choosing a calculator by name and evaluating many structures with any ASE calculator.

Workflows take a plain ASE ``Calculator``; ours add a batched ``predict`` and calibrated
uncertainty, which is used when present and replaced by a per-structure loop (and NaN
uncertainty) otherwise, so EMT works everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

CALCULATOR_NAMES = ("schnet", "krr", "emt")


def make_calculator(spec: str, device: str = "auto") -> Calculator:
    """Build a calculator from ``schnet``, ``krr``, ``emt`` or a trained model directory."""
    name = spec.lower()
    if name == "emt":
        from ase.calculators.emt import EMT

        return EMT()
    if name == "schnet":
        from ase_au20.calculators.schnet import SchNetAu20

        return SchNetAu20(device=device)
    if name == "krr":
        from ase_au20.calculators.krr import KRRAu20

        return KRRAu20()
    path = Path(spec)
    card_path = path / "card.json"
    if not card_path.is_file():
        raise ValueError(
            f"unknown calculator {spec!r}: use one of {', '.join(CALCULATOR_NAMES)} "
            "or a trained model directory containing card.json"
        )
    model_type = json.loads(card_path.read_text()).get("model_type")
    if model_type == "schnet":
        from ase_au20.calculators.schnet import SchNetAu20

        return SchNetAu20(model=path, device=device)
    if model_type == "krr":
        from ase_au20.calculators.krr import KRRAu20

        return KRRAu20(model=path)
    raise ValueError(f"{card_path}: unknown model_type {model_type!r}")


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
