"""Screening: energy, interval, spread and domain verdict of a stream of structures, as
prediction rows of an ASE database at any URL.

Structures are read lazily and sent to the engine in chunks; each chunk's rows are written
in one transaction together with the run's ledger in the database metadata (how many
structures of this run are done), under the database's writer lock. So a killed screen
resumes where the ledger says, and two processes screening the same run never write a chunk
twice. Rows never carry an ``energy``: that is a label.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from tqdm import tqdm

from ase_au20.database.predictions import prediction_pairs
from ase_au20.database.store import connect
from ase_au20.database.writer_lock import writer_lock
from ase_au20.workflows.calculators import ModelIdentity, predict_batch, uncertainty_properties
from ase_au20.workflows.engine import Engine
from ase_au20.workflows.relax import OPTIMIZERS, relax
from ase_au20.workflows.structure_stream import describe_sources, stream_structures

LEDGER = "screen_runs"  # metadata key: run id -> what was screened and how far it got


@dataclass(frozen=True)
class ScreenSettings:
    """How each structure is treated: a single point, or a short relaxation first."""

    relax: bool = False
    fmax: float = 0.05  # eV/Å
    relax_steps: int = 200
    optimizer: str = "fire"
    chunk_size: int = 256  # structures per task and per transaction

    def validate(self) -> None:
        """ValueError naming the first bad setting."""
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}: use {', '.join(OPTIMIZERS)}")
        if self.chunk_size < 1 or self.relax_steps < 1:
            raise ValueError("chunk_size and relax_steps must be >= 1")
        if self.fmax <= 0:
            raise ValueError(f"fmax must be positive, got {self.fmax}")


@dataclass
class Chunk:
    """Consecutive structures of the stream, as plain arrays (cheap to send to a worker)."""

    first: int
    labels: list[str]
    numbers: list[np.ndarray]
    positions: list[np.ndarray]
    settings: ScreenSettings


@dataclass
class ScreenReport:
    """What a screen did: counts, where its time went, and the lowest predictions."""

    url: str
    run: str
    screened: int = 0  # structures evaluated and written by this call
    resumed_from: int = 0  # structures of this run already in the database
    failed: list[tuple[str, str]] = field(default_factory=list)  # (label, reason)
    out_of_domain: int = 0
    seconds: float = 0.0
    read_seconds: float = 0.0
    model_seconds: float = 0.0  # summed over workers
    write_seconds: float = 0.0
    lowest: list[tuple[float, float, str, bool | None]] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Structures per second of wall time."""
        return self.screened / self.seconds if self.seconds > 0 else 0.0


