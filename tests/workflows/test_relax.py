"""Relaxation workflow: converges with EMT, writes consistent files, rejects bad input."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.emt import EMT
from ase.io import read, write
from click.testing import CliRunner

from ase_au20.calculators.base import OutsideDomainWarning
from ase_au20.cli.dynamics import relax_cmd
from ase_au20.structures import au20_ground_state
from ase_au20.workflows.relax import relax, run_relax
from ase_au20.workflows.results import read_results


def _rattled(seed: int = 1):
    atoms = au20_ground_state()
    atoms.rattle(0.15, seed=seed)
    return atoms


@pytest.mark.parametrize("optimizer", ["bfgs", "fire"])
def test_relax_converges_below_fmax(optimizer):
    result = relax(_rattled(), EMT(), fmax=0.05, optimizer=optimizer, steps=400)
    assert result.converged
    atoms = result.atoms
    atoms.calc = EMT()
    assert np.linalg.norm(atoms.get_forces(), axis=1).max() < 0.05
    assert result.fmax[-1] < 0.05 < result.fmax[0]
    assert result.energies[-1] < result.energies[0]
    assert len(result.energies) == result.steps + 1


def test_run_relax_files_agree(tmp_path):
    result, files = run_relax(_rattled(), EMT(), tmp_path, name="t", fmax=0.05, steps=400)
    arrays, attrs = read_results(files["h5"])
    np.testing.assert_allclose(arrays["history/energy"], result.energies)
    np.testing.assert_allclose(arrays["history/fmax"], result.fmax)
    assert attrs["parameters"]["optimizer"] == "bfgs"
    assert attrs["model_card"]["calculator"] == "EMT"
    relaxed = read(files["xyz"])
    np.testing.assert_allclose(relaxed.get_positions(), result.atoms.get_positions(), atol=1e-6)
    traj = read(files["traj"], index=":")
    assert len(traj) == result.steps + 1
    assert traj[-1].get_potential_energy() == pytest.approx(result.energies[-1])
    assert files["png"].stat().st_size > 10_000


def test_relax_rejects_bad_arguments():
    with pytest.raises(ValueError, match="unknown optimizer"):
        relax(_rattled(), EMT(), optimizer="lbfgsx")
    with pytest.raises(ValueError, match="fmax must be positive"):
        relax(_rattled(), EMT(), fmax=0)


def test_cli_relax(tmp_path):
    src = tmp_path / "guess.xyz"
    write(src, _rattled())
    out = tmp_path / "out"
    res = CliRunner().invoke(relax_cmd, [str(src), "--calc", "emt", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "converged   True" in res.output
    assert (out / "guess-relaxed.xyz").is_file() and (out / "guess-relax.h5").is_file()


def test_cli_relax_without_a_file_relaxes_the_built_in_td(tmp_path, monkeypatch):
    from ase_au20.workflows.results import read_results

    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(relax_cmd, ["--calc", "emt"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "relax-au20-td"  # the default --out: verb and input
    relaxed = read(out / "au20-td-relaxed.xyz")
    moved = np.abs(relaxed.positions - au20_ground_state().positions).max()
    assert len(relaxed) == 20 and moved > 0.01  # EMT's minimum is not the DFTB1 geometry
    assert relaxed.get_potential_energy() == pytest.approx(EMT_energy(relaxed))
    assert relaxed.info["predicted_by"] == "emt"
    _, attrs = read_results(out / "au20-td-relax.h5")
    assert attrs["parameters"]["input"] == "built-in Td ground state"


def EMT_energy(atoms):
    atoms = atoms.copy()
    atoms.calc = EMT()
    return atoms.get_potential_energy()


def test_cli_relax_clear_errors(tmp_path):
    runner = CliRunner()
    res = runner.invoke(relax_cmd, [str(tmp_path / "missing.xyz"), "--calc", "emt"])
    assert res.exit_code != 0 and "no such file" in res.output
    garbage = tmp_path / "garbage.xyz"
    garbage.write_text("twenty\nnot a structure\n")
    res = runner.invoke(relax_cmd, [str(garbage), "--calc", "emt"])
    assert res.exit_code != 0 and "cannot read a structure" in res.output
    squeezed = au20_ground_state()
    squeezed.positions[1] = squeezed.positions[0] + [0.5, 0, 0]
    write(tmp_path / "bad.xyz", squeezed)
    res = runner.invoke(relax_cmd, [str(tmp_path / "bad.xyz"), "--calc", "emt"])
    assert res.exit_code != 0 and "unphysical geometry" in res.output
    write(tmp_path / "cu.xyz", Atoms("Cu2", positions=[[0, 0, 0], [2.5, 0, 0]]))
    res = runner.invoke(relax_cmd, [str(tmp_path / "cu.xyz"), "--calc", "emt"])
    assert res.exit_code != 0 and "only Au atoms" in res.output


def _squeezed_ground_state() -> Atoms:
    """The ground state shrunk to a closest pair of 2.05 Å: outside the domain."""
    squeezed = au20_ground_state()
    squeezed.positions *= 2.05 / 2.62
    return squeezed


def test_the_command_line_shows_a_warning_on_its_own_line_above_the_progress_bar(
    tmp_path, shipped_model
):
    from ase_au20.cli import main

    squeezed = _squeezed_ground_state()
    write(tmp_path / "squeezed.xyz", squeezed)
    args = [str(tmp_path / "squeezed.xyz"), "--calc", str(shipped_model("krr")), "--steps", "3"]
    res = CliRunner().invoke(main, ["relax", *args, "--out", str(tmp_path / "r")])
    assert "in domain" in res.output, res.output  # the run's table (3 steps: not converged)
    lines = res.stderr.replace("\r", "\n").splitlines()
    warning = [line for line in lines if "OutsideDomainWarning" in line]
    assert len(warning) == 1, res.stderr
    assert warning[0].startswith("OutsideDomainWarning: the relaxation starts outside"), warning
    assert "relax.py:" not in res.stderr


def test_relax_records_trust_per_step(tmp_path, shipped_model):
    from ase.io import Trajectory

    from ase_au20.workflows.results import read_results

    squeezed = _squeezed_ground_state()
    write(tmp_path / "squeezed.xyz", squeezed)
    out = tmp_path / "r"
    args = [str(tmp_path / "squeezed.xyz"), "--calc", str(shipped_model("krr")), "--steps", "3"]
    with pytest.warns(OutsideDomainWarning, match="relaxation starts outside the model's domain"):
        res = CliRunner().invoke(relax_cmd, [*args, "--out", str(out)])
    assert "in domain" in res.output, res.output
    arrays, _ = read_results(out / "squeezed-relax.h5")
    n = len(arrays["history/energy"])
    for key in ("energy_uncertainty", "energy_std", "domain_score", "in_domain"):
        assert arrays[f"history/{key}"].shape == (n,)
    assert arrays["history/in_domain"][0] == 0 and arrays["history/domain_score"][0] > 1
    assert np.isfinite(arrays["history/energy_std"]).all()
    with Trajectory(out / "squeezed-relax.traj") as frames:
        assert len(frames) == n and frames[0].info["in_domain"] is False
        assert frames[0].info["energy_uncertainty"] == pytest.approx(
            arrays["history/energy_uncertainty"][0]
        )


def test_a_relaxation_outside_the_domain_warns_once_naming_the_step(shipped_model):
    import warnings

    from ase_au20.calculators.krr import KRRAu20

    calc = KRRAu20(shipped_model("krr"))
    squeezed = _squeezed_ground_state()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = relax(squeezed, calc, steps=2)
    messages = [str(w.message) for w in caught if w.category is OutsideDomainWarning]
    assert len(messages) == 1, messages  # the trust log's, not the calculator's as well
    assert messages[0].startswith("the relaxation starts outside the model's domain")
    assert result.trust.first_outside == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet = relax(squeezed, calc, steps=2, warn_outside=False)
    assert quiet.trust.series["in_domain"][0] == 0.0  # recorded all the same
    squeezed.calc = calc  # the calculator's own callers are still warned, once
    with pytest.warns(OutsideDomainWarning, match="structure outside the model's domain"):
        squeezed.get_potential_energy()


def test_the_trust_log_names_the_step_where_a_run_leaves_the_domain():
    from types import SimpleNamespace

    from ase_au20.workflows.any_calculator import TrustLog

    log, atoms = TrustLog("the MD run"), au20_ground_state()
    for step, inside in enumerate([True, True, False, False]):
        atoms.calc = SimpleNamespace(results={"in_domain": inside, "domain_score": 0.5 + step})
        if step == 2:
            with pytest.warns(OutsideDomainWarning) as caught:
                log.record(atoms, step)
            assert str(caught[0].message).startswith(
                "the MD run leaves the model's domain of applicability at step 2 (domain "
                "score 2.50)"
            )
        else:
            log.record(atoms, step)  # once only: step 3 is outside as well
    assert log.first_outside == 2 and log.series["in_domain"] == [1.0, 1.0, 0.0, 0.0]


OUTSIDE_FACTORY = """
from ase.calculators.emt import EMT


