"""The JSON model card beside every model's weights: write, read, validate, check the files.

A card says what the model is (architecture, hyper-parameters, features), what scale its
energies are on (energy_reference, bucket_edges), where it came from (training ids hash,
split scheme, package version, date), how good it is (metrics) and how wide its intervals
are (conformal). ``files`` maps each weights file to its SHA-256 so that a card never loads
weights it was not written with, and a truncated file is caught before it is parsed.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ase_au20._version import __version__

CARD_NAME = "card.json"
MODEL_TYPES = ("krr", "schnet")
REQUIRED_KEYS: dict[str, type | tuple[type, ...]] = {
    "model_type": str,
    "architecture": (str, dict),
    "hyperparameters": dict,
    "features": dict,
    "energy_reference": (int, float),
    "bucket_edges": list,
    "training_ids_sha256": str,
    "split_scheme": str,
    "metrics": dict,
    "conformal": (dict, type(None)),
    "package_version": str,
    "created": str,
}


def training_ids_sha256(ids: Iterable[int]) -> str:
    """SHA-256 of the sorted cluster ids, comma-joined: provenance of a training set."""
    text = ",".join(str(int(i)) for i in sorted(int(i) for i in ids))
    return hashlib.sha256(text.encode()).hexdigest()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def new_card(
    model_type: str,
    architecture: str | dict[str, Any],
    hyperparameters: Mapping[str, Any],
    features: Mapping[str, Any],
    energy_reference: float,
    bucket_edges: Iterable[float],
    training_ids: Iterable[int],
    split_scheme: str,
    metrics: Mapping[str, Any] | None = None,
    conformal: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A complete card with provenance filled in (package version, UTC creation time)."""
    card = {
        "model_type": model_type,
        "architecture": architecture,
        "hyperparameters": dict(hyperparameters),
        "features": dict(features),
        "energy_reference": float(energy_reference),
        "bucket_edges": [float(e) for e in bucket_edges],
        "training_ids_sha256": training_ids_sha256(training_ids),
        "split_scheme": split_scheme,
        "metrics": dict(metrics or {}),
        "conformal": None if conformal is None else dict(conformal),
        "package_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return validate_card(card)


def validate_card(card: Any, source: str = "model card") -> dict[str, Any]:
    """Return ``card`` if it has every required key with the right type, else ValueError."""
    if not isinstance(card, dict):
        raise ValueError(f"{source}: expected a JSON object, got {type(card).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in card]
    if missing:
        raise ValueError(f"{source}: missing key(s) {', '.join(missing)}")
    for key, kind in REQUIRED_KEYS.items():
        if isinstance(card[key], bool) or not isinstance(card[key], kind):
            raise ValueError(f"{source}: {key!r} has type {type(card[key]).__name__}")
    if card["model_type"] not in MODEL_TYPES:
        raise ValueError(
            f"{source}: unknown model_type {card['model_type']!r} (use {', '.join(MODEL_TYPES)})"
        )
    if len(card["bucket_edges"]) != 2 or card["bucket_edges"][0] > card["bucket_edges"][1]:
        raise ValueError(f"{source}: bucket_edges must be [low, high], got {card['bucket_edges']}")
    files = card.get("files", {})
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise ValueError(f"{source}: 'files' must map file names to SHA-256 strings")
    return card


def write_card(directory: str | os.PathLike[str], card: Mapping[str, Any]) -> Path:
    """Validate and write ``card.json`` atomically (temp file + rename); returns its path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    validate_card(dict(card))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".card-", suffix=".json")
    with os.fdopen(fd, "w") as handle:
        json.dump(json_safe(card), handle, indent=2, allow_nan=False)
        handle.write("\n")
    os.chmod(tmp, 0o644)
    path = directory / CARD_NAME
    os.replace(tmp, path)
    return path


def json_safe(value: Any) -> Any:
    """Non-finite floats as null (strict JSON), numpy scalars as Python numbers."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def read_card(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate ``directory/card.json``; clear ValueError if absent or malformed."""
    path = Path(directory) / CARD_NAME
    if not path.is_file():
        raise ValueError(f"no model card at {path}")
    try:
        card = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    return validate_card(card, source=str(path))


def check_files(directory: str | os.PathLike[str], card: Mapping[str, Any]) -> None:
    """ValueError unless every file listed in ``card['files']`` exists with its SHA-256."""
    for name, expected in card.get("files", {}).items():
        path = Path(directory) / name
        if not path.is_file():
            raise ValueError(f"{path}: missing (listed in the model card)")
        if file_sha256(path) != expected:
            raise ValueError(
                f"{path} does not match its model card (SHA-256 differs): the file is "
                "truncated, modified or belongs to another model"
            )