def run_id(sources: list[str], model: ModelIdentity, settings: ScreenSettings) -> str:
    """The identity of a screen: the same inputs, model and settings resume the same run."""
    text = json.dumps(
        {"sources": sources, "model": model.name, "card": model.card_sha256, **asdict(settings)},
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def chunks_of(
    stream: Iterator[tuple[str, Atoms]], settings: ScreenSettings, start: int, clock: list[float]
) -> Iterator[Chunk]:
    """The stream from structure ``start`` on, in chunks; reading time is added to ``clock``."""
    index = start
    while True:
        tic = time.perf_counter()
        batch = list(itertools.islice(stream, settings.chunk_size))
        clock[0] += time.perf_counter() - tic
        if not batch:
            return
        yield Chunk(
            index,
            [label for label, _ in batch],
            [a.numbers for _, a in batch],
            [a.positions for _, a in batch],
            settings,
        )
        index += len(batch)


def evaluate_chunk(calc: Calculator, chunk: Chunk, progress: Callable[..., None]) -> dict:
    """Predictions (and relaxed positions) of one chunk; a structure the calculator refuses
    (not a valid cluster) is reported with its reason instead of stopping the screen."""
    tic = time.perf_counter()
    settings = chunk.settings
    structures = [
        Atoms(n, positions=p) for n, p in zip(chunk.numbers, chunk.positions, strict=True)
    ]
    failed: dict[int, str] = {}
    converged = np.ones(len(structures), dtype=bool)
    if settings.relax:
        for i, atoms in enumerate(structures):
            try:
                result = relax(atoms, calc, settings.fmax, settings.optimizer, settings.relax_steps)
            except ValueError as exc:
                failed[i] = str(exc)
                continue
            structures[i] = Atoms(atoms.numbers, positions=result.atoms.positions)
            converged[i] = result.converged
    properties = ("energy", *uncertainty_properties(calc))
    ok = [i for i in range(len(structures)) if i not in failed]
    try:
        out = predict_batch(calc, [structures[i] for i in ok], properties)
    except ValueError:  # one bad structure: find it, keep the rest
        out = _one_by_one(calc, structures, ok, properties, failed)
        ok = [i for i in ok if i not in failed]
    progress(len(structures))
    n = len(structures)
    full = {
        key: np.full(n, np.nan)
        for key in ("energy", "energy_uncertainty", "energy_std", "domain_score", "in_domain")
    }
    for key, values in out.items():
        if key in full:
            full[key][ok] = np.asarray(values, dtype=float)
    card = getattr(calc, "card", None)
    return {
        "first": chunk.first,
        **full,
        "converged": converged,
        "positions": [s.positions for s in structures] if settings.relax else None,
        "failed": failed,
        "card_sha256": str(card.get("sha256", "")) if isinstance(card, dict) else "",
        "model_seconds": time.perf_counter() - tic,
    }


def _one_by_one(calc, structures, ok, properties, failed) -> dict[str, np.ndarray]:
    """``predict_batch`` structure by structure, recording the refused ones in ``failed``."""
    columns: dict[str, list[float]] = {}
    for i in ok:
        try:
            single = predict_batch(calc, [structures[i]], properties)
        except ValueError as exc:
            failed[i] = str(exc).removeprefix("structure 0: ")
            continue
        for key, values in single.items():
            columns.setdefault(key, []).append(float(np.asarray(values).ravel()[0]))
    return {key: np.array(values) for key, values in columns.items()}


def _rows(result: dict, chunk: Chunk, run: str, model: ModelIdentity) -> list[tuple[Atoms, dict]]:
    """The prediction rows of one evaluated chunk."""
    rows = []
    for i, label in enumerate(chunk.labels):
        if i in result["failed"]:
            continue
        positions = chunk.positions[i] if result["positions"] is None else result["positions"][i]
        in_domain = result["in_domain"][i]
        kvp = prediction_pairs(
            result["energy"][i],
            result["energy_uncertainty"][i],
            result["energy_std"][i],
            None if np.isnan(in_domain) else bool(in_domain),
            model.name,
            result["card_sha256"] or model.card_sha256,
        )
        kvp.update(source=label, screen_run=run, screen_index=chunk.first + i)
        if chunk.settings.relax:
            kvp["converged"] = bool(result["converged"][i])
        rows.append((Atoms(chunk.numbers[i], positions=positions), kvp))
    return rows


def write_chunk(url: str, run: str, chunk: Chunk, rows: list[tuple[Atoms, dict]]) -> bool:
    """Write one chunk's rows and move the run's ledger past it, in one transaction under the
    writer lock; False when the ledger shows another process wrote it already."""
    with writer_lock(url):
        db = connect(url)
        with db:
            metadata = db.metadata
            entry = metadata.get(LEDGER, {}).get(run)
            if entry is None:
                raise ValueError(f"{url}: screen run {run} is not in the database's ledger")
            if entry["done"] > chunk.first:
                return False
            if entry["done"] < chunk.first:
                raise ValueError(
                    f"{url}: screen run {run} is at structure {entry['done']}, this chunk starts "
                    f"at {chunk.first}: another process is screening it with other settings"
                )
            for atoms, kvp in rows:
                db.write(atoms, key_value_pairs=kvp)
            entry["done"] = chunk.first + len(chunk.labels)
            entry["rows"] = entry.get("rows", 0) + len(rows)
            metadata[LEDGER][run] = entry
            db.metadata = metadata
    return True


def open_run(url: str, run: str, description: dict[str, Any]) -> int:
    """Register ``run`` in the ledger (if new) and return how many of its structures are done."""
    from ase_au20.database.migrate import require_migrated

    with writer_lock(url):
        db = connect(url)
        with db:
            require_migrated(db, url)
            metadata = db.metadata
            runs = metadata.setdefault(LEDGER, {})
            if run not in runs:
                runs[run] = {**description, "done": 0, "rows": 0}
                db.metadata = metadata
            return int(runs[run]["done"])


def screen(
    sources: list[str | os.PathLike[str]],
    calc: Calculator | str,
    url: str | os.PathLike[str],
    settings: ScreenSettings | None = None,
    engine: Engine | None = None,
    model: ModelIdentity | None = None,
    progress: bool = False,
    top: int = 10,
) -> ScreenReport:
    """Screen every structure of ``sources`` with ``calc`` into the database ``url``.

    ``calc``: a calculator, or a ``--calc`` spec that each worker builds once; ``model``
    names it in the rows (default: from ``calc``). Resumes a run the database's ledger knows.
    """
    settings = settings or ScreenSettings()
    settings.validate()
    engine = engine or Engine()
    url = os.fspath(url)
    if isinstance(calc, str) and model is None:
        raise ValueError("a calculator spec needs model=ModelIdentity(...) to name it in rows")
    model = model or ModelIdentity.of(calc)
    described = describe_sources(sources)
    if url in described or os.path.abspath(url) in described:
        raise ValueError(f"{url} is both an input and the output of the screen")
    run = run_id(described, model, settings)
    done = open_run(url, run, {"sources": described, "model": model.name, **asdict(settings)})
    report = ScreenReport(url=url, run=run, resumed_from=done)
    start = time.perf_counter()
    stream = stream_structures(list(sources))
    read_clock = [0.0]
    tic = time.perf_counter()
    for _ in itertools.islice(stream, done):  # what the ledger says is written already
        pass
    read_clock[0] += time.perf_counter() - tic
    bar = tqdm(desc="screen", unit=" structures", disable=not progress)
    lowest: list[tuple[float, float, str, bool | None]] = []
    chunks = chunks_of(stream, settings, done, read_clock)
    pending: dict[int, Chunk] = {}

    def remembered(items: Iterator[Chunk]) -> Iterator[Chunk]:
        for item in items:
            pending[item.first] = item
            yield item

    results = engine.map(
        evaluate_chunk,
        engine.calculator(calc),
        remembered(chunks),
        label=lambda c: (
            f"structures {c.first}–{c.first + len(c.labels) - 1} ({c.labels[0]} … {c.labels[-1]})"
        ),
        on_progress=bar.update,
    )
    for result in results:
        chunk = pending.pop(result["first"])
        rows = _rows(result, chunk, run, model)
        tic = time.perf_counter()
        written = write_chunk(url, run, chunk, rows)
        report.write_seconds += time.perf_counter() - tic
        report.model_seconds += result["model_seconds"]
        if not written:
            continue
        report.screened += len(rows)
        report.failed += [(chunk.labels[i], reason) for i, reason in result["failed"].items()]
        for _, kvp in rows:
            report.out_of_domain += kvp.get("in_domain") is False
            item = (-kvp["pred_energy"], kvp.get("pred_uncertainty", np.nan), kvp["source"])
            heapq.heappush(lowest, (*item, kvp.get("in_domain")))
            if len(lowest) > top:
                heapq.heappop(lowest)
    bar.close()
    report.seconds = time.perf_counter() - start
    report.read_seconds = read_clock[0]
    report.lowest = sorted((-e, u, s, d) for e, u, s, d in lowest)
    return report
