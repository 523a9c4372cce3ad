"""How each family's frames are drawn and labelled with the reference, on a worker.

``draw_frames(calc, task, settings)`` runs one task with ``calc`` (the reference) and returns
its frames with the reference's energies and forces: rattles are single points; MD and
relaxation frames are the reference's own trajectory, so each step's label comes free; the
active family runs MD with the model and labels the frames its members disagree on most; the
minima family relaxes search starts with the model and labels where the search would stop.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator
from ase.constraints import FixCom
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta
from ase.optimize import BFGS
from scipy.spatial.distance import pdist

from ase_au20.compute.engine import worker_calculator
from ase_au20.geometry.symmetric_cluster import search_start
from ase_au20.workflows.corpus.plan import SampleTask
from ase_au20.workflows.corpus.settings import SampleSettings

N_ATOMS = 20
RATTLE_TRIES = 100


@dataclass
class Frames:
    """Labelled frames of one task: positions (k, N, 3), energies (k,), forces (k, N, 3) and
    the trajectory step of each (0 for rattles)."""

    positions: np.ndarray
    energies: np.ndarray
    forces: np.ndarray
    steps: np.ndarray
    amplitudes: np.ndarray | None = None  # Å, rattles only

    def __len__(self) -> int:
        return len(self.energies)


def _label(calc: Calculator, positions: np.ndarray) -> tuple[float, np.ndarray]:
    """The reference's energy and forces at ``positions``."""
    atoms = Atoms(f"Au{len(positions)}", positions=positions)
    atoms.calc = calc
    return float(atoms.get_potential_energy()), atoms.get_forces().copy()


def _labelled(
    calc: Calculator,
    positions: list[np.ndarray],
    steps: list[int],
    leave_out_unlabelled: bool = False,
) -> Frames:
    """``positions`` with the reference's labels; with ``leave_out_unlabelled`` a frame the
    reference cannot label (atoms collapsed so close that its overlap breaks) is left out
    instead of failing the task."""
    kept, labels = [], []
    for k, frame in enumerate(positions):
        try:
            labels.append(_label(calc, frame))
        except ValueError:
            if not leave_out_unlabelled:
                raise
            continue
        kept.append(k)
    shape = (len(kept), *np.shape(positions[0])) if positions else (0, N_ATOMS, 3)
    return Frames(
        np.array([positions[k] for k in kept]).reshape(shape),
        np.array([e for e, _ in labels]),
        np.array([f for _, f in labels]).reshape(shape),
        np.array([steps[k] for k in kept], dtype=int),
    )


def _rng(task: SampleTask) -> np.random.Generator:
    """The task's own stream: the same frames whichever worker runs it, in whatever order."""
    return np.random.default_rng([task.seed, zlib.crc32(task.source.encode())])


def rattle_frames(calc: Calculator, task: SampleTask, settings: SampleSettings) -> Frames:
    """``rattles`` Gaussian displacements of the parent at each amplitude (σ per coordinate),
    redrawn while two atoms come closer than ``min_distance``."""
    rng = _rng(task)
    positions, amplitudes = [], []
    for sigma in settings.amplitudes:
        for _ in range(settings.rattles):
            for _ in range(RATTLE_TRIES):
                moved = task.start + rng.normal(0.0, sigma, task.start.shape)
                if pdist(moved).min() >= settings.min_distance:
                    break
            else:
                raise ValueError(
                    f"{RATTLE_TRIES} rattles of σ = {sigma} Å in a row came closer than "
                    f"{settings.min_distance} Å"
                )
            positions.append(moved)
            amplitudes.append(sigma)
    frames = _labelled(calc, positions, [0] * len(positions))
    frames.amplitudes = np.array(amplitudes)
    return frames


def _langevin(
    atoms: Atoms, temperature: float, settings: SampleSettings, rng: np.random.Generator
) -> Langevin:
    """Langevin dynamics at ``temperature`` from Maxwell–Boltzmann velocities, the centre of
    mass fixed."""
    thermalize_momenta(atoms, temperature, rng=rng)
    Stationary(atoms)
    ZeroRotation(atoms)
    atoms.set_constraint(FixCom())
    return Langevin(
        atoms,
        settings.timestep * units.fs,
        temperature_K=temperature,
        friction=settings.friction / units.fs,
        rng=rng,
        fixcm=False,  # the FixCom constraint does it (ASE's recommendation)
    )


class _Recorder:
    """The frames kept from a run with the reference: positions, its energy and forces (the
    raw ones, before any constraint), and the run's step count at each."""

    def __init__(self, atoms: Atoms, run: Any) -> None:
        self.atoms, self.run = atoms, run
        self.kept: dict[str, list] = {"positions": [], "energies": [], "forces": [], "steps": []}

    def __call__(self) -> None:
        self.kept["positions"].append(self.atoms.get_positions())
        self.kept["energies"].append(self.atoms.get_potential_energy())
        self.kept["forces"].append(self.atoms.get_forces(apply_constraint=False).copy())
        self.kept["steps"].append(self.run.nsteps)

    def frames(self) -> Frames:
        """Everything kept, as Frames."""
        keys = ("positions", "energies", "forces", "steps")
        return Frames(*(np.array(self.kept[k]) for k in keys))


