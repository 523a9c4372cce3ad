"""`sample`: the labelled corpus, drawn and labelled with the reference on the Dask engine.

Each task's frames are written to the database as soon as it finishes, in one transaction,
so an interrupted run keeps what it made and the next run with the same settings skips every
task the database already holds (by ``source``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ase.db.core import Database
from tqdm.auto import tqdm

from ase_au20.calculators.base import domain_reported_by_caller
from ase_au20.calculators.factory import CalcSpec, worker_build
from ase_au20.compute.engine import Engine
from ase_au20.database.corpus import corpus_sources, write_frames
from ase_au20.database.rows import load_rows
from ase_au20.models.card import read_card
from ase_au20.workflows.corpus.families import Frames, draw_frames
from ase_au20.workflows.corpus.plan import SampleTask, plan_tasks
from ase_au20.workflows.corpus.settings import SampleSettings
from ase_au20.workflows.structure_files import reference_level

REFERENCE = "dftb"


@dataclass
class SampleReport:
    """What a run did: tasks skipped (already in the database) and done, frames per family."""

    skipped: int = 0
    done: int = 0
    frames: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total_frames(self) -> int:
        return sum(self.frames.values())


def _task_keys(task: SampleTask, level: str) -> dict[str, Any]:
    keys: dict[str, Any] = {
        "family": task.family,
        "parent": task.parent,
        "source": task.source,
        "split": task.split,
        "level": level,
    }
    if task.family in ("md", "active"):
        keys["temperature"] = task.setting
    return keys


@dataclass(frozen=True)
class _SampleTaskFunction:
    """``function(calc, task, progress)`` as the engine calls it (picklable: module-level)."""

    settings: SampleSettings

    def __call__(self, calc: Any, task: SampleTask, progress: Callable[..., None]) -> Frames:
        with domain_reported_by_caller():  # drawn outside the isomers' domain on purpose
            frames = draw_frames(calc, task, self.settings)
        progress(len(frames))
        return frames


def sample_corpus(
    db: Database,
    settings: SampleSettings,
    engine: Engine,
    model: str | None = None,
    progress: bool = True,
) -> SampleReport:
    """Draw and label every task of ``settings`` that ``db`` does not hold yet; the active
    family runs ``model`` (a ``--calc`` spec of an ensemble) on the workers."""
    start = time.perf_counter()
    isomers = load_rows(db)
    if len(isomers) == 0:
        raise ValueError("the database holds no isomers to draw from (au20-workflow db build)")
    built = worker_build(model, "cpu") if model is not None else None
    tasks = plan_tasks(isomers, settings, built)
    done = corpus_sources(db)
    todo = [t for t in tasks if t.source not in done]
    report = SampleReport(skipped=len(tasks) - len(todo))
    reference = CalcSpec.parse(REFERENCE)
    level = reference_level(read_card(reference.folder))
    calc = engine.calculator(worker_build(reference, "cpu"))
    bar = tqdm(total=len(todo), desc="sample", unit="task", disable=not progress)
    try:
        results = engine.map(_SampleTaskFunction(settings), calc, todo, label=lambda t: t.source)
        for task, frames in zip(todo, results, strict=True):
            per_frame: dict[str, Any] = {"step": frames.steps.tolist()}
            if frames.amplitudes is not None:
                per_frame["amplitude"] = frames.amplitudes.tolist()
            write_frames(
                db,
                frames.positions,
                frames.energies,
                frames.forces,
                _task_keys(task, level),
                per_frame,
            )
            report.done += 1
            report.frames[task.family] = report.frames.get(task.family, 0) + len(frames)
            bar.update()
            bar.set_postfix(frames=report.total_frames, refresh=False)
    finally:
        bar.close()
        report.seconds = time.perf_counter() - start
    return report
