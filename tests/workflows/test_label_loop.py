"""The select → label → db add → train loop closes (issue 19, item 2), with EMT as the oracle."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import read, write
from cli_helpers import TINY_KRR, run_cli

from ase_au20.database import connect, load_rows
from ase_au20.database.add import add_to_database
from ase_au20.structures import au20_ground_state
from ase_au20.workflows.label import label_structures


def test_loop_runs_twice_with_emt_as_the_oracle(synthetic_db: Path, tmp_path: Path) -> None:
    db = tmp_path / "au20.db"
    shutil.copy(synthetic_db, db)
    n_start = len(load_rows(db))
    labelled_so_far: set[int] = set()
    for round_ in range(2):
        work = tmp_path / f"round{round_}"
        run_cli(
            "search",
            "--calc",
            "emt",
            "--runs",
            "1",
            "--steps",
            "4",
            "--seed",
            str(round_),
            "--db",
            str(db),
            "--out",
            str(work / "search"),
            "--scheduler",
            "none",
        )
        run_cli(
            "select",
            "--db",
            str(db),
            "--calcs",
            "emt",
            "--n",
            "2",
            "--energy-window",
            "-1",
            "--out",
            str(work / "select"),
        )
        selected = sorted((work / "select").glob("select_*.xyz"))
        assert len(selected) == 2
        row_ids = {int(read(f).info["row_id"]) for f in selected}
        assert all(np.isfinite(read(f).get_potential_energy()) for f in selected)
        assert not row_ids & labelled_so_far  # never offered again once labelled
        labelled_so_far |= row_ids
        output = run_cli(
            "label", str(work / "select"), "--calc", "emt", "--out", str(work / "labels")
        )
        assert "labelled 2 structure(s)" in output
        for path in sorted((work / "labels").glob("*.xyz")):
            label = read(path)
            check = label.copy()
            check.calc = EMT()
            assert label.get_potential_energy() == pytest.approx(check.get_potential_energy())
            assert np.abs(label.get_forces()).max() < 0.06 and label.info["labelled_by"] == "emt"
        output = run_cli("db", "add", str(work / "labels"), "--db", str(db))
        assert "added 2 rows" in output
        rows = load_rows(db)
        assert len(rows) == n_start + 2 * (round_ + 1)
        assert len(set(rows.ids.tolist())) == len(rows)
        assert set(rows.splits) <= {"train", "val", "calib", "test"}
        run_cli("train", "krr", "--db", str(db), "--out", str(work / "krr"), *TINY_KRR)
        card = json.loads((work / "krr" / "card.json").read_text())
        trained_on = set(card["training_ids"])
        assert trained_on == set(rows.ids[np.isin(rows.splits, ("train", "val"))].tolist())
    again = run_cli("db", "add", str(tmp_path / "round1" / "labels"), "--db", str(db))
    assert "added 0 rows" in again and again.count("matches isomer") == 2


def test_db_add_reads_extxyz_traj_and_database_rows(synthetic_db: Path, tmp_path: Path) -> None:
    db = tmp_path / "au20.db"
    shutil.copy(synthetic_db, db)
    reference = load_rows(db).energies.mean()
    frames = []
    for k in range(4):
        atoms = au20_ground_state()
        atoms.rattle(0.05, seed=k)
        atoms.positions *= 1.0 + 0.02 * k
        atoms.calc = SinglePointCalculator(atoms, energy=reference + k, forces=np.zeros((20, 3)))
        frames.append(atoms)
    write(tmp_path / "one.extxyz", frames[0])
    write(tmp_path / "many.traj", frames[1:3])
    other = tmp_path / "other.db"
    connect(other).write(frames[3], cluster_id=777)
    old_search_row = frames[0].copy()  # how older versions stored a search prediction
    old_search_row.calc = SinglePointCalculator(old_search_row, energy=reference)
    connect(other).write(old_search_row, source="search", predicted_energy=reference)
    report = add_to_database(
        [tmp_path / "one.extxyz", f"{tmp_path}/many.traj@:", f"{other}@cluster_id=777"], db
    )
    assert report.n_added == 4 and not report.bad_files
    refused = add_to_database([other], db)  # every row: the labelled one is now a match
    assert [b.reason for b in refused.bad_files] == ["a prediction row (pred_energy), not a label"]
    rows = load_rows(db)
    added = rows.subset(np.isin(rows.ids, report.added_ids))
    assert 777 in report.added_ids and min(report.added_ids) > load_rows(synthetic_db).ids.max()
    np.testing.assert_allclose(sorted(added.energies), sorted(reference + np.arange(4)))
    # the last frame by default, as ase.io.read: one more row from the trajectory is a match
    again = add_to_database([tmp_path / "many.traj"], db)
    assert again.n_added == 0 and [m.source for m in again.matches] == ["many.traj"]


def test_db_add_refuses_predictions_and_unlabelled_frames(synthetic_db: Path, tmp_path: Path):
    db = tmp_path / "au20.db"
    shutil.copy(synthetic_db, db)
    calc_free = au20_ground_state()
    write(tmp_path / "bare.extxyz", calc_free)
    relax_out = tmp_path / "relax"
    run_cli("relax", "--calc", "emt", "--out", str(relax_out))
    report = add_to_database([tmp_path / "bare.extxyz", relax_out / "au20-td-relaxed.xyz"], db)
    reasons = {b.source: b.reason for b in report.bad_files}
    assert report.n_added == 0
    assert "no energy label" in reasons["bare.extxyz"]
    assert "is a prediction of emt" in reasons["au20-td-relaxed.xyz"]


def test_label_refuses_a_model_as_the_oracle(tmp_path: Path, shipped_model) -> None:
    from ase_au20.calculators.krr import KRRAu20

    write(tmp_path / "td.xyz", au20_ground_state())
    with pytest.raises(ValueError, match="its energies are predictions"):
        label_structures(
            [tmp_path / "td.xyz"], KRRAu20(shipped_model("krr")), tmp_path / "o", "krr"
        )


def test_every_label_records_its_level_of_theory(tmp_path: Path) -> None:
    """The reference's labels keep `level` through `db add`; other labels take `--level`
    or the database's; `db info` names it (a label records its level of theory)."""
    from isomer_files import write_isomer_xyz

    from ase_au20 import DFTBAu20
    from ase_au20.database import build_database

    calc = DFTBAu20()
    folder = tmp_path / "dftb"
    folder.mkdir()
    for k in range(10):
        atoms = au20_ground_state()
        atoms.rattle(0.1, seed=200 + k)
        write_isomer_xyz(folder / f"{k}.xyz", atoms, calc.get_potential_energy(atoms))
    db = tmp_path / "au20.db"
    build_database(folder, db)
    assert {row.level for row in connect(db).select()} == {"dftb1-auorg-1-1"}
    assert re.search(r"level of theory +dftb1-auorg-1-1", run_cli("db", "info", str(db)))
    new = [au20_ground_state() for _ in range(2)]
    for k, atoms in enumerate(new):
        atoms.rattle(0.12, seed=300 + k)
    write(tmp_path / "new.extxyz", new)
    run_cli("label", f"{tmp_path}/new.extxyz@0", "--calc", "dftb", "--single-point",
            "--out", str(tmp_path / "labels"))  # fmt: skip
    run_cli("db", "add", str(tmp_path / "labels"), "--db", str(db))
    other = new[1].copy()
    other.calc = SinglePointCalculator(other, energy=calc.get_potential_energy(new[1]) + 0.3)
    write(tmp_path / "mine.extxyz", other)
    text = run_cli("db", "add", str(tmp_path / "mine.extxyz"), "--db", str(db), "--level", "mine")
    assert "labels at level mine join a database at level dftb1-auorg-1-1" in text
    levels = sorted(row.level for row in connect(db).select())
    assert levels.count("dftb1-auorg-1-1") == 11 and levels.count("mine") == 1
