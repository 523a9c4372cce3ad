"""Molecular dynamics of one cluster with any ASE calculator: NVE (velocity Verlet) or Langevin.

Velocities start from a seeded Maxwell–Boltzmann draw with zero momentum and zero angular
momentum, so a run is reproducible and the cluster neither drifts nor spins. NVE runs
report the total-energy drift, the usual check of a potential's forces and the time step.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator
from ase.constraints import FixCom
from ase.io import Trajectory
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta
from ase.md.verlet import VelocityVerlet
from tqdm import tqdm

from ase_au20.calculators.base import intervals_for
from ase_au20.plotting import save_figure
from ase_au20.workflows.any_calculator import TrustLog, model_card_of
from ase_au20.workflows.reference_check import ReferenceLabels
from ase_au20.workflows.results import Results, write_results

ENSEMBLES = ("nve", "langevin")


@dataclass
class MDResult:
    """Time series of one MD run (fs, eV, K) and, for NVE, the total-energy drift."""

    time: np.ndarray
    potential: np.ndarray
    kinetic: np.ndarray
    temperature: np.ndarray
    atoms: Atoms
    drift: dict[str, float] = field(default_factory=dict)
    trust: TrustLog | None = None  # uncertainty, spread and domain verdict per record
    audit: dict[str, np.ndarray] = field(default_factory=dict)  # checked against a reference

    @property
    def total(self) -> np.ndarray:
        """Total energy (eV) at each recorded step."""
        return self.potential + self.kinetic


def energy_drift(time_fs: np.ndarray, total_ev: np.ndarray, n_atoms: int) -> dict[str, float]:
    """Drift of the total energy per atom: linear-fit slope (meV/atom/ps) and max deviation."""
    dev = (total_ev - total_ev[0]) / n_atoms * 1000.0
    slope = float(np.polyfit(time_fs / 1000.0, dev, 1)[0]) if len(time_fs) > 1 else 0.0
    return {
        "slope_meV_per_atom_per_ps": slope,
        "max_deviation_meV_per_atom": float(np.abs(dev).max()),
        "final_deviation_meV_per_atom": float(dev[-1]),
    }


def run_md(
    atoms: Atoms,
    calc: Calculator,
    ensemble: str = "nve",
    temperature: float = 300.0,
    steps: int = 1000,
    timestep: float = 2.0,
    friction: float = 0.01,
    seed: int = 0,
    interval: int = 1,
    trajectory: str | os.PathLike | None = None,
    progress: bool = False,
) -> MDResult:
    """Run ``steps`` MD steps of ``timestep`` fs starting from Maxwell–Boltzmann velocities.

    Temperature in K; ``friction`` (1/fs) is used by Langevin only; every ``interval`` steps
    is recorded.
    """
    ensemble = ensemble.lower()
    if ensemble not in ENSEMBLES:
        raise ValueError(f"unknown ensemble {ensemble!r}: use one of {', '.join(ENSEMBLES)}")
    for name, value in (("temperature", temperature), ("friction", friction)):
        if not value >= 0:  # NaN too
            raise ValueError(f"{name} must be >= 0, got {value}")
    if not timestep > 0 or steps < 1 or interval < 1:
        raise ValueError(
            f"need timestep > 0, steps >= 1 and interval >= 1 (got {timestep}, {steps}, {interval})"
        )
    atoms = atoms.copy()
    atoms.calc = calc
    rng = np.random.default_rng(seed)
    thermalize_momenta(atoms, temperature, exact_temperature=True, rng=rng)
    Stationary(atoms)
    ZeroRotation(atoms)
    if ensemble == "nve":
        dyn = VelocityVerlet(atoms, timestep * units.fs)
    else:
        atoms.set_constraint(FixCom())  # ASE's recommended replacement for fixcm=True
        dyn = Langevin(
            atoms,
            timestep * units.fs,
            temperature_K=temperature,
            friction=friction / units.fs,
            rng=rng,
            fixcm=False,
        )
    series: dict[str, list[float]] = {"time": [], "epot": [], "ekin": [], "temp": []}
    bar = tqdm(total=steps, desc=f"md {ensemble}", unit="step", disable=not progress, leave=False)

    trust = TrustLog("the MD run")
    writer = Trajectory(str(trajectory), "w") if trajectory is not None else None

    def record() -> None:
        series["time"].append(dyn.get_time() / units.fs)
        series["epot"].append(float(atoms.get_potential_energy()))
        series["ekin"].append(float(atoms.get_kinetic_energy()))
        series["temp"].append(float(atoms.get_temperature()))
        trust.record(atoms, dyn.nsteps)
        if writer is not None:  # after the trust values are in atoms.info
            writer.write(atoms)
        bar.update(dyn.nsteps - bar.n)  # update() honours tqdm's refresh interval

    dyn.attach(record, interval=interval)
    try:
        # the interval calibrated on the corpus's MD with the model (its own thermal
        # geometries, not the reference's: a softer model wanders farther)
        with intervals_for(calc, "active"):
            dyn.run(steps)
    finally:
        if writer is not None:
            writer.close()
        bar.close()  # on an error too, so the error is printed on a line of its own
    result = MDResult(
        time=np.array(series["time"]),
        potential=np.array(series["epot"]),
        kinetic=np.array(series["ekin"]),
        temperature=np.array(series["temp"]),
        atoms=atoms,
        trust=trust,
    )
    if ensemble == "nve":
        result.drift = energy_drift(result.time, result.total, len(atoms))
    return result


def thermal_snapshots(
    atoms: Atoms,
    calc: Calculator,
    n: int,
    temperature: float = 300.0,
    every: int = 5,
    equilibrate: int = 200,
    seed: int = 0,
) -> list[Atoms]:
    """``n`` Langevin MD snapshots of ``atoms`` at ``temperature`` K (2 fs steps, ``every``
    steps apart after ``equilibrate`` steps): geometries a cluster visits when warm."""
    work = atoms.copy()
    work.calc = calc
    rng = np.random.default_rng(seed)
    thermalize_momenta(work, temperature, rng=rng)
    Stationary(work)
    work.set_constraint(FixCom())
    dyn = Langevin(
        work, 2 * units.fs, temperature_K=temperature, friction=0.02, rng=rng, fixcm=False
    )
    dyn.run(equilibrate)
    frames = []
    for _ in range(n):
        dyn.run(every)
        snapshot = work.copy()
        snapshot.set_constraint()
        snapshot.calc = None
        frames.append(snapshot)
    return frames


def plot_md(
    result: MDResult,
    path: str | os.PathLike,
    title: str = "",
    target_temperature: float | None = None,
    target_label: str = "thermostat target",
) -> Path:
    """PNG with energies (relative to the first total energy) and temperature against time,
    with the target (or initial) temperature as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = result.time / 1000.0
    e0 = result.total[0]
    fig, (ax_e, ax_t) = plt.subplots(2, 1, figsize=(6.5, 5.5), sharex=True)
    ax_e.plot(t, result.potential - e0, label="potential")
    ax_e.plot(t, result.kinetic, label="kinetic")
    ax_e.plot(t, result.total - e0, label="total", color="k", lw=1.5)
    ax_e.set_ylabel("energy − E_total(0) (eV)")
    ax_e.legend(loc="best", fontsize=8)
    heading = title or "MD"
    if result.drift:
        heading += f" — drift {result.drift['slope_meV_per_atom_per_ps']:.3g} meV/atom/ps"
    ax_e.set_title(heading)
    ax_t.plot(t, result.temperature, color="tab:red", label="instantaneous")
    if target_temperature is not None:
        ax_t.axhline(target_temperature, color="k", ls="--", lw=1, label=target_label)
        ax_t.legend(loc="best", fontsize=8)
    ax_t.set_ylabel("temperature (K)")
    ax_t.set_xlabel("time (ps)")
    for ax in (ax_e, ax_t):
        ax.grid(alpha=0.3)
    return save_figure(fig, path)


