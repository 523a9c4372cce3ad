"""Split-conformal energy intervals: global, Mondrian by predicted-ΔE bucket, or by family.

Fitted on a calibration split that the model never trained on. Scores are absolute
residuals |E_true − E_pred|, or residuals divided by a model spread (normalised conformal:
an ensemble's standard deviation, or the KRR's predictive std; the interval then scales
with the spread). Normalised calibrators also keep absolute-residual tables (``absolute``)
for callers that have no spread. For each confidence level c of a
fixed grid the stored quantile is the k-th smallest score with k = ceil((n+1)·c): the
finite-sample-corrected split-conformal quantile, which guarantees coverage ≥ c for
exchangeable data. Where k > n the level cannot be guaranteed and is stored as null
(an infinite half-width).

Mondrian: the calibration rows are grouped by the bucket of their *predicted* ΔE
(E_pred − energy_reference against the db's bucket_edges; the true bucket is unknown at
prediction time) and quantiles are taken per bucket. A bucket whose sample is too small
for a level falls back to the global quantile at that level (listed under ``fallback``).

Mondrian by family: calibration rows that say how they were drawn (the calib isomers,
the corpus's rattled, MD, relaxation, active and model-minima frames) also get quantiles
per family. The family of a new structure is what the caller asks about (a workflow knows
whether it runs MD or relaxes), so each family's interval covers at its level: the pooled
one over-covers the easy families and under-covers the hard ones.

Asking for a confidence that is not on the grid uses the nearest grid level above it
(conservative); a confidence above the largest grid level is an error.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

DEFAULT_LEVELS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99)
BUCKETS = ("low", "mid", "high")


def conformal_quantile(scores: np.ndarray, confidence: float) -> float | None:
    """The ceil((n+1)c)-th smallest score, or None when that exceeds n (level unattainable)."""
    scores = np.sort(np.asarray(scores, dtype=float))
    k = math.ceil((len(scores) + 1) * confidence - 1e-12)
    if k > len(scores) or len(scores) == 0:
        return None
    return float(scores[max(k, 1) - 1])


def bucket_of(delta_e: np.ndarray, bucket_edges: Sequence[float]) -> np.ndarray:
    """Bucket names low (< q25), mid, high (> q75) of ΔE values."""
    delta_e = np.asarray(delta_e, dtype=float)
    lo, hi = float(bucket_edges[0]), float(bucket_edges[1])
    return np.where(delta_e < lo, "low", np.where(delta_e > hi, "high", "mid"))


def _key(level: float) -> str:
    """JSON key of a confidence level."""
    return f"{level:g}"


class ConformalCalibrator:
    """Stores conformal quantiles for a grid of confidence levels; see module docstring."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    @classmethod
    def fit(
        cls,
        pred_energy: np.ndarray,
        true_energy: np.ndarray,
        energy_reference: float,
        bucket_edges: Sequence[float],
        spread: np.ndarray | None = None,
        levels: Sequence[float] = DEFAULT_LEVELS,
        spread_offset: float = 0.0,
        families: np.ndarray | None = None,
    ) -> ConformalCalibrator:
        """Quantiles of calibration scores, globally, per predicted-ΔE bucket and (given
        ``families``, one name per row) per family of structures.

        Normalised scores divide by ``spread + spread_offset`` (eV): the offset keeps the
        interval from collapsing where the members of a committee happen to agree.
        """
        pred = np.asarray(pred_energy, dtype=float)
        true = np.asarray(true_energy, dtype=float)
        if pred.shape != true.shape or pred.ndim != 1 or len(pred) == 0:
            raise ValueError(f"pred_energy {pred.shape} and true_energy {true.shape} must match")
        if not (np.all(np.isfinite(pred)) and np.all(np.isfinite(true))):
            raise ValueError("calibration energies must be finite")
        if any(not 0.0 < c < 1.0 for c in levels):
            raise ValueError(f"confidence levels must lie in (0, 1): {list(levels)}")
        residuals = np.abs(true - pred)
        buckets = bucket_of(pred - energy_reference, bucket_edges)
        if families is not None:
            families = np.asarray(families, dtype=str)
            if families.shape != pred.shape:
                raise ValueError(f"families {families.shape} must name every row {pred.shape}")
        levels = sorted(float(c) for c in levels)
        data: dict[str, Any] = {
            "method": "split-conformal, absolute residual"
            + (" / model spread" if spread is not None else ""),
            "normalised": spread is not None,
            "levels": levels,
            "n_calib": int(len(pred)),
            "energy_reference": float(energy_reference),
            "bucket_edges": [float(e) for e in bucket_edges],
        }
        if spread is None:
            data.update(_tables(residuals, buckets, levels, families))
        else:
            if not (math.isfinite(spread_offset) and spread_offset >= 0):
                raise ValueError(f"spread_offset must be finite and >= 0, got {spread_offset}")
            data["spread_offset"] = float(spread_offset)
            scale = _check_spread(np.asarray(spread, dtype=float) + spread_offset, len(pred))
            data.update(_tables(residuals / scale, buckets, levels, families))
            data["absolute"] = _tables(residuals, buckets, levels, families)
        return cls(data)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict for the model card's ``conformal`` entry."""
        return self._data

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ConformalCalibrator:
        """Rebuild from a card's ``conformal`` entry; malformed entries are a ValueError."""
        try:
            levels = [float(c) for c in d["levels"]]
            for c in levels:
                _ = d["global"][_key(c)]
                for name in BUCKETS:
                    _ = d["mondrian"][name]["quantiles"][_key(c)]
            for c in levels if "absolute" in d else ():
                _ = d["absolute"]["global"][_key(c)]
                for name in BUCKETS:
                    _ = d["absolute"]["mondrian"][name]["quantiles"][_key(c)]
            float(d["energy_reference"])
            if len(d["bucket_edges"]) != 2:
                raise ValueError("bucket_edges must have two entries")
            bool(d["normalised"])
            offset = float(d.get("spread_offset", 0.0))
            if not (math.isfinite(offset) and offset >= 0):
                raise ValueError(f"spread_offset {offset} must be finite and >= 0")
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"malformed conformal entry in model card: {err!r}") from None
        tables = [("", d), *([("absolute ", d["absolute"])] if "absolute" in d else [])]
        for label, table in tables:
            _check_quantiles(f"{label}global", [table["global"][_key(c)] for c in levels])
            for name in BUCKETS:
                quantiles = table["mondrian"][name]["quantiles"]
                _check_quantiles(f"{label}{name} bucket", [quantiles[_key(c)] for c in levels])
            for name, group in table.get("families", {}).items():
                try:
                    quantiles = [group["quantiles"][_key(c)] for c in levels]
                except (KeyError, TypeError) as err:
                    raise ValueError(f"malformed conformal entry in model card: {err!r}") from None
                _check_quantiles(f"{label}{name} family", quantiles)
        return cls(d)

    @property
    def families(self) -> tuple[str, ...]:
        """The families of structures with quantiles of their own (empty: none)."""
        return tuple(self._data.get("families", {}))

    @property
    def normalised(self) -> bool:
        """Whether scores were divided by an ensemble spread."""
        return bool(self._data["normalised"])

    def level_for(self, confidence: float) -> float:
        """The smallest grid level ≥ confidence."""
        levels = self._data["levels"]
        above = [c for c in levels if c >= confidence - 1e-12]
        if not 0.0 < confidence < 1.0 or not above:
            raise ValueError(f"confidence {confidence} outside (0, {max(levels)}] of the grid")
        return min(above)

    def half_width(
        self,
        pred_energy: np.ndarray,
        confidence: float,
        mondrian: bool = True,
        spread: np.ndarray | None = None,
        family: str | None = None,
    ) -> np.ndarray:
        """Half-widths (eV) of the intervals pred ± w at ``confidence`` (inf if unattainable).

        A normalised calibrator scales its quantiles by ``spread``; without a spread it
        falls back to its absolute-residual tables. ``spread`` is ignored otherwise.
        ``family`` (one of ``families``) takes that family's quantiles instead of the
        per-bucket or global ones; a family the calibrator has none for takes those.
        """
        pred = np.atleast_1d(np.asarray(pred_energy, dtype=float))
        key = _key(self.level_for(confidence))
        tables = self._data
        scale = None
        if self.normalised and spread is not None:
            offset = float(self._data.get("spread_offset", 0.0))
            scale = _check_spread(np.asarray(spread, dtype=float) + offset, len(pred))
        elif self.normalised:
            if "absolute" not in self._data:
                raise ValueError("this calibrator is normalised by a model spread: pass spread")
            tables = self._data["absolute"]
        if family is not None and family in tables.get("families", {}):
            q = np.full(len(pred), _finite(tables["families"][family]["quantiles"][key]))
        elif mondrian:
            buckets = bucket_of(pred - self._data["energy_reference"], self._data["bucket_edges"])
            table = {n: tables["mondrian"][n]["quantiles"][key] for n in BUCKETS}
            q = np.array([_finite(table[b]) for b in buckets])
        else:
            q = np.full(len(pred), _finite(tables["global"][key]))
        return q if scale is None else q * scale


