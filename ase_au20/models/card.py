"""The JSON model card beside every model's weights: write, read, validate, check the files.

A card says what the model is (architecture, hyper-parameters, features), what scale its
energies are on (energy_reference, bucket_edges), where it came from (training ids hash,
split scheme, package version, date), how good it is (metrics) and how wide its intervals
are (conformal). ``files`` maps each weights file to its SHA-256, and ``sha256`` seals the
whole card (so the weights too): an edited card, a swapped or truncated weights file is
refused before anything is parsed, with one clear error each. Listed files must be plain
names inside the model's folder. The seal is a plain hash: it catches accidents (an edit, a
copy gone wrong), not deliberate tampering, since whoever edits a card can reseal it; load
only model folders you trust, as with any code.
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
from ase_au20.models.registry import MODELS

CARD_NAME = "card.json"
SEAL = "sha256"
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


def seen_ids(card: Mapping[str, Any]) -> set[int] | None:
    """Ids of every row the model was trained or calibrated on; None for a card that
    predates the lists (it records only a hash of its training ids)."""
    if "training_ids" not in card:
        return None
    return {int(i) for i in card["training_ids"]} | {
        int(i) for i in card.get("calibration_ids", [])
    }


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
    calibration_ids: Iterable[int] = (),
    pair_conformal: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A complete card with provenance filled in (package version, UTC creation time).

    ``training_ids`` are every row that shaped the model (fit, early stopping, model
    selection, a teacher's training rows); ``calibration_ids`` the rows its conformal
    quantiles (and any weights) were fitted on. `evaluate` never scores either.
    """
    training_ids = sorted({int(i) for i in training_ids})
    card = {
        "model_type": model_type,
        "architecture": architecture,
        "hyperparameters": dict(hyperparameters),
        "features": dict(features),
        "energy_reference": float(energy_reference),
        "bucket_edges": [float(e) for e in bucket_edges],
        "training_ids_sha256": training_ids_sha256(training_ids),
        "training_ids": training_ids,
        "calibration_ids": sorted({int(i) for i in calibration_ids}),
        "split_scheme": split_scheme,
        "metrics": dict(metrics or {}),
        "conformal": None if conformal is None else dict(conformal),
        "pair_conformal": None if pair_conformal is None else dict(pair_conformal),
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
    if card["model_type"] not in MODELS:
        raise ValueError(
            f"{source}: unknown model_type {card['model_type']!r} (use {', '.join(MODELS)})"
        )
    _check_version(card["package_version"], source)
    if len(card["bucket_edges"]) != 2 or card["bucket_edges"][0] > card["bucket_edges"][1]:
        raise ValueError(f"{source}: bucket_edges must be [low, high], got {card['bucket_edges']}")
    files = card.get("files", {})
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        raise ValueError(f"{source}: 'files' must map file names to SHA-256 strings")
    if card["conformal"] is not None:
        from ase_au20.models.conformal import ConformalCalibrator

        try:
            ConformalCalibrator.from_dict(card["conformal"])
        except ValueError as err:
            raise ValueError(f"{source}: {err}") from None
    return card


def _check_version(version: str, source: str) -> None:
    """ValueError for a card written by a newer major version than this package."""
    try:
        major = int(version.split(".")[0])
    except ValueError:
        raise ValueError(f"{source}: package_version {version!r} is not a version") from None
    ours = int(__version__.split(".")[0])
    if major > ours:
        raise ValueError(
            f"{source}: written by ase-au20 {version}, a newer major version than this "
            f"{__version__}: upgrade ase-au20 to load it"
        )


def card_sha256(card: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``card`` without its seal; it covers the weights
    through their hashes under ``files``."""
    body = {k: v for k, v in card.items() if k != SEAL}
    text = json.dumps(json_safe(body), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def write_card(directory: str | os.PathLike[str], card: dict[str, Any]) -> Path:
    """Validate, seal (``card["sha256"]``, set in place) and write ``card.json`` atomically
    (temp file + rename); returns its path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    validate_card(card)
    card[SEAL] = card_sha256(card)
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


def open_model_card(
    directory: str | os.PathLike[str], model_type: str, weights: Iterable[str] = ()
) -> dict[str, Any]:
    """The validated card of a model directory of ``model_type``, after checking its seal,
    that every file in ``weights`` is listed, and every listed file's SHA-256."""
    directory = Path(directory)
    card = read_card(directory)
    source = directory / CARD_NAME
    if card["model_type"] != model_type:
        raise ValueError(f"{source}: model_type is {card['model_type']!r}, not {model_type!r}")
    if SEAL not in card:
        raise ValueError(f"{source}: the card is not sealed (no {SEAL!r}): save the model again")
    if card[SEAL] != card_sha256(card):
        raise ValueError(
            f"{source}: the card was edited after the model was saved (its SHA-256 over "
            "card and weights differs); restore it or train the model again"
        )
    require_listed(card, weights, source)
    check_files(directory, card)
    return card


def require_listed(card: Mapping[str, Any], names: Iterable[str], source: Any) -> None:
    """ValueError unless every weights file in ``names`` is listed (hashed) in ``files``."""
    unlisted = [name for name in names if name not in card.get("files", {})]
    if unlisted:
        raise ValueError(f"{source}: weights file(s) {', '.join(unlisted)} not listed in 'files'")


def check_files(directory: str | os.PathLike[str], card: Mapping[str, Any]) -> None:
    """ValueError unless every file listed in ``card['files']`` lies inside ``directory``
    (a plain name, no absolute path, no ``..``) and exists with its SHA-256."""
    for name, expected in card.get("files", {}).items():
        inside = Path(name).name == name and name not in ("", ".", "..")
        if not inside:
            raise ValueError(
                f"{Path(directory) / CARD_NAME}: lists {name!r}, which is not a file of the "
                "model's folder (absolute or leaving it): refused"
            )
        path = Path(directory) / name
        if not path.is_file():
            raise ValueError(f"{path}: missing (listed in the model card)")
        if file_sha256(path) != expected:
            raise ValueError(
                f"{path} does not match its model card (SHA-256 differs): the file is "
                "truncated, modified or belongs to another model"
            )


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return str(value)


def summarise_card(card: dict[str, Any], confidence: float, mondrian: bool) -> str:
    """Human-readable model card: type, settings, data provenance, test metrics, intervals."""
    lines = [f"ase-au20 model: {card.get('model_type', '?')}"]
    for key in ("architecture", "hyperparameters", "features"):
        section = card.get(key)
        if isinstance(section, dict) and section:
            body = ", ".join(f"{k}={_fmt(v)}" for k, v in section.items())
            lines.append(f"  {key}: {body}")
    reference = card.get("energy_reference")
    reference = repr(reference) if isinstance(reference, float) else _fmt(reference)
    lines.append(f"  energy reference: {reference} eV (ΔE = E − ref)")  # full precision
    lines.append(f"  split scheme: {_fmt(card.get('split_scheme'))}")
    lines.append(f"  training ids sha256: {str(card.get('training_ids_sha256', '?'))[:16]}…")
    metrics = card.get("metrics")
    if isinstance(metrics, dict):
        for split, values in metrics.items():
            if isinstance(values, dict):
                scalars = {k: v for k, v in values.items() if isinstance(v, int | float)}
                body = ", ".join(f"{k}={_fmt(v)}" for k, v in scalars.items())
                lines.append(f"  metrics[{split}]: {body}")
            elif isinstance(values, int | float):
                lines.append(f"  metrics[{split}]: {_fmt(values)}")
    if "reference" in card:
        lines.append(f"  reference: {card['reference'].get('level', '?')}: exact, interval width 0")
    else:
        lines.append(
            f"  uncertainty: conformal interval at confidence {confidence:g}"
            f" ({'Mondrian by predicted-ΔE bucket' if mondrian else 'global'})"
        )
        families = (card.get("conformal") or {}).get("families") or {}
        if families:
            counts = ", ".join(f"{name} {group.get('n', '?')}" for name, group in families.items())
            lines.append(f"  per-family quantiles (calibration rows): {counts}")
    lines.append(
        f"  package version: {card.get('package_version', '?')}, created {card.get('created', '?')}"
    )
    return "\n".join(lines)
