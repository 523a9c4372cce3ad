"""Rewriting a model card for tests that craft internally consistent but wrong model files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ase_au20.models.card import file_sha256, write_card


def read(directory: Path) -> dict[str, Any]:
    """The card of ``directory`` as a dict."""
    return json.loads((Path(directory) / "card.json").read_text())


def reseal(directory: Path, card: dict[str, Any], rehash: tuple[str, ...] = ()) -> None:
    """Write ``card`` sealed as if the model had been saved so (``rehash``: weights files
    whose listed SHA-256 is set to what they now hold)."""
    for name in rehash:
        card.setdefault("files", {})[name] = file_sha256(Path(directory) / name)
    write_card(directory, card)
