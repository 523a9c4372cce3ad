"""The truth off the minima: every shipped model against the DFTB1 reference, per family.

Families of structures the workflows visit, each labelled by the reference: the fixed test
isomers (never trained on); those isomers rattled at σ = 0.03, 0.06 and 0.1 Å per
coordinate; Langevin MD with the reference at 300, 600 and 1000 K from test isomers; the
minima of a random-start multistart search with each model; and unphysical clusters
(collapsed, torn, expanded, gas-like, chains, pancakes made from test isomers), which the
domain verdict should flag. For every shipped model: energy MAE, force MAE, 90 % interval
coverage and width (each family's intervals are those its workflow asks for: the model's
quantiles of that corpus family where it has them, see ``calculators.base.intervals_for``),
in-domain share per family, and the verdict's precision and recall against the structures
whose reference error exceeds three widths of their calibrated interval; the
harmonic frequencies of the relaxed Td pyramid and sensitivity's global K (mean |ΔE| of
σ = 0.01 Å perturbations), each against the reference's own.

Run: ``python benchmarks/truth.py [--out runs/bench] [--quick]``; writes truth.json there.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from accuracy import ensure_databases
from ase import Atoms, units
from ase.calculators.calculator import Calculator
from ase.optimize import BFGS
from ase.vibrations import Vibrations
from docs_page import DOCS, publish
from headline import write_headline
from threadpoolctl import threadpool_limits

from ase_au20.calculators.base import intervals_for
from ase_au20.database import load_rows
from ase_au20.geometry.unphysical_clusters import KINDS, unphysical_corpus
from ase_au20.paths import PRETRAINED_DIR, data_dir
from ase_au20.workflows.any_calculator import predict_batch
from ase_au20.workflows.reference_check import FamilyScore, ReferenceLabels, score_family
from ase_au20.workflows.search import SearchSettings, global_search
from ase_au20.workflows.sensitivity import SensitivityConfig, run_sensitivity

MODELS = ("krr", "schnet", "committee", "xtb-delta")
README = Path(__file__).resolve().parents[1] / "README.md"
RATTLES = (0.03, 0.06, 0.1)
TEMPERATURES = (300, 600, 1000)
TD_ID = 350  # the Td pyramid, the ground state of the data


@dataclass(frozen=True)
class Budget:
    """How many structures each family gets."""

    isomers: int
    rattled: int  # per σ
    md_starts: int  # trajectories per temperature
    md_frames: int  # frames kept per trajectory
    search_starts: int  # random starts per model (xtb-delta: a third, for its cost)
    unphysical: int  # per kind of unphysical cluster


FULL = Budget(isomers=155, rattled=40, md_starts=6, md_frames=10, search_starts=30, unphysical=10)
QUICK = Budget(isomers=30, rattled=10, md_starts=1, md_frames=8, search_starts=3, unphysical=2)


def rattled(isomers: list[Atoms], sigma: float, n: int, seed: int) -> list[Atoms]:
    """``n`` test isomers (cycled) with every coordinate moved by N(0, σ²)."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        base = isomers[k % len(isomers)]
        out.append(Atoms(base.numbers, positions=base.positions + rng.normal(0, sigma, (20, 3))))
    return out


def md_frames(
    isomers: list[Atoms], reference: Calculator, temperature: float, budget: Budget, work: Path
) -> list[Atoms]:
    """Frames of the ``md`` workflow's Langevin run with the reference (2 fs, friction
    0.02/fs): 200 steps to heat, then one frame every 40 steps."""
    from ase.io import read

    from ase_au20.workflows.md import run_md

    frames = []
    for k in range(budget.md_starts):
        path = work / f"md-{temperature}-{k}.traj"
        steps = 200 + 40 * budget.md_frames
        run_md(isomers[k], reference, "langevin", temperature, steps, 2.0, 0.02, k, 40, path)
        kept = read(path, ":")[-budget.md_frames :]
        frames += [Atoms(a.numbers, positions=a.positions) for a in kept]
    return frames


def search_minima(calc: Calculator, starts: int) -> list[Atoms]:
    """Local minima of a multistart search from unconstrained random starts."""
    settings = SearchSettings(method="multistart", runs=1, steps=starts, starts="random")
    return [m.atoms for m in global_search(calc, settings)]


