"""load_rows / IsomerSet and the summary table on the synthetic database."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from ase_au20.database import IsomerSet, connect, load_rows
from ase_au20.database.summary import format_summary, summarize


def test_load_rows_fields_align(synthetic_db: Path) -> None:
    rows = load_rows(synthetic_db)
    assert isinstance(rows, IsomerSet) and len(rows) == 44
    assert rows.ids.tolist() == list(range(44))
    assert rows.energies.dtype == float and rows.groups.dtype.kind == "i"
    for i, atoms in enumerate(rows.atoms):
        assert atoms.get_potential_energy() == rows.energies[i]
        assert atoms.get_chemical_formula() == "Au20"
    np.testing.assert_allclose(rows.delta_e, rows.energies - rows.energies.min())
    db = connect(synthetic_db)
    for cid in (0, 17, 43):
        row = db.get(cluster_id=cid)
        i = int(np.flatnonzero(rows.ids == cid)[0])
        assert (rows.splits[i], rows.folds[i], rows.buckets[i]) == (row.split, row.fold, row.bucket)
        assert rows.is_outlier[i] == row.is_outlier
        np.testing.assert_allclose(rows.atoms[i].positions, row.positions)


def test_load_rows_split_filters(synthetic_db: Path) -> None:
    everything = load_rows(connect(synthetic_db))
    train = load_rows(synthetic_db, split="train")
    assert set(train.splits) == {"train"}
    assert len(train) == int((everything.splits == "train").sum())
    both = load_rows(str(synthetic_db), split=("train", "val"))
    assert len(both) == len(train) + int((everything.splits == "val").sum())
    assert set(both.folds) <= {0, 1, 2, 3, 4}
    assert set(load_rows(synthetic_db, split="test").folds) == {-1}
    with pytest.raises(ValueError, match="unknown split training"):
        load_rows(synthetic_db, split="training")
    with pytest.raises(ValueError, match="database not found"):
        load_rows(synthetic_db.parent / "nope.db")


def test_subset_by_mask_and_indices(synthetic_db: Path) -> None:
    rows = load_rows(synthetic_db)
    low = rows.subset(rows.buckets == "low")
    assert set(low.buckets) == {"low"} and len(low) == int((rows.buckets == "low").sum())
    picked = rows.subset([5, 2])
    assert picked.ids.tolist() == [5, 2]
    assert picked.atoms[1].get_potential_energy() == rows.energies[2]
    with pytest.raises(ValueError, match="mask of length"):
        rows.subset(np.ones(3, dtype=bool))


def test_summary_counts(synthetic_db: Path) -> None:
    rows = load_rows(synthetic_db)
    summary = summarize(rows)
    assert summary.n_rows == 44
    assert (summary.n_groups, summary.n_multi_groups, summary.largest_group) == (40, 3, 3)
    assert sum(summary.bucket_sizes.values()) == 44
    assert sum(summary.split_sizes.values()) == 44 and "new" not in summary.split_sizes
    assert summary.energy_min == pytest.approx(rows.energies.min())
    text = format_summary(summary, connect(synthetic_db).metadata)
    assert re.search(r"^duplicate groups +40$", text, re.M)
    assert re.search(r"^groups with 2\+ members +3 \(largest 3\)$", text, re.M)
    assert re.search(r"^split scheme +group$", text, re.M)
    with pytest.raises(ValueError, match="no isomer rows"):
        summarize(rows.subset(np.zeros(44, dtype=bool)))
