"""Does `select` pay? Active learning against random picks at equal numbers of labels.

The seed split's train+val isomers are the pool of structures one could label; the run
starts from a small random labelled set and adds ``--batch`` isomers per round, chosen by
``workflows.select.score_candidates`` (the scoring of `au20-workflow select`) or uniformly
at random. Select runs with its default 1 eV window, a 3 eV window and none; when fewer
structures than the batch lie in the window, the rest are the next best scores outside it.
After each round the KRR is refitted (shipped SOAP, sparse average kernel ζ = 6 with 500
points, so it has a predictive std, which is select's epistemic term) and scored on the 114
fixed-test isomers without a near-duplicate in the pool, and on those of them in the low
bucket (ΔE below the first quartile: the isomers that compete for the ground state, which
select's window aims at). Same start, same rounds, several seeds.

Run: ``python benchmarks/selection.py`` (about 1.5 min on 2 cores; part of `make bench`).
``run(...)`` returns the curves for ``benchmarks/run_all.py``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
from accuracy import ensure_databases
from ase import Atoms
from docs_page import DOCS, publish_printed, recording

from ase_au20.database.rows import load_rows
from ase_au20.models.krr.model import KRRModel
from ase_au20.models.krr.soap import SoapFeaturizer, SoapSettings
from ase_au20.paths import data_dir
from ase_au20.workflows.select import score_candidates

SHIPPED_SOAP = SoapSettings(r_cut=8.0, n_max=6, l_max=4, sigma=0.4)
ZETA, LAMBDA, N_SPARSE = 6, 1e-4, 500
WINDOWS = {"select 1 eV": 1.0, "select 3 eV": 3.0, "select, no window": None}  # eV


class PrecomputedKRR:
    """A calculator-like object whose ``predict`` reads precomputed SOAP units: the KRR of
    one round, fast enough to score the whole pool every round (select needs only predict)."""

    implemented_properties = ("energy", "energy_std")

    def __init__(self, model: KRRModel, units: dict[int, np.ndarray]) -> None:
        self.model, self.units = model, units

    def predict(self, structures: list[Atoms], properties: tuple[str, ...]) -> dict[str, Any]:
        energy, std = [], []
        for atoms in structures:
            terms, _, spread = self.model.local_terms(self.units[id(atoms)], gradient=False)
            energy.append(terms.sum())
            std.append(spread)
        n = len(structures)
        return {
            "energy": np.array(energy),
            "energy_std": np.array(std),
            "energy_uncertainty": np.full(n, np.nan),
        }


def _fit(units: list[np.ndarray], energies: np.ndarray) -> KRRModel:
    return KRRModel.fit(units, energies, SHIPPED_SOAP, zeta=ZETA, lam=LAMBDA, n_sparse=N_SPARSE)


def _mae(model: KRRModel, units: list[np.ndarray], energies: np.ndarray) -> float:
    pred = np.array([model.local_terms(u, gradient=False)[0].sum() for u in units])
    return float(np.abs(pred - energies).mean())


def _pick(selection: Any, window: float | None, batch: int) -> list[int]:
    """The ``batch`` best-scored rows inside ``window`` eV, topped up by the best outside."""
    inside = (
        np.ones(len(selection), bool) if window is None else selection.relative_energy <= window
    )
    order = [*np.flatnonzero(inside), *np.flatnonzero(~inside)]
    return selection.row_ids[order[:batch]].tolist()


def active_learning(
    db: Path, start: int, batch: int, rounds: int, seeds: tuple[int, ...]
) -> dict[str, dict[str, np.ndarray]]:
    """MAE after each round, (seeds, rounds + 1) per strategy, on all unseen test isomers
    (``"all"``) and on those in the low bucket (``"low"``)."""
    data = load_rows(db)
    units = SoapFeaturizer(SHIPPED_SOAP).normalised_many(data.atoms)
    pool = np.flatnonzero(np.isin(data.splits, ["train", "val"]))
    test = np.flatnonzero(data.splits == "test")
    test = test[~np.isin(data.groups[test], data.groups[pool])]
    targets = {"all": test, "low": test[data.buckets[test] == "low"]}
    by_id = {id(data.atoms[i]): units[i] for i in pool}
    strategies = ["random", *WINDOWS]
    curves = {k: {s: [] for s in strategies} for k in targets}
    for seed in seeds:
        first = np.random.default_rng(seed).choice(pool, start, replace=False)
        for strategy in strategies:
            rng = np.random.default_rng(seed + 1000)
            labelled = list(first)
            maes = {k: [] for k in targets}
            for round_ in range(rounds + 1):
                model = _fit([units[i] for i in labelled], data.energies[labelled])
                for k, rows in targets.items():
                    maes[k].append(_mae(model, [units[i] for i in rows], data.energies[rows]))
                if round_ == rounds:
                    break
                rest = np.setdiff1d(pool, labelled)
                if strategy == "random":
                    labelled += rng.choice(rest, batch, replace=False).tolist()
                    continue
                calc = PrecomputedKRR(model, by_id)
                scored = score_candidates(
                    [data.atoms[i] for i in rest], rest, {"krr": calc}, energy_window=None
                )
                labelled += _pick(scored, WINDOWS[strategy], batch)
            for k in targets:
                curves[k][strategy].append(maes[k])
    return {k: {s: np.array(v) for s, v in c.items()} for k, c in curves.items()}


def format_report(
    curves: dict[str, dict[str, np.ndarray]], start: int, batch: int, sizes: dict[str, int]
) -> str:
    """Side-by-side MAE per round (mean over seeds) for each strategy and test subset."""
    lines = []
    for subset, table in curves.items():
        names = list(table)
        seeds = table["random"].shape[0]
        lines.append(
            f"active learning: MAE (eV) on the {sizes[subset]} unseen test isomers"
            + (" in the low bucket" if subset == "low" else "")
            + f", mean of {seeds} seeds, +{batch} labels per round"
        )
        lines.append(f"{'labels':>7}" + "".join(f"{n:>19}" for n in names))
        for r in range(table["random"].shape[1]):
            lines.append(
                f"{start + r * batch:>7}"
                + "".join(f"{table[n][:, r].mean():>19.3f}" for n in names)
            )
        random_mean = table["random"][:, 1:].mean()
        for name in names[1:]:
            gain = random_mean - table[name][:, 1:].mean()
            wins = int(
                (table[name][:, 1:].mean(axis=0) < table["random"][:, 1:].mean(axis=0)).sum()
            )
            lines.append(
                f"  {name}: {'beats' if gain > 0 else 'trails'} random by {abs(gain):.3f} eV "
                f"(mean over rounds), lower MAE in {wins} of {table[name].shape[1] - 1} rounds"
            )
        lines.append("")
    return "\n".join(lines)


def run(
    db: Path | None = None,
    start: int = 50,
    batch: int = 50,
    rounds: int = 6,
    seeds: tuple[int, ...] = (0, 1, 2),
) -> dict[str, Any]:
    """Build the seed db when missing, run both strategies, print and return the curves."""
    begin = time.perf_counter()
    if db is None:
        db, _ = ensure_databases(Path("runs/bench"), data_dir())
    curves = active_learning(db, start, batch, rounds, seeds)
    data = load_rows(db)
    pool_groups = data.groups[np.isin(data.splits, ["train", "val"])]
    unseen = (data.splits == "test") & ~np.isin(data.groups, pool_groups)
    sizes = {"all": int(unseen.sum()), "low": int((unseen & (data.buckets == "low")).sum())}
    print(format_report(curves, start, batch, sizes))
    print(f"selection benchmark: {time.perf_counter() - begin:.0f} s")
    return {k: {s: v.tolist() for s, v in c.items()} for k, c in curves.items()}


def main(argv: list[str] | None = None) -> int:
    """Command line: see module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=None, help="seed-split db [runs/bench/…]")
    parser.add_argument("--start", type=int, default=50, help="labelled isomers to begin with")
    parser.add_argument("--batch", type=int, default=50, help="labels added per round")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seeds", type=int, default=3, help="independent starts")
    parser.add_argument("--report", type=Path, default=DOCS, help="folder of the docs page")
    args = parser.parse_args(argv)
    with recording() as printed:
        curves = run(args.db, args.start, args.batch, args.rounds, tuple(range(args.seeds)))
    publish_printed(
        args.report,
        "selection",
        "Select against random picks",
        __doc__,
        printed.getvalue(),
        curves,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