def audit_frames(
    trajectory: str | os.PathLike, reference: Calculator, every: int
) -> dict[str, np.ndarray]:
    """Every ``every``-th recorded frame of an MD trajectory labelled by ``reference``: the
    record index, the model's energy and interval half-width there, the reference energy,
    the error, whether the interval covers it, and the force MAE (eV, eV/Å)."""
    from ase.io import read

    if every < 1:
        raise ValueError(f"check_every must be >= 1, got {every}")
    frames = read(trajectory, f"::{every}")
    frames = frames if isinstance(frames, list) else [frames]
    model_energy = np.array([f.get_potential_energy() for f in frames])
    model_forces = [f.get_forces() for f in frames]
    half = np.array([f.info.get("energy_uncertainty", np.nan) for f in frames], dtype=float)
    truth = ReferenceLabels.of(reference, [Atoms(f.numbers, f.positions) for f in frames])
    error = model_energy - truth.energy
    pairs = zip(model_forces, truth.forces, strict=True)
    force_mae = np.array([np.abs(m - t).mean() for m, t in pairs])
    return {
        "record": np.arange(0, len(frames) * every, every),
        "model_energy": model_energy,
        "reference_energy": truth.energy,
        "error": error,
        "energy_uncertainty": half,
        "covered": (np.abs(error) <= half).astype(float),
        "force_mae": force_mae,
    }


