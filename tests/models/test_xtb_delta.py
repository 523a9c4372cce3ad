"""The xtb-delta model: tblite's GFN1 baseline (or a clear error), its cache, the Δ KRR with
the baseline forces as zero-force targets, exact forces, files and the calculator."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.emt import EMT

from ase_au20.models import load_model
from ase_au20.models.xtb_delta import cache as cache_module
from ase_au20.models.xtb_delta.baseline import BaselineError, XtbSettings, xtb_energy_forces
from ase_au20.models.xtb_delta.cache import BaselineCache, geometry_key
from ase_au20.models.xtb_delta.model import XtbDeltaModel
from ase_au20.structures import au20_ground_state


def test_gfn1_of_the_td_pyramid_and_a_clear_error_when_the_scf_fails() -> None:
    pytest.importorskip("tblite")
    energy, forces = xtb_energy_forces(au20_ground_state(), XtbSettings())
    assert -2200 < energy < -2100 and forces.shape == (20, 3)
    assert 0.5 < np.linalg.norm(forces, axis=1).mean() < 5  # GFN1 pushes atoms outward here
    rattled = au20_ground_state()
    rattled.rattle(0.3, seed=1)
    with pytest.raises(BaselineError, match="GFN1-xTB failed: SCF not converged in 3"):
        xtb_energy_forces(rattled, XtbSettings(max_iterations=3))


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="only GFN1-xTB"):
        XtbSettings(method="GFN2-xTB")
    with pytest.raises(ValueError, match="max_iterations"):
        XtbSettings(max_iterations=0)
    assert XtbSettings.from_dict(XtbSettings().to_dict()) == XtbSettings()


def _fake_gfn1(atoms: Atoms, settings: XtbSettings) -> tuple[float, np.ndarray]:
    """A stand-in baseline with forces at the EMT minima: EMT of the cluster stretched 2 %."""
    stretched = Atoms(atoms.numbers, positions=1.02 * atoms.positions)
    stretched.calc = EMT()
    return float(stretched.get_potential_energy()) - 5.0, 1.02 * stretched.get_forces()


@pytest.fixture
def fake_gfn1(monkeypatch):
    """Replace tblite by ``_fake_gfn1`` and count its calls."""
    calls = []

    def fake(atoms, settings):
        calls.append(1)
        return _fake_gfn1(atoms, settings)

    monkeypatch.setattr(cache_module, "xtb_energy_forces", fake)
    return calls


def test_cache_computes_each_geometry_once(fake_gfn1, tmp_path) -> None:
    cache = BaselineCache(tmp_path)
    structures = [au20_ground_state() for _ in range(3)]
    structures[1].positions[0, 0] += 0.1
    first = cache.compute(structures, XtbSettings(), workers=1, progress=False)
    assert len(fake_gfn1) == 2  # 0 and 2 are the same geometry: one key, one SCF
    again = cache.compute(structures, XtbSettings(), workers=1, progress=False)
    assert len(fake_gfn1) == 2
    np.testing.assert_array_equal(first[0], again[0])
    assert geometry_key(structures[0], XtbSettings()) != geometry_key(
        structures[0], XtbSettings(electronic_temperature=500.0)
    )


def test_a_failure_keeps_what_was_computed_before_it(monkeypatch, tmp_path) -> None:
    structures = [au20_ground_state() for _ in range(3)]
    for k, atoms in enumerate(structures):
        atoms.positions[0, 0] += 0.05 * k

    def fails_on_the_second(atoms, settings):
        if atoms.positions[0, 0] == structures[1].positions[0, 0]:
            raise BaselineError("GFN1-xTB failed: SCF not converged in 250 cycles")
        return _fake_gfn1(atoms, settings)

    monkeypatch.setattr(cache_module, "xtb_energy_forces", fails_on_the_second)
    cache = BaselineCache(tmp_path)
    with pytest.raises(BaselineError, match="structure 1: GFN1-xTB failed"):
        cache.compute(structures, XtbSettings(), workers=1, progress=False)
    assert cache.get(geometry_key(structures[0], XtbSettings())) is not None
    assert cache.get(geometry_key(structures[2], XtbSettings())) is None


@pytest.fixture
def tiny_delta(fake_gfn1, synthetic_db, tiny_delta_search, tmp_path):
    """A tiny Δ model on the synthetic db with the fake baseline (one process)."""
    from ase_au20.models.xtb_delta.training import train_xtb_delta

    cache = BaselineCache(tmp_path / "cache")
    return train_xtb_delta(
        synthetic_db, tmp_path / "delta", tiny_delta_search, cache=cache, workers=1, progress=False
    )


def test_forces_are_the_exact_gradient_of_the_total(tiny_delta) -> None:
    model = load_model(tiny_delta.directory)
    atoms = au20_ground_state()
    atoms.positions += np.random.default_rng(4).normal(0, 0.05, atoms.positions.shape)
    forces = model.predict([atoms], forces=True)["forces"][0]
    for a, x in ((0, 0), (7, 2), (13, 1)):
        energies = []
        for sign in (1, -1):
            moved = atoms.copy()
            moved.positions[a, x] += sign * 1e-4
            energies.append(model.predict([moved])["energy"][0])
        assert forces[a, x] == pytest.approx(-(energies[0] - energies[1]) / 2e-4, abs=2e-4)
    out = model.predict([atoms])
    assert out["energies"][0].sum() == pytest.approx(out["energy"][0])
    assert out["energy_std"][0] > 0


def test_zero_force_term_cancels_the_baseline_forces_at_the_minima(
    tiny_delta, fake_gfn1, synthetic_db, tiny_delta_search, tmp_path
) -> None:
    from dataclasses import replace

    from ase_au20.database import load_rows
    from ase_au20.models.xtb_delta.training import train_xtb_delta

    plain = train_xtb_delta(
        synthetic_db,
        tmp_path / "plain",
        replace(tiny_delta_search, zero_force_weight=(0.0,)),
        cache=BaselineCache(tmp_path / "cache"),
        workers=1,
        progress=False,
    )
    rows = load_rows(synthetic_db, ("train", "val"))
    baseline = np.mean([np.linalg.norm(_fake_gfn1(a, None)[1], axis=1).mean() for a in rows.atoms])

    def mean_force(result):
        # the cache holds the fake baseline of every row (a pool would run real tblite)
        model = XtbDeltaModel.load(result.directory, cache=BaselineCache(tmp_path / "cache"))
        forces = model.predict(rows.atoms, forces=True)["forces"]
        return float(np.linalg.norm(forces, axis=-1).mean())

    assert mean_force(tiny_delta) < 0.5 * mean_force(plain)
    assert mean_force(plain) == pytest.approx(baseline, rel=0.5)


def test_card_records_the_baseline_and_the_calculator_runs(tiny_delta) -> None:
    from ase_au20.calculators.xtb_delta import XtbDeltaAu20

    card = tiny_delta.model.card
    assert card["model_type"] == "xtb-delta"
    assert card["features"]["baseline"] == {"engine": "tblite", **XtbSettings().to_dict()}
    assert card["hyperparameters"]["zero_force_weight"] == 1.0
    atoms = au20_ground_state()
    atoms.calc = XtbDeltaAu20(model=tiny_delta.directory)
    energy = atoms.get_potential_energy()
    lo, hi = atoms.calc.get_property("energy_interval", atoms)
    assert lo < energy < hi
    assert "energy_std" in atoms.calc.implemented_properties


def test_failed_scf_is_a_value_error_through_the_calculator(tiny_delta, monkeypatch) -> None:
    from ase_au20.calculators.xtb_delta import XtbDeltaAu20

    def failing(atoms, settings):
        raise BaselineError("GFN1-xTB failed: SCF not converged in 250 cycles")

    monkeypatch.setattr(cache_module, "xtb_energy_forces", failing)
    atoms = au20_ground_state()
    atoms.calc = XtbDeltaAu20(model=tiny_delta.directory)
    with pytest.raises(ValueError, match="structure 0: GFN1-xTB failed: SCF not converged"):
        atoms.get_potential_energy()


def test_shipped_model_keeps_the_dft_ground_state_in_place(shipped_model, au20_data_dir) -> None:
    """Isomer 350 relaxed on the shipped model moves by < 0.05 Å RMSD (0.008 measured)."""
    pytest.importorskip("tblite")
    from ase.io import read
    from ase.optimize import BFGS
    from scipy.spatial.transform import Rotation

    from ase_au20.calculators.xtb_delta import XtbDeltaAu20

    atoms = read(au20_data_dir / "xyz" / "350.xyz")
    start = atoms.positions - atoms.positions.mean(axis=0)
    atoms.calc = XtbDeltaAu20(model=shipped_model("xtb-delta"))
    assert np.linalg.norm(atoms.get_forces(), axis=1).mean() < 0.2
    BFGS(atoms, logfile=None).run(fmax=0.05, steps=50)
    moved = atoms.positions - atoms.positions.mean(axis=0)
    rotation, _ = Rotation.align_vectors(start, moved)
    rmsd = np.sqrt(((rotation.apply(moved) - start) ** 2).sum(axis=1).mean())
    assert rmsd < 0.05


def test_a_script_without_a_main_guard_predicts_a_batch_in_its_own_process(
    shipped_model, tmp_path
) -> None:
    """A calculator never starts worker processes of its own (red-team finding 5): a batch
    of POOL_MIN structures used to start a Dask cluster, whose spawned workers re-ran the
    unguarded script and failed ("Nanny failed to start")."""
    import subprocess
    import sys

    shipped_model("xtb-delta")
    script = tmp_path / "plain.py"
    script.write_text(
        "from ase_au20 import XtbDeltaAu20\n"
        "from ase_au20.structures import au20_ground_state\n"
        "from ase_au20.models.xtb_delta.cache import POOL_MIN\n"
        "batch = [au20_ground_state() for _ in range(POOL_MIN)]\n"
        "for k, atoms in enumerate(batch):\n"
        "    atoms.rattle(0.02, seed=k)\n"
        "print(len(XtbDeltaAu20().predict(batch)['energy']))\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-1] == str(cache_module.POOL_MIN)
    assert "distributed" not in done.stderr
