"""Accuracy report: shipped KRR, xtb-delta, SchNet and committee beside the prototype's figures.

Two protocols (eV, ΔE scale):

* fixed test set — the prototype's 155 test isomers (``--split seed`` database); the
  shipped models were trained on its train+val rows and calibrated on its calib rows.
  41 of these test isomers have a near-duplicate in training, so this flatters every model
  alike; it is reported for comparison with the prototype only. The "unseen" columns
  leave those 41 out (as `evaluate` does): the figures of isomers no model has seen.
* group-aware 5-fold CV of the isomer-trained recipes (KRR, xtb-delta) — a ``--split
  group`` database; each fold is predicted by models refitted on the other folds with the
  shipped hyper-parameters (those were chosen by CV on the seed database, so this CV is not
  nested: a mild optimism). The SchNet ensemble learns from the reference corpus as well,
  whose parents follow the seed split, so its figures off the fixed test set are those of
  ``truth.py`` (test parents, every family).

Conformal figures (α = 0.1, Mondrian, from each shipped card: calibrated on the calib split,
normalised by the model's spread where it has one) are measured on the fixed test set. In
the group-aware CV the KRR's and xtb-delta's intervals of each fold are calibrated the same
way on the out-of-fold residuals of the other four folds, and scored on all rows and on
the halves nearer to and farther from the other folds' isomers. The
committee's weights were chosen on the calib split (never on test).

Run: ``python benchmarks/accuracy.py [--quick]`` (``--quick``: the KRR only in the CV, no
GFN1-xTB). ``run(...)`` returns the table as a dict for ``benchmarks/run_all.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from docs_page import DOCS, publish_printed, recording

from ase_au20.database import build_database, connect, load_rows
from ase_au20.geometry.fingerprint import fingerprint_matrix, max_deviation
from ase_au20.models import load_model
from ase_au20.models.conformal import ConformalCalibrator
from ase_au20.models.evaluate import unseen_rows
from ase_au20.models.krr.training import fit_row, out_of_fold
from ase_au20.models.metrics import interval_metrics, regression_metrics
from ase_au20.models.scoring import spread_offset
from ase_au20.paths import PRETRAINED_DIR, data_dir

PROTOTYPE = {
    "KRR": {"mae": 0.669, "rmse": 0.946, "r2": 0.895},
    "SchNet": {"mae": 0.439, "rmse": 0.647, "r2": 0.951},
    "conformal": {"coverage": 0.955, "mean_width": 3.09},
}
TARGETS = {"best_mae": 0.25, "best_rmse": 0.40, "cv_mae": 0.30, "coverage": 0.88, "width": 1.2}


def ensure_databases(out_dir: Path, source: Path) -> tuple[Path, Path]:
    """The seed-split and group-split databases in ``out_dir``, built when missing."""
    out_dir.mkdir(parents=True, exist_ok=True)
    seed_db, group_db = out_dir / "au20-seed.db", out_dir / "au20-group.db"
    if not seed_db.is_file():
        build_database(source / "xyz", seed_db, split="seed", seed_splits=source / "splits_seed")
    if not group_db.is_file():
        build_database(source / "xyz", group_db)
    return seed_db, group_db


def _shipped() -> dict[str, Any]:
    """The shipped models that exist, by name."""
    models = {}
    for kind, name in (
        ("krr", "KRR"),
        ("xtb-delta", "xtb-delta"),
        ("schnet", "SchNet"),
        ("committee", "committee"),
    ):
        if (PRETRAINED_DIR / kind / "card.json").is_file():
            models[name] = load_model(PRETRAINED_DIR / kind)
    if "xtb-delta" in models:  # GFN1 of the database rows: computed once, then cached
        from ase_au20.models.xtb_delta.cache import BaselineCache

        models["xtb-delta"].cache = BaselineCache()
    if not models:
        raise SystemExit("no shipped models: run `make reproduce` first")
    return models


def fixed_test(seed_db: Path, models: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Errors and α=0.1 Mondrian intervals (each model's own card) on the fixed test set, and
    the same on its ``unseen`` part: without the isomers whose near-duplicate the model was
    trained or calibrated on (what `evaluate` scores)."""
    test = load_rows(seed_db, "test")
    everything = load_rows(seed_db)
    rows = {}
    for name, model in models.items():
        out = model.predict(test.atoms)
        pred = np.asarray(out["energy"])
        calibrator = ConformalCalibrator.from_dict(model.card["conformal"])
        spread = out.get("energy_std")
        if spread is not None and name == "SchNet":
            spread = np.maximum(spread, 1e-3)  # as fit_schnet calibrated an ensemble
        half = calibrator.half_width(pred, 0.9, mondrian=True, spread=spread)
        rows[name] = {
            **regression_metrics(pred, test.energies),
            **interval_metrics(test.energies, pred, half),
        }
        unseen, _ = unseen_rows(test, model.card, "fixed test", everything)
        keep = np.isin(test.ids, unseen.ids)
        rows[name]["unseen"] = {
            **regression_metrics(pred[keep], test.energies[keep]),
            **interval_metrics(test.energies[keep], pred[keep], half[keep]),
        }
    return rows


