"""Choosing KRR hyper-parameters by group-aware cross-validation and training the final model.

CV uses the database's ``fold`` column on the train and val rows only (the calib and test
rows are never seen); near-duplicates of a held-out row are dropped from that fold's
training rows, so the CV is group-aware whatever split scheme built the database. The
winner (lowest CV MAE) is refitted on all train+val rows, calibrated on ``calib`` and
scored on ``test``.
"""

from __future__ import annotations

import csv
import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ase_au20.database import IsomerSet, connect, load_rows
from ase_au20.models.finishing import CardParts, finish
from ase_au20.models.krr.kernels import (
    average_gram,
    farthest_point_sample,
    median_sq_distance,
    pooled,
    rbf_gram,
    sparse_features,
)
from ase_au20.models.krr.model import (
    KRRModel,
    solve_sparse_ridge,
    solve_weighted_ridge,
    zero_force_features,
)
from ase_au20.models.krr.search import KRRSearch
from ase_au20.models.krr.soap import SoapFeaturizer, SoapSettings
from ase_au20.models.scoring import CalibrationRows, training_metadata

CV_TABLE_NAME = "cv_table.csv"
TRAIN_SPLITS = ("train", "val")


@dataclass
class TrainResult:
    """What ``train_krr`` produced: the model (saved), its CV table and its metrics."""

    model: KRRModel
    cv_table: list[dict[str, Any]]
    directory: Path
    metrics: dict[str, Any] = field(default_factory=dict)


class _FoldSolver:
    """Out-of-fold predictions of one kernel setting for any λ, sample weights and μ.

    Sparse models use one set of sparse environments, farthest-point-sampled from all
    train/val environments (unsupervised: no energies involved), so the zero-force
    matrices GᵀG are computed once per structure; held-out rows never enter a fold's fit.
    For sparse models the mean predicted |F| on the held-out geometries is also returned.
    ``force_targets`` ((N, 3) per isomer) are the gradients the fit should have there
    instead of zero (a Δ model on a baseline: the baseline's forces); |F| is then the
    total model's, |dE/dr − target|.
    """

    def __init__(
        self,
        isomers: IsomerSet,
        units: list[np.ndarray],
        settings: SoapSettings,
        split: dict[int, tuple[np.ndarray, np.ndarray]],
        kernel: str,
        params: dict,
        n_sparse: int,
        force_targets: list[np.ndarray] | None = None,
    ) -> None:
        self.split = split
        self.fold_ids = sorted(split)
        self.sparse = kernel == "average" and n_sparse > 0 and params["zeta"] != 2
        if not self.sparse:
            self.gram = (
                average_gram(units, zetas=[params["zeta"]])[params["zeta"]]
                if kernel == "average"
                else rbf_gram(pooled(units), pooled(units), params["gamma"])
            )
            return
        zeta = params["zeta"]
        rows = np.flatnonzero(isomers.folds >= 0)
        envs = np.concatenate([units[i] for i in rows])
        q = envs[farthest_point_sample(envs, n_sparse)]
        self.phi = sparse_features(units, q, zeta)
        self.kqq = (q @ q.T) ** zeta
        featurizer = SoapFeaturizer(settings)
        self.force_rows = {
            i: zero_force_features(featurizer, isomers.atoms[i], q, zeta).astype(np.float32)
            for i in rows
        }
        sizes = np.array([len(a) for a in isomers.atoms], dtype=float)
        self.targets = {
            i: np.zeros(3 * len(isomers.atoms[i]))
            if force_targets is None
            else np.asarray(force_targets[i], dtype=float).reshape(-1)
            for i in rows
        }
        self.gtg, self.gtt = {}, {}
        for f in self.fold_ids:
            tr, _ = split[f]
            g = np.concatenate([self.force_rows[i] / sizes[i] for i in tr]).astype(float)
            t = np.concatenate([self.targets[i] / sizes[i] for i in tr])
            self.gtg[f], self.gtt[f] = g.T @ g, g.T @ t

    def predict(
        self, per_atom: np.ndarray, lam: float, weights: np.ndarray, mu: float = 0.0
    ) -> tuple[np.ndarray, float]:
        """Out-of-fold per-atom energies (NaN outside the folds) and held-out mean |F|."""
        pred = np.full(len(per_atom), np.nan)
        forces = []
        for f in self.fold_ids:
            tr, te = self.split[f]
            e0 = np.average(per_atom[tr], weights=weights[tr])
            if self.sparse:
                coef, _ = solve_sparse_ridge(
                    self.phi[tr],
                    self.kqq,
                    per_atom[tr] - e0,
                    lam,
                    weights[tr],
                    mu * self.gtg[f] if mu > 0 else None,
                    mu * self.gtt[f] if mu > 0 else None,
                )
                pred[te] = e0 + self.phi[te] @ coef
                for i in te:
                    grad = (self.force_rows[i] @ coef - self.targets[i]).reshape(-1, 3)
                    forces.append(np.linalg.norm(grad, axis=1).mean())
            else:
                if mu > 0:
                    raise ValueError("zero_force_weight needs the sparse average kernel")
                sub = self.gram[np.ix_(tr, tr)]
                alpha = solve_weighted_ridge(sub, per_atom[tr] - e0, lam, weights[tr])
                pred[te] = e0 + self.gram[np.ix_(te, tr)] @ alpha
        return pred, float(np.mean(forces)) if forces else float("nan")


