"""Per-atom values made visible: PDB B-factors, a VMD script, a 3D matplotlib picture."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import numpy as np
from ase import Atoms
from ase.io import write
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from scipy.spatial.distance import pdist, squareform

from ase_au20.geometry.conventions import BOND_CUTOFF
from ase_au20.plotting import save_figure

BFACTOR_RANGE = (-99.99, 999.99)  # what the PDB %6.2f B-factor column can hold


def _per_atom(atoms: Atoms, values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if values.shape != (len(atoms),):
        raise ValueError(f"need one value per atom: {len(atoms)} atoms, values {values.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError("per-atom values must be finite")
    return values


def write_bfactor_pdb(atoms: Atoms, values: np.ndarray, path: str | os.PathLike) -> Path:
    """Write ``atoms`` as PDB with ``values`` (one per atom) in the B-factor column.

    The column holds 2 decimals in [-99.99, 999.99]: scale values into it (e.g. meV)
    before calling; values outside raise ``ValueError`` instead of being mangled.
    """
    values = _per_atom(atoms, values)
    if values.min() < BFACTOR_RANGE[0] or values.max() > BFACTOR_RANGE[1]:
        raise ValueError(
            f"B-factor values must lie in {BFACTOR_RANGE} (got {values.min():.4g}.."
            f"{values.max():.4g}): rescale them first"
        )
    tagged = atoms.copy()
    tagged.pbc = False
    tagged.set_array("bfactor", values)
    path = Path(path)
    write(path, tagged, format="proteindatabank")
    return path


def write_vmd_script(pdb_path: str | os.PathLike, tcl_path: str | os.PathLike, label: str) -> Path:
    """Write a VMD Tcl script that loads ``pdb_path`` as VDW spheres coloured by beta.

    Run it with ``vmd -e script.tcl``; ``label`` names the coloured quantity (with units).
    """
    pdb_path, tcl_path = Path(pdb_path), Path(tcl_path)
    try:
        pdb_ref = os.path.relpath(pdb_path.resolve(), tcl_path.resolve().parent)
    except ValueError:  # different drives on Windows
        pdb_ref = str(pdb_path.resolve())
    label = label.replace('"', "'")
    cutoff = f"{BOND_CUTOFF:.2f}"  # the bonds of the PNGs and the analysis
    script = f"""# VMD script written by ase-au20: atoms coloured by the B-factor column.
# Colour = {label}  (blue = low, red = high). Run: vmd -e {tcl_path.name}
set here [file dirname [file normalize [info script]]]
mol new [file join $here {{{pdb_ref}}}] type pdb waitfor all
mol delrep 0 top
mol representation VDW 0.7 32
mol color Beta
mol selection all
mol material AOChalky
mol addrep top
set betas [[atomselect top all] get beta]
set lo [lindex [lsort -real $betas] 0]
set hi [lindex [lsort -real $betas] end]
mol scaleminmax top 0 $lo $hi
mol representation DynamicBonds {cutoff} 0.15 16
mol color ColorID 16
mol addrep top
color scale method BWR
display projection Orthographic
display depthcue off
axes location Off
puts "Colour by beta = {label}: range $lo .. $hi"
"""
    tcl_path.write_text(script)
    return tcl_path


def plot_site_values_3d(
    atoms: Atoms,
    values: np.ndarray,
    path: str | os.PathLike | BinaryIO,
    title: str,
    label: str,
    bond_cutoff: float = BOND_CUTOFF,
    note: str = "",
) -> Path:
    """Save the atoms coloured by ``values`` seen from two directions 90° apart, with one
    colour bar ``label`` (and a ``note`` under the title).

    Two views resolve what one 3-D projection hides in depth; bonds (pairs closer than
    ``bond_cutoff`` Å, the data's g(r) minimum) are thin grey lines, every atom carries its
    index. The colour scale is sequential (viridis), from the smallest to the largest value.
    """
    values = _per_atom(atoms, values)
    positions = atoms.get_positions() - atoms.get_positions().mean(axis=0)
    fig = Figure(figsize=(12.0, 5.8))
    bonded = np.argwhere(np.triu(squareform(pdist(positions)) < bond_cutoff, k=1))
    span = np.ptp(positions, axis=0).max() / 2.0 + 1.0
    norm = Normalize(vmin=float(values.min()), vmax=float(values.max()))
    for k, azimuth in enumerate((-60, 30)):
        ax = fig.add_axes((0.01 + 0.43 * k, 0.04, 0.42, 0.80), projection="3d")
        ax.view_init(elev=20, azim=azimuth)
        for i, j in bonded:
            ax.plot(*positions[[i, j]].T, color="0.6", lw=1.0, zorder=1)
        points = ax.scatter(
            *positions.T, c=values, cmap="viridis", norm=norm, s=380, edgecolors="k"
        )
        for index, xyz in enumerate(positions):
            ax.text(*xyz, str(index), ha="center", va="center", fontsize=8, zorder=5, color="w")
        for setter in (ax.set_xlim, ax.set_ylim, ax.set_zlim):
            setter(-span, span)
        ax.set_box_aspect((1, 1, 1))
        ax.set(xlabel="x (Å)", ylabel="y (Å)", zlabel="z (Å)")
        ax.set_title(f"view from azimuth {azimuth}°", fontsize=9)
    fig.suptitle(title, fontsize=12, y=0.98)
    if note:
        fig.text(0.5, 0.905, note, ha="center", fontsize=9, style="italic")
    fig.colorbar(points, cax=fig.add_axes((0.90, 0.18, 0.018, 0.55)), label=label)
    return save_figure(fig, path)