def run_md_files(
    atoms: Atoms,
    calc: Calculator,
    out_dir: str | os.PathLike,
    name: str = "cluster",
    parameters: dict[str, Any] | None = None,
    progress: bool = False,
    reference: Calculator | None = None,
    check_every: int = 10,
    **md_kwargs: Any,
) -> tuple[MDResult, dict[str, Path]]:
    """Run :func:`run_md` and write ``<name>-md.traj``, ``.h5`` and ``.png`` into ``out_dir``;
    with a ``reference``, every ``check_every``-th record is labelled by it and its error is
    stored beside the model's interval (``check/`` in the HDF5, ``result.audit``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "traj": out / f"{name}-md.traj",
        "h5": out / f"{name}-md.h5",
        "png": out / f"{name}-md.png",
    }
    result = run_md(atoms, calc, trajectory=files["traj"], progress=progress, **md_kwargs)
    res = Results(parameters={**md_kwargs, **(parameters or {})}, model_card=model_card_of(calc))
    res.add("series/time", result.time, "fs", "simulation time of each record")
    res.add("series/potential_energy", result.potential, "eV", "potential energy")
    res.add("series/kinetic_energy", result.kinetic, "eV", "kinetic energy")
    res.add("series/total_energy", result.total, "eV", "potential + kinetic energy")
    res.add("series/temperature", result.temperature, "K", "instantaneous temperature")
    result.trust.add_to(res, "series")
    if reference is not None:
        result.audit = audit_frames(files["traj"], reference, check_every)
        described = {
            "record": ("", "index of the checked record in series/"),
            "model_energy": ("eV", "the model's energy of the frame"),
            "reference_energy": ("eV", "the reference's energy of the same frame"),
            "error": ("eV", "model − reference"),
            "energy_uncertainty": ("eV", "the model's interval half-width there"),
            "covered": ("", "1 where the interval holds the reference energy"),
            "force_mae": ("eV/Å", "mean |model − reference| force component"),
        }
        for key, values in result.audit.items():
            res.add(f"check/{key}", values, *described[key])
    units_of = {"slope_meV_per_atom_per_ps": "meV/atom/ps"}
    for key, value in result.drift.items():
        res.add(f"drift/{key}", value, units_of.get(key, "meV/atom"), "NVE total-energy drift")
    write_results(files["h5"], res)
    ensemble = md_kwargs.get("ensemble", "nve").lower()
    temperature = float(md_kwargs.get("temperature", 300.0))
    if ensemble == "langevin":
        friction = float(md_kwargs.get("friction", 0.01))
        heading = f"{name}: Langevin, T = {temperature:g} K, friction {friction:g} fs⁻¹"
        target = "thermostat target"
    else:
        heading = f"{name}: {ensemble.upper()}, started at T = {temperature:g} K"
        target = "initial temperature (Maxwell–Boltzmann)"
    plot_md(result, files["png"], heading, temperature, target)
    return result, files
