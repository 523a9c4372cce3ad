"""Uncertainty report: intervals near and far from the data, pair intervals, the domain.

For each shipped model, on the fixed test set of the seed split (eV):

* 90 % intervals (each card's Mondrian calibration): coverage and mean width on all 155
  test isomers and on the halves nearer to and farther from the training isomers
  (fingerprint distance to the nearest train+val isomer);
* pair intervals of E(a) − E(b) over every test pair, calibrated on the calib pairs:
  coverage and full width at 90 %, beside the sum of two absolute half-widths; the share of
  pairs closer than 0.5 eV in DFTB1 that the model orders wrongly; the reliability of
  ``p_lower`` (of pairs given p_lower in a bin, the share that really is lower);
* the domain of applicability: the share of the 899 DFTB1 isomers inside, of 300 K EMT MD
  geometries of the Td pyramid inside, and of a corpus of unphysical clusters flagged;
* the call time of one energy+forces evaluation and of the domain check alone.

Run: ``python benchmarks/uncertainty.py`` (about 30 s on 2 cores, most of it GFN1-xTB for the
xtb-delta model, cached for the next run: 8 s; part of `make bench`).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
from accuracy import ensure_databases
from ase.calculators.emt import EMT
from docs_page import DOCS, publish_printed, recording

from ase_au20.calculators.base import Au20Calculator
from ase_au20.database import load_rows
from ase_au20.geometry.fingerprint import fingerprint_matrix, max_deviation
from ase_au20.geometry.unphysical_clusters import unphysical_corpus
from ase_au20.models.metrics import interval_metrics
from ase_au20.paths import PRETRAINED_DIR, data_dir
from ase_au20.structures import au20_ground_state
from ase_au20.workflows.md import thermal_snapshots

MODELS = ("krr", "xtb-delta", "schnet", "committee")
P_BINS = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def _folder(name: str) -> Path:
    """A shipped model's folder, or the folder of ``LABEL=DIR`` (a model to compare)."""
    return Path(name.partition("=")[2]) if "=" in name else PRETRAINED_DIR / name


def _calculator(name: str) -> Au20Calculator:
    calc = Au20Calculator(_folder(name))
    if calc.card.get("model_type") == "xtb-delta":  # GFN1 of the rows: computed once, cached
        from ase_au20.models.xtb_delta.cache import BaselineCache

        calc.model.cache = BaselineCache()
    return calc


def interval_rows(calc: Au20Calculator, test: Any, near: np.ndarray) -> dict[str, Any]:
    """90 % interval coverage/width on all, near and far test isomers."""
    out = calc.predict(test.atoms, ("energy", "energy_uncertainty"))
    pred, half = out["energy"], out["energy_uncertainty"]
    rows = {}
    for name, mask in (("all", np.ones(len(test), bool)), ("near", near), ("far", ~near)):
        rows[name] = interval_metrics(test.energies[mask], pred[mask], half[mask])
    return {"intervals": rows, "pred": pred, "half": half}


def pair_rows(calc: Au20Calculator, test: Any, half: np.ndarray) -> dict[str, Any]:
    """Pair coverage/width, the summed-half-width width, misordering and p_lower reliability."""
    out = calc.energy_differences(test.atoms)
    i, j = out["pairs"].T
    actual = test.energies[i] - test.energies[j]
    lo, hi = out["interval"].T
    close = np.abs(actual) < 0.5
    wrong = np.sign(out["delta"]) != np.sign(actual)
    p = out["p_lower"]
    # orient each pair so that a is predicted lower: p_lower ≥ 0.5, "hit" if a really is
    p_oriented = np.maximum(p, 1 - p)
    hit = np.where(p >= 0.5, actual < 0, actual > 0)
    reliability = []
    for low, high in zip(P_BINS[:-1], P_BINS[1:], strict=True):
        sel = (p_oriented >= low) & (p_oriented < high if high < 1 else p_oriented <= high)
        if sel.any():
            reliability.append(
                (low, high, float(p_oriented[sel].mean()), float(hit[sel].mean()), int(sel.sum()))
            )
    return {
        "coverage": float(np.mean((lo <= actual) & (actual <= hi))),
        "full_width": float(np.mean(hi - lo)),
        "summed_width": float(np.mean(2 * (half[i] + half[j]))),
        "misordered_close": float(wrong[close].mean()),
        "n_close": int(close.sum()),
        "reliability": reliability,
    }


def domain_rows(calc: Au20Calculator, everything: Any, corpus: list, thermal: list) -> dict:
    """Shares inside the domain: DFTB1 isomers, 300 K geometries; share of the corpus flagged."""
    domain = calc.domain
    flagged = ~domain.verdict([a for _, a in corpus]).in_domain
    kinds = sorted({k for k, _ in corpus})
    return {
        "isomers_inside": float(domain.verdict(everything.atoms).in_domain.mean()),
        "thermal_outside": float(1 - domain.verdict(thermal).in_domain.mean()),
        "corpus_flagged": float(flagged.mean()),
        "corpus_by_kind": {k: float(flagged[[kk == k for kk, _ in corpus]].mean()) for k in kinds},
    }


