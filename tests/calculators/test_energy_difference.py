"""Relative energies (issue 18, item 3): E(a) − E(b) calibrated on itself, with p_lower."""

from __future__ import annotations

import numpy as np
import pytest

from ase_au20.database import load_rows
from ase_au20.models.pair_conformal import PairCalibrator
from ase_au20.structures import au20_ground_state


def test_pair_calibration_is_narrower_than_two_half_widths_when_errors_correlate() -> None:
    rng = np.random.default_rng(0)
    true = rng.normal(0.0, 3.0, 200)
    shared = rng.normal(0.0, 1.0, 200)  # a common error for half the rows
    pred = true + np.where(np.arange(200) < 100, 0.8, -0.8) + 0.1 * shared
    pairs = PairCalibrator.fit(pred, true)
    single = np.quantile(np.abs(pred - true), 0.9)
    assert pairs.half_width(0.9) < 2 * single
    # symmetric errors: equal predictions are a coin flip, a big lead is certain
    assert pairs.p_lower(np.array([0.0]))[0] == pytest.approx(0.5, abs=0.02)
    assert pairs.p_lower(np.array([-5.0]))[0] == 1.0 and pairs.p_lower(np.array([5.0]))[0] == 0.0
    again = PairCalibrator.from_dict(pairs.to_dict())
    assert again.half_width(0.9) == pairs.half_width(0.9)
    # with a spread, pairs the model is surer of get narrower intervals
    spread = np.where(np.arange(200) % 2 == 0, 0.1, 1.0)
    scaled = PairCalibrator.fit(pred, true, spread)
    assert scaled.normalised and scaled.offset > 0
    sure = scaled.half_width(0.9, scaled.scale(0.1, 0.1))
    unsure = scaled.half_width(0.9, scaled.scale(1.0, 1.0))
    assert sure < unsure
    with pytest.raises(ValueError, match="needs the model's spread"):
        scaled.scale(None, None)
    with pytest.raises(ValueError, match="calibrated at"):
        pairs.half_width(0.995)
    with pytest.raises(ValueError, match="at least 3"):
        PairCalibrator.fit(np.zeros(2), np.zeros(2))


def test_energy_difference_of_the_calculator(make_calc, rattled_au20) -> None:
    calc = make_calc()
    a, b = au20_ground_state(), rattled_au20
    out = calc.energy_difference(a, b)
    e_a = calc.predict([a])["energy"][0]
    e_b = calc.predict([b])["energy"][0]
    assert out["delta"] == pytest.approx(e_a - e_b, abs=1e-4)  # float32 batches
    lo, hi = out["interval"]
    assert lo < out["delta"] < hi
    pair = calc.pair_calibrator
    props = ("domain_score", "energy_std") if calc.model.has_spread else ("domain_score",)
    both = calc.predict([a, b], props)
    scale = pair.scale(*both["energy_std"]) if pair.normalised else 1.0
    half = pair.half_width(calc.confidence, scale)
    assert hi - lo == pytest.approx(2 * half * max(1.0, both["domain_score"].max()) ** 2)
    assert 0.0 <= out["p_lower"] <= 1.0
    swapped = calc.energy_difference(b, a)
    assert swapped["p_lower"] == pytest.approx(1.0 - out["p_lower"], abs=0.02)
    many = calc.energy_differences([a, b, a])
    assert many["pairs"].tolist() == [[0, 1], [0, 2], [1, 2]]
    assert many["delta"][1] == 0.0
    # a geometry against itself (or its copy) is exactly 0, with no interval to speak of
    assert many["interval"][1].tolist() == [0.0, 0.0] and many["p_lower"][1] == 0.5
    assert many["interval"][0, 1] - many["interval"][0, 0] == pytest.approx(hi - lo)
    itself = calc.energy_difference(a, a.copy())
    assert itself["interval"] == (0.0, 0.0) and itself["p_lower"] == 0.5
    with pytest.raises(ValueError, match="pair indices"):
        calc.energy_differences([a, b], [(0, 2)])


@pytest.mark.data
def test_shipped_pair_intervals_cover_test_pairs(shipped_model, real_db) -> None:
    from ase_au20.calculators.krr import KRRAu20

    calc = KRRAu20(shipped_model("krr"))
    test = load_rows(real_db, "test")
    out = calc.energy_differences(test.atoms)
    i, j = out["pairs"].T
    actual = test.energies[i] - test.energies[j]
    inside = (out["interval"][:, 0] <= actual) & (actual <= out["interval"][:, 1])
    assert 0.87 <= inside.mean() <= 0.99
    single = calc.predict(test.atoms, ("energy_uncertainty",))["energy_uncertainty"]
    summed = single[i] + single[j]
    assert np.mean(out["interval"][:, 1] - out["interval"][:, 0]) < 2 * np.mean(summed)
