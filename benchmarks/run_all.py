"""`make bench`: every accuracy and speed report of the project, one after another.

Each benchmark is its own script (runnable alone); this runs them in sequence as
subprocesses so one failure does not hide the others, and prints a closing summary. Each
writes its page and JSON into the docs (``docs/benchmarks``); a ``--quick`` run writes them
under ``--out``/pages instead, so that its smaller budgets never replace the docs' figures.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from accuracy import ensure_databases
from docs_page import DOCS

from ase_au20.paths import data_dir

HERE = Path(__file__).resolve().parent


def benchmarks(out: Path, quick: bool) -> list[tuple[str, list[str]]]:
    """(title, argv) of each report, cheapest first."""
    quick_flag = ["--quick"] if quick else []
    return [
        ("calculator speed", ["calculator_speed.py"]),
        ("the DFTB1 reference: labels and cost", ["reference.py"]),
        ("SchNet training speed", ["schnet_training_speed.py", "--db", str(out / "au20-seed.db")]),
        ("data-parallel gradient exchange", ["gradient_exchange.py"]),
        ("sensitivity speed", ["sensitivity_speed.py"]),
        ("accuracy", ["accuracy.py", "--out", str(out), *quick_flag]),
        ("the truth off the minima", ["truth.py", "--out", str(out), *quick_flag]),
        ("MD against the reference", ["md_truth.py", "--out", str(out)]),
        ("learning curve", ["learning_curve.py", "--db", str(out / "au20-seed.db")]),
        (
            "how much corpus the surface needs",
            ["surface_curve.py", "--db", str(out / "au20-seed.db"), "--quiet"],
        ),
        ("uncertainty and domain", ["uncertainty.py", "--db", str(out / "au20-seed.db")]),
        (
            "active learning: select against random",
            ["selection.py", "--db", str(out / "au20-seed.db")],
        ),
        (
            "the labelling loop with the reference as oracle",
            ["labelling_loop.py", "--db", str(out / "au20-seed.db")],
        ),
        (
            "scale-out: screen, databases, search on Dask",
            ["scale_out.py", "--out", str(out / "scale-out")],
        ),
        (
            "the ground state from random starts, verified",
            ["search_td.py", "--db", str(out / "au20-seed.db"), "--out", str(out)],
        ),
        (
            "ground-state search",
            [
                "search_ground_state.py",
                "--db",
                str(out / "au20-group.db"),
                "--out",
                str(out / "bench-search"),
            ],
        ),
    ]


def main() -> int:
    """Run every benchmark; exit non-zero if any of them failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/bench"), help="work folder")
    parser.add_argument(
        "--quick", action="store_true", help="smaller budgets; pages under --out/pages"
    )
    args = parser.parse_args()
    ensure_databases(args.out, data_dir())
    pages = args.out / "pages" if args.quick else DOCS
    failures, times = [], []
    for title, argv in benchmarks(args.out, args.quick):
        print(f"\n=== {title} ===", flush=True)
        start = time.perf_counter()
        code = subprocess.call(
            [sys.executable, str(HERE / argv[0]), *argv[1:], "--report", str(pages)]
        )
        times.append((title, time.perf_counter() - start, code))
        if code:
            failures.append(title)
    print("\n=== summary ===")
    for title, seconds, code in times:
        print(f"{title:<24} {seconds:8.1f} s  {'ok' if code == 0 else f'FAILED ({code})'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
