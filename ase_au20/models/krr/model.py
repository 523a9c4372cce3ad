"""SOAP kernel ridge regression with per-atom energies and exact forces.

Target: the energy per atom minus a reference e0 (the weighted training mean of E/N), so
that E(A) = N_A · (e0 + Σ_m α_m K(A, B_m)); with the average kernel the sum splits
exactly into per-atom contributions e_i = e0 + Σ_m α_m mean_{j∈B_m} (p̂_i·p̂_j)^ζ, which is
extensive and defined for clusters of any size. With the RBF kernel on pooled descriptors
the energy is split equally over the atoms (e_i = E/N): there is no natural local term.

Weights file (``weights.npz``, no pickle), by kernel:
  average, ζ = 2 : ``quadratic`` W = Σ_m α_m mean_j p̂_j p̂_jᵀ (F×F), e_i = e0 + p̂_iᵀ W p̂_i
  average, ζ ≠ 2 : ``environments`` (T×F float32, all training atoms) and ``env_coef``
                   (α_m / N_m per atom), e_i = e0 + Σ_t c_t (p̂_i·q_t)^ζ (computed in float64);
                   sparse variant: M farthest-point-sampled environments (float64),
                   their subset-of-regressors coefficients (same formula) and
                   ``spread_factor``, the Cholesky factor behind ``_energy_std``
  rbf            : ``pooled`` (M×F) training descriptors and ``alpha`` (M)
plus ``e0``. Forces are −dE/dr through the kernel, the normalisation and dscribe's
analytical SOAP derivatives.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from scipy.linalg import cho_factor, cho_solve, cholesky, solve_triangular

from ase_au20.models.card import file_sha256, open_model_card, write_card
from ase_au20.models.domain import Domain, with_domain
from ase_au20.models.krr.kernels import (
    KERNELS,
    average_gram,
    check_zeta,
    farthest_point_sample,
    pooled,
    rbf_gram,
    sparse_features,
    sparse_force_features,
)
from ase_au20.models.krr.soap import (
    SoapFeaturizer,
    SoapSettings,
    forces_from_gradient,
    normalised_jacobian,
)

WEIGHTS_NAME = "weights.npz"


def n_soap_features(settings: SoapSettings) -> int:
    """Per-atom SOAP length for one species: n_max(n_max+1)/2 · (l_max+1)."""
    return settings.n_max * (settings.n_max + 1) // 2 * (settings.l_max + 1)


def solve_weighted_ridge(
    gram: np.ndarray, target: np.ndarray, lam: float, weights: np.ndarray | None = None
) -> np.ndarray:
    """Coefficients of min Σ w_m (y_m − f_m)² + λ‖f‖²_K: (K + λ W⁻¹) α = y, by Cholesky."""
    if lam <= 0:
        raise ValueError(f"lambda must be positive, got {lam}")
    w = np.ones(len(target)) if weights is None else np.asarray(weights, dtype=float)
    if np.any(w <= 0):
        raise ValueError("sample weights must be positive")
    factor = cho_factor(gram + lam * np.diag(1.0 / w), lower=True)
    return cho_solve(factor, np.asarray(target, dtype=float))


def solve_sparse_ridge(
    phi: np.ndarray,
    kqq: np.ndarray,
    target: np.ndarray,
    lam: float,
    weights: np.ndarray | None = None,
    penalty: np.ndarray | None = None,
    penalty_rhs: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Subset of regressors: min Σ w (y − Φc)² + cᵀPc − 2cᵀb + λ cᵀK_qq c, i.e.
    (ΦᵀWΦ + P + λK_qq) c = ΦᵀWy + b, with an optional extra quadratic ``penalty`` P and its
    linear part ``penalty_rhs`` b (a penalty |Gc − t|² has P = GᵀG, b = Gᵀt).

    Returns the coefficients c and the lower Cholesky factor L of the left-hand side (which
    gives the predictive variance λ φᵀ(LLᵀ)⁻¹φ of a new structure).
    """
    if lam <= 0:
        raise ValueError(f"lambda must be positive, got {lam}")
    w = np.ones(len(target)) if weights is None else np.asarray(weights, dtype=float)
    if np.any(w <= 0):
        raise ValueError("sample weights must be positive")
    lhs = phi.T @ (w[:, None] * phi) + lam * kqq
    if penalty is not None:
        lhs += penalty
    lhs[np.diag_indices_from(lhs)] += 1e-10 * np.trace(lhs) / len(lhs)  # K_qq may be singular
    factor = cholesky(lhs, lower=True)
    rhs = phi.T @ (w * np.asarray(target, dtype=float))
    if penalty_rhs is not None:
        rhs = rhs + penalty_rhs
    coef = cho_solve((factor, True), rhs)
    return coef, factor


