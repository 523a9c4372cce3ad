"""Local geometry relaxation of one cluster with any ASE calculator (BFGS or FIRE).

Records the energy and largest atomic force at every step, so the history can be stored
in HDF5 and plotted; the relaxed structure and the ASE trajectory go beside it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.io import Trajectory, write
from ase.optimize import BFGS, FIRE
from tqdm import tqdm

from ase_au20.calculators.base import domain_reported_by_caller, intervals_for
from ase_au20.plotting import save_figure
from ase_au20.workflows.any_calculator import TrustLog, model_card_of
from ase_au20.workflows.results import Results, write_results
from ase_au20.workflows.structure_files import predicted_structure, reference_level

OPTIMIZERS = {"bfgs": BFGS, "fire": FIRE}


@dataclass
class RelaxResult:
    """A relaxed structure, its per-step energy (eV) and max force (eV/Å) history, and the
    trust properties of every step (``trust``; NaN where the calculator gives none)."""

    atoms: Atoms
    energies: np.ndarray
    fmax: np.ndarray
    converged: bool
    trust: TrustLog | None = None

    @property
    def in_domain(self) -> bool | None:
        """Whether the relaxed structure is inside the model's domain (None: no verdict)."""
        return None if self.trust is None else self.trust.in_domain

    @property
    def steps(self) -> int:
        """Number of optimizer steps taken (the first record is the starting point)."""
        return len(self.energies) - 1


def relax(
    atoms: Atoms,
    calc: Calculator,
    fmax: float = 0.05,
    optimizer: str = "bfgs",
    steps: int = 500,
    trajectory: str | os.PathLike | None = None,
    progress: bool = False,
    warn_outside: bool = True,
) -> RelaxResult:
    """Relax a copy of ``atoms`` with ``calc`` until the largest force is below ``fmax``.

    The domain verdict of every step is recorded, with one warning (``warn_outside``) the
    first time the cluster is outside, naming the step; ``warn_outside=False`` records
    without warning (search, screen: their minima are judged, not their paths)."""
    if optimizer.lower() not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}: use one of {', '.join(OPTIMIZERS)}")
    if not fmax > 0:  # NaN too
        raise ValueError(f"fmax must be positive, got {fmax}")
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    atoms = atoms.copy()
    atoms.calc = calc
    energies: list[float] = []
    forces_max: list[float] = []
    trust = TrustLog("the relaxation", warn=warn_outside)
    bar = tqdm(total=steps, desc="relax", unit="step", disable=not progress, leave=False)
    writer = Trajectory(str(trajectory), "w") if trajectory is not None else None

    def record() -> None:
        energies.append(float(atoms.get_potential_energy()))
        forces_max.append(float(np.linalg.norm(atoms.get_forces(), axis=1).max()))
        trust.record(atoms, len(energies) - 1)
        if writer is not None:  # after the trust values are in atoms.info
            writer.write(atoms)
        if len(energies) > 1:
            bar.update(1)
        bar.set_postfix(E=f"{energies[-1]:.4f}", fmax=f"{forces_max[-1]:.3f}", refresh=False)

    try:  # each step's verdict is in the trust log, which warns once naming the step
        with (
            domain_reported_by_caller(),
            intervals_for(calc, "minima"),  # calibrated on the corpus's model relaxations
            OPTIMIZERS[optimizer.lower()](atoms, logfile=None) as opt,
        ):
            opt.attach(record, interval=1)
            converged = bool(opt.run(fmax=fmax, steps=steps))
    finally:
        if writer is not None:
            writer.close()
        bar.close()  # on an error too, so the error is printed on a line of its own
    return RelaxResult(atoms, np.array(energies), np.array(forces_max), converged, trust)


def plot_relaxation(result: RelaxResult, path: str | os.PathLike, title: str = "") -> Path:
    """PNG of energy and max force (log scale) against optimizer step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    steps = np.arange(len(result.energies))
    fig, (ax_e, ax_f) = plt.subplots(2, 1, figsize=(6, 5.5), sharex=True)
    ax_e.plot(steps, result.energies - result.energies[-1], "o-", ms=3)
    ax_e.set_ylabel("E − E_final (eV)")
    ax_e.set_title(f"{title or 'relaxation'}: final E = {result.energies[-1]:.4f} eV")
    ax_f.semilogy(steps, result.fmax, "o-", ms=3, color="tab:red")
    ax_f.set_ylabel("max |F| (eV/Å)")
    ax_f.set_xlabel("optimizer step")
    ax_f.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
    for ax in (ax_e, ax_f):
        ax.grid(alpha=0.3)
    return save_figure(fig, path)


def run_relax(
    atoms: Atoms,
    calc: Calculator,
    out_dir: str | os.PathLike,
    name: str = "cluster",
    fmax: float = 0.05,
    optimizer: str = "bfgs",
    steps: int = 500,
    parameters: dict[str, Any] | None = None,
    progress: bool = False,
) -> tuple[RelaxResult, dict[str, Path]]:
    """Relax ``atoms`` and write ``<name>-relaxed.xyz``, ``.traj``, ``.h5`` and ``.png``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "xyz": out / f"{name}-relaxed.xyz",
        "traj": out / f"{name}-relax.traj",
        "h5": out / f"{name}-relax.h5",
        "png": out / f"{name}-relax.png",
    }
    result = relax(atoms, calc, fmax, optimizer, steps, files["traj"], progress)
    card = model_card_of(calc)
    model = str((parameters or {}).get("calc") or card.get("model_type", type(calc).__name__))
    relaxed = predicted_structure(
        result.atoms, float(result.energies[-1]), model, level=reference_level(card)
    )
    write(files["xyz"], relaxed, format="extxyz")
    res = Results(
        parameters={"fmax": fmax, "optimizer": optimizer, "steps": steps, **(parameters or {})},
        model_card=card,
    )
    res.add("history/energy", result.energies, "eV", "potential energy at each optimizer step")
    res.add("history/fmax", result.fmax, "eV/Å", "largest atomic force norm at each step")
    res.add("final/positions", relaxed.get_positions(), "Å", "relaxed Cartesian positions")
    res.add("final/energy", result.energies[-1], "eV", "energy of the relaxed structure")
    res.add("final/converged", result.converged, "", "max force below fmax within steps")
    verdict = {None: -1, True: 1, False: 0}[result.in_domain]
    res.add("final/in_domain", verdict, "", "1 inside the model's domain, 0 outside, -1: none")
    result.trust.add_to(res, "history")
    write_results(files["h5"], res)
    plot_relaxation(result, files["png"], f"{name} ({optimizer.upper()})")
    return result, files
