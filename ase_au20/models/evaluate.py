"""Scoring a trained model on a database split: metrics.json plus three diagnostic PNGs.

Errors are on the ΔE scale (identical to total-energy errors; ΔE only shifts both sides).
Intervals use the conformal quantiles stored in the model card, at α = 0.1 and 0.2,
global and Mondrian.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ase_au20.database import IsomerSet
from ase_au20.models.card import json_safe, seen_ids
from ase_au20.models.conformal import BUCKETS, ConformalCalibrator
from ase_au20.models.metrics import interval_metrics, metrics_by_bucket, regression_metrics
from ase_au20.plotting import save_figure

ALPHAS = (0.1, 0.2)
METRICS_NAME = "metrics.json"
PLOTS = ("parity.png", "residuals_by_bucket.png", "intervals.png")
BUCKET_COLOURS = {"low": "tab:blue", "mid": "tab:orange", "high": "tab:red"}


def score_predictions(
    pred: np.ndarray,
    true: np.ndarray,
    buckets: Sequence[str],
    calibrator: ConformalCalibrator | None,
    spread: np.ndarray | None = None,
) -> dict[str, Any]:
    """Overall and per-bucket errors; conformal coverage/width at each α of ALPHAS."""
    out: dict[str, Any] = {
        "overall": regression_metrics(pred, true),
        "by_bucket": metrics_by_bucket(pred, true, buckets),
        "conformal": {},
    }
    if calibrator is not None:
        use = spread if calibrator.normalised else None
        for alpha in ALPHAS:
            out["conformal"][f"alpha={alpha:g}"] = {
                kind: interval_metrics(
                    true, pred, calibrator.half_width(pred, 1 - alpha, kind == "mondrian", use)
                )
                for kind in ("global", "mondrian")
            }
    return out


def unseen_rows(
    rows: IsomerSet, card: dict[str, Any], what: str, everything: IsomerSet | None = None
) -> tuple[IsomerSet, int]:
    """The rows the model never saw and how many were dropped: rows whose id its card lists
    as trained or calibrated on, and (given ``everything`` in the db) near-duplicates of
    them (same ``dup_group``), which would leak the same isomer into the score.

    ValueError when every row was seen, or when the card records no ids (an older model:
    retrain it) so that seen rows cannot be told apart.
    """
    seen = seen_ids(card)
    if seen is None:
        raise ValueError(
            "the model card does not record the ids the model was trained and calibrated on, "
            "so rows it has seen cannot be left out; retrain it with this version"
        )
    seen_rows = np.isin(rows.ids, sorted(seen))
    if everything is not None:
        seen_groups = everything.groups[np.isin(everything.ids, sorted(seen))]
        seen_rows |= np.isin(rows.groups, seen_groups)
    if seen_rows.all():
        raise ValueError(
            f"{what}: all {len(rows)} rows (or a near-duplicate of each) were used to train or "
            f"calibrate this model (card split scheme {card.get('split_scheme')!r}); nothing "
            "unseen to score"
        )
    return rows.subset(~seen_rows), int(seen_rows.sum())


def evaluate_model(
    model_dir: str | os.PathLike[str],
    db_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | None = None,
    split: str = "test",
) -> dict[str, Any]:
    """Predict the unseen rows of ``split`` with the model in ``model_dir``; write metrics and
    plots to ``out_dir`` (default ``./evaluate-<model dir name>``, never the model folder)."""
    from ase_au20.database import load_rows
    from ase_au20.models import load_model

    model = load_model(model_dir)
    card = model.card
    rows = load_rows(db_path, split)
    if len(rows) == 0:
        raise ValueError(f"{db_path}: no rows in split {split!r}")
    rows, n_seen = unseen_rows(rows, card, f"{db_path} split {split!r}", load_rows(db_path))
    out = model.predict(rows.atoms, forces=True)
    pred = np.asarray(out["energy"], dtype=float)
    spread = out.get("energy_std")
    calibrator = (
        None if card.get("conformal") is None else ConformalCalibrator.from_dict(card["conformal"])
    )
    reference = float(card["energy_reference"])
    metrics = {
        "model_dir": str(model_dir),
        "model_type": card["model_type"],
        "database": str(db_path),
        "split": split,
        "n_scored": len(rows),
        "n_left_out_seen": n_seen,  # rows (or duplicates of rows) it was trained/calibrated on
        "energy_reference": reference,
        **score_predictions(pred, rows.energies, rows.buckets, calibrator, spread),
        # the isomers are DFTB1 minima: a physical model predicts |F| ≈ 0 there (eV/Å)
        "mean_abs_force": float(np.nanmean(np.linalg.norm(out["forces"], axis=-1))),
    }
    out_dir = Path(f"evaluate-{Path(model_dir).name}" if out_dir is None else out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / METRICS_NAME).write_text(
        json.dumps(json_safe(metrics), indent=2, allow_nan=False) + "\n"
    )
    half = None
    if calibrator is not None:
        half = calibrator.half_width(pred, 0.9, True, spread if calibrator.normalised else None)
    plot_diagnostics(out_dir, pred - reference, rows.delta_e, rows.buckets, half, metrics)
    return metrics


def plot_diagnostics(
    out_dir: Path,
    pred_de: np.ndarray,
    true_de: np.ndarray,
    buckets: Sequence[str],
    half_width: np.ndarray | None,
    metrics: dict[str, Any],
) -> None:
    """parity.png, residuals_by_bucket.png and intervals.png (90 % Mondrian intervals)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    buckets = np.asarray(buckets)
    resid = pred_de - true_de
    overall = metrics["overall"]

    fig, ax = plt.subplots(figsize=(5, 5))
    for b in BUCKETS:
        sel = buckets == b
        ax.scatter(true_de[sel], pred_de[sel], s=12, c=BUCKET_COLOURS[b], label=b, alpha=0.8)
    lims = [min(true_de.min(), pred_de.min()) - 0.5, max(true_de.max(), pred_de.max()) + 0.5]
    ax.plot(lims, lims, "k--", lw=1)
    ax.set(xlim=lims, ylim=lims, xlabel="DFTB1 ΔE (eV)", ylabel="predicted ΔE (eV)")
    ax.set_title(
        f"{metrics['model_type']} on {metrics['split']}: MAE {overall['mae']:.3f}, "
        f"RMSE {overall['rmse']:.3f} eV, R² {overall['r2']:.3f}",
        fontsize=9,
    )
    ax.legend(title="true bucket")
    save_figure(fig, out_dir / PLOTS[0])

    fig, ax = plt.subplots(figsize=(5, 4))
    present = [b for b in BUCKETS if np.any(buckets == b)]
    ax.boxplot([resid[buckets == b] for b in present], tick_labels=present, showfliers=False)
    rng = np.random.default_rng(0)
    for k, b in enumerate(present, start=1):
        r = resid[buckets == b]
        ax.scatter(k + rng.uniform(-0.15, 0.15, len(r)), r, s=8, c=BUCKET_COLOURS[b], alpha=0.6)
    ax.axhline(0.0, color="k", lw=0.8)
    ax.set(xlabel="true ΔE bucket", ylabel="predicted − DFTB1 (eV)", title="residuals by bucket")
    save_figure(fig, out_dir / PLOTS[1])

    fig, ax = plt.subplots(figsize=(7, 4))
    order = np.argsort(pred_de)
    x = np.arange(len(order))
    ax.plot(x, pred_de[order], "k-", lw=0.8, label="predicted ΔE", zorder=3)
    if half_width is not None:
        inside = np.abs(resid) <= half_width
        ax.errorbar(
            x,
            pred_de[order],
            yerr=half_width[order],
            fmt="none",
            ecolor="0.7",
            lw=1,
            label="90 % interval around the prediction",
        )
        ax.scatter(
            x[inside[order]],
            true_de[order][inside[order]],
            s=8,
            c="tab:green",
            label=f"DFTB1 ΔE inside its interval ({inside.mean():.0%})",
            zorder=4,
        )
        ax.scatter(
            x[~inside[order]],
            true_de[order][~inside[order]],
            s=12,
            c="tab:red",
            label="DFTB1 ΔE outside",
            zorder=4,
        )
        ax.set_title("90 % conformal intervals (Mondrian) on the scored isomers")
    else:
        ax.scatter(x, true_de[order], s=8, label="DFTB1 ΔE")
        ax.set_title("no conformal calibration in this model card")
    ax.legend(loc="upper left", fontsize=8)
    ax.set(xlabel="isomers sorted by predicted ΔE", ylabel="ΔE (eV)")
    save_figure(fig, out_dir / PLOTS[2])


