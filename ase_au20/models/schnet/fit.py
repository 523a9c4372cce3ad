"""From a database to a saved SchNet model directory: train, calibrate, score, card, save.

Trains on the ``train`` split with early stopping on ``val``, fits conformal quantiles on
``calib`` (normalised by the ensemble spread plus its calib median when there are several
members) and scores ``test``; the card records the database provenance next to the
architecture.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ase_au20.database import connect, load_rows
from ase_au20.database.corpus import balanced_by_family, check_one_level, load_corpus
from ase_au20.models.finishing import CardParts, finish
from ase_au20.models.schnet.network import SchNetModel
from ase_au20.models.schnet.training import SchNetConfig, Teacher, train_schnet
from ase_au20.models.scoring import CalibrationRows, model_spread, training_metadata

VAL_FRAMES = 3000  # corpus frames scored after every epoch (every k-th of the val split)
CALIBRATION_FRAMES = 1000  # per family, beside the calib isomers: every family weighs alike
DOMAIN_FRAMES = 1000  # training frames per family the domain is fitted on, beside the isomers


def fit_schnet(
    db_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    config: SchNetConfig,
    teacher: Teacher | None = None,
    progress: bool = True,
    checkpoints: str | os.PathLike[str] | None = None,
) -> SchNetModel:
    """Train on ``train``/``val`` of ``db_path`` (with ``force_weight`` > 0, its corpus frames
    too), calibrate, score, write the card and save; ``checkpoints`` keeps each member's
    state after every epoch, so the same call after a stop goes on."""
    db = connect(os.fspath(db_path))
    training_metadata(db, db_path)  # before training: a db without it fails in seconds
    train, val = load_rows(db, "train"), load_rows(db, "val")
    if len(train) == 0 or len(val) == 0:
        raise ValueError(f"{db_path}: SchNet training needs train and val rows")
    corpus = None
    if config.force_weight > 0:
        corpus_val = load_corpus(db, "val")
        every = max(1, -(-len(corpus_val) // VAL_FRAMES))
        corpus = (load_corpus(db, "train"), corpus_val.subset(np.arange(0, len(corpus_val), every)))
        for part in corpus:
            check_one_level(part, db.metadata.get("level"))
    model = train_schnet(
        train,
        val,
        config,
        teacher=teacher,
        progress=progress,
        corpus=corpus,
        checkpoints=None if checkpoints is None else Path(checkpoints),
    )
    return calibrate_and_save(model, db_path, out)


def calibrate_and_save(
    model: SchNetModel, db_path: str | os.PathLike[str], out: str | os.PathLike[str]
) -> SchNetModel:
    """Calibrate a trained model on ``calib`` of ``db_path`` (conformal and pair intervals,
    normalised by an ensemble's spread plus its calib median), score ``test``, write the
    card and the domain, and save to ``out``; also recalibrates a saved model.

    With a corpus, the conformal quantiles also see up to CALIBRATION_FRAMES calib frames of
    each family, pooled and per family, and the domain up to DOMAIN_FRAMES training frames of
    each: the interval and the verdict then describe the geometries the workflows visit, not
    only minima."""
    db = connect(os.fspath(db_path))
    train, val = load_rows(db, "train"), load_rows(db, "val")
    frames = balanced_by_family(load_corpus(db, "calib"), CALIBRATION_FRAMES)
    extra = None
    if len(frames):
        out_frames = model.predict([frames.atoms(i) for i in range(len(frames))])
        extra = CalibrationRows(
            out_frames["energy"], frames.energies, model_spread(out_frames), frames.families
        )
    members = model.card["training"]["members"]
    parts = CardParts(
        "schnet",
        model.card["architecture"],
        model.card["hyperparameters"],
        model.card["features"],
        [*train.ids, *val.ids],  # every isomer that shaped the weights
        metrics={"val": {"mae": float(np.mean([m["val_mae"] for m in members]))}},
    )
    seen = balanced_by_family(load_corpus(db, "train"), DOMAIN_FRAMES)
    frames = [seen.atoms(i) for i in range(len(seen))]
    finish(model, db_path, out, parts, [*train.atoms, *val.atoms], extra, domain_frames=frames)
    return model