def relaxed(atoms: Atoms, calc: Calculator, fmax: float = 1e-3) -> Atoms:
    """A BFGS-relaxed copy of ``atoms`` (tight: the frequencies need a true minimum)."""
    work = Atoms(atoms.numbers, positions=atoms.positions)
    work.calc = calc
    BFGS(work, logfile=None).run(fmax=fmax, steps=1000)
    return work


def frequencies(atoms: Atoms, calc: Calculator, folder: Path) -> np.ndarray:
    """The 54 vibrational frequencies (cm⁻¹, imaginary ones negative) of ``atoms``, sorted."""
    work = Atoms(atoms.numbers, positions=atoms.positions)
    work.calc = calc
    vib = Vibrations(work, name=str(folder), delta=0.01, nfree=2)
    vib.clean()
    vib.run()
    energies = vib.get_energies()
    vib.clean()
    values = np.where(np.abs(energies.imag) > 0, -np.abs(energies), energies.real) / units.invcm
    order = np.argsort(np.abs(values))
    return np.sort(values[order][6:])  # the six smallest are translations and rotations


def global_k(atoms: Atoms, calc: Calculator) -> float:
    """Sensitivity's global K (eV) at σ = 0.01 Å, k = 1, 2, 4, 8, 25 perturbations each."""
    config = SensitivityConfig(sigmas=(0.01,), repeats=25, site_repeats=1)
    return run_sensitivity(atoms, calc, config, progress=False).global_k


def calibration_family(name: str) -> str:
    """The corpus family whose conformal quantiles a benchmark family's intervals take, as
    the workflow that visits it asks for them (a model without them uses its pooled ones)."""
    return {"test": "isomer", "rattled": "rattle", "MD": "md", "unphysical": "isomer"}[
        name.split()[0]
    ]


def load_calculators(specs: tuple[str, ...]) -> dict[str, Calculator]:
    """The reference and the models of ``specs`` (shipped names that exist, or trained model
    folders, named by their folder), as calculators on the CPU."""
    from ase_au20.calculators.factory import make_calculator

    calcs = {
        Path(spec).name: make_calculator(spec, device="cpu")
        for spec in specs
        if spec not in MODELS or (PRETRAINED_DIR / spec / "card.json").is_file()
    }
    return {"dftb": make_calculator("dftb"), **calcs}


def domain_precision_recall(families: list[Any]) -> dict[str, float]:
    """How well the out-of-domain verdict flags the structures whose reference error exceeds
    three widths of their calibrated interval (before its growth outside the domain, which
    would hide the very errors the verdict is for), over every family: precision, recall
    and the counts."""
    error = np.concatenate([np.abs(f.model_energy - f.reference_energy) for f in families])
    width = np.concatenate([2 * f.calibrated_half_width() for f in families])
    flagged = ~np.concatenate([np.asarray(f.in_domain, dtype=bool) for f in families])
    large = error > 3 * width
    hits = int((flagged & large).sum())
    return {
        "n": int(len(error)),
        "flagged": int(flagged.sum()),
        "large_errors": int(large.sum()),
        "precision": hits / flagged.sum() if flagged.any() else float("nan"),
        "recall": hits / large.sum() if large.any() else float("nan"),
    }


def score_evaluable(
    calc: Calculator, name: str, structures: list[Atoms], truth: ReferenceLabels
) -> tuple[FamilyScore, int]:
    """``score_family`` on the structures ``calc`` gives a number for, and how many it
    refused: a model whose physical baseline fails on a structure (xtb-delta's GFN1-xTB
    SCF on a collapsed cluster) raises a ValueError for it, a verdict of its own."""
    try:
        return score_family(calc, name, structures, truth), 0
    except ValueError:
        keep = []
        for k, atoms in enumerate(structures):
            try:
                predict_batch(calc, [atoms], ("energy",))
            except ValueError:
                continue
            keep.append(k)
        part = ReferenceLabels(truth.energy[keep], [truth.forces[k] for k in keep])
        scored = score_family(calc, name, [structures[k] for k in keep], part)
        return scored, len(structures) - len(keep)


def misordered_close_pairs(predicted: np.ndarray, true: np.ndarray, gap: float = 0.5) -> float:
    """The share of isomer pairs closer than ``gap`` eV in the reference that a model orders
    the other way round."""
    i, j = np.triu_indices(len(true), 1)
    close = np.abs(true[i] - true[j]) < gap
    wrong = np.sign(predicted[i] - predicted[j]) != np.sign(true[i] - true[j])
    return float(wrong[close].mean())


