"""How far would more data take the KRR? Test MAE against the number of training isomers.

The dense average-kernel KRR (the shipped SOAP settings, ζ = 6, no sparse points and no
zero-force term, so each fit is one Cholesky of a precomputed Gram block) is refitted on
random subsets of the seed split's train+val isomers; λ is chosen for each subset by the
group-aware CV of its fold column (near-duplicates of held-out rows dropped from training),
never by the test set. Scored on the fixed test set, and on its isomers without a
near-duplicate among the train+val rows, which is the honest figure for new structures.
The slope of log MAE against log N over the larger half says how much a doubling of the
data buys.

Run: ``python benchmarks/learning_curve.py --db runs/bench/au20-seed.db`` (about 15 s on
2 cores; the db is built from ``$AU20_DATA`` when missing).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from accuracy import ensure_databases
from docs_page import DOCS, publish_printed, recording

from ase_au20.database.rows import IsomerSet, load_rows
from ase_au20.models.krr.kernels import average_gram
from ase_au20.models.krr.model import solve_weighted_ridge
from ase_au20.models.krr.soap import SoapFeaturizer, SoapSettings
from ase_au20.paths import data_dir

SHIPPED_SOAP = SoapSettings(r_cut=8.0, n_max=6, l_max=4, sigma=0.4)
ZETA = 6
LAMBDAS = (3e-6, 1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3)
FRACTIONS = (0.125, 0.25, 0.5, 0.75, 1.0)


def fit_predict(
    gram: np.ndarray, per_atom: np.ndarray, train: np.ndarray, rows: np.ndarray, lam: float
) -> np.ndarray:
    """Per-atom energies of ``rows`` from a KRR fitted on ``train`` (centred, as KRRModel)."""
    e0 = per_atom[train].mean()
    alpha = solve_weighted_ridge(gram[np.ix_(train, train)], per_atom[train] - e0, lam)
    return gram[np.ix_(rows, train)] @ alpha + e0


def cv_lambda(gram: np.ndarray, data: IsomerSet, per_atom: np.ndarray, subset: np.ndarray) -> float:
    """λ with the lowest group-aware CV MAE over the fold column of ``subset``."""
    scores = []
    for lam in LAMBDAS:
        errors = []
        for fold in np.unique(data.folds[subset]):
            held = subset[data.folds[subset] == fold]
            train = subset[
                (data.folds[subset] != fold) & ~np.isin(data.groups[subset], data.groups[held])
            ]
            pred = fit_predict(gram, per_atom, train, held, lam)
            errors.append(np.abs(pred - per_atom[held]) * 20)
        scores.append(np.concatenate(errors).mean())
    return LAMBDAS[int(np.argmin(scores))]


def learning_curve(db: Path, repeats: int, seed: int) -> list[dict[str, float]]:
    """One row per training size: mean test MAE over ``repeats`` random subsets."""
    data = load_rows(db)
    featurizer = SoapFeaturizer(SHIPPED_SOAP)
    gram = average_gram(featurizer.normalised_many(data.atoms), zetas=[ZETA])[ZETA]
    sizes = np.array([len(a) for a in data.atoms])
    per_atom = data.energies / sizes
    pool = np.flatnonzero(np.isin(data.splits, ["train", "val"]))
    test = np.flatnonzero(data.splits == "test")
    unseen = ~np.isin(data.groups[test], data.groups[pool])
    rng = np.random.default_rng(seed)
    rows = []
    for fraction in FRACTIONS:
        n = int(round(fraction * len(pool)))
        maes, unseen_maes, lams = [], [], []
        for _ in range(repeats if fraction < 1 else 1):
            subset = np.sort(rng.choice(pool, n, replace=False))
            lam = cv_lambda(gram, data, per_atom, subset)
            errors = np.abs(fit_predict(gram, per_atom, subset, test, lam) - per_atom[test])
            errors *= sizes[test]
            maes.append(errors.mean())
            unseen_maes.append(errors[unseen].mean())
            lams.append(lam)
        rows.append(
            {
                "n_train": n,
                "test_mae": float(np.mean(maes)),
                "unseen_mae": float(np.mean(unseen_maes)),
                "lambda": float(np.median(lams)),
                "n_unseen": int(unseen.sum()),
            }
        )
    return rows


def slope(rows: list[dict[str, float]], key: str) -> float:
    """d log MAE / d log N over the sizes from half the data up."""
    big = [r for r in rows if r["n_train"] >= rows[-1]["n_train"] / 2]
    n = np.log([r["n_train"] for r in big])
    return float(np.polyfit(n, np.log([r[key] for r in big]), 1)[0])


def main(argv: list[str] | None = None) -> int:
    """Print the learning curve and what a doubling of the data buys; write its page."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=None, help="seed-split db [runs/bench/…]")
    parser.add_argument("--repeats", type=int, default=5, help="random subsets per size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--report", type=Path, default=DOCS, help="folder of the docs page")
    args = parser.parse_args(argv)
    db = args.db
    if db is None:
        db, _ = ensure_databases(Path("runs/bench"), data_dir())
    rows = learning_curve(db, args.repeats, args.seed)
    with recording() as printed:
        exponent = print_curve(rows)
    figures = {"rows": rows, "unseen_exponent": exponent}
    publish_printed(
        args.report,
        "learning-curve",
        "Learning curve of the KRR",
        __doc__,
        printed.getvalue(),
        figures,
    )
    return 0


def print_curve(rows: list[dict[str, float]]) -> float:
    """Print the curve and what a doubling of the data buys; return the exponent."""
    print(
        f"\nlearning curve — dense SOAP average kernel (ζ = {ZETA}), λ by group-aware CV, "
        f"fixed test set (unseen: the {rows[0]['n_unseen']} test isomers without a "
        "near-duplicate in train+val)"
    )
    print(f"{'N train':>8} {'λ':>8} {'test MAE':>9} {'unseen MAE':>11}")
    for r in rows:
        print(
            f"{r['n_train']:>8} {r['lambda']:>8.0e} {r['test_mae']:>9.3f} {r['unseen_mae']:>11.3f}"
        )
    exponent = slope(rows, "unseen_mae")
    print(
        f"unseen MAE ∝ N^{exponent:.2f} over the larger half: doubling the data "
        f"multiplies it by {2**exponent:.2f}"
    )
    return exponent


if __name__ == "__main__":
    raise SystemExit(main())
