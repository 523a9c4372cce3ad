"""What `sample` draws, as one settings dataclass: the verb's options come from its fields
(kept free of numerical imports, so `au20-workflow --help` stays instant)."""

from __future__ import annotations

from dataclasses import dataclass

from ase_au20.settings import setting

FAMILIES = ("rattle", "md", "relax", "active", "minima")


@dataclass(frozen=True)
class SampleSettings:
    """How many frames of each family, and how they are drawn (Å, K, fs, eV/Å)."""

    families: tuple[str, ...] = setting(
        FAMILIES,
        "Families to draw: rattle, md, relax, active (MD with --model) and minima "
        "(relaxations with --model).",
    )
    amplitudes: tuple[float, ...] = setting(
        (0.01, 0.02, 0.05, 0.1, 0.15, 0.2), "Rattle amplitudes σ per coordinate (Å)."
    )
    rattles: int = setting(5, "Rattles per isomer and amplitude.")
    min_distance: float = setting(2.0, "A rattle with two atoms closer than this is redrawn (Å).")
    temperatures: tuple[float, ...] = setting(
        (300.0, 600.0, 1000.0, 1500.0), "MD temperatures (K), taken in turn by the isomers."
    )
    md_steps: int = setting(200, "Langevin steps of each MD run with the reference.")
    md_every: int = setting(10, "Keep every k-th MD frame (the first included).")
    timestep: float = setting(5.0, "MD time step (fs).")
    friction: float = setting(0.02, "Langevin friction (1/fs): thermalised within ~50 fs.")
    relax_starts: int = setting(
        400, "Relaxations with the reference from search starts (half random, half symmetric)."
    )
    relax_every: int = setting(5, "Keep every k-th relaxation step, and the last.")
    fmax: float = setting(0.05, "Relaxations stop below this largest force (eV/Å).")
    relax_steps: int = setting(300, "Most BFGS steps of a relaxation.")
    active_runs: int = setting(
        300, "Active family: MD runs with the model, each from an isomer drawn at random."
    )
    active_temperatures: tuple[float, ...] = setting(
        (300.0, 600.0, 1000.0), "Active family: MD temperatures (K), in turn."
    )
    active_steps: int = setting(200, "Active family: Langevin steps of each run with the model.")
    active_per_run: int = setting(
        5, "Active family: frames labelled per run, those the model's members disagree on most."
    )
    minima_starts: int = setting(
        400,
        "Minima family: relaxations with the model from search starts (half random, half "
        "symmetric); the minimum and the active_per_run - 1 path frames its members disagree "
        "on most get labels.",
    )
    seed: int = setting(0, "Seed of every draw; a new seed is a new set of tasks (a new round).")

    def __post_init__(self) -> None:
        unknown = sorted(set(self.families) - set(FAMILIES))
        if unknown:
            raise ValueError(f"unknown family {', '.join(unknown)}: use {', '.join(FAMILIES)}")
        counts = (
            "rattles",
            "md_steps",
            "md_every",
            "relax_every",
            "relax_steps",
            "active_steps",
            "active_per_run",
        )
        for name in counts:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("relax_starts", "active_runs", "minima_starts"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
        for name in ("amplitudes", "temperatures", "active_temperatures"):
            values = getattr(self, name)
            if not values or not all(v > 0 for v in values):
                raise ValueError(f"{name} must be positive numbers, got {values}")
        for name in ("min_distance", "timestep", "friction", "fmax"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.active_per_run > self.active_steps // self.md_every + 1:
            raise ValueError(
                f"active_per_run {self.active_per_run} exceeds the frames of a run "
                f"({self.active_steps // self.md_every + 1})"
            )
