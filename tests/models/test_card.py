"""Model cards: required keys, strict JSON, file hashes and loading by model_type."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ase_au20.models import load_model, pretrained_dir
from ase_au20.models.card import (
    REQUIRED_KEYS,
    check_files,
    new_card,
    read_card,
    training_ids_sha256,
    write_card,
)
from ase_au20.models.krr.model import KRRModel


def _card() -> dict:
    return new_card(
        "krr",
        "test",
        {"lambda": 1e-4},
        {"r_cut": 5.0},
        -1557.2,
        [4.0, 7.0],
        [3, 1, 2],
        "group",
        metrics={"test": {"r2": float("nan")}},
    )


def test_new_card_has_every_key_and_provenance() -> None:
    card = _card()
    assert set(REQUIRED_KEYS) <= set(card)
    assert card["training_ids_sha256"] == training_ids_sha256([1, 2, 3])
    assert card["training_ids_sha256"] != training_ids_sha256([1, 2, 4])
    assert card["package_version"]
    assert card["created"].endswith("+00:00")


def test_write_read_round_trip_is_strict_json(tmp_path: Path) -> None:
    write_card(tmp_path, _card())
    text = (tmp_path / "card.json").read_text()
    assert "NaN" not in text  # non-finite numbers become null
    card = read_card(tmp_path)
    assert card["metrics"]["test"]["r2"] is None
    assert card["bucket_edges"] == [4.0, 7.0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model_type": "gp"}, "unknown model_type"),
        ({"bucket_edges": [7.0, 4.0]}, "bucket_edges"),
        ({"energy_reference": "low"}, "'energy_reference' has type str"),
        ({"files": {"weights.npz": 3}}, "'files' must map"),
    ],
)
def test_invalid_cards_are_refused(tmp_path: Path, change: dict, message: str) -> None:
    (tmp_path / "card.json").write_text(json.dumps(_card() | change))
    with pytest.raises(ValueError, match=message):
        read_card(tmp_path)


def test_missing_key_and_broken_json(tmp_path: Path) -> None:
    card = _card()
    card.pop("conformal")
    (tmp_path / "card.json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match="missing key.*conformal"):
        read_card(tmp_path)
    (tmp_path / "card.json").write_text('{"model_type": ')
    with pytest.raises(ValueError, match="not valid JSON"):
        read_card(tmp_path)


def test_check_files_detects_changed_weights(tmp_path: Path) -> None:
    (tmp_path / "w.bin").write_bytes(b"abc")
    card = _card() | {"files": {"w.bin": "0" * 64}}
    with pytest.raises(ValueError, match="does not match its model card"):
        check_files(tmp_path, card)
    with pytest.raises(ValueError, match="missing"):
        check_files(tmp_path, _card() | {"files": {"other.bin": "0" * 64}})


def test_load_model_dispatches_on_model_type(tiny_krr) -> None:
    model = load_model(tiny_krr.directory)
    assert isinstance(model, KRRModel)
    card = model.card
    assert card["model_type"] == "krr"
    assert card["conformal"]["n_calib"] > 0
    assert set(card["metrics"]) >= {"cv", "calib", "test"}
    with pytest.raises(ValueError, match="unknown model 'gp'"):
        pretrained_dir("gp")