def _tables(
    scores: np.ndarray,
    buckets: np.ndarray,
    levels: list[float],
    families: np.ndarray | None = None,
) -> dict[str, Any]:
    """Global, per-bucket and (given ``families``) per-family quantile tables of ``scores``
    for every level."""
    global_q = {_key(c): conformal_quantile(scores, c) for c in levels}
    tables: dict[str, Any] = {
        "global": global_q,
        "mondrian": {name: _group(scores[buckets == name], levels, global_q) for name in BUCKETS},
    }
    if families is not None:
        tables["families"] = {
            name: _group(scores[families == name], levels, global_q)
            for name in sorted(set(families.tolist()))
        }
    return tables


def _group(member: np.ndarray, levels: list[float], global_q: dict[str, Any]) -> dict[str, Any]:
    """The quantile table of one group's scores; a level its sample is too small for takes
    the global quantile, but never below the group's own lower level (``fallback``)."""
    quantiles, fallback, below = {}, [], 0.0
    for c in levels:
        q = conformal_quantile(member, c)
        if q is None:
            q = _at_least(global_q[_key(c)], below)
            fallback.append(_key(c))
        quantiles[_key(c)] = q
        below = _finite(q)
    return {"n": int(len(member)), "quantiles": quantiles, "fallback": fallback}


