"""Perturbations, Hessian blocks and the sensitivity workflow with EMT (fast, exact forces)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ase.calculators.emt import EMT
from scipy.spatial.transform import Rotation

from ase_au20.geometry.perturbation import (
    aligned_rmsd,
    random_perturbations,
    single_site_perturbations,
)
from ase_au20.structures import au20_ground_state
from ase_au20.workflows.results import read_results, write_results
from ase_au20.workflows.sensitivity import SensitivityConfig, relax, run_sensitivity
from ase_au20.workflows.sensitivity_report import to_results, write_outputs
from ase_au20.workflows.stiffness import hessian_diagonal_blocks

SMALL = {"sigmas": (0.01, 0.02, 0.04), "ks": (1, 4), "repeats": 10, "seed": 7}
PNGS = ("abs_de_by_sigma.png", "abs_de_vs_rmsd.png", "site_stiffness.png", "site_hessian_3d.png")


@pytest.fixture(scope="module")
def td_emt():
    """The Td pyramid relaxed tightly with EMT, and the calculator."""
    calc = EMT()
    atoms, converged = relax(au20_ground_state(), calc, fmax=1e-4)
    assert converged
    return atoms, calc


@pytest.fixture(scope="module")
def small_run(td_emt):
    atoms, calc = td_emt
    return run_sensitivity(atoms, calc, SensitivityConfig(**SMALL), progress=False)


class UncertainEMT(EMT):
    """EMT with a batched ``predict`` that reports a fixed uncertainty, like our calculators."""

    def predict(self, structures, properties=("energy",)):
        out = {p: [] for p in properties if p != "energy_uncertainty"}
        for atoms in structures:
            atoms = atoms.copy()
            atoms.calc = self
            for prop in out:
                out[prop].append(atoms.calc.get_property(prop, atoms))
        result = {p: np.asarray(v) for p, v in out.items()}
        result["energy_uncertainty"] = np.full(len(structures), 0.002)
        return result


class EnsembleEMT(UncertainEMT):
    """EMT whose four "members" disagree by a tilt along x, as an ensemble's would."""

    implemented_properties = [*EMT.implemented_properties, "member_energies"]
    confidence = 0.9
    TILTS = np.array([-1.0, 0.0, 1.0, 2.0]) * 0.02  # eV/Å of summed x displacement

    def predict(self, structures, properties=("energy",)):
        result = super().predict(structures, [p for p in properties if p != "member_energies"])
        if "member_energies" in properties:
            x = np.array([a.positions[:, 0].sum() for a in structures])
            result["member_energies"] = result["energy"][:, None] + x[:, None] * self.TILTS
        return result


def test_rmsd_ignores_rigid_motion_and_counts_displacements() -> None:
    base = au20_ground_state().positions
    moved = Rotation.from_euler("xyz", [20, -35, 60], degrees=True).apply(base) + [1.0, 2.0, 3.0]
    assert aligned_rmsd(base, moved) == pytest.approx(0.0, abs=1e-9)
    breathing = base * 1.01  # no rigid motion can undo a uniform expansion
    expected = np.sqrt(np.mean(np.sum((0.01 * base) ** 2, axis=1)))
    assert aligned_rmsd(base, breathing) == pytest.approx(expected, rel=1e-6)


def test_random_perturbations_move_only_the_chosen_atoms() -> None:
    atoms = au20_ground_state()
    pert = random_perturbations(atoms, [0.05], [3], 200, np.random.default_rng(0))
    assert len(pert) == 200 and pert.indices.shape == (200, 3)
    shifts = pert.positions - atoms.positions
    for n in range(len(pert)):
        moved = np.flatnonzero(np.abs(shifts[n]).sum(axis=1) > 0)
        np.testing.assert_array_equal(moved, pert.indices[n])
    chosen = np.concatenate([shifts[n, pert.indices[n]] for n in range(len(pert))])
    assert chosen.std() == pytest.approx(0.05, rel=0.08)
    assert np.all(pert.rmsd > 0)


