"""Scoring any calculator against a reference on any structures, one family per source.

Each source (a file, ``file@index``, a folder or a database ``URL@selection``) is a family:
its structures are evaluated by the model and by the reference (DFTB1 for the shipped
data), and the family gets energy and force errors, the coverage and width of the model's
interval, and the share the model calls in its domain. This is how a claim about accuracy
off the minima is measured.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from tqdm.auto import tqdm

from ase_au20.models.domain import inside_uncertainty
from ase_au20.workflows.any_calculator import predict_batch
from ase_au20.workflows.inputs import read_structures

METRICS_NAME = "reference_metrics.json"
PLOT_NAME = "parity_reference.png"


@dataclass
class FamilyScore:
    """Model against reference on one family: per-structure energies and force errors."""

    name: str
    model_energy: np.ndarray
    reference_energy: np.ndarray
    half_width: np.ndarray
    in_domain: np.ndarray
    force_errors: list[np.ndarray] = field(default_factory=list)  # (atoms, 3) each
    domain_score: np.ndarray | None = None  # > 1 outside; None: the calculator gives none

    def calibrated_half_width(self) -> np.ndarray:
        """The half-width before the growth outside the domain (score²): the interval the
        structure would get were it inside, against which the verdict is judged."""
        if self.domain_score is None:
            return self.half_width
        return inside_uncertainty(self.half_width, self.domain_score)

    def metrics(self) -> dict[str, float]:
        """MAE/RMSE/max of energies (eV), MAE/RMSE of force components (eV/Å), interval
        coverage and mean width (eV), in-domain share."""
        error = self.model_energy - self.reference_energy
        forces = (
            np.concatenate([f.ravel() for f in self.force_errors]) if self.force_errors else None
        )
        finite = np.isfinite(self.half_width)
        return {
            "n": len(error),
            "energy_mae": float(np.abs(error).mean()),
            "energy_rmse": float(np.sqrt((error**2).mean())),
            "energy_max": float(np.abs(error).max()),
            "force_mae": float(np.abs(forces).mean()) if forces is not None else float("nan"),
            "force_rmse": float(np.sqrt((forces**2).mean()))
            if forces is not None
            else float("nan"),
            "coverage": float((np.abs(error) <= self.half_width)[finite].mean())
            if finite.any()
            else float("nan"),
            "mean_width": float(2 * self.half_width[finite].mean())
            if finite.any()
            else float("nan"),
            "in_domain": float(np.nanmean(self.in_domain)),
        }


@dataclass(frozen=True)
class ReferenceLabels:
    """The reference's energies (eV) and forces (eV/Å) of a list of structures."""

    energy: np.ndarray
    forces: list[np.ndarray]

    @classmethod
    def of(cls, reference: Calculator, structures: Sequence[Atoms]) -> ReferenceLabels:
        """Label ``structures`` with ``reference``."""
        out = predict_batch(reference, structures, ("energy", "forces"))
        return cls(
            np.asarray(out["energy"], dtype=float),
            [np.asarray(f, dtype=float) for f in out["forces"]],
        )


def score_family(
    calc: Calculator, name: str, structures: Sequence[Atoms], truth: ReferenceLabels
) -> FamilyScore:
    """Evaluate ``structures`` with ``calc`` (energy, forces, interval, verdict) against
    their reference labels ``truth``."""
    verdicts = ("in_domain", "domain_score") if _gives(calc, "in_domain") else ()
    model = predict_batch(calc, structures, ("energy", "forces", *verdicts))
    verdict = model.get("in_domain", np.full(len(structures), np.nan))
    score = model.get("domain_score")
    return FamilyScore(
        name=name,
        model_energy=np.asarray(model["energy"], dtype=float),
        reference_energy=truth.energy,
        half_width=np.asarray(model["energy_uncertainty"], dtype=float),
        in_domain=np.asarray(verdict, dtype=float),
        force_errors=[
            np.asarray(f, dtype=float) - g
            for f, g in zip(model["forces"], truth.forces, strict=True)
        ],
        domain_score=None if score is None else np.asarray(score, dtype=float),
    )


def score_against_reference(
    calc: Calculator,
    reference: Calculator,
    sources: Sequence[str | os.PathLike[str]],
    progress: bool = False,
) -> list[FamilyScore]:
    """One ``FamilyScore`` per source; ValueError for a source without structures."""
    families = []
    for source in tqdm(sources, desc="families", unit="source", disable=not progress):
        structures = [atoms for _, atoms in read_structures([source])]
        if not structures:
            raise ValueError(f"{os.fspath(source)}: no structures")
        truth = ReferenceLabels.of(reference, structures)
        families.append(score_family(calc, os.fspath(source), structures, truth))
    return families


def write_report(
    families: Sequence[FamilyScore], out: str | os.PathLike[str], about: dict[str, Any]
) -> dict[str, Any]:
    """``reference_metrics.json`` (``about`` plus each family's metrics) and a parity plot
    of energies and forces, coloured by family, into ``out``; returns the metrics."""
    from ase_au20.models.card import json_safe

    out = Path(out)
    metrics = {**about, "families": {f.name: f.metrics() for f in families}}
    (out / METRICS_NAME).write_text(json.dumps(json_safe(metrics), indent=2) + "\n")
    _plot(families, out / PLOT_NAME, str(about.get("reference", "reference")))
    return metrics


def format_families(metrics: dict[str, Any]) -> str:
    """The families' metrics as a plain-text table."""
    head = f"{'family':<32}{'n':>5}{'E MAE':>9}{'E max':>9}{'F MAE':>8}{'cover':>7}{'width':>8}"
    head += f"{'in dom.':>8}"
    lines = [head, "-" * len(head)]
    for name, m in metrics["families"].items():
        label = name if len(name) <= 31 else "…" + name[-30:]
        lines.append(
            f"{label:<32}{m['n']:>5}{m['energy_mae']:>9.4f}{m['energy_max']:>9.4f}"
            f"{m['force_mae']:>8.4f}{m['coverage']:>7.2f}{m['mean_width']:>8.3f}{m['in_domain']:>8.2f}"
        )
    lines.append("eV and eV/Å; cover: share of reference energies inside the model's interval")
    return "\n".join(lines)


def _gives(calc: Calculator, prop: str) -> bool:
    return prop in getattr(calc, "implemented_properties", ())


def _plot(families: Sequence[FamilyScore], path: Path, reference: str) -> None:
    """Model against reference energies (relative to the lowest reference) and force
    components, one colour per family."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ase_au20.plotting import save_figure

    low = min(float(f.reference_energy.min()) for f in families)
    fig, (ax_e, ax_f) = plt.subplots(1, 2, figsize=(11, 5))
    for family in families:
        ax_e.scatter(
            family.reference_energy - low,
            family.model_energy - low,
            s=10,
            label=f"{Path(family.name).name} (n={len(family.model_energy)})",
        )
        if family.force_errors:
            ax_f.hist(
                np.concatenate([f.ravel() for f in family.force_errors]),
                bins=60,
                histtype="step",
                label=Path(family.name).name,
            )
    lims = ax_e.get_xlim()
    ax_e.plot(lims, lims, "k--", lw=0.8, label="model = reference")
    ax_e.set(
        xlabel=f"{reference} energy above its lowest here (eV)",
        ylabel="model energy on the same scale (eV)",
        title="Energies against the reference",
    )
    ax_e.legend(fontsize=8)
    ax_f.set(
        xlabel="model − reference force component (eV/Å)",
        ylabel="count",
        title="Force errors",
    )
    ax_f.legend(fontsize=8)
    save_figure(fig, path)
