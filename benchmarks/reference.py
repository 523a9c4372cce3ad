"""The DFTB1 reference: does it reproduce the labels, and what does a label cost?

Targets: over every labelled isomer, median |E − label| ≤ 1e-4 eV, the largest ≤ 5e-3 eV,
the median of each isomer's largest force ≤ 0.01 eV/Å; one energy + forces call on Au20
≤ 10 ms on one core (beside EMT, tblite's GFN1-xTB and the shipped SchNet, taking turns on
the same fresh geometries, one BLAS thread each); labelling many structures on the Dask
engine ≥ 150 structures/s on 2 cores (and the in-process rate beside it).

Run: ``python benchmarks/reference.py [--n 2000] [--calls 200]``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from docs_page import DOCS, publish
from threadpoolctl import threadpool_limits

from ase_au20.paths import data_dir
from ase_au20.structures import au20_ground_state

TARGETS = {"median_error": 1e-4, "max_error": 5e-3, "median_max_force": 0.01}
CALL_MS = 10.0
LABELS_PER_S = 150.0
CHUNK = 64  # structures per Dask task


def rattled(n: int, sigma: float = 0.05, seed: int = 0) -> list[Atoms]:
    """``n`` different Au20 geometries near the Td pyramid."""
    rng = np.random.default_rng(seed)
    base = au20_ground_state()
    return [
        Atoms(base.numbers, positions=base.positions + rng.normal(0, sigma, (20, 3)))
        for _ in range(n)
    ]


def label_reproduction() -> dict[str, float]:
    """Energy error against every label of the dataset and each isomer's largest force."""
    from ase_au20.database.xyz import read_isomer
    from ase_au20.models import load_model

    model = load_model("dftb")
    files = sorted((data_dir() / "xyz").glob("*.xyz"))
    if not files:
        raise SystemExit(f"no isomers in {data_dir() / 'xyz'} (set AU20_DATA)")
    errors, forces = [], []
    with threadpool_limits(1):
        for path in files:
            isomer = read_isomer(path)
            out = model.predict([isomer.atoms], forces=True)
            errors.append(abs(out["energy"][0] - isomer.energy))
            forces.append(np.linalg.norm(out["forces"][0], axis=1).max())
    return {
        "n": len(errors),
        "median_error": float(np.median(errors)),
        "max_error": float(np.max(errors)),
        "above_1e-3": int((np.array(errors) > 1e-3).sum()),
        "median_max_force": float(np.median(forces)),
    }


def calculators() -> dict[str, Calculator]:
    """The reference and the calculators it is timed beside."""
    from ase.calculators.emt import EMT
    from tblite.ase import TBLite

    from ase_au20 import DFTBAu20, SchNetAu20

    return {
        "DFTB1 (DFTBAu20)": DFTBAu20(),
        "EMT": EMT(),
        "GFN1-xTB (tblite)": TBLite(method="GFN1-xTB", electronic_temperature=300.0, verbosity=0),
        "SchNet ensemble (shipped)": SchNetAu20(device="cpu"),
    }


def call_ms(calcs: dict[str, Calculator], calls: int, warmup: int = 10) -> dict[str, float]:
    """Median ms of one energy + forces ``calculate`` per calculator, taking turns."""
    times: dict[str, list[float]] = {name: [] for name in calcs}
    with threadpool_limits(1):
        for i, atoms in enumerate(rattled(calls + warmup, seed=1)):
            for name, calc in calcs.items():
                start = time.perf_counter()
                calc.calculate(atoms, ["energy", "forces"], all_changes)
                if i >= warmup:
                    times[name].append(time.perf_counter() - start)
    return {name: 1e3 * statistics.median(t) for name, t in times.items()}


def _label_chunk(calc: Any, chunk: list[Atoms], progress: Any) -> int:
    """Energies and forces of a chunk: what a labelling task computes."""
    out = calc.predict(chunk, ["energy", "forces"])
    progress(len(chunk))
    return len(out["energy"])


