"""Models explore, the reference verifies: a search's candidates re-relaxed by the reference.

For each candidate: the model's energy, the reference's energy at the model's minimum and
its largest force there (a true minimum of the reference has none), the reference's own
minimum reached from it, its energy and the RMSD between the two minima. The verified
ranking is by the reference's minimum energy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from ase import Atoms
from ase.build import minimize_rotation_and_translation
from ase.calculators.calculator import Calculator
from tqdm.auto import tqdm

from ase_au20.workflows.any_calculator import energy_provenance
from ase_au20.workflows.relax import relax
from ase_au20.workflows.structure_files import predicted_structure


def rmsd(a: Atoms, b: Atoms) -> float:
    """RMSD (Å) of two geometries of the same atoms after the best rotation and translation."""
    moved = b.copy()
    minimize_rotation_and_translation(a, moved)
    return float(np.sqrt(((a.positions - moved.positions) ** 2).sum(axis=1).mean()))


def verify_minima(
    structures: Sequence[Atoms],
    model_energies: Sequence[float],
    reference: Calculator,
    fmax: float = 0.05,
    steps: int = 500,
    progress: bool = False,
) -> tuple[pd.DataFrame, list[Atoms]]:
    """The verification table (one row per structure, in the verified order, with its
    ``rank`` in the model's order) and the reference's minima as labelled structures."""
    rows, minima = [], []
    level = energy_provenance(reference).get("level", type(reference).__name__)
    for rank, (atoms, energy) in enumerate(
        zip(
            tqdm(structures, desc="verify", unit="candidate", disable=not progress),
            model_energies,
            strict=True,
        )
    ):
        start = Atoms(atoms.numbers, positions=atoms.positions)
        start.calc = reference
        at_model = float(start.get_potential_energy())
        force = float(np.linalg.norm(start.get_forces(), axis=1).max())
        result = relax(start, reference, fmax=fmax, steps=steps, warn_outside=False)
        minimum = Atoms(atoms.numbers, positions=result.atoms.positions)
        rows.append(
            {
                "model_rank": rank,
                "model_energy": float(energy),
                "reference_at_model_minimum": at_model,
                "reference_fmax_there": force,
                "reference_minimum_energy": float(result.energies[-1]),
                "rmsd_between_minima": rmsd(minimum, Atoms(atoms.numbers, atoms.positions)),
                "converged": bool(result.converged),
            }
        )
        minima.append(predicted_structure(minimum, float(result.energies[-1]), level, level=level))
    table = pd.DataFrame(rows)
    order = np.argsort(table["reference_minimum_energy"].to_numpy(), kind="stable")
    table = table.iloc[order].reset_index(drop=True)
    table.insert(0, "verified_rank", np.arange(len(table)))
    return table, [minima[i] for i in order]