def group_cv(group_db: Path, models: dict[str, Any], quick: bool) -> dict[str, dict[str, Any]]:
    """Out-of-fold predictions of the train/val rows of the group-split db: the KRR, and the
    xtb-delta model unless ``quick``."""
    rows = load_rows(group_db, ("train", "val"))
    krr_row = {**models["KRR"].card["features"], **models["KRR"].hyperparameters}
    pred, spread = {"KRR": np.empty(len(rows))}, {"KRR": np.empty(len(rows))}
    for f in sorted(set(rows.folds.tolist())):
        held = rows.folds == f
        out = fit_row(rows.subset(~held), krr_row).predict(rows.subset(held).atoms)
        pred["KRR"][held], spread["KRR"][held] = out["energy"], out["energy_std"]
    if "xtb-delta" in models and not quick:
        pred["xtb-delta"], spread["xtb-delta"] = _delta_cv(rows, models["xtb-delta"])
    near, meta = _nearer_half(rows), connect(group_db).metadata
    metrics = {}
    for name in pred:
        metrics[name] = regression_metrics(pred[name], rows.energies)
        metrics[name]["intervals"] = cv_intervals(rows, pred[name], spread[name], near, meta)
    return metrics


def _nearer_half(rows: Any) -> np.ndarray:
    """Mask of the rows whose nearest isomer of the other folds (fingerprint distance) is
    at most the median such distance: the "near" half of the CV, the rest "far"."""
    fps = fingerprint_matrix(rows.atoms)
    distance = max_deviation(fps, fps)
    distance[rows.folds[:, None] == rows.folds[None, :]] = np.inf
    nearest = distance.min(axis=1)
    return nearest <= np.median(nearest)


def cv_intervals(
    rows: Any,
    pred: np.ndarray,
    spread: np.ndarray,
    near: np.ndarray,
    meta: dict[str, Any],
) -> dict[str, dict[str, float]]:
    """90 % Mondrian intervals of each fold, calibrated as the shipped cards are (scores
    divided by the spread plus its median, the database's energy reference and buckets) on
    the out-of-fold residuals of the other folds: coverage and mean width on all, near and
    far rows."""
    half = np.empty(len(rows))
    for f in sorted(set(rows.folds.tolist())):
        held = rows.folds == f
        calibrator = ConformalCalibrator.fit(
            pred[~held],
            rows.energies[~held],
            meta["energy_reference"],
            meta["bucket_edges"],
            spread=spread[~held],
            spread_offset=spread_offset(spread[~held]),
        )
        half[held] = calibrator.half_width(pred[held], 0.9, spread=spread[held])
    return {
        part: interval_metrics(rows.energies[mask], pred[mask], half[mask])
        for part, mask in (("all", np.ones(len(rows), bool)), ("near", near), ("far", ~near))
    }