def labels_per_second(n: int, workers: int | None) -> float:
    """Structures labelled per second with energy and forces: on a local Dask cluster of
    ``workers`` one-thread workers, or in this process with one BLAS thread (None)."""
    from ase_au20.calculators.factory import worker_build
    from ase_au20.compute.engine import open_engine

    structures = rattled(n, seed=2)
    chunks = [structures[k : k + CHUNK] for k in range(0, n, CHUNK)]
    scheduler = "none" if workers is None else "local"
    with open_engine(scheduler, workers) as engine, threadpool_limits(1):
        source = engine.calculator(worker_build("dftb", "cpu"))
        engine.prepare(_label_chunk, source)
        start = time.perf_counter()
        done = sum(engine.map(_label_chunk, source, chunks, label=lambda c: f"{len(c)}"))
        elapsed = time.perf_counter() - start
    assert done == n
    return n / elapsed


def main() -> None:
    """Print the three reports side by side with their targets."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="structures to label")
    parser.add_argument("--calls", type=int, default=200, help="timed single calls")
    parser.add_argument(
        "--report",
        type=Path,
        default=DOCS,
        help="folder of the docs page reference.md and its reference.json",
    )
    args = parser.parse_args()

    print("DFTB1 (auorg-1-1) against the labels of", data_dir())
    labels = label_reproduction()
    for key, target in TARGETS.items():
        ok = "✓" if labels[key] <= target else "✗"
        print(f"  {key:<18} {labels[key]:.2e}  (target ≤ {target:g}) {ok}")
    print(f"  {labels['above_1e-3']} of {labels['n']} isomers differ by more than 1e-3 eV")

    print("\nOne energy + forces call on Au20, one core (median ms)")
    times = call_ms(calculators(), args.calls)
    for name, ms in times.items():
        print(f"  {name:<28} {ms:8.2f}")
    reference = times["DFTB1 (DFTBAu20)"]
    ok = "✓" if reference <= CALL_MS else "✗"
    print(f"  DFTB1 target ≤ {CALL_MS:g} ms {ok}")

    print(f"\nLabelling {args.n} rattled Au20 with energy and forces (structures/s)")
    alone = labels_per_second(args.n, None)
    pair = labels_per_second(args.n, 2)
    ok = "✓" if pair >= LABELS_PER_S else "✗"
    print(f"  in this process, 1 core   {alone:8.1f}")
    print(f"  Dask, 2 workers           {pair:8.1f}  (target ≥ {LABELS_PER_S:g}) {ok}")
    print(f"  ratio                     {pair / alone:8.2f}")
    figures = {"labels": labels, "call_ms": times, "labels_per_s": {"1": alone, "2": pair}}
    write_markdown(figures, args.report)
    print(f"\nreport written to {args.report}/reference.md and reference.json")


def write_markdown(figures: dict[str, Any], folder: Path) -> None:
    """The docs page of a run (``reference.md``) and its figures (``reference.json``)."""
    labels, rates = figures["labels"], figures["labels_per_s"]
    lines = [
        "# The DFTB1 reference: its labels and its cost",
        "",
        "Written by `python benchmarks/reference.py` (`make bench`); figures in",
        "`reference.json` beside this page.",
        "",
        f"Against all {labels['n']} labelled isomers: median |E − label| "
        f"{labels['median_error']:.2e} eV (target ≤ 1e-4), largest {labels['max_error']:.2e} eV "
        f"(≤ 5e-3; {labels['above_1e-3']} above 1e-3), median of each isomer's largest force "
        f"{labels['median_max_force']:.2e} eV/Å (≤ 0.01).",
        "",
        "| one energy + forces call on Au20, one core | median ms |",
        "|---|---|",
        *(f"| {name} | {ms:.2f} |" for name, ms in figures["call_ms"].items()),
        "",
        f"Labelling rattled Au20 with energy and forces: {rates['1']:.0f} structures/s in one "
        f"process, {rates['2']:.0f}/s on 2 Dask workers (target ≥ {LABELS_PER_S:g}).",
    ]
    publish(folder, "reference", figures, lines)


if __name__ == "__main__":
    main()
