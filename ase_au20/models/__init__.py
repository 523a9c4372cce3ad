"""Energy models of Au clusters: SOAP+KRR and SchNet, their cards, calibration and training.

``load_model`` opens any trained model directory (or a shipped one by kind) by reading the
card's ``model_type``; heavy dependencies load only then.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ase_au20.paths import PRETRAINED_DIR

MODEL_KINDS = ("krr", "schnet")


def pretrained_dir(kind: str) -> Path:
    """Directory of the shipped model of ``kind`` ("krr" or "schnet"); ValueError if absent."""
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}: use {', '.join(MODEL_KINDS)}")
    path = PRETRAINED_DIR / kind
    if not (path / "card.json").is_file():
        raise ValueError(f"no shipped {kind} model in {path}: run `make reproduce`")
    return path


def load_model(path_or_kind: str | os.PathLike[str]) -> Any:
    """A loaded model from a directory or a shipped kind, dispatched on card['model_type']."""
    from ase_au20.models.card import read_card

    spec = os.fspath(path_or_kind)
    path = pretrained_dir(spec) if spec in MODEL_KINDS else Path(spec)
    model_type = read_card(path)["model_type"]
    if model_type == "krr":
        from ase_au20.models.krr import KRRModel

        return KRRModel.load(path)
    from ase_au20.models.schnet import SchNetModel

    return SchNetModel.load(path)
