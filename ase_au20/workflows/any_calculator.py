"""Evaluating many structures with any ASE calculator, and describing the calculator.

Workflows take a plain ASE ``Calculator``; ours add a batched ``predict`` and calibrated
uncertainty, which is used when present and replaced by a per-structure loop (and NaN
uncertainty) otherwise, so EMT works everywhere.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from ase_au20.calculators.factory import CalcSpec
from ase_au20.database.labelled_inputs import LEVEL, PREDICTED_BY
from ase_au20.database.store import reads_as_number


@dataclass(frozen=True)
class ModelIdentity:
    """Which model made a prediction: its name and the SHA-256 of its card (``""``: none).

    A name that reads as a number (the ``--calc`` spec of a model folder called ``2024``)
    is kept as the relative path ``./2024``: ASE refuses such a string as a row's value.
    """

    name: str
    card_sha256: str = ""

    def __post_init__(self) -> None:
        if reads_as_number(self.name):
            object.__setattr__(self, "name", f"./{self.name}")

    @classmethod
    def of(cls, calc: Calculator, name: str = "") -> ModelIdentity:
        """The identity of ``calc``: ``name`` (e.g. the ``--calc`` spec) or its class name."""
        card = getattr(calc, "card", None)
        sha = str(card.get("sha256", "")) if isinstance(card, dict) else ""
        return cls(name or type(calc).__name__, sha)

    @classmethod
    def of_spec(cls, spec: CalcSpec) -> ModelIdentity:
        """The identity of a classified ``--calc`` spec from its model card alone, without
        loading the model (the workers do)."""
        return cls(spec.text, spec.card_sha256)


TRUST_KEYS = ("energy_uncertainty", "energy_std", "domain_score", "in_domain")


def trust_of(atoms: Atoms) -> dict[str, float]:
    """The trust properties of the calculation just done on ``atoms`` (interval half-width,
    spread, domain score, verdict as 1/0), NaN where the calculator gives none (EMT)."""
    results = getattr(atoms.calc, "results", None) or {}
    return {k: float(results[k]) if k in results else float("nan") for k in TRUST_KEYS}


class TrustLog:
    """Per-step trust properties of a relaxation or MD run, copied into each trajectory
    frame's ``info`` and, with ``warn``, a warning the first time the structure is outside
    the domain (a search's local relaxations start outside by design and judge the minima)."""

    def __init__(self, what: str, warn: bool = True) -> None:
        self.what = what
        self.warn = warn
        self.series: dict[str, list[float]] = {k: [] for k in TRUST_KEYS}
        self.first_outside: int | None = None

    def record(self, atoms: Atoms, step: int) -> None:
        """Append the last calculation's values; tag ``atoms.info`` for the trajectory with
        them and with what the energy is (``energy_provenance``)."""
        atoms.info.update(energy_provenance(atoms.calc))
        values = trust_of(atoms)
        for key, value in values.items():
            self.series[key].append(value)
            if np.isfinite(value):
                atoms.info[key] = bool(value) if key == "in_domain" else value
        if values["in_domain"] == 0.0 and self.first_outside is None:
            self.first_outside = step
            verb, when = ("starts outside", "") if step == 0 else ("leaves", f" at step {step}")
            if self.warn:
                from ase_au20.calculators.base import OutsideDomainWarning

                warnings.warn(
                    f"{self.what} {verb} the model's domain of applicability{when} (domain "
                    f"score {values['domain_score']:.2f}): its energies there are extrapolations",
                    OutsideDomainWarning,
                    stacklevel=2,
                )

    def arrays(self) -> dict[str, np.ndarray]:
        """Each series as an array."""
        return {k: np.array(v, dtype=float) for k, v in self.series.items()}

    def add_to(self, res: Any, group: str) -> None:
        """Store the series in a Results object under ``group``."""
        described = {
            "energy_uncertainty": ("eV", "conformal half-width at the calculator's confidence"),
            "energy_std": ("eV", "epistemic spread of the model (NaN: it has none)"),
            "domain_score": ("", "domain of applicability score, > 1 outside (NaN: none)"),
            "in_domain": ("", "1 inside the model's domain, 0 outside, NaN: no verdict"),
        }
        for key, values in self.arrays().items():
            res.add(f"{group}/{key}", values, *described[key])

    @property
    def in_domain(self) -> bool | None:
        """The verdict of the last step (None when the calculator gives none)."""
        last = self.series["in_domain"][-1] if self.series["in_domain"] else float("nan")
        return None if not np.isfinite(last) else bool(last)


def energy_provenance(calc: Calculator) -> dict[str, str]:
    """What a calculator's energies are, for the files a workflow writes: ``level`` (its
    level of theory) for the reference, whose energies are labels; ``predicted_by`` (its
    name) for every other calculator, whose energies `db add` then refuses as labels."""
    from ase_au20.workflows.structure_files import reference_level

    card = getattr(calc, "card", None)
    level = reference_level(card) if isinstance(card, dict) else None
    if level is not None:
        return {LEVEL: level}
    return {PREDICTED_BY: str(getattr(calc, "name", "") or type(calc).__name__)}


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