def test_single_site_perturbations_and_errors() -> None:
    atoms = au20_ground_state()
    pert = single_site_perturbations(atoms, 0.01, 4, np.random.default_rng(0))
    assert len(pert) == 80
    np.testing.assert_array_equal(pert.indices[:, 0], np.repeat(np.arange(20), 4))
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="k must lie in 1..20"):
        random_perturbations(atoms, [0.01], [21], 1, rng)
    with pytest.raises(ValueError, match="positive"):
        random_perturbations(atoms, [0.0], [1], 1, rng)
    with pytest.raises(ValueError, match="repeats"):
        single_site_perturbations(atoms, 0.01, 0, rng)


def test_hessian_blocks_match_energy_second_differences(td_emt) -> None:
    atoms, calc = td_emt
    blocks = hessian_diagonal_blocks(calc, atoms, step=0.01)
    assert blocks.shape == (20, 3, 3)
    np.testing.assert_allclose(blocks, np.swapaxes(blocks, 1, 2))

    def energy(i: int, shift: np.ndarray) -> float:
        probe = atoms.copy()
        probe.positions[i] += shift
        probe.calc = calc
        return probe.get_potential_energy()

    h = 0.01
    for i in (0, 7):
        for a in range(3):
            e = np.eye(3)[a] * h
            second = (energy(i, e) - 2 * energy(i, 0 * e) + energy(i, -e)) / h**2
            assert blocks[i, a, a] == pytest.approx(second, rel=0.02)
    assert np.all(np.linalg.eigvalsh(blocks) > 0)  # a minimum: every site is held


def test_slope_is_two_at_a_minimum(small_run) -> None:
    assert small_run.slope == pytest.approx(2.0, abs=0.15)
    assert small_run.base_fmax < 1e-3


def test_abs_de_vanishes_with_sigma(td_emt, small_run) -> None:
    means = small_run.summary.groupby("sigma")["mean_abs_de"].mean().to_numpy()
    assert np.all(np.diff(means) > 0)
    atoms, calc = td_emt
    tiny = run_sensitivity(
        atoms,
        calc,
        SensitivityConfig(sigmas=(1e-4,), ks=(4,), repeats=5, site_repeats=1),
        progress=False,
    )
    assert tiny.global_k < 1e-6
    assert tiny.global_k < 1e-3 * small_run.global_k


def test_site_k_agrees_with_the_harmonic_expectation(small_run) -> None:
    sites = small_run.sites
    assert np.all(sites["n"] == SMALL["repeats"])
    ratio = sites["K"].mean() / sites["harmonic_expected_de"].mean()
    assert ratio == pytest.approx(1.0, abs=0.2)


def test_summary_table(small_run) -> None:
    summary = small_run.summary
    assert len(summary) == 3 * 2
    assert np.all(summary["n"] == SMALL["repeats"])
    first = small_run.samples[(small_run.samples.sigma == 0.01) & (small_run.samples.k == 4)]
    row = summary[(summary.sigma == 0.01) & (summary.k == 4)].iloc[0]
    assert row["mean_abs_de"] == pytest.approx(first["abs_delta_e"].mean())
    assert row["rmse_de"] == pytest.approx(np.sqrt((first["delta_e"] ** 2).mean()))
    assert np.isnan(row["share_resolvable"])  # EMT gives no uncertainty
    smallest = small_run.samples[small_run.samples.sigma == 0.01]
    assert small_run.global_k == pytest.approx(smallest["abs_delta_e"].mean())


def test_share_resolvable_compares_with_the_spread_of_the_difference(td_emt) -> None:
    atoms, _ = td_emt
    config = SensitivityConfig(sigmas=(0.01, 0.08), ks=(2, 8), repeats=20)
    run = run_sensitivity(atoms, EnsembleEMT(), config, progress=False)
    base_x = atoms.positions[:, 0].sum()
    moved_x = np.array([s.positions[:, 0].sum() for s in _perturbed(atoms, config)])
    spread = np.abs(moved_x - base_x) * EnsembleEMT.TILTS.std(ddof=1)
    expected = 1.6448536 * spread  # z of a two-sided 90 % interval
    np.testing.assert_allclose(run.samples["delta_uncertainty"], expected, rtol=1e-6, atol=1e-12)
    share = run.summary.set_index(["sigma", "k"])["share_resolvable"]
    for (sigma, k), value in share.items():
        part = run.samples[(run.samples.sigma == sigma) & (run.samples.k == k)]
        assert value == pytest.approx((part["abs_delta_e"] > part["delta_uncertainty"]).mean())
    assert 0.0 < share.mean() < 1.0  # the tilt resolves some differences, not all


