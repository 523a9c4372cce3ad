"""The last step of every training, the same for every model type: calibrate the intervals
on held-out rows, score the test split, write the card, save the model and fit its domain.

A model type's training ends with ``finish(model, db_path, out, CardParts(...))``; what
differs between types (architecture, hyper-parameters, extra calibration rows, the
structures the domain is fitted on) comes in as values.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ase import Atoms

from ase_au20.database import connect, load_rows
from ase_au20.models.card import new_card
from ase_au20.models.domain import attach_domain
from ase_au20.models.scoring import CalibrationRows, calibrate_and_score, training_metadata


@dataclass
class CardParts:
    """What a model type writes into its card beside the calibration and the provenance.

    ``training_ids`` are every isomer that shaped the model; ``calibration_ids`` the rows its
    quantiles or weights were fitted on besides calib (``()``: calib alone); ``metrics``
    join the calibration and test scores (e.g. the CV winner)."""

    model_type: str
    architecture: Any
    hyperparameters: dict[str, Any]
    features: dict[str, Any]
    training_ids: Sequence[int]
    calibration_ids: Sequence[int] = ()
    metrics: dict[str, Any] = field(default_factory=dict)


def finish(
    model: Any,
    db_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    parts: CardParts,
    domain_structures: Sequence[Atoms],
    extra: CalibrationRows | None = None,
    domain_frames: Sequence[Atoms] = (),
) -> dict[str, Any]:
    """Calibrate ``model`` on calib (and ``extra`` rows), score test, write its card (kept
    entries such as ``training`` stay), save it to ``out`` and fit the domain on
    ``domain_structures`` and the central share of ``domain_frames`` (corpus frames);
    returns the card's metrics."""
    db = connect(os.fspath(db_path))
    meta = training_metadata(db, db_path)
    calibrator, pairs, metrics = calibrate_and_score(
        model, db, meta["energy_reference"], meta["bucket_edges"], extra=extra
    )
    metrics.update(parts.metrics)
    card = new_card(
        parts.model_type,
        parts.architecture,
        parts.hyperparameters,
        parts.features,
        meta["energy_reference"],
        meta["bucket_edges"],
        parts.training_ids,
        meta["split_scheme"],
        metrics=metrics,
        conformal=calibrator.to_dict(),
        pair_conformal=pairs.to_dict(),
        calibration_ids=[*load_rows(db, "calib").ids.tolist(), *parts.calibration_ids],
    )
    model.card = {**(getattr(model, "card", None) or {}), **card}
    model.card["dataset_hash"] = meta.get("dataset_hash", "")
    model.save(Path(out))
    attach_domain(out, domain_structures, model, frames=domain_frames)
    return metrics
