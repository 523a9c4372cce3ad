"""Everything a sensitivity run leaves in its output folder, and its stdout table."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from ase.io import write

from ase_au20.viz import plot_site_values_3d, write_bfactor_pdb, write_vmd_script
from ase_au20.workflows.results import Results, write_results
from ase_au20.workflows.sensitivity import SensitivityResult
from ase_au20.workflows.sensitivity_plots import (
    plot_abs_de_by_sigma,
    plot_abs_de_vs_rmsd,
    plot_site_stiffness,
)
from ase_au20.workflows.structure_files import predicted_structure, reference_level

N_EXTREME_SITES = 5


def to_results(
    result: SensitivityResult, parameters: dict[str, Any], model_card: dict[str, Any]
) -> Results:
    """The HDF5 layout: samples/, site_samples/, summary/, sites/, global/, fit/, structure/."""
    res = Results(parameters=parameters, model_card=model_card)
    units = {
        "sigma": "Å",
        "rmsd": "Å",
        "energy_base": "eV",
        "energy": "eV",
        "delta_e": "eV",
        "abs_delta_e": "eV",
        "uncertainty": "eV",
        "delta_uncertainty": "eV",
        "k": "",
        "repeat": "",
        "site": "",
    }
    for group, table in (("samples", result.samples), ("site_samples", result.site_samples)):
        for column in table.columns:
            if column != "indices":
                res.add(f"{group}/{column}", table[column].to_numpy(), units[column])
    padded = np.full((len(result.samples), max(result.config.ks)), -1, dtype=int)
    for row, chosen in enumerate(result.samples["indices"]):
        padded[row, : len(chosen)] = chosen
    res.add("samples/indices", padded, "", "perturbed atom indices, padded with -1")
    summary_units = {
        "sigma": "Å",
        "k": "",
        "mean_abs_de": "eV",
        "rmse_de": "eV",
        "mean_rmsd": "Å",
        "std_abs_de": "eV",
        "n": "",
    }
    for column, unit in summary_units.items():
        res.add(f"summary/{column}", result.summary[column].to_numpy(), unit)
    res.add(
        "summary/share_resolvable",
        result.summary["share_resolvable"].to_numpy(),
        "",
        "share of samples with |ΔE| above the uncertainty of ΔE itself, z times the "
        "ensemble members' spread of their ΔE (NaN: the calculator has no ensemble)",
    )
    site_units = {
        "site": "",
        "K": "eV",
        "K_std": "eV",
        "n": "",
        "harmonic_stiffness": "eV/Å^2",
        "harmonic_expected_de": "eV",
    }
    for column, unit in site_units.items():
        res.add(f"sites/{column}", result.sites[column].to_numpy(), unit)
    res.add(
        "sites/hessian_blocks",
        result.hessian_blocks,
        "eV/Å^2",
        "diagonal 3x3 Hessian blocks by central differences of forces",
    )
    res.add("global/K", result.global_k, "eV", "mean |ΔE| over all k at the smallest sigma")
    res.add("global/K_sigma", result.config.sigmas[0], "Å")
    res.add("fit/slope", result.slope, "", "slope of log10|ΔE| vs log10 RMSD")
    res.add("fit/slope_stderr", result.slope_stderr, "")
    res.add("fit/intercept", result.intercept, "log10(eV)", "log10|ΔE| at RMSD = 1 Å")
    res.add("structure/positions", result.structure.get_positions(), "Å")
    res.add("structure/numbers", result.structure.get_atomic_numbers(), "")
    res.add("structure/energy", result.base_energy, "eV")
    res.add("structure/energy_uncertainty", result.base_uncertainty, "eV")
    res.add("structure/fmax", result.base_fmax, "eV/Å", "largest force on the base structure")
    return res


SITE_UNIT = "meV"  # per-site energies in the PNGs, the CSV and the PDB B-factors alike
SITE_SCALE = 1e3  # eV -> SITE_UNIT


def extreme_sites(result: SensitivityResult, n: int = N_EXTREME_SITES) -> pd.DataFrame:
    """The n stiffest and n softest sites, stiffest first, ranked by the Hessian block's
    expected |ΔE| σ²·tr(H_ii)/2 (exact, no sampling noise), with the Monte Carlo K_i beside
    it as a check (energies in meV)."""
    ranked = result.sites.sort_values("harmonic_expected_de", ascending=False)
    ranked = ranked.reset_index(drop=True)
    n = min(n, len(ranked) // 2) or 1
    top = ranked.head(n).assign(rank=np.arange(1, n + 1), group="top")
    bottom = ranked.tail(n).assign(
        rank=np.arange(len(ranked) - n + 1, len(ranked) + 1), group="bottom"
    )
    columns = ["group", "rank", "site", "harmonic_expected_de", "K", "K_std", "harmonic_stiffness"]
    table = pd.concat([top, bottom])[columns]
    for column in ("K", "K_std", "harmonic_expected_de"):
        table[column] = SITE_SCALE * table[column]
    return table.rename(
        columns={
            "harmonic_expected_de": f"hessian_expected_de_{SITE_UNIT}",
            "K": f"K_{SITE_UNIT}",
            "K_std": f"K_std_{SITE_UNIT}",
            "harmonic_stiffness": "harmonic_stiffness_eV_per_A2",
        }
    )


def write_outputs(
    result: SensitivityResult,
    out_dir: str | os.PathLike,
    parameters: dict[str, Any],
    model_card: dict[str, Any],
) -> dict[str, Path]:
    """Write the HDF5 file, PNGs, PDB + VMD script, CSV and structure; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    values = SITE_SCALE * result.sites["harmonic_expected_de"].to_numpy()
    sigma = result.config.site_sigma
    label = f"σ²·tr(H_ii)/2 ({SITE_UNIT}): expected |ΔE| of atom i moved by σ = {sigma:g} Å"
    paths = {
        "structure": out / "structure.xyz",
        "abs_de_by_sigma": plot_abs_de_by_sigma(result, out / "abs_de_by_sigma.png"),
        "abs_de_vs_rmsd": plot_abs_de_vs_rmsd(result, out / "abs_de_vs_rmsd.png"),
        "site_stiffness": plot_site_stiffness(result, out / "site_stiffness.png"),
        "site_hessian_3d": plot_site_values_3d(
            result.structure,
            values,
            out / "site_hessian_3d.png",
            "Per-site stiffness from the Hessian blocks",
            label,
        ),
        "pdb": write_bfactor_pdb(result.structure, values, out / "site_hessian.pdb"),
    }
    paths["vmd"] = write_vmd_script(paths["pdb"], out / "site_hessian.tcl", label)
    paths["csv"] = out / "site_extremes.csv"
    extreme_sites(result).to_csv(paths["csv"], index=False)
    structure = predicted_structure(
        result.structure,
        result.base_energy,
        str(parameters.get("calc") or model_card.get("model_type", "unknown")),
        result.base_uncertainty,
        level=reference_level(model_card),
    )
    write(paths["structure"], structure, format="extxyz")
    paths["hdf5"] = write_results(
        out / "sensitivity.h5", to_results(result, parameters, model_card)
    )
    return paths


