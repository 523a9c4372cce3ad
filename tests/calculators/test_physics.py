"""Forces are the exact gradient of the energy; the energy has the symmetries of physics."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from scipy.spatial.transform import Rotation

H = 1e-3  # Å, central finite-difference step


def finite_difference_forces(calc, atoms: Atoms, h: float = H) -> np.ndarray:
    """−dE/dr by central differences, all displaced copies evaluated in one ``predict``."""
    displaced = []
    for index in range(len(atoms)):
        for axis in range(3):
            for sign in (1.0, -1.0):
                copy = atoms.copy()
                copy.positions[index, axis] += sign * h
                displaced.append(copy)
    energy = calc.predict(displaced)["energy"].reshape(len(atoms), 3, 2)
    return -(energy[..., 0] - energy[..., 1]) / (2 * h)


def _check_forces(calc, atoms: Atoms) -> None:
    """Analytic forces equal central differences within 1e-3 eV/Å and 1 % of their size."""
    analytic = calc.get_property("forces", atoms)
    numeric = finite_difference_forces(calc, atoms)
    scale = np.abs(analytic).max()
    assert scale > 1e-3, "forces too small for the check to mean anything"
    assert np.abs(analytic - numeric).max() <= min(1e-3, 0.01 * scale)


def test_forces_match_central_finite_differences(make_calc_fp64, rattled_au20) -> None:
    _check_forces(make_calc_fp64(), rattled_au20)


@pytest.mark.parametrize("kind", ["krr", "schnet"])
def test_shipped_forces_match_central_finite_differences(shipped_model, kind, rattled_au20):
    path = shipped_model(kind)
    if kind == "krr":
        from ase_au20.calculators.krr import KRRAu20

        calc = KRRAu20(model=path)
    else:
        from ase_au20.calculators.schnet import SchNetAu20

        calc = SchNetAu20(model=path, device="cpu", dtype="float64")
    _check_forces(calc, rattled_au20)


def test_rotation_translation_permutation(make_calc_fp64, rattled_au20) -> None:
    calc = make_calc_fp64()
    energy = calc.get_property("energy", rattled_au20)
    forces = calc.get_property("forces", rattled_au20)
    energies = calc.get_property("energies", rattled_au20)

    rotation = Rotation.from_euler("zyx", [37.0, -71.0, 123.0], degrees=True).as_matrix()
    moved = rattled_au20.copy()
    moved.positions = rattled_au20.positions @ rotation.T + [3.1, -2.4, 7.9]
    assert abs(calc.get_property("energy", moved) - energy) < 1e-6
    np.testing.assert_allclose(calc.get_property("forces", moved), forces @ rotation.T, atol=1e-6)

    order = np.random.default_rng(5).permutation(len(rattled_au20))
    permuted = rattled_au20[order]
    assert abs(calc.get_property("energy", permuted) - energy) < 1e-6
    np.testing.assert_allclose(calc.get_property("forces", permuted), forces[order], atol=1e-6)
    np.testing.assert_allclose(calc.get_property("energies", permuted), energies[order], atol=1e-8)