def _delta_cv(rows: Any, model: Any) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold energies and spreads of the xtb-delta recipe: the Δ KRR refitted on the
    other folds (GFN1 forces as zero-force targets), plus the cached GFN1 energies."""
    from dataclasses import replace

    from ase_au20.models.xtb_delta.cache import BaselineCache

    base_e, base_f = BaselineCache().compute(rows.atoms, model.baseline)
    residual = replace(rows, energies=rows.energies - base_e)
    row = {**model.card["features"], **model.delta.hyperparameters}
    oof = out_of_fold(residual, row, base_f, base_e)  # every row: each is in one fold
    return oof.energy, oof.spread


def format_report(fixed: dict[str, Any], cv: dict[str, Any]) -> str:
    """The accuracy table with the prototype's figures beside ours."""
    n_unseen = next(iter(fixed.values()))["unseen"]["n"] if fixed else 0
    lines = [
        "accuracy (eV, ΔE)                   fixed test set (n=155)            group 5-fold CV"
        f"       fixed test, unseen (n={n_unseen})",
        f"{'model':<26}{'MAE':>7}{'RMSE':>7}{'R²':>7}{'cov90':>7}{'width':>7}"
        f"{'MAE':>12}{'RMSE':>7}{'R²':>7}{'MAE':>12}{'RMSE':>7}{'cov90':>7}",
    ]
    for name, p in PROTOTYPE.items():
        if name == "conformal":
            continue
        cov = PROTOTYPE["conformal"] if name == "KRR" else None
        lines.append(
            f"{'proto ' + name:<26}{p['mae']:>7.3f}{p['rmse']:>7.3f}{p['r2']:>7.3f}"
            + (f"{cov['coverage']:>7.3f}{cov['mean_width']:>7.2f}" if cov else f"{'':>14}")
            + f"{'—':>12}"
        )
    for name in dict.fromkeys([*fixed, *cv]):
        f = fixed.get(name)
        c = cv.get(name)
        left = (
            f"{f['mae']:>7.3f}{f['rmse']:>7.3f}{f['r2']:>7.3f}{f['coverage']:>7.3f}"
            f"{f['mean_width']:>7.2f}"
            if f
            else f"{'':>35}"
        )
        right = f"{c['mae']:>12.3f}{c['rmse']:>7.3f}{c['r2']:>7.3f}" if c else f"{'—':>12}{'':>14}"
        u = f["unseen"] if f else None
        unseen = f"{u['mae']:>12.3f}{u['rmse']:>7.3f}{u['coverage']:>7.3f}" if u else ""
        lines.append(f"{name:<26}{left}{right}{unseen}")
    best = min(fixed.values(), key=lambda r: r["mae"])
    best_cv = min((r["mae"] for r in cv.values()), default=float("nan"))
    lines.append(
        f"targets: best fixed-test MAE ≤ {TARGETS['best_mae']} (got {best['mae']:.3f}), "
        f"RMSE ≤ {TARGETS['best_rmse']} (got {best['rmse']:.3f}); CV MAE ≤ {TARGETS['cv_mae']} "
        f"(got {best_cv:.3f}); α=0.1 coverage ≥ {TARGETS['coverage']} with width ≤ "
        f"{TARGETS['width']} eV"
    )
    lines.append("(prototype conformal figures: α=0.1 coverage 0.955, mean width 3.09 eV)")
    with_intervals = {name: c["intervals"] for name, c in cv.items() if "intervals" in c}
    if with_intervals:
        lines.append(
            "90 % intervals in group-aware CV (each fold calibrated on the out-of-fold residuals "
            "of the other four; near/far: nearest isomer of the other folds within / beyond "
            "the median distance): coverage / mean width (eV)"
        )
        lines.append(f"{'model':<26}{'all':>16}{'near':>16}{'far':>16}")
        for name, parts in with_intervals.items():
            cells = "".join(
                f"{parts[k]['coverage']:>9.3f} / {parts[k]['mean_width']:<4.2f}"
                for k in ("all", "near", "far")
            )
            lines.append(f"{name:<26}{cells}")
    return "\n".join(lines)


def run(
    out_dir: str | os.PathLike[str] = "runs/bench-accuracy",
    quick: bool = False,
    source: str | os.PathLike[str] | None = None,
    also: dict[str, Path] | None = None,
) -> dict[str, Any]:
    """Build the databases if needed, score the shipped models, print and return the table.

    ``also``: more model folders by label (e.g. an earlier model), scored beside the shipped
    ones on the fixed test set."""
    start = time.perf_counter()
    seed_db, group_db = ensure_databases(Path(out_dir), Path(source or data_dir()))
    models = _shipped()
    extra = {label: load_model(folder) for label, folder in (also or {}).items()}
    fixed = fixed_test(seed_db, {**models, **extra})
    cv = group_cv(group_db, models, quick) if "KRR" in models else {}
    report = {
        "fixed_test": fixed,
        "group_cv": cv,
        "prototype": PROTOTYPE,
        "quick": quick,
        "seconds": time.perf_counter() - start,
    }
    print(format_report(fixed, cv))
    print(f"accuracy benchmark: {report['seconds']:.0f} s")
    (Path(out_dir) / "accuracy.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def main() -> None:
    """Command line: see module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/bench-accuracy", help="work folder (databases)")
    parser.add_argument("--quick", action="store_true", help="KRR-only CV (no GFN1-xTB)")
    parser.add_argument("--report", type=Path, default=DOCS, help="folder of the docs page")
    parser.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="LABEL=DIR",
        help="another model folder to score beside the shipped ones on the fixed test set",
    )
    args = parser.parse_args()
    also = {label: Path(folder) for label, _, folder in (a.partition("=") for a in args.also)}
    with recording() as printed:
        report = run(args.out, quick=args.quick, also=also)
    publish_printed(
        args.report, "accuracy", "Accuracy on the isomers", __doc__, printed.getvalue(), report
    )


if __name__ == "__main__":
    main()
