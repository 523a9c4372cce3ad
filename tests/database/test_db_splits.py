"""Group-aware and seed splits on synthetic group labels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ase_au20.database.splits import group_split, read_seed_splits, seed_split


def _groups(n_groups: int = 300, seed: int = 1) -> np.ndarray:
    sizes = np.random.default_rng(seed).choice([1, 1, 1, 2, 3, 5], size=n_groups)
    return np.repeat(np.arange(n_groups), sizes)


def _assert_groups_whole(groups: np.ndarray, splits: np.ndarray, folds: np.ndarray) -> None:
    for g in np.unique(groups):
        members = groups == g
        assert len(set(splits[members])) == 1
        assert len(set(folds[members])) == 1


def test_group_split_fractions_folds_and_integrity() -> None:
    groups = _groups()
    strata = np.array(["low", "mid", "mid", "high"])[groups % 4]
    result = group_split(groups, strata, seed=3)
    n = len(groups)
    fractions = {s: np.mean(result.splits == s) for s in ("train", "val", "calib", "test")}
    assert fractions["test"] == pytest.approx(0.15, abs=0.02)
    assert fractions["calib"] == pytest.approx(0.10, abs=0.02)
    assert fractions["val"] == pytest.approx(0.15, abs=0.02)
    assert fractions["train"] == pytest.approx(0.60, abs=0.03)
    assert set(result.folds[result.splits == "val"]) == {0}
    assert set(result.folds[result.splits == "train"]) == {1, 2, 3, 4}
    assert set(result.folds[np.isin(result.splits, ["test", "calib"])]) == {-1}
    assert np.bincount(result.folds[result.folds >= 0]).min() > 0.12 * n
    _assert_groups_whole(groups, result.splits, result.folds)
    for stratum in ("low", "mid", "high"):  # stratified: each bucket has ~15 % test
        in_stratum = strata == stratum
        assert np.mean(result.splits[in_stratum] == "test") == pytest.approx(0.15, abs=0.04)


def test_group_split_is_deterministic_per_seed() -> None:
    groups = _groups()
    strata = np.zeros(len(groups), dtype=int)
    a, b, c = (group_split(groups, strata, seed=s) for s in (0, 0, 1))
    assert np.array_equal(a.splits, b.splits) and np.array_equal(a.folds, b.folds)
    assert not np.array_equal(a.splits, c.splits)


def test_group_split_rejects_bad_fractions() -> None:
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        group_split(np.arange(10), np.zeros(10), test_fraction=0.6, calib_fraction=0.5)


def _seed_dir(tmp_path: Path, test_ids: list[int], folds: list[list[int]]) -> Path:
    (tmp_path / "test_ids_nohash.json").write_text(
        json.dumps({"test_ids": [str(i) for i in test_ids]})
    )
    payload = {"folds": [{"train_ids": [], "val_ids": [str(i) for i in f]} for f in folds]}
    (tmp_path / "cv_folds_fixed.json").write_text(json.dumps(payload))
    return tmp_path


def test_seed_split_uses_fixed_ids_and_reports_missing(tmp_path: Path) -> None:
    ids = np.arange(40)
    groups = np.arange(40) // 2  # pairs: (0,1), (2,3), ...
    folds = [list(range(6 + 7 * k, 6 + 7 * (k + 1))) for k in range(5)]  # ids 6..40
    seed_dir = _seed_dir(tmp_path, [0, 2, 3, 4, 500], folds)
    result = seed_split(ids, groups, seed_dir, calib_fraction=0.1)
    assert sorted(ids[result.splits == "test"].tolist()) == [0, 2, 3, 4]
    assert any("[40, 500]" in note for note in result.notes)  # absent ids reported
    assert any("[1, 5]" in note for note in result.notes)  # ids in no fold
    # id 1 shares a group with test id 0 and id 5 with test id 4: never calib
    calib = result.splits == "calib"
    assert 4 <= calib.sum() <= 5
    assert not set(groups[calib]) & set(groups[result.splits == "test"])
    kept = ~calib & (result.splits != "test")
    for k, members in enumerate(folds):
        mask = np.isin(ids, members) & kept
        assert set(result.folds[mask]) <= {k}
    assert set(result.splits[result.folds == 0]) <= {"val"}
    assert (result.folds[calib | (result.splits == "test")] == -1).all()


def test_read_seed_splits_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="seed split file not found"):
        read_seed_splits(tmp_path)
    (tmp_path / "test_ids_nohash.json").write_text("{}")
    (tmp_path / "cv_folds_fixed.json").write_text('{"folds": []}')
    with pytest.raises(ValueError, match="malformed seed split files"):
        read_seed_splits(tmp_path)
