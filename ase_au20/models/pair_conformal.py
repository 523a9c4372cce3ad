"""Calibrated intervals for energy differences E(a) − E(b), the numbers chemists compare.

The errors of two predictions are correlated (a model that is 0.3 eV too low for one
isomer is often too low for its neighbour), so adding two absolute half-widths is too
wide. The difference is calibrated on itself instead: over every ordered pair (a, b) of
the calib rows, the signed pair error e = (Ê_a − Ê_b) − (E_a − E_b) = r_a − r_b. Its
absolute quantiles give split-conformal half-widths; its distribution (symmetric by
construction) gives ``p_lower``, the probability that a is really lower than b given the
predicted difference. With a model spread s the errors are first divided by the pair's
scale sqrt(s_a² + s_b²) + c (c: the calib median of that root, so that pairs the model is
sure of get narrow intervals without any pair getting a zero one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

LEVELS = tuple(round(x, 3) for x in np.arange(0.5, 0.991, 0.01))  # interval confidences
N_CDF = 201  # points of the stored pair-error distribution
SCALE_FLOOR = 1e-3  # eV: the pair scale's offset c where the spread is zero on calib


@dataclass
class PairCalibrator:
    """Absolute pair-error quantiles per confidence level and the pair-error distribution."""

    quantiles: dict[str, float]  # confidence (as "0.9") -> half-width (eV, or in scales)
    cdf_errors: np.ndarray  # pair errors (eV, or in scales) at probabilities ``cdf_levels``
    cdf_levels: np.ndarray
    n_calib: int
    normalised: bool = False  # errors divided by the pair scale (see ``scale``)
    offset: float = 0.0  # eV, c of the pair scale

    @classmethod
    def fit(
        cls, pred: np.ndarray, true: np.ndarray, spread: np.ndarray | None = None
    ) -> PairCalibrator:
        """From calib predictions, labels and (when the model has one) its spread;
        ValueError with fewer than 3 rows."""
        residual = np.asarray(pred, dtype=float) - np.asarray(true, dtype=float)
        n = len(residual)
        if n < 3:
            raise ValueError(f"pair calibration needs at least 3 calib rows, got {n}")
        off_diagonal = ~np.eye(n, dtype=bool)
        errors = (residual[:, None] - residual[None, :])[off_diagonal]
        offset = 0.0
        if spread is not None:
            s = np.asarray(spread, dtype=float)
            root = np.sqrt(s[:, None] ** 2 + s[None, :] ** 2)[off_diagonal]
            offset = max(float(np.median(root)), SCALE_FLOOR)
            errors = errors / (root + offset)
        absolute = np.sort(np.abs(errors))
        m = len(absolute)
        quantiles = {}
        for level in LEVELS:
            # split-conformal rank over the n calib isomers (the pairs are not independent)
            rank = min(int(np.ceil((n + 1) * level / n * m)), m) - 1
            quantiles[f"{level:g}"] = float(absolute[rank])
        cdf_levels = np.linspace(0.0, 1.0, N_CDF)
        return cls(
            quantiles, np.quantile(errors, cdf_levels), cdf_levels, n, spread is not None, offset
        )

    def scale(self, spread_a: np.ndarray | None, spread_b: np.ndarray | None) -> np.ndarray:
        """The pair scale sqrt(s_a² + s_b²) + c of a normalised calibration (1 otherwise)."""
        if not self.normalised:
            return np.asarray(1.0)
        if spread_a is None or spread_b is None:
            raise ValueError("this pair calibration is normalised: it needs the model's spread")
        return np.sqrt(np.asarray(spread_a) ** 2 + np.asarray(spread_b) ** 2) + self.offset

    def half_width(self, confidence: float, scale: np.ndarray | float = 1.0) -> np.ndarray:
        """Half-width (eV) of the interval of E(a) − E(b) at ``confidence`` (``scale``: the
        pair's, for a normalised calibration)."""
        key = f"{round(float(confidence), 3):g}"
        if key not in self.quantiles:
            raise ValueError(
                f"pair intervals are calibrated at {LEVELS[0]:g}…{LEVELS[-1]:g} in steps of "
                f"0.01, not {confidence}"
            )
        return self.quantiles[key] * np.asarray(scale, dtype=float)

    def p_lower(self, delta: np.ndarray, widen: np.ndarray | float = 1.0) -> np.ndarray:
        """P(E_a < E_b | predicted E_a − E_b = ``delta``): the share of pair errors above
        ``delta`` (``widen``: the pair scale times any out-of-domain growth ≥ 1, which moves
        the probability towards 0.5)."""
        scaled = np.asarray(delta, dtype=float) / np.asarray(widen, dtype=float)
        return 1.0 - np.interp(scaled, self.cdf_errors, self.cdf_levels, left=0.0, right=1.0)

    def differences(
        self,
        pairs: np.ndarray,
        energy: np.ndarray,
        score: np.ndarray,
        in_domain: np.ndarray,
        spread: np.ndarray | None,
        same: np.ndarray,
        confidence: float,
    ) -> dict[str, np.ndarray]:
        """E_i − E_j of each pair (m, 2) of predictions with its interval at ``confidence``,
        scaled by the pair's spread and widened by the larger domain score squared outside
        the domain, and ``p_lower``; a geometry paired with itself (``same``) has the exact
        difference 0, interval (0, 0) and ``p_lower`` 0.5."""
        i, j = pairs[:, 0], pairs[:, 1]
        delta = np.where(same, 0.0, energy[i] - energy[j])
        scale = self.scale(*((spread[i], spread[j]) if spread is not None else (None, None)))
        widen = scale * np.maximum(np.maximum(score[i], score[j]), 1.0) ** 2
        half = np.where(same, 0.0, self.half_width(confidence) * widen)
        return {
            "pairs": pairs,
            "delta": delta,
            "interval": np.stack([delta - half, delta + half], axis=1),
            "p_lower": np.where(same, 0.5, self.p_lower(delta, widen)),
            "in_domain": in_domain[i] & in_domain[j],
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON form for the model card."""
        return {
            "quantiles": self.quantiles,
            "cdf_errors": self.cdf_errors.tolist(),
            "cdf_levels": self.cdf_levels.tolist(),
            "n_calib": self.n_calib,
            "normalised": self.normalised,
            "offset": self.offset,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PairCalibrator:
        """Inverse of ``to_dict``; ValueError for a malformed entry."""
        try:
            out = cls(
                {str(k): float(v) for k, v in data["quantiles"].items()},
                np.asarray(data["cdf_errors"], dtype=float),
                np.asarray(data["cdf_levels"], dtype=float),
                int(data["n_calib"]),
                bool(data.get("normalised", False)),
                float(data.get("offset", 0.0)),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"malformed pair_conformal entry in the card ({err!r})") from None
        if out.cdf_errors.shape != out.cdf_levels.shape or np.any(np.diff(out.cdf_errors) < 0):
            raise ValueError("malformed pair_conformal entry in the card (cdf not sorted)")
        return out
