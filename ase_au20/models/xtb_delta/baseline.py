"""The GFN1-xTB baseline through tblite's ASE calculator: energy and forces, or a clear error.

The settings live in the model card; an SCF that does not converge within
``max_iterations`` (which also bounds the time of a call) is a ``BaselineError``, never a
silent number.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from ase import Atoms


class BaselineError(ValueError):
    """The xTB baseline failed for a structure (SCF not converged, tblite missing)."""


@dataclass(frozen=True)
class XtbSettings:
    """tblite settings: method, electronic temperature (K), accuracy, SCF iteration cap."""

    method: str = "GFN1-xTB"
    electronic_temperature: float = 300.0
    accuracy: float = 1.0
    max_iterations: int = 250

    def __post_init__(self) -> None:
        if self.method != "GFN1-xTB":
            raise ValueError(
                f"only GFN1-xTB is supported (GFN2 does not converge on Au20), got {self.method!r}"
            )
        if not self.electronic_temperature > 0 or not self.accuracy > 0:
            raise ValueError("electronic_temperature and accuracy must be positive")
        if self.max_iterations < 1:
            raise ValueError(f"max_iterations must be at least 1, got {self.max_iterations}")

    def to_dict(self) -> dict[str, Any]:
        """The card's ``baseline`` entry."""
        return {"engine": "tblite", **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> XtbSettings:
        """Settings from a card's ``baseline`` entry."""
        try:
            return cls(
                method=str(data["method"]),
                electronic_temperature=float(data["electronic_temperature"]),
                accuracy=float(data["accuracy"]),
                max_iterations=int(data["max_iterations"]),
            )
        except (KeyError, TypeError) as err:
            raise ValueError(f"card baseline lacks xTB setting {err}") from None


def xtb_energy_forces(atoms: Atoms, settings: XtbSettings) -> tuple[float, np.ndarray]:
    """GFN1-xTB energy (eV) and forces (eV/Å) of an isolated cluster."""
    try:
        from tblite.ase import TBLite
    except ImportError as err:
        raise BaselineError(
            f"the xtb-delta model needs tblite (pip install tblite): {err}"
        ) from None
    cluster = Atoms(atoms.numbers, positions=atoms.positions)
    cluster.calc = TBLite(
        method=settings.method,
        electronic_temperature=settings.electronic_temperature,
        accuracy=settings.accuracy,
        max_iterations=settings.max_iterations,
        verbosity=0,
    )
    try:
        energy = float(cluster.get_potential_energy())
        forces = np.asarray(cluster.get_forces(), dtype=float)
    except Exception as err:  # tblite raises CalculationFailed and RuntimeErrors alike
        raise BaselineError(f"{settings.method} failed: {err}") from None
    if not (np.isfinite(energy) and np.all(np.isfinite(forces))):
        raise BaselineError(f"{settings.method} returned non-finite energy or forces")
    return energy, forces
