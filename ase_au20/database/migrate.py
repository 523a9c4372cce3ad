"""Databases written before labels and predictions were kept apart: detect and migrate.

Older `search` runs stored each candidate's predicted energy as the row's ``energy``
(calculator "unknown"), so ``ase db 'energy<…'`` mixed predictions with DFTB1 labels. Such
rows have no ``cluster_id``. Migration moves the number into ``pred_energy`` (and the old
``energy_uncertainty`` / ``search_calc`` keys into ``pred_uncertainty`` / ``model``) and
drops the energy, in one transaction.
"""

from __future__ import annotations

import os

from ase.db.core import Database

from ase_au20.database.store import shown_url

RENAMED_KEYS = {"energy_uncertainty": "pred_uncertainty", "search_calc": "model"}
DROPPED_KEYS = ("predicted_energy",)


def predictions_stored_as_labels(db: Database) -> list[int]:
    """Row ids of rows without a ``cluster_id`` that nevertheless carry an ``energy``."""
    return [
        row.id
        for row in db.select(include_data=False)
        if "cluster_id" not in row and row.get("energy") is not None
    ]


def require_migrated(db: Database, db_url: str | os.PathLike[str]) -> None:
    """ValueError with the command that fixes it when predictions are stored as labels."""
    rows = predictions_stored_as_labels(db)
    if rows:
        raise ValueError(
            f"{shown_url(db_url)}: {len(rows)} prediction row(s) store the predicted energy as "
            "a label (written by an older ase-au20); run `au20-workflow db migrate "
            f"{shown_url(db_url)}` first"
        )


def migrate_predictions(db: Database) -> int:
    """Rewrite every prediction row stored as a label; returns how many were rewritten."""
    ids = predictions_stored_as_labels(db)
    with db:
        for row_id in ids:
            row = db.get(id=row_id)
            atoms = row.toatoms()
            atoms.calc = None
            kvp = {
                RENAMED_KEYS.get(k, k): v
                for k, v in row.key_value_pairs.items()
                if k not in DROPPED_KEYS
            }
            kvp["pred_energy"] = float(row.energy)
            db.write(atoms, key_value_pairs=kvp)
        db.delete(ids)
    return len(ids)