class OutsideEMT(EMT):
    implemented_properties = [*EMT.implemented_properties, "in_domain", "domain_score"]

    def calculate(self, *args, **kwargs):
        super().calculate(*args, **kwargs)
        self.results.update(in_domain=False, domain_score=1.5)


def make():
    return OutsideEMT()
"""


def test_relax_reports_the_domain_apart_from_convergence(tmp_path, monkeypatch):
    (tmp_path / "outside_calc.py").write_text(OUTSIDE_FACTORY)
    monkeypatch.syspath_prepend(str(tmp_path))
    args = ["--calc", "outside_calc:make", "--fmax", "0.1"]
    plain = CliRunner().invoke(relax_cmd, [*args, "--out", str(tmp_path / "a")])
    assert plain.exit_code == 0, plain.output
    assert "converged   True" in plain.output and "in domain   NO" in plain.output
    strict = CliRunner().invoke(relax_cmd, [*args, "--strict", "--out", str(tmp_path / "b")])
    assert strict.exit_code == 1 and "outside the model's domain" in strict.output
    assert (tmp_path / "b" / "au20-td-relax.h5").is_file()  # the outputs are still written


def test_relax_with_emt_records_no_verdict(tmp_path):
    result = relax(au20_ground_state(), EMT(), steps=2)
    assert result.in_domain is None
    assert np.isnan(result.trust.arrays()["domain_score"]).all()