def timing(calc: Au20Calculator, repeats: int = 30) -> dict[str, float]:
    """Median ms of one energy+forces call and of the domain check alone."""
    atoms = au20_ground_state()
    atoms.rattle(0.02, seed=1)
    # unseeded: geometries no earlier run has seen, so the xtb-delta model's GFN1 cache (kept
    # across runs) cannot answer them and its figure is the real call
    rng = np.random.default_rng()
    calls, checks = [], []
    for k in range(repeats + 3):
        atoms.positions += rng.normal(0.0, 1e-3, atoms.positions.shape)
        atoms.calc = calc
        start = time.perf_counter()
        atoms.get_forces()
        mid = time.perf_counter()
        calc.domain.verdict([atoms])
        end = time.perf_counter()
        if k >= 3:
            calls.append(mid - start)
            checks.append(end - mid)
    return {"call_ms": 1e3 * float(np.median(calls)), "domain_ms": 1e3 * float(np.median(checks))}


def run(db: Path | None = None, models: tuple[str, ...] = MODELS) -> dict[str, Any]:
    """Every row of the report, printed and returned."""
    begin = time.perf_counter()
    if db is None:
        db, _ = ensure_databases(Path("runs/bench"), data_dir())
    everything = load_rows(db)
    test = load_rows(db, "test")
    trainval = load_rows(db, ("train", "val"))
    distance = max_deviation(fingerprint_matrix(test.atoms), fingerprint_matrix(trainval.atoms))
    nearest = distance.min(axis=1)
    near = nearest <= np.median(nearest)
    corpus = unphysical_corpus(list(test.atoms[:20]), per_kind=20, seed=0)
    thermal = thermal_snapshots(au20_ground_state(), EMT(), 300)
    report = {}
    for model in models:
        if not (_folder(model) / "card.json").is_file():
            continue
        calc, name = _calculator(model), model.partition("=")[0]
        intervals = interval_rows(calc, test, near)
        report[name] = {
            "intervals": intervals["intervals"],
            "pairs": pair_rows(calc, test, intervals["half"]),
            "domain": domain_rows(calc, everything, corpus, thermal),
            "timing": timing(calc, repeats=5 if name == "xtb-delta" else 30),
        }
    print(format_report(report, int(near.sum()), len(test)))
    print(f"uncertainty benchmark: {time.perf_counter() - begin:.0f} s")
    return report


def format_report(report: dict[str, Any], n_near: int, n_test: int) -> str:
    """The printed tables."""
    lines = [
        f"90 % intervals on the fixed test set (n={n_test}; near/far: the {n_near} test isomers "
        "nearer to / the rest farther from the training isomers): coverage / mean width (eV)",
        f"{'model':<11}{'all':>16}{'near':>16}{'far':>16}",
    ]
    for name, r in report.items():
        cells = [
            f"{r['intervals'][k]['coverage']:.3f} / {r['intervals'][k]['mean_width']:.2f}"
            for k in ("all", "near", "far")
        ]
        lines.append(f"{name:<11}" + "".join(f"{c:>16}" for c in cells))
    lines += [
        "",
        "pair intervals of E(a) − E(b) over every test pair, 90 %, calibrated on calib pairs",
        f"{'model':<11}{'coverage':>9}{'width':>8}{'two half-widths':>16}"
        f"{'misordered <0.5 eV':>20}",
    ]
    for name, r in report.items():
        p = r["pairs"]
        lines.append(
            f"{name:<11}{p['coverage']:>9.3f}{p['full_width']:>8.2f}{p['summed_width']:>16.2f}"
            f"{p['misordered_close']:>20.3f}"
        )
    lines += ["", "p_lower reliability (pairs oriented so that p ≥ 0.5): mean p → share right"]
    for name, r in report.items():
        cells = ", ".join(
            f"{mp:.2f}→{hit:.2f} (n={n})" for _, _, mp, hit, n in r["pairs"]["reliability"]
        )
        lines.append(f"{name:<11}{cells}")
    lines += ["", "domain of applicability and call time"]
    lines.append(
        f"{'model':<11}{'isomers in':>11}{'300 K out':>10}{'corpus flagged':>15}"
        f"{'call ms':>9}{'domain ms':>10}"
    )
    for name, r in report.items():
        d, t = r["domain"], r["timing"]
        lines.append(
            f"{name:<11}{d['isomers_inside']:>11.3f}{d['thermal_outside']:>10.3f}"
            f"{d['corpus_flagged']:>15.3f}{t['call_ms']:>9.2f}{t['domain_ms']:>10.2f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line: see module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=None, help="seed-split db [runs/bench/…]")
    parser.add_argument(
        "--models",
        default=",".join(MODELS),
        help="comma-separated shipped names or LABEL=DIR (e.g. an earlier model beside today's)",
    )
    parser.add_argument("--report", type=Path, default=DOCS, help="folder of the docs page")
    args = parser.parse_args(argv)
    with recording() as printed:
        report = run(args.db, tuple(m for m in args.models.split(",") if m))
    publish_printed(
        args.report,
        "uncertainty",
        "Uncertainty and domain on the isomers",
        __doc__,
        printed.getvalue(),
        report,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
