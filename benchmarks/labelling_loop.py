"""The labelling loop with a real oracle: does select's choice beat random picks off the minima?

The loop of the labelling-loop tutorial (``select → label --calc dftb → db add → train``),
run in process so that many rounds and seeds fit in minutes: select's scoring
(``workflows.select.score_candidates``, no energy window), the reference as the oracle, and
an energy + force model refitted every round. The model is the SOAP kernel model (the
shipped SOAP, sparse average kernel ζ = 6 on 500 environments, reference forces as gradient
targets with weight μ = 0.01, where energy and force errors balanced in a trial with 300 and
1,000 random frames: μ = 0.003 and 0.03 traded one for the other) because it refits in
seconds and has the predictive std that select scores; the SchNet ensemble's disagreement
plays that part in `select` with the shipped models.

Start: the 744 train, val and calib isomers of the seed split plus a small corpus (``--start``
rattled frames of their parents), all labelled by the reference. Pool: unlabelled frames of
the same parents as the workflows make them: isomers rattled at σ = 0.02–0.15 Å, and frames
of Langevin MD with the shipped SchNet at 300–1000 K. Each round labels ``--batch`` frames of
the pool and refits: drawn at random, the highest-scored by select, or select's scores
spread out (of the 3 × batch best-scored, the best, then again and again the frame farthest
in mean SOAP vector from those taken). Scored after each round
against the reference on the fixed test parents' families (as in ``truth.py``): the test
isomers, rattled test isomers (σ = 0.03, 0.06, 0.1 Å) and frames of reference MD at 300, 600
and 1000 K. Same start, same pool and rounds for both strategies; one pool per seed.

Run: ``python benchmarks/labelling_loop.py --db runs/bench/au20-seed.db`` (about 10 min on
2 cores; part of `make bench`).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from accuracy import ensure_databases
from ase import Atoms
from docs_page import DOCS, publish_printed, recording
from selection import SHIPPED_SOAP, PrecomputedKRR
from tqdm import tqdm
from truth import FULL, RATTLES, TEMPERATURES, md_frames, rattled

from ase_au20.calculators.factory import make_calculator
from ase_au20.database.rows import load_rows
from ase_au20.models.krr.model import KRRModel
from ase_au20.models.krr.soap import SoapFeaturizer
from ase_au20.paths import data_dir
from ase_au20.workflows.md import run_md
from ase_au20.workflows.reference_check import ReferenceLabels
from ase_au20.workflows.select import score_candidates

ZETA, LAMBDA, N_SPARSE = 6, 1e-4, 500
STRATEGIES = ("random", "select", "select, spread out")
SPREAD_OUT = 3  # "spread out" picks far-apart frames among this many times a batch's top scores


@dataclass
class Frames:
    """Structures with their SOAP units and, once labelled, reference energies and forces."""

    atoms: list[Atoms]
    units: list[np.ndarray]
    labels: ReferenceLabels | None = None

    def take(self, index: np.ndarray) -> Frames:
        """The frames at ``index`` (labels included)."""
        labels = None
        if self.labels is not None:
            labels = ReferenceLabels(
                self.labels.energy[index], [self.labels.forces[i] for i in index]
            )
        return Frames([self.atoms[i] for i in index], [self.units[i] for i in index], labels)


def featurised(structures: list[Atoms]) -> Frames:
    """``structures`` with their normalised SOAP units."""
    return Frames(structures, SoapFeaturizer(SHIPPED_SOAP).normalised_many(structures))


def pool_frames(parents: list[Atoms], size: int, seed: int, work: Path) -> Frames:
    """``size`` unlabelled frames of ``parents``: half rattled (σ uniform in 0.02–0.15 Å),
    half from Langevin MD with the shipped SchNet (300–1000 K, a frame every 20 steps after
    100 steps of heating), as `md` writes them. Each frame's ``info["origin"]`` says which:
    ``("rattle", σ)`` or ``("md", T)``."""
    from ase.io import read

    rng = np.random.default_rng(seed)
    frames = []
    for k in rng.choice(len(parents), size // 2):
        sigma = rng.uniform(0.02, 0.15)
        base = parents[k]
        moved = base.positions + rng.normal(0, sigma, (20, 3))
        frames.append(Atoms(base.numbers, positions=moved, info={"origin": ("rattle", sigma)}))
    schnet = make_calculator("schnet", device="cpu")
    per_run = 10
    for run in range((size - len(frames)) // per_run):
        start = parents[int(rng.integers(len(parents)))]
        temperature = float(rng.uniform(300, 1000))
        path = work / f"pool-{seed}-{run}.traj"
        run_md(start, schnet, "langevin", temperature, 100 + 20 * per_run, 2.0, 0.02, run, 20, path)
        frames += [
            Atoms(a.numbers, positions=a.positions, info={"origin": ("md", temperature)})
            for a in read(path, ":")[-per_run:]
        ]
    return featurised(frames)


def test_families(isomers: list[Atoms], reference: Any, work: Path) -> dict[str, Frames]:
    """truth.py's families of the fixed test parents, labelled by the reference."""
    families = {"test isomers": isomers}
    for k, sigma in enumerate(RATTLES):
        families[f"rattled {sigma} Å"] = rattled(isomers, sigma, FULL.rattled, seed=k)
    for t in TEMPERATURES:
        families[f"MD {t} K"] = md_frames(isomers, reference, t, FULL, work)
    out = {}
    for name, structures in families.items():
        frames = featurised(structures)
        frames.labels = ReferenceLabels.of(reference, structures)
        out[name] = frames
    return out


