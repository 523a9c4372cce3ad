"""Calibrated error bars: on the held-out test split the interval covers as often as promised.

Uses the shipped models and the real data with the prototype's fixed (seed) split, whose
155 test isomers the models never saw in training or calibration. The allowed miss is two
standard errors of the coverage: the test's binomial noise (±0.03 on 155 isomers) and the
calibration draw's (coverage given n calibration rows is Beta-distributed about the level:
±0.04 for the SchNet's 91 calib rows, ±0.015 for a cross-conformal KRR's 744).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="module", params=["krr", "schnet"])
def shipped_calc(request: pytest.FixtureRequest, shipped_model):
    """A shipped calculator (float32 SchNet: the default users get)."""
    path = shipped_model(request.param)
    if request.param == "krr":
        from ase_au20.calculators.krr import KRRAu20

        return KRRAu20(model=path)
    from ase_au20.calculators.schnet import SchNetAu20

    return SchNetAu20(model=path, device="cpu")


@pytest.mark.data
@pytest.mark.parametrize("confidence", [0.8, 0.9])
def test_interval_coverage_on_test_split(shipped_calc, real_db: Path, confidence: float) -> None:
    """The default interval (Mondrian by predicted-ΔE bucket) at two confidence levels."""
    from ase_au20.database import load_rows

    test = load_rows(real_db, "test")
    assert len(test) >= 100
    shipped_calc.set(confidence=confidence)
    assert shipped_calc.mondrian
    out = shipped_calc.predict(test.atoms, properties=("energy", "energy_interval"))
    lo, hi = out["energy_interval"].T
    assert np.all(np.isfinite(lo)) and np.all(hi > lo)
    coverage = float(np.mean((test.energies >= lo) & (test.energies <= hi)))
    n_calib = shipped_calc.card["conformal"]["n_calib"]
    tolerance = 2 * np.sqrt(confidence * (1 - confidence) * (1 / len(test) + 1 / n_calib))
    assert abs(coverage - confidence) <= tolerance, (
        f"coverage {coverage:.3f} at confidence {confidence} (mean width "
        f"{np.mean(hi - lo):.3f} eV, n={len(test)}, allowed ±{tolerance:.3f})"
    )
