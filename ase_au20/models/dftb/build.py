"""Build the shipped DFTB1 reference directory: table, card with its label check, domain.

    python -m ase_au20.models.dftb.build --db au20.db --out ase_au20/models/pretrained/dftb

Nothing is fitted: the card records how well the method reproduces every labelled isomer
of ``db`` (the check that it is the data's level of theory), and the domain holds the
geometric checks of those isomers only.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ase_au20.database import load_rows
from ase_au20.models.card import new_card
from ase_au20.models.dftb.model import CITATION, LEVEL, TABLE_NAME, DFTBModel
from ase_au20.models.dftb.skf import SlaterKosterTable
from ase_au20.models.domain import attach_domain
from ase_au20.paths import PRETRAINED_DIR

SHIPPED_TABLE = PRETRAINED_DIR / "dftb" / TABLE_NAME


def build_reference(
    db: str | os.PathLike[str],
    out: str | os.PathLike[str],
    table: str | os.PathLike[str] = SHIPPED_TABLE,
    progress: bool = True,
) -> DFTBModel:
    """Write the DFTB1 model of ``table`` into ``out`` with its label check on ``db``."""
    isomers = load_rows(db)
    if len(isomers) == 0:
        raise ValueError(f"{db}: no labelled isomers to check the reference against")
    model = DFTBModel(SlaterKosterTable.read(table))
    energy = np.array(
        [
            model.predict([atoms], forces=False)["energy"][0]
            for atoms in tqdm(isomers.atoms, desc="DFTB1 labels", disable=not progress)
        ]
    )
    error = np.abs(energy - isomers.energies)
    metrics = {
        "labels": {
            "n": len(error),
            "median_abs_error": float(np.median(error)),
            "max_abs_error": float(error.max()),
            "above_1e-3_eV": int((error > 1e-3).sum()),
        }
    }
    model.card = new_card(
        model_type="dftb",
        architecture={
            "method": "non-self-consistent DFTB (DFTB1)",
            "level": LEVEL,
            "basis": "6s 6p 5d per Au (9 orbitals), 11 valence electrons",
            "energy": "band energy Σ f ε at the electronic temperature + repulsive spline",
            "interpolation": "cubic spline on the table's grid; a quintic tail to zero over "
            "1 bohr past its end",
            "citation": CITATION,
            "licence": "auorg-1-1 tables: CC BY-SA 4.0 (LICENSE beside the table)",
        },
        hyperparameters={"electronic_temperature_hartree": model.electronic_temperature},
        features={"table": TABLE_NAME},
        energy_reference=float(isomers.energies.min()),
        bucket_edges=np.percentile(isomers.delta_e, [25, 75]).tolist(),
        training_ids=[],
        split_scheme="none: the reference method, not fitted to the labels",
        metrics=metrics,
        conformal=None,
    )
    model.card["reference"] = {
        "level": LEVEL,
        "interval": "width 0: the method is the level of theory of the labels",
    }
    model.save(out)
    attach_domain(out, isomers.atoms, model, geometric_only=True)
    return model


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point (see module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True, help="labelled isomer database (db build)")
    parser.add_argument("--out", default=str(PRETRAINED_DIR / "dftb"), help="model folder")
    parser.add_argument("--table", default=str(SHIPPED_TABLE), help="homonuclear .skf file")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    model = build_reference(args.db, args.out, args.table, progress=not args.quiet)
    labels = model.card["metrics"]["labels"]
    print(
        f"DFTB1 against {labels['n']} labels: median |ΔE| {labels['median_abs_error']:.2e} eV, "
        f"max {labels['max_abs_error']:.2e} eV → {Path(args.out)}"
    )


if __name__ == "__main__":
    main()
