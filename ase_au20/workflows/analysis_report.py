"""Everything the stability analysis leaves in its output folder, and its stdout table."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

from ase_au20.workflows.analysis import STAT_NAMES, AnalysisResult
from ase_au20.workflows.analysis_plots import plot_energy_distribution, plot_rdf
from ase_au20.workflows.results import Results, write_results

TABLE_UNITS = {
    "cluster_id": "",
    "energy": "eV",
    "delta_e": "eV",
    "dup_group": "",
    "n_copies": "",
    "copy_ids": "",
    "coordination_mean": "",
    "bond_mean": "Å",
    "bond_std": "Å",
    "radius_of_gyration": "Å",
    "asphericity": "",
    "surface_share": "",
    "n_distinct_bonds": "",
    "point_group": "",
}


def to_results(result: AnalysisResult, parameters: dict[str, Any]) -> Results:
    """The HDF5 layout: isomers/, statistics/, lowest/, rdf/, ground_state/."""
    res = Results(
        parameters=parameters,
        model_card={
            "calculator": None,
            "source": "reference DFTB1 (auorg-1-1) energies of the database",
        },
    )
    res.add("isomers/cluster_id", result.ids)
    res.add("isomers/delta_e", result.delta_e, "eV")
    for name in STAT_NAMES:
        unit = "" if name in {"count", "n_distinct", "skewness", "kurtosis"} else "eV"
        res.add(f"statistics/{name}", result.statistics[name], unit)
    for column, unit in TABLE_UNITS.items():
        res.add(f"lowest/{column}", result.lowest[column].to_numpy(), unit)
    res.add("rdf/r", result.r, "Å")
    res.add(
        "rdf/g_ground_state",
        result.g_ground_state,
        "",
        "g(r) with sum 4 pi r^2 rho g dr = N-1 (rho from the gyration sphere)",
    )
    res.add("rdf/g_mean_lowest", result.g_mean_lowest, "")
    res.add("rdf/cutoff", result.cutoff, "Å", "bond cutoff: first g(r) minimum of the data")
    res.add("ground_state/positions", result.lowest_atoms[0].get_positions(), "Å")
    res.add("ground_state/energy", float(result.lowest["energy"].iloc[0]), "eV")
    return res


def write_outputs(
    result: AnalysisResult, out_dir: str | os.PathLike, parameters: dict[str, Any]
) -> dict[str, Path]:
    """Write analysis.h5, energy_distribution.png, rdf.png, ground_state.xyz, lowest.csv."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "energy_distribution": plot_energy_distribution(result, out / "energy_distribution.png"),
        "rdf": plot_rdf(result, out / "rdf.png"),
        "ground_state": out / "ground_state.xyz",
        "table": out / "lowest_isomers.csv",
    }
    ground = Atoms(result.lowest_atoms[0].numbers, positions=result.lowest_atoms[0].positions)
    ground.calc = SinglePointCalculator(ground, energy=float(result.lowest["energy"].iloc[0]))
    ground.info["cluster_id"] = int(result.lowest["cluster_id"].iloc[0])  # a DFTB1 label
    write(paths["ground_state"], ground, format="extxyz")
    result.lowest.to_csv(paths["table"], index=False)
    paths["hdf5"] = write_results(out / "analysis.h5", to_results(result, parameters))
    return paths


def format_report(result: AnalysisResult) -> str:
    """ΔE statistics, the cutoff and the structural table of the lowest isomers as text."""
    s = result.statistics
    stats_line = "  ".join(
        f"{name}={s[name]:.0f}" if name in {"count", "n_distinct"} else f"{name}={s[name]:.3f}"
        for name in STAT_NAMES
    )
    table = result.lowest.drop(columns=["energy", "dup_group"]).rename(
        columns={
            "cluster_id": "id",
            "delta_e": "ΔE/eV",
            "n_copies": "copies",
            "copy_ids": "copy ids",
            "coordination_mean": "CN",
            "bond_mean": "bond/Å",
            "bond_std": "σbond/Å",
            "radius_of_gyration": "Rg/Å",
            "asphericity": "asph",
            "surface_share": "surf",
            "n_distinct_bonds": "nbond",
            "point_group": "PG",
        }
    )
    return "\n".join(
        [
            f"ΔE statistics (eV): {stats_line}",
            f"bond cutoff (first g(r) minimum of the data): {result.cutoff:.2f} Å",
            table.to_string(index=False, float_format=lambda v: f"{v:.3f}"),
        ]
    )
