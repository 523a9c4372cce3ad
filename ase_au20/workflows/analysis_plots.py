"""PNG figures of the stability analysis: the ΔE distribution and g(r) with its cutoff."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from scipy.stats import gaussian_kde

from ase_au20.geometry.rdf import smooth_rdf
from ase_au20.plotting import save_figure
from ase_au20.workflows.analysis import AnalysisResult

SMOOTH = 0.05  # Å, Gaussian broadening of the plotted g(r) (the cutoff uses the same)


def plot_energy_distribution(result: AnalysisResult, path: str | os.PathLike) -> Path:
    """Histogram of ΔE (density) with a Gaussian KDE, the median and the lowest isomers."""
    delta_e = result.delta_e
    fig = Figure(figsize=(7.0, 4.4), layout="constrained")
    ax = fig.subplots()
    ax.hist(
        delta_e,
        bins=40,
        density=True,
        color="tab:blue",
        alpha=0.45,
        edgecolor="white",
        label=f"{len(delta_e)} isomers",
    )
    grid = np.linspace(delta_e.min() - 0.5, delta_e.max() + 0.5, 400)
    ax.plot(grid, gaussian_kde(delta_e)(grid), color="tab:blue", lw=2, label="Gaussian KDE")
    median = result.statistics["median"]
    ax.axvline(median, color="k", ls="--", lw=1, label=f"median {median:.2f} eV")
    lowest = result.lowest["delta_e"].to_numpy()
    ax.plot(
        lowest,
        np.full_like(lowest, 0.03),
        "|",
        color="tab:red",
        ms=14,
        mew=2,
        transform=ax.get_xaxis_transform(),
        label=f"{len(lowest)} lowest distinct",
    )
    s = result.statistics
    ax.set_title(
        f"ΔE above the lowest isomer — mean {s['mean']:.2f}, std {s['std']:.2f} eV, "
        f"skew {s['skewness']:.2f}"
    )
    ax.set_xlabel("ΔE (eV)")
    ax.set_ylabel("density (1/eV)")
    ax.set_xlim(grid[0], grid[-1])
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=9)
    return save_figure(fig, path)


def plot_rdf(result: AnalysisResult, path: str | os.PathLike) -> Path:
    """g(r) of the ground state and the mean over the lowest isomers, the bond cutoff marked."""
    fig = Figure(figsize=(7.0, 4.4), layout="constrained")
    ax = fig.subplots()
    ground_id = int(result.lowest["cluster_id"].iloc[0])
    ax.plot(
        result.r,
        smooth_rdf(result.r, result.g_ground_state, SMOOTH),
        color="0.55",
        lw=1,
        label=f"ground state (id {ground_id})",
    )
    ax.plot(
        result.r,
        smooth_rdf(result.r, result.g_mean_lowest, SMOOTH),
        color="tab:blue",
        lw=2,
        label=f"mean of {len(result.lowest)} lowest",
    )
    ax.axvline(
        result.cutoff,
        color="tab:red",
        ls="--",
        lw=1.5,
        label=f"bond cutoff {result.cutoff:.2f} Å (first g(r) minimum of all isomers)",
    )
    reach = result.r[np.flatnonzero(result.g_mean_lowest > 0).max()] + 0.5
    ax.set_xlim(2.0, reach)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("r (Å)")
    ax.set_ylabel("g(r)")
    ax.set_title(f"Radial distribution g(r), Gaussian-smoothed ({SMOOTH} Å)")
    ax.legend(fontsize=9)
    return save_figure(fig, path)
