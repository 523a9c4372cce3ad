"""Split-conformal calibration: finite-sample quantiles, coverage, Mondrian buckets, JSON."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from ase_au20.models.conformal import ConformalCalibrator, bucket_of, conformal_quantile

EDGES = [4.0, 7.0]


def test_quantile_is_finite_sample_corrected() -> None:
    scores = np.arange(1.0, 20.0)  # n = 19
    assert conformal_quantile(scores, 0.9) == 18.0  # k = ceil(20 * 0.9) = 18
    assert conformal_quantile(scores, 0.5) == 10.0  # k = ceil(10) = 10
    assert conformal_quantile(scores, 0.96) is None  # k = 20 > n: unattainable


def test_buckets_follow_predicted_delta_e() -> None:
    assert bucket_of(np.array([1.0, 4.0, 5.5, 7.0, 9.0]), EDGES).tolist() == [
        "low",
        "mid",
        "mid",
        "mid",
        "high",
    ]


def _synthetic(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Predictions spread over ΔE 0..11 eV with noise 0.1 / 0.3 / 0.9 eV by bucket."""
    pred_de = rng.uniform(0.0, 11.0, n)
    scale = np.select([pred_de < 4.0, pred_de <= 7.0], [0.1, 0.3], 0.9)
    true = pred_de + rng.normal(0.0, 1.0, n) * scale
    return pred_de, true, scale


@pytest.mark.parametrize("confidence", [0.8, 0.9])
def test_coverage_on_normal_residuals(confidence: float) -> None:
    rng = np.random.default_rng(0)
    pred, true, _ = _synthetic(rng, 3000)
    cal = ConformalCalibrator.fit(pred, true, 0.0, EDGES)
    pred_t, true_t, _ = _synthetic(rng, 30000)
    for mondrian in (False, True):
        w = cal.half_width(pred_t, confidence, mondrian=mondrian)
        covered = np.abs(true_t - pred_t) <= w
        assert abs(covered.mean() - confidence) < 0.015
    # Mondrian is conditionally valid: each bucket is covered, the global one is not
    buckets = bucket_of(pred_t, EDGES)
    w_global = cal.half_width(pred_t, confidence, mondrian=False)
    w_mond = cal.half_width(pred_t, confidence, mondrian=True)
    high = buckets == "high"
    assert (np.abs(true_t - pred_t)[high] <= w_global[high]).mean() < confidence - 0.1
    assert abs((np.abs(true_t - pred_t)[high] <= w_mond[high]).mean() - confidence) < 0.03
    assert w_mond[buckets == "low"].max() < w_global.min()


def test_normalised_scores_scale_with_spread() -> None:
    rng = np.random.default_rng(1)
    pred, true, scale = _synthetic(rng, 3000)
    cal = ConformalCalibrator.fit(pred, true, 0.0, EDGES, spread=scale)
    pred_t, true_t, scale_t = _synthetic(rng, 20000)
    w = cal.half_width(pred_t, 0.9, mondrian=False, spread=scale_t)
    assert abs((np.abs(true_t - pred_t) <= w).mean() - 0.9) < 0.015
    assert np.allclose(w / scale_t, w[0] / scale_t[0])
    absolute = ConformalCalibrator.fit(pred, true, 0.0, EDGES)
    assert np.array_equal(cal.half_width(pred_t, 0.9), absolute.half_width(pred_t, 0.9))
    old_card = {k: v for k, v in cal.to_dict().items() if k != "absolute"}
    with pytest.raises(ValueError, match="pass spread"):
        ConformalCalibrator.from_dict(old_card).half_width(pred_t, 0.9)


def test_level_between_grid_points_uses_next_level_up() -> None:
    rng = np.random.default_rng(2)
    pred, true, _ = _synthetic(rng, 500)
    cal = ConformalCalibrator.fit(pred, true, 0.0, EDGES)
    assert cal.level_for(0.87) == 0.9
    assert np.array_equal(cal.half_width(pred, 0.87), cal.half_width(pred, 0.9))
    with pytest.raises(ValueError, match="outside"):
        cal.half_width(pred, 0.995)


