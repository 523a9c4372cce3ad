"""How much corpus does the surface need? SchNet error per family against training frames.

One network of the force recipe's architecture is trained on nested random subsets of the
corpus's training frames (beside the training isomers), for the same number of optimiser
steps at every size, so that a larger set is not also a longer training; once on energies
and forces (``force_weight`` of the recipe), once on energies alone (``--no-forces`` off:
both), which says what the force labels buy. Each network is scored on the test frames of
every family (up to ``--per-family`` each) and on the test isomers: energy MAE per cluster
and force MAE against the reference. The slope of log MAE against log N over the two
largest sizes says what a doubling of the corpus buys.

Run: ``python benchmarks/surface_curve.py --db runs/au20-seed.db`` (about 40 min on 2 cores
at the defaults; a database without a corpus gets the default one first); writes
``surface-curve.md``, ``.json`` and ``.png`` into ``docs/benchmarks``.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from docs_page import DOCS, publish

from ase_au20.database import load_rows
from ase_au20.database.corpus import ISOMER_FAMILY, Corpus, balanced_by_family, load_corpus
from ase_au20.models.schnet.config import force_config
from ase_au20.models.schnet.training import train_schnet

SIZES = (1000, 3000, 10000, 0)  # 0: every training frame
VAL_FRAMES = 600  # validation frames scored after every epoch (early stopping)


def score(model: Any, frames: Corpus, isomers: Any) -> dict[str, dict[str, float]]:
    """Energy MAE (eV per cluster) and force MAE (eV/Å) on each test family and the isomers."""
    out: dict[str, dict[str, float]] = {}
    predicted = model.predict([frames.atoms(i) for i in range(len(frames))], forces=True)
    energy_error = np.abs(predicted["energy"] - frames.energies)
    force_error = np.abs(np.asarray(predicted["forces"]) - frames.forces).mean(axis=(1, 2))
    for name in sorted(set(frames.families.tolist())):
        mask = frames.families == name
        out[name] = {
            "n": int(mask.sum()),
            "energy_mae": float(energy_error[mask].mean()),
            "force_mae": float(force_error[mask].mean()),
        }
    minima = model.predict(isomers.atoms, forces=True)
    out[ISOMER_FAMILY] = {
        "n": len(isomers),
        "energy_mae": float(np.abs(minima["energy"] - isomers.energies).mean()),
        "force_mae": float(np.abs(np.asarray(minima["forces"])).mean()),  # reference: zero
    }
    return out


def curve(args: argparse.Namespace) -> dict[str, Any]:
    """Train and score one network per size and variant; the rows of the report."""
    train, val = load_rows(args.db, "train"), load_rows(args.db, "val")
    frames = load_corpus(args.db, "train")
    val_frames = load_corpus(args.db, "val")
    val_frames = val_frames.subset(np.linspace(0, len(val_frames) - 1, VAL_FRAMES).astype(int))
    test = balanced_by_family(load_corpus(args.db, "test"), args.per_family)
    test_isomers = load_rows(args.db, "test")
    order = np.random.default_rng(args.seed).permutation(len(frames))
    base = force_config(ensemble=1, workers=args.workers, patience=10**6, seed=args.seed)
    rows = []
    variants = [("energies and forces", base.force_weight)]
    if args.both:
        variants.append(("energies only", 0.0))
    for size in args.sizes:
        n = len(frames) if size == 0 or size > len(frames) else size
        subset = frames.subset(order[:n])
        epochs = max(1, math.ceil(args.steps * base.batch_size / (n + len(train))))
        for variant, force_weight in variants:
            config = replace(base, epochs=epochs, force_weight=force_weight)
            start = time.perf_counter()
            # with force_weight 0 the frames' energies train and their forces are left out
            corpus = (subset, val_frames)
            model = train_schnet(train, val, config, progress=not args.quiet, corpus=corpus)
            row = {
                "variant": variant,
                "frames": n,
                "force_labels": n * 60 if force_weight > 0 else 0,
                "epochs": epochs,
                "seconds": time.perf_counter() - start,
                "families": score(model, test, test_isomers),
            }
            rows.append(row)
            print_row(row)
    return {"steps": args.steps, "batch_size": base.batch_size, "rows": rows}


def print_row(row: dict[str, Any]) -> None:
    """One line per trained network: size, variant, energy / force MAE per family."""
    cells = "  ".join(
        f"{name} {m['energy_mae']:.3f}/{m['force_mae']:.3f}" for name, m in row["families"].items()
    )
    print(
        f"{row['variant']:<20} {row['frames']:>6} frames {row['epochs']:>4} epochs "
        f"{row['seconds']:>6.0f} s  {cells}",
        flush=True,
    )


def slopes(rows: list[dict[str, Any]], variant: str) -> dict[str, float]:
    """d log(energy MAE) / d log N between the two largest sizes, per family."""
    mine = sorted((r for r in rows if r["variant"] == variant), key=lambda r: r["frames"])
    if len(mine) < 2:
        return {}
    small, large = mine[-2], mine[-1]
    ratio = math.log(large["frames"] / small["frames"])
    return {
        name: math.log(large["families"][name]["energy_mae"] / m["energy_mae"]) / ratio
        for name, m in small["families"].items()
    }


def plot(report: dict[str, Any], path: Path) -> None:
    """Energy and force MAE per family against training frames (log-log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
    rows = report["rows"]
    names = list(rows[0]["families"])
    for k, name in enumerate(names):
        for variant, style in (("energies and forces", "-o"), ("energies only", "--s")):
            mine = sorted((r for r in rows if r["variant"] == variant), key=lambda r: r["frames"])
            if not mine:
                continue
            n = [r["frames"] for r in mine]
            for ax, key in zip(axes, ("energy_mae", "force_mae"), strict=True):
                label = name if variant == "energies and forces" else None
                values = [r["families"][name][key] for r in mine]
                ax.loglog(n, values, style, color=f"C{k}", ms=4, label=label)
    axes[0].set_ylabel("energy MAE (eV per cluster)")
    axes[1].set_ylabel("force MAE (eV/Å)")
    for ax in axes:
        ax.set_xlabel("training frames (beside the 529 isomers)")
        ax.grid(alpha=0.3, which="both")
    fig.legend(  # below the panels, clear of every curve
        *axes[0].get_legend_handles_labels(),
        loc="lower center",
        ncol=len(names),
        fontsize=8,
        title="solid: with forces; dashed: energies only",
        title_fontsize=8,
    )
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(report: dict[str, Any], folder: Path) -> None:
    """surface-curve.json, .png and the Markdown page with one table per variant."""
    folder.mkdir(parents=True, exist_ok=True)  # the plot goes in before the page
    plot(report, folder / "surface-curve.png")
    rows = report["rows"]
    names = list(rows[0]["families"])
    lines = [
        "# How much corpus the surface needs",
        "",
        "One SchNet of the force recipe's architecture per row, trained on a random subset of",
        "the corpus's training frames beside the training isomers for the same number of",
        f"optimiser steps ({report['steps']} batches of {report['batch_size']}), scored against",
        "the reference on the test frames of every family and the test isomers (energy MAE in",
        "eV per cluster / force MAE in eV/Å; at the isomers the reference force is zero).",
        "Written by `python benchmarks/surface_curve.py`; figures in `surface-curve.json`.",
        "",
        "![error against training frames](surface-curve.png)",
        "",
    ]
    for variant in dict.fromkeys(r["variant"] for r in rows):
        lines += [
            f"## {variant}",
            "",
            "| frames | force labels | epochs | " + " | ".join(names) + " |",
            "|---|---|---|" + "---|" * len(names),
        ]
        for r in rows:
            if r["variant"] != variant:
                continue
            cells = " | ".join(
                f"{r['families'][n]['energy_mae']:.3f} / {r['families'][n]['force_mae']:.3f}"
                for n in names
            )
            lines.append(f"| {r['frames']} | {r['force_labels']} | {r['epochs']} | {cells} |")
        slope = slopes(rows, variant)
        if slope:
            lines += [
                "",
                "Slope of log energy MAE against log N over the two largest sizes: "
                + ", ".join(f"{n} {v:+.2f}" for n, v in slope.items())
                + ".",
            ]
        lines.append("")
    publish(folder, "surface-curve", report, lines)


def draw_corpus(db: Path, quiet: bool) -> None:
    """The default corpus of ``db`` (``au20-workflow sample``: about 25 min on 2 cores)."""
    from ase_au20.compute.engine import open_engine
    from ase_au20.database import connect
    from ase_au20.workflows.corpus.sample import sample_corpus
    from ase_au20.workflows.corpus.settings import SampleSettings

    print(f"{db} has no corpus: drawing the default one (au20-workflow sample)", flush=True)
    with open_engine("local") as engine:
        sample_corpus(connect(db), SampleSettings(), engine, model="schnet", progress=not quiet)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True, help="seed-split db with a corpus")
    parser.add_argument(
        "--sizes",
        type=lambda text: tuple(int(v) for v in text.split(",")),
        default=SIZES,
        help="training frames per network, comma-separated (0: all) [1000,3000,10000,0]",
    )
    parser.add_argument("--steps", type=int, default=3000, help="optimiser steps per network")
    parser.add_argument("--per-family", type=int, default=400, help="test frames per family")
    parser.add_argument("--workers", type=int, default=2, help="data-parallel CPU processes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--no-both", dest="both", action="store_false", help="skip the energies-only networks"
    )
    parser.add_argument("--report", type=Path, default=DOCS, help="folder of the docs page")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if not args.db.is_file():
        parser.error(f"database not found: {args.db}")
    if len(load_corpus(args.db, "test")) == 0:
        draw_corpus(args.db, args.quiet)
    report = curve(args)
    write_report(report, args.report)
    print(f"report written to {args.report}/surface-curve.md, .json and .png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
