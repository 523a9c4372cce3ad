"""MD workflow: NVE conserves energy with EMT, Langevin thermalises, runs are reproducible."""

from __future__ import annotations

import numpy as np
import pytest
from ase.calculators.emt import EMT
from ase.io import read, write
from click.testing import CliRunner

from ase_au20.cli.dynamics import md_cmd
from ase_au20.structures import au20_ground_state
from ase_au20.workflows.md import energy_drift, run_md, run_md_files
from ase_au20.workflows.results import read_results


def test_nve_energy_drift_small_and_initial_temperature():
    result = run_md(au20_ground_state(), EMT(), "nve", temperature=300, steps=200, timestep=1.0)
    assert result.temperature[0] == pytest.approx(300, rel=0.05)  # minus removed rotation
    assert np.ptp(result.potential) > 0.1  # atoms really moved
    assert result.drift["max_deviation_meV_per_atom"] < 0.05
    assert abs(result.drift["slope_meV_per_atom_per_ps"]) < 0.5
    momentum = result.atoms.get_momenta().sum(axis=0)
    np.testing.assert_allclose(momentum, 0, atol=1e-8)


def test_md_reproducible_with_seed():
    a = run_md(au20_ground_state(), EMT(), "langevin", steps=20, seed=3)
    b = run_md(au20_ground_state(), EMT(), "langevin", steps=20, seed=3)
    c = run_md(au20_ground_state(), EMT(), "langevin", steps=20, seed=4)
    np.testing.assert_array_equal(a.potential, b.potential)
    assert not np.allclose(a.potential, c.potential)
    assert a.drift == {}


def test_langevin_holds_temperature():
    result = run_md(
        au20_ground_state(),
        EMT(),
        "langevin",
        temperature=600,
        steps=600,
        timestep=5.0,
        friction=0.05,
        seed=0,
        interval=5,
    )
    second_half = result.temperature[len(result.temperature) // 2 :]
    assert second_half.mean() == pytest.approx(600, rel=0.25)


def test_energy_drift_of_a_known_line():
    t = np.linspace(0, 1000, 11)  # fs
    total = 2e-3 * 20 * t / 1000  # 2 meV/atom/ps on 20 atoms
    drift = energy_drift(t, total, 20)
    assert drift["slope_meV_per_atom_per_ps"] == pytest.approx(2.0)
    assert drift["max_deviation_meV_per_atom"] == pytest.approx(2.0)


def test_run_md_files(tmp_path):
    result, files = run_md_files(
        au20_ground_state(),
        EMT(),
        tmp_path,
        name="td",
        ensemble="nve",
        steps=30,
        timestep=1.0,
        interval=3,
    )
    arrays, attrs = read_results(files["h5"])
    assert len(arrays["series/time"]) == 11
    np.testing.assert_allclose(arrays["series/total_energy"], result.total)
    assert arrays["series/total_energy"].shape == arrays["series/temperature"].shape
    assert attrs["parameters"]["timestep"] == 1.0
    assert "drift/max_deviation_meV_per_atom" in arrays
    assert len(read(files["traj"], index=":")) == 11
    assert files["png"].stat().st_size > 10_000


def test_md_rejects_bad_arguments():
    with pytest.raises(ValueError, match="unknown ensemble"):
        run_md(au20_ground_state(), EMT(), "npt")
    with pytest.raises(ValueError, match="timestep > 0"):
        run_md(au20_ground_state(), EMT(), timestep=0)


def test_cli_md_reports_drift(tmp_path):
    write(tmp_path / "td.xyz", au20_ground_state())
    res = CliRunner().invoke(
        md_cmd,
        [
            str(tmp_path / "td.xyz"),
            "--calc",
            "emt",
            "--steps",
            "20",
            "--timestep",
            "1",
            "--out",
            str(tmp_path / "md"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "drift slope" in res.output and "meV/atom/ps" in res.output


def test_cli_md_without_a_file_runs_the_built_in_td(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(md_cmd, ["--calc", "emt", "--steps", "5"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "md-au20-td"  # the default --out: verb and input
    assert (out / "au20-td-md.h5").is_file() and "5 steps of 2.0 fs" in res.output


def test_md_records_trust_per_step(tmp_path, shipped_model):
    from ase.io import Trajectory

    from ase_au20.calculators.krr import KRRAu20
    from ase_au20.workflows.md import run_md_files
    from ase_au20.workflows.results import read_results

    result, files = run_md_files(
        au20_ground_state(), KRRAu20(shipped_model("krr")), tmp_path, steps=4, temperature=300
    )
    arrays, _ = read_results(files["h5"])
    assert arrays["series/in_domain"].tolist() == [1.0] * 5
    assert np.all(arrays["series/energy_uncertainty"] > 0)
    assert np.all(np.isfinite(arrays["series/energy_std"]))
    with Trajectory(files["traj"]) as frames:
        assert len(frames) == 5 and all(f.info["in_domain"] is True for f in frames)
    assert result.trust.first_outside is None


def test_md_checks_every_kth_record_against_the_reference(tmp_path) -> None:
    """`md --check-every K --reference dftb` (issue 39, item 3): the error beside the
    interval in the HDF5, and the reference's own MD checks to zero error."""
    import h5py
    from cli_helpers import run_cli

    for calc, steps in (("emt", 20), ("dftb", 10)):
        out = tmp_path / calc
        args = ["md", "--calc", calc, "--steps", str(steps), "--reference", "dftb"]
        text = run_cli(*args, "--check-every", "5", "--out", str(out))
        assert "against dftb" in text
        with h5py.File(out / "au20-td-md.h5") as h5:
            check = {key: h5[f"check/{key}"][()] for key in h5["check"]}
            assert h5["check/error"].attrs["units"] == "eV"
        assert check["record"].tolist() == list(range(0, steps + 1, 5))
        np.testing.assert_allclose(
            check["error"], check["model_energy"] - check["reference_energy"]
        )
        if calc == "dftb":  # the reference against itself: exact, covered by a zero interval
            assert np.abs(check["error"]).max() < 1e-9 and check["force_mae"].max() < 1e-9
            assert check["covered"].all()
        else:  # EMT is another surface altogether
            assert np.abs(check["error"]).min() > 100
