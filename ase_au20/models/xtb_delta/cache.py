"""GFN1-xTB results of many structures, computed once: cached by a hash of the geometry and
the xTB settings, computed in parallel processes (one OpenMP thread each) with progress."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from ase import Atoms
from tqdm.auto import tqdm

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


def _init_worker() -> None:
    """One OpenMP thread per process: the processes share the cores instead."""
    os.environ["OMP_NUM_THREADS"] = "1"


def _compute(args: tuple[np.ndarray, np.ndarray, XtbSettings]) -> tuple[float, np.ndarray]:
    numbers, positions, settings = args
    return xtb_energy_forces(Atoms(numbers, positions=positions), settings)


def compute_baseline(
    structures: Sequence[Atoms],
    settings: XtbSettings,
    workers: int | None = None,
    progress: bool = True,
    on_result: Callable[[int, float, np.ndarray], None] | None = None,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """GFN1 energies (n,) and forces of ``structures`` on ``workers`` processes (default: the
    usable cores; one process for fewer than ``POOL_MIN`` structures, where starting a pool
    costs more than it saves). ``on_result(i, energy, forces)`` sees each result as it
    arrives, so a cache keeps what was computed before a failure or an interrupt."""
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if len(structures) >= POOL_MIN else 1
    jobs = [(a.numbers, a.positions, settings) for a in structures]
    bar = tqdm(total=len(jobs), desc=settings.method, unit="structure", disable=not progress)
    pool = None
    if workers == 1:
        computed = map(_compute, jobs)
    else:
        pool = ProcessPoolExecutor(
            workers, mp_context=get_context("spawn"), initializer=_init_worker
        )
        computed = pool.map(_compute, jobs, chunksize=4)
    energies, forces = [], []
    try:
        for energy, force in computed:
            if on_result is not None:
                on_result(len(energies), energy, force)
            energies.append(energy)
            forces.append(force)
            bar.update()
    except BaselineError as err:  # results come in order: the failure is the next structure
        raise BaselineError(f"structure {len(energies)}: {err}") from None
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(cancel_futures=True)
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
        workers: int | None = None,
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
