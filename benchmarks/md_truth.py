"""MD that knows when it is wrong: the `md` workflow's intervals and verdicts against the reference.

Langevin runs of the `md` workflow with a model (default: the shipped SchNet ensemble) from
test isomers at 300, 600 and 1000 K; every recorded frame is labelled by the DFTB1 reference
(``md --reference dftb --check-every 1``). Per temperature: the share of frames whose
recorded 90 % interval covers the reference energy, the mean width, the energy and force
MAE, and how the out-of-domain verdict matches the frames whose reference error exceeds
three interval widths (precision and recall). Then NVE from the Td pyramid at 300 K for
10 ps: the drift of the total energy (meV/atom/ps, least squares) and its largest deviation.

Run: ``python benchmarks/md_truth.py [--model schnet] [--out runs/bench]`` (about 4 min on 2
cores); writes ``md.md`` and ``md.json`` into ``docs/benchmarks`` (``--report``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
from accuracy import ensure_databases
from ase import Atoms
from docs_page import DOCS, publish
from threadpoolctl import threadpool_limits

from ase_au20.calculators.factory import make_calculator
from ase_au20.database import load_rows
from ase_au20.paths import data_dir
from ase_au20.workflows.md import audit_frames, run_md

TEMPERATURES = (300, 600, 1000)
TD_ID = 350  # the Td pyramid of the data
NVE_STEP = 2.0  # fs, the md verb's default


def thermal_audit(calc: Any, reference: Any, starts: list[Atoms], args: argparse.Namespace):
    """Per temperature: the audit of every recorded frame of one Langevin run per start."""
    rows = {}
    for temperature in TEMPERATURES:
        audits, outside = [], []
        for k, atoms in enumerate(starts):
            path = args.out / f"md-truth-{temperature}-{k}.traj"
            result = run_md(
                atoms, calc, "langevin", temperature, args.steps, 2.0, 0.02, k, args.every, path
            )
            audits.append(audit_frames(path, reference, 1))
            outside.append(result.trust.arrays()["in_domain"] == 0.0)
        covered = [a["covered"] for a in audits]
        error = np.abs(np.concatenate([a["error"] for a in audits]))
        half = np.concatenate([a["energy_uncertainty"] for a in audits])
        flagged = np.concatenate(outside)
        large = error > 3 * (2 * half)  # three interval widths
        low, high = trajectory_range(covered)
        row = rows[f"{temperature} K"] = {
            "frames": int(len(error)),
            "coverage": float(np.concatenate(covered).mean()),
            "coverage_range": [low, high],
            "mean_width": float(np.mean(2 * half)),
            "energy_mae": float(error.mean()),
            "force_mae": float(np.concatenate([a["force_mae"] for a in audits]).mean()),
            "flagged": int(flagged.sum()),
            "large_errors": int(large.sum()),
            "precision": float(large[flagged].mean()) if flagged.any() else float("nan"),
            "recall": float(flagged[large].mean()) if large.any() else float("nan"),
        }
        print(
            f"{temperature:>5} K  {row['frames']} frames  coverage {row['coverage']:.2f}"
            f" ({low:.2f}–{high:.2f} over resampled runs)"
            f"  width {row['mean_width']:.2f} eV  energy MAE {row['energy_mae']:.3f} eV  "
            f"flagged {row['flagged']}, large errors {row['large_errors']}",
            flush=True,
        )
    return rows


def trajectory_range(covered: list[np.ndarray], draws: int = 2000) -> list[float]:
    """The 5–95 % range of the coverage over trajectories drawn with replacement: the
    frames of one run share their start's error, so the runs, not the frames, are the
    independent samples."""
    rng = np.random.default_rng(0)
    counts = np.array([c.sum() for c in covered], dtype=float)
    sizes = np.array([len(c) for c in covered], dtype=float)
    picks = rng.integers(len(covered), size=(draws, len(covered)))
    shares = counts[picks].sum(axis=1) / sizes[picks].sum(axis=1)
    return [float(np.quantile(shares, 0.05)), float(np.quantile(shares, 0.95))]


def nve_drift(calc: Any, td: Atoms, picoseconds: float) -> dict[str, float]:
    """Drift of the total energy in NVE at 300 K from ``td``, in the `md` verb's 2 fs steps."""
    steps = int(round(picoseconds * 1000 / NVE_STEP))
    result = run_md(td, calc, "nve", 300.0, steps, NVE_STEP, interval=10)
    return {"picoseconds": picoseconds, "timestep_fs": NVE_STEP, **result.drift}


