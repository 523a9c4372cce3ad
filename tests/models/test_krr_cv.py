"""Group-aware cross-validation of the KRR grid."""

from __future__ import annotations

import numpy as np

from ase_au20.database import load_rows
from ase_au20.models.krr.training import cross_validate, group_folds


def test_group_folds_drop_near_duplicates_of_held_out_rows() -> None:
    folds = np.array([0, 0, 1, 1, 2, 2, -1])
    groups = np.array([7, 8, 7, 9, 8, 10, 11])  # group 7 spans folds 0/1, group 8 folds 0/2
    split = group_folds(folds, groups)
    assert sorted(split) == [0, 1, 2]
    train, held = split[0]
    assert held.tolist() == [0, 1]
    assert train.tolist() == [3, 5]  # rows 2 (group 7) and 4 (group 8) are duplicates
    assert split[1][0].tolist() == [1, 4, 5]  # row 0 shares group 7; calib/test row 6 unused


def test_cross_validate_rows_cover_the_grid(synthetic_db, tiny_search) -> None:
    rows = load_rows(synthetic_db, ("train", "val"))
    table = cross_validate(rows, tiny_search, progress=False)
    assert len(table) == tiny_search.size() == 4
    assert {(r["zeta"], r["lambda"]) for r in table} == {(2, 1e-3), (2, 1e-5), (3, 1e-3), (3, 1e-5)}
    for r in table:
        assert 0 < r["cv_mae"] <= r["cv_rmse"]
        assert r["r_cut"] == 5.0 and r["kernel"] == "average"


def test_zero_force_grid_reports_held_out_forces_and_tolerance_picks_smooth_rows(
    synthetic_db,
) -> None:
    from ase_au20.models.krr.training import KRRSearch, best_row

    rows = load_rows(synthetic_db, ("train", "val"))
    search = KRRSearch(
        r_cut=(5.0,),
        n_max=(3,),
        l_max=(2,),
        sigma=(0.5,),
        zeta=(2, 3),
        lam=(1e-3,),
        n_sparse=60,
        zero_force_weight=(0.0, 1.0),
    )
    table = cross_validate(rows, search, progress=False)
    assert len(table) == search.size() == 3  # ζ=2 is dense: no μ axis
    sparse = {r["zero_force_weight"]: r for r in table if r["zeta"] == 3}
    assert sparse[1.0]["cv_mean_force"] < sparse[0.0]["cv_mean_force"]
    assert np.isnan([r for r in table if r["zeta"] == 2][0]["cv_mean_force"])
    tol = (sparse[1.0]["cv_mean_force"] + sparse[0.0]["cv_mean_force"]) / 2
    assert best_row(table, force_tolerance=tol) is sparse[1.0]
