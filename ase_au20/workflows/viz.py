"""Per-atom values made visible: PDB B-factors, a VMD script, a 3D matplotlib picture."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import write
from matplotlib.figure import Figure
from scipy.spatial.distance import pdist, squareform

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
mol representation DynamicBonds 3.2 0.15 16
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
    path: str | os.PathLike,
    title: str,
    label: str,
    bond_cutoff: float = 3.2,
) -> Path:
    """Save a 3D scatter of the atoms coloured by ``values`` with a colour bar ``label``.

    Bonds (pairs closer than ``bond_cutoff`` Å) are drawn as thin grey lines for orientation,
    and every atom is labelled with its index.
    """
    values = _per_atom(atoms, values)
    positions = atoms.get_positions() - atoms.get_positions().mean(axis=0)
    fig = Figure(figsize=(7.0, 6.0))
    ax = fig.add_subplot(projection="3d")
    bonded = np.argwhere(np.triu(squareform(pdist(positions)) < bond_cutoff, k=1))
    for i, j in bonded:
        ax.plot(*positions[[i, j]].T, color="0.6", lw=1.0, zorder=1)
    points = ax.scatter(
        *positions.T, c=values, cmap="coolwarm", s=420, edgecolors="k", depthshade=False
    )
    for index, xyz in enumerate(positions):
        ax.text(*xyz, str(index), ha="center", va="center", fontsize=8, zorder=5)
    span = np.ptp(positions, axis=0).max() / 2.0 + 1.0
    for setter in (ax.set_xlim, ax.set_ylim, ax.set_zlim):
        setter(-span, span)
    ax.set_box_aspect((1, 1, 1))
    ax.set_xlabel("x (Å)")
    ax.set_ylabel("y (Å)")
    ax.set_zlabel("z (Å)")
    ax.set_title(title)
    fig.colorbar(points, ax=ax, shrink=0.7, pad=0.1, label=label)
    return save_figure(fig, path)