def write_report(report: dict[str, Any], folder: Path) -> None:
    """md.json and the Markdown page."""
    drift = report["nve"]
    lines = [
        "# MD against the reference",
        "",
        f"The `md` workflow with `{report['model']}`: Langevin runs (2 fs, friction 0.02/fs) of",
        f"{report['steps']} steps from {report['starts']} test isomers per temperature, every",
        f"{report['every']}th step recorded and labelled by the DFTB1 reference, as",
        "`md --reference dftb --check-every 1` does. Coverage: recorded 90 % intervals that",
        "contain the reference energy; flagged: frames outside the model's domain; large",
        "errors: reference error above three interval widths. The frames of one run share",
        "their start's error, so the range of the coverage comes from resampling the runs.",
        "Written by",
        "`python benchmarks/md_truth.py`; figures in `md.json`.",
        "",
        "| temperature | frames | 90 % coverage | its 5–95 % range over runs | mean width (eV) "
        "| energy MAE (eV) | force MAE (eV/Å) | flagged | large errors | precision | recall |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in report["langevin"].items():
        low, high = m["coverage_range"]
        lines.append(
            f"| {name} | {m['frames']} | {m['coverage']:.2f} | {low:.2f}–{high:.2f} | "
            f"{m['mean_width']:.2f} | "
            f"{m['energy_mae']:.3f} | {m['force_mae']:.3f} | {m['flagged']} | "
            f"{m['large_errors']} | {m['precision']:.2f} | {m['recall']:.2f} |"
        )
    lines += [
        "",
        f"NVE from the Td pyramid at 300 K, {drift['picoseconds']:g} ps of "
        f"{drift['timestep_fs']:g} fs steps: drift {drift['slope_meV_per_atom_per_ps']:.4f} "
        f"meV/atom/ps ({drift['slope_meV_per_atom_per_ps'] * drift['picoseconds']:.3f} meV/atom "
        f"over the run), largest deviation of the total energy "
        f"{drift['max_deviation_meV_per_atom']:.3f} meV/atom.",
    ]
    publish(folder, "md", report, lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="schnet", help="--calc spec of the model")
    parser.add_argument("--out", type=Path, default=Path("runs/bench"), help="work folder")
    parser.add_argument("--starts", type=int, default=30, help="test isomers per temperature")
    parser.add_argument("--steps", type=int, default=1000, help="Langevin steps per run")
    parser.add_argument("--every", type=int, default=20, help="steps between recorded frames")
    parser.add_argument("--nve-ps", type=float, default=10.0, help="length of the NVE run (ps)")
    parser.add_argument("--report", type=Path, default=DOCS, help="folder of the docs page")
    args = parser.parse_args(argv)
    seed_db, _ = ensure_databases(args.out, data_dir())
    clock = time.perf_counter()
    with threadpool_limits(1):
        calc = make_calculator(args.model, device="cpu")
        reference = make_calculator("dftb")
        test = load_rows(seed_db, split="test")
        starts = [Atoms(a.numbers, positions=a.positions) for a in test.atoms[: args.starts]]
        langevin = thermal_audit(calc, reference, starts, args)
        every = load_rows(seed_db)
        td = every.atoms[int(np.flatnonzero(every.ids == TD_ID)[0])]
        drift = nve_drift(calc, Atoms(td.numbers, positions=td.positions), args.nve_ps)
    print(
        f"NVE 300 K, {args.nve_ps:g} ps: drift {drift['slope_meV_per_atom_per_ps']:.4f} "
        f"meV/atom/ps, largest deviation {drift['max_deviation_meV_per_atom']:.3f} meV/atom "
        f"({time.perf_counter() - clock:.0f} s in all)"
    )
    report = {
        "model": args.model,
        "steps": args.steps,
        "every": args.every,
        "starts": args.starts,
        "langevin": langevin,
        "nve": drift,
    }
    write_report(report, args.report)
    print(f"report written to {args.report}/md.md and md.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