def main() -> None:
    """Build the families, label them, score every model, print and save the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/bench"), help="work folder")
    parser.add_argument("--quick", action="store_true", help="a few structures per family")
    parser.add_argument(
        "--report",
        type=Path,
        default=DOCS,
        help="folder of the docs page truth.md and its truth.json (full runs only)",
    )
    parser.add_argument(
        "--models",
        default=",".join(MODELS),
        help="comma-separated shipped model names or trained model folders to score",
    )
    args = parser.parse_args()
    budget = QUICK if args.quick else FULL
    seed_db, _ = ensure_databases(args.out, data_dir())
    clock = time.perf_counter()
    with threadpool_limits(1):
        calcs = load_calculators(tuple(m for m in args.models.split(",") if m))
        reference = calcs.pop("dftb")
        test = load_rows(seed_db, split="test")
        isomers = [Atoms(a.numbers, positions=a.positions) for a in test.atoms[: budget.isomers]]
        families: dict[str, list[Atoms]] = {"test isomers": isomers}
        for k, sigma in enumerate(RATTLES):
            families[f"rattled σ={sigma:g} Å"] = rattled(isomers, sigma, budget.rattled, k)
        for temperature in TEMPERATURES:
            families[f"MD {temperature} K"] = md_frames(
                isomers, reference, temperature, budget, args.out
            )
        corpus = unphysical_corpus(isomers, budget.unphysical, seed=0)
        families[f"unphysical ({len(KINDS)} kinds)"] = [a for _, a in corpus]
        truth = {name: ReferenceLabels.of(reference, s) for name, s in families.items()}
        print(f"families built and labelled in {time.perf_counter() - clock:.0f} s")

        table: dict[str, dict[str, Any]] = {}
        for model, calc in calcs.items():
            scored = {}
            refused = {}
            for name, structures in families.items():
                with intervals_for(calc, calibration_family(name)):
                    scored[name], refused[name] = score_evaluable(
                        calc, name, structures, truth[name]
                    )
            scores = {
                name: {**family.metrics(), "refused": refused[name]}
                for name, family in scored.items()
            }
            scores["domain verdict"] = domain_precision_recall(list(scored.values()))
            first = scored["test isomers"]
            scores["test isomers"]["misordered_close_pairs"] = misordered_close_pairs(
                first.model_energy, first.reference_energy
            )
            starts = budget.search_starts // (3 if model == "xtb-delta" else 1)
            minima = search_minima(calc, max(starts, 1))
            with intervals_for(calc, "minima"):
                scores["search minima"] = score_family(
                    calc, "search minima", minima, ReferenceLabels.of(reference, minima)
                ).metrics()
            table[model] = scores
            print(f"{model}: scored in {time.perf_counter() - clock:.0f} s")

        every = load_rows(seed_db)
        td = every.atoms[int(np.flatnonzero(every.ids == TD_ID)[0])]
        td = Atoms(td.numbers, positions=td.positions)
        stiffness: dict[str, dict[str, Any]] = {}
        for name, calc in {"dftb": reference, **calcs}.items():
            minimum = relaxed(td, calc)
            stiffness[name] = {
                "frequencies_cm": frequencies(minimum, calc, args.out / f"vib-{name}").tolist(),
                "global_k": global_k(minimum, calc),
            }
            print(f"{name}: Td frequencies and K in {time.perf_counter() - clock:.0f} s")

    report = {"budget": budget.__dict__, "families": table, "td": stiffness}
    (args.out / "truth.json").write_text(json.dumps(report, indent=2) + "\n")
    print_report(report)
    if not args.quick:
        write_markdown(report, args.report)
        write_headline(report, README)
        print(f"\nreport written to {args.report}/truth.md and truth.json, headline to {README}")


def write_markdown(report: dict[str, Any], folder: Path) -> None:
    """The docs page of a run (``truth.md``) and its figures (``truth.json``)."""
    lines = [
        "# The truth off the minima",
        "",
        "Every shipped model (and any model folder given with `--models`, named by its folder)",
        "against the DFTB1 reference (auorg-1-1), on the families of",
        "structures the workflows visit, each labelled by the reference; written by",
        "`python benchmarks/truth.py` (`make bench`), figures in `truth.json` beside this page.",
        "Structures per family: "
        + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in report["budget"].items())
        + ".",
        "",
    ]
    for model, scores in report["families"].items():
        lines += [
            f"## {model}",
            "",
            "| family | n | energy MAE (eV) | force MAE (eV/Å) | 90 % coverage | mean width (eV) "
            "| in domain |",
            "|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {name} | {m['n']} | {m['energy_mae']:.3f} | {m['force_mae']:.3f} | "
            f"{m['coverage']:.2f} | {m['mean_width']:.2f} | {m['in_domain']:.2f} |"
            for name, m in scores.items()
            if name != "domain verdict"
        ]
        verdict = scores["domain verdict"]
        lines += [
            "",
            "Out-of-domain verdict against reference errors above three widths of the "
            "calibrated interval (before its growth outside the domain), every family: "
            f"{verdict['flagged']} flagged, {verdict['large_errors']} large errors of "
            f"{verdict['n']}; precision {verdict['precision']:.2f}, recall "
            f"{verdict['recall']:.2f}.",
        ]
        lines += [
            f"\nRefused (an error instead of a number): {m['refused']} of "
            f"{m['n'] + m['refused']} {name}."
            for name, m in scores.items()
            if m.get("refused")
        ]
        wrong = scores["test isomers"].get("misordered_close_pairs", float("nan"))
        lines += ["", f"Test isomer pairs closer than 0.5 eV, ordered wrongly: {wrong:.1%}.", ""]
    td = report["td"]
    ref = np.array(td["dftb"]["frequencies_cm"])
    lines += [
        "## The Td pyramid: harmonic frequencies and global K",
        "",
        "Each calculator relaxes the pyramid itself; K is sensitivity's mean |ΔE| of",
        "σ = 0.01 Å perturbations.",
        "",
        "| calculator | lowest (cm⁻¹) | highest (cm⁻¹) | mode / reference | K (meV) "
        "| K / reference |",
        "|---|---|---|---|---|---|",
    ]
    for name, values in td.items():
        freq = np.array(values["frequencies_cm"])
        ratio = freq / ref
        k_ratio = values["global_k"] / td["dftb"]["global_k"]
        lines.append(
            f"| {name} | {freq.min():.1f} | {freq.max():.1f} | {ratio.min():.2f}–{ratio.max():.2f}"
            f" | {1e3 * values['global_k']:.2f} | {k_ratio:.2f} |"
        )
    publish(folder, "truth", report, lines)


def print_report(report: dict[str, Any]) -> None:
    """The per-family table of every model and the Td stiffness against the reference."""
    print("\nAgainst DFTB1 (auorg-1-1): energy MAE (eV), force MAE (eV/Å), 90 % coverage,")
    print("mean interval width (eV), in-domain share")
    for model, scores in report["families"].items():
        print(f"\n{model}")
        head = f"  {'family':<20}{'n':>5}{'E MAE':>8}{'F MAE':>8}{'cover':>7}{'width':>9}"
        print(head + f"{'in dom.':>8}")
        for name, m in scores.items():
            if name == "domain verdict":
                print(
                    f"  domain verdict: {m['flagged']} flagged, {m['large_errors']} errors above "
                    f"3 interval widths of {m['n']}; precision {m['precision']:.2f}, recall "
                    f"{m['recall']:.2f}"
                )
                continue
            print(
                f"  {name:<20}{m['n']:>5}{m['energy_mae']:>8.3f}{m['force_mae']:>8.3f}"
                f"{m['coverage']:>7.2f}{m['mean_width']:>9.2f}{m['in_domain']:>8.2f}"
            )
        for name, m in scores.items():
            if m.get("refused"):
                print(f"  refused (an error instead of a number): {m['refused']} {name}")
        wrong = scores["test isomers"].get("misordered_close_pairs", float("nan"))
        print(f"  test isomer pairs closer than 0.5 eV, ordered wrongly: {wrong:.1%}")
    td = report["td"]
    ref = np.array(td["dftb"]["frequencies_cm"])
    print("\nTd pyramid relaxed by each: harmonic frequencies (cm⁻¹) and global K at σ = 0.01 Å")
    head = f"  {'calculator':<11}{'lowest':>8}{'highest':>9}{'mode ratio':>16}{'K (meV)':>9}"
    print(head + f"{'K ratio':>9}")
    for name, values in td.items():
        freq = np.array(values["frequencies_cm"])
        ratio = freq / ref
        print(
            f"  {name:<11}{freq.min():>8.1f}{freq.max():>9.1f}"
            f"{f'{ratio.min():.2f}–{ratio.max():.2f}':>16}{1e3 * values['global_k']:>9.2f}"
            f"{values['global_k'] / td['dftb']['global_k']:>9.2f}"
        )


if __name__ == "__main__":
    main()
