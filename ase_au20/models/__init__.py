"""Energy models of Au clusters behind one protocol (``protocol.Model``) and one registry.

``load_model`` opens a trained model directory, or a shipped model by its registered name,
through the class that ``registry`` lists for the card's ``model_type``; heavy
dependencies load only then.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ase_au20.models.registry import MODEL_NAMES, load_options, model_class
from ase_au20.paths import PRETRAINED_DIR


def pretrained_dir(name: str) -> Path:
    """Directory of the shipped model registered as ``name``; ValueError if absent."""
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}: use {', '.join(MODEL_NAMES)}")
    path = PRETRAINED_DIR / name
    if not (path / "card.json").is_file():
        raise ValueError(f"no shipped {name} model in {path}: run `make reproduce`")
    return path


def model_directory(spec: str | os.PathLike[str]) -> Path:
    """A registered name as its shipped directory; anything else as a path."""
    text = os.fspath(spec)
    return pretrained_dir(text) if text in MODEL_NAMES else Path(text)


def load_model(spec: str | os.PathLike[str], **options: Any) -> Any:
    """A loaded model from a directory or a shipped name, by the card's ``model_type``,
    with its domain of applicability as ``model.domain``.

    ``options`` (e.g. ``device``, ``dtype``) reach the loaders that accept them.
    """
    from ase_au20.models.card import read_card

    path = model_directory(spec)
    model_type = read_card(path)["model_type"]
    return model_class(model_type).load(path, **load_options(model_type, options))
