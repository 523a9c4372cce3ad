"""The 899 shared isomers: counts, duplicate groups, group-aware and seed splits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ase_au20.database import connect, load_rows

pytestmark = pytest.mark.data


def test_real_counts_groups_and_energy(real_db: Path) -> None:
    rows = load_rows(real_db)
    assert len(rows) == 899
    _, sizes = np.unique(rows.groups, return_counts=True)
    assert len(sizes) == 714  # distinct isomers at the 0.1 Å duplicate tolerance
    assert (sizes > 1).sum() == 103 and sizes.max() == 13
    lowest = rows.ids[np.argmin(rows.energies)]
    assert lowest == 350 and rows.energies.min() == pytest.approx(-1557.20946)
    assert rows.delta_e.max() == pytest.approx(26.3011, abs=1e-3)
    meta = connect(real_db).metadata
    assert meta["energy_reference"] == pytest.approx(-1557.20946)
    assert meta["split_scheme"] == "seed"
    for g in np.unique(rows.groups[np.isin(rows.groups, np.flatnonzero(sizes > 1))]):
        spread = np.ptp(rows.energies[rows.groups == g])
        assert spread < 0.062  # copies of one minimum differ by the labels' convergence only


def test_seed_split_reproduces_fixed_test_ids_and_folds(real_db: Path, au20_data_dir: Path) -> None:
    seed_dir = au20_data_dir / "splits_seed"
    fixed = {
        int(i) for i in json.loads((seed_dir / "test_ids_nohash.json").read_text())["test_ids"]
    }
    test = load_rows(real_db, split="test")
    assert len(test) == 155 and set(test.ids.tolist()) == fixed
    folds = json.loads((seed_dir / "cv_folds_fixed.json").read_text())["folds"]
    rest = load_rows(real_db, split=("train", "val"))
    for k, fold in enumerate(folds):
        val_ids = {int(i) for i in fold["val_ids"]}
        assert set(rest.ids[rest.folds == k].tolist()) <= val_ids
    calib = load_rows(real_db, split="calib")
    assert 85 <= len(calib) <= 95
    assert not set(calib.groups.tolist()) & set(test.groups.tolist())
    # README: 41 of the 155 fixed test isomers have a near-duplicate outside the test set
    others = set(load_rows(real_db, split=("train", "val", "calib")).groups.tolist())
    assert sum(g in others for g in test.groups.tolist()) == 41


def test_group_split_is_disjoint_at_group_level(real_db_group: Path) -> None:
    rows = load_rows(real_db_group)
    assert len(rows) == 899
    for g in np.unique(rows.groups):
        members = rows.groups == g
        assert len(set(rows.splits[members])) == 1 and len(set(rows.folds[members])) == 1
    fractions = {s: np.mean(rows.splits == s) for s in ("test", "calib", "val", "train")}
    assert fractions["test"] == pytest.approx(0.15, abs=0.01)
    assert fractions["calib"] == pytest.approx(0.10, abs=0.01)
    assert fractions["val"] == pytest.approx(0.15, abs=0.01)
    for bucket in ("low", "mid", "high"):
        share = np.mean(rows.splits[rows.buckets == bucket] == "test")
        assert share == pytest.approx(0.15, abs=0.03)
