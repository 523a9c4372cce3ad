"""Regression and interval metrics on the ΔE scale, overall and per energy bucket."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ase_au20.models.conformal import BUCKETS


def regression_metrics(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """MAE, RMSE, R² and max |error| (eV); R² is NaN for fewer than two points."""
    pred, true = np.asarray(pred, dtype=float), np.asarray(true, dtype=float)
    if pred.shape != true.shape or pred.size == 0:
        raise ValueError(f"prediction {pred.shape} and truth {true.shape} must match, non-empty")
    err = pred - true
    ss_tot = float(((true - true.mean()) ** 2).sum())
    return {
        "n": int(len(true)),
        "mae": float(np.abs(err).mean()),
        "rmse": float(np.sqrt((err**2).mean())),
        "r2": float(1.0 - (err**2).sum() / ss_tot) if ss_tot > 0 else float("nan"),
        "max_error": float(np.abs(err).max()),
    }


def metrics_by_bucket(
    pred: np.ndarray, true: np.ndarray, buckets: Sequence[str]
) -> dict[str, dict[str, float]]:
    """regression_metrics for every bucket that has rows (true buckets from the db)."""
    buckets = np.asarray(buckets)
    pred, true = np.asarray(pred), np.asarray(true)
    return {
        b: regression_metrics(pred[buckets == b], true[buckets == b])
        for b in BUCKETS
        if np.any(buckets == b)
    }


def interval_metrics(true: np.ndarray, pred: np.ndarray, half_width: np.ndarray) -> dict[str, Any]:
    """Empirical coverage of pred ± half_width and its mean full width (eV)."""
    true, pred, half_width = (np.asarray(x, dtype=float) for x in (true, pred, half_width))
    return {
        "coverage": float(np.mean(np.abs(true - pred) <= half_width)),
        "mean_width": float(np.mean(2.0 * half_width)),
    }