class KRRModel:
    """A fitted SOAP+KRR energy model; see the module docstring for the energy form."""

    domain: Domain | None = None  # the domain of applicability: set by load / attach_domain

    def __init__(
        self,
        settings: SoapSettings,
        hyperparameters: dict[str, Any],
        arrays: dict[str, np.ndarray],
        card: dict[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.hyperparameters = dict(hyperparameters)
        self.kernel = _check_hyperparameters(self.hyperparameters)
        self.arrays = _check_arrays(self.kernel, self.hyperparameters, arrays, settings)
        self.card: dict[str, Any] = dict(card or {})
        self._featurizer: SoapFeaturizer | None = None
        self._env64: np.ndarray | None = None
        self._factor64: np.ndarray | None = None
        self._threadpools: Any = None

    def __getstate__(self) -> dict[str, Any]:
        """Pickle without the thread-pool controller (ctypes handles), e.g. for workers."""
        return {**self.__dict__, "_threadpools": None}

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit(
        cls,
        units: Sequence[np.ndarray],
        energies: np.ndarray,
        settings: SoapSettings,
        kernel: str = "average",
        zeta: int = 2,
        gamma: float = 1.0,
        lam: float = 1e-4,
        sample_weight: np.ndarray | None = None,
        n_sparse: int = 0,
        zero_force_weight: float = 0.0,
        structures: Sequence[Atoms] | None = None,
        force_targets: Sequence[np.ndarray] | None = None,
    ) -> KRRModel:
        """Fit on normalised per-atom SOAP ``units`` (one (N, F) array per structure).

        ``n_sparse`` > 0 (average kernel, ζ ≠ 2): subset of regressors on that many
        farthest-point-sampled training environments instead of all of them.
        ``zero_force_weight`` μ > 0 (sparse only; needs the ``structures``): the training
        geometries are DFTB1 minima, so add μ Σ_s |dE_s/dr|² / N_s² to the loss (per-atom
        energy scale) — it keeps predicted forces at the minima near zero. ``force_targets``
        ((N, 3) per structure) replace that zero by the gradient the model should have there:
        a Δ model on a baseline with forces F_b wants dE_Δ/dr = F_b, so the sum is force-free.
        """
        energies = np.asarray(energies, dtype=float)
        if len(units) != len(energies) or len(units) == 0:
            raise ValueError(f"{len(units)} structures for {len(energies)} energies")
        sizes = np.array([len(u) for u in units], dtype=float)
        weights = np.ones(len(units)) if sample_weight is None else np.asarray(sample_weight)
        per_atom = energies / sizes
        e0 = float(np.average(per_atom, weights=weights))
        hyper: dict[str, Any] = {"kernel": kernel, "lambda": float(lam)}
        if kernel == "average" and n_sparse > 0 and check_zeta(zeta) != 2:
            hyper.update(zeta=int(zeta), n_sparse=int(n_sparse))
            envs = np.concatenate(units)
            sparse = envs[farthest_point_sample(envs, n_sparse)]
            hyper["n_sparse"] = len(sparse)
            penalty = penalty_rhs = None
            if zero_force_weight > 0:
                if structures is None or len(structures) != len(units):
                    raise ValueError("zero_force_weight needs the training structures")
                hyper["zero_force_weight"] = float(zero_force_weight)
                gtg, gtt = zero_force_terms(
                    SoapFeaturizer(settings), structures, sparse, zeta, force_targets
                )
                penalty, penalty_rhs = zero_force_weight * gtg, zero_force_weight * gtt
            coef, factor = solve_sparse_ridge(
                sparse_features(units, sparse, zeta),
                (sparse @ sparse.T) ** zeta,
                per_atom - e0,
                lam,
                weights,
                penalty,
                penalty_rhs,
            )
            arrays = {
                "e0": np.array(e0),
                "environments": sparse,
                "env_coef": coef,
                "spread_factor": factor.astype(np.float32),
            }
            return cls(settings, hyper, arrays)
        if zero_force_weight > 0:
            raise ValueError(
                "zero_force_weight needs the sparse average kernel (n_sparse > 0, ζ ≠ 2)"
            )
        if kernel == "average":
            hyper["zeta"] = check_zeta(zeta)
            gram = average_gram(units, zetas=[hyper["zeta"]])[hyper["zeta"]]
        elif kernel == "rbf":
            hyper["gamma"] = float(gamma)
            descriptors = pooled(units)
            gram = rbf_gram(descriptors, descriptors, gamma)
        else:
            raise ValueError(f"unknown kernel {kernel!r}: use {', '.join(KERNELS)}")
        alpha = solve_weighted_ridge(gram, per_atom - e0, lam, weights)
        arrays: dict[str, np.ndarray] = {"e0": np.array(e0)}
        if kernel == "rbf":
            arrays.update(pooled=descriptors, alpha=alpha)
        elif hyper["zeta"] == 2:
            arrays["quadratic"] = sum(
                (a / len(u)) * (u.T @ u) for a, u in zip(alpha, units, strict=True)
            )
        else:
            arrays["environments"] = np.concatenate(units).astype(np.float32)
            arrays["env_coef"] = np.concatenate(
                [np.full(len(u), a / len(u)) for a, u in zip(alpha, units, strict=True)]
            )
        return cls(settings, hyper, arrays)

    # --------------------------------------------------------------- prediction
    @property
    def has_spread(self) -> bool:
        """Sparse models store the Cholesky factor behind the predictive std."""
        return "spread_factor" in self.arrays

    @property
    def featurizer(self) -> SoapFeaturizer:
        """The SOAP featurizer (built on first use: dscribe import is slow)."""
        if self._featurizer is None:
            self._featurizer = SoapFeaturizer(self.settings)
        return self._featurizer

    def local_terms(
        self, unit: np.ndarray, gradient: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None, float | None]:
        """Per-atom energies e_i (N,), dE/dp̂_i (N, F) (None without ``gradient``) and, for
        a sparse model, the predictive std of the energy (eV; see ``_energy_std``)."""
        e0 = float(self.arrays["e0"])
        n = len(unit)
        if self.kernel == "rbf":
            gamma = self.hyperparameters["gamma"]
            diff = unit.mean(axis=0)[None, :] - self.arrays["pooled"]
            k = np.exp(-gamma * (diff**2).sum(axis=1)) * self.arrays["alpha"]
            energy = n * (e0 + k.sum())
            grad = -2.0 * gamma * (k @ diff)  # dE/dp̂_i = N · df/dp̄ · (1/N)
            return np.full(n, energy / n), np.tile(grad, (n, 1)), None
        zeta = self.hyperparameters["zeta"]
        if "quadratic" in self.arrays:
            wp = unit @ self.arrays["quadratic"]
            return e0 + (unit * wp).sum(axis=1), 2.0 * wp, None
        if self._env64 is None:
            self._env64 = self.arrays["environments"].astype(float)
        coef = self.arrays["env_coef"]
        below, kernel = _power_pair(unit @ self._env64.T, zeta)
        energies = e0 + kernel @ coef
        grad = (zeta * below * coef) @ self._env64 if gradient else None
        std = None
        if "spread_factor" in self.arrays:
            std = self._energy_std(kernel.mean(axis=0), n)
        return energies, grad, std

    def _energy_std(self, phi: np.ndarray, n_atoms: int) -> float:
        """Predictive std of the energy (eV) of a sparse model: N·sqrt(λ φᵀ(LLᵀ)⁻¹φ).

        φ_t = mean_i (p̂_i·q_t)^ζ; a kernel-space distance from the training data that
        normalises the conformal scores (the interval widens away from the data). The
        factor is checked finite once, at load (``_check_arrays``), not on every call.
        """
        if self._factor64 is None:
            self._factor64 = self.arrays["spread_factor"].astype(float)
        v = solve_triangular(self._factor64, phi, lower=True, check_finite=False)
        return float(n_atoms * np.sqrt(self.hyperparameters["lambda"] * (v @ v)))

    def predict(self, structures: Sequence[Atoms], forces: bool = False) -> dict[str, Any]:
        """Energies (n,) in eV on the DFTB1 scale, per-atom ``energies`` and optional ``forces``.

        ``energies`` (n, N) and ``forces`` (n, N, 3) are NaN-padded to the largest N when
        the structures differ in size (as SchNetModel.predict does). Sparse models also
        return ``energy_std`` (n,), see ``_energy_std``.
        """
        if isinstance(structures, Atoms):
            raise ValueError("predict takes a list of Atoms; wrap a single structure in a list")
        if len(structures) == 0:
            raise ValueError("predict needs at least one structure")
        if self._threadpools is None:
            from threadpoolctl import ThreadpoolController

            self._threadpools = ThreadpoolController()
        # one BLAS thread: the per-structure products are tiny, and a second thread
        # doubles the single-call time
        with self._threadpools.limit(limits=1, user_api="blas"):
            return self._predict(structures, forces)

    def _predict(self, structures: Sequence[Atoms], forces: bool) -> dict[str, Any]:
        """``predict`` once the thread pools are limited."""
        total, per_atom, all_forces, spread = [], [], [], []
        for atoms in structures:
            if len(atoms) == 0:
                raise ValueError("empty Atoms: a gold cluster needs at least one atom")
            if forces:
                unit, norms, deriv = self.featurizer.normalised_with_derivatives(atoms)
                energies, grad, std = self.local_terms(unit)
                all_forces.append(forces_from_gradient(grad, unit, norms, deriv))
            else:
                unit = self.featurizer.normalised(atoms)
                energies, _, std = self.local_terms(unit, gradient=False)
            per_atom.append(energies)
            total.append(energies.sum())
            if std is not None:
                spread.append(std)
        out: dict[str, Any] = {"energy": np.array(total), "energies": _pad(per_atom)}
        if spread:
            out["energy_std"] = np.array(spread)
        if forces:
            out["forces"] = _pad(all_forces)
        return out

    # ----------------------------------------------------------------- storage
    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``weights.npz`` and ``card.json`` (the card records the weights' SHA-256)."""
        if not self.card:
            raise ValueError("model.card is empty: build it with models.card.new_card first")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / WEIGHTS_NAME
        tmp = directory / ".weights-tmp.npz"
        np.savez_compressed(tmp, **self.arrays)
        os.replace(tmp, path)
        self.card.update(
            model_type="krr",
            architecture=self.architecture,
            hyperparameters=self.hyperparameters,
            features={**self.settings.to_dict(), "n_features": n_soap_features(self.settings)},
            files={WEIGHTS_NAME: file_sha256(path)},
        )
        write_card(directory, self.card)
        return directory

    @property
    def architecture(self) -> str:
        """One-line description of the energy form."""
        if self.kernel == "rbf":
            return "SOAP(GTO) + KRR, RBF kernel on pooled descriptors (energy split equally)"
        sparse = self.hyperparameters.get("n_sparse")
        return (
            f"SOAP(GTO) + KRR, average local-environment kernel zeta={self.hyperparameters['zeta']}"
            + (f" on {sparse} sparse environments" if sparse else "")
            + " (per-atom energies)"
        )

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> KRRModel:
        """Load a model directory; a mismatched, truncated or foreign file is a ValueError."""
        directory = Path(directory)
        card = open_model_card(directory, "krr", [WEIGHTS_NAME])
        path = directory / WEIGHTS_NAME
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: np.asarray(data[k]) for k in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            raise ValueError(f"{path}: unreadable weights file ({err})") from None
        settings = SoapSettings.from_dict(card["features"])
        expected = card["features"].get("n_features")
        if expected is not None and expected != n_soap_features(settings):
            raise ValueError(
                f"{directory}: card n_features {expected} contradicts its SOAP settings"
            )
        try:
            model = cls(settings, card["hyperparameters"], arrays, card)
        except ValueError as err:
            raise ValueError(f"{directory}: weights do not match the card: {err}") from None
        return with_domain(model, directory)


def _power_pair(x: np.ndarray, zeta: int) -> tuple[np.ndarray, np.ndarray]:
    """x**(ζ−1) and x**ζ by repeated multiplication, several times faster than numpy's float
    power, which would be most of the kernel part of a calculator call."""
    below = np.ones_like(x) if zeta == 1 else x.copy()
    for _ in range(zeta - 2):
        below *= x
    return below, below * x


def zero_force_features(
    featurizer: SoapFeaturizer, atoms: Atoms, sparse: np.ndarray, zeta: int
) -> np.ndarray:
    """dE/dr = G c for a sparse model: G (N·3, M) of one structure."""
    unit, norms, deriv = featurizer.normalised_with_derivatives(atoms)
    return sparse_force_features(unit, normalised_jacobian(unit, norms, deriv), sparse, zeta)


def zero_force_terms(
    featurizer: SoapFeaturizer,
    structures: Sequence[Atoms],
    sparse: np.ndarray,
    zeta: int,
    force_targets: Sequence[np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Σ_s G_sᵀG_s / N_s² and Σ_s G_sᵀt_s / N_s²: the penalty Σ_s |G_s c − t_s|² / N_s² on
    the per-atom energy scale (t_s: the wanted dE/dr, zero by default)."""
    if force_targets is not None and len(force_targets) != len(structures):
        raise ValueError(f"{len(force_targets)} force targets for {len(structures)} structures")
    gtg = np.zeros((len(sparse), len(sparse)))
    gtt = np.zeros(len(sparse))
    for s, atoms in enumerate(structures):
        g = zero_force_features(featurizer, atoms, sparse, zeta)
        gtg += (g.T @ g) / len(atoms) ** 2
        if force_targets is not None:
            gtt += (g.T @ np.asarray(force_targets[s], dtype=float).reshape(-1)) / len(atoms) ** 2
    return gtg, gtt


def _pad(items: list[np.ndarray]) -> np.ndarray:
    """Per-structure arrays stacked along a new first axis, NaN-padded to the largest size."""
    size = max(len(i) for i in items)
    out = np.full((len(items), size, *items[0].shape[1:]), np.nan)
    for k, item in enumerate(items):
        out[k, : len(item)] = item
    return out


def _check_hyperparameters(hyper: dict[str, Any]) -> str:
    """The kernel name after checking its parameters."""
    kernel = hyper.get("kernel")
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}: use {', '.join(KERNELS)}")
    if kernel == "average":
        check_zeta(hyper.get("zeta", 0))
    elif not isinstance(hyper.get("gamma"), int | float) or hyper["gamma"] <= 0:
        raise ValueError(f"rbf kernel needs a positive gamma, got {hyper.get('gamma')!r}")
    return kernel


def _check_arrays(
    kernel: str, hyper: dict[str, Any], arrays: dict[str, np.ndarray], settings: SoapSettings
) -> dict[str, np.ndarray]:
    """Arrays required by the kernel, with shapes that fit the SOAP length and each other."""
    n_feat = n_soap_features(settings)
    if kernel == "rbf":
        needed = {"e0": (), "pooled": (None, n_feat), "alpha": (None,)}
    elif hyper["zeta"] == 2 and "quadratic" in arrays:
        needed = {"e0": (), "quadratic": (n_feat, n_feat)}
    else:
        needed = {"e0": (), "environments": (None, n_feat), "env_coef": (None,)}
    out = {}
    for name, shape in needed.items():
        if name not in arrays:
            raise ValueError(f"array {name!r} missing")
        value = np.asarray(arrays[name])
        if value.ndim != len(shape) or any(
            s not in (None, v) for s, v in zip(shape, value.shape, strict=True)
        ):
            raise ValueError(f"array {name!r} has shape {value.shape}, expected {shape}")
        if not np.issubdtype(value.dtype, np.floating) or not np.all(np.isfinite(value)):
            raise ValueError(f"array {name!r} is not finite floating point")
        out[name] = value
    if "spread_factor" in arrays and "environments" in out:
        factor = np.asarray(arrays["spread_factor"])
        m = len(out["environments"])
        if factor.shape != (m, m) or not np.all(np.isfinite(factor)):
            raise ValueError(f"array 'spread_factor' has shape {factor.shape}, expected {(m, m)}")
        out["spread_factor"] = factor
    rows = {"rbf": ("pooled", "alpha"), "average": ("environments", "env_coef")}[kernel]
    if rows[0] in out and len(out[rows[0]]) != len(out[rows[1]]):
        raise ValueError(f"{rows[0]} and {rows[1]} have different lengths")
    return out
