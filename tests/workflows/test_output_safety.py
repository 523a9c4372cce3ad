"""Outputs a person can trust (issue 19, item 6): whole folders, no silent overwrite, ASE-
readable structures with their energy, ASE's FILE@INDEX, full-precision CSV, one unit."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from ase.calculators.emt import EMT
from ase.io import read, write
from click.testing import CliRunner

from ase_au20.cli import main
from ase_au20.database import load_rows
from ase_au20.structures import au20_ground_state
from ase_au20.workflows import sensitivity_report
from ase_au20.workflows.inputs import read_cluster
from ase_au20.workflows.output_folder import staged_output

SENSITIVITY = [
    "sensitivity",
    "--calc",
    "emt",
    "--sigmas",
    "0.02,0.05",
    "--ks",
    "1,2",
    "--repeats",
    "3",
]


def test_non_empty_out_needs_overwrite_and_is_replaced_whole(tmp_path: Path) -> None:
    out = tmp_path / "sens"
    runner = CliRunner()
    first = runner.invoke(main, [*SENSITIVITY, "--out", str(out)])
    assert first.exit_code == 0, first.output
    (out / "mine.txt").write_text("a file of the user's")
    again = runner.invoke(main, [*SENSITIVITY, "--out", str(out)])
    assert again.exit_code == 1 and "pass --overwrite" in again.output
    assert (out / "mine.txt").is_file()
    replaced = runner.invoke(main, [*SENSITIVITY, "--seed", "1", "--out", str(out), "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert not (out / "mine.txt").exists() and (out / "sensitivity.h5").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["sens"]  # no stage or old copy left


def test_interrupted_run_keeps_the_old_output(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "sens"
    runner = CliRunner()
    assert runner.invoke(main, [*SENSITIVITY, "--out", str(out)]).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sensitivity_report, "write_vmd_script", interrupted)  # after the PNGs
    result = runner.invoke(main, [*SENSITIVITY, "--seed", "3", "--out", str(out), "--overwrite"])
    assert result.exit_code == 130
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # what the interrupted run had written (its PNGs) waits beside, not in place of, --out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sens", "sens.interrupted"]
    assert any(p.suffix == ".png" for p in (tmp_path / "sens.interrupted").iterdir())
    assert f"{out}.interrupted" in result.output


def test_staged_output_refuses_a_file_and_publishes_into_a_new_folder(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is a file"), staged_output(tmp_path / "file"):
        pass
    with staged_output(tmp_path / "new" / "deep") as stage:
        (stage / "a.txt").write_text("a")
    assert (tmp_path / "new" / "deep" / "a.txt").read_text() == "a"


def test_structure_outputs_carry_their_energy_for_ase(tmp_path: Path) -> None:
    out = tmp_path / "relax"
    result = CliRunner().invoke(main, ["relax", "--calc", "emt", "--out", str(out)])
    assert result.exit_code == 0, result.output
    relaxed = read(out / "au20-td-relaxed.xyz")
    check = relaxed.copy()
    check.calc = EMT()
    assert relaxed.get_potential_energy() == pytest.approx(check.get_potential_energy())
    sens = tmp_path / "sens"
    assert CliRunner().invoke(main, [*SENSITIVITY, "--out", str(sens)]).exit_code == 0
    structure = read(sens / "structure.xyz")
    assert np.isfinite(structure.get_potential_energy()) and structure.info["predicted_by"] == "emt"


def test_site_csv_is_meV_at_full_precision(tmp_path: Path) -> None:
    out = tmp_path / "sens"
    assert CliRunner().invoke(main, [*SENSITIVITY, "--out", str(out)]).exit_code == 0
    with (out / "site_extremes.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert "K_meV" in rows[0] and "hessian_expected_de_meV" in rows[0] and "K" not in rows[0]
    assert max(len(r["K_meV"].replace("-", "").replace(".", "")) for r in rows) > 6
    assert "σ²·tr(H_ii)/2 (meV)" in (out / "site_hessian.tcl").read_text()


def test_file_arguments_follow_ase(tmp_path: Path, synthetic_db: Path) -> None:
    frames = [au20_ground_state() for _ in range(3)]
    for k, atoms in enumerate(frames):
        atoms.positions *= 1.0 + 0.01 * k
    write(tmp_path / "three.traj", frames)
    last = read_cluster(tmp_path / "three.traj")
    np.testing.assert_allclose(last.positions, frames[-1].positions)
    np.testing.assert_allclose(
        read_cluster(f"{tmp_path}/three.traj@0").positions, frames[0].positions
    )
    with pytest.raises(ValueError, match="selects 2 structures"):
        read_cluster(f"{tmp_path}/three.traj@0:2")
    rows = load_rows(synthetic_db)
    from_db = read_cluster(f"{synthetic_db}@cluster_id={int(rows.ids[4])}")
    np.testing.assert_allclose(from_db.positions, rows.atoms[4].positions)
    copy = tmp_path / "copy.db"
    shutil.copy(synthetic_db, copy)
    out = tmp_path / "emap"
    result = CliRunner().invoke(
        main,
        ["energy-map", f"{copy}@cluster_id={int(rows.ids[4])}", "--calc", "emt", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output


def test_analysis_csv_energies_are_full_precision(synthetic_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "an"
    result = CliRunner().invoke(
        main, ["analyze", "--db", str(synthetic_db), "--n-lowest", "3", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    rows = load_rows(synthetic_db)
    energy_of = dict(zip(rows.ids.tolist(), rows.energies.tolist(), strict=True))
    with (out / "lowest_isomers.csv").open() as handle:
        table = list(csv.DictReader(handle))
    for row in table:
        assert float(row["energy"]) == energy_of[int(row["cluster_id"])]  # exact round trip
    ground = read(out / "ground_state.xyz")
    assert ground.get_potential_energy() == energy_of[int(table[0]["cluster_id"])]