def format_table(metrics: dict[str, Any]) -> str:
    """A short plain-text table of the overall/per-bucket errors and interval figures."""
    lines = []
    if metrics.get("n_left_out_seen"):
        lines.append(
            f"left out {metrics['n_left_out_seen']} row(s) the model was trained or calibrated "
            f"on (or near-duplicates of them); scoring the {metrics['n_scored']} it never saw"
        )
    lines.append(f"{'subset':<10}{'n':>5}{'MAE':>8}{'RMSE':>8}{'R²':>8}{'max':>8}")
    rows = [("all", metrics["overall"]), *metrics["by_bucket"].items()]
    for name, m in rows:
        r2 = m["r2"] if m["r2"] is not None else float("nan")
        lines.append(
            f"{name:<10}{m['n']:>5}{m['mae']:>8.3f}{m['rmse']:>8.3f}{r2:>8.3f}{m['max_error']:>8.3f}"
        )
    for alpha, kinds in metrics.get("conformal", {}).items():
        for kind, m in kinds.items():
            cover, width = m["coverage"], m["mean_width"]
            width = float("inf") if width is None else width
            lines.append(f"{alpha} {kind:<9} coverage {cover:.3f}  mean width {width:.3f} eV")
    if "mean_abs_force" in metrics:
        lines.append(f"mean |F| at the DFTB1 minima {metrics['mean_abs_force']:.3f} eV/Å")
    return "\n".join(lines)
