"""``DFTBModel``: non-self-consistent DFTB (DFTB1) with the auorg-1-1 Au–Au tables.

This is the level of theory of the Au20 labels, not a fit to them: it reproduces the
stored isomer energies to ~1e-5 eV (median) and gives the exact label of any geometry,
with forces. Its card says so (``reference``), so calculators give it an interval of width
zero; its domain holds the geometric checks only (no descriptor distance).

Cite the tables as their rights holders require: A. Fihey, C. Hettich, J. Touzeau,
F. Maurel, A. Perrier, C. Köhler, B. Aradi and T. Frauenheim, J. Comput. Chem. 36, 2075
(2015); and DFTB: M. Elstner et al., Phys. Rev. B 58, 7260 (1998).
"""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from threadpoolctl import ThreadpoolController

from ase_au20.models.card import open_model_card, write_card
from ase_au20.models.dftb.calculation import single_point
from ase_au20.models.dftb.skf import SlaterKosterTable
from ase_au20.models.domain import Domain, with_domain

TABLE_NAME = "Au-Au.skf"
LICENCE_FILES = ("LICENSE", "README.auorg")
ELECTRONIC_TEMPERATURE = 1e-4  # Hartree: the setting that reproduces the labels
LEVEL = "dftb1-auorg-1-1"  # the ``level`` a label of this model records
CITATION = (
    "auorg-1-1 Slater–Koster tables (CC BY-SA 4.0): A. Fihey, C. Hettich, J. Touzeau, "
    "F. Maurel, A. Perrier, C. Köhler, B. Aradi and T. Frauenheim, J. Comput. Chem. 36, "
    "2075 (2015); DFTB: M. Elstner et al., Phys. Rev. B 58, 7260 (1998)"
)


@functools.cache
def _blas() -> ThreadpoolController:
    """The process's BLAS thread pools, found once (a search costs milliseconds)."""
    return ThreadpoolController()


class DFTBModel:
    """DFTB1 energies, Mulliken-split per-atom energies and analytic forces of Au clusters
    of any size from one homonuclear Slater–Koster ``table``."""

    domain: Domain | None = None  # geometric checks only: set by load / attach_domain

    def __init__(
        self,
        table: SlaterKosterTable,
        electronic_temperature: float = ELECTRONIC_TEMPERATURE,
        card: dict[str, Any] | None = None,
    ) -> None:
        if not electronic_temperature > 0:
            raise ValueError(
                f"electronic_temperature must be > 0 Hartree, got {electronic_temperature}"
            )
        self.table = table
        self.electronic_temperature = float(electronic_temperature)
        self.card: dict[str, Any] = dict(card or {})

    @property
    def has_spread(self) -> bool:
        """The reference has no epistemic spread."""
        return False

    def predict(self, structures: Sequence[Atoms], forces: bool = False) -> dict[str, np.ndarray]:
        """One generalised eigenproblem per structure: ``energy``, the Mermin
        ``free_energy``, Mulliken-split ``energies`` and ``forces``, per-atom arrays
        NaN-padded."""
        size = max((len(a) for a in structures), default=0)
        out: dict[str, np.ndarray] = {
            "energy": np.empty(len(structures)),
            "free_energy": np.empty(len(structures)),
            "energies": np.full((len(structures), size), np.nan),
        }
        if forces:
            out["forces"] = np.full((len(structures), size, 3), np.nan)
        for k, atoms in enumerate(structures):
            # one BLAS thread: a 180 x 180 problem runs 3x slower on two (7 against 20 ms)
            with _blas().limit(limits=1, user_api="blas"):
                point = single_point(
                    self.table, atoms.get_positions(), self.electronic_temperature, forces
                )
            out["energy"][k] = point.energy
            out["free_energy"][k] = point.free_energy
            out["energies"][k, : len(atoms)] = point.energies
            if forces:
                out["forces"][k, : len(atoms)] = point.forces
        return out

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Copy the table (and its licence files, when beside it) and write the card."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        source = self.table.path
        if source.resolve() != (directory / TABLE_NAME).resolve():
            shutil.copyfile(source, directory / TABLE_NAME)
            for name in LICENCE_FILES:
                if (source.parent / name).is_file():
                    shutil.copyfile(source.parent / name, directory / name)
        from ase_au20.models.card import file_sha256

        files = dict(self.card.get("files", {}))
        files[TABLE_NAME] = file_sha256(directory / TABLE_NAME)
        self.card.update(model_type="dftb", files=files)
        self.card["hyperparameters"] = {
            **self.card.get("hyperparameters", {}),
            "electronic_temperature_hartree": self.electronic_temperature,
        }
        write_card(directory, self.card)
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> DFTBModel:
        """Read the table named in the card (its SHA-256 checked) and the domain."""
        directory = Path(directory)
        card = open_model_card(directory, "dftb", [TABLE_NAME])
        table = SlaterKosterTable.read(directory / TABLE_NAME)
        temperature = card["hyperparameters"].get(
            "electronic_temperature_hartree", ELECTRONIC_TEMPERATURE
        )
        return with_domain(cls(table, float(temperature), card), directory)
