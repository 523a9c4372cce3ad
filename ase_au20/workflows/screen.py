"""Screening: energy, interval, spread and domain verdict of a stream of structures, as
prediction rows of an ASE database at any URL.

Structures are read lazily and sent to the engine in chunks; each worker parses, predicts
and writes its chunk's rows in one transaction together with the run's ledger in the
database metadata (which chunks of this run are written), under the database's writer
lock. So a killed screen resumes where the ledger says, and two processes screening the
same run never write a chunk twice. Rows never carry an ``energy``: that is a label.
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

from ase_au20.calculators.factory import CalcSpec, worker_build
from ase_au20.compute.engine import Engine
from ase_au20.database.bulk_rows import write_rows
from ase_au20.database.labelled_inputs import split_index
from ase_au20.database.predictions import prediction_pairs
from ase_au20.database.store import connect, reads_as_number, shown_url
from ase_au20.database.writer_lock import writer_lock
from ase_au20.workflows.any_calculator import ModelIdentity, predict_batch, uncertainty_properties
from ase_au20.workflows.relax import OPTIMIZERS, relax
from ase_au20.workflows.structure_stream import (
    Frame,
    describe_sources,
    parse_frames,
    source_states,
    stream_frames,
)

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
        if not self.fmax > 0:  # NaN too
            raise ValueError(f"fmax must be positive, got {self.fmax}")


@dataclass
class Chunk:
    """Consecutive structures of the stream, with where their rows go: one task."""

    first: int
    labels: list[str]
    frames: list[Frame]  # plain Atoms or xyz text, parsed on the worker
    url: str
    run: str
    model: ModelIdentity
    settings: ScreenSettings
    top: int = 10


@dataclass
class ScreenReport:
    """What a screen did: counts, where its time went, and the lowest predictions."""

    url: str
    run: str
    screened: int = 0  # structures evaluated and written by this call
    resumed_from: int = 0  # structures of this run already in the database
    failed: list[tuple[str, str]] = field(default_factory=list)  # (label, reason)
    out_of_domain: int = 0
    seconds: float = 0.0  # from the workers being ready to the last chunk written
    setup_seconds: float = 0.0  # building the calculator on the workers, before that
    read_seconds: float = 0.0  # reading the stream here + parsing on the workers
    model_seconds: float = 0.0  # summed over workers
    write_seconds: float = 0.0  # summed over workers, lock waits included
    lock_seconds: float = 0.0  # of write_seconds: waiting for the database's writer lock
    lowest: list[tuple[float, float, str, bool | None]] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Structures per second of wall time."""
        return self.screened / self.seconds if self.seconds > 0 else 0.0


def run_id(
    sources: list[str], model: ModelIdentity, settings: ScreenSettings, states: list[str]
) -> str:
    """The identity of a screen: the same inputs (as they are now, ``states``), model and
    settings resume the same run; a changed input starts a new one.

    16 hex digits of their hash; one in 770 of those reads as a number (``1234…`` or
    ``12e45…``), which ASE refuses as a string value, so such an id starts with ``r``.
    """
    text = json.dumps(
        {
            "sources": sources,
            "states": states,
            "model": model.name,
            "card": model.card_sha256,
            **asdict(settings),
        },
        sort_keys=True,
    )
    digest = hashlib.sha256(text.encode()).hexdigest()
    return "r" + digest[:15] if reads_as_number(digest[:16]) else digest[:16]


def chunks_of(
    stream: Iterator[tuple[str, Frame]], size: int, start: int, clock: list[float]
) -> Iterator[tuple[int, list[str], list[Frame]]]:
    """(first index, labels, frames) of the stream from structure ``start`` on, ``size`` at a
    time; the time spent reading is added to ``clock``."""
    index = start
    while True:
        tic = time.perf_counter()
        batch = list(itertools.islice(stream, size))
        clock[0] += time.perf_counter() - tic
        if not batch:
            return
        frames = [Atoms(f.numbers, f.positions) if isinstance(f, Atoms) else f for _, f in batch]
        yield index, [label for label, _ in batch], frames
        index += len(batch)


def _chunk_label(chunk: Chunk) -> str:
    """What a failing task names: its structures' indices and first and last labels."""
    last = chunk.first + len(chunk.labels) - 1
    return f"structures {chunk.first}–{last} ({chunk.labels[0]} … {chunk.labels[-1]})"


