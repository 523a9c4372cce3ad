"""Per-atom energy maps: where in the cluster does the calculator put the energy?

Uses the ``energies`` property (per-atom contributions that sum to the total energy).
Exported like the stiffness maps: a PDB whose B-factor column holds E_i − min_j E_j
(meV when the spread fits the column, coarser units otherwise), a VMD script, a 3D PNG
and an HDF5 file with the values in eV.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from ase_au20.viz import (
    BFACTOR_RANGE,
    plot_site_values_3d,
    write_bfactor_pdb,
    write_vmd_script,
)
from ase_au20.workflows.any_calculator import model_card_of, predict_batch
from ase_au20.workflows.results import Results, write_results

# (factor from eV, unit name), finest first: the first whose values fit the B-factor column.
BFACTOR_UNITS = ((1000.0, "meV"), (100.0, "10 meV"), (10.0, "0.1 eV"), (1.0, "eV"))


@dataclass
class EnergyMap:
    """Per-atom energies (eV) of one structure and their B-factor encoding."""

    energies: np.ndarray  # eV, sums to total
    total: float  # eV
    bfactor: np.ndarray  # (E_i − min E) × factor
    bfactor_unit: str

    @property
    def relative(self) -> np.ndarray:
        """Per-atom energy above the lowest atom (eV)."""
        return self.energies - self.energies.min()


def bfactor_encoding(relative_ev: np.ndarray) -> tuple[np.ndarray, str]:
    """Scale non-negative per-atom values (eV) into the PDB B-factor column (2 decimals)."""
    for factor, unit in BFACTOR_UNITS:
        scaled = np.round(relative_ev * factor, 2)
        if scaled.max(initial=0.0) <= BFACTOR_RANGE[1]:
            return scaled, unit
    raise ValueError(f"per-atom energy spread {relative_ev.max():.3g} eV too large for a PDB")


def energy_map(atoms: Atoms, calc: Calculator) -> EnergyMap:
    """Per-atom energies of ``atoms``; ValueError if ``calc`` does not provide ``energies``."""
    if "energies" not in getattr(calc, "implemented_properties", ()):
        raise ValueError(f"{type(calc).__name__} does not provide per-atom 'energies'")
    out = predict_batch(calc, [atoms], ("energy", "energies"))
    energies = np.asarray(out["energies"][0], dtype=float)
    total = float(out["energy"][0])
    if not np.isclose(energies.sum(), total, atol=1e-6 * max(1.0, abs(total))):
        raise ValueError(f"per-atom energies sum to {energies.sum():.6f}, total is {total:.6f} eV")
    bfactor, unit = bfactor_encoding(energies - energies.min())
    return EnergyMap(energies, total, bfactor, unit)


def write_energy_map(
    atoms: Atoms,
    calc: Calculator,
    out_dir: str | os.PathLike,
    name: str = "cluster",
    parameters: dict[str, Any] | None = None,
) -> tuple[EnergyMap, dict[str, Path]]:
    """Write ``<name>-energies.pdb``, ``.tcl``, ``.png`` and ``.h5`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    emap = energy_map(atoms, calc)
    stem = out / f"{name}-energies"
    files = {k: stem.with_suffix(f".{k}") for k in ("pdb", "tcl", "png", "h5")}
    label = f"E_i − min E_i ({emap.bfactor_unit})"
    write_bfactor_pdb(atoms, emap.bfactor, files["pdb"])
    write_vmd_script(files["pdb"], files["tcl"], label)
    plot_site_values_3d(
        atoms,
        emap.relative * 1000.0,
        files["png"],
        f"{name}: per-atom energy, total {emap.total:.4f} eV",
        "E_i − min E_i (meV)",
        note="the model's split of the total into atoms: one choice among many, not an observable",
    )
    res = Results(parameters={"name": name, **(parameters or {})}, model_card=model_card_of(calc))
    res.add("energies", emap.energies, "eV", "per-atom energy contributions (sum = total)")
    res.add("relative_energies", emap.relative, "eV", "E_i − min E_i")
    res.add("total_energy", emap.total, "eV", "total potential energy")
    res.add("bfactor", emap.bfactor, emap.bfactor_unit, "B-factor column of the PDB")
    res.add("positions", atoms.get_positions(), "Å", "Cartesian positions")
    write_results(files["h5"], res)
    return emap, files