def md_frames(calc: Calculator, task: SampleTask, settings: SampleSettings) -> Frames:
    """Every ``md_every``-th frame of ``md_steps`` Langevin steps with the reference."""
    atoms = Atoms(f"Au{len(task.start)}", positions=task.start)
    atoms.calc = calc
    dyn = _langevin(atoms, task.setting, settings, _rng(task))
    keep = _Recorder(atoms, dyn)
    dyn.attach(keep, interval=settings.md_every)
    dyn.run(settings.md_steps)
    return keep.frames()


def relax_frames(calc: Calculator, task: SampleTask, settings: SampleSettings) -> Frames:
    """A BFGS relaxation with the reference from a search start (random or symmetric, the
    search's own moves): every ``relax_every``-th step and the last."""
    atoms = search_start(_rng(task), N_ATOMS, task.start_kind)
    atoms.calc = calc
    optimizer = BFGS(atoms, logfile=None, maxstep=0.2)
    keep = _Recorder(atoms, optimizer)
    optimizer.attach(keep, interval=settings.relax_every)
    optimizer.run(fmax=settings.fmax, steps=settings.relax_steps)
    if keep.kept["steps"][-1] != optimizer.nsteps:  # the minimum (or the last step) always
        keep()
    return keep.frames()


class _Watcher:
    """The frames of a run with the current model: positions, its members' spread
    (``energy_std``) and the run's step count at each."""

    def __init__(self, atoms: Atoms, model: Calculator, run: Any) -> None:
        self.atoms, self.model, self.run = atoms, model, run
        self.seen: dict[str, list] = {"positions": [], "spread": [], "steps": []}

    def __call__(self) -> None:
        self.atoms.get_potential_energy()
        self.seen["positions"].append(self.atoms.get_positions())
        self.seen["spread"].append(float(self.model.results.get("energy_std", np.nan)))
        self.seen["steps"].append(self.run.nsteps)

    def most_disputed(self, count: int, among: int | None = None) -> list[int]:
        """Up to ``count`` of the first ``among`` frames (all: None) with the largest
        spread, in run order."""
        spread = np.nan_to_num(np.array(self.seen["spread"][:among]), nan=-1.0)
        return sorted(np.argsort(-spread)[:count].tolist())

    def labelled(self, calc: Calculator, picked: list[int], **options: Any) -> Frames:
        """The ``picked`` frames with the reference's labels (options: see ``_labelled``)."""
        positions = [self.seen["positions"][i] for i in picked]
        return _labelled(calc, positions, [self.seen["steps"][i] for i in picked], **options)


def active_frames(calc: Calculator, task: SampleTask, settings: SampleSettings) -> Frames:
    """MD with the current model from the parent; the ``active_per_run`` frames (one every
    ``md_every`` steps) its ensemble members disagree on most, labelled by the reference."""
    model = worker_calculator(task.model)
    atoms = Atoms(f"Au{len(task.start)}", positions=task.start)
    atoms.calc = model
    dyn = _langevin(atoms, task.setting, settings, _rng(task))
    watch = _Watcher(atoms, model, dyn)
    dyn.attach(watch, interval=settings.md_every)
    dyn.run(settings.active_steps)
    if not np.isfinite(watch.seen["spread"]).any():
        raise ValueError("the active family's model gives no spread (energy_std): use an ensemble")
    return watch.labelled(calc, watch.most_disputed(settings.active_per_run))


def minima_frames(calc: Calculator, task: SampleTask, settings: SampleSettings) -> Frames:
    """A relaxation with the current model from a search start: its minimum (where a search
    stops, so where a hole in the model's surface shows) and the ``active_per_run - 1`` path
    frames its members disagree on most, labelled by the reference. A frame the reference
    cannot label (atoms collapsed so close that its overlap breaks) is left out."""
    model = worker_calculator(task.model)
    atoms = search_start(_rng(task), N_ATOMS, task.start_kind)
    atoms.calc = model
    optimizer = BFGS(atoms, logfile=None, maxstep=0.2)
    watch = _Watcher(atoms, model, optimizer)
    optimizer.attach(watch, interval=settings.relax_every)
    optimizer.run(fmax=settings.fmax, steps=settings.relax_steps)
    if watch.seen["steps"][-1] != optimizer.nsteps:
        watch()  # the minimum always
    last = len(watch.seen["steps"]) - 1
    path = watch.most_disputed(settings.active_per_run - 1, among=last)
    return watch.labelled(calc, [*path, last], leave_out_unlabelled=True)


DRAW = {
    "rattle": rattle_frames,
    "md": md_frames,
    "relax": relax_frames,
    "active": active_frames,
    "minima": minima_frames,
}


def draw_frames(calc: Calculator, task: SampleTask, settings: SampleSettings) -> Frames:
    """The labelled frames of ``task`` (its family's function)."""
    return DRAW[task.family](calc, task, settings)