def fit(frames: Frames, mu: float) -> KRRModel:
    """The energy + force kernel model on labelled ``frames`` (forces as −dE/dr targets)."""
    return KRRModel.fit(
        frames.units,
        frames.labels.energy,
        SHIPPED_SOAP,
        zeta=ZETA,
        lam=LAMBDA,
        n_sparse=N_SPARSE,
        zero_force_weight=mu,
        structures=frames.atoms,
        force_targets=[-f for f in frames.labels.forces],
    )


def errors(model: KRRModel, families: dict[str, Frames]) -> dict[str, tuple[float, float]]:
    """(energy MAE eV, force MAE eV/Å) per family."""
    out = {}
    for name, frames in families.items():
        pred = model.predict(frames.atoms, forces=True)
        force = np.concatenate(
            [
                np.abs(f - g).ravel()
                for f, g in zip(pred["forces"], frames.labels.forces, strict=True)
            ]
        )
        out[name] = (
            float(np.abs(pred["energy"] - frames.labels.energy).mean()),
            float(force.mean()),
        )
    return out


def concatenated(a: Frames, b: Frames) -> Frames:
    """``a`` then ``b``, both labelled."""
    labels = ReferenceLabels(
        np.concatenate([a.labels.energy, b.labels.energy]), a.labels.forces + b.labels.forces
    )
    return Frames(a.atoms + b.atoms, a.units + b.units, labels)


def one_seed(
    start: Frames,
    pool: Frames,
    families: dict[str, Frames],
    reference: Any,
    args: Any,
    seed: int,
) -> tuple[dict[str, list[dict[str, tuple[float, float]]]], dict[str, list[tuple]]]:
    """Error per family after each round, for each strategy, from the same start and pool;
    and the origins of the frames each strategy labelled."""
    curves, picks = {}, {}
    for strategy in STRATEGIES:
        rng = np.random.default_rng(seed + 1000)
        labelled, left = start, np.arange(len(pool.atoms))
        rounds = []
        for round_ in range(args.rounds + 1):
            model = fit(labelled, args.mu)
            rounds.append(errors(model, families))
            if round_ == args.rounds:
                break
            if strategy == "random":
                chosen = rng.choice(left, args.batch, replace=False)
            else:
                calc = PrecomputedKRR(model, {id(pool.atoms[i]): pool.units[i] for i in left})
                scored = score_candidates(
                    [pool.atoms[i] for i in left], left, {"krr": calc}, energy_window=None
                )
                chosen = scored.row_ids[: args.batch]
                if strategy == "select, spread out":
                    chosen = spread_out(scored.row_ids[: SPREAD_OUT * args.batch], pool, args.batch)
            picks.setdefault(strategy, []).extend(pool.atoms[i].info["origin"] for i in chosen)
            batch = pool.take(chosen)
            batch.labels = ReferenceLabels.of(reference, batch.atoms)  # the oracle's labels
            labelled = concatenated(labelled, batch)
            left = np.setdiff1d(left, chosen)
        curves[strategy] = rounds
    return curves, picks


def spread_out(ranked: np.ndarray, pool: Frames, n: int) -> np.ndarray:
    """``n`` of the ``ranked`` pool frames: the best-scored first, then again and again the
    one farthest (mean SOAP vector) from every frame taken so far."""
    x = np.array([pool.units[i].mean(axis=0) for i in ranked])
    taken = [0]
    distance = np.linalg.norm(x - x[0], axis=1)
    while len(taken) < n:
        k = int(np.argmax(distance))
        taken.append(k)
        distance = np.minimum(distance, np.linalg.norm(x - x[k], axis=1))
    return ranked[taken]


def print_picks(picks: dict[str, list[tuple]], pool: list[tuple]) -> dict[str, Any]:
    """What each strategy labelled, beside the pool: the share of MD frames, the mean σ of
    the rattled frames and the mean temperature of the MD frames."""
    print("\nwhat was labelled (all seeds and rounds)   MD share   rattled: mean σ   MD: mean T")
    out = {}
    for name, origins in {"pool": pool, **picks}.items():
        sigma = [v for kind, v in origins if kind == "rattle"]
        temperature = [v for kind, v in origins if kind == "md"]
        out[name] = {
            "md_share": len(temperature) / len(origins),
            "mean_sigma": float(np.mean(sigma)) if sigma else float("nan"),
            "mean_temperature": float(np.mean(temperature)) if temperature else float("nan"),
        }
        row = out[name]
        print(
            f"  {name:<40}{row['md_share']:>9.2f}{row['mean_sigma']:>14.3f} Å"
            f"{row['mean_temperature']:>11.0f} K"
        )
    return out


