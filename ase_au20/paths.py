"""Where the package finds the dataset and its shipped models."""

from __future__ import annotations

import os
from pathlib import Path

PRETRAINED_DIR = Path(__file__).resolve().parent / "models" / "pretrained"


def data_dir() -> Path:
    """The Au20 dataset folder: ``$AU20_DATA`` or ``../shared/data/au20`` from the cwd."""
    return Path(os.environ.get("AU20_DATA", "../shared/data/au20")).expanduser().resolve()