def _check_quantiles(table: str, quantiles: list[Any]) -> None:
    """ValueError unless the quantiles of one table (in level order) are non-negative finite
    numbers or null (unattainable), non-decreasing with the level."""
    values = []
    for q in quantiles:
        if q is None:
            values.append(math.inf)
        elif isinstance(q, bool) or not isinstance(q, int | float) or not math.isfinite(q):
            raise ValueError(f"conformal {table} quantile {q!r} is not a finite number")
        elif q < 0:
            raise ValueError(f"conformal {table} quantile {q} is negative: intervals would invert")
        else:
            values.append(float(q))
    if any(b < a for a, b in zip(values, values[1:], strict=False)):
        raise ValueError(
            f"conformal {table} quantiles {quantiles} decrease with the confidence level"
        )


def _at_least(q: float | None, floor: float) -> float | None:
    """max(q, floor), keeping None (unattainable) as it is."""
    return None if q is None else max(float(q), floor)


def _finite(q: float | None) -> float:
    """None (unattainable level) as +inf."""
    return math.inf if q is None else float(q)


def _check_spread(spread: np.ndarray, n: int) -> np.ndarray:
    """Spread as a positive (n,) array."""
    spread = np.atleast_1d(np.asarray(spread, dtype=float))
    if spread.shape != (n,) or not np.all(np.isfinite(spread)) or np.any(spread <= 0):
        raise ValueError(f"spread must be {n} positive finite values")
    return spread