def format_report(result: SensitivityResult) -> str:
    """Short plain-text summary: the (σ, k) table, K, the slope and the extreme sites."""
    table = result.summary.copy()
    for column in ("mean_abs_de", "rmse_de", "std_abs_de"):
        table[column] = 1e3 * table[column]
    table = table.rename(
        columns={
            "sigma": "σ/Å",
            "mean_abs_de": "mean|ΔE|/meV",
            "rmse_de": "RMSE/meV",
            "mean_rmsd": "RMSD/Å",
            "std_abs_de": "std|ΔE|/meV",
            "share_resolvable": "resolvable",
        }
    )
    extremes = extreme_sites(result)
    k_column, h_column = f"K_{SITE_UNIT}", f"hessian_expected_de_{SITE_UNIT}"
    lines = [
        f"base energy {result.base_energy:.4f} eV"
        + (f" ± {result.base_uncertainty:.3f}" if np.isfinite(result.base_uncertainty) else "")
        + f", largest force {result.base_fmax:.4f} eV/Å",
        table.to_string(index=False, float_format=lambda v: f"{v:.4g}"),
        f"global K (mean |ΔE| at σ = {result.config.sigmas[0]:g} Å): "
        f"{1e3 * result.global_k:.4g} meV",
        f"log-log slope of |ΔE| vs RMSD: {result.slope:.3f} ± {result.slope_stderr:.3f}"
        " (2 = harmonic minimum)",
        "stiffest sites (σ²·tr(H_ii)/2 in meV; Monte Carlo K_i in brackets): "
        + ", ".join(
            f"{int(r.site)}:{getattr(r, h_column):.3g} ({getattr(r, k_column):.3g})"
            for r in extremes[extremes.group == "top"].itertuples()
        ),
        "softest sites: "
        + ", ".join(
            f"{int(r.site)}:{getattr(r, h_column):.3g} ({getattr(r, k_column):.3g})"
            for r in extremes[extremes.group == "bottom"].itertuples()
        ),
    ]
    return "\n".join(lines)