def group_folds(folds: np.ndarray, groups: np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """(train, held-out) row indices per fold, without near-duplicates of held-out rows.

    Training drops every row whose duplicate group appears in the held-out fold, so CV
    stays group-aware where the fold column is not (the prototype's seed folds are not).
    """
    out = {}
    for f in sorted(set(folds[folds >= 0].tolist())):
        held = folds == f
        train = (folds >= 0) & ~held & ~np.isin(groups, groups[held])
        out[f] = (np.flatnonzero(train), np.flatnonzero(held))
    return out


def _kernel_params(units: list[np.ndarray], search: KRRSearch) -> list[dict[str, Any]]:
    """Every kernel parameter set of the grid (γ resolved from the descriptor scale)."""
    if search.kernel == "average":
        return [{"zeta": int(z)} for z in search.zeta]
    if search.kernel == "rbf":
        scale = median_sq_distance(pooled(units))
        return [{"gamma": s / scale} for s in search.gamma_scale]
    raise ValueError(f"unknown kernel {search.kernel!r}")


def cross_validate(
    isomers: IsomerSet,
    search: KRRSearch,
    progress: bool = True,
    force_targets: list[np.ndarray] | None = None,
) -> list[dict[str, Any]]:
    """Group-aware k-fold CV over the grid (see group_folds); one row per setting (eV).

    ``force_targets``: see ``_FoldSolver`` (a Δ model's baseline forces)."""
    folds = isomers.folds
    fold_ids = sorted(set(folds[folds >= 0].tolist()))
    if len(fold_ids) < 2:
        raise ValueError("cross-validation needs at least two folds among the train/val rows")
    sizes = np.array([len(a) for a in isomers.atoms], dtype=float)
    per_atom = isomers.energies / sizes
    scored = folds >= 0
    split = group_folds(folds, isomers.groups)
    table: list[dict[str, Any]] = []
    bar = tqdm(total=search.size(), desc="KRR CV", unit="fit", disable=not progress)
    for settings in search.soap_grid():
        units = SoapFeaturizer(settings).normalised_many(isomers.atoms)
        for params in _kernel_params(units, search):
            solver = _FoldSolver(
                isomers,
                units,
                settings,
                split,
                search.kernel,
                params,
                search.n_sparse,
                force_targets,
            )
            mus = search.zero_force_weight if solver.sparse else (0.0,)
            for lam, ow, mu in itertools.product(search.lam, search.outlier_weight, mus):
                weights = np.where(isomers.is_outlier, float(ow), 1.0)
                per_atom_pred, mean_force = solver.predict(per_atom, float(lam), weights, mu)
                pred = sizes * per_atom_pred
                err = pred[scored] - isomers.energies[scored]
                fold_mae = [
                    np.abs(pred[folds == f] - isomers.energies[folds == f]).mean() for f in fold_ids
                ]
                table.append(
                    {
                        **settings.to_dict(),
                        "kernel": search.kernel,
                        **params,
                        "n_sparse": int(search.n_sparse) if solver.sparse else 0,
                        "lambda": float(lam),
                        "outlier_weight": float(ow),
                        "zero_force_weight": float(mu),
                        "cv_mae": float(np.abs(err).mean()),
                        "cv_rmse": float(np.sqrt((err**2).mean())),
                        "cv_fold_mae_std": float(np.std(fold_mae)),
                        "cv_mean_force": mean_force,
                    }
                )
                bar.update()
    bar.close()
    return table


def best_row(table: list[dict[str, Any]], force_tolerance: float | None = None) -> dict[str, Any]:
    """The CV row with the lowest MAE; with a tolerance, among rows whose held-out mean
    |F| (eV/Å) is at most that (all rows if none qualifies)."""
    if not table:
        raise ValueError("empty CV table")
    if force_tolerance is not None:
        smooth = [r for r in table if r.get("cv_mean_force", np.nan) <= force_tolerance]
        table = smooth or table
    return min(table, key=lambda r: r["cv_mae"])


def fit_row(
    isomers: IsomerSet, row: dict[str, Any], force_targets: list[np.ndarray] | None = None
) -> KRRModel:
    """Fit the model that a CV-table row describes on ``isomers`` (``force_targets``: the
    gradients wanted at the training geometries, see ``KRRModel.fit``)."""
    settings = SoapSettings.from_dict(row)
    units = SoapFeaturizer(settings).normalised_many(isomers.atoms)
    weights = np.where(isomers.is_outlier, float(row["outlier_weight"]), 1.0)
    model = KRRModel.fit(
        units,
        isomers.energies,
        settings,
        kernel=row["kernel"],
        zeta=int(row.get("zeta") or 2),
        gamma=float(row.get("gamma") or 1.0),
        lam=float(row["lambda"]),
        sample_weight=weights,
        n_sparse=int(row.get("n_sparse") or 0),
        zero_force_weight=float(row.get("zero_force_weight") or 0.0),
        structures=isomers.atoms,
        force_targets=force_targets,
    )
    model.hyperparameters["outlier_weight"] = float(row["outlier_weight"])
    return model


def out_of_fold(
    isomers: IsomerSet,
    row: dict[str, Any],
    force_targets: list[np.ndarray] | None = None,
    baseline: np.ndarray | None = None,
) -> CalibrationRows | None:
    """Every row predicted by the model of ``row`` refitted without its fold and that fold's
    near-duplicates (``baseline``: energies added to a Δ model's); None for a model without
    a predictive std (a dense kernel), whose calibration stays on calib."""
    energy, spread = np.full(len(isomers), np.nan), np.full(len(isomers), np.nan)
    for train, held in group_folds(isomers.folds, isomers.groups).values():
        targets = None if force_targets is None else [force_targets[i] for i in train]
        model = fit_row(isomers.subset(train), row, targets)
        if not model.has_spread:
            return None
        out = model.predict(isomers.subset(held).atoms)
        energy[held], spread[held] = out["energy"], out["energy_std"]
    scored = ~np.isnan(energy)
    shift = np.zeros(len(isomers)) if baseline is None else np.asarray(baseline, dtype=float)
    true = isomers.energies + shift
    return CalibrationRows((energy + shift)[scored], true[scored], spread[scored])


def write_cv_table(path: str | os.PathLike[str], table: list[dict[str, Any]]) -> None:
    """The CV table as CSV, best row first."""
    rows = sorted(table, key=lambda r: r["cv_mae"])
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: (";".join(v) if isinstance(v, list) else v) for k, v in r.items()})


