"""SchNet speed report: training s/epoch (with/without the zero-force term) and predict timings.

Trains the default architecture (128 hidden, 4 blocks, 64 RBF, 6 Å) on the db's train split
for a few epochs per setting (one process with 1 or 2 torch threads, or 2 data-parallel
processes) and prints the median s/epoch; then times one energy+forces
call on Au20 and energy-only throughput. The prototype needed ~1.4 s/epoch on this 2-core
machine (target ≤ 0.47). Timings are noisy when other processes share the CPU: the load
average and CPU steal seen during the run are printed beside them.

Run: ``python benchmarks/schnet_training_speed.py --db runs/bench/au20-seed.db [--epochs 4]``.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from docs_page import DOCS, publish_printed, recording

from ase_au20.database import load_rows
from ase_au20.models.schnet.config import SchNetConfig
from ase_au20.models.schnet.network import SchNet, SchNetModel
from ase_au20.models.schnet.training import train_schnet
from ase_au20.paths import PRETRAINED_DIR


def cpu_steal() -> tuple[int, int]:
    """(steal, total) jiffies from /proc/stat (0, 1 where unavailable)."""
    try:
        with open("/proc/stat") as handle:
            fields = [int(v) for v in handle.readline().split()[1:]]
    except OSError:
        return 0, 1
    return (fields[7] if len(fields) > 7 else 0), sum(fields)


def load_note(before: tuple[int, int]) -> str:
    """Load average and CPU steal share since ``before``."""
    steal, total = cpu_steal()
    share = (steal - before[0]) / max(total - before[1], 1)
    return f"load {os.getloadavg()[0]:.1f}, steal {100 * share:.0f}%"


def epoch_time(train, val, config: SchNetConfig) -> float:
    """Median s/epoch of a short run (first epoch dropped as warm-up)."""
    model = train_schnet(train, val, config, progress=False)
    seconds = model.card["training"]["members"][0]
    return float(np.median(seconds["seconds_history"][1:]))


def median_ms(fn, repeats: int) -> float:
    """Median wall time of ``fn()`` in ms."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def main() -> None:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="database built with --split seed")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--predict-only", action="store_true", help="skip the training part")
    parser.add_argument("--report", type=Path, default=DOCS, help="folder of the docs page")
    args = parser.parse_args()
    with recording() as printed:
        figures = measure(args.db, args.epochs, args.predict_only)
    publish_printed(
        args.report,
        "schnet-speed",
        "SchNet training and prediction speed",
        __doc__,
        printed.getvalue(),
        figures,
    )


def measure(db: str, epochs: int, predict_only: bool) -> dict[str, Any]:
    """Print s/epoch per training setting and the predict timings; return them."""
    figures: dict[str, Any] = {"epoch_s": {}}
    train, val = load_rows(db, "train"), load_rows(db, "val")
    base = SchNetConfig(epochs=epochs, patience=epochs, device="cpu")
    print(f"SchNet speed, {len(train)} train rows, {os.cpu_count()} CPUs")
    print(f"{'training setting':<52}{'s/epoch':>9}   conditions")
    # (torch threads, data-parallel processes): one process, two threads, two processes
    parallel = [(1, 1), (2, 1), (1, 2)] if (os.cpu_count() or 1) >= 2 else [(1, 1)]
    for threads, workers in () if predict_only else parallel:
        for zfw in (0.0, 0.1):
            for table in (base.table_spacing, None):
                config = replace(
                    base,
                    threads=threads,
                    workers=workers,
                    zero_force_weight=zfw,
                    table_spacing=table,
                )
                before = cpu_steal()
                seconds = epoch_time(train, val, config)
                name = (
                    f"threads={threads} workers={workers} zero-force={'on ' if zfw else 'off'} "
                    f"filters={'table' if table else 'exact'}"
                )
                print(f"{name:<52}{seconds:>9.3f}   {load_note(before)}")
                figures["epoch_s"][name] = seconds
    print("prototype: ~1.4 s/epoch; target <= 0.47 s/epoch")

    shipped = PRETRAINED_DIR / "schnet"
    if (shipped / "card.json").is_file():
        model, name = SchNetModel.load(shipped, device="cpu"), "shipped model"
    else:  # same size and filter table as a trained model, random weights
        torch.manual_seed(0)
        card = {"hyperparameters": {"table_spacing": base.table_spacing}}
        model, name = SchNetModel([SchNet()], -77.86, 0.05, card=card, device="cpu"), "random"
    print(
        f"\npredict timings ({name}, {len(model)} member(s), filter table {model.table_spacing} Å)"
    )
    atoms = [val.atoms[0]]
    model.predict(atoms, forces=True)
    before = cpu_steal()
    one = median_ms(lambda: model.predict(atoms, forces=True), 200)
    print(
        f"\none energy+forces call (Au20, CPU, float32): {one:.2f} ms median  ({load_note(before)})"
    )
    structures = [*train.atoms, *val.atoms]
    model.predict(structures)
    before = cpu_steal()
    start = time.perf_counter()
    model.predict(structures)
    rate = len(structures) / (time.perf_counter() - start)
    print(f"energy-only predict: {rate:.0f} structures/s  ({load_note(before)})")
    print("targets: <= 3 ms per call, >= 1000 structures/s")
    return {**figures, "model": name, "call_ms": one, "structures_per_s": rate}


if __name__ == "__main__":
    main()