def print_curves(runs: list[dict[str, Any]], start: int, batch: int) -> dict[str, Any]:
    """Mean over seeds of each family's errors per round and strategy; each strategy's gain
    over random picks."""
    families = list(runs[0]["random"][0])
    n_rounds = len(runs[0]["random"])
    mean = {
        s: np.array([[[r[s][k][f] for f in families] for k in range(n_rounds)] for r in runs])
        for s in STRATEGIES
    }  # (seeds, rounds, families, 2)
    labels = "".join(f"{start + k * batch:>8}" for k in range(n_rounds))
    summary: dict[str, Any] = {}
    for q, (what, unit) in enumerate((("energy MAE", "eV"), ("force MAE", "eV/Å"))):
        print(f"\n{what} ({unit}) against the reference, mean of {len(runs)} seeds, by labels")
        print(f"{'family':<16}{'strategy':<20}{labels}")
        for j, family in enumerate(families):
            for s in STRATEGIES:
                cells = "".join(f"{mean[s][:, k, j, q].mean():>8.3f}" for k in range(n_rounds))
                print(f"{family if s == STRATEGIES[0] else '':<16}{s:<20}{cells}")
        print(f"gain over random picks ({unit}, mean over rounds 1–{n_rounds - 1}; rounds won)")
        for j, family in enumerate(families):
            random_curve = mean["random"][:, 1:, j, q].mean(axis=0)
            cells = []
            for s in STRATEGIES[1:]:
                curve = mean[s][:, 1:, j, q].mean(axis=0)
                gain, won = float((random_curve - curve).mean()), int((curve < random_curve).sum())
                summary.setdefault(family, {}).setdefault(s, {})[what] = {
                    "gain": gain,
                    "rounds_won": won,
                }
                cells.append(f"{s} {gain:+.3f} ({won}/{n_rounds - 1})")
            print(f"  {family:<16}" + "   ".join(cells))
    return summary


def main(argv: list[str] | None = None) -> int:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=None, help="seed-split db [runs/bench/…]")
    parser.add_argument("--start", type=int, default=100, help="rattled frames at the start")
    parser.add_argument("--pool", type=int, default=2000, help="unlabelled frames per seed")
    parser.add_argument("--batch", type=int, default=100, help="labels added per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=3, help="independent starts and pools")
    parser.add_argument("--mu", type=float, default=0.01, help="weight of the force targets")
    parser.add_argument("--seed-base", type=int, default=0)
    parser.add_argument("--report", type=Path, default=DOCS, help="folder of the docs page")
    args = parser.parse_args(argv)
    begin = time.perf_counter()
    db = args.db or ensure_databases(Path("runs/bench"), data_dir())[0]
    data = load_rows(db)
    known = np.flatnonzero(np.isin(data.splits, ["train", "val", "calib"]))
    parents = [data.atoms[i] for i in known]
    test = [data.atoms[i] for i in np.flatnonzero(data.splits == "test")]
    reference = make_calculator("dftb")
    runs, picks, origins = [], {}, []
    with tempfile.TemporaryDirectory() as tmp:
        families = test_families(test, reference, Path(tmp))
        isomers = featurised(parents)
        isomers.labels = ReferenceLabels.of(reference, parents)
        for seed in tqdm(range(args.seed_base, args.seed_base + args.seeds), desc="seeds"):
            rng = np.random.default_rng(seed)
            corpus = featurised(
                [
                    Atoms(p.numbers, positions=p.positions + rng.normal(0, 0.06, (20, 3)))
                    for p in (parents[k] for k in rng.choice(len(parents), args.start))
                ]
            )
            corpus.labels = ReferenceLabels.of(reference, corpus.atoms)
            pool = pool_frames(parents, args.pool, seed, Path(tmp))
            start = concatenated(isomers, corpus)
            curves, chosen = one_seed(start, pool, families, reference, args, seed)
            runs.append(curves)
            origins += [a.info["origin"] for a in pool.atoms]
            for strategy, labelled in chosen.items():
                picks.setdefault(strategy, []).extend(labelled)
    with recording() as printed:
        print(
            f"labelling loop: {len(parents)} isomers + {args.start} rattled frames to start, "
            f"+{args.batch} reference labels per round from a pool of {args.pool}, "
            f"{args.seeds} seeds, force weight μ = {args.mu}"
        )
        summary = print_curves(runs, len(parents) + args.start, args.batch)
        labelled = print_picks(picks, origins)
        print(f"\nlabelling-loop benchmark: {time.perf_counter() - begin:.0f} s")
    settings = {k: v for k, v in vars(args).items() if k != "report"} | {"db": str(db)}
    publish_printed(
        args.report,
        "labelling-loop",
        "The labelling loop with the reference as oracle",
        __doc__,
        printed.getvalue(),
        {"settings": settings, "summary": summary, "labelled": labelled, "runs": runs},
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