def evaluate_chunk(calc: Calculator, chunk: Chunk, progress: Callable[..., None]) -> dict:
    """Parse, predict (after a relaxation with ``--relax``) and write one chunk, on a worker.

    A structure the calculator refuses (not a valid cluster) is reported with its reason
    instead of stopping the screen. Returns the chunk's counts, timings and lowest rows.
    """
    tic = time.perf_counter()
    structures, failed = parse_frames(chunk.frames)
    read_seconds = time.perf_counter() - tic
    settings = chunk.settings
    converged = np.ones(len(structures), dtype=bool)
    if settings.relax:
        for i, atoms in enumerate(structures):
            if i in failed:
                continue
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
    predicted = {
        key: np.full(len(structures), np.nan)
        for key in ("energy", "energy_uncertainty", "energy_std", "in_domain")
    }
    for key, values in out.items():
        if key in predicted:
            predicted[key][ok] = np.asarray(values, dtype=float)
    model_seconds = time.perf_counter() - tic - read_seconds
    card = getattr(calc, "card", None)
    sha = str(card.get("sha256", "")) if isinstance(card, dict) else chunk.model.card_sha256
    rows = _rows(chunk, structures, predicted, converged, failed, sha)
    tic = time.perf_counter()
    write = write_chunk(chunk.url, chunk.run, chunk.first, len(chunk.labels), rows)
    progress(len(structures))
    lowest = heapq.nsmallest(
        chunk.top,
        (
            (
                kvp["pred_energy"],
                kvp.get("pred_uncertainty", np.nan),
                kvp["source"],
                kvp.get("in_domain"),
            )
            for _, kvp in rows
        ),
    )
    return {
        "written": write.written,
        "rows": len(rows),
        "failed": [(chunk.labels[i], reason) for i, reason in sorted(failed.items())],
        "out_of_domain": sum(kvp.get("in_domain") is False for _, kvp in rows),
        "lowest": lowest,
        "read_seconds": read_seconds,
        "model_seconds": model_seconds,
        "write_seconds": time.perf_counter() - tic,
        "lock_seconds": write.lock_wait,
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


def _rows(chunk: Chunk, structures, predicted, converged, failed, sha) -> list[tuple[Atoms, dict]]:
    """The prediction rows of one evaluated chunk (refused structures have none)."""
    rows = []
    for i, label in enumerate(chunk.labels):
        if i in failed:
            continue
        in_domain = predicted["in_domain"][i]
        kvp = prediction_pairs(
            predicted["energy"][i],
            predicted["energy_uncertainty"][i],
            predicted["energy_std"][i],
            None if np.isnan(in_domain) else bool(in_domain),
            chunk.model.name,
            sha,
        )
        kvp.update(source=label, screen_run=chunk.run, screen_index=chunk.first + i)
        if chunk.settings.relax:
            kvp["converged"] = bool(converged[i])
        # numbers and positions only: a frame read by ASE may carry the input's energy as a
        # calculator, which must not become this prediction row's label
        rows.append((Atoms(structures[i].numbers, positions=structures[i].positions), kvp))
    return rows


@dataclass(frozen=True)
class ChunkWrite:
    """What writing one chunk did."""

    written: bool  # False: the ledger shows it written already (another process, a rerun)
    lock_wait: float  # s spent waiting for the database's writer lock


def write_chunk(
    url: str, run: str, first: int, size: int, rows: list[tuple[Atoms, dict]]
) -> ChunkWrite:
    """Write the rows of the chunk of ``size`` structures from ``first`` and record it in the
    run's ledger, in one transaction under the writer lock.

    Chunks may finish in any order: the ledger keeps ``done`` (every structure before it is
    written) and ``ahead`` (chunks written beyond ``done``, first -> end).
    """
    with writer_lock(url) as waited:
        db = connect(url)  # fresh: ASE caches the metadata it has read
        with db:
            metadata = db.metadata
            entry = metadata.get(LEDGER, {}).get(run)
            if entry is None:
                raise ValueError(
                    f"{shown_url(url)}: screen run {run} is not in the database's ledger"
                )
            ahead = entry.setdefault("ahead", {})
            if first < entry["done"] or str(first) in ahead:
                return ChunkWrite(written=False, lock_wait=waited)
            write_rows(db, rows)
            ahead[str(first)] = first + size
            while str(entry["done"]) in ahead:
                entry["done"] = ahead.pop(str(entry["done"]))
            entry["rows"] = entry.get("rows", 0) + len(rows)
            metadata[LEDGER][run] = entry
            db.metadata = metadata
    return ChunkWrite(written=True, lock_wait=waited)


def open_run(url: str, run: str, description: dict[str, Any]) -> tuple[int, set[int]]:
    """Register ``run`` in the ledger (if new); how far it is done, and the chunks written
    beyond that (their first structure)."""
    from ase_au20.database.migrate import require_migrated

    with writer_lock(url):
        db = connect(url)
        with db:
            require_migrated(db, url)
            metadata = db.metadata
            runs = metadata.setdefault(LEDGER, {})
            if run not in runs:
                runs[run] = {**description, "done": 0, "rows": 0, "ahead": {}}
                db.metadata = metadata
            entry = runs[run]
            return int(entry["done"]), {int(k) for k in entry.get("ahead", {})}


def _same_database(source: str | os.PathLike[str], url: str) -> bool:
    """Whether ``source`` (any input, ``db@selection`` included) reads the database ``url``."""
    text, _ = split_index(os.fspath(source))
    if "://" in text or "://" in url:
        return text == url
    return os.path.exists(text) and os.path.realpath(text) == os.path.realpath(url)


def screen(
    sources: list[str | os.PathLike[str]],
    calc: Calculator | str | CalcSpec,
    url: str | os.PathLike[str],
    settings: ScreenSettings | None = None,
    engine: Engine | None = None,
    model: ModelIdentity | None = None,
    progress: bool = False,
    top: int = 10,
    device: str = "auto",
    confidence: float | None = None,
) -> ScreenReport:
    """Screen every structure of ``sources`` with ``calc`` into the database ``url``.

    ``calc``: a calculator, or a ``--calc`` spec that each worker builds once (on
    ``device``); ``model`` names it in the rows (default: from ``calc``). The workers parse,
    predict and write their chunks; this process reads the stream and keeps the summary.
    Resumes a run the database's ledger knows.
    """
    settings = settings or ScreenSettings()
    settings.validate()
    engine = engine or Engine()
    url = os.fspath(url)
    if model is None:
        model = (
            ModelIdentity.of_spec(calc if isinstance(calc, CalcSpec) else CalcSpec.parse(calc))
            if isinstance(calc, str | CalcSpec)
            else ModelIdentity.of(calc)
        )
    described = describe_sources(sources)
    if any(_same_database(source, url) for source in sources):
        raise ValueError(
            f"{shown_url(url)} is both an input and the output of the screen: it would "
            "screen its own predictions; write them into another database"
        )
    states = source_states(list(sources))
    run = run_id(described, model, settings, states)
    done, ahead = open_run(
        url, run, {"sources": described, "states": states, "model": model.name, **asdict(settings)}
    )
    report = ScreenReport(url=url, run=run, resumed_from=done)
    spec = isinstance(calc, str | CalcSpec)
    built = worker_build(calc, device, confidence) if spec else calc
    calculator = engine.calculator(built)
    report.setup_seconds = engine.prepare(evaluate_chunk, calculator)
    start = time.perf_counter()
    stream = stream_frames(list(sources))
    read_clock = [0.0]
    for _ in itertools.islice(stream, done):  # what the ledger says is written already
        pass
    # closed on an error too, so the error is printed on a line of its own
    with tqdm(desc="screen", unit=" structures", disable=not progress) as bar:
        chunks = (
            Chunk(first, labels, frames, url, run, model, settings, top)
            for first, labels, frames in chunks_of(stream, settings.chunk_size, done, read_clock)
            if first not in ahead
        )
        results = engine.map(
            evaluate_chunk,
            calculator,
            chunks,
            label=_chunk_label,
            on_progress=bar.update,
        )
        lowest: list[tuple[float, float, str, bool | None]] = []
        for result in results:
            report.read_seconds += result["read_seconds"]
            report.model_seconds += result["model_seconds"]
            report.write_seconds += result["write_seconds"]
            report.lock_seconds += result["lock_seconds"]
            if not result["written"]:
                continue
            report.screened += result["rows"]
            report.failed += result["failed"]
            report.out_of_domain += result["out_of_domain"]
            lowest = heapq.nsmallest(top, [*lowest, *map(tuple, result["lowest"])])
    report.seconds = time.perf_counter() - start
    report.read_seconds += read_clock[0]
    report.lowest = lowest
    return report
