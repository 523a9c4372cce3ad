"""The shipped models drive ASE's optimiser and MD: BFGS recovers the minimum, NVE conserves.

The ground state is the Td pyramid relaxed with the same calculator first, so every check
is about the model's own energy surface.
"""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms, units
from ase.build import minimize_rotation_and_translation
from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta
from ase.md.verlet import VelocityVerlet
from ase.optimize import BFGS

from ase_au20.structures import au20_ground_state


@pytest.fixture(scope="module", params=["krr", "schnet"])
def relaxed(request: pytest.FixtureRequest, shipped_model) -> tuple[object, Atoms]:
    """(shipped calculator in double precision, its relaxed Td ground state)."""
    path = shipped_model(request.param)
    if request.param == "krr":
        from ase_au20.calculators.krr import KRRAu20

        calc = KRRAu20(model=path)
    else:
        from ase_au20.calculators.schnet import SchNetAu20

        calc = SchNetAu20(model=path, device="cpu", dtype="float64")
    atoms = au20_ground_state()
    atoms.calc = calc
    assert BFGS(atoms, logfile=None).run(fmax=1e-3, steps=500)
    return calc, atoms


def _rmsd(a: Atoms, b: Atoms) -> float:
    """RMSD (Å) after optimal rotation and translation of ``a`` onto ``b`` (same atom order)."""
    a = a.copy()
    minimize_rotation_and_translation(b, a)
    return float(np.sqrt(((a.positions - b.positions) ** 2).sum(axis=1).mean()))


def test_bfgs_from_rattled_ground_state_returns_to_it(relaxed) -> None:
    calc, ground = relaxed
    atoms = ground.copy()
    atoms.positions += np.random.default_rng(11).normal(0.0, 0.05, atoms.positions.shape)
    assert _rmsd(atoms, ground) > 0.03
    atoms.calc = calc
    assert BFGS(atoms, logfile=None).run(fmax=0.05, steps=300)
    assert np.linalg.norm(atoms.get_forces(), axis=1).max() <= 0.05
    assert _rmsd(atoms, ground) <= 0.1


def test_nve_velocity_verlet_conserves_energy(relaxed) -> None:
    calc, ground = relaxed
    atoms = ground.copy()
    atoms.calc = calc
    thermalize_momenta(atoms, temperature_K=300, rng=np.random.default_rng(1))
    Stationary(atoms)
    ZeroRotation(atoms)
    totals = []
    dyn = VelocityVerlet(atoms, timestep=1.0 * units.fs)
    dyn.attach(lambda: totals.append(atoms.get_total_energy()), interval=1)
    dyn.run(250)  # 250 fs: inconsistent forces drift within tens of steps
    totals = np.array(totals)
    assert atoms.get_temperature() > 50, "the cluster must actually move"
    drift = np.abs(totals - totals[0]).max() / len(atoms)
    assert drift <= 1e-3, f"total-energy drift {drift * 1e3:.3f} meV/atom"
