"""Reading one cluster from a structure file with errors that name the file and the problem."""

from __future__ import annotations

import os
from pathlib import Path

from ase import Atoms
from ase.io import read

from ase_au20.validation import check_cluster


def read_cluster(path: str | os.PathLike) -> Atoms:
    """Read the first structure of ``path`` (any ASE format) and check it is a valid Au cluster."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        atoms = read(path, index=0)
    except Exception as exc:  # ASE raises many types for malformed files
        raise ValueError(f"{path}: cannot read a structure ({type(exc).__name__}: {exc})") from exc
    if not isinstance(atoms, Atoms):
        raise ValueError(f"{path}: file holds no structure")
    try:
        check_cluster(atoms)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
    atoms.info.clear()
    atoms.calc = None
    return atoms
