"""PNG figures of a sensitivity run (matplotlib without pyplot: no global state, no GUI)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ase_au20.plotting import save_figure
from ase_au20.workflows.sensitivity import SensitivityResult

K_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")


def plot_abs_de_by_sigma(result: SensitivityResult, path: str | os.PathLike) -> Path:
    """Box plots of |ΔE| (meV, log scale) against σ, one panel per number of moved atoms k."""
    samples = result.samples
    ks = sorted(samples["k"].unique())
    sigmas = sorted(samples["sigma"].unique())
    cols = min(len(ks), 4)
    rows = int(np.ceil(len(ks) / cols))
    fig = Figure(figsize=(3.4 * cols, 3.4 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, sharey=True, squeeze=False)).ravel()
    for ax, k in zip(axes, ks, strict=False):
        data = [
            1e3 * samples.loc[(samples["k"] == k) & (samples["sigma"] == s), "abs_delta_e"]
            for s in sigmas
        ]
        ax.boxplot([np.clip(d, 1e-6, None) for d in data], showfliers=True, widths=0.6)
        ax.set_xticks(range(1, len(sigmas) + 1), [f"{s:g}" for s in sigmas])
        ax.set_yscale("log")
        ax.set_title(f"k = {k} atom{'s' if k > 1 else ''} moved")
        ax.set_xlabel("σ (Å)")
        ax.grid(True, axis="y", which="major", alpha=0.3)
    for ax in axes[len(ks) :]:
        ax.set_visible(False)
    for ax in axes[::cols]:
        ax.set_ylabel("|ΔE| (meV)")
    fig.suptitle(f"Energy change under random perturbations ({result.config.repeats} per box)")
    return save_figure(fig, path)


def plot_abs_de_vs_rmsd(result: SensitivityResult, path: str | os.PathLike) -> Path:
    """|ΔE| against aligned RMSD on log-log axes, coloured by k, with the fitted power law."""
    samples = result.samples
    fig = Figure(figsize=(6.0, 4.6), layout="constrained")
    ax = fig.subplots()
    for colour, k in zip(K_COLOURS * 4, sorted(samples["k"].unique()), strict=False):
        part = samples[(samples["k"] == k) & (samples["abs_delta_e"] > 0)]
        ax.scatter(
            part["rmsd"], 1e3 * part["abs_delta_e"], s=9, alpha=0.5, color=colour, label=f"k = {k}"
        )
    rmsd = samples.loc[samples["rmsd"] > 0, "rmsd"]
    line = np.geomspace(rmsd.min(), rmsd.max(), 50)
    ax.plot(
        line,
        1e3 * 10**result.intercept * line**result.slope,
        "k-",
        lw=2,
        label=f"fit: slope {result.slope:.2f} ± {result.slope_stderr:.2f}",
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("RMSD after alignment (Å)")
    ax.set_ylabel("|ΔE| (meV)")
    ax.set_title("|ΔE| ∝ RMSD^slope  (slope 2 = harmonic minimum)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left", fontsize=9)
    return save_figure(fig, path)


def plot_site_stiffness(result: SensitivityResult, path: str | os.PathLike) -> Path:
    """Per-site bars: K_i (meV, ±standard error) with the harmonic expectation, and tr(H_ii)/3."""
    sites = result.sites
    index = sites["site"].to_numpy()
    sem = sites["K_std"] / np.sqrt(sites["n"])
    fig = Figure(figsize=(max(7.0, 0.38 * len(index)), 6.2), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    top.bar(
        index,
        1e3 * sites["K"],
        yerr=1e3 * sem,
        color="tab:blue",
        capsize=2,
        label=f"K_i: mean |ΔE|, only atom i moved (σ = {result.config.site_sigma:g} Å)",
    )
    top.plot(
        index,
        1e3 * sites["harmonic_expected_de"],
        "D",
        color="tab:red",
        ms=5,
        label="harmonic expectation σ²·tr(H_ii)/2",
    )
    low = min(0.0, 1.1e3 * float(sites["harmonic_expected_de"].min()))  # < 0 off a minimum
    top.set_ylim(
        low, 1.35e3 * float(max((sites["K"] + sem).max(), sites["harmonic_expected_de"].max()))
    )
    top.set_ylabel("K_i (meV)")
    top.legend(fontsize=8, loc="upper right")
    top.grid(True, axis="y", alpha=0.3)
    bottom.bar(index, sites["harmonic_stiffness"], color="tab:green")
    bottom.set_ylabel("tr(H_ii)/3 (eV/Å²)")
    bottom.set_xlabel("atom index")
    bottom.set_xticks(index)
    bottom.grid(True, axis="y", alpha=0.3)
    fig.suptitle("Per-site stiffness")
    return save_figure(fig, path)
