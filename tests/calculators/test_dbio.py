"""Writing a prediction with its error bar to an ASE db and reading it back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase.db import connect

from ase_au20.calculators.dbio import read_prediction, write_prediction


def test_round_trip_keeps_prediction_forces_and_uncertainty(make_calc, rattled_au20, tmp_path):
    calc = make_calc(confidence=0.8)
    db = connect(tmp_path / "pred.db")
    row_id = write_prediction(db, rattled_au20, calc, tag="rattled")
    back = read_prediction(db, row_id)
    assert back.energy == pytest.approx(calc.get_property("energy", rattled_au20), abs=1e-10)
    np.testing.assert_allclose(back.forces, calc.get_property("forces", rattled_au20), atol=1e-10)
    assert back.energy_uncertainty == pytest.approx(
        calc.get_property("energy_uncertainty", rattled_au20)
    )
    np.testing.assert_allclose(
        back.energy_interval, calc.get_property("energy_interval", rattled_au20)
    )
    assert back.confidence == 0.8
    assert back.model == calc.card["model_type"]
    assert back.in_domain == calc.get_property("in_domain", rattled_au20)
    np.testing.assert_allclose(back.atoms.positions, rattled_au20.positions)
    row = db.get(row_id)
    assert row.tag == "rattled" and row.model_card_sha256 == calc.card["sha256"]
    # a prediction is never a label: the row has no energy, its keys are queryable
    assert row.get("energy") is None and back.atoms.calc is None
    assert db.get(pred_uncertainty=back.energy_uncertainty).id == row_id


def test_energy_only_row_and_ase_db_cli_shows_uncertainty(make_calc, rattled_au20, tmp_path):
    calc = make_calc()
    path = Path(tmp_path / "pred.db")
    row_id = write_prediction(connect(path), rattled_au20, calc, forces=False)
    back = read_prediction(connect(path), id=row_id)
    assert back.forces is None
    out = subprocess.run(
        [sys.executable, "-m", "ase", "db", str(path), "-c", "id,pred_energy,pred_uncertainty"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert f"{back.energy_uncertainty:.3f}" in out


def test_reading_a_foreign_row_is_a_clear_error(tmp_path, rattled_au20) -> None:
    db = connect(tmp_path / "other.db")
    row_id = db.write(rattled_au20)
    with pytest.raises(ValueError, match="no prediction keys"):
        read_prediction(db, row_id)


def test_a_row_written_with_the_calculator_attached_names_its_model(
    make_calc, rattled_au20, tmp_path
):
    calc = make_calc(confidence=0.8)
    atoms = rattled_au20.copy()
    atoms.calc = calc
    atoms.get_potential_energy()
    row = connect(tmp_path / "plain.db").get(id=connect(tmp_path / "plain.db").write(atoms))
    assert row.calculator_parameters["model"] == calc.card["model_type"]
    assert row.calculator_parameters["model_card_sha256"] == calc.card["sha256"]
    assert row.calculator_parameters["confidence"] == 0.8
