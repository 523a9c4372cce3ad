"""`python -m ase_au20.models.reproduce`: both model folders, deterministic, loadable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ase_au20.models import load_model
from ase_au20.models.reproduce import main, reproduce
from ase_au20.models.schnet_training import SchNetConfig
from ase_au20.structures import au20_ground_state

TINY_SCHNET = SchNetConfig(
    hidden=8,
    blocks=1,
    rbf=8,
    cutoff=5.0,
    epochs=2,
    batch_size=16,
    kd_lambda=0.5,
    vkd=8,
    ensemble=2,
    device="cpu",
    threads=1,
)


def test_reproduce_is_deterministic_and_teaches_schnet(
    synthetic_db: Path, tiny_search, tmp_path: Path
) -> None:
    runs = [
        reproduce(
            synthetic_db, tmp_path / name, progress=False, search=tiny_search, config=TINY_SCHNET
        )
        for name in ("a", "b")
    ]
    assert set(runs[0]) == {"krr", "schnet"}
    a, b = tmp_path / "a", tmp_path / "b"
    assert (a / "krr/weights.npz").read_bytes() == (b / "krr/weights.npz").read_bytes()
    atoms = au20_ground_state()
    schnet = [load_model(d / "schnet").predict([atoms])["energy"] for d in (a, b)]
    assert np.array_equal(schnet[0], schnet[1])  # seeded training
    card = load_model(a / "schnet").card
    assert card["hyperparameters"]["kd_lambda"] == 0.5
    teacher = card["training"]["teacher"]
    assert teacher["type"] == "KRRModel"
    assert teacher["files"] == load_model(a / "krr").card["files"]  # taught by this very KRR
    assert card["conformal"]["normalised"] is True  # two members: spread-normalised


def test_cli_refuses_missing_database(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["--db", str(tmp_path / "none.db"), "--out", str(tmp_path)])
