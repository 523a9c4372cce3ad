"""Train/val/calib/test assignment that never separates members of a duplicate group.

Folds: rows that are neither test nor calib carry a fold 0..N_FOLDS-1 for cross-validation;
``split`` is ``val`` for fold 0 and ``train`` for the others. Test and calib rows have fold -1.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

N_FOLDS = 5
VAL_FOLD = 0
TEST_FRACTION = 0.15
CALIB_FRACTION = 0.10
SPLIT_NAMES = ("train", "val", "calib", "test")


@dataclass
class SplitAssignment:
    """Per-row split name and fold, plus notes on seed ids that could not be used."""

    splits: np.ndarray
    folds: np.ndarray
    notes: list[str] = field(default_factory=list)


def _names_from_folds(folds: np.ndarray, test: np.ndarray, calib: np.ndarray) -> np.ndarray:
    """Split names from folds and the test/calib masks (val = fold VAL_FOLD)."""
    splits = np.where(folds == VAL_FOLD, "val", "train").astype(object)
    splits[calib] = "calib"
    splits[test] = "test"
    return splits.astype(str)


def _group_order(groups: np.ndarray, strata: np.ndarray, rng: np.random.Generator) -> list:
    """Group labels shuffled within each stratum, strata concatenated in sorted order."""
    labels = np.unique(groups)
    first = {g: np.flatnonzero(groups == g)[0] for g in labels}
    order: list = []
    for stratum in sorted(set(strata.tolist())):
        members = [g for g in labels if strata[first[g]] == stratum]
        order.extend(members[i] for i in rng.permutation(len(members)))
    return order


def _allocate(
    groups: np.ndarray, order: list, fractions: np.ndarray, start: np.ndarray | None = None
) -> np.ndarray:
    """Give each group (in ``order``) to the bin furthest below its running target size."""
    bins = np.full(len(groups), -1, dtype=int)
    filled = np.zeros(len(fractions)) if start is None else start.astype(float).copy()
    seen = filled.sum()
    for g in order:
        members = groups == g
        seen += members.sum()
        choice = int(np.argmax(fractions * seen - filled))
        bins[members] = choice
        filled[choice] += members.sum()
    return bins


def _bin_fractions(test_fraction: float, calib_fraction: float, n_folds: int) -> np.ndarray:
    """Target shares of the bins test, calib, fold 0 … fold n_folds − 1."""
    rest = (1.0 - test_fraction - calib_fraction) / n_folds
    return np.array([test_fraction, calib_fraction, *([rest] * n_folds)])


def group_split(
    groups: np.ndarray,
    strata: np.ndarray,
    seed: int = 0,
    test_fraction: float = TEST_FRACTION,
    calib_fraction: float = CALIB_FRACTION,
    n_folds: int = N_FOLDS,
) -> SplitAssignment:
    """Deterministic group-aware split, stratified by ``strata`` (e.g. energy bucket)."""
    if not 0.0 < test_fraction + calib_fraction < 1.0:
        raise ValueError("test_fraction + calib_fraction must lie strictly between 0 and 1")
    groups, strata = np.asarray(groups), np.asarray(strata)
    fractions = _bin_fractions(test_fraction, calib_fraction, n_folds)
    rng = np.random.default_rng(seed)
    bins = _allocate(groups, _group_order(groups, strata, rng), fractions)
    test, calib = bins == 0, bins == 1
    folds = np.where(bins >= 2, bins - 2, -1)
    return SplitAssignment(_names_from_folds(folds, test, calib), folds)


def read_seed_splits(seed_dir: Path) -> tuple[set[int], dict[int, int]]:
    """The prototype's fixed test ids and the fold of every id in a fold's ``val_ids``."""
    seed_dir = Path(seed_dir)
    test_path, folds_path = seed_dir / "test_ids_nohash.json", seed_dir / "cv_folds_fixed.json"
    for path in (test_path, folds_path):
        if not path.is_file():
            raise ValueError(f"seed split file not found: {path}")
    try:
        test_ids = {int(i) for i in json.loads(test_path.read_text())["test_ids"]}
        fold_of: dict[int, int] = {}
        for k, fold in enumerate(json.loads(folds_path.read_text())["folds"]):
            for i in fold["val_ids"]:
                fold_of[int(i)] = k
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"malformed seed split files in {seed_dir}: {err}") from None
    return test_ids, fold_of


def seed_split(
    ids: np.ndarray,
    groups: np.ndarray,
    seed_dir: Path,
    seed: int = 0,
    calib_fraction: float = CALIB_FRACTION,
) -> SplitAssignment:
    """The prototype's fixed test ids and CV folds, with a group-aware calib set carved out.

    Calib takes whole groups that have no member in the fixed test set, about
    ``calib_fraction`` of all rows. Rows in no seed file are spread over the folds
    group-aware; seed ids missing from the folder are reported and ignored.
    """
    ids, groups = np.asarray(ids), np.asarray(groups)
    test_ids, fold_of = read_seed_splits(seed_dir)
    notes: list[str] = []
    present = set(ids.tolist())
    missing = sorted((test_ids | set(fold_of)) - present)
    if missing:
        notes.append(f"{len(missing)} seed-split ids not in the folder, ignored: {missing}")
    test = np.isin(ids, sorted(test_ids))
    folds = np.array([fold_of.get(int(i), -1) for i in ids], dtype=int)
    folds[test] = -1
    unassigned = (folds < 0) & ~test
    if unassigned.any():
        notes.append(
            f"{int(unassigned.sum())} ids in no seed fold, spread over folds group-aware: "
            f"{sorted(ids[unassigned].tolist())}"
        )
        for g in np.unique(groups[unassigned]):
            known = folds[(groups == g) & (folds >= 0)]
            if known.size:
                folds[(groups == g) & unassigned] = known.min()
        left = (folds < 0) & ~test
        order = np.unique(groups[left])
        order = order[np.random.default_rng(seed).permutation(len(order))]
        counts = np.bincount(folds[folds >= 0], minlength=N_FOLDS)
        folds[left] = _allocate(groups[left], list(order), np.full(N_FOLDS, 1 / N_FOLDS), counts)
    test_groups = set(groups[test].tolist())
    candidates = np.array([g for g in np.unique(groups) if g not in test_groups])
    rng = np.random.default_rng(seed)
    calib = np.zeros(len(ids), dtype=bool)
    target = calib_fraction * len(ids)
    for g in candidates[rng.permutation(len(candidates))]:
        if calib.sum() >= target:
            break
        calib |= groups == g
    folds[calib] = -1
    return SplitAssignment(_names_from_folds(folds, test, calib), folds, notes)


def extend_split(
    splits: np.ndarray,
    folds: np.ndarray,
    new_groups: np.ndarray,
    seed: int = 0,
    test_fraction: float = TEST_FRACTION,
    calib_fraction: float = CALIB_FRACTION,
    n_folds: int = N_FOLDS,
) -> SplitAssignment:
    """Splits of new rows, whole groups at a time, filling the bins furthest below target.

    ``splits``/``folds`` are the existing rows' (their counts are the starting sizes);
    ``new_groups`` the duplicate group of each new row. A new row in a group that already
    has rows would break the group apart across splits, so callers add only new groups.
    """
    new_groups = np.asarray(new_groups)
    fractions = _bin_fractions(test_fraction, calib_fraction, n_folds)
    splits, folds = np.asarray(splits), np.asarray(folds)
    start = np.array(
        [(splits == "test").sum(), (splits == "calib").sum()]
        + [((folds == k) & np.isin(splits, ("train", "val"))).sum() for k in range(n_folds)]
    )
    order = list(np.unique(new_groups))
    order = [order[i] for i in np.random.default_rng(seed).permutation(len(order))]
    bins = _allocate(new_groups, order, fractions, start)
    test, calib = bins == 0, bins == 1
    new_folds = np.where(bins >= 2, bins - 2, -1)
    return SplitAssignment(_names_from_folds(new_folds, test, calib), new_folds)
