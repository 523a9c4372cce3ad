"""From a database to a saved SchNet model directory: train, calibrate, score, card, save.

Trains on the ``train`` split with early stopping on ``val``, fits conformal quantiles on
``calib`` (normalised by the ensemble spread when there are several members) and scores
``test``; the card records the database provenance next to the architecture.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ase_au20.database import connect, load_rows
from ase_au20.models.card import new_card
from ase_au20.models.conformal import ConformalCalibrator
from ase_au20.models.metrics import interval_metrics, metrics_by_bucket, regression_metrics
from ase_au20.models.schnet import SchNetModel
from ase_au20.models.schnet_training import SchNetConfig, Teacher, train_schnet

REPORT_CONFIDENCES = (0.8, 0.9)


def _spread(out: dict[str, Any], model: SchNetModel) -> np.ndarray | None:
    """Ensemble spread (floored at 1 meV so normalised scores stay finite), or None."""
    if len(model) < 2:
        return None
    return np.maximum(out["energy_std"], 1e-3)


def calibrate_and_score(
    model: SchNetModel, db: Any, energy_reference: float, bucket_edges: list[float]
) -> tuple[ConformalCalibrator, dict[str, Any]]:
    """Conformal fit on ``calib``; regression, per-bucket, interval and |F| metrics on ``test``."""
    calib = load_rows(db, "calib")
    if len(calib) == 0:
        raise ValueError("the database has no calib rows: cannot calibrate")
    out = model.predict(calib.atoms)
    calibrator = ConformalCalibrator.fit(
        out["energy"], calib.energies, energy_reference, bucket_edges, spread=_spread(out, model)
    )
    metrics: dict[str, Any] = {"calib": regression_metrics(out["energy"], calib.energies)}
    test = load_rows(db, "test")
    if len(test):
        out = model.predict(test.atoms, forces=True)
        pred, spread = out["energy"], _spread(out, model)
        metrics["test"] = {
            **regression_metrics(pred, test.energies),
            "by_bucket": metrics_by_bucket(pred, test.energies, test.buckets),
            "mean_abs_force": float(np.linalg.norm(out["forces"], axis=-1).mean()),
            "intervals": {
                f"{c:g}": {
                    kind: interval_metrics(
                        test.energies,
                        pred,
                        calibrator.half_width(pred, c, mondrian=kind == "mondrian", spread=spread),
                    )
                    for kind in ("global", "mondrian")
                }
                for c in REPORT_CONFIDENCES
            },
        }
    return calibrator, metrics


def fit_schnet(
    db_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    config: SchNetConfig,
    teacher: Teacher | None = None,
    progress: bool = True,
) -> SchNetModel:
    """Train on ``train``/``val`` of ``db_path``, calibrate, score, write the card and save."""
    db = connect(os.fspath(db_path))
    meta = db.metadata
    for key in ("energy_reference", "bucket_edges", "split_scheme"):
        if key not in meta:
            raise ValueError(f"{db_path}: database metadata lacks {key!r}; rebuild it")
    train, val = load_rows(db, "train"), load_rows(db, "val")
    if len(train) == 0 or len(val) == 0:
        raise ValueError(f"{db_path}: SchNet training needs train and val rows")
    model = train_schnet(train, val, config, teacher=teacher, progress=progress)
    calibrator, metrics = calibrate_and_score(
        model, db, meta["energy_reference"], meta["bucket_edges"]
    )
    metrics["val"] = {
        "mae": float(np.mean([m["val_mae"] for m in model.card["training"]["members"]]))
    }
    card = new_card(
        "schnet",
        model.card["architecture"],
        model.card["hyperparameters"],
        model.card["features"],
        meta["energy_reference"],
        meta["bucket_edges"],
        np.concatenate([train.ids, val.ids]),  # every row that shaped the weights
        meta["split_scheme"],
        metrics=metrics,
        conformal=calibrator.to_dict(),
    )
    model.card.update(card, dataset_hash=meta.get("dataset_hash", ""))
    model.save(Path(out))
    return model