def test_an_absolute_interval_does_not_make_differences_resolvable(td_emt) -> None:
    atoms, _ = td_emt
    config = SensitivityConfig(sigmas=(0.01, 0.08), ks=(2,), repeats=10)
    run = run_sensitivity(atoms, UncertainEMT(), config, progress=False)
    assert run.samples["uncertainty"].eq(0.002).all()
    assert run.summary["share_resolvable"].isna().all()  # no ensemble: no spread of ΔE


def _perturbed(atoms, config):
    """The random perturbations run_sensitivity draws first with ``config.seed``."""
    rng = np.random.default_rng(config.seed)
    base = atoms.copy()
    base.calc = None
    return random_perturbations(base, config.sigmas, config.ks, config.repeats, rng).structures(
        base
    )


def test_outputs_schema_and_reproducibility(td_emt, small_run, tmp_path: Path) -> None:
    atoms, calc = td_emt
    paths = write_outputs(small_run, tmp_path / "a", {"seed": 7}, {"calculator": "EMT"})
    for name in (
        *PNGS,
        "sensitivity.h5",
        "site_hessian.pdb",
        "site_hessian.tcl",
        "site_extremes.csv",
    ):
        assert (tmp_path / "a" / name).stat().st_size > 0, name
    assert paths["hdf5"] == tmp_path / "a" / "sensitivity.h5"
    arrays, attrs = read_results(paths["hdf5"])
    n = len(SMALL["sigmas"]) * len(SMALL["ks"]) * SMALL["repeats"]
    for name in (
        "sigma",
        "k",
        "repeat",
        "rmsd",
        "energy_base",
        "energy",
        "delta_e",
        "abs_delta_e",
        "uncertainty",
        "delta_uncertainty",
    ):
        assert arrays[f"samples/{name}"].shape == (n,), name
    assert arrays["samples/indices"].shape == (n, 4)
    assert arrays["sites/hessian_blocks"].shape == (20, 3, 3)
    np.testing.assert_allclose(
        arrays["samples/abs_delta_e"],
        np.abs(arrays["samples/energy"] - arrays["samples/energy_base"]),
    )
    assert attrs["parameters"] == {"seed": 7} and attrs["model_card"] == {"calculator": "EMT"}

    again = run_sensitivity(atoms, calc, SensitivityConfig(**SMALL), progress=False)
    write_results(tmp_path / "b.h5", to_results(again, {"seed": 7}, {"calculator": "EMT"}))
    other = run_sensitivity(atoms, calc, SensitivityConfig(**{**SMALL, "seed": 8}), progress=False)
    write_results(tmp_path / "c.h5", to_results(other, {"seed": 8}, {"calculator": "EMT"}))
    same, _ = read_results(tmp_path / "b.h5")
    different, _ = read_results(tmp_path / "c.h5")
    assert same.keys() == arrays.keys()
    for key in arrays:
        np.testing.assert_array_equal(same[key], arrays[key], err_msg=key)
    assert not np.array_equal(different["samples/energy"], arrays["samples/energy"])


def test_sites_are_ranked_by_the_hessian_blocks(small_run) -> None:
    from ase_au20.workflows.sensitivity_report import extreme_sites

    table = extreme_sites(small_run)
    hessian = table["hessian_expected_de_meV"].to_numpy()
    assert np.all(np.diff(hessian) <= 0)  # stiffest first, exact: no Monte Carlo noise
    expected = 1e3 * small_run.sites["harmonic_expected_de"].max()
    assert hessian[0] == pytest.approx(expected)
