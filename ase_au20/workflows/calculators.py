"""Evaluating many structures with any ASE calculator, and describing the calculator.

Workflows take a plain ASE ``Calculator``; ours add a batched ``predict`` and calibrated
uncertainty, which is used when present and replaced by a per-structure loop (and NaN
uncertainty) otherwise, so EMT works everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator


@dataclass(frozen=True)
class ModelIdentity:
    """Which model made a prediction: its name and the SHA-256 of its card (``""``: none)."""

    name: str
    card_sha256: str = ""

    @classmethod
    def of(cls, calc: Calculator, name: str = "") -> ModelIdentity:
        """The identity of ``calc``: ``name`` (e.g. the ``--calc`` spec) or its class name."""
        card = getattr(calc, "card", None)
        sha = str(card.get("sha256", "")) if isinstance(card, dict) else ""
        return cls(name or type(calc).__name__, sha)

    def pairs(self) -> dict[str, str]:
        """The ``model`` / ``model_card_sha256`` key-value pairs of a prediction row."""
        return {"model": self.name, "model_card_sha256": self.card_sha256}


def uncertainty_properties(calc: Calculator) -> tuple[str, ...]:
    """The trust properties beyond the interval that ``calc`` implements (spread, domain)."""
    implemented = getattr(calc, "implemented_properties", ())
    return tuple(p for p in ("energy_std", "in_domain", "domain_score") if p in implemented)


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
