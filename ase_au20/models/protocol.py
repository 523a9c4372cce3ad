"""What every model is: a typed protocol that calculators, evaluation and workflows rely on.

A model turns a list of Atoms into energies (eV), per-atom energies, forces (eV/Å) when
asked and, when it has one, an epistemic spread; it carries its card and its domain of
applicability and saves to / loads from a directory. Nothing outside ``models/`` needs to
know which model it holds.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from ase import Atoms

ENSEMBLE_KEY = "member_energies"


@runtime_checkable
class Model(Protocol):
    """The model protocol.

    ``predict`` returns ``energy`` (n,), ``energies`` (n, N_max) and, with ``forces``,
    ``forces`` (n, N_max, 3) — per-atom arrays NaN-padded past each structure's size — and
    ``energy_std`` (n,) exactly when ``has_spread``. An ensemble also returns its members'
    energies ``member_energies`` (n, M), whose differences between two structures give the
    spread of an energy difference (``ENSEMBLE_KEY``), and says how many it has in an
    ``ensemble_size`` attribute; other models have neither. A method with an electronic
    temperature also returns its Mermin ``free_energy`` (n,) where it differs from
    ``energy``. A card with a ``reference`` entry marks the level of theory itself (DFTB1):
    its predictions are exact, so calculators give them an interval of width zero.
    """

    card: dict[str, Any]
    domain: Any  # models.domain.Domain of the training structures (None before it is fitted)

    @property
    def has_spread(self) -> bool:
        """Whether ``predict`` returns an epistemic spread ``energy_std``."""

    def predict(self, structures: Sequence[Atoms], forces: bool = False) -> dict[str, np.ndarray]:
        """Energies, per-atom energies, optional forces and spread of ``structures``."""

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write the weights and ``card.json`` into ``directory``."""

    @classmethod
    def load(cls, directory: str | os.PathLike[str], **options: Any) -> Model:
        """Load a directory written by ``save`` (checked against its card)."""
