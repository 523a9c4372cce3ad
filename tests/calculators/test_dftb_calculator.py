"""DFTBAu20 as users meet it: a calculator like the others, the oracle of `label`, the
reference of `evaluate`, a `--calc` choice of every verb."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.calculator import get_calculator_class
from ase.io import read, write
from cli_helpers import run_cli

from ase_au20 import DFTBAu20
from ase_au20.structures import au20_ground_state


@pytest.fixture(scope="module")
def calc() -> DFTBAu20:
    return DFTBAu20()


def rattled_td(seed: int = 0, sigma: float = 0.05) -> Atoms:
    atoms = au20_ground_state()
    atoms.rattle(sigma, seed=seed)
    return atoms


def test_the_reference_has_an_interval_of_width_zero_and_a_geometric_domain(calc):
    atoms = rattled_td()
    atoms.calc = calc
    energy = atoms.get_potential_energy()
    assert calc.results["energy_uncertainty"] == 0.0
    assert calc.results["energy_interval"].tolist() == [energy, energy]
    assert calc.results["in_domain"] is True
    assert calc.results["energies"].sum() == pytest.approx(energy, abs=1e-8)
    assert "energy_std" not in calc.implemented_properties  # no spread: it is exact
    assert calc.card["reference"]["level"] == "dftb1-auorg-1-1"
    assert "Fihey" in (DFTBAu20.__doc__ or "")


def test_the_free_energy_is_the_mermin_free_energy_below_the_band_energy(calc):
    dimer = Atoms("Au2", positions=[[0, 0, 0], [0, 0, 7.0]])  # an open shell
    dimer.calc = calc
    energy = dimer.get_potential_energy()
    free = dimer.get_potential_energy(force_consistent=True)
    assert energy - free > 1e-3


def test_any_cluster_size_is_computed_without_a_size_warning(calc, recwarn):
    dimer = Atoms("Au2", positions=[[0, 0, 0], [0, 0, 2.5]])
    dimer.calc = calc
    assert dimer.get_potential_energy() == pytest.approx(-152.474044, abs=1e-4)  # check set
    assert not [w for w in recwarn if "outside the training domain" in str(w.message)]


def test_a_batched_predict_equals_single_calls(calc):
    structures = [rattled_td(seed) for seed in range(3)]
    batch = calc.predict(structures, ["energy", "forces", "energy_uncertainty"])
    for k, atoms in enumerate(structures):
        atoms.calc = calc
        assert batch["energy"][k] == pytest.approx(atoms.get_potential_energy(), abs=1e-10)
        assert batch["forces"][k] == pytest.approx(atoms.get_forces(), abs=1e-10)
    assert (batch["energy_uncertainty"] == 0).all()


def test_the_ase_plugin_name_builds_it():
    calculator = get_calculator_class("dftb_au20")()
    atoms = rattled_td()
    atoms.calc = calculator
    assert type(calculator).__name__ == "DFTBAu20"
    assert np.isfinite(atoms.get_potential_energy())


def test_label_takes_the_reference_as_oracle_and_records_its_level(tmp_path: Path):
    write(tmp_path / "frames.extxyz", [rattled_td(0), rattled_td(1)])
    out = tmp_path / "labels"
    text = run_cli(
        "label", f"{tmp_path}/frames.extxyz@:", "--calc", "dftb", "--single-point",
        "--out", str(out),
    )  # fmt: skip
    assert "labelled 2 structure(s)" in text
    labelled = [read(p) for p in sorted(out.glob("*.xyz"))]
    assert [a.info["level"] for a in labelled] == ["dftb1-auorg-1-1"] * 2
    calc = DFTBAu20()
    for atoms, original in zip(labelled, [rattled_td(0), rattled_td(1)], strict=True):
        original.calc = calc
        assert atoms.get_potential_energy() == pytest.approx(original.get_potential_energy())
        assert atoms.get_forces() == pytest.approx(original.get_forces(), abs=1e-6)


def test_evaluate_scores_a_calculator_against_the_reference_per_family(tmp_path: Path):
    write(tmp_path / "near.extxyz", [rattled_td(s, 0.02) for s in range(3)])
    write(tmp_path / "far.extxyz", [rattled_td(s, 0.15) for s in range(2)])
    out = tmp_path / "ev"
    text = run_cli(
        "evaluate", "emt", f"{tmp_path}/near.extxyz@:", f"{tmp_path}/far.extxyz@:",
        "--reference", "dftb", "--out", str(out),
    )  # fmt: skip
    metrics = json.loads((out / "reference_metrics.json").read_text())
    assert metrics["reference"] == "dftb"
    near, far = (metrics["families"][f"{tmp_path}/{n}.extxyz@:"] for n in ("near", "far"))
    assert near["n"] == 3 and far["n"] == 2
    # EMT is another surface: its energies sit far from DFTB1's, which the table shows
    assert near["energy_mae"] > 100 and near["force_mae"] > 0.01
    assert "near.extxyz@:" in text and (out / "parity_reference.png").stat().st_size > 10_000


def test_evaluating_the_reference_against_itself_gives_zero_errors(tmp_path: Path):
    write(tmp_path / "some.extxyz", [rattled_td(s, 0.05) for s in range(2)])
    out = tmp_path / "ev"
    run_cli("evaluate", "dftb", f"{tmp_path}/some.extxyz@:", "--out", str(out), "--quiet")
    family = json.loads((out / "reference_metrics.json").read_text())["families"]
    (metrics,) = family.values()
    assert metrics["energy_max"] < 1e-9 and metrics["force_mae"] < 1e-9
    assert metrics["coverage"] == 1.0 and metrics["in_domain"] == 1.0


def test_relax_runs_with_calc_dftb(tmp_path: Path):
    out = tmp_path / "relax"
    text = run_cli("relax", "--calc", "dftb", "--fmax", "0.05", "--steps", "40", "--out", str(out))
    assert "dftb" in text.lower()
    assert any(out.iterdir())


def test_every_sensitivity_difference_of_the_reference_is_resolvable(calc):
    """The reference's ΔE carry no error, so each one is resolved (EMT's are NaN)."""
    from ase_au20.workflows.sensitivity import SensitivityConfig, run_sensitivity

    config = SensitivityConfig(sigmas=(0.01,), ks=(1, 4), repeats=4, site_repeats=1)
    run = run_sensitivity(au20_ground_state(), calc, config, progress=False)
    assert (run.samples["delta_uncertainty"] == 0).all()
    assert run.summary["share_resolvable"].tolist() == [1.0, 1.0]
    assert run.global_k > 0


def test_evaluate_takes_folders_and_database_selections_as_families(tmp_path: Path):
    from ase_au20.database import connect

    folder = tmp_path / "frames"
    folder.mkdir()
    for k in range(2):
        write(folder / f"{k}.xyz", rattled_td(k, 0.03))
    db = tmp_path / "rows.db"
    for k in range(3):
        connect(db).write(rattled_td(10 + k, 0.03), kind="warm" if k else "cold")
    out = tmp_path / "ev"
    run_cli(
        "evaluate", "dftb", str(folder), f"{db}@kind=warm", "--out", str(out), "--quiet"
    )  # fmt: skip
    families = json.loads((out / "reference_metrics.json").read_text())["families"]
    assert {name: m["n"] for name, m in families.items()} == {str(folder): 2, f"{db}@kind=warm": 2}
    assert all(m["energy_max"] < 1e-9 for m in families.values())