def train_krr(
    db_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    search: KRRSearch,
    progress: bool = True,
) -> TrainResult:
    """CV on train+val, refit the best, calibrate on calib, score on test, save to ``out``."""
    for settings in search.soap_grid():  # dscribe checks each setting: fail before any work
        SoapFeaturizer(settings)
    db = connect(os.fspath(db_path))
    training_metadata(db, db_path)  # before the CV: a db without it fails in seconds
    trainval = load_rows(db, TRAIN_SPLITS)
    if len(trainval) == 0:
        raise ValueError(f"{db_path}: no train/val rows")
    table = cross_validate(trainval, search, progress=progress)
    best = best_row(table, search.force_tolerance)
    model = fit_row(trainval, best)
    extra = out_of_fold(trainval, best)
    return calibrate_and_save(model, "krr", db_path, search, best, table, trainval, out, extra)


def calibrate_and_save(
    model: Any,
    model_type: str,
    db_path: str | os.PathLike[str],
    search: KRRSearch,
    best: dict[str, Any],
    table: list[dict[str, Any]],
    trainval: IsomerSet,
    out: str | os.PathLike[str],
    extra: CalibrationRows | None = None,
) -> TrainResult:
    """The shared finishing step (``models.finishing.finish``) of a CV-trained KRR-type
    model, calibrated on calib and the ``extra`` out-of-fold rows, with the CV winner in its
    metrics; then its CV table beside it."""
    cv = {
        "mae": best["cv_mae"],
        "rmse": best["cv_rmse"],
        "n": int(len(trainval)),
        "folds": "database fold column, near-duplicates of held-out rows dropped from training",
        "mean_abs_force": best.get("cv_mean_force"),  # held-out minima, eV/Å (sparse models)
        "force_tolerance": search.force_tolerance,
    }
    parts = CardParts(
        model_type,
        model.architecture,
        model.hyperparameters,
        best,
        trainval.ids,
        metrics={"cv": cv},
    )
    metrics = finish(model, db_path, out, parts, trainval.atoms, extra)
    write_cv_table(Path(out) / CV_TABLE_NAME, table)
    return TrainResult(model, table, out, metrics)