def test_small_bucket_falls_back_to_global_and_unattainable_is_infinite() -> None:
    pred = np.array([0.5, 1.0, *np.linspace(4.5, 6.5, 30)])  # only 2 rows in "low"
    true = pred + np.linspace(-0.5, 0.5, len(pred))
    cal = ConformalCalibrator.fit(pred, true, 0.0, EDGES)
    d = cal.to_dict()
    assert d["mondrian"]["low"]["n"] == 2
    assert "0.8" in d["mondrian"]["low"]["fallback"]
    # the global quantile, but never below the bucket's own lower level (intervals that
    # shrink with a higher confidence would be absurd)
    own = cal.half_width([0.7], 0.6)[0]
    assert cal.half_width([0.7], 0.8)[0] == max(own, cal.half_width([0.7], 0.8, mondrian=False)[0])
    assert own > cal.half_width([0.7], 0.8, mondrian=False)[0]  # this data takes the floor
    assert math.isinf(cal.half_width([5.0], 0.99, mondrian=False)[0])  # n=32: k=33 > n


def test_json_round_trip_and_malformed_dict() -> None:
    rng = np.random.default_rng(3)
    pred, true, _ = _synthetic(rng, 200)
    cal = ConformalCalibrator.fit(pred, true, -1.0, EDGES)
    again = ConformalCalibrator.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert np.array_equal(again.half_width(pred, 0.9), cal.half_width(pred, 0.9))
    broken = cal.to_dict() | {"global": {}}
    with pytest.raises(ValueError, match="malformed conformal entry"):
        ConformalCalibrator.from_dict(broken)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="must match"):
        ConformalCalibrator.fit(np.zeros(3), np.zeros(4), 0.0, EDGES)
    with pytest.raises(ValueError, match="finite"):
        ConformalCalibrator.fit(np.array([0.0, np.nan]), np.zeros(2), 0.0, EDGES)
    with pytest.raises(ValueError, match="positive finite"):
        ConformalCalibrator.fit(np.zeros(2), np.ones(2), 0.0, EDGES, spread=np.array([1.0, 0.0]))


def _two_families(rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
    """Predictions whose errors are five times larger on the rarer family (``minima``)."""
    families = rng.choice(["md", "minima"], n, p=[0.8, 0.2])
    pred = rng.normal(0.0, 1.0, n)
    true = pred + rng.normal(0.0, np.where(families == "minima", 1.0, 0.2))
    return pred, true, families


def test_each_family_covers_at_its_level_where_the_pooled_interval_does_not() -> None:
    rng = np.random.default_rng(5)
    pred, true, families = _two_families(rng, 5000)
    pooled_only = ConformalCalibrator.fit(pred, true, 0.0, EDGES)
    by_family = ConformalCalibrator.fit(pred, true, 0.0, EDGES, families=families)
    assert by_family.families == ("md", "minima") and pooled_only.families == ()
    pred_t, true_t, families_t = _two_families(rng, 20000)
    for name, pooled_far_off in (("md", lambda c: c > 0.95), ("minima", lambda c: c < 0.8)):
        mask = families_t == name
        error = np.abs(true_t - pred_t)[mask]
        own = by_family.half_width(pred_t[mask], 0.9, family=name)
        pooled = by_family.half_width(pred_t[mask], 0.9, mondrian=False)
        assert abs((error <= own).mean() - 0.9) < 0.025
        assert pooled_far_off((error <= pooled).mean())
    # a family the calibration did not see takes the pooled quantiles
    np.testing.assert_array_equal(
        by_family.half_width(pred_t, 0.9, mondrian=False, family="rattle"),
        by_family.half_width(pred_t, 0.9, mondrian=False),
    )


def test_family_tables_round_trip_and_are_checked() -> None:
    pred, true, families = _two_families(np.random.default_rng(6), 2000)
    cal = ConformalCalibrator.fit(pred, true, 0.0, EDGES, spread=np.ones(2000), families=families)
    again = ConformalCalibrator.from_dict(json.loads(json.dumps(cal.to_dict())))
    for name in ("md", "minima"):
        assert again.half_width(pred[:3], 0.9, spread=np.ones(3), family=name) == pytest.approx(
            cal.half_width(pred[:3], 0.9, spread=np.ones(3), family=name)
        )
    assert again.half_width(pred[:1], 0.9, family="minima") > again.half_width(
        pred[:1], 0.9, family="md"
    )  # the absolute tables keep the families too
    broken = json.loads(json.dumps(cal.to_dict()))
    broken["families"]["minima"]["quantiles"]["0.9"] = -1.0
    with pytest.raises(ValueError, match="minima family quantile -1.0 is negative"):
        ConformalCalibrator.from_dict(broken)
    with pytest.raises(ValueError, match="families .* must name every row"):
        ConformalCalibrator.fit(pred, true, 0.0, EDGES, families=families[:10])
