"""What `sample` draws: its settings and the tasks they make, one per trajectory or batch.

Tasks are a pure function of the settings and the isomers, each with a stable ``source``
name, so a run that is stopped and started again skips what the database already holds.
Every frame of a task takes its parent isomer's split; a task without a parent (a random or
symmetric start) draws its split from the same shares, seeded by its name.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from ase_au20.compute.engine import BuildSpec
from ase_au20.database.corpus import NO_PARENT
from ase_au20.database.rows import IsomerSet
from ase_au20.workflows.corpus.settings import SampleSettings

# shares of the splits of parentless tasks: those of the isomers (test, calib, then 5 folds)
PARENTLESS_SPLITS = {"test": 0.15, "calib": 0.10, "val": 0.15, "train": 0.60}
STARTS = ("random", "symmetric")
MODEL_FAMILIES = ("active", "minima")  # drawn with the current model, labelled by the reference


@dataclass(frozen=True)
class SampleTask:
    """One unit of work: a family, the structure it starts from and how it is drawn."""

    family: str
    source: str  # unique, stable name: what resume skips by
    parent: int
    split: str
    start: np.ndarray | None = field(compare=False, repr=False)  # parent geometry, Å
    setting: float = 0.0  # K for md and active; 0 otherwise
    start_kind: str = "isomer"  # or random / symmetric
    seed: int = 0
    model: BuildSpec | None = field(default=None, compare=False, repr=False)  # MODEL_FAMILIES


def parentless_split(name: str, seed: int) -> str:
    """A split for a task without a parent, drawn from PARENTLESS_SPLITS by its name."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    names = list(PARENTLESS_SPLITS)
    return str(rng.choice(names, p=list(PARENTLESS_SPLITS.values())))


def plan_tasks(
    isomers: IsomerSet, settings: SampleSettings, model: BuildSpec | None = None
) -> list[SampleTask]:
    """Every task of ``settings`` over ``isomers``, in a fixed order; ``model`` (the current
    ensemble, built on the workers) is what the active and minima families run and ask."""
    for family in MODEL_FAMILIES:
        if family in settings.families and model is None:
            raise ValueError(
                f"the {family} family needs a model (--model) whose disagreement picks frames"
            )
    tasks: list[SampleTask] = []
    parents = list(zip(isomers.ids.tolist(), isomers.splits.tolist(), isomers.atoms, strict=True))
    seed = settings.seed
    if "rattle" in settings.families:
        for cid, split, atoms in parents:
            tasks.append(
                SampleTask(
                    "rattle", f"rattle-{cid}-s{seed}", cid, split, atoms.positions, seed=seed
                )
            )
    if "md" in settings.families:
        temps = settings.temperatures
        for k, (cid, split, atoms) in enumerate(parents):
            t = temps[k % len(temps)]
            tasks.append(
                SampleTask(
                    "md", f"md-{t:g}K-{cid}-s{seed}", cid, split, atoms.positions, t, seed=seed
                )
            )
    for family, starts in (("relax", settings.relax_starts), ("minima", settings.minima_starts)):
        if family not in settings.families:
            continue
        for k in range(starts):
            kind = STARTS[k % 2]
            name = f"{family}-{kind}-{k}-s{seed}"
            split = parentless_split(name, seed)
            built = model if family == "minima" else None
            tasks.append(SampleTask(family, name, NO_PARENT, split, None, 0.0, kind, seed, built))
    if "active" in settings.families:
        temps = settings.active_temperatures
        order = np.random.default_rng([seed, 4]).permutation(len(parents))
        for k in range(settings.active_runs):
            cid, split, atoms = parents[order[k % len(parents)]]
            t = temps[k % len(temps)]
            name = f"active-{t:g}K-{cid}-r{k}-s{seed}"
            tasks.append(
                SampleTask("active", name, cid, split, atoms.positions, t, seed=seed, model=model)
            )
    return tasks
