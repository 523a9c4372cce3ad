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
from ase_au20.models.domain import attach_domain
from ase_au20.models.schnet.network import SchNetModel
from ase_au20.models.schnet.training import SchNetConfig, Teacher, train_schnet
from ase_au20.models.scoring import calibrate_and_score, training_metadata


def _spread(out: dict[str, Any], model: SchNetModel) -> np.ndarray | None:
    """Ensemble spread (floored at 1 meV so normalised scores stay finite), or None."""
    if len(model) < 2:
        return None
    return np.maximum(out["energy_std"], 1e-3)


def fit_schnet(
    db_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    config: SchNetConfig,
    teacher: Teacher | None = None,
    progress: bool = True,
) -> SchNetModel:
    """Train on ``train``/``val`` of ``db_path``, calibrate, score, write the card and save."""
    db = connect(os.fspath(db_path))
    meta = training_metadata(db, db_path)
    train, val = load_rows(db, "train"), load_rows(db, "val")
    if len(train) == 0 or len(val) == 0:
        raise ValueError(f"{db_path}: SchNet training needs train and val rows")
    model = train_schnet(train, val, config, teacher=teacher, progress=progress)
    calibrator, pairs, metrics = calibrate_and_score(
        model,
        db,
        meta["energy_reference"],
        meta["bucket_edges"],
        spread_of=lambda out: _spread(out, model),
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
        pair_conformal=pairs.to_dict(),
        calibration_ids=load_rows(db, "calib").ids,
    )
    model.card.update(card, dataset_hash=meta.get("dataset_hash", ""))
    model.save(Path(out))
    attach_domain(out, [*train.atoms, *val.atoms], model)
    return model
