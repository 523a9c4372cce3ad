"""Labelling selected structures with an oracle: the step between `select` and `db add`.

The oracle is any ASE calculator (a DFT code through ASE for users, EMT in tests). Each
structure is relaxed with BFGS (or, with ``single_point``, evaluated where it is) and
written as extended xyz with ``energy=`` and forces, which `db add` ingests as a label.
An ase-au20 model is refused as the oracle: its energies are predictions, not labels. The
one exception is the reference (``DFTBAu20``, ``--calc dftb``): it is the level of theory of
the data, so its energies are labels, and each records that level (``level``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write
from ase.optimize import BFGS
from tqdm.auto import tqdm

from ase_au20.database.labelled_inputs import LEVEL
from ase_au20.workflows.any_calculator import energy_provenance
from ase_au20.workflows.inputs import read_structures

LABELLED_BY = "labelled_by"  # info key naming the oracle of a label


@dataclass
class LabelReport:
    """What was labelled: one output file per structure, and what failed and why."""

    files: list[Path] = field(default_factory=list)
    energies: list[float] = field(default_factory=list)  # eV, the oracle's labels
    not_converged: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (structure, reason)


def check_oracle(calc: Calculator) -> None:
    """ValueError for one of our model calculators (the reference excepted): labelling with
    it would store predictions."""
    if isinstance(getattr(calc, "card", None), dict) and not getattr(calc, "is_reference", False):
        raise ValueError(
            f"{type(calc).__name__} is an ase-au20 model: its energies are predictions, not "
            "labels; label with a reference method (a DFT code through ASE, or EMT in tests)"
        )


def level_of(calc: Calculator, oracle_name: str) -> str:
    """The level of theory a label of ``calc`` records: the reference's own (its card), else
    the oracle's name as the user gave it."""
    return energy_provenance(calc).get(LEVEL, oracle_name)


def label_one(
    atoms: Atoms, calc: Calculator, single_point: bool, fmax: float, steps: int
) -> tuple[Atoms, bool]:
    """The labelled structure (relaxed unless ``single_point``) and whether it converged."""
    work = Atoms(atoms.numbers, positions=atoms.get_positions())
    work.calc = calc
    converged = True
    if not single_point:
        converged = bool(BFGS(work, logfile=None).run(fmax=fmax, steps=steps))
    energy = float(work.get_potential_energy())
    forces = np.asarray(work.get_forces())
    if not (np.isfinite(energy) and np.isfinite(forces).all()):
        raise ValueError(f"the oracle returned a non-finite energy or forces ({energy})")
    out = Atoms(work.numbers, positions=work.get_positions())
    out.calc = SinglePointCalculator(out, energy=energy, forces=forces)
    return out, converged


def label_structures(
    sources: list[str | os.PathLike[str]],
    calc: Calculator,
    out_dir: str | os.PathLike[str],
    oracle_name: str,
    single_point: bool = False,
    fmax: float = 0.05,
    steps: int = 200,
    progress: bool = False,
) -> LabelReport:
    """Label every structure of ``sources`` with ``calc``; one extended xyz each in ``out_dir``."""
    check_oracle(calc)
    if not fmax > 0 or steps < 1:
        raise ValueError(f"fmax must be > 0 and steps >= 1, got {fmax} and {steps}")
    structures = read_structures(sources)
    if not structures:
        raise ValueError(f"no structures in {', '.join(map(str, sources))}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = LabelReport()
    for name, atoms in tqdm(structures, desc="labelling", unit="structure", disable=not progress):
        try:
            labelled, converged = label_one(atoms, calc, single_point, fmax, steps)
        except Exception as err:  # an oracle may fail in its own ways (SCF, licence, …)
            report.failed.append((name, f"{type(err).__name__}: {err}"))
            continue
        labelled.info.update(
            {
                LABELLED_BY: oracle_name,
                LEVEL: level_of(calc, oracle_name),
                "source": name,
                "relaxed": not single_point,
            }
        )
        if not single_point:
            labelled.info["converged"] = converged
            if not converged:
                report.not_converged.append(name)
        path = out / f"{Path(name.split('@')[0]).stem}{_frame_suffix(name)}.xyz"
        write(path, labelled, format="extxyz")
        report.files.append(path)
        report.energies.append(labelled.get_potential_energy())
    return report


def _frame_suffix(name: str) -> str:
    """``-<k>`` for the k-th frame of a multi-frame source (``file@k``), else ``""``."""
    return f"-{name.rsplit('@', 1)[1]}" if "@" in name else ""
