"""GFN1-xTB results of many structures, computed once: cached by a hash of the geometry and
the xTB settings, computed on Dask workers (one OpenMP thread each) with progress."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from ase import Atoms
from tqdm.auto import tqdm

from ase_au20.compute.engine import (
    Engine,
    TaskFailed,
    inside_worker,
    open_engine,
    usable_cores,
)
from ase_au20.models.xtb_delta.baseline import BaselineError, XtbSettings, xtb_energy_forces


def default_cache_dir() -> Path:
    """``$AU20_CACHE`` or ``~/.cache/ase-au20``, with an ``xtb`` subfolder."""
    root = os.environ.get("AU20_CACHE") or Path.home() / ".cache" / "ase-au20"
    return Path(root) / "xtb"


def geometry_key(atoms: Atoms, settings: XtbSettings) -> str:
    """SHA-256 of the atomic numbers, positions (rounded to 1e-8 Å) and settings."""
    digest = hashlib.sha256(np.asarray(atoms.numbers, dtype=np.int64).tobytes())
    digest.update(np.round(np.asarray(atoms.positions, dtype=float), 8).tobytes())
    digest.update(json.dumps(settings.to_dict(), sort_keys=True).encode())
    return digest.hexdigest()


POOL_MIN = 8
CHUNK = 4  # structures per task: a few seconds of GFN1, small next to a task's overhead


def _compute_chunk(
    _calc: None, chunk: tuple[int, list[Atoms], XtbSettings], progress: Callable[[], None]
) -> tuple[list[tuple[float, np.ndarray]], str | None]:
    """GFN1 energy and forces of each structure of one task, up to the first failure, and
    that failure's message naming the structure (None: all done)."""
    first, structures, settings = chunk
    results = []
    for offset, atoms in enumerate(structures):
        try:
            results.append(xtb_energy_forces(atoms, settings))
        except BaselineError as err:
            return results, f"structure {first + offset}: {err}"
        progress()
    return results, None


def _task_label(chunk: tuple[int, list[Atoms], XtbSettings]) -> str:
    return f"GFN1 of structures {chunk[0]}–{chunk[0] + len(chunk[1]) - 1}"


def compute_baseline(
    structures: Sequence[Atoms],
    settings: XtbSettings,
    workers: int | None = 1,
    progress: bool = True,
    on_result: Callable[[int, float, np.ndarray], None] | None = None,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """GFN1 energies (n,) and forces of ``structures``: in this process by default, so a
    calculator never starts worker processes of its own (a script without a main guard
    could not); on ``workers`` Dask workers of a local cluster when asked, None meaning the
    usable cores (this process still for fewer than ``POOL_MIN`` structures, where starting
    a cluster costs more than it saves, and inside a Dask worker, which cannot start one).
    ``on_result(i, energy, forces)`` sees each result in order as it arrives, so a cache
    keeps what was computed before a failure or an interrupt."""
    if workers is None:
        few = len(structures) < POOL_MIN
        workers = 1 if few or inside_worker() else usable_cores()
    chunks = [
        (
            start,
            [Atoms(a.numbers, a.positions) for a in structures[start : start + CHUNK]],
            settings,
        )
        for start in range(0, len(structures), CHUNK)
    ]
    bar = tqdm(total=len(structures), desc=settings.method, unit="structure", disable=not progress)
    energies: list[float] = []
    forces: list[np.ndarray] = []
    engine = open_engine("local", workers) if workers > 1 else contextlib.nullcontext(Engine())
    try:
        with engine as running:
            computed = running.map(
                _compute_chunk,
                None,
                chunks,
                label=_task_label,
                on_progress=bar.update,
            )
            for results, failure in computed:
                for energy, force in results:
                    if on_result is not None:
                        on_result(len(energies), energy, force)
                    energies.append(energy)
                    forces.append(force)
                if failure is not None:
                    raise BaselineError(failure)
    except TaskFailed as err:  # not a GFN1 failure: a bug or a lost worker
        raise BaselineError(str(err)) from None
    finally:
        bar.close()
    return np.array(energies), forces


class BaselineCache:
    """A folder of ``<key>.npz`` files, each with one structure's energy and forces."""

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_cache_dir()

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.npz"

    def get(self, key: str) -> tuple[float, np.ndarray] | None:
        """The cached result of ``key``, or None."""
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                return float(data["energy"]), np.asarray(data["forces"])
        except (OSError, ValueError, KeyError):
            return None  # a damaged entry is recomputed

    def put(self, key: str, energy: float, forces: np.ndarray) -> None:
        """Store one result atomically (temp file + rename)."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, energy=np.array(energy), forces=forces)
        os.replace(tmp, path)

    def compute(
        self,
        structures: Sequence[Atoms],
        settings: XtbSettings,
        workers: int | None = 1,
        progress: bool = True,
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Energies (n,) and forces of ``structures``: cached ones read, the rest computed
        by ``compute_baseline`` and stored."""
        keys = [geometry_key(a, settings) for a in structures]
        results: dict[str, tuple[float, np.ndarray]] = {}
        missing: dict[str, int] = {}  # key -> first structure with it
        for i, key in enumerate(keys):
            if key in results or key in missing:
                continue
            hit = self.get(key)
            if hit is None:
                missing[key] = i
            else:
                results[key] = hit
        if missing:
            todo = list(missing)

            def store(index: int, energy: float, force: np.ndarray) -> None:
                self.put(todo[index], energy, force)
                results[todo[index]] = (energy, force)

            compute_baseline(
                [structures[i] for i in missing.values()], settings, workers, progress, store
            )
        return np.array([results[k][0] for k in keys]), [results[k][1] for k in keys]
