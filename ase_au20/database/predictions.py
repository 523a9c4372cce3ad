"""The key-value pairs of a prediction row: never an ``energy``, which is a label (DFTB1 or
an oracle's).

Predictions (search candidates, screened structures, a user's stored prediction) carry the
predicted energy, its interval, spread and domain verdict and the model that made them, so
``ase db`` can show and filter them without ever mixing them with labels.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def prediction_pairs(
    energy: float,
    uncertainty: float,
    std: float,
    in_domain: bool | None,
    model: str,
    card_sha256: str = "",
) -> dict[str, Any]:
    """``pred_energy``, ``pred_uncertainty``, ``pred_std``, ``in_domain``, ``model`` and
    ``model_card_sha256``; values the calculator does not give (NaN, None) are left out."""
    kvp: dict[str, Any] = {
        "pred_energy": float(energy),
        "model": str(model),
        "model_card_sha256": str(card_sha256),
    }
    if np.isfinite(uncertainty):
        kvp["pred_uncertainty"] = float(uncertainty)
    if np.isfinite(std):
        kvp["pred_std"] = float(std)
    if in_domain is not None:
        kvp["in_domain"] = bool(in_domain)
    return kvp
